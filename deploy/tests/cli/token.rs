//! `wishctl token --client-id` as a pipeline runs it: a real `wishctl` process against a separate
//! issuer process (`test-issuer`), with the secret from an environment variable or stdin, the
//! issuer's own errors, and neither the secret nor the token in anything it logs.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use testkit::issuer::IssuerProcess;

const WISHCTL: &str = env!("CARGO_BIN_EXE_wishctl");
const AUDIENCE: &str = "https://wishlist.example.com";
const SECRET: &str = "ci-secret-5f2a9c";

/// `wishctl ARGS` with `env` set and `stdin` fed; RUST_LOG cleared unless `env` sets it.
fn wishctl(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut command = Command::new(WISHCTL);
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("CI_SECRET")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("wishctl runs");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("stdin");
    }
    child.wait_with_output().expect("wishctl ends")
}

async fn issuer() -> IssuerProcess {
    let issuer = IssuerProcess::spawn().expect("test-issuer runs");
    issuer
        .register_client("ci-app", SECRET, &[AUDIENCE])
        .await
        .expect("client registered");
    issuer
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

#[tokio::test]
async fn a_pipeline_gets_a_token_with_the_secret_from_an_environment_variable() {
    // GIVEN an issuer process with a machine-to-machine client
    let issuer = issuer().await;
    // WHEN the pipeline asks for a token, the secret in CI_SECRET
    let out = wishctl(
        &[
            "token",
            "--issuer",
            issuer.issuer(),
            "--audience",
            AUDIENCE,
            "--client-id",
            "ci-app",
            "--client-secret-env",
            "CI_SECRET",
        ],
        &[("CI_SECRET", SECRET)],
        None,
    );
    // THEN stdout is the bare token, an Auth0-style machine token
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout.clone()).expect("utf-8");
    let token = token.trim();
    let claims = claims(token);
    assert_eq!(claims["sub"], "ci-app@clients");
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["iss"], issuer.issuer());
    assert_eq!(claims["gty"], "client-credentials");
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let stats = issuer.stats().await.expect("stats");
    assert_eq!(stats["token_requests"], 1);
}

#[tokio::test]
async fn json_output_has_the_token_its_claims_and_expiry_and_stdin_carries_the_secret() {
    let issuer = issuer().await;
    let out = wishctl(
        &[
            "token",
            "--issuer",
            issuer.issuer(),
            "--audience",
            AUDIENCE,
            "--client-id",
            "ci-app",
            "--client-secret-stdin",
            "--scope",
            "write:items",
            "--output",
            "json",
        ],
        &[],
        Some(&format!("{SECRET}\n")),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 86400);
    assert_eq!(answer["scope"], "write:items");
    assert_eq!(answer["claims"]["sub"], "ci-app@clients");
    assert_eq!(answer["claims"]["scope"], "write:items");
    assert!(
        answer["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{answer}"
    );
    let token = answer["access_token"].as_str().expect("token");
    assert_eq!(claims(token), answer["claims"]);
}

#[tokio::test]
async fn a_wrong_secret_and_an_unknown_audience_show_the_issuers_error() {
    let issuer = issuer().await;
    let base = |audience: &'static str| {
        vec![
            "token",
            "--issuer",
            issuer.issuer(),
            "--audience",
            audience,
            "--client-id",
            "ci-app",
            "--client-secret-env",
            "CI_SECRET",
        ]
    };
    let wrong = wishctl(&base(AUDIENCE), &[("CI_SECRET", "not-the-secret")], None);
    assert!(!wrong.status.success());
    assert!(wrong.stdout.is_empty());
    let text = stderr(&wrong);
    assert!(
        text.contains("refused the client-credentials grant for client ci-app (HTTP 401): access_denied: Unauthorized"),
        "{text}"
    );
    assert!(text.contains("check the client id and secret"), "{text}");
    assert!(!text.contains("not-the-secret"), "{text}");

    let unknown = wishctl(
        &base("https://unknown.example.com"),
        &[("CI_SECRET", SECRET)],
        None,
    );
    assert!(!unknown.status.success());
    let text = stderr(&unknown);
    assert!(
        text.contains("(HTTP 403): access_denied: Service not found: https://unknown.example.com"),
        "{text}"
    );
    assert!(!text.contains(SECRET), "{text}");
}

#[tokio::test]
async fn the_secret_never_comes_from_a_flag_and_a_missing_one_is_named() {
    let issuer = issuer().await;
    let no_source = wishctl(
        &[
            "token",
            "--issuer",
            issuer.issuer(),
            "--client-id",
            "ci-app",
        ],
        &[],
        None,
    );
    assert!(!no_source.status.success());
    assert!(
        stderr(&no_source).contains("--client-id needs the client secret from --client-secret-env VAR or --client-secret-stdin"),
        "{}",
        stderr(&no_source)
    );
    let unset = wishctl(
        &[
            "token",
            "--issuer",
            issuer.issuer(),
            "--client-id",
            "ci-app",
            "--client-secret-env",
            "CI_SECRET",
        ],
        &[],
        None,
    );
    assert!(stderr(&unset).contains("the environment variable CI_SECRET is not set"));
    let as_flag = wishctl(
        &["token", "--client-id", "ci-app", "--client-secret", SECRET],
        &[],
        None,
    );
    assert!(!as_flag.status.success());
    assert!(stderr(&as_flag).contains("unexpected argument '--client-secret'"));
    let issuer_alone = wishctl(&["token", "--issuer", issuer.issuer()], &[], None);
    assert!(!issuer_alone.status.success());
    assert!(stderr(&issuer_alone).contains("--client-id"));
}

#[test]
fn an_issuer_url_with_credentials_is_refused_without_echoing_them() {
    let out = wishctl(
        &[
            "token",
            "--issuer",
            "https://admin:hunter2@tenant.auth0.com/",
            "--client-id",
            "ci-app",
            "--client-secret-env",
            "CI_SECRET",
        ],
        &[("CI_SECRET", SECRET)],
        None,
    );
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.starts_with("error: --issuer must not contain a user name or password"),
        "{text}"
    );
    assert!(
        !text.contains("hunter2") && text.contains("admin:***@tenant.auth0.com"),
        "{text}"
    );
}

#[test]
fn an_issuer_with_a_password_is_refused_without_echoing_it_whatever_else_is_wrong() {
    for issuer in crate::support::URLS_WITH_A_PASSWORD {
        let out = wishctl(
            &[
                "token",
                "--issuer",
                issuer,
                "--client-id",
                "ci-app",
                "--client-secret-env",
                "CI_SECRET",
            ],
            &[("CI_SECRET", SECRET), ("RUST_LOG", "trace")],
            None,
        );
        assert!(!out.status.success(), "{issuer:?}: {}", stderr(&out));
        crate::support::assert_no_password(&out, issuer);
    }
}

#[tokio::test]
async fn neither_the_secret_nor_the_token_reaches_the_log_at_trace_level() {
    let issuer = issuer().await;
    let out = wishctl(
        &[
            "token",
            "--issuer",
            issuer.issuer(),
            "--audience",
            AUDIENCE,
            "--client-id",
            "ci-app",
            "--client-secret-env",
            "CI_SECRET",
        ],
        &[("CI_SECRET", SECRET), ("RUST_LOG", "trace")],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout.clone()).expect("utf-8");
    let token = token.trim();
    let log = stderr(&out);
    assert!(!log.contains(SECRET), "the secret is in the log");
    assert!(
        !log.contains(token) && !log.contains(token.split('.').nth(2).unwrap_or(token)),
        "the token is in the log"
    );
    let wrong = wishctl(
        &[
            "token",
            "--issuer",
            issuer.issuer(),
            "--audience",
            AUDIENCE,
            "--client-id",
            "ci-app",
            "--client-secret-env",
            "CI_SECRET",
        ],
        &[("CI_SECRET", "wrong-secret-xyz"), ("RUST_LOG", "trace")],
        None,
    );
    assert!(!stderr(&wrong).contains("wrong-secret-xyz"));
}
