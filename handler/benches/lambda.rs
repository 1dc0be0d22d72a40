//! Start-up and warm-invocation cost of the real `bootstrap`, through the Lambda Runtime API
//! emulator. Run with `cargo bench -p handler --bench lambda` (after `cargo xtask dist`).
//!
//! - init: process start until its first `GET /runtime/invocation/next`, over `STARTS` starts;
//! - warm: one invocation round trip (event out, response back), with the in-memory store and
//!   with moto's DynamoDB, `INVOCATIONS` each after a warm-up.
//!
//! Binary: `$BOOTSTRAP` or the x86_64 release (lambda profile) build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stack::Architecture;
use testkit::moto::{aws_env, MotoServer};
use testkit::runtime::RuntimeEmulator;
use wishlist::event::{Authorizer, Http, HttpApiEvent, JwtAuthorizer, RequestContext};
use wishlist::DynamoStore;

const STARTS: usize = 30;
const INVOCATIONS: usize = 300;
const TIMEOUT: Duration = Duration::from_secs(20);

fn event(method: &str, body: Option<&str>) -> serde_json::Value {
    let event = HttpApiEvent {
        version: "2.0".into(),
        route_key: format!("{method} /wish-list-service"),
        raw_path: "/wish-list-service".into(),
        headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
        request_context: RequestContext {
            http: Http {
                method: method.into(),
                path: "/wish-list-service".into(),
                ..Http::default()
            },
            request_id: "bench".into(),
            // POST is behind the JWT authorizer: API Gateway passes its claims.
            authorizer: (method == "POST").then(|| Authorizer {
                jwt: JwtAuthorizer {
                    claims: BTreeMap::from([("sub".into(), "auth0|bench".into())]),
                    scopes: None,
                },
            }),
            stage: "$default".into(),
            time_epoch: 1_795_600_800_000,
            ..RequestContext::default()
        },
        body: body.map(str::to_string),
        ..HttpApiEvent::default()
    };
    serde_json::to_value(event).expect("event")
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Start-up with `env` (the DynamoDB configuration builds its SDK client here: no network call
/// happens before the first request, credentials are resolved lazily).
async fn init_times(binary: &Path, env: &[(&str, String)]) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let emulator = RuntimeEmulator::start().await.expect("emulator");
        let started = Instant::now();
        let mut child = emulator.spawn_function(binary, env).expect("spawn");
        let first = emulator
            .wait_first_next(TIMEOUT)
            .await
            .expect("first /next");
        samples.push(first.duration_since(started));
        let _ = child.kill().await;
    }
    samples
}

async fn warm_times(binary: &Path, env: &[(&str, String)]) -> (Vec<Duration>, Vec<Duration>) {
    let emulator = RuntimeEmulator::start().await.expect("emulator");
    let mut child = emulator.spawn_function(binary, env).expect("spawn");
    let post = event(
        "POST",
        Some(r#"{"name":"Lamp","url":"https://example.com/lamp"}"#),
    );
    let get = event("GET", None);
    for _ in 0..20 {
        emulator
            .invoke(post.clone(), TIMEOUT)
            .await
            .expect("warm-up")
            .response();
    }
    let (mut posts, mut gets) = (Vec::new(), Vec::new());
    // GET lists everything, so measure it first, on the 20 warm-up items.
    for _ in 0..INVOCATIONS / 3 {
        let started = Instant::now();
        let response = emulator
            .invoke(get.clone(), TIMEOUT)
            .await
            .expect("get")
            .response();
        gets.push(started.elapsed());
        assert_eq!(response["statusCode"], 200, "{response}");
    }
    for _ in 0..INVOCATIONS {
        let started = Instant::now();
        let response = emulator
            .invoke(post.clone(), TIMEOUT)
            .await
            .expect("post")
            .response();
        posts.push(started.elapsed());
        assert_eq!(response["statusCode"], 201, "{response}");
    }
    let _ = child.kill().await;
    (posts, gets)
}

#[tokio::main]
async fn main() {
    let binary = std::env::var_os("BOOTSTRAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            artifact::bootstrap_path(Architecture::X86_64, &testkit::workspace_root())
        });
    assert!(
        binary.exists(),
        "{} is missing: run `cargo xtask dist`",
        binary.display()
    );
    println!("binary: {}", binary.display());

    let quiet = ("AWS_LAMBDA_LOG_LEVEL", "warn".to_string());
    let session = MotoServer::shared().session().await;
    let table = "wishctl-bench-items";
    DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&session.sdk_config().await),
        table,
    )
    .create_table_if_missing()
    .await
    .expect("table");
    let mut dynamodb_env = aws_env(session.endpoint());
    dynamodb_env.push(("TABLE_NAME", table.to_string()));
    dynamodb_env.push(quiet.clone());
    let memory = [("WISHLIST_STORE", "memory".to_string()), quiet];

    for (label, env) in [
        ("DynamoDB store", &dynamodb_env[..]),
        ("in-memory store", &memory[..]),
    ] {
        let mut init = init_times(&binary, env).await;
        println!(
            "init, {label} ({STARTS} starts): median {}  p90 {}  min {}",
            ms(percentile(&mut init, 0.5)),
            ms(percentile(&mut init, 0.9)),
            ms(percentile(&mut init, 0.0)),
        );
    }

    let (mut posts, mut gets) = warm_times(&binary, &memory).await;
    println!(
        "warm, in-memory store: POST median {} p99 {} | GET (20 items) median {} p99 {}",
        ms(percentile(&mut posts, 0.5)),
        ms(percentile(&mut posts, 0.99)),
        ms(percentile(&mut gets, 0.5)),
        ms(percentile(&mut gets, 0.99)),
    );
    let (mut posts, mut gets) = warm_times(&binary, &dynamodb_env).await;
    println!(
        "warm, moto DynamoDB:   POST median {} p99 {} | GET (20 items) median {} p99 {}",
        ms(percentile(&mut posts, 0.5)),
        ms(percentile(&mut posts, 0.99)),
        ms(percentile(&mut gets, 0.5)),
        ms(percentile(&mut gets, 0.99)),
    );
}
