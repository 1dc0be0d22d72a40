//! Hostile events through the real `bootstrap`: every malformed event the Lambda Runtime API
//! could deliver gets a 4xx/5xx JSON answer (or, for JSON the runtime itself cannot read, the
//! runtime's error report, which API Gateway turns into a 500), and the same process then
//! serves a good event. Nothing a bad event carries is ever stored.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use stack::Architecture;
use testkit::runtime::{Outcome, RuntimeEmulator};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A good payload 2.0 event for `method /wish-list-service` (POST with the authorizer's claims).
fn good(method: &str, body: Option<&str>) -> Value {
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} /wish-list-service"),
        "rawPath": "/wish-list-service",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "authorization": "Bearer abc.def.ghi"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": method, "path": "/wish-list-service", "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "curl/8"},
            "requestId": "apigw-id", "routeKey": format!("{method} /wish-list-service"),
            "stage": "$default", "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 1_795_600_800_000i64
        },
        "isBase64Encoded": false
    });
    if method == "POST" {
        event["requestContext"]["authorizer"] =
            json!({"jwt": {"claims": {"sub": "auth0|alice"}, "scopes": null}});
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

/// `event` with the field at `pointer` set (added when missing).
fn set(mut event: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = if parent.is_empty() {
        &mut event
    } else {
        event.pointer_mut(parent).unwrap()
    };
    parent.as_object_mut().unwrap().insert(key.into(), value);
    event
}

fn remove(mut event: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = if parent.is_empty() {
        &mut event
    } else {
        event.pointer_mut(parent).unwrap()
    };
    parent.as_object_mut().unwrap().remove(key);
    event
}

fn nested(depth: usize) -> Value {
    let mut value = json!("bottom");
    for _ in 0..depth {
        value = json!([value]);
    }
    value
}

/// Each malformed event, with what it tests.
fn hostile_events() -> Vec<(&'static str, Value)> {
    let post = good("POST", Some(r#"{"name":"x"}"#));
    let many_headers: serde_json::Map<String, Value> = (0..2000)
        .map(|i| (format!("x-h-{i}"), json!("v".repeat(100))))
        .collect();
    vec![
        ("null event", Value::Null),
        ("a number", json!(42)),
        ("a string", json!("GET /wish-list-service")),
        ("an array", json!([post.clone()])),
        ("an empty object", json!({})),
        (
            "payload format 1.0",
            json!({"version": "1.0", "httpMethod": "POST", "path": "/wish-list-service",
                   "requestContext": {"requestId": "x"}, "body": "{\"name\":\"x\"}"}),
        ),
        (
            "version is a number",
            set(post.clone(), "/version", json!(2.0)),
        ),
        ("no requestContext", remove(post.clone(), "/requestContext")),
        (
            "requestContext is a string",
            set(post.clone(), "/requestContext", json!("ctx")),
        ),
        (
            "requestContext.http missing",
            remove(post.clone(), "/requestContext/http"),
        ),
        (
            "method is a number",
            set(post.clone(), "/requestContext/http/method", json!(1)),
        ),
        (
            "method is an object",
            set(post.clone(), "/requestContext/http/method", json!({"a": 1})),
        ),
        (
            "method with spaces",
            set(
                post.clone(),
                "/requestContext/http/method",
                json!("POST /x HTTP/1.1"),
            ),
        ),
        (
            "method of 10,000 characters",
            set(
                post.clone(),
                "/requestContext/http/method",
                json!("P".repeat(10_000)),
            ),
        ),
        (
            "no path anywhere",
            remove(
                remove(
                    remove(post.clone(), "/routeKey"),
                    "/requestContext/http/path",
                ),
                "/rawPath",
            ),
        ),
        ("rawPath is a number", {
            let event = remove(post.clone(), "/routeKey");
            let event = remove(event, "/requestContext/http/path");
            set(event, "/rawPath", json!(7))
        }),
        (
            "body is an object",
            set(post.clone(), "/body", json!({"name": "x"})),
        ),
        ("body is an array", set(post.clone(), "/body", json!([1]))),
        (
            "isBase64Encoded is a string",
            set(post.clone(), "/isBase64Encoded", json!("true")),
        ),
        (
            "broken base64: bad characters",
            set(
                set(post.clone(), "/isBase64Encoded", json!(true)),
                "/body",
                json!("eyJuYW1lIjoieCJ9%%%"),
            ),
        ),
        (
            "broken base64: truncated",
            set(
                set(post.clone(), "/isBase64Encoded", json!(true)),
                "/body",
                json!("eyJuYW1lIjoieCJ9e"),
            ),
        ),
        (
            "broken base64: unicode",
            set(
                set(post.clone(), "/isBase64Encoded", json!(true)),
                "/body",
                json!("ëyJ=="),
            ),
        ),
        (
            "base64 of invalid UTF-8",
            set(
                set(post.clone(), "/isBase64Encoded", json!(true)),
                "/body",
                json!("//79"),
            ),
        ),
        (
            "a 5 MB text body",
            set(
                post.clone(),
                "/body",
                json!(format!(r#"{{"name":"{}"}}"#, "n".repeat(5_000_000))),
            ),
        ),
        (
            "a 4 MB base64 body",
            set(
                set(post.clone(), "/isBase64Encoded", json!(true)),
                "/body",
                json!("QUFB".repeat(1_000_000)),
            ),
        ),
        (
            "queryStringParameters values are numbers",
            set(
                good("GET", None),
                "/queryStringParameters",
                json!({"limit": 5}),
            ),
        ),
        (
            "queryStringParameters is a list",
            set(
                good("GET", None),
                "/queryStringParameters",
                json!(["limit"]),
            ),
        ),
        (
            "rawQueryString is an object",
            set(good("GET", None), "/rawQueryString", json!({"limit": "5"})),
        ),
        (
            "a forged cursor",
            set(
                good("GET", None),
                "/queryStringParameters",
                json!({"cursor": "MTpub3QtYW4taWQ%"}),
            ),
        ),
        (
            "a limit of minus one",
            set(
                good("GET", None),
                "/queryStringParameters",
                json!({"limit": "-1"}),
            ),
        ),
        (
            "claims without any JWT authorizer",
            remove(post.clone(), "/requestContext/authorizer"),
        ),
        (
            "claims that are a string",
            set(
                post.clone(),
                "/requestContext/authorizer/jwt/claims",
                json!("sub=mallory"),
            ),
        ),
        (
            "claims that are empty",
            set(
                post.clone(),
                "/requestContext/authorizer/jwt/claims",
                json!({}),
            ),
        ),
        (
            "odd headers: values of every type, an empty name",
            set(
                set(
                    post.clone(),
                    "/headers",
                    json!({"": [1, {"a": null}], "content-type": 7}),
                ),
                "/body",
                json!("not json"),
            ),
        ),
        (
            "2,000 headers and an invalid body",
            set(
                set(post.clone(), "/headers", Value::Object(many_headers)),
                "/body",
                json!("{"),
            ),
        ),
        (
            "headers is a string, body a JSON string",
            set(
                set(post.clone(), "/headers", json!("h")),
                "/body",
                json!("\"x\""),
            ),
        ),
        (
            "timeEpoch and requestId of the wrong type, invalid body",
            set(
                set(
                    set(post.clone(), "/requestContext/timeEpoch", json!("later")),
                    "/requestContext/requestId",
                    json!([1]),
                ),
                "/body",
                json!("[]"),
            ),
        ),
        (
            "a DELETE",
            set(
                good("DELETE", None),
                "/requestContext/http/method",
                json!("DELETE"),
            ),
        ),
        (
            "another path",
            set(
                set(good("GET", None), "/routeKey", json!("$default")),
                "/rawPath",
                json!("/../etc/passwd"),
            ),
        ),
        (
            "JSON nested 200 deep",
            json!({"requestContext": nested(200)}),
        ),
        ("an array nested 1,000 deep", nested(1000)),
    ]
}

fn is_running(child: &mut tokio::process::Child) -> bool {
    child.try_wait().unwrap().is_none()
}

async fn every_hostile_event_is_answered_and_the_process_keeps_serving(
    binary: &Path,
    wrapper: Option<&str>,
) {
    let emulator = RuntimeEmulator::start().await.unwrap();
    let env = [("WISHLIST_STORE", "memory".to_string())];
    let mut child = emulator.spawn_with(wrapper, binary, &env).unwrap();

    for (label, event) in hostile_events() {
        let outcome = emulator.invoke(event, TIMEOUT).await;
        let outcome = outcome.unwrap_or_else(|err| panic!("{label}: no answer: {err}"));
        match outcome {
            Outcome::Response(response) => {
                let status = response["statusCode"].as_u64().unwrap_or(0);
                assert!((400..600).contains(&status), "{label}: status {status}");
                assert_eq!(
                    response["headers"]["content-type"], "application/json",
                    "{label}"
                );
                let body: Value = serde_json::from_str(response["body"].as_str().unwrap())
                    .unwrap_or_else(|_| panic!("{label}: body is not JSON: {response}"));
                assert!(body["message"].is_string(), "{label}: {body}");
            }
            Outcome::Error { body, .. } => {
                // Only JSON the runtime cannot read into a value at all (nesting past
                // serde_json's recursion limit) ends here, never a panic.
                let message = body["errorMessage"].as_str().unwrap_or_default();
                assert!(
                    message.contains("failed to deserialize") && !message.contains("panicked"),
                    "{label}: {body}"
                );
                assert!(label.contains("nested"), "{label}: {body}");
            }
        }
        assert!(is_running(&mut child), "bootstrap exited after: {label}");
    }

    // A good event is still served by the same process, and nothing was stored before it.
    let created = emulator
        .invoke(good("POST", Some(r#"{"name":"after the storm"}"#)), TIMEOUT)
        .await
        .unwrap()
        .response();
    assert_eq!(created["statusCode"], 201, "{created}");
    let listed = emulator
        .invoke(good("GET", None), TIMEOUT)
        .await
        .unwrap()
        .response();
    let listed: Value = serde_json::from_str(listed["body"].as_str().unwrap()).unwrap();
    assert_eq!(listed["Count"], 1, "{listed}");
    assert_eq!(listed["Items"][0]["name"], "after the storm");
    assert!(is_running(&mut child));
}

#[tokio::test]
async fn hostile_events_through_the_debug_binary() {
    every_hostile_event_is_answered_and_the_process_keeps_serving(
        Path::new(env!("CARGO_BIN_EXE_bootstrap")),
        None,
    )
    .await;
}

/// The shipped build aborts on any panic (`panic = "abort"`), so this is the run that would
/// show a crash as a dead process.
#[tokio::test]
async fn hostile_events_through_the_shipped_x86_64_binary() {
    every_hostile_event_is_answered_and_the_process_keeps_serving(
        &lambda_bootstrap(Architecture::X86_64),
        None,
    )
    .await;
}

fn lambda_bootstrap(arch: Architecture) -> PathBuf {
    let root = testkit::workspace_root();
    let path = artifact::bootstrap_path(arch, &root);
    if path.exists() {
        return path;
    }
    artifact::build_bootstrap(arch, &root).expect("building bootstrap (run `cargo xtask dist`)")
}
