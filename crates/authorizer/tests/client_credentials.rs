//! `authorizer::request_token` (the OAuth 2.0 client-credentials grant) against the local test
//! issuer: the token, the issuer's own errors, and discovery that misleads or hangs.

use std::time::Duration;

use authorizer::client_credentials::request_token_within;
use authorizer::{request_token, ClientCredentials, ClientCredentialsError, Secret};
use serde_json::json;
use testkit::issuer::{DiscoveryMode, TestIssuer};

const AUDIENCE: &str = "https://wishlist.example.com";

fn creds(issuer: &TestIssuer, secret: &str, audience: &str) -> ClientCredentials {
    ClientCredentials {
        issuer: issuer.issuer().to_string(),
        client_id: "ci-app".into(),
        client_secret: Secret::new(secret),
        audience: Some(audience.into()),
        scope: Some("write:items".into()),
    }
}

async fn issuer() -> TestIssuer {
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.register_client("ci-app", "s3cr3t", &[AUDIENCE]);
    issuer
}

#[tokio::test]
async fn the_grant_returns_an_auth0_style_machine_token() {
    let issuer = issuer().await;
    let issued = request_token(&creds(&issuer, "s3cr3t", AUDIENCE))
        .await
        .expect("token");
    assert_eq!(issued.token_type, "Bearer");
    assert_eq!(issued.expires_in, Some(86400));
    assert_eq!(issued.scope.as_deref(), Some("write:items"));
    let claims = authorizer::decode_claims_unverified(issued.access_token.expose()).expect("jwt");
    assert_eq!(claims["sub"], "ci-app@clients");
    assert_eq!(claims["gty"], "client-credentials");
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(issuer.token_requests(), 1);
    assert!(!format!("{issued:?}").contains(issued.access_token.expose()));
}

#[tokio::test]
async fn the_issuers_errors_come_back_with_its_own_words() {
    let issuer = issuer().await;
    let wrong = request_token(&creds(&issuer, "wrong", AUDIENCE))
        .await
        .expect_err("wrong secret");
    assert_eq!(
        wrong,
        ClientCredentialsError::Refused {
            url: issuer.token_endpoint(),
            client_id: "ci-app".into(),
            status: 401,
            error: "access_denied".into(),
            description: Some("Unauthorized".into()),
        }
    );
    let unknown = request_token(&creds(&issuer, "s3cr3t", "https://unknown.example.com"))
        .await
        .expect_err("unknown audience");
    assert!(
        unknown
            .to_string()
            .ends_with("(HTTP 403): access_denied: Service not found: https://unknown.example.com"),
        "{unknown}"
    );
    assert!(unknown.hint().is_some());
}

#[tokio::test]
async fn a_token_endpoint_that_points_elsewhere_is_not_posted_to() {
    let issuer = issuer().await;
    for endpoint in [
        "http://auth.example.com/oauth/token",
        "https://user:pw@auth.example.com/oauth/token",
    ] {
        issuer.set_discovery_mode(DiscoveryMode::Document(
            json!({"issuer": issuer.issuer(), "token_endpoint": endpoint}),
        ));
        let err = request_token(&creds(&issuer, "s3cr3t", AUDIENCE))
            .await
            .expect_err("refused");
        assert!(
            matches!(err, ClientCredentialsError::NoTokenEndpoint { .. }),
            "{err}"
        );
        assert!(!err.to_string().contains("pw@"), "{err}");
    }
    assert_eq!(issuer.token_requests(), 0);
}

#[tokio::test]
async fn a_hanging_issuer_fails_within_the_budget() {
    let issuer = issuer().await;
    issuer.hang_discovery(true);
    let err = request_token_within(
        &creds(&issuer, "s3cr3t", AUDIENCE),
        Duration::from_millis(300),
    )
    .await
    .expect_err("times out");
    assert!(
        matches!(
            &err,
            ClientCredentialsError::Discovery {
                source: authorizer::FetchError::Timeout { millis: 300, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_issuer_url_with_credentials_is_refused_before_any_request() {
    let issuer = issuer().await;
    let mut creds = creds(&issuer, "s3cr3t", AUDIENCE);
    creds.issuer = issuer.issuer().replace("http://", "http://admin:hunter2@");
    let err = request_token(&creds).await.expect_err("refused");
    assert!(matches!(err, ClientCredentialsError::InvalidIssuer { .. }));
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert_eq!(issuer.discovery_requests(), 0);
}
