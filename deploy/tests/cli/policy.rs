//! The IAM policy of `wishctl policy` against what the commands really call.
//!
//! Every command a CI pipeline runs (`up` creating and updating, `plan`, `outputs`, `list`,
//! `logs`, `verify --stack`, `down`, `gc`) runs as a `wishctl` process against
//! moto with `WISHCTL_CALL_LOG`, including the paths that only drift or a refusal reach (a
//! trust policy edited by hand, an attached managed policy, a table with items). Then:
//! - every operation made has a row in `stack::OPERATIONS` (a failure names the rows to add);
//! - the printed policy document grants each operation's actions on this stack's real ARNs;
//! - the document grants no action that no command made (a failure names the grants to drop,
//!   or the scenario to add here);
//! - a stack outside the prefix matches none of the name-scoped statements;
//! - with a stack outside the prefix deployed in the same account, no call of any command (run
//!   with `--stack-prefix` where it has one) names a resource the policy does not grant that
//!   call's actions on: each call's resource is read from the request the call log records.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use stack::{grants_for, Target};
use testkit::moto::{MotoSession, ACCOUNT_ID, REGION};

use crate::support::moto;

/// A stack outside the prefix, as a production stack beside the pipeline's would be.
const OUTSIDE: &str = "main";

const ISSUER: &str = "https://tenant.eu.auth0.com/";
const STACK: &str = "pr-cov";
/// A well-formed JWT that no issuer signed (verify only needs its shape to forge a variant).
const FAKE_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsiLCJ0eXAiOiJKV1QifQ.eyJzdWIiOiJjaSIsImF1ZCI6ImF1ZDIifQ.c2lnbmF0dXJl";

fn wishctl(endpoint: &str, log: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wishctl"));
    command
        .args(args)
        .env_remove("AWS_PROFILE")
        .env("WISHCTL_CALL_LOG", log)
        // moto answers a few calls with 500 (GetAuthorizers among them): do not spend the retry
        // budget on them.
        .env("AWS_MAX_ATTEMPTS", "2");
    for (key, value) in testkit::moto::aws_env(endpoint) {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn expect(output: Output, code: i32, what: &str) -> Output {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}\nstdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

fn up_args<'a>(zip: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "up",
        "--stack",
        STACK,
        "--issuer",
        ISSUER,
        "--audience",
        "aud",
        "--artifact",
        zip,
        "--tag",
        "team=web",
    ];
    args.extend(extra);
    args
}

/// IAM's wildcard match: `*` any run of characters, `?` one.
fn iam_match(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

/// A real ARN of `stack`'s resource of `target`, written out by hand (not from the naming code;
/// the role's name comes from `outputs` of the deployed stack, with the stack name swapped).
fn arn_of(target: Target, stack: &str, role_of_stack: &str) -> String {
    let role = role_of_stack.replacen(
        &format!("wishctl-{STACK}-"),
        &format!("wishctl-{stack}-"),
        1,
    );
    match target {
        Target::Listing => "*".to_string(),
        Target::Table => format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/wishctl-{stack}-items"),
        Target::Role | Target::PassRoleToLambda => {
            format!("arn:aws:iam::{ACCOUNT_ID}:role/wishctl/{role}")
        }
        Target::Function => {
            format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:wishctl-{stack}-api")
        }
        Target::LogGroup => format!(
            "arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/lambda/wishctl-{stack}-api:*"
        ),
        Target::ApiCollection => format!("arn:aws:apigateway:{REGION}::/apis"),
        Target::Api => format!("arn:aws:apigateway:{REGION}::/apis/a1b2c3d4/routes/r5t6"),
        Target::ApiTags => format!(
            "arn:aws:apigateway:{REGION}::/tags/arn%3Aaws%3Aapigateway%3A{REGION}%3A%3A%2Fapis%2Fa1b2c3d4"
        ),
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// The statements of the document that allow `action` on `arn`.
fn allowing<'a>(document: &'a Value, action: &str, arn: &str) -> Vec<&'a Value> {
    document["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| strings(&s["Action"]).iter().any(|a| a == action))
        .filter(|s| strings(&s["Resource"]).iter().any(|r| iam_match(r, arn)))
        .collect()
}

/// `%XX` sequences decoded (paths and form bodies; `+` is a space in form bodies only).
fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The path of a request URI, without scheme, host and query.
fn uri_path(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split('?').next().unwrap()
}

/// The ARN of the resource that a logged call names, for a grant of `target`, read from the
/// request the call log recorded: a URI path (Lambda, API Gateway) or a body field (DynamoDB,
/// CloudWatch Logs, IAM). `*` for an account-wide listing.
fn resource_of(call: &Value, target: Target) -> String {
    if target == Target::Listing {
        return "*".to_string();
    }
    let service = call["service"].as_str().unwrap();
    let operation = call["operation"].as_str().unwrap();
    let request = &call["request"];
    let uri = request["uri"]
        .as_str()
        .unwrap_or_else(|| panic!("the call log has no request for {service} {operation}"));
    let path = uri_path(uri);
    let body = request["body"].as_str().unwrap_or_default();
    let json_body = || serde_json::from_str::<Value>(body).unwrap_or(Value::Null);
    let field = |name: &str| json_body()[name].as_str().map(str::to_string);
    let unknown = || panic!("cannot tell the resource of {service} {operation}: {call}");
    match service {
        "DynamoDB" => field("ResourceArn")
            .or_else(|| {
                field("TableName")
                    .map(|t| format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{t}"))
            })
            .unwrap_or_else(unknown),
        "IAM" => {
            let form: Vec<(String, String)> = body
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_string(), percent_decode(v, true)))
                .collect();
            let role = form
                .iter()
                .find(|(k, _)| k == "RoleName")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(unknown);
            // Every role wishctl names lives under its path.
            format!("arn:aws:iam::{ACCOUNT_ID}:role/wishctl/{role}")
        }
        "Lambda" => {
            if target == Target::PassRoleToLambda {
                return field("Role").unwrap_or_else(unknown);
            }
            let segments: Vec<String> = path.split('/').map(|s| percent_decode(s, false)).collect();
            let after = |name: &str| {
                segments
                    .iter()
                    .position(|s| s == name)
                    .and_then(|i| segments.get(i + 1))
                    .filter(|s| !s.is_empty())
                    .cloned()
            };
            if let Some(arn) = after("tags") {
                return arn;
            }
            let function = after("functions")
                .or_else(|| field("FunctionName"))
                .unwrap_or_else(unknown);
            if function.starts_with("arn:") {
                function
            } else {
                format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}")
            }
        }
        "CloudWatch Logs" => field("resourceArn")
            .or_else(|| {
                field("logGroupName")
                    .or_else(|| field("logGroupIdentifier"))
                    .map(|g| format!("arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{g}:*"))
            })
            .unwrap_or_else(unknown),
        "ApiGatewayV2" => {
            let rest = path.strip_prefix("/v2").unwrap_or(path);
            if target == Target::ApiTags && !rest.starts_with("/tags/") {
                // Tags given on create: authorised on the tagging resource of an API that has
                // no id yet.
                return arn_of(Target::ApiTags, STACK, "");
            }
            format!("arn:aws:apigateway:{REGION}::{rest}")
        }
        _ => unknown(),
    }
}

async fn drift_behind_wishctls_back(session: &MotoSession) {
    let sdk = session.sdk_config().await;
    // A trust policy edited by hand.
    let iam = aws_sdk_iam::Client::new(&sdk);
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    });
    iam.update_assume_role_policy()
        .role_name(format!("wishctl-{STACK}-{REGION}-fn"))
        .policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    // A table switched to provisioned capacity.
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    ddb.update_table()
        .table_name(format!("wishctl-{STACK}-items"))
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::Provisioned)
        .provisioned_throughput(
            aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                .read_capacity_units(1)
                .write_capacity_units(1)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // The integration on payload format 1.0, and the invoke permission for another source.
    let apigw = aws_sdk_apigatewayv2::Client::new(&sdk);
    let api = apigw
        .get_apis()
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .find(|a| a.name() == Some(&format!("wishctl-{STACK}")))
        .unwrap()
        .api_id()
        .unwrap()
        .to_string();
    let integrations = apigw.get_integrations().api_id(&api).send().await.unwrap();
    let integration = integrations.items()[0]
        .integration_id()
        .unwrap()
        .to_string();
    apigw
        .update_integration()
        .api_id(&api)
        .integration_id(integration)
        .payload_format_version("1.0")
        .send()
        .await
        .unwrap();
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let function = format!("wishctl-{STACK}-api");
    let statement = format!("wishctl-{STACK}-apigw");
    lambda
        .remove_permission()
        .function_name(&function)
        .statement_id(&statement)
        .send()
        .await
        .unwrap();
    lambda
        .add_permission()
        .function_name(&function)
        .statement_id(&statement)
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(format!(
            "arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:other/*/*/*"
        ))
        .send()
        .await
        .unwrap();
    // A function URL: a way around the authorizer.
    lambda
        .create_function_url_config()
        .function_name(&function)
        .auth_type(aws_sdk_lambda::types::FunctionUrlAuthType::None)
        .send()
        .await
        .unwrap();
}

async fn attach_managed_policy_and_an_item(session: &MotoSession) {
    let sdk = session.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let policy = iam
        .create_policy()
        .policy_name("someone-elses-policy")
        .policy_document(
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name(format!("wishctl-{STACK}-{REGION}-fn"))
        .policy_arn(policy.policy().unwrap().arn().unwrap())
        .send()
        .await
        .unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    ddb.put_item()
        .table_name(format!("wishctl-{STACK}-items"))
        .item("id", aws_sdk_dynamodb::types::AttributeValue::S("1".into()))
        .send()
        .await
        .unwrap();
}

async fn put_a_log_line(session: &MotoSession) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&session.sdk_config().await);
    let group = format!("/aws/lambda/wishctl-{STACK}-api");
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("s")
        .send()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("s")
        .log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(i64::try_from(now).unwrap())
                .message("a line")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_policy_grants_exactly_what_every_command_calls() {
    let session = moto().await;
    let endpoint = session.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.jsonl");
    let zip = testkit::lambda_zip::fake_bootstrap_zip(dir.path());
    let zip = zip.to_str().unwrap();
    // Other bytes than fake_bootstrap_zip (4096), so that up uploads new code.
    let other_code = testkit::lambda_zip::write_zip(
        &dir.path().join("other.zip"),
        "bootstrap",
        &testkit::lambda_zip::fake_elf(183, 8192),
    );
    let other_code = other_code.to_str().unwrap();
    let run =
        |args: &[&str], code: i32, what: &str| expect(wishctl(endpoint, &log, args), code, what);

    // GIVEN a stack outside the prefix in the same account, deployed by someone else (its calls
    // go to another log: the pipeline's role never makes them)
    let outside_log = dir.path().join("outside.jsonl");
    let mut outside_up = up_args(zip, &[]);
    outside_up[2] = OUTSIDE;
    expect(
        wishctl(endpoint, &outside_log, &outside_up),
        0,
        "up of the stack outside the prefix",
    );

    // GIVEN a pipeline's life of a stack: create, update everything that can change, drift
    run(&up_args(zip, &["--ttl", "2h"]), 0, "up (create)");
    run(
        &up_args(
            other_code,
            &[
                "--ttl",
                "3h",
                "--memory",
                "256",
                "--scope",
                "write:items",
                "--audience",
                "aud2",
                "--cors-origin",
                "https://app.example.com",
            ],
        ),
        0,
        "up (update code, memory, tags, audience, scope, CORS)",
    );
    let same = [
        "--ttl",
        "3h",
        "--memory",
        "256",
        "--scope",
        "write:items",
        "--audience",
        "aud2",
    ];
    run(&up_args(other_code, &same), 0, "up (CORS removed)");
    drift_behind_wishctls_back(&session).await;
    let mut plan = up_args(other_code, &same);
    plan[0] = "plan";
    plan.push("--detailed-exitcode");
    run(&plan, 2, "plan (drift)");
    run(&up_args(other_code, &same), 0, "up (repairs drift)");
    let outputs = run(
        &["outputs", "--stack", STACK, "--output", "json"],
        0,
        "outputs",
    );
    let outputs: Value = serde_json::from_slice(&outputs.stdout).unwrap();
    let role = outputs["role"].as_str().unwrap().to_string();
    assert!(role.starts_with(&format!("wishctl-{STACK}-")), "{role}");
    run(&["list", "--stack-prefix", "pr-"], 0, "list --stack-prefix");
    // verify reads the stack's outputs for its URL; moto's invoke URL serves nothing, so its
    // checks fail (exit 1): what counts here is the AWS calls it made to find the URL.
    run(
        &[
            "verify",
            "--stack",
            STACK,
            "--token",
            FAKE_TOKEN,
            "--timeout",
            "2s",
        ],
        1,
        "verify --stack",
    );
    put_a_log_line(&session).await;
    run(&["logs", "--stack", STACK], 0, "logs");
    attach_managed_policy_and_an_item(&session).await;
    run(
        &["down", "--stack", STACK],
        1,
        "down refusing a table with items",
    );
    run(
        &[
            "gc",
            "--older-than",
            "0s",
            "--stack-prefix",
            "pr-",
            "--dry-run",
        ],
        1,
        "gc --dry-run (would fail: the table holds items)",
    );
    run(
        &[
            "gc",
            "--older-than",
            "0s",
            "--stack-prefix",
            "pr-",
            "--delete-data",
        ],
        0,
        "gc (down with an attached managed policy)",
    );
    run(
        &["gc", "--expired", "--stack-prefix", "pr-"],
        0,
        "gc with nothing to do",
    );
    // gc without a condition refuses before any AWS call.
    let before = std::fs::read_to_string(&log).unwrap().lines().count();
    run(
        &["gc", "--stack-prefix", "pr-"],
        1,
        "gc without a condition",
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        before,
        "gc without a condition made AWS calls"
    );
    // The stack outside the prefix is still all there.
    expect(
        wishctl(endpoint, &outside_log, &["outputs", "--stack", OUTSIDE]),
        0,
        "outputs of the stack outside the prefix",
    );

    // WHEN the policy for the prefix is printed
    let printed = wishctl(
        endpoint,
        &log,
        &[
            "policy",
            "--stack-prefix",
            "pr-",
            "--region",
            REGION,
            "--account",
            ACCOUNT_ID,
            "--output",
            "json",
        ],
    );
    let document: Value = serde_json::from_slice(&expect(printed, 0, "policy").stdout).unwrap();

    let calls: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let made: BTreeSet<(String, String)> = calls
        .iter()
        .map(|call| {
            (
                call["service"].as_str().unwrap().to_string(),
                call["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        "ListRoles",
        "FilterLogEvents",
        "DetachRolePolicy",
        "UpdateTable",
    ] {
        assert!(
            made.iter().any(|(_, op)| op == expected),
            "the scenario no longer reaches {expected}: {made:?}"
        );
    }

    // THEN every operation made is in the table
    let unknown: Vec<String> = made
        .iter()
        .filter(|(service, op)| grants_for(service, op).is_none())
        .map(|(service, op)| format!("{service} {op}"))
        .collect();
    assert!(
        unknown.is_empty(),
        "operations wishctl made that stack::OPERATIONS (crates/stack/src/policy.rs) does not list: \
         {unknown:?}; add a row with the IAM actions of each"
    );

    // AND the document grants each of their actions on this stack's resources
    let mut used = BTreeSet::new();
    for (service, op) in &made {
        for grant in grants_for(service, op).unwrap() {
            let arn = arn_of(grant.target, STACK, &role);
            let statements = allowing(&document, grant.action, &arn);
            assert!(
                !statements.is_empty(),
                "{service} {op} needs {} on {arn}, which the policy does not grant:\n{document:#}",
                grant.action
            );
            for statement in statements {
                used.insert((
                    statement["Sid"].as_str().unwrap().to_string(),
                    grant.action.to_string(),
                ));
            }
        }
    }
    // AND no call named a resource the policy does not grant that call's actions on (with a
    // stack outside the prefix in the account: `list` and `gc` read nothing of it)
    let mut outside_the_policy = BTreeSet::new();
    for call in &calls {
        let (service, op) = (
            call["service"].as_str().unwrap(),
            call["operation"].as_str().unwrap(),
        );
        for grant in grants_for(service, op).unwrap_or_default() {
            let resource = resource_of(call, grant.target);
            if allowing(&document, grant.action, &resource).is_empty() {
                outside_the_policy
                    .insert(format!("{service} {op}: {} on {resource}", grant.action));
            }
        }
    }
    assert!(
        outside_the_policy.is_empty(),
        "calls on resources the policy for the prefix does not cover (AccessDenied for the CI \
         role): {outside_the_policy:#?}"
    );

    // AND iam:PassRole only towards Lambda
    let pass = allowing(
        &document,
        "iam:PassRole",
        &arn_of(Target::PassRoleToLambda, STACK, &role),
    );
    assert_eq!(pass.len(), 1);
    assert_eq!(
        pass[0]["Condition"]["StringEquals"]["iam:PassedToService"],
        "lambda.amazonaws.com"
    );

    // AND nothing it grants goes unused. One exception, named: the stack lock's heartbeat
    // (`logs:PutLogEvents`) is written every few seconds while a lock is held, and every run of
    // this scenario against moto ends before the first one.
    const ONLY_LONG_RUNS_REACH: [&str; 1] = ["logs:PutLogEvents"];
    let mut unused = Vec::new();
    for statement in document["Statement"].as_array().unwrap() {
        let sid = statement["Sid"].as_str().unwrap();
        for action in strings(&statement["Action"]) {
            if ONLY_LONG_RUNS_REACH.contains(&action.as_str()) {
                continue;
            }
            if !used.contains(&(sid.to_string(), action.clone())) {
                unused.push(format!("{sid}: {action}"));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "the policy grants actions no command made in this scenario: {unused:?}; drop their rows \
         from stack::OPERATIONS or make the scenario reach the call"
    );

    // AND a stack outside the prefix matches none of the name-scoped statements
    for target in [
        Target::Table,
        Target::Role,
        Target::Function,
        Target::LogGroup,
    ] {
        let foreign = arn_of(target, "main", &role);
        let matching: Vec<&Value> = document["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                strings(&s["Resource"])
                    .iter()
                    .any(|r| r != "*" && iam_match(r, &foreign))
            })
            .collect();
        assert!(matching.is_empty(), "{foreign} is granted by {matching:?}");
    }
}

#[test]
fn resources_are_read_from_the_logged_requests() {
    let call = |service: &str, operation: &str, uri: &str, body: &str| {
        serde_json::json!({"service": service, "operation": operation,
            "request": {"method": "POST", "uri": uri, "body": body}})
    };
    assert_eq!(
        resource_of(
            &call(
                "DynamoDB",
                "DescribeTable",
                "http://h:1/",
                r#"{"TableName":"wishctl-main-items"}"#
            ),
            Target::Table
        ),
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/wishctl-main-items")
    );
    assert_eq!(
        resource_of(
            &call(
                "IAM",
                "ListRoleTags",
                "http://h:1/",
                "Action=ListRoleTags&RoleName=wishctl-main-us-east-1-fn&Version=2010-05-08"
            ),
            Target::Role
        ),
        format!("arn:aws:iam::{ACCOUNT_ID}:role/wishctl/wishctl-main-us-east-1-fn")
    );
    assert_eq!(
        resource_of(
            &call("Lambda", "ListTags", "http://h:1/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Awishctl-main-api", ""),
            Target::Function
        ),
        "arn:aws:lambda:us-east-1:1:function:wishctl-main-api"
    );
    assert_eq!(
        resource_of(
            &call(
                "Lambda",
                "GetPolicy",
                "http://h:1/2015-03-31/functions/wishctl-main-api/policy",
                ""
            ),
            Target::Function
        ),
        format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:wishctl-main-api")
    );
    assert_eq!(
        resource_of(
            &call(
                "ApiGatewayV2",
                "GetRoutes",
                "http://h:1/v2/apis/abc/routes?maxResults=100",
                ""
            ),
            Target::Api
        ),
        format!("arn:aws:apigateway:{REGION}::/apis/abc/routes")
    );
}

#[test]
fn wildcards_match_as_iam_matches_them() {
    assert!(iam_match("wishctl-pr-*-items", "wishctl-pr-1-items"));
    assert!(iam_match("wishctl-pr-*-items", "wishctl-pr-a-b-items"));
    assert!(!iam_match("wishctl-pr-*-items", "wishctl-main-items"));
    assert!(iam_match("a?c", "abc"));
    assert!(!iam_match("a?c", "ac"));
}

/// The policy grants API Gateway on every HTTP API of the region (nothing reliable narrows it):
/// what it prints says so, with the mitigation, without breaking the JSON document.
#[test]
fn the_printed_policy_says_that_api_gateway_is_not_narrowed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.jsonl");
    let text = expect(
        wishctl(
            "http://127.0.0.1:9",
            &log,
            &["policy", "--stack-prefix", "pr-"],
        ),
        0,
        "policy",
    );
    let printed = self::text(&text.stdout);
    for needle in ["any HTTP API of the region", "an AWS account of their own"] {
        assert!(printed.contains(needle), "{needle:?} not in {printed}");
    }
    let json = expect(
        wishctl(
            "http://127.0.0.1:9",
            &log,
            &["policy", "--stack-prefix", "pr-", "--output", "json"],
        ),
        0,
        "policy --output json",
    );
    let document: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(document["Version"], "2012-10-17");
    assert!(
        self::text(&json.stderr).contains("any HTTP API of the region"),
        "{}",
        self::text(&json.stderr)
    );
    assert!(!log.exists(), "policy made AWS calls");
}
