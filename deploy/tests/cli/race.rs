//! Runs of one stack at the same time, as `wishctl` processes against moto behind testkit's
//! proxy (50 ms per call, AWS's round trip in the timing model, so that an `up` takes about a
//! second): two `up`s never leave two HTTP APIs or two authorizers, and a `down` racing an `up`
//! leaves either nothing or a stack that the next `up` completes.
//!
//! That the runs overlapped is proved from the proxy's call log, not assumed from timing: each
//! process signs with an access key of its own, the proxy holds the answer to the first
//! process's k-th call until the second process's first call has arrived (bounded), and the test
//! asserts that the first process made calls after the second one's first. Authorizers are
//! counted with `GetAuthorizers` through the proxy (moto cannot list them). Bounded: three trials
//! each, every process and every hold limited in time.

#![allow(clippy::unwrap_used)]

use crate::support as cli;

use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cli::{apis_named, artifact, json, moto, plan, stack_args, stderr, up};
use serde_json::Value;
use testkit::aws_proxy::{AwsProxy, Hold, ModelSettings, ProxyRecord};

const TRIALS: usize = 3;
/// Per call, as the timing model's round trip.
const LATENCY: Duration = Duration::from_millis(50);
/// No process of these tests may run longer than this.
const PROCESS_BOUND: Duration = Duration::from_secs(120);
/// The longest the proxy holds an answer waiting for the other process.
const HOLD_BOUND: Duration = Duration::from_secs(30);
/// The access keys the two processes sign with: the proxy's log tells their calls apart.
const FIRST: &str = "race-first";
const SECOND: &str = "race-second";

fn spawn(endpoint: &str, args: &[&str], access_key: &str) -> tokio::process::Child {
    let mut command = tokio::process::Command::from(cli::command(endpoint, args));
    // A held answer is the other process's doing, not a stalled call: the attempt that waits
    // for it must not time out before the hold ends (wishctl's first attempt gets 3 s).
    let attempt_timeout = (HOLD_BOUND + Duration::from_secs(10)).as_secs().to_string();
    command
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("WISHCTL_ATTEMPT_TIMEOUT", attempt_timeout)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.spawn().unwrap()
}

async fn finish(child: tokio::process::Child) -> Output {
    tokio::time::timeout(PROCESS_BOUND, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("a wishctl process ran longer than {PROCESS_BOUND:?}"))
        .unwrap()
}

/// Makes the two processes overlap for certain: the answer to the first process's `at`-th call
/// waits (at most [`HOLD_BOUND`]) until the second process's first call has arrived. Returns a
/// receiver told when the first process reached that call.
fn hold_first_until_second_calls(
    proxy: &AwsProxy,
    at: usize,
) -> tokio::sync::oneshot::Receiver<()> {
    let (second_called, second_calls) = tokio::sync::watch::channel(false);
    proxy.set_arrival_hook(Some(Arc::new(move |record: &ProxyRecord| {
        if record.client == SECOND {
            second_called.send_replace(true);
        }
    })));
    let (reached_tx, reached) = tokio::sync::oneshot::channel();
    let reached_tx = Mutex::new(Some(reached_tx));
    let first_calls = Mutex::new(0usize);
    proxy.set_gate(Some(Arc::new(move |record: &ProxyRecord| {
        if record.client != FIRST {
            return None;
        }
        let mut calls = first_calls.lock().unwrap();
        *calls += 1;
        if *calls != at {
            return None;
        }
        if let Some(tx) = reached_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
        let mut second_calls = second_calls.clone();
        Some(Box::pin(async move {
            let _ = tokio::time::timeout(HOLD_BOUND, second_calls.wait_for(|called| *called)).await;
        }) as Hold)
    })));
    reached
}

/// Asserts from the proxy's log that the first process made calls after the second one's first
/// call: the two ran at the same time.
fn assert_overlapped(proxy: &AwsProxy, trial: usize) {
    let records = proxy.records();
    let second_first = records
        .iter()
        .find(|r| r.client == SECOND)
        .map(|r| r.seq)
        .unwrap_or_else(|| panic!("trial {trial}: the second process made no call"));
    let first_after = records
        .iter()
        .filter(|r| r.client == FIRST && r.seq > second_first)
        .count();
    let first_total = records.iter().filter(|r| r.client == FIRST).count();
    assert!(
        first_after > 0,
        "trial {trial}: the runs did not overlap: all {first_total} calls of the first process came \
         before the second process's first call (#{second_first})"
    );
    eprintln!(
        "trial {trial}: overlap: the first process made {first_after} of its {first_total} calls \
         after the second process's first call (#{second_first} of {})",
        records.len()
    );
}

/// The authorizers of `api_id` as `GetAuthorizers` lists them (through the proxy, every page).
async fn listed_authorizers(apigw: &aws_sdk_apigatewayv2::Client, api_id: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let page = apigw
            .get_authorizers()
            .api_id(api_id)
            .set_next_token(token.take())
            .send()
            .await
            .unwrap();
        ids.extend(
            page.items()
                .iter()
                .filter_map(|a| a.authorizer_id().map(str::to_string)),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return ids;
        }
    }
    panic!("GetAuthorizers of {api_id}: more than 10 pages");
}

/// How many resources of `kind` an `up --output json` reports as created.
fn created(report: &Value, kind: &str) -> usize {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind && c["action"] == "create")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ups_started_together_leave_one_api_and_one_authorizer() {
    let session = moto().await;
    let proxy = AwsProxy::start(session.endpoint(), ModelSettings::latency_only(LATENCY))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    let apigw = aws_sdk_apigatewayv2::Client::new(&session.sdk_config().await);
    let listing =
        aws_sdk_apigatewayv2::Client::new(&testkit::moto::sdk_config_for(proxy.endpoint()).await);
    for trial in 0..TRIALS {
        // GIVEN nothing deployed, WHEN two ups of one stack start together (the first one's
        // first answer held until the second has called)
        proxy.reset();
        // (When the first process reached that call does not matter here.)
        drop(hold_first_until_second_calls(&proxy, 1));
        let stack = format!("race{trial}");
        let mut args = stack_args("up", &stack, zip);
        args.extend(["--output", "json"]);
        let first = spawn(proxy.endpoint(), &args, FIRST);
        let second = spawn(proxy.endpoint(), &args, SECOND);
        let (first, second) = tokio::join!(finish(first), finish(second));
        proxy.set_gate(None);
        proxy.set_arrival_hook(None);

        // THEN they ran at the same time
        assert_overlapped(&proxy, trial);
        // AND both end with the stack asked for: the same API and authorizer, created once
        assert!(first.status.success(), "trial {trial}: {}", stderr(&first));
        assert!(
            second.status.success(),
            "trial {trial}: {}",
            stderr(&second)
        );
        let (a, b) = (json(&first), json(&second));
        assert_eq!(a["apiId"], b["apiId"], "trial {trial}");
        assert_eq!(a["authorizerId"], b["authorizerId"], "trial {trial}");
        assert_eq!(
            created(&a, "api") + created(&b, "api"),
            1,
            "trial {trial}: {a}\n{b}"
        );
        assert_eq!(
            created(&a, "authorizer") + created(&b, "authorizer"),
            1,
            "trial {trial}: {a}\n{b}"
        );
        assert_eq!(
            created(&a, "integration") + created(&b, "integration"),
            1,
            "trial {trial}"
        );
        assert_eq!(apis_named(&apigw, &stack).await.len(), 1, "trial {trial}");
        // AND the API has exactly one authorizer, the one its POST route points at, and a plan
        // is clean
        let api_id = a["apiId"].as_str().unwrap();
        assert_eq!(
            listed_authorizers(&listing, api_id).await,
            [a["authorizerId"].as_str().unwrap()],
            "trial {trial}"
        );
        let routes = apigw.get_routes().api_id(api_id).send().await.unwrap();
        assert_eq!(routes.items().len(), 2, "trial {trial}");
        let post = routes
            .items()
            .iter()
            .find(|r| r.route_key() == Some("POST /wish-list-service"))
            .unwrap();
        assert_eq!(post.authorizer_id(), a["authorizerId"].as_str());
        let (code, after) = plan(session.endpoint(), &stack, zip, &[]);
        assert_eq!(code, Some(0), "trial {trial}: {after}");
    }
}

/// Whether any resource named for `stack` is left, looked up through the SDK.
async fn anything_left(session: &testkit::moto::MotoSession, stack: &str) -> Vec<String> {
    let sdk = session.sdk_config().await;
    let mut left = Vec::new();
    let table = format!("wishctl-{stack}-items");
    if aws_sdk_dynamodb::Client::new(&sdk)
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .is_ok()
    {
        left.push(table);
    }
    let function = format!("wishctl-{stack}-api");
    if aws_sdk_lambda::Client::new(&sdk)
        .get_function()
        .function_name(&function)
        .send()
        .await
        .is_ok()
    {
        left.push(function.clone());
    }
    let role = format!("wishctl-{stack}-us-east-1-fn");
    if aws_sdk_iam::Client::new(&sdk)
        .get_role()
        .role_name(&role)
        .send()
        .await
        .is_ok()
    {
        left.push(role);
    }
    let groups = aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{function}"))
        .send()
        .await
        .unwrap();
    left.extend(
        groups
            .log_groups()
            .iter()
            .filter_map(|g| g.log_group_name().map(str::to_string)),
    );
    left.extend(apis_named(&aws_sdk_apigatewayv2::Client::new(&sdk), stack).await);
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_racing_up_leaves_nothing_or_a_stack_the_next_up_completes() {
    let session = moto().await;
    let proxy = AwsProxy::start(session.endpoint(), ModelSettings::latency_only(LATENCY))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    let apigw = aws_sdk_apigatewayv2::Client::new(&session.sdk_config().await);
    let listing =
        aws_sdk_apigatewayv2::Client::new(&testkit::moto::sdk_config_for(proxy.endpoint()).await);
    // The up's call at which the down starts: its first, one in the middle of its reads and
    // creates, one late in a fresh up's ~29 calls.
    let start_at = [1, 8, 16];
    for (trial, at) in start_at.into_iter().enumerate().take(TRIALS) {
        // GIVEN an up of a new stack, WHEN a down of it starts once the up reached call `at`
        // (that call's answer held until the down has called)
        proxy.reset();
        let reached = hold_first_until_second_calls(&proxy, at);
        let stack = format!("dr{trial}");
        let up_child = spawn(proxy.endpoint(), &stack_args("up", &stack, zip), FIRST);
        let mut up_run = tokio::spawn(finish(up_child));
        let mut up_ended = None;
        tokio::select! {
            _ = reached => {}
            ended = &mut up_run => up_ended = Some(ended.unwrap()),
        }
        let down_child = spawn(
            proxy.endpoint(),
            &["down", "--stack", &stack, "--delete-data"],
            SECOND,
        );
        let down_run = finish(down_child).await;
        let up_run = match up_ended {
            Some(ended) => ended,
            None => up_run.await.unwrap(),
        };
        proxy.set_gate(None);
        proxy.set_arrival_hook(None);

        // THEN they ran at the same time; both end, neither crashes, a failed run says why
        assert_overlapped(&proxy, trial);
        for run in [&up_run, &down_run] {
            assert!(
                run.status.code().is_some(),
                "trial {trial}: killed by a signal"
            );
            if !run.status.success() {
                assert!(
                    stderr(run).contains("error:"),
                    "trial {trial}: {}",
                    stderr(run)
                );
            }
        }

        // AND what remains is nothing, or a stack the next up completes with one API and one
        // authorizer
        let left = anything_left(&session, &stack).await;
        eprintln!(
            "trial {trial} (down started at the up's call {at}): up exit {:?}, down exit {:?}, left {left:?}",
            up_run.status.code(),
            down_run.status.code()
        );
        if !left.is_empty() {
            // Through the proxy, so that the listing knows what this up creates.
            let (endpoint, name, code) =
                (proxy.endpoint().to_string(), stack.clone(), zip.to_string());
            tokio::task::spawn_blocking(move || up(&endpoint, &name, &code, &[]))
                .await
                .unwrap();
            let (code, after) = plan(session.endpoint(), &stack, zip, &[]);
            assert_eq!(code, Some(0), "trial {trial} (left {left:?}): {after}");
            let apis = apis_named(&apigw, &stack).await;
            assert_eq!(apis.len(), 1, "trial {trial}");
            assert_eq!(
                listed_authorizers(&listing, &apis[0]).await.len(),
                1,
                "trial {trial}"
            );
        }
    }
}
