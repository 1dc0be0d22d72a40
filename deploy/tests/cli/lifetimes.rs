//! Stack lifetimes as a user runs them, against moto: `up --ttl` records an expiry that a later
//! `up` keeps and `--ttl none` clears; `list` finds complete and partial stacks; `gc` removes
//! exactly the stacks that match its conditions, never a look-alike, and a failure on one stack
//! does not stop the others.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use testkit::moto::MotoSession;

use crate::support::{moto, stderr, stdout};

const ISSUER: &str = "https://tenant.eu.auth0.com/";

fn wishctl(endpoint: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wishctl"));
    command.args(args).env_remove("AWS_PROFILE");
    for (key, value) in testkit::moto::aws_env(endpoint) {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// stdout as exactly one JSON object.
fn json(output: &Output) -> Value {
    let text = stdout(output);
    let mut values = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let value = values
        .next()
        .unwrap_or_else(|| panic!("no JSON on stdout; stderr: {}", stderr(output)))
        .unwrap();
    assert!(values.next().is_none(), "more than one JSON value: {text}");
    value
}

fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(&output),
        stderr(&output)
    );
    output
}

fn up(endpoint: &str, zip: &Path, stack: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "up",
        "--stack",
        stack,
        "--issuer",
        ISSUER,
        "--audience",
        "aud",
        "--artifact",
        zip.to_str().unwrap(),
    ];
    args.extend(extra);
    ok(wishctl(endpoint, &args))
}

fn list(endpoint: &str) -> Value {
    json(&ok(wishctl(endpoint, &["list", "--output", "json"])))
}

fn stack<'a>(listed: &'a Value, name: &str) -> Option<&'a Value> {
    listed["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack"] == name)
}

fn names(listed: &Value) -> Vec<String> {
    listed["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stack"].as_str().unwrap().to_string())
        .collect()
}

async fn table_tags(session: &MotoSession, table: &str) -> Option<Vec<(String, String)>> {
    let ddb = aws_sdk_dynamodb::Client::new(&session.sdk_config().await);
    let described = ddb.describe_table().table_name(table).send().await.ok()?;
    let arn = described.table().unwrap().table_arn().unwrap().to_string();
    let tags = ddb
        .list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    Some(
        tags.tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
    )
}

/// The value of `key`; the last one when moto lists a key twice (its DynamoDB `TagResource`
/// appends instead of overwriting, and the reconciler reads the last value too).
fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter()
        .rfind(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// What a run killed right after `CreateRole` leaves behind: the role, tagged, and nothing else.
/// Its name is the one wishctl gives `stack`'s role, read from a deployed stack's outputs (so
/// that the test follows the naming code, whether or not role names carry the region).
async fn role_only(session: &MotoSession, deployed: &str, stack: &str) {
    let outputs = json(&ok(wishctl(
        session.endpoint(),
        &["outputs", "--stack", deployed, "--output", "json"],
    )));
    let role = outputs["role"].as_str().unwrap().replacen(
        &format!("wishctl-{deployed}-"),
        &format!("wishctl-{stack}-"),
        1,
    );
    let tag = |k: &str, v: &str| {
        aws_sdk_iam::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .unwrap()
    };
    let iam = aws_sdk_iam::Client::new(&session.sdk_config().await);
    iam.create_role()
        .role_name(role)
        .path("/wishctl/")
        .assume_role_policy_document(stack::trust_policy().to_string())
        .tags(tag("wishctl:stack", stack))
        .tags(tag("wishctl:region", testkit::moto::REGION))
        .send()
        .await
        .unwrap();
}

/// A table named like a stack's, made by hand: `tags` but never `wishctl:stack=NAME` of a stack
/// that would derive this name.
async fn look_alike_table(session: &MotoSession, name: &str, tags: &[(&str, &str)]) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, Tag,
    };
    let ddb = aws_sdk_dynamodb::Client::new(&session.sdk_config().await);
    ddb.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
                .collect(),
        ))
        .send()
        .await
        .unwrap();
}

/// A role and an HTTP API named like stack `ghost`'s, expired-looking, but without the
/// `wishctl:stack` tag: made by hand, never ours to delete.
async fn look_alike_role_and_api(session: &MotoSession, role: &str, api: &str, past: &str) {
    let config = session.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    iam.create_role()
        .role_name(role)
        .path("/wishctl/")
        .assume_role_policy_document(stack::trust_policy().to_string())
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("wishctl:expires-at")
                .value(past)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let apigw = aws_sdk_apigatewayv2::Client::new(&config);
    apigw
        .create_api()
        .name(api)
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .tags("wishctl:expires-at", past)
        .send()
        .await
        .unwrap();
}

async fn role_exists(session: &MotoSession, name: &str) -> bool {
    let iam = aws_sdk_iam::Client::new(&session.sdk_config().await);
    iam.get_role().role_name(name).send().await.is_ok()
}

async fn api_named(session: &MotoSession, name: &str) -> bool {
    let apigw = aws_sdk_apigatewayv2::Client::new(&session.sdk_config().await);
    let apis = apigw.get_apis().send().await.unwrap();
    apis.items().iter().any(|a| a.name() == Some(name))
}

async fn table_exists(session: &MotoSession, name: &str) -> bool {
    let ddb = aws_sdk_dynamodb::Client::new(&session.sdk_config().await);
    ddb.describe_table().table_name(name).send().await.is_ok()
}

async fn put_item(session: &MotoSession, table: &str) {
    let ddb = aws_sdk_dynamodb::Client::new(&session.sdk_config().await);
    ddb.put_item()
        .table_name(table)
        .item("id", aws_sdk_dynamodb::types::AttributeValue::S("1".into()))
        .send()
        .await
        .unwrap();
}

fn rfc3339_seconds(value: &Value) -> i64 {
    stack::UtcTime::parse_rfc3339(value.as_str().unwrap())
        .unwrap_or_else(|| panic!("not RFC 3339: {value}"))
        .unix_seconds()
}

fn now_seconds() -> i64 {
    stack::UtcTime::from_system_time(SystemTime::now()).unix_seconds()
}

#[tokio::test]
async fn list_shows_two_complete_stacks_and_a_partial_one_but_no_look_alike() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = testkit::lambda_zip::fake_bootstrap_zip(dir.path());

    // GIVEN two stacks deployed by `up`, one with a TTL
    let before = now_seconds();
    up(session.endpoint(), &zip, "pr-1", &["--ttl", "2h"]);
    up(session.endpoint(), &zip, "pr-2", &[]);
    // AND a run killed right after creating the role of pr-3
    role_only(&session, "pr-2", "pr-3").await;
    // AND a table that looks like a stack's but is not tagged as one
    look_alike_table(&session, "wishctl-ghost-items", &[("team", "web")]).await;

    // WHEN list runs
    let listed = list(session.endpoint());

    // THEN it shows the three stacks, by name
    assert_eq!(names(&listed), ["pr-1", "pr-2", "pr-3"], "{listed:#}");
    assert_eq!(listed["region"], "us-east-1");
    let pr1 = stack(&listed, "pr-1").unwrap();
    let pr2 = stack(&listed, "pr-2").unwrap();
    let pr3 = stack(&listed, "pr-3").unwrap();
    // AND the two deployed ones are complete, with their URL and creation time
    for complete in [pr1, pr2] {
        assert_eq!(complete["complete"], true, "{complete:#}");
        assert_eq!(complete["missing"], serde_json::json!([]));
        let api_id = complete["apiId"].as_str().unwrap();
        assert_eq!(
            complete["url"],
            format!("https://{api_id}.execute-api.us-east-1.amazonaws.com/wish-list-service")
        );
        let created = rfc3339_seconds(&complete["createdAt"]);
        assert!(
            created >= before - 5 && created <= now_seconds() + 5,
            "{complete:#}"
        );
    }
    // AND the TTL of pr-1 is an absolute expiry about two hours after its up
    let expiry = rfc3339_seconds(&pr1["expiresAt"]);
    assert!(
        (before + 7_200..=now_seconds() + 7_200).contains(&expiry),
        "{pr1:#}"
    );
    assert_eq!(pr1["expired"], false);
    assert_eq!(pr2["expiresAt"], Value::Null);
    // AND the killed run is partial, naming what is missing
    assert_eq!(pr3["complete"], false);
    let missing: Vec<&str> = pr3["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for expected in [
        "table wishctl-pr-3-items",
        "log group /aws/lambda/wishctl-pr-3-api",
        "role policy wishctl-pr-3-access",
        "function wishctl-pr-3-api",
        "http api wishctl-pr-3",
    ] {
        assert!(missing.contains(&expected), "{expected} not in {missing:?}");
    }
    assert!(
        !missing.iter().any(|m| m.starts_with("role wishctl")),
        "{missing:?}"
    );
    assert_eq!(pr3["url"], Value::Null);
    // AND the look-alike is reported as such, not as a stack
    let look_alikes = listed["lookAlikes"].as_array().unwrap();
    assert_eq!(look_alikes.len(), 1, "{look_alikes:?}");
    assert_eq!(look_alikes[0]["name"], "wishctl-ghost-items");

    // AND the text form shows the same, with what is missing
    let text = ok(wishctl(session.endpoint(), &["list"]));
    let out = stdout(&text);
    assert!(out.contains("STACK") && out.contains("EXPIRES"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("pr-3") && l.contains("partial")),
        "{out}"
    );
    assert!(out.contains("missing: table wishctl-pr-3-items"), "{out}");
    assert!(
        stderr(&text).contains("wishctl-ghost-items"),
        "{}",
        stderr(&text)
    );
}

#[tokio::test]
async fn a_later_up_keeps_the_expiry_and_ttl_none_clears_it() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = testkit::lambda_zip::fake_bootstrap_zip(dir.path());

    // GIVEN a stack deployed with --ttl 2h
    up(
        session.endpoint(),
        &zip,
        "ttl",
        &["--ttl", "2h", "--tag", "team=web"],
    );
    let tags = table_tags(&session, "wishctl-ttl-items").await.unwrap();
    let first = tag(&tags, "wishctl:expires-at").unwrap().to_string();
    assert!(stack::UtcTime::parse_rfc3339(&first).is_some(), "{first}");

    // WHEN up runs again without --ttl
    let again = json(&up(
        session.endpoint(),
        &zip,
        "ttl",
        &["--tag", "team=web", "--output", "json"],
    ));

    // THEN the expiry is kept on the resources, and nothing was changed
    assert_eq!(again["apiCalls"]["mutating"], 0, "{again:#}");
    let tags = table_tags(&session, "wishctl-ttl-items").await.unwrap();
    assert_eq!(tag(&tags, "wishctl:expires-at"), Some(first.as_str()));
    assert_eq!(
        stack(&list(session.endpoint()), "ttl").unwrap()["expiresAt"],
        first
    );

    // WHEN up runs with --ttl none
    up(session.endpoint(), &zip, "ttl", &["--ttl", "none"]);

    // THEN the stack no longer expires: every resource says so
    let listed = list(session.endpoint());
    let summary = stack(&listed, "ttl").unwrap();
    assert_eq!(summary["expiresAt"], "never", "{summary:#}");
    assert_eq!(summary["expired"], false);
    let tags = table_tags(&session, "wishctl-ttl-items").await.unwrap();
    assert_eq!(tag(&tags, "wishctl:expires-at"), Some("never"));

    // AND a bad --ttl is refused before any AWS call, saying what to pass
    let bad = wishctl(
        session.endpoint(),
        &[
            "up",
            "--stack",
            "ttl",
            "--issuer",
            ISSUER,
            "--audience",
            "a",
            "--artifact",
            zip.to_str().unwrap(),
            "--ttl",
            "soon",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("invalid --ttl \"soon\""),
        "{}",
        stderr(&bad)
    );
    assert!(stderr(&bad).contains("2h"), "{}", stderr(&bad));
}

#[tokio::test]
async fn gc_expired_removes_only_the_expired_stack_and_dry_run_changes_nothing() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = testkit::lambda_zip::fake_bootstrap_zip(dir.path());
    let endpoint = session.endpoint();

    // GIVEN a stack whose TTL runs out, one with a long TTL and one without any
    up(endpoint, &zip, "old", &["--ttl", "1s"]);
    up(endpoint, &zip, "keep", &["--ttl", "2h"]);
    up(endpoint, &zip, "plain", &[]);
    // AND look-alikes: an expired-looking table with no stack tag, and a table tagged for the
    // expired stack under a name that stack does not derive
    let past = "2020-01-01T00:00:00Z";
    look_alike_table(
        &session,
        "wishctl-fake-items",
        &[("wishctl:expires-at", past)],
    )
    .await;
    look_alike_table(
        &session,
        "wishctl-old-copy-items",
        &[("wishctl:stack", "old"), ("wishctl:expires-at", past)],
    )
    .await;
    let ghost_role = format!("wishctl-ghost-{}-fn", testkit::moto::REGION);
    look_alike_role_and_api(&session, &ghost_role, "wishctl-ghost", past).await;
    // Expiry has one-second resolution: two seconds later `old` has expired.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = list(endpoint);
    assert_eq!(
        stack(&before, "old").unwrap()["expired"],
        true,
        "{before:#}"
    );

    // WHEN gc --expired --dry-run runs
    let dry = json(&ok(wishctl(
        endpoint,
        &["gc", "--expired", "--dry-run", "--output", "json"],
    )));

    // THEN it names the expired stack and its resources, and changes nothing
    assert_eq!(dry["dryRun"], true);
    let matched = dry["stacks"].as_array().unwrap();
    assert_eq!(matched.len(), 1, "{dry:#}");
    assert_eq!(matched[0]["stack"], "old");
    assert_eq!(matched[0]["outcome"], "would-remove");
    assert!(matched[0]["resources"].as_array().unwrap().len() >= 5);
    assert_eq!(dry["apiCalls"]["mutating"], 0, "{dry:#}");
    let reason = matched[0]["reasons"][0].as_str().unwrap();
    assert!(reason.starts_with("expired at "), "{reason}");
    assert!(
        !reason.contains("(expired)"),
        "the expiry said twice: {reason}"
    );
    assert_eq!(list(endpoint)["stacks"], before["stacks"]);

    // WHEN gc --expired runs for real
    let gc = wishctl(endpoint, &["gc", "--expired", "--output", "json"]);
    let report = json(&ok(gc));

    // THEN it removed exactly the expired stack
    assert_eq!(report["ok"], true);
    let removed = report["stacks"].as_array().unwrap();
    assert_eq!(removed.len(), 1, "{report:#}");
    assert_eq!(removed[0]["stack"], "old");
    assert_eq!(removed[0]["outcome"], "removed");
    let mut kept: Vec<&str> = report["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, ["keep", "plain"]);
    // AND the others are intact and complete
    let after = list(endpoint);
    assert_eq!(names(&after), ["keep", "plain"]);
    assert!(after["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["complete"] == true));
    // AND nothing of `old` is left
    let outputs = wishctl(endpoint, &["outputs", "--stack", "old"]);
    assert_eq!(outputs.status.code(), Some(1));
    // AND the look-alikes were never touched
    assert!(table_exists(&session, "wishctl-fake-items").await);
    assert!(table_exists(&session, "wishctl-old-copy-items").await);
    assert!(role_exists(&session, &ghost_role).await);
    assert!(api_named(&session, "wishctl-ghost").await);

    // AND a second gc finds nothing to do
    let again = json(&ok(wishctl(
        endpoint,
        &["gc", "--expired", "--output", "json"],
    )));
    assert_eq!(again["stacks"], serde_json::json!([]));
}

#[tokio::test]
async fn gc_refuses_without_a_condition_and_one_failure_does_not_stop_the_others() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = testkit::lambda_zip::fake_bootstrap_zip(dir.path());
    let endpoint = session.endpoint();

    // GIVEN two PR stacks, one holding data, and a stack outside the prefix
    up(endpoint, &zip, "pr-data", &[]);
    up(endpoint, &zip, "pr-empty", &[]);
    up(endpoint, &zip, "main", &[]);
    put_item(&session, "wishctl-pr-data-items").await;

    // WHEN gc runs without a condition
    let refused = wishctl(endpoint, &["gc", "--stack-prefix", "pr-"]);
    // THEN it refuses, saying what to pass, and removes nothing
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("--expired"),
        "{}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("--older-than"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(names(&list(endpoint)), ["main", "pr-data", "pr-empty"]);

    // WHEN gc removes PR stacks older than an hour (these were created seconds ago)
    let young = json(&ok(wishctl(
        endpoint,
        &[
            "gc",
            "--older-than",
            "1h",
            "--stack-prefix",
            "pr-",
            "--output",
            "json",
        ],
    )));
    // THEN none matches, every one of the prefix is kept (the stack outside it is not even
    // read), and nothing was changed
    assert_eq!(young["stacks"], serde_json::json!([]), "{young:#}");
    assert_eq!(young["apiCalls"]["mutating"], 0, "{young:#}");
    let mut kept: Vec<&str> = young["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, ["pr-data", "pr-empty"], "{young:#}");
    assert_eq!(names(&list(endpoint)), ["main", "pr-data", "pr-empty"]);

    // WHEN gc removes every PR stack of any age, without --delete-data
    let gc = wishctl(
        endpoint,
        &[
            "gc",
            "--older-than",
            "0s",
            "--stack-prefix",
            "pr-",
            "--output",
            "json",
        ],
    );

    // THEN the stack holding data fails (its table is never deleted silently), the other goes,
    // and the exit code says not all went
    assert_eq!(gc.status.code(), Some(1), "{}", stderr(&gc));
    let report = json(&gc);
    assert_eq!(report["ok"], false);
    let outcome = |name: &str| {
        report["stacks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stack"] == name)
            .map(|s| s["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(outcome("pr-data").as_deref(), Some("failed"));
    assert_eq!(outcome("pr-empty").as_deref(), Some("removed"));
    assert_eq!(outcome("main"), None);
    let error = report["stacks"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("--delete-data"), "{report:#}");
    assert_eq!(names(&list(endpoint)), ["main", "pr-data"]);
    assert!(table_exists(&session, "wishctl-pr-data-items").await);

    // AND with --delete-data it goes too, still never touching `main`, and the text report
    // names what it deleted
    let text = ok(wishctl(
        endpoint,
        &[
            "gc",
            "--older-than",
            "0s",
            "--stack-prefix",
            "pr-",
            "--delete-data",
        ],
    ));
    assert_eq!(names(&list(endpoint)), ["main"]);
    let printed = stdout(&text);
    assert!(printed.contains("removed stack pr-data"), "{printed}");
    assert!(
        printed.contains("wishctl-pr-data-items deleted"),
        "{printed}"
    );
}

/// A regression test: `gc --dry-run` promised "would remove stack pr-5" for a stack with an
/// untagged table under its names, the real run then failed with advice meant for `up`
/// ("choose another --stack"), and the hourly sweep failed on every run after.
#[tokio::test]
async fn gc_skips_a_stack_with_a_resource_not_its_own_and_dry_run_says_so() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = testkit::lambda_zip::fake_bootstrap_zip(dir.path());
    let endpoint = session.endpoint();

    // GIVEN a complete PR stack holding an item, and stack pr-5: its role (tagged) and a table
    // under its table's name that someone made by hand (not tagged)
    up(endpoint, &zip, "pr-ok", &[]);
    put_item(&session, "wishctl-pr-ok-items").await;
    role_only(&session, "pr-ok", "pr-5").await;
    look_alike_table(&session, "wishctl-pr-5-items", &[("team", "web")]).await;
    let role_5 = json(&ok(wishctl(
        endpoint,
        &["outputs", "--stack", "pr-ok", "--output", "json"],
    )))["role"]
        .as_str()
        .unwrap()
        .replacen("wishctl-pr-ok-", "wishctl-pr-5-", 1);
    let sweep = |extra: &[&str]| {
        let mut args = vec!["gc", "--older-than", "0s", "--stack-prefix", "pr-"];
        args.extend(extra);
        wishctl(endpoint, &args)
    };
    let outcome = |report: &Value, name: &str| {
        report["stacks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stack"] == name)
            .unwrap_or_else(|| panic!("{name} not in {report:#}"))
            .clone()
    };

    // WHEN gc --dry-run runs without --delete-data
    let dry = sweep(&["--dry-run", "--output", "json"]);
    // THEN it reports what the real run would do: pr-5 skipped (the table named, and what to
    // do), pr-ok failing for its items; the exit code is the real run's
    assert_eq!(dry.status.code(), Some(1), "{}", stderr(&dry));
    let report = json(&dry);
    let pr5 = outcome(&report, "pr-5");
    assert_eq!(pr5["outcome"], "skipped", "{report:#}");
    let why = pr5["error"].as_str().unwrap();
    for needle in [
        "table wishctl-pr-5-items",
        "not tagged",
        "by hand",
        "wishctl:stack=pr-5",
    ] {
        assert!(why.contains(needle), "{needle:?} not in {why}");
    }
    assert!(!why.contains("another --stack"), "{why}");
    let ok_stack = outcome(&report, "pr-ok");
    assert_eq!(ok_stack["outcome"], "would-fail", "{report:#}");
    assert!(
        ok_stack["error"]
            .as_str()
            .unwrap()
            .contains("--delete-data"),
        "{report:#}"
    );
    assert!(
        stderr(&dry).contains("add --delete-data"),
        "{}",
        stderr(&dry)
    );
    // AND the text form never promises pr-5's removal
    let dry_text = sweep(&["--dry-run", "--delete-data"]);
    assert_eq!(dry_text.status.code(), Some(0), "{}", stderr(&dry_text));
    let printed = stdout(&dry_text);
    assert!(!printed.contains("would remove stack pr-5"), "{printed}");
    assert!(printed.contains("skipped stack pr-5"), "{printed}");
    assert!(printed.contains("would remove stack pr-ok"), "{printed}");
    assert!(!printed.contains("(expired)"), "{printed}");

    // WHEN the real sweep runs, twice (as the hourly schedule would)
    for run in 0..2 {
        let real = sweep(&["--delete-data"]);
        // THEN it exits 0: pr-ok goes, pr-5 is skipped with a warning, nothing of it deleted
        assert_eq!(real.status.code(), Some(0), "run {run}: {}", stderr(&real));
        let printed = stdout(&real);
        assert!(printed.contains("skipped stack pr-5"), "{printed}");
        assert!(
            stderr(&real).contains("warning: skipped stack pr-5"),
            "{}",
            stderr(&real)
        );
        assert!(
            !stderr(&real).contains("another --stack"),
            "{}",
            stderr(&real)
        );
        if run == 0 {
            assert!(printed.contains("removed stack pr-ok"), "{printed}");
        }
        assert!(table_exists(&session, "wishctl-pr-5-items").await);
        assert!(role_exists(&session, &role_5).await);
    }
    assert!(!table_exists(&session, "wishctl-pr-ok-items").await);
}
