//! Issuer fetches against issuers that misbehave: the exact cause of each refusal, including the
//! one 1500 ms budget shared by discovery and the JWKS (the issuer would take 10 s).

use authorizer::{AuthError, Authorizer, AuthorizerConfig, FetchError};
use serde_json::json;
use stack::Issuer;
use testkit::issuer::{DiscoveryMode, JwksMode, TestIssuer};

const AUDIENCE: &str = "https://wishlist.example.com";

fn authorizer(issuer: &TestIssuer) -> Authorizer {
    Authorizer::new(AuthorizerConfig::new(
        Issuer::parse_local(issuer.issuer()).expect("loopback issuer"),
        [AUDIENCE.to_string()],
    ))
    .expect("config")
}

async fn prefetch_error(issuer: &TestIssuer) -> FetchError {
    authorizer(issuer)
        .prefetch()
        .await
        .expect_err("the fetch is refused")
}

#[tokio::test]
async fn huge_jwks_documents_are_refused_by_size_whether_announced_or_streamed() {
    let issuer = TestIssuer::start().await.expect("issuer");
    for mode in [
        JwksMode::Huge { bytes: 150_001 },
        JwksMode::HugeChunked { bytes: 1_000_000 },
        JwksMode::Endless,
    ] {
        issuer.set_jwks_mode(mode.clone());
        assert_eq!(
            prefetch_error(&issuer).await,
            FetchError::TooLarge {
                url: issuer.jwks_url().to_string(),
                document: "JWKS",
                limit: 150_000
            },
            "{mode:?}"
        );
    }
    issuer.set_jwks_mode(JwksMode::Huge { bytes: 150_000 });
    assert_eq!(authorizer(&issuer).prefetch().await, Ok(1));
}

#[tokio::test]
async fn discovery_and_jwks_share_one_1500_ms_budget() {
    let issuer = TestIssuer::start().await.expect("issuer");
    for mode in [
        JwksMode::Slow { delay_ms: 10_000 },
        JwksMode::Trickle { interval_ms: 10 },
    ] {
        issuer.set_jwks_mode(mode.clone());
        let err = prefetch_error(&issuer).await;
        assert_eq!(
            err,
            FetchError::Timeout {
                url: issuer.jwks_url().to_string(),
                millis: 1500
            },
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_malformed_jwks_is_a_document_error() {
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.set_jwks_mode(JwksMode::Malformed);
    match prefetch_error(&issuer).await {
        FetchError::Document { document, url, .. } => {
            assert_eq!(document, "JWKS");
            assert_eq!(url, issuer.jwks_url());
        }
        other => panic!("expected a document error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_discovery_document_pointing_elsewhere_is_not_followed() {
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.set_discovery_mode(DiscoveryMode::Document(json!({
        "issuer": issuer.issuer(),
        "jwks_uri": "http://keys.example.com/.well-known/jwks.json",
    })));
    let err = prefetch_error(&issuer).await;
    assert!(
        matches!(&err, FetchError::Document { reason, .. } if reason.contains("plain http off this machine")),
        "{err}"
    );
    assert_eq!(issuer.jwks_requests(), 0);
}

#[tokio::test]
async fn a_redirect_to_another_scheme_is_refused_and_same_scheme_ones_are_followed() {
    let issuer = TestIssuer::start().await.expect("issuer");
    let port = issuer.addr().port();
    issuer.set_discovery_mode(DiscoveryMode::Redirect(format!(
        "https://127.0.0.1:{port}/.well-known/openid-configuration"
    )));
    let err = prefetch_error(&issuer).await;
    assert!(
        matches!(&err, FetchError::Redirect { reason, .. } if reason.contains("another scheme")),
        "{err}"
    );
    // A same-scheme redirect (to the other issuer's own document) is followed.
    let other = TestIssuer::start().await.expect("issuer");
    issuer.set_discovery_mode(DiscoveryMode::Redirect(other.discovery_url()));
    assert_eq!(authorizer(&issuer).prefetch().await, Ok(1));
}

#[tokio::test]
async fn a_huge_discovery_document_is_refused() {
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.set_discovery_mode(DiscoveryMode::Huge(65_537));
    assert_eq!(
        prefetch_error(&issuer).await,
        FetchError::TooLarge {
            url: issuer.discovery_url(),
            document: "OpenID configuration",
            limit: 65_536
        }
    );
}

#[tokio::test]
async fn an_issuer_url_with_credentials_is_refused_without_showing_them() {
    // The stack's issuer rules refuse it already; were they to let it through, the authorizer
    // must refuse it too. Either way the password is never shown.
    let err = match Issuer::parse_local("https://user:hunter2@tenant.auth0.com/") {
        Err(refused) => refused.to_string(),
        Ok(issuer) => Authorizer::new(AuthorizerConfig::new(issuer, [AUDIENCE.to_string()]))
            .expect_err("refused")
            .to_string(),
    };
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("tenant.auth0.com/"), "{err}");
}

#[tokio::test]
async fn a_refused_fetch_refuses_the_request_with_its_cause() {
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.set_jwks_mode(JwksMode::Endless);
    let authorizer = authorizer(&issuer);
    let token = issuer.mint(&issuer.claims("u", AUDIENCE));
    let refused = authorizer
        .authorize(Some(&format!("Bearer {token}")), &[])
        .await
        .expect_err("refused");
    assert!(
        matches!(
            &refused,
            AuthError::KeysUnavailable(FetchError::TooLarge { .. })
        ),
        "{refused:?}"
    );
    assert_eq!(refused.status(), 401);
}
