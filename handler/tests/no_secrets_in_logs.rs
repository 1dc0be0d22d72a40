//! No token or secret reaches `bootstrap`'s logs, even at `AWS_LAMBDA_LOG_LEVEL=trace`, where
//! the Lambda runtime would log every raw event (with its `Authorization` header) and the AWS
//! SDK every signed request (with the session token).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use testkit::moto::{aws_env, MotoServer};
use testkit::runtime::RuntimeEmulator;
use wishlist::DynamoStore;

const TIMEOUT: Duration = Duration::from_secs(20);
const TABLE: &str = "wishctl-logs-items";
const BEARER_TOKEN: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRUNSRVQtVE9LRU4tUEFZTE9BRCJ9.SECRET-SIGNATURE-f00d";
const SESSION_TOKEN: &str = "SECRET-SESSION-TOKEN-5e55";
const SECRET_KEY: &str = "SECRET-ACCESS-KEY-c0ffee";
const COOKIE: &str = "session=SECRET-COOKIE-beef";

fn event(method: &str, body: Option<&str>, base64: bool) -> Value {
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} /wish-list-service"),
        "rawPath": "/wish-list-service",
        "rawQueryString": "",
        "cookies": [COOKIE],
        "headers": {
            "authorization": format!("Bearer {BEARER_TOKEN}"),
            "content-type": "application/json",
        },
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123",
            "authorizer": {"jwt": {"claims": {"sub": "auth0|alice", "iss": "https://t.example/"}, "scopes": null}},
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": method, "path": "/wish-list-service", "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "curl/8"},
            "requestId": "apigw-id", "routeKey": format!("{method} /wish-list-service"),
            "stage": "$default", "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 1_795_600_800_000i64
        },
        "isBase64Encoded": base64
    });
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

#[tokio::test]
async fn no_token_or_secret_reaches_the_log_at_trace_level() {
    // GIVEN bootstrap at TRACE against moto's DynamoDB, with credentials that hold a session
    // token, and events that carry a bearer token and a cookie
    let session = MotoServer::shared().session().await;
    DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&session.sdk_config().await),
        TABLE,
    )
    .create_table_if_missing()
    .await
    .unwrap();
    let emulator = RuntimeEmulator::start().await.unwrap();
    let mut env = aws_env(session.endpoint());
    env.retain(|(name, _)| *name != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()));
    env.push(("AWS_SESSION_TOKEN", SESSION_TOKEN.to_string()));
    env.push(("TABLE_NAME", TABLE.to_string()));
    env.push(("AWS_LAMBDA_LOG_LEVEL", "trace".to_string()));
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", emulator.runtime_api())
        .env("AWS_LAMBDA_FUNCTION_NAME", "wishctl-test-api")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // WHEN it serves good and bad requests (the store is called for each good one)
    let events = [
        (event("POST", Some(r#"{"name":"Lamp"}"#), false), 201),
        (event("GET", None, false), 200),
        (event("POST", Some("{not json"), false), 400),
        (event("POST", Some("%%%"), true), 400),
        (json!({"headers": {"authorization": BEARER_TOKEN}}), 400),
    ];
    for (event, status) in events {
        let response = emulator.invoke(event, TIMEOUT).await.unwrap().response();
        assert_eq!(response["statusCode"], status, "{response}");
    }
    let mut child = child;
    child.start_kill().unwrap();
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // THEN the log has its request lines and our own DEBUG lines (the level is in force)...
    assert_eq!(log.matches(r#""message":"request""#).count(), 5, "{log}");
    assert!(log.contains(r#""level":"DEBUG""#), "{log}");
    // ...and none of the secrets, nor any piece of the token
    for secret in [
        BEARER_TOKEN,
        "SECRET-SIGNATURE",
        "eyJzdWIiOiJTRUNSRVQtVE9LRU4tUEFZTE9BRCJ9",
        SESSION_TOKEN,
        SECRET_KEY,
        "SECRET-COOKIE",
        "Bearer",
    ] {
        assert!(
            !log.contains(secret),
            "{secret:?} leaked into the log:\n{log}"
        );
    }
}
