//! Runs of one stack at the same time, as `wishctl` processes against moto: two `up`s never
//! leave two HTTP APIs or two authorizers, and a `down` racing an `up` leaves either nothing or a
//! stack that the next `up` completes. Bounded: three trials each.

#![allow(clippy::unwrap_used)]

#[path = "support/cli.rs"]
mod cli;

use std::process::{Output, Stdio};
use std::time::Duration;

use cli::{apis_named, artifact, command, json, moto, plan, stack_args, stderr, up};
use serde_json::Value;

const TRIALS: usize = 3;

fn spawn(endpoint: &str, args: &[&str]) -> std::process::Child {
    command(endpoint, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: std::process::Child) -> Output {
    child.wait_with_output().unwrap()
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

#[tokio::test]
async fn two_ups_started_together_leave_one_api_and_one_authorizer() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    let apigw = aws_sdk_apigatewayv2::Client::new(&session.sdk_config().await);
    for trial in 0..TRIALS {
        // GIVEN nothing deployed, WHEN two ups of one stack start together
        let stack = format!("race{trial}");
        let mut args = stack_args("up", &stack, zip);
        args.extend(["--output", "json"]);
        let first = spawn(session.endpoint(), &args);
        let second = spawn(session.endpoint(), &args);
        let (first, second) = (finish(first), finish(second));

        // THEN both end with the stack asked for: the same API and authorizer, created once
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
        // AND the stack's POST route points at that one authorizer, and a plan is clean
        let api_id = a["apiId"].as_str().unwrap();
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

#[tokio::test]
async fn down_racing_up_leaves_nothing_or_a_stack_the_next_up_completes() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    let apigw = aws_sdk_apigatewayv2::Client::new(&session.sdk_config().await);
    for trial in 0..TRIALS {
        // GIVEN an up of a new stack, WHEN a down of it starts a moment later
        let stack = format!("dr{trial}");
        let up_child = spawn(session.endpoint(), &stack_args("up", &stack, zip));
        std::thread::sleep(Duration::from_millis(150 * trial as u64));
        let down_child = spawn(
            session.endpoint(),
            &["down", "--stack", &stack, "--delete-data"],
        );
        let (up_run, down_run) = (finish(up_child), finish(down_child));
        // Both end; neither may crash. A failed run must say why.
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

        // THEN what remains is nothing, or a stack the next up completes
        let left = anything_left(&session, &stack).await;
        if !left.is_empty() {
            up(session.endpoint(), &stack, zip, &[]);
            let (code, after) = plan(session.endpoint(), &stack, zip, &[]);
            assert_eq!(code, Some(0), "trial {trial} (left {left:?}): {after}");
            assert_eq!(apis_named(&apigw, &stack).await.len(), 1, "trial {trial}");
        }
    }
}
