//! The real `bootstrap` binary, end to end: started against the Lambda Runtime API emulator,
//! fed API Gateway payload 2.0 events, storing items in moto's DynamoDB.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use stack::Architecture;
use testkit::moto::{aws_env, MotoServer, MotoSession};
use testkit::runtime::{Outcome, RuntimeEmulator};
use wishlist::event::{
    Authorizer, Http, HttpApiEvent, HttpApiResponse, JwtAuthorizer, RequestContext,
};
use wishlist::DynamoStore;

const TABLE: &str = "wishctl-e2e-items";
const TIMEOUT: Duration = Duration::from_secs(20);

/// A payload 2.0 event as API Gateway sends it for `method /wish-list-service`.
fn event(method: &str, body: Option<&str>, sub: Option<&str>) -> HttpApiEvent {
    let route_key = format!("{method} /wish-list-service");
    HttpApiEvent {
        version: "2.0".into(),
        route_key: route_key.clone(),
        raw_path: "/wish-list-service".into(),
        raw_query_string: String::new(),
        headers: BTreeMap::from([
            ("content-type".into(), "application/json".into()),
            (
                "host".into(),
                "abc123.execute-api.us-east-1.amazonaws.com".into(),
            ),
        ]),
        request_context: RequestContext {
            account_id: "123456789012".into(),
            api_id: "abc123".into(),
            authorizer: sub.map(|sub| Authorizer {
                jwt: JwtAuthorizer {
                    claims: BTreeMap::from([
                        ("sub".into(), sub.into()),
                        ("aud".into(), "[https://auth0-jwt-authorizer]".into()),
                        ("iss".into(), "https://tenant.auth0.com/".into()),
                    ]),
                    scopes: None,
                },
            }),
            domain_name: "abc123.execute-api.us-east-1.amazonaws.com".into(),
            domain_prefix: "abc123".into(),
            http: Http {
                method: method.into(),
                path: "/wish-list-service".into(),
                protocol: "HTTP/1.1".into(),
                source_ip: "192.0.2.1".into(),
                user_agent: "curl/8.5.0".into(),
            },
            request_id: "apigw-request-id".into(),
            route_key,
            stage: "$default".into(),
            time: "25/Nov/2026:10:00:00 +0000".into(),
            time_epoch: 1_795_600_800_000,
        },
        body: body.map(str::to_string),
        is_base64_encoded: false,
        ..HttpApiEvent::default()
    }
}

struct Function {
    emulator: RuntimeEmulator,
    // Held so that the process lives exactly as long as this value (kill_on_drop).
    _child: tokio::process::Child,
}

impl Function {
    async fn start(session: &MotoSession, binary: &Path, wrapper: Option<&str>) -> Function {
        let config = session.sdk_config().await;
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), TABLE)
            .create_table_if_missing()
            .await
            .expect("creating the table");
        let emulator = RuntimeEmulator::start().await.expect("emulator");
        let mut env = aws_env(session.endpoint());
        env.push(("TABLE_NAME", TABLE.to_string()));
        let child = emulator
            .spawn_with(wrapper, binary, &env)
            .expect("starting bootstrap");
        Function {
            emulator,
            _child: child,
        }
    }

    async fn call(&self, event: &HttpApiEvent) -> HttpApiResponse {
        self.call_with_id(&uuid_like(), event).await
    }

    async fn call_with_id(&self, request_id: &str, event: &HttpApiEvent) -> HttpApiResponse {
        let outcome = self
            .emulator
            .invoke_with_id(request_id, serde_json::to_value(event).unwrap(), TIMEOUT)
            .await
            .expect("invocation");
        serde_json::from_value(outcome.response()).expect("a payload 2.0 response")
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!(
        "00000000-0000-4000-8000-{:012}",
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

fn body(response: &HttpApiResponse) -> Value {
    serde_json::from_str(&response.body).unwrap_or_else(|_| panic!("JSON body: {}", response.body))
}

fn host_bootstrap() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bootstrap"))
}

/// The release musl binary shipped in the zip; built here if the test script did not build it.
fn lambda_bootstrap(arch: Architecture) -> PathBuf {
    let root = testkit::workspace_root();
    let path = artifact::bootstrap_path(arch, &root);
    if path.exists() {
        return path;
    }
    artifact::build_bootstrap(arch, &root).expect("building bootstrap (run `cargo xtask dist`)")
}

async fn walkthrough_round_trip(function: &Function) {
    // GIVEN an empty table, GET answers 200 with no items
    let listed = function.call(&event("GET", None, None)).await;
    assert_eq!(listed.status_code, 200);
    assert_eq!(
        listed.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(body(&listed), json!({"Items": [], "Count": 0}));

    // WHEN an authorized POST arrives
    let post = event(
        "POST",
        Some(
            r#"{"name": "Test Item", "description": "Test Description", "url": "https://www.amazon.com"}"#,
        ),
        Some("auth0|alice"),
    );
    let request_id = uuid_like();
    let created = function.call_with_id(&request_id, &post).await;

    // THEN it answers 201 with the invocation's request id, and the next GET shows the item
    assert_eq!(created.status_code, 201, "{}", created.body);
    assert_eq!(body(&created), json!({"id": request_id}));
    let listed = body(&function.call(&event("GET", None, None)).await);
    assert_eq!(listed["Count"], 1);
    assert_eq!(
        listed["Items"][0],
        json!({
            "id": request_id,
            "name": "Test Item",
            "description": "Test Description",
            "url": "https://www.amazon.com",
            "createdAt": "2026-11-25T10:00:00.000Z",
            "createdBy": "auth0|alice",
        })
    );
}

#[tokio::test]
async fn get_and_post_round_trip_through_the_real_binary() {
    let session = MotoServer::shared().session().await;
    let function = Function::start(&session, &host_bootstrap(), None).await;
    walkthrough_round_trip(&function).await;
}

#[tokio::test]
async fn bad_requests_get_json_4xx_answers_and_the_process_keeps_serving() {
    let session = MotoServer::shared().session().await;
    let function = Function::start(&session, &host_bootstrap(), None).await;

    let cases: Vec<(HttpApiEvent, u16, &str)> = vec![
        (
            event("POST", Some("{not json"), Some("u")),
            400,
            "request body is not valid JSON",
        ),
        (
            event("POST", Some("[1,2]"), Some("u")),
            400,
            "request body must be a JSON object, not an array",
        ),
        (
            event("POST", Some(r#"{"description":"x"}"#), Some("u")),
            400,
            "name is required",
        ),
        (
            event("POST", Some(r#"{"name":7}"#), Some("u")),
            400,
            "name must be a string, not a number",
        ),
        (
            event(
                "POST",
                Some(&format!(r#"{{"name":"{}"}}"#, "n".repeat(201))),
                Some("u"),
            ),
            400,
            "name must be at most 200 characters, got 201",
        ),
        (
            event("POST", Some(r#"{"name":"x","url":"ftp://x"}"#), Some("u")),
            400,
            "url must be an absolute http or https URL",
        ),
        (
            event(
                "POST",
                Some(&format!(r#"{{"name":"{}"}}"#, "n".repeat(70_000))),
                Some("u"),
            ),
            413,
            "the limit is 65536 bytes",
        ),
        (
            event("POST", None, Some("u")),
            400,
            "request body is required",
        ),
    ];
    for (request, status, message) in cases {
        let response = function.call(&request).await;
        assert_eq!(response.status_code, status, "{}", response.body);
        let text = body(&response)["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(text.contains(message), "expected {message:?} in {text:?}");
    }

    let delete = function.call(&event("DELETE", None, None)).await;
    assert_eq!(delete.status_code, 405);
    assert_eq!(
        delete.headers.get("allow").map(String::as_str),
        Some("GET, POST")
    );

    // Nothing invalid was written.
    let listed = body(&function.call(&event("GET", None, None)).await);
    assert_eq!(listed["Count"], 0);
}

#[tokio::test]
async fn base64_encoded_bodies_are_decoded_and_the_body_never_sets_the_creator() {
    let session = MotoServer::shared().session().await;
    let function = Function::start(&session, &host_bootstrap(), None).await;
    let raw = r#"{"name":"encoded"}"#;
    let mut post = event(
        "POST",
        Some(&base64::engine::general_purpose::STANDARD.encode(raw)),
        None,
    );
    post.is_base64_encoded = true;
    let created = function.call(&post).await;
    assert_eq!(created.status_code, 201, "{}", created.body);

    let forged = function
        .call(&event(
            "POST",
            Some(r#"{"name":"x","createdBy":"mallory"}"#),
            Some("alice"),
        ))
        .await;
    assert_eq!(forged.status_code, 400);

    let listed = body(&function.call(&event("GET", None, None)).await);
    assert_eq!(listed["Count"], 1);
    assert_eq!(listed["Items"][0]["name"], "encoded");
    assert!(listed["Items"][0].get("createdBy").is_none());
}

#[tokio::test]
async fn a_dynamodb_failure_is_a_502_and_not_a_crash() {
    let session = MotoServer::shared().session().await;
    let emulator = RuntimeEmulator::start().await.unwrap();
    let mut env = aws_env(session.endpoint());
    env.push(("TABLE_NAME", "no-such-table".to_string()));
    let mut child = emulator.spawn_function(&host_bootstrap(), &env).unwrap();
    for _ in 0..2 {
        let outcome = emulator
            .invoke(
                serde_json::to_value(event("GET", None, None)).unwrap(),
                TIMEOUT,
            )
            .await
            .unwrap();
        let response: HttpApiResponse = serde_json::from_value(outcome.response()).unwrap();
        assert_eq!(response.status_code, 502);
        assert!(body(&response)["message"]
            .as_str()
            .unwrap()
            .contains("store failed"));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "bootstrap must still be running"
    );
}

#[tokio::test]
async fn a_missing_table_name_is_reported_as_an_init_error() {
    let emulator = RuntimeEmulator::start().await.unwrap();
    let mut child = emulator.spawn_function(&host_bootstrap(), &[]).unwrap();
    let (report, error_type) = emulator
        .wait_init_error(TIMEOUT)
        .await
        .expect("an /init/error report");
    assert_eq!(error_type.as_deref(), Some("Runtime.InitError"));
    assert!(report["errorMessage"]
        .as_str()
        .unwrap()
        .contains("TABLE_NAME is not set"));
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success());
    assert!(matches!(
        emulator.invoke(json!({}), Duration::from_millis(200)).await,
        Err(_) | Ok(Outcome::Error { .. })
    ));
}

#[tokio::test]
async fn the_x86_64_lambda_binary_serves_the_walkthrough() {
    let session = MotoServer::shared().session().await;
    let function = Function::start(&session, &lambda_bootstrap(Architecture::X86_64), None).await;
    walkthrough_round_trip(&function).await;
}

#[tokio::test]
async fn the_arm64_lambda_binary_serves_the_walkthrough_under_qemu() {
    let session = MotoServer::shared().session().await;
    let function = Function::start(
        &session,
        &lambda_bootstrap(Architecture::Arm64),
        Some("qemu-aarch64"),
    )
    .await;
    walkthrough_round_trip(&function).await;
}
