//! The built `wishctl` binary against moto: `--output json` shapes, `plan` exit codes, `down`
//! refusing data loss, `AWS_ENDPOINT_URL` and `--endpoint-url`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{moto, stderr};

const ISSUER: &str = "https://tenant.eu.auth0.com/";

/// Runs `wishctl` with the environment of a user whose AWS is moto (`AWS_ENDPOINT_URL`).
fn wishctl(endpoint: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wishctl"));
    command.args(args).env_remove("AWS_PROFILE");
    for (key, value) in testkit::moto::aws_env(endpoint) {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// Parses stdout as exactly one JSON object (and nothing else).
fn json(output: &Output) -> Value {
    assert!(
        output.status.success() || output.status.code() == Some(2),
        "{}",
        stderr(output)
    );
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    let mut values = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let value = values.next().expect("one JSON value").unwrap();
    assert!(
        values.next().is_none(),
        "more than one JSON value on stdout: {text}"
    );
    assert!(value.is_object(), "{text}");
    value
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// A Lambda zip holding `bootstrap` with an arm64 ELF header (moto never runs it).
fn artifact(dir: &Path) -> PathBuf {
    testkit::lambda_zip::fake_bootstrap_zip(dir)
}

fn up_args<'a>(zip: &'a str, audience: &'a str) -> Vec<&'a str> {
    vec![
        "--stack",
        "cli",
        "--issuer",
        ISSUER,
        "--audience",
        audience,
        "--artifact",
        zip,
        "--tag",
        "team=web",
        // No network here: the issuer pre-check has its own tests (deploy_issuer.rs).
        "--skip-issuer-check",
    ]
}

const OUTPUT_KEYS: [&str; 9] = [
    "apiId",
    "authorizerId",
    "function",
    "logGroup",
    "region",
    "role",
    "stack",
    "table",
    "url",
];

#[tokio::test]
async fn up_prints_one_json_object_with_the_outputs_and_a_second_up_mutates_nothing() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();

    // WHEN up runs with --output json
    let mut args = vec!["up"];
    args.extend(up_args(zip, "aud-1"));
    args.extend(["--output", "json"]);
    let first = wishctl(session.endpoint(), &args);

    // THEN stdout is one object: the outputs, the changes and the call counts; progress is on
    // stderr
    let value = json(&first);
    let mut expected: Vec<String> = OUTPUT_KEYS.iter().map(|k| k.to_string()).collect();
    expected.extend(["apiCalls", "changes", "elapsedMs"].map(String::from));
    expected.sort();
    assert_eq!(keys(&value), expected);
    assert_eq!(value["stack"], "cli");
    assert_eq!(value["table"], "wishctl-cli-items");
    assert_eq!(value["logGroup"], "/aws/lambda/wishctl-cli-api");
    let api_id = value["apiId"].as_str().unwrap();
    assert_eq!(
        value["url"],
        format!("https://{api_id}.execute-api.us-east-1.amazonaws.com/wish-list-service")
    );
    assert_eq!(
        keys(&value["apiCalls"]),
        ["criticalPath", "mutating", "total"]
    );
    assert!(value["apiCalls"]["mutating"].as_u64().unwrap() >= 13);
    let changes = value["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 12);
    assert!(
        changes.iter().all(|c| c["action"] == "create"),
        "{changes:?}"
    );
    assert!(
        stderr(&first).contains("table wishctl-cli-items: created"),
        "{}",
        stderr(&first)
    );

    // AND a second up changes nothing
    let second = json(&wishctl(session.endpoint(), &args));
    assert_eq!(second["apiCalls"]["mutating"], 0);
    // Reads only: the stack's resources plus the drift reads (role policies, function URL,
    // stages, authorizer listing).
    assert!(
        second["apiCalls"]["total"].as_u64().unwrap() <= 22,
        "{second}"
    );
    assert_eq!(second["apiId"], value["apiId"]);
    assert!(second["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["action"] == "no-change"));

    // AND outputs prints exactly the stack outputs
    let outputs = json(&wishctl(
        session.endpoint(),
        &["outputs", "--stack", "cli", "--output", "json"],
    ));
    assert_eq!(keys(&outputs), OUTPUT_KEYS);
    for key in OUTPUT_KEYS {
        assert_eq!(outputs[key], value[key], "{key}");
    }
}

#[tokio::test]
async fn plan_detailed_exitcode_is_2_with_changes_0_without_and_1_on_error() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    fn command<'a>(
        zip: &'a str,
        command: &'a str,
        audience: &'a str,
        extra: &[&'a str],
    ) -> Vec<&'a str> {
        let mut args = vec![command];
        args.extend(up_args(zip, audience));
        args.extend(extra);
        args
    }
    let with = |c, a, e: &[&'static str]| command(zip, c, a, e);

    // Nothing deployed: everything would be created.
    let fresh = wishctl(
        session.endpoint(),
        &with("plan", "a", &["--detailed-exitcode"]),
    );
    assert_eq!(fresh.status.code(), Some(2), "{}", stderr(&fresh));
    let text = String::from_utf8_lossy(&fresh.stdout);
    assert!(
        text.contains("+ table wishctl-cli-items (create)"),
        "{text}"
    );
    // Without --detailed-exitcode, success is 0 whatever the plan.
    assert_eq!(
        wishctl(session.endpoint(), &with("plan", "a", &[]))
            .status
            .code(),
        Some(0)
    );

    let up = wishctl(session.endpoint(), &with("up", "a", &[]));
    assert!(up.status.success(), "{}", stderr(&up));

    // Deployed and unchanged: 0.
    let same = wishctl(
        session.endpoint(),
        &with("plan", "a", &["--detailed-exitcode"]),
    );
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );

    // A changed audience: 2, and the plan names the field with old -> new.
    let changed = wishctl(
        session.endpoint(),
        &with("plan", "b", &["--detailed-exitcode", "--output", "json"]),
    );
    assert_eq!(changed.status.code(), Some(2));
    let value = json(&changed);
    assert_eq!(value["hasChanges"], true);
    let updates: Vec<&Value> = value["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "update")
        .collect();
    assert_eq!(updates.len(), 1, "{value}");
    assert_eq!(updates[0]["kind"], "authorizer");
    assert_eq!(updates[0]["fields"][0]["field"], "audience");
    assert_eq!(updates[0]["fields"][0]["old"], "[a]");
    assert_eq!(updates[0]["fields"][0]["new"], "[b]");
    assert_eq!(value["apiCalls"]["mutating"], 0);

    // An error (AWS unreachable): 1.
    let mut args = with("plan", "a", &["--detailed-exitcode"]);
    args.extend(["--endpoint-url", "http://127.0.0.1:9"]);
    let unreachable = wishctl(session.endpoint(), &args);
    assert_eq!(
        unreachable.status.code(),
        Some(1),
        "{}",
        stderr(&unreachable)
    );
}

#[tokio::test]
async fn down_refuses_a_table_with_items_then_removes_everything_and_then_has_nothing_to_do() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let mut args = vec!["up"];
    args.extend(up_args(zip.to_str().unwrap(), "a"));
    assert!(wishctl(session.endpoint(), &args).status.success());
    let ddb = aws_sdk_dynamodb::Client::new(&session.sdk_config().await);
    ddb.put_item()
        .table_name("wishctl-cli-items")
        .item("id", AttributeValue::S("1".into()))
        .send()
        .await
        .unwrap();

    // Without a data flag: refused, exit non-zero, nothing deleted.
    let refused = wishctl(session.endpoint(), &["down", "--stack", "cli"]);
    assert!(!refused.status.success());
    // The hint runs as printed: it names the stack (without it, `down` targets the default).
    assert!(
        stderr(&refused).contains("wishctl down --stack cli --delete-data"),
        "{}",
        stderr(&refused)
    );
    let lambda = aws_sdk_lambda::Client::new(&session.sdk_config().await);
    assert!(lambda
        .get_function()
        .function_name("wishctl-cli-api")
        .send()
        .await
        .is_ok());

    // With --delete-data: everything goes; JSON lists every removal.
    let down = wishctl(
        session.endpoint(),
        &[
            "down",
            "--stack",
            "cli",
            "--delete-data",
            "--output",
            "json",
        ],
    );
    let value = json(&down);
    assert_eq!(
        keys(&value),
        ["alreadyGone", "apiCalls", "removals", "stack"]
    );
    assert_eq!(value["alreadyGone"], false);
    let removals = value["removals"].as_array().unwrap();
    assert!(
        removals.iter().all(|r| r["outcome"] == "deleted"),
        "{removals:?}"
    );
    assert_eq!(removals.len(), 7);
    assert!(ddb
        .describe_table()
        .table_name("wishctl-cli-items")
        .send()
        .await
        .is_err());

    // Again: nothing left, exit 0.
    let again = wishctl(session.endpoint(), &["down", "--stack", "cli"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing left to delete"));

    // And outputs of a stack that is gone: an error naming it.
    let outputs = wishctl(session.endpoint(), &["outputs", "--stack", "cli"]);
    assert!(!outputs.status.success());
    assert!(
        stderr(&outputs).contains(&format!(
            "stack cli is not deployed in {}",
            testkit::moto::REGION
        )),
        "{}",
        stderr(&outputs)
    );
}

#[tokio::test]
async fn endpoint_url_flag_overrides_the_environment() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let mut args = vec!["plan"];
    args.extend(up_args(zip.to_str().unwrap(), "a"));
    args.extend([
        "--endpoint-url",
        session.endpoint(),
        "--region",
        "us-east-1",
    ]);

    // The environment points nowhere; the flag points at moto.
    let output = wishctl("http://127.0.0.1:9", &args);

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("12 to create"));
}
