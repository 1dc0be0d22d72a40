//! The authorizer against a real local OIDC issuer over loopback HTTP: signatures, algorithms,
//! discovery, the JWKS cache and its limits.

use std::time::{Duration, Instant};

use authorizer::{AuthError, Authorizer, AuthorizerConfig, FetchError};
use serde_json::json;
use stack::Issuer;
use testkit::issuer::{Signing, TestIssuer};

const AUDIENCE: &str = "https://wishlist.example.com";

async fn issuer() -> TestIssuer {
    TestIssuer::start().await.expect("test issuer starts")
}

fn config(issuer: &TestIssuer) -> AuthorizerConfig {
    AuthorizerConfig::new(
        Issuer::parse_local(issuer.issuer()).expect("loopback issuer"),
        [AUDIENCE.to_string()],
    )
}

fn authorizer(issuer: &TestIssuer) -> Authorizer {
    Authorizer::new(config(issuer)).expect("valid config")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn decide(
    authorizer: &Authorizer,
    token: &str,
) -> Result<authorizer::Authorization, AuthError> {
    authorizer.authorize(Some(&bearer(token)), &[]).await
}

#[tokio::test]
async fn given_a_token_of_the_issuer_when_authorized_then_claims_are_rendered_as_strings() {
    let issuer = issuer().await;
    let authorizer = authorizer(&issuer);
    let mut claims = issuer.claims("auth0|alice", AUDIENCE);
    claims["permissions"] = json!(["read:items", "write:items"]);
    let token = issuer.mint(&claims);

    let ok = decide(&authorizer, &token).await.expect("accepted");

    assert_eq!(ok.subject(), Some("auth0|alice"));
    assert_eq!(ok.claims["permissions"], "[read:items write:items]");
    assert_eq!(ok.claims["iss"], issuer.issuer());
    assert_eq!(ok.claims["exp"], claims["exp"].to_string());
    assert_eq!(ok.scopes, None);
}

#[tokio::test]
async fn every_rsa_algorithm_is_accepted() {
    let issuer = issuer().await;
    let authorizer = authorizer(&issuer);
    let kid = issuer.current_kid();
    let claims = issuer.claims("u", AUDIENCE);
    for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
        let token = issuer.mint_with(
            &json!({"alg": alg, "kid": kid}),
            &claims,
            &Signing::Rsa {
                kid: kid.clone(),
                alg: alg.into(),
            },
        );
        assert!(decide(&authorizer, &token).await.is_ok(), "{alg}");
    }
}

#[tokio::test]
async fn given_non_rsa_algorithms_then_each_is_refused_before_any_key_fetch() {
    let issuer = issuer().await;
    let authorizer = authorizer(&issuer);
    let kid = issuer.current_kid();
    let claims = issuer.claims("u", AUDIENCE);
    let public_pem = issuer.public_key_pem(&kid).expect("key exists");
    let cases: [(&str, Signing); 4] = [
        ("none", Signing::Unsigned),
        (
            "HS256",
            Signing::Hs256 {
                secret: public_pem.into_bytes(),
            },
        ),
        ("ES256", Signing::Es256),
        ("EdDSA", Signing::Unsigned),
    ];
    for (alg, signing) in cases {
        let token = issuer.mint_with(&json!({"alg": alg, "kid": kid}), &claims, &signing);
        assert_eq!(
            decide(&authorizer, &token).await,
            Err(AuthError::UnsupportedAlgorithm(alg.to_string())),
            "{alg}"
        );
    }
    assert_eq!(
        issuer.jwks_requests(),
        0,
        "no key is needed to refuse these"
    );
}

#[tokio::test]
async fn a_header_that_lies_about_the_algorithm_fails_the_signature() {
    // GIVEN a PKCS#1 v1.5 signature presented as PSS
    let issuer = issuer().await;
    let authorizer = authorizer(&issuer);
    let kid = issuer.current_kid();
    let token = issuer.mint_with(
        &json!({"alg": "PS256", "kid": kid}),
        &issuer.claims("u", AUDIENCE),
        &Signing::Rsa {
            kid: kid.clone(),
            alg: "RS256".into(),
        },
    );
    // THEN it does not verify
    assert_eq!(
        decide(&authorizer, &token).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn tampered_payload_and_tampered_signature_are_refused() {
    let issuer = issuer().await;
    let authorizer = authorizer(&issuer);
    let token = issuer.mint(&issuer.claims("alice", AUDIENCE));
    let parts: Vec<&str> = token.split('.').collect();

    let forged_claims = issuer.claims("mallory", AUDIENCE);
    let forged_payload = base64_url(&forged_claims.to_string());
    let tampered_payload = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(
        decide(&authorizer, &tampered_payload).await,
        Err(AuthError::BadSignature)
    );

    let mut signature = parts[2].to_string();
    let flipped = if signature.ends_with('A') { 'B' } else { 'A' };
    signature.pop();
    signature.push(flipped);
    let tampered_signature = format!("{}.{}.{}", parts[0], parts[1], signature);
    assert_eq!(
        decide(&authorizer, &tampered_signature).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn a_token_signed_by_another_key_with_a_known_kid_is_refused() {
    let issuer = issuer().await;
    let other = TestIssuer::start().await.expect("second issuer");
    let authorizer = authorizer(&issuer);
    // The other issuer's first key has the same kid as ours: only the signature tells them apart.
    assert_eq!(other.current_kid(), issuer.current_kid());
    let token = other.mint(&issuer.claims("u", AUDIENCE));
    assert_eq!(
        decide(&authorizer, &token).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn keys_are_fetched_once_and_then_served_from_the_cache() {
    let issuer = issuer().await;
    let authorizer = authorizer(&issuer);
    let token = issuer.mint(&issuer.claims("u", AUDIENCE));
    for _ in 0..20 {
        assert!(decide(&authorizer, &token).await.is_ok());
    }
    assert_eq!(issuer.discovery_requests(), 1);
    assert_eq!(issuer.jwks_requests(), 1);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let issuer = issuer().await;
    let authorizer = std::sync::Arc::new(authorizer(&issuer));
    let token = issuer.mint(&issuer.claims("u", AUDIENCE));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let authorizer = std::sync::Arc::clone(&authorizer);
        let header = bearer(&token);
        tasks.push(tokio::spawn(async move {
            authorizer.authorize(Some(&header), &[]).await.is_ok()
        }));
    }
    for task in tasks {
        assert!(task.await.expect("task"));
    }
    assert_eq!(issuer.jwks_requests(), 1);
}

#[tokio::test]
async fn given_an_unknown_kid_when_the_issuer_rotates_then_a_refetch_finds_the_new_key() {
    // GIVEN an authorizer that has cached the issuer's keys
    let issuer = issuer().await;
    let mut config = config(&issuer);
    config.min_refetch_interval = Duration::from_millis(200);
    let authorizer = Authorizer::new(config).expect("config");
    let first = issuer.mint(&issuer.claims("u", AUDIENCE));
    assert!(decide(&authorizer, &first).await.is_ok());

    tokio::time::sleep(Duration::from_millis(250)).await;

    // WHEN a token names a key the issuer has not published yet
    let new_kid = issuer.add_key(false).expect("key");
    let early = issuer.mint_with(
        &json!({"alg": "RS256", "kid": new_kid}),
        &issuer.claims("u", AUDIENCE),
        &Signing::Rsa {
            kid: new_kid.clone(),
            alg: "RS256".into(),
        },
    );
    // THEN it is refused after one refetch
    assert_eq!(
        decide(&authorizer, &early).await,
        Err(AuthError::UnknownKey(new_kid.clone()))
    );
    assert_eq!(issuer.jwks_requests(), 2);
    // AND a burst of such tokens does not turn into a burst of fetches
    for _ in 0..10 {
        assert_eq!(
            decide(&authorizer, &early).await,
            Err(AuthError::UnknownKey(new_kid.clone()))
        );
    }
    assert_eq!(issuer.jwks_requests(), 2);

    // WHEN the issuer publishes the key and the rate limit has passed
    issuer.publish(&new_kid);
    tokio::time::sleep(Duration::from_millis(250)).await;
    // THEN the same token is accepted, and the old key still works
    assert!(decide(&authorizer, &early).await.is_ok());
    assert!(decide(&authorizer, &first).await.is_ok());
    assert_eq!(issuer.jwks_requests(), 3);
}

#[tokio::test]
async fn keys_older_than_the_ttl_are_fetched_again() {
    let issuer = issuer().await;
    let mut config = config(&issuer);
    config.key_ttl = Duration::from_millis(100);
    config.min_refetch_interval = Duration::ZERO;
    let authorizer = Authorizer::new(config).expect("config");
    let token = issuer.mint(&issuer.claims("u", AUDIENCE));
    assert!(decide(&authorizer, &token).await.is_ok());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(decide(&authorizer, &token).await.is_ok());
    assert_eq!(issuer.jwks_requests(), 2);
}

#[tokio::test]
async fn given_a_hanging_discovery_when_authorizing_then_it_is_refused_after_1500_ms() {
    let issuer = issuer().await;
    issuer.hang_discovery(true);
    let authorizer = authorizer(&issuer);
    let token = issuer.mint(&issuer.claims("u", AUDIENCE));

    let started = Instant::now();
    let refused = decide(&authorizer, &token).await;
    let waited = started.elapsed();

    assert_eq!(
        refused,
        Err(AuthError::KeysUnavailable(FetchError::Timeout {
            url: issuer.discovery_url(),
            millis: 1500
        }))
    );
    assert!(waited >= Duration::from_millis(1450), "{waited:?}");
    assert!(waited < Duration::from_millis(2500), "{waited:?}");
    // AND the next request within the retry interval is refused at once, without a new fetch
    let started = Instant::now();
    let again = decide(&authorizer, &token).await;
    assert!(started.elapsed() < Duration::from_millis(100));
    match again {
        Err(AuthError::KeysUnavailable(FetchError::RecentlyFailed { cause, .. })) => {
            assert!(matches!(*cause, FetchError::Timeout { .. }))
        }
        other => panic!("expected a recent failure, got {other:?}"),
    }
    assert_eq!(issuer.discovery_requests(), 1);
}

#[tokio::test]
async fn given_an_issuer_that_is_down_then_the_cause_names_the_discovery_url() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let issuer = Issuer::parse_local(&format!("http://127.0.0.1:{port}/")).expect("issuer");
    let authorizer =
        Authorizer::new(AuthorizerConfig::new(issuer, [AUDIENCE.to_string()])).expect("config");
    let err = authorizer.prefetch().await.expect_err("nothing listens");
    match &err {
        FetchError::Transport { url, .. } => {
            assert_eq!(
                url,
                &format!("http://127.0.0.1:{port}/.well-known/openid-configuration")
            )
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test]
async fn prefetch_counts_the_usable_keys() {
    let issuer = issuer().await;
    issuer.rotate().expect("second key");
    let authorizer = authorizer(&issuer);
    assert_eq!(authorizer.prefetch().await, Ok(2));
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
