//! The local API end to end over loopback HTTP: API Gateway's JWT authorizer conformance table,
//! the walkthrough's test section, and the dev server as its own issuer.

use std::sync::Arc;
use std::time::Duration;

use devserver::{
    self_issuer_url, DevKey, DevServer, DevServerOptions, RequestLog, RequestRecord, TokenIssuer,
    TokenRequest, DEFAULT_AUDIENCE,
};
use serde_json::{json, Value};
use stack::Issuer;
use testkit::issuer::{unix_now, Signing, TestIssuer};
use wishlist::MemoryStore;

const AUDIENCE: &str = "https://wishlist.example.com";
const UNAUTHORIZED: &str = r#"{"message":"Unauthorized"}"#;
const FORBIDDEN: &str = r#"{"message":"Forbidden"}"#;
const ITEM: &str = r#"{"name": "Test Item 3", "description": "Test Description 3", "url": "https://www.amazon.com"}"#;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// What a test asserts about a response: status, body, and the `www-authenticate` header.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    www_authenticate: Option<String>,
    content_type: Option<String>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the dev server answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_string())
    };
    let www_authenticate = header("www-authenticate");
    let content_type = header("content-type");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    Answer {
        status,
        body,
        www_authenticate,
        content_type,
    }
}

async fn post(server: &DevServer, authorization: Option<&str>) -> Answer {
    let mut request = client()
        .post(server.service_url())
        .header("content-type", "application/json")
        .body(ITEM);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    send(request).await
}

async fn get(server: &DevServer) -> Answer {
    send(client().get(server.service_url())).await
}

fn invalid_token(description: &str) -> Option<String> {
    Some(format!(
        r#"Bearer scope="" error="invalid_token" error_description="{description}""#
    ))
}

/// A dev server in front of `issuer`, with an in-memory store.
async fn server_for(issuer: &TestIssuer, scopes: &[&str]) -> DevServer {
    let store = Arc::new(MemoryStore::new());
    let mut options = DevServerOptions::new(
        TokenIssuer::External(Issuer::parse_local(issuer.issuer()).expect("loopback issuer")),
        store,
    );
    options.listen = "127.0.0.1:0".parse().expect("addr");
    options.audiences = vec![
        AUDIENCE.to_string(),
        "https://second.example.com".to_string(),
    ];
    options.scopes = scopes.iter().map(|s| s.to_string()).collect();
    options.log = RequestLog::Off;
    options.min_refetch_interval = Duration::from_millis(100);
    DevServer::start(options).await.expect("dev server starts")
}

fn with(mut claims: Value, changes: Value) -> Value {
    if let (Some(claims), Value::Object(changes)) = (claims.as_object_mut(), changes) {
        for (name, value) in changes {
            if value.is_null() {
                claims.remove(&name);
            } else {
                claims.insert(name, value);
            }
        }
    }
    claims
}

#[tokio::test]
async fn conformance_table_of_the_jwt_authorizer() {
    let issuer = TestIssuer::start().await.expect("issuer");
    let server = server_for(&issuer, &[]).await;
    let valid = issuer.claims("auth0|alice", AUDIENCE);
    let token = issuer.mint(&valid);
    let kid = issuer.current_kid();
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = unix_now();
    let issuer_without_slash = issuer.issuer().trim_end_matches('/').to_string();
    let mut flipped_signature = parts[2].to_string();
    let last = if flipped_signature.ends_with('A') {
        'B'
    } else {
        'A'
    };
    flipped_signature.pop();
    flipped_signature.push(last);
    let rsa = |alg: &str| Signing::Rsa {
        kid: kid.clone(),
        alg: alg.into(),
    };
    let only_rsa = |alg: &str| {
        format!("signing method {alg} is invalid: only RS256, RS384, RS512, PS256, PS384 and PS512 are accepted")
    };

    // (case, Authorization header, expected status, expected www-authenticate)
    let cases: Vec<(&str, Option<String>, u16, Option<String>)> = vec![
        ("valid token with Bearer", Some(format!("Bearer {token}")), 201, None),
        ("valid token without Bearer", Some(token.clone()), 201, None),
        (
            "tampered payload",
            Some(format!("Bearer {}.{}.{}", parts[0], b64(&with(valid.clone(), json!({"sub": "mallory"}))), parts[2])),
            401,
            invalid_token("the token signature is invalid"),
        ),
        (
            "tampered signature",
            Some(format!("Bearer {}.{}.{}", parts[0], parts[1], flipped_signature)),
            401,
            invalid_token("the token signature is invalid"),
        ),
        (
            "alg none",
            Some(format!("Bearer {}", issuer.mint_with(&json!({"alg": "none", "kid": kid}), &valid, &Signing::Unsigned))),
            401,
            invalid_token(&only_rsa("none")),
        ),
        (
            "HS256 keyed with the public key",
            Some(format!(
                "Bearer {}",
                issuer.mint_with(
                    &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
                    &valid,
                    &Signing::Hs256 { secret: issuer.public_key_pem(&kid).expect("pem").into_bytes() }
                )
            )),
            401,
            invalid_token(&only_rsa("HS256")),
        ),
        (
            "ES256",
            Some(format!("Bearer {}", issuer.mint_with(&json!({"alg": "ES256", "kid": kid}), &valid, &Signing::Es256))),
            401,
            invalid_token(&only_rsa("ES256")),
        ),
        (
            "PS256 is an RSA algorithm too",
            Some(format!("Bearer {}", issuer.mint_with(&json!({"alg": "PS256", "kid": kid}), &valid, &rsa("PS256")))),
            201,
            None,
        ),
        (
            "expired",
            Some(format!("Bearer {}", issuer.mint(&with(valid.clone(), json!({"iat": now - 7200, "exp": now - 60}))))),
            401,
            invalid_token("the token has expired"),
        ),
        (
            "nbf in the future",
            Some(format!("Bearer {}", issuer.mint(&with(valid.clone(), json!({"nbf": now + 300}))))),
            401,
            invalid_token("the token is not valid yet (nbf is in the future)"),
        ),
        (
            "iat in the future",
            Some(format!("Bearer {}", issuer.mint(&with(valid.clone(), json!({"iat": now + 300}))))),
            401,
            invalid_token("the token was issued in the future (iat is in the future)"),
        ),
        (
            "no exp",
            Some(format!("Bearer {}", issuer.mint(&with(valid.clone(), json!({"exp": null}))))),
            401,
            invalid_token("the token has no exp claim"),
        ),
        (
            "wrong iss",
            Some(format!("Bearer {}", issuer.mint(&with(valid.clone(), json!({"iss": "https://evil.example.com/"}))))),
            401,
            invalid_token(&format!(
                "the token does not have a valid issuer: iss is https://evil.example.com/, expected exactly {}",
                issuer.issuer()
            )),
        ),
        (
            "iss differing only by the trailing slash",
            Some(format!("Bearer {}", issuer.mint(&with(valid.clone(), json!({"iss": issuer_without_slash}))))),
            401,
            invalid_token(&format!(
                "the token does not have a valid issuer: iss is {issuer_without_slash}, expected exactly {}",
                issuer.issuer()
            )),
        ),
        (
            "wrong aud",
            Some(format!("Bearer {}", issuer.mint(&with(valid.clone(), json!({"aud": "https://other-api.example.com"}))))),
            401,
            invalid_token("the token does not have a valid audience"),
        ),
        (
            "client_id without aud",
            Some(format!("Bearer {}", issuer.mint(&with(valid.clone(), json!({"aud": null, "client_id": AUDIENCE}))))),
            201,
            None,
        ),
        (
            "wrong client_id without aud",
            Some(format!("Bearer {}", issuer.mint(&with(valid.clone(), json!({"aud": null, "client_id": "someone-else"}))))),
            401,
            invalid_token("the token does not have a valid audience"),
        ),
        (
            "client_id is ignored when aud is present",
            Some(format!("Bearer {}", issuer.mint(&with(valid.clone(), json!({"aud": "x", "client_id": AUDIENCE}))))),
            401,
            invalid_token("the token does not have a valid audience"),
        ),
        (
            "array aud",
            Some(format!(
                "Bearer {}",
                issuer.mint(&with(valid.clone(), json!({"aud": ["https://tenant.auth0.com/userinfo", "https://second.example.com"]})))
            )),
            201,
            None,
        ),
        ("missing header", None, 401, invalid_token("the request has no access token in its Authorization header")),
        ("Bearer without a token", Some("Bearer".into()), 401, invalid_token("the request has no access token in its Authorization header")),
        (
            "garbage header",
            Some("Bearer not-a-jwt".into()),
            401,
            invalid_token("the token is not a valid JWT: it does not have three segments"),
        ),
        (
            "garbage segments",
            Some("Bearer a.b.c".into()),
            401,
            invalid_token("the token is not a valid JWT: the header is not base64url-encoded JSON"),
        ),
        (
            "no kid",
            Some(format!("Bearer {}", issuer.mint_with(&json!({"alg": "RS256"}), &valid, &rsa("RS256")))),
            401,
            invalid_token("the token header has no kid"),
        ),
    ];

    let mut failures = Vec::new();
    for (case, authorization, status, www_authenticate) in &cases {
        let answer = post(&server, authorization.as_deref()).await;
        let body_ok = if *status == 201 {
            answer.json()["id"].as_str().is_some_and(uuid_like)
        } else {
            answer.body == UNAUTHORIZED
        };
        if answer.status != *status || !body_ok || answer.www_authenticate != *www_authenticate {
            failures.push(format!("{case}: {answer:?}"));
        }
        // GET stays open throughout.
        let open = get(&server).await;
        if open.status != 200 {
            failures.push(format!("GET after {case}: {open:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "cases that failed:\n{}",
        failures.join("\n")
    );
    let accepted = cases.iter().filter(|c| c.2 == 201).count();
    assert_eq!(get(&server).await.json()["Count"], accepted);
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn given_an_unknown_kid_when_the_issuer_rotates_then_the_token_becomes_valid() {
    // GIVEN a dev server that has the issuer's current keys
    let issuer = TestIssuer::start().await.expect("issuer");
    let server = server_for(&issuer, &[]).await;
    let claims = issuer.claims("auth0|alice", AUDIENCE);
    let new_kid = issuer.add_key(false).expect("key");
    let token = issuer.mint_with(
        &json!({"alg": "RS256", "kid": new_kid}),
        &claims,
        &Signing::Rsa {
            kid: new_kid.clone(),
            alg: "RS256".into(),
        },
    );
    tokio::time::sleep(Duration::from_millis(150)).await;

    // WHEN a token signed with a key not yet in the JWKS arrives
    let refused = post(&server, Some(&format!("Bearer {token}"))).await;
    // THEN it is refused naming the kid
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, UNAUTHORIZED);
    assert_eq!(
        refused.www_authenticate,
        invalid_token(&format!("the issuer's JWKS has no key with kid {new_kid}"))
    );

    // WHEN the issuer rotates to that key (and the refetch limit has passed)
    issuer.publish(&new_kid);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // THEN the same token is accepted
    let accepted = post(&server, Some(&format!("Bearer {token}"))).await;
    assert_eq!(accepted.status, 201, "{accepted:?}");
    assert_eq!(get(&server).await.status, 200);
}

#[tokio::test]
async fn route_scopes_are_read_from_scope_and_scp_and_a_mismatch_is_forbidden() {
    let issuer = TestIssuer::start().await.expect("issuer");
    let server = server_for(&issuer, &["write:items"]).await;
    let valid = issuer.claims("auth0|alice", AUDIENCE);
    let forbidden_header = Some(
        r#"Bearer scope="write:items" error="insufficient_scope" error_description="the token does not hold any of the scopes [write:items] this route requires""#
            .to_string(),
    );

    let via_scope = issuer.mint(&with(
        valid.clone(),
        json!({"scope": "read:items write:items"}),
    ));
    let answer = post(&server, Some(&format!("Bearer {via_scope}"))).await;
    assert_eq!(answer.status, 201, "scope: {answer:?}");

    let via_scp_array = issuer.mint(&with(valid.clone(), json!({"scp": ["write:items"]})));
    assert_eq!(
        post(&server, Some(&format!("Bearer {via_scp_array}")))
            .await
            .status,
        201
    );

    let via_scp_string = issuer.mint(&with(valid.clone(), json!({"scp": "openid write:items"})));
    assert_eq!(
        post(&server, Some(&format!("Bearer {via_scp_string}")))
            .await
            .status,
        201
    );

    let wrong_scope = issuer.mint(&with(valid.clone(), json!({"scope": "read:items"})));
    let answer = post(&server, Some(&format!("Bearer {wrong_scope}"))).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.body, FORBIDDEN);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(answer.www_authenticate, forbidden_header);

    let no_scope = issuer.mint(&valid);
    let answer = post(&server, Some(&format!("Bearer {no_scope}"))).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.www_authenticate, forbidden_header);

    // An invalid token on a scoped route is still 401, and names the route's scopes.
    let answer = post(&server, None).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(
            r#"Bearer scope="write:items" error="invalid_token" error_description="the request has no access token in its Authorization header""#
        )
    );
    let listed = get(&server).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["Count"], 3);
}

#[tokio::test]
async fn the_walkthrough_test_section_replayed_against_the_self_issued_dev_server() {
    // GIVEN `wishctl dev` with nothing configured: its own issuer, the in-memory store
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let (key, _) = DevKey::load_or_create(dev_dir.path()).expect("dev key");
    let key = Arc::new(key);
    let mut options = DevServerOptions::new(
        TokenIssuer::SelfIssued(Arc::clone(&key)),
        Arc::new(MemoryStore::new()),
    );
    options.listen = "127.0.0.1:0".parse().expect("addr");
    options.log = RequestLog::Off;
    let server = DevServer::start(options).await.expect("dev server");
    assert_eq!(server.key_status(), &Ok(1));

    // WHEN the list is read THEN it is empty
    let listed = get(&server).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.content_type.as_deref(), Some("application/json"));
    assert_eq!(listed.json(), json!({"Items": [], "Count": 0}));

    // WHEN an item is posted without a token THEN 401
    let refused = post(&server, None).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, UNAUTHORIZED);
    assert_eq!(
        refused.www_authenticate,
        invalid_token("the request has no access token in its Authorization header")
    );

    // WHEN it is posted with a token from `wishctl token` THEN 201 with the new id
    let minted = key
        .mint(&TokenRequest {
            issuer: self_issuer_url(server.local_addr().port()),
            subject: "auth0|walkthrough-user".into(),
            audience: DEFAULT_AUDIENCE.into(),
            scopes: Vec::new(),
            expires_in: Duration::from_secs(3600),
        })
        .expect("token");
    let created = post(&server, Some(&format!("Bearer {}", minted.token))).await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.json()["id"].as_str().expect("id").to_string();

    // THEN the next GET lists it, created by the token's subject
    let listed = get(&server).await.json();
    assert_eq!(listed["Count"], 1);
    let item = &listed["Items"][0];
    assert_eq!(item["id"], id);
    assert_eq!(item["name"], "Test Item 3");
    assert_eq!(item["description"], "Test Description 3");
    assert_eq!(item["url"], "https://www.amazon.com");
    assert_eq!(item["createdBy"], "auth0|walkthrough-user");
}

#[tokio::test]
async fn the_self_issued_server_publishes_discovery_and_its_key() {
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let (key, _) = DevKey::load_or_create(dev_dir.path()).expect("dev key");
    let kid = key.kid().to_string();
    let mut options = DevServerOptions::new(
        TokenIssuer::SelfIssued(Arc::new(key)),
        Arc::new(MemoryStore::new()),
    );
    options.listen = "127.0.0.1:0".parse().expect("addr");
    options.log = RequestLog::Off;
    let server = DevServer::start(options).await.expect("dev server");
    let issuer = self_issuer_url(server.local_addr().port());
    assert_eq!(server.settings().issuer.as_str(), issuer);

    let discovery = send(client().get(format!(
        "{}/.well-known/openid-configuration",
        server.base_url()
    )))
    .await;
    assert_eq!(discovery.status, 200);
    assert_eq!(discovery.json()["issuer"], issuer);
    assert_eq!(
        discovery.json()["jwks_uri"],
        format!("{}/.well-known/jwks.json", server.base_url())
    );

    let jwks = send(client().get(format!("{}/.well-known/jwks.json", server.base_url())))
        .await
        .json();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(jwks["keys"][0]["kid"], kid);
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["e"], "AQAB");
}

#[tokio::test]
async fn a_token_minted_before_a_restart_is_accepted_after_it() {
    // GIVEN a dev folder and a token minted with its key
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let start = || async {
        let (key, _) = DevKey::load_or_create(dev_dir.path()).expect("dev key");
        let mut options = DevServerOptions::new(
            TokenIssuer::SelfIssued(Arc::new(key)),
            Arc::new(MemoryStore::new()),
        );
        options.listen = format!("127.0.0.1:{port}").parse().expect("addr");
        options.log = RequestLog::Off;
        DevServer::start(options).await.expect("dev server")
    };
    let first = start().await;
    let (key, _) = DevKey::load_or_create(dev_dir.path()).expect("dev key");
    let token = key
        .mint(&TokenRequest {
            issuer: self_issuer_url(port),
            subject: "alice".into(),
            audience: DEFAULT_AUDIENCE.into(),
            scopes: Vec::new(),
            expires_in: Duration::from_secs(600),
        })
        .expect("token")
        .token;
    assert_eq!(post(&first, Some(&token)).await.status, 201);

    // WHEN the server restarts on the same port
    first.shutdown().await;
    let second = start().await;

    // THEN the key was reused and the token still works
    assert_eq!(post(&second, Some(&token)).await.status, 201);
}

#[tokio::test]
async fn unknown_routes_answer_404_like_api_gateway() {
    let issuer = TestIssuer::start().await.expect("issuer");
    let server = server_for(&issuer, &[]).await;
    let base = server.base_url();
    for (method, path) in [
        (reqwest::Method::GET, "/"),
        (reqwest::Method::GET, "/wish-list-service/extra"),
        (reqwest::Method::GET, "/Wish-List-Service"),
        (reqwest::Method::DELETE, "/wish-list-service"),
        (reqwest::Method::PUT, "/wish-list-service"),
        // An external issuer's discovery is not served by the dev server.
        (reqwest::Method::GET, "/.well-known/jwks.json"),
    ] {
        let answer = send(client().request(method.clone(), format!("{base}{path}"))).await;
        assert_eq!(answer.status, 404, "{method} {path}");
        assert_eq!(answer.body, r#"{"message":"Not Found"}"#, "{method} {path}");
        assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    }
}

#[tokio::test]
async fn query_strings_and_form_bodies_reach_the_handler_as_api_gateway_sends_them() {
    // A form post arrives base64-encoded; the handler decodes it and then refuses it as not JSON.
    let issuer = TestIssuer::start().await.expect("issuer");
    let server = server_for(&issuer, &[]).await;
    let token = issuer.mint(&issuer.claims("u", AUDIENCE));
    let answer = send(
        client()
            .post(format!("{}?debug=1", server.service_url()))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=lamp"),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("request body is not valid JSON")),
        "{answer:?}"
    );
    // A JSON body without a content type is base64 too, and still accepted once decoded.
    let answer = send(
        client()
            .post(server.service_url())
            .header("authorization", format!("Bearer {token}"))
            .body(ITEM),
    )
    .await;
    assert_eq!(answer.status, 201, "{answer:?}");
}

#[tokio::test]
async fn a_body_over_10_mb_is_refused_with_413() {
    let issuer = TestIssuer::start().await.expect("issuer");
    let server = server_for(&issuer, &[]).await;
    let token = issuer.mint(&issuer.claims("u", AUDIENCE));
    let answer = send(
        client()
            .post(server.service_url())
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(vec![b' '; devserver::MAX_REQUEST_BYTES + 1]),
    )
    .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.body, r#"{"message":"Request Entity Too Large"}"#);
}

#[tokio::test]
async fn each_request_is_logged_once_without_the_token() {
    let issuer = TestIssuer::start().await.expect("issuer");
    let records: Arc<std::sync::Mutex<Vec<RequestRecord>>> = Arc::default();
    let sink = Arc::clone(&records);
    let mut options = DevServerOptions::new(
        TokenIssuer::External(Issuer::parse_local(issuer.issuer()).expect("issuer")),
        Arc::new(MemoryStore::new()),
    );
    options.listen = "127.0.0.1:0".parse().expect("addr");
    options.audiences = vec![AUDIENCE.into()];
    options.log = RequestLog::Custom(Arc::new(move |record: &RequestRecord| {
        sink.lock().expect("lock").push(record.clone())
    }));
    let server = DevServer::start(options).await.expect("dev server");
    let token = issuer.mint(&issuer.claims("auth0|alice", AUDIENCE));
    let expired = issuer.mint(&with(
        issuer.claims("auth0|bob", AUDIENCE),
        json!({"exp": unix_now() - 1}),
    ));

    assert_eq!(
        post(&server, Some(&format!("Bearer {token}"))).await.status,
        201
    );
    assert_eq!(
        post(&server, Some(&format!("Bearer {expired}")))
            .await
            .status,
        401
    );
    assert_eq!(get(&server).await.status, 200);

    let records = records.lock().expect("lock").clone();
    assert_eq!(records.len(), 3);
    let lines: Vec<String> = records.iter().map(ToString::to_string).collect();
    for line in &lines {
        assert!(!line.contains(&token) && !line.contains(&expired), "{line}");
        assert!(!line.to_ascii_lowercase().contains("bearer"), "{line}");
    }
    assert_eq!(records[0].status, 201);
    assert_eq!(records[0].auth, "allowed");
    assert_eq!(records[0].sub.as_deref(), Some("auth0|alice"));
    assert_eq!(
        records[0].route_key.as_deref(),
        Some("POST /wish-list-service")
    );
    assert_eq!(records[1].auth, "denied");
    assert_eq!(records[1].reason.as_deref(), Some("the token has expired"));
    assert_eq!(records[2].auth, "none");
    assert!(
        lines[1].contains(r#"reason="the token has expired""#),
        "{}",
        lines[1]
    );
}

#[tokio::test]
async fn given_a_hanging_discovery_then_posts_are_refused_and_the_server_stays_up() {
    // GIVEN an issuer whose discovery document never arrives
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.hang_discovery(true);
    // WHEN the dev server starts THEN its key fetch times out after 1500 ms but it serves
    let server = server_for(&issuer, &[]).await;
    assert!(
        matches!(
            server.key_status(),
            Err(authorizer::FetchError::Timeout { millis: 1500, .. })
        ),
        "{:?}",
        server.key_status()
    );
    let token = issuer.mint(&issuer.claims("u", AUDIENCE));
    let refused = post(&server, Some(&format!("Bearer {token}"))).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, UNAUTHORIZED);
    let header = refused.www_authenticate.unwrap_or_default();
    assert!(
        header.starts_with(r#"Bearer scope="" error="invalid_token" error_description="the issuer's signing keys are unavailable: GET "#)
            && header.contains("timed out after 1500 ms"),
        "{header}"
    );
    assert_eq!(get(&server).await.status, 200);

    // WHEN the issuer recovers THEN tokens are accepted again
    issuer.hang_discovery(false);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let accepted = post(&server, Some(&format!("Bearer {token}"))).await;
    assert_eq!(accepted.status, 201, "{accepted:?}");
}
