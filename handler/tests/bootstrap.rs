//! The real `bootstrap` binary, end to end: started against the Lambda Runtime API emulator,
//! fed API Gateway payload 2.0 events, storing items in moto's DynamoDB.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use stack::Architecture;
use testkit::aws_proxy::{AwsProxy, ModelSettings};
use testkit::moto::{aws_env, MotoServer, MotoSession};
use testkit::runtime::{Outcome, RuntimeEmulator};
use wishlist::event::{
    Authorizer, Http, HttpApiEvent, HttpApiResponse, JwtAuthorizer, RequestContext,
};
use wishlist::DynamoStore;

const TABLE: &str = "wishctl-e2e-items";
const TIMEOUT: Duration = Duration::from_secs(20);
/// A 5 MB page scans a few MB out of moto, a Python server: seconds, more on a busy machine.
const PAGE_TIMEOUT: Duration = Duration::from_secs(120);

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
        Function::start_on(session, session.endpoint(), binary, wrapper).await
    }

    /// [`Function::start`] with `endpoint` (say, a proxy in front of moto) as its AWS endpoint.
    async fn start_on(
        session: &MotoSession,
        endpoint: &str,
        binary: &Path,
        wrapper: Option<&str>,
    ) -> Function {
        let config = session.sdk_config().await;
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), TABLE)
            .create_table_if_missing()
            .await
            .expect("creating the table");
        let emulator = RuntimeEmulator::start().await.expect("emulator");
        let mut env = aws_env(endpoint);
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
        Some("auth0|alice"),
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

    let mut broken = event("POST", Some("eyJuYW1lIjoi%%%"), Some("alice"));
    broken.is_base64_encoded = true;
    let refused = function.call(&broken).await;
    assert_eq!(refused.status_code, 400, "{}", refused.body);
    assert!(body(&refused)["message"]
        .as_str()
        .unwrap()
        .contains("not valid base64"));

    let listed = body(&function.call(&event("GET", None, None)).await);
    assert_eq!(listed["Count"], 1);
    assert_eq!(listed["Items"][0]["name"], "encoded");
    assert_eq!(listed["Items"][0]["createdBy"], "auth0|alice");
}

#[tokio::test]
async fn a_post_without_authorizer_claims_is_refused_401_and_never_stored() {
    // GIVEN a POST that reaches the function with no authorizer at all (a function URL, or a
    // route whose authorizer was removed behind wishctl's back)
    let session = MotoServer::shared().session().await;
    let function = Function::start(&session, &host_bootstrap(), None).await;
    let anonymous = event("POST", Some(r#"{"name":"anonymous"}"#), None);
    // WHEN it is invoked
    let refused = function.call(&anonymous).await;
    // THEN it answers 401 and the table stays empty
    assert_eq!(refused.status_code, 401, "{}", refused.body);
    assert_eq!(body(&refused), json!({"message": "Unauthorized"}));
    let listed = body(&function.call(&event("GET", None, None)).await);
    assert_eq!(listed["Count"], 0);
}

/// Writes `count` items of about 2.2 KB of JSON each straight into the table.
async fn fill_table(session: &MotoSession, count: usize) {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    let client = aws_sdk_dynamodb::Client::new(&session.sdk_config().await);
    let description = "d".repeat(wishlist::MAX_DESCRIPTION_CHARS);
    let ids: Vec<String> = (0..count).map(|i| format!("bulk-{i:05}")).collect();
    for chunk in ids.chunks(25) {
        let writes = chunk
            .iter()
            .map(|id| {
                let put = PutRequest::builder()
                    .item("id", AttributeValue::S(id.clone()))
                    .item("name", AttributeValue::S(format!("item {id}")))
                    .item("description", AttributeValue::S(description.clone()))
                    .item("url", AttributeValue::S("https://example.com/x".into()))
                    .item(
                        "createdAt",
                        AttributeValue::S("2026-11-25T10:00:00.000Z".into()),
                    )
                    .build()
                    .unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let written = client
            .batch_write_item()
            .request_items(TABLE, writes)
            .send()
            .await
            .expect("batch write");
        assert!(written.unprocessed_items().is_none_or(|u| u.is_empty()));
    }
}

/// Follows `NextCursor` from the first GET (with `limit` when given) and returns every id seen,
/// the number of pages, and the largest response (the Lambda's JSON) in bytes. A 503 saying to
/// retry is retried with the same cursor, as a client would, up to `retries` times in all.
async fn follow_pages(
    function: &Function,
    limit: Option<usize>,
    mut retries: usize,
) -> (Vec<String>, usize, usize) {
    let (mut ids, mut pages, mut largest) = (Vec::new(), 0, 0);
    let mut cursor: Option<String> = None;
    loop {
        let mut get = event("GET", None, None);
        let mut query = BTreeMap::new();
        if let Some(limit) = limit {
            query.insert("limit".to_string(), limit.to_string());
        }
        if let Some(cursor) = &cursor {
            query.insert("cursor".to_string(), cursor.clone());
        }
        get.raw_query_string = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        get.query_string_parameters = (!query.is_empty()).then_some(query);
        let outcome = function
            .emulator
            .invoke(serde_json::to_value(&get).unwrap(), PAGE_TIMEOUT)
            .await
            .expect("invocation")
            .response();
        largest = largest.max(outcome.to_string().len());
        let response: HttpApiResponse = serde_json::from_value(outcome).unwrap();
        if response.status_code == 503 && retries > 0 {
            assert!(response.body.contains("retry"), "{}", response.body);
            retries -= 1;
            continue;
        }
        assert_eq!(
            response.status_code,
            200,
            "{}",
            response.body.chars().take(200).collect::<String>()
        );
        let page = body(&response);
        let items = page["Items"].as_array().unwrap();
        assert_eq!(page["Count"], items.len());
        ids.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        pages += 1;
        assert!(pages < 100, "pagination does not end");
        match page.get("NextCursor") {
            Some(next) => cursor = Some(next.as_str().unwrap().to_string()),
            None => return (ids, pages, largest),
        }
    }
}

#[tokio::test]
async fn get_pages_past_6_mb_of_items_and_every_answer_fits_the_lambda_limit() {
    // GIVEN 3,000 items of 2,000-character descriptions: about 6.6 MB of JSON, more than a
    // Lambda may return (6 MB)
    let session = MotoServer::shared().session().await;
    let function = Function::start(&session, &host_bootstrap(), None).await;
    let count = 3_000;
    fill_table(&session, count).await;

    // WHEN a client GETs without a limit and follows NextCursor
    let (mut ids, pages, largest) = follow_pages(&function, None, 0).await;
    // THEN it gets every item exactly once, in two pages, each answer within the 5 MB budget
    eprintln!("{count} items: {pages} pages, largest answer {largest} bytes");
    assert_eq!(pages, 2, "one budget-sized page, then the rest");
    assert!(
        largest <= wishlist::MAX_LIST_RESPONSE_BYTES,
        "{largest} bytes"
    );
    assert!(
        largest > 4_000_000,
        "the first page fills the budget: {largest}"
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count);

    // AND with limit=1000 it gets three pages, the last one without a cursor
    let (mut ids, pages, _) = follow_pages(&function, Some(1000), 0).await;
    assert_eq!(pages, 3);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count);

    // AND a damaged cursor or a bad limit is a 400 naming the parameter
    for (query, message) in [
        ("cursor", "cursor is not valid"),
        ("limit", "limit must be a whole number from 1 to 1000"),
    ] {
        let mut get = event("GET", None, None);
        get.query_string_parameters = Some(BTreeMap::from([(query.to_string(), "%%".to_string())]));
        let response = function.call(&get).await;
        assert_eq!(response.status_code, 400);
        assert!(body(&response)["message"]
            .as_str()
            .unwrap()
            .starts_with(message));
    }
}

#[tokio::test]
async fn a_slow_dynamodb_gets_partial_pages_with_cursors_and_nothing_is_lost_or_repeated() {
    // GIVEN 4,000 items of 2,000-character descriptions (about 500 per 1 MB Scan; the 5 MB
    // size budget of a page holds about 2,250), and bootstrap whose DynamoDB answers every call
    // at least 1.3 s late: at most 3 Scans (about 1,500 items) fit the page's 5 s time budget
    let session = MotoServer::shared().session().await;
    let proxy = AwsProxy::start(
        session.endpoint(),
        ModelSettings::latency_only(Duration::from_millis(1300)),
    )
    .await
    .unwrap();
    let function = Function::start_on(&session, proxy.endpoint(), &host_bootstrap(), None).await;
    let count = 4_000;
    fill_table(&session, count).await;

    // WHEN a client GETs without a limit and follows NextCursor (retrying a 503, the answer
    // when not one item could be read in time: moto on a busy machine)
    let (ids, pages, largest) = follow_pages(&function, None, 5).await;

    // THEN the pages were cut by time, not size (cut by size alone, 4,000 items take two
    // pages), and every item came back exactly once
    let scans = proxy
        .records()
        .iter()
        .filter(|r| r.call.operation == "Scan")
        .count();
    eprintln!("{count} items at a slow DynamoDB: {pages} pages, {scans} Scans, largest answer {largest} bytes");
    assert!(pages >= 3, "{pages} pages");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (count, count));
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
async fn a_dynamodb_that_never_answers_gets_503_before_the_functions_timeout_and_no_hang() {
    // GIVEN bootstrap whose DynamoDB endpoint accepts connections and never answers
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", stalled.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = stalled.accept().await {
            held.push(stream);
        }
    });
    let emulator = RuntimeEmulator::start().await.unwrap();
    let mut env = aws_env(&endpoint);
    env.push(("TABLE_NAME", TABLE.to_string()));
    let mut child = emulator.spawn_function(&host_bootstrap(), &env).unwrap();
    // WHEN a GET and a POST arrive
    let post = event("POST", Some(r#"{"name": "n"}"#), Some("auth0|alice"));
    for request in [event("GET", None, None), post] {
        // THEN each is answered (the emulator waits 20 s; the Lambda's default timeout is 10 s,
        // the client's operation timeout 6 s) with a 503 that says to retry
        let outcome = emulator
            .invoke(serde_json::to_value(&request).unwrap(), TIMEOUT)
            .await
            .expect("an answer instead of a hung invocation");
        let response: HttpApiResponse = serde_json::from_value(outcome.response()).unwrap();
        assert_eq!(response.status_code, 503, "{}", response.body);
        assert!(
            body(&response)["message"]
                .as_str()
                .unwrap()
                .contains("retry"),
            "{}",
            response.body
        );
    }
    // AND the process serves on
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
