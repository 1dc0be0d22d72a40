//! The self-issued dev server's client-credentials token endpoint, through the same library call
//! a pipeline's `wishctl token --client-id` makes (`authorizer::request_token`), and raw.

use std::sync::Arc;
use std::time::Duration;

use authorizer::{ClientCredentials, ClientCredentialsError, Secret};
use devserver::{DevKey, DevServer, DevServerOptions, RequestLog, TokenIssuer, DEV_CLIENT_ID};
use serde_json::Value;
use wishlist::MemoryStore;

const ITEM: &str =
    r#"{"name": "Machine Item", "description": "d", "url": "https://www.amazon.com"}"#;

struct Fixture {
    server: DevServer,
    key: Arc<DevKey>,
    _dir: tempfile::TempDir,
}

async fn start(audiences: &[&str], scopes: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, _) = DevKey::load_or_create(dir.path()).expect("dev key");
    let key = Arc::new(key);
    let mut options = DevServerOptions::new(
        TokenIssuer::SelfIssued(Arc::clone(&key)),
        Arc::new(MemoryStore::new()),
    );
    options.listen = "127.0.0.1:0".parse().expect("addr");
    options.audiences = audiences.iter().map(|a| a.to_string()).collect();
    options.scopes = scopes.iter().map(|s| s.to_string()).collect();
    options.log = RequestLog::Off;
    Fixture {
        server: DevServer::start(options).await.expect("starts"),
        key,
        _dir: dir,
    }
}

fn creds(fx: &Fixture, secret: &str, audience: Option<&str>) -> ClientCredentials {
    ClientCredentials {
        issuer: fx.server.settings().issuer.to_string(),
        client_id: DEV_CLIENT_ID.into(),
        client_secret: Secret::new(secret),
        audience: audience.map(String::from),
        scope: None,
    }
}

fn claims(token: &str) -> Value {
    Value::Object(authorizer::decode_claims_unverified(token).expect("a JWT"))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test]
async fn a_machine_token_from_the_endpoint_is_accepted_by_the_api() {
    // GIVEN the dev server as its own issuer, whose POST route needs scope write:items
    let fx = start(&["wishctl-dev"], &["write:items"]).await;
    let secret = fx.key.client().secret.expose().to_string();
    // WHEN a client asks for a token with the dev client's id and secret
    let issued = authorizer::request_token(&creds(&fx, &secret, Some("wishctl-dev")))
        .await
        .expect("token issued");
    // THEN it looks like an Auth0 machine token, with the route scopes granted
    assert_eq!(issued.token_type, "Bearer");
    assert_eq!(issued.expires_in, Some(86400));
    assert_eq!(issued.scope.as_deref(), Some("write:items"));
    let claims = claims(issued.access_token.expose());
    assert_eq!(claims["sub"], format!("{DEV_CLIENT_ID}@clients"));
    assert_eq!(claims["azp"], DEV_CLIENT_ID);
    assert_eq!(claims["gty"], "client-credentials");
    assert_eq!(claims["aud"], "wishctl-dev");
    assert_eq!(claims["iss"], fx.server.settings().issuer.as_str());
    // AND the API accepts it
    let created = client()
        .post(fx.server.service_url())
        .bearer_auth(issued.access_token.expose())
        .header("content-type", "application/json")
        .body(ITEM)
        .send()
        .await
        .expect("answer");
    assert_eq!(created.status().as_u16(), 201);
    let listed: Value = client()
        .get(fx.server.service_url())
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["Items"][0]["createdBy"],
        format!("{DEV_CLIENT_ID}@clients")
    );
}

#[tokio::test]
async fn a_wrong_secret_an_unknown_audience_and_another_grant_are_refused_as_oauth_errors() {
    let fx = start(&["wishctl-dev"], &[]).await;
    let secret = fx.key.client().secret.expose().to_string();

    let wrong = authorizer::request_token(&creds(&fx, "not-the-secret", None))
        .await
        .expect_err("wrong secret");
    match &wrong {
        ClientCredentialsError::Refused {
            status,
            error,
            description,
            ..
        } => {
            assert_eq!(*status, 401);
            assert_eq!(error, "invalid_client");
            assert_eq!(description.as_deref(), Some("wrong client id or secret"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!wrong.to_string().contains("not-the-secret"));

    let unknown = authorizer::request_token(&creds(&fx, &secret, Some("https://other")))
        .await
        .expect_err("unknown audience");
    match &unknown {
        ClientCredentialsError::Refused {
            status,
            error,
            description,
            ..
        } => {
            assert_eq!(*status, 403);
            assert_eq!(error, "access_denied");
            assert_eq!(
                description.as_deref(),
                Some("Service not found: https://other")
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    let endpoint = fx.server.token_endpoint().expect("self-issued");
    let other_grant = client()
        .post(&endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&client_id={DEV_CLIENT_ID}&client_secret={secret}"
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(other_grant.status().as_u16(), 400);
    let body: Value = other_grant.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn json_bodies_and_http_basic_are_accepted_too() {
    let fx = start(&["wishctl-dev"], &[]).await;
    let secret = fx.key.client().secret.expose().to_string();
    let endpoint = fx.server.token_endpoint().expect("self-issued");
    let json_body = client()
        .post(&endpoint)
        .json(&serde_json::json!({"grant_type": "client_credentials", "client_id": DEV_CLIENT_ID,
                                  "client_secret": secret, "audience": "wishctl-dev", "scope": "read:items"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(json_body.status().as_u16(), 200);
    assert_eq!(
        json_body
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let answer: Value = json_body.json().await.expect("json");
    assert_eq!(answer["scope"], "read:items");

    let basic = client()
        .post(&endpoint)
        .basic_auth(DEV_CLIENT_ID, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("answer");
    assert_eq!(basic.status().as_u16(), 200);
}

#[tokio::test]
async fn the_discovery_document_names_the_token_endpoint_and_the_secret_survives_restarts() {
    let fx = start(&["wishctl-dev"], &[]).await;
    let discovery: Value = client()
        .get(format!(
            "{}/.well-known/openid-configuration",
            fx.server.base_url()
        ))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(
        discovery["token_endpoint"],
        fx.server.token_endpoint().expect("self-issued")
    );
    assert_eq!(discovery["grant_types_supported"][0], "client_credentials");
    // The secret is kept beside the key: the same after a reload.
    let (again, _) = DevKey::load_or_create(fx._dir.path()).expect("reload");
    assert_eq!(again.client().secret, fx.key.client().secret);
    assert!(!format!("{:?}", fx.key.client()).contains(fx.key.client().secret.expose()));
}
