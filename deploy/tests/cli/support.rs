//! Shared GIVEN steps of the `wishctl` process tests against moto (drift, race, deploy_regions,
//! deploy_issuer, aws_settings): spawning `wishctl` with moto as its AWS, reading its one JSON
//! object, and the SDK clients a test uses to change things behind its back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use testkit::moto::{MotoServer, MotoSession};

pub const ISSUER: &str = "https://tenant.eu.auth0.com/";

/// The password every URL of [`URLS_WITH_A_PASSWORD`] holds: no output may contain it.
pub const PASSWORD: &str = "hunter2";

/// Issuer (or endpoint) URLs a user might paste with credentials in them, each refused for a
/// different reason: control characters, spaces, not parsing at all, no scheme, or only the
/// credentials themselves.
pub const URLS_WITH_A_PASSWORD: [&str; 10] = [
    "https://user:hunter2@x.example.com/",
    "https://user:hunter2@x.example.com/\t",
    "https://user:hunter2@x.example.com/\n",
    "https://user:hunter2@x.example.com/ ",
    "https://user:hunter2@x.exa mple.com/",
    "https://user:hunter2@x.example.com:99999/",
    "https://user:hunter2/x@x.example.com/",
    "https://hunter2@x.example.com/",
    "user:hunter2@x.example.com",
    "//user:hunter2@x.example.com/",
];

/// Fails unless neither stdout nor stderr of `output` holds [`PASSWORD`].
pub fn assert_no_password(output: &Output, input: &str) {
    let (out, err) = (stdout(output), stderr(output));
    assert!(
        !out.contains(PASSWORD) && !err.contains(PASSWORD),
        "{input:?} echoed its password:\nstdout: {out}\nstderr: {err}"
    );
}

pub async fn moto() -> MotoSession {
    MotoServer::shared().session().await
}

/// `wishctl` with moto as its AWS (`AWS_ENDPOINT_URL`, region us-east-1), not yet run.
pub fn command(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wishctl"));
    command.args(args).env_remove("AWS_PROFILE");
    for (key, value) in testkit::moto::aws_env(endpoint) {
        command.env(key, value);
    }
    command
}

pub fn wishctl(endpoint: &str, args: &[&str]) -> Output {
    command(endpoint, args).output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Stdout parsed as exactly one JSON object.
pub fn json(output: &Output) -> Value {
    let text = stdout(output);
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {text}\n{}",
            stderr(output)
        )
    });
    assert!(value.is_object(), "{text}");
    value
}

pub fn artifact(dir: &Path) -> PathBuf {
    testkit::lambda_zip::fake_bootstrap_zip(dir)
}

/// `COMMAND --stack STACK --issuer ISSUER --audience aud --artifact ZIP --skip-issuer-check`.
pub fn stack_args<'a>(command: &'a str, stack: &'a str, zip: &'a str) -> Vec<&'a str> {
    vec![
        command,
        "--stack",
        stack,
        "--issuer",
        ISSUER,
        "--audience",
        "aud",
        "--artifact",
        zip,
        "--skip-issuer-check",
    ]
}

/// Runs `wishctl up` and asserts it succeeded.
pub fn up(endpoint: &str, stack: &str, zip: &str, extra: &[&str]) -> Output {
    let mut args = stack_args("up", stack, zip);
    args.extend(extra);
    let output = wishctl(endpoint, &args);
    assert!(output.status.success(), "up failed:\n{}", stderr(&output));
    output
}

/// Runs `wishctl plan --detailed-exitcode --output json`: (exit code, the plan).
pub fn plan(endpoint: &str, stack: &str, zip: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = stack_args("plan", stack, zip);
    args.extend(["--detailed-exitcode", "--output", "json"]);
    args.extend(extra);
    let output = wishctl(endpoint, &args);
    assert!(
        matches!(output.status.code(), Some(0 | 2)),
        "plan failed:\n{}",
        stderr(&output)
    );
    (output.status.code(), json(&output))
}

/// The changes of a plan that are not `no-change`, as `KIND NAME: FIELD, FIELD` lines.
pub fn changed(plan: &Value) -> Vec<String> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-change")
        .map(|c| {
            let fields: Vec<&str> = c["fields"]
                .as_array()
                .map(|f| f.iter().filter_map(|f| f["field"].as_str()).collect())
                .unwrap_or_default();
            format!(
                "{} {} {}: {}",
                c["action"].as_str().unwrap_or_default(),
                c["kind"].as_str().unwrap_or_default(),
                c["name"].as_str().unwrap_or_default(),
                fields.join(", ")
            )
        })
        .collect()
}

/// The HTTP APIs named `wishctl-STACK` in the clients' region.
pub async fn apis_named(apigw: &aws_sdk_apigatewayv2::Client, stack: &str) -> Vec<String> {
    let name = format!("wishctl-{stack}");
    apigw
        .get_apis()
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter(|a| a.name() == Some(name.as_str()))
        .filter_map(|a| a.api_id().map(str::to_string))
        .collect()
}

/// SDK configuration for moto in another region.
pub async fn sdk_in(session: &MotoSession, region: &str) -> aws_config::SdkConfig {
    session
        .sdk_config()
        .await
        .into_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}
