//! The dev server in front of issuers that misbehave: a JWKS that is huge, slow, trickling,
//! endless, malformed or changing on every fetch, a discovery document that points elsewhere, is
//! redirected to another scheme, or is huge. Every POST is refused with 401 naming the cause; GET
//! keeps working and the server stays up.

use std::sync::Arc;
use std::time::Duration;

use devserver::{DevServer, DevServerOptions, RequestLog, TokenIssuer};
use serde_json::json;
use stack::Issuer;
use testkit::issuer::{DiscoveryMode, JwksMode, TestIssuer};
use wishlist::MemoryStore;

const AUDIENCE: &str = "https://wishlist.example.com";
const ITEM: &str = r#"{"name": "Test Item", "description": "d", "url": "https://www.amazon.com"}"#;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn server_for(issuer: &TestIssuer, min_refetch: Duration) -> DevServer {
    let mut options = DevServerOptions::new(
        TokenIssuer::External(Issuer::parse_local(issuer.issuer()).expect("loopback issuer")),
        Arc::new(MemoryStore::new()),
    );
    options.listen = "127.0.0.1:0".parse().expect("addr");
    options.audiences = vec![AUDIENCE.to_string()];
    options.log = RequestLog::Off;
    options.min_refetch_interval = min_refetch;
    DevServer::start(options).await.expect("dev server starts")
}

/// POST with `token`: status and `www-authenticate`.
async fn post(server: &DevServer, token: &str) -> (u16, String) {
    let response = client()
        .post(server.service_url())
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(ITEM)
        .send()
        .await
        .expect("the dev server answers");
    let header = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (response.status().as_u16(), header)
}

async fn get(server: &DevServer) -> u16 {
    client()
        .get(server.service_url())
        .send()
        .await
        .expect("the dev server answers")
        .status()
        .as_u16()
}

/// One misbehaviour: POSTs are refused with a reason containing `expected`, GETs still work.
async fn refused_while_get_works(issuer: &TestIssuer, expected: &str) {
    let server = server_for(issuer, Duration::from_millis(50)).await;
    assert!(server.key_status().is_err(), "{:?}", server.key_status());
    let token = issuer.mint(&issuer.claims("auth0|u", AUDIENCE));
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        let (status, header) = post(&server, &token).await;
        assert_eq!(status, 401, "{expected}: {header}");
        assert!(
            header.contains("the issuer's signing keys are unavailable")
                && header.contains(expected),
            "expected {expected:?} in {header}"
        );
        assert_eq!(get(&server).await, 200);
    }
}

#[tokio::test]
async fn a_jwks_over_api_gateways_150000_bytes_is_refused_with_or_without_content_length() {
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.set_jwks_mode(JwksMode::Huge { bytes: 150_001 });
    refused_while_get_works(&issuer, "larger than 150000 bytes").await;
    issuer.set_jwks_mode(JwksMode::HugeChunked { bytes: 400_000 });
    refused_while_get_works(&issuer, "larger than 150000 bytes").await;
}

#[tokio::test]
async fn a_jwks_of_exactly_150000_bytes_is_accepted() {
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.set_jwks_mode(JwksMode::Huge { bytes: 150_000 });
    let server = server_for(&issuer, Duration::from_millis(50)).await;
    let token = issuer.mint(&issuer.claims("auth0|u", AUDIENCE));
    assert_eq!(post(&server, &token).await.0, 201);
}

#[tokio::test]
async fn an_endless_jwks_is_cut_off_at_the_limit() {
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.set_jwks_mode(JwksMode::Endless);
    refused_while_get_works(&issuer, "larger than 150000 bytes").await;
}

#[tokio::test]
async fn a_slow_or_trickling_jwks_is_given_1500_ms_in_all() {
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.set_jwks_mode(JwksMode::Slow { delay_ms: 5_000 });
    refused_while_get_works(&issuer, "timed out after 1500 ms").await;
    issuer.set_jwks_mode(JwksMode::Trickle { interval_ms: 20 });
    refused_while_get_works(&issuer, "timed out after 1500 ms").await;
}

#[tokio::test]
async fn a_malformed_jwks_is_refused() {
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.set_jwks_mode(JwksMode::Malformed);
    refused_while_get_works(&issuer, "is not a valid JWKS").await;
}

#[tokio::test]
async fn a_discovery_document_that_points_elsewhere_is_refused() {
    let issuer = TestIssuer::start().await.expect("issuer");
    for (jwks_uri, expected) in [
        (
            json!("http://keys.example.com/jwks.json"),
            "plain http off this machine",
        ),
        (json!("file:///etc/passwd"), "has scheme file"),
        (json!("/.well-known/jwks.json"), "is not an absolute URL"),
        (json!(42), "has no jwks_uri"),
    ] {
        issuer.set_discovery_mode(DiscoveryMode::Document(
            json!({"issuer": issuer.issuer(), "jwks_uri": jwks_uri}),
        ));
        refused_while_get_works(&issuer, expected).await;
    }
    issuer.set_discovery_mode(DiscoveryMode::Huge(70_000));
    refused_while_get_works(&issuer, "larger than 65536 bytes").await;
}

#[tokio::test]
async fn a_redirect_to_another_scheme_is_not_followed() {
    let issuer = TestIssuer::start().await.expect("issuer");
    let port = issuer.addr().port();
    issuer.set_discovery_mode(DiscoveryMode::Redirect(format!(
        "https://127.0.0.1:{port}/.well-known/openid-configuration"
    )));
    refused_while_get_works(&issuer, "another scheme").await;
}

#[tokio::test]
async fn a_jwks_that_changes_on_every_fetch_is_not_fetched_for_every_request() {
    // GIVEN an issuer whose keys get new kids on every fetch, and the default refetch interval
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.set_jwks_mode(JwksMode::Changing);
    let server = server_for(&issuer, devserver_default_refetch()).await;
    let token = issuer.mint(&issuer.claims("auth0|u", AUDIENCE));
    // WHEN 30 tokens name a kid the JWKS never holds for long
    for _ in 0..30 {
        let (status, header) = post(&server, &token).await;
        // THEN each is refused
        assert_eq!(status, 401, "{header}");
        assert!(header.contains("has no key with kid"), "{header}");
    }
    // AND the issuer saw the startup fetch and at most one refetch, not one per request
    assert!(issuer.jwks_requests() <= 2, "{}", issuer.jwks_requests());
    assert_eq!(get(&server).await, 200);
}

fn devserver_default_refetch() -> Duration {
    authorizer::MIN_REFETCH_INTERVAL
}
