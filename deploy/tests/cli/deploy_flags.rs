//! `wishctl up / plan / down / outputs` as a user runs them: help texts and flag errors. None of
//! these reach AWS: bad flags are refused before any call.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{stderr, stdout};

const ISSUER: &str = "https://tenant.eu.auth0.com/";

/// `wishctl ARGS` with an AWS that is nowhere (port 9), not yet run.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wishctl"));
    command
        .args(args)
        // Nowhere to go: a flag error must be reported before any AWS call.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

fn wishctl(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

/// A zip whose entry `entry` starts with an ELF header for `machine` (183 arm64, 62 x86_64).
fn zip_with(dir: &Path, entry: &str, machine: u16) -> PathBuf {
    let path = dir.join(format!("{entry}-{machine}.zip"));
    testkit::lambda_zip::write_zip(&path, entry, &testkit::lambda_zip::fake_elf(machine, 64))
}

#[test]
fn up_help_lists_every_flag_of_the_issue() {
    let output = wishctl(&["up", "--help"]);
    assert!(output.status.success());
    let help = stdout(&output);
    for flag in [
        "--issuer <URL>",
        "--audience <AUD>",
        "--stack <NAME>",
        "--scope <S>",
        "--arch <ARCH>",
        "--memory <MB>",
        "--artifact <ZIP>",
        "--tag <K=V>",
        "--cors-origin <ORIGIN>",
        "--region <REGION>",
        "--profile <PROFILE>",
        "--endpoint-url <URL>",
        "--output <FORMAT>",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(help.contains("[default: wishlist]"), "{help}");
    assert!(help.contains("[default: arm64]"), "{help}");
}

#[test]
fn plan_down_and_outputs_help_show_their_own_flags() {
    let plan = stdout(&wishctl(&["plan", "--help"]));
    assert!(
        plan.contains("--detailed-exitcode") && plan.contains("--issuer <URL>"),
        "{plan}"
    );
    let down = stdout(&wishctl(&["down", "--help"]));
    assert!(
        down.contains("--delete-data") && down.contains("--keep-data"),
        "{down}"
    );
    assert!(!down.contains("--issuer"), "{down}");
    let outputs = stdout(&wishctl(&["outputs", "--help"]));
    assert!(
        outputs.contains("--stack <NAME>") && outputs.contains("--output <FORMAT>"),
        "{outputs}"
    );
}

#[test]
fn an_issuer_that_is_not_https_is_refused() {
    let output = wishctl(&[
        "up",
        "--issuer",
        "http://tenant.auth0.com/",
        "--audience",
        "a",
    ]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("invalid issuer \"http://tenant.auth0.com/\""),
        "{err}"
    );
    assert!(err.contains("https"), "{err}");

    let relative = wishctl(&["plan", "--issuer", "tenant.auth0.com", "--audience", "a"]);
    assert_eq!(
        relative.status.code(),
        Some(1),
        "plan errors exit 1, never 2"
    );
    assert!(
        stderr(&relative).contains("must be an absolute URL"),
        "{}",
        stderr(&relative)
    );
}

#[test]
fn control_characters_and_user_info_are_refused_before_any_aws_call() {
    // Every case must fail on its flag, never on the unreachable AWS endpoint (port 9).
    let cases: [(&[&str], &str); 6] = [
        (
            &["--issuer", "https://tenant.auth0.com/\n", "--audience", "a"],
            "control characters",
        ),
        (
            &["--issuer", "https://ten\tant.auth0.com/", "--audience", "a"],
            "control characters",
        ),
        (
            &[
                "--issuer",
                "https://user:secret@tenant.auth0.com/",
                "--audience",
                "a",
            ],
            "user info",
        ),
        (
            &[
                "--issuer",
                ISSUER,
                "--audience",
                "a",
                "--tag",
                "team=web\nx",
            ],
            "control characters",
        ),
        (
            &[
                "--issuer",
                ISSUER,
                "--audience",
                "a",
                "--tag",
                "te\u{1b}am=web",
            ],
            "control characters",
        ),
        (
            &["--issuer", ISSUER, "--audience", "a\r"],
            "control characters",
        ),
    ];
    for (flags, rule) in cases {
        for command in ["up", "plan"] {
            let mut args = vec![command];
            args.extend(flags);
            let output = wishctl(&args);
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains(rule), "{args:?}: {err}");
            assert!(!err.contains("127.0.0.1:9"), "{args:?} reached AWS: {err}");
            // The password of a refused issuer URL is never echoed back.
            assert!(!err.contains("secret"), "{args:?}: {err}");
        }
    }
}

#[test]
fn an_issuer_or_endpoint_url_with_a_password_is_refused_without_echoing_it() {
    for issuer in crate::support::URLS_WITH_A_PASSWORD {
        for command_name in ["plan", "up"] {
            let output = command(&[command_name, "--issuer", issuer, "--audience", "a"])
                .env("RUST_LOG", "trace")
                .output()
                .unwrap();
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(1), "{issuer:?}: {err}");
            assert!(err.contains("invalid issuer"), "{issuer:?}: {err}");
            crate::support::assert_no_password(&output, issuer);
        }
        // The same URL as the AWS endpoint is refused before any call, as masked.
        let output = wishctl(&["outputs", "--endpoint-url", issuer]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{issuer:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("--endpoint-url"),
            "{}",
            stderr(&output)
        );
        crate::support::assert_no_password(&output, issuer);
    }
}

#[test]
fn more_than_fifty_audiences_are_refused() {
    let audiences: Vec<String> = (0..51).map(|i| format!("aud-{i}")).collect();
    let mut args = vec!["up", "--issuer", ISSUER];
    for audience in &audiences {
        args.extend(["--audience", audience.as_str()]);
    }
    let output = wishctl(&args);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(
            "too many audiences: 51 given, an HTTP API JWT authorizer accepts at most 50"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_invalid_stack_name_is_refused_by_every_command() {
    for command in [
        vec![
            "up",
            "--issuer",
            ISSUER,
            "--audience",
            "a",
            "--stack",
            "Bad_Name",
        ],
        vec![
            "plan",
            "--issuer",
            ISSUER,
            "--audience",
            "a",
            "--stack",
            "Bad_Name",
        ],
        vec!["down", "--stack", "Bad_Name"],
        vec!["outputs", "--stack", "Bad_Name"],
    ] {
        let output = wishctl(&command);
        assert!(!output.status.success(), "{command:?}");
        assert!(
            stderr(&output).contains("invalid stack name \"Bad_Name\""),
            "{command:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn an_artifact_that_is_not_a_zip_holding_bootstrap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let not_zip = dir.path().join("notes.zip");
    std::fs::write(&not_zip, "plain text").unwrap();
    let wrong_entry = zip_with(dir.path(), "main", 183);
    for (artifact, expected) in [
        (not_zip.as_path(), "cannot be read as a zip"),
        (wrong_entry.as_path(), "no entry named bootstrap"),
        (
            Path::new("/nonexistent/bootstrap.zip"),
            "/nonexistent/bootstrap.zip",
        ),
    ] {
        let output = wishctl(&[
            "up",
            "--issuer",
            ISSUER,
            "--audience",
            "a",
            "--artifact",
            artifact.to_str().unwrap(),
        ]);
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains(expected),
            "{expected}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn an_artifact_for_the_other_architecture_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let x86 = zip_with(dir.path(), "bootstrap", 62);
    let output = wishctl(&[
        "up",
        "--issuer",
        ISSUER,
        "--audience",
        "a",
        "--artifact",
        x86.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("holds a bootstrap for x86_64, but the function is arm64"),
        "{err}"
    );
}

#[test]
fn other_bad_values_name_the_rule_they_break() {
    for (flag, value, expected) in [
        ("--arch", "sparc", "invalid architecture \"sparc\""),
        ("--memory", "64", "invalid memory size 64 MB"),
        ("--tag", "novalue", "invalid tag \"novalue\""),
        (
            "--cors-origin",
            "https://app.example.com/path",
            "invalid CORS origin",
        ),
        ("--scope", "two words", "invalid scope"),
        // The flag and its valid range, not the tag it becomes.
        (
            "--ttl",
            "0s",
            "invalid --ttl \"0s\": must be longer than zero and at most 366d",
        ),
        (
            "--ttl",
            "400d",
            "invalid --ttl \"400d\": must be longer than zero and at most 366d",
        ),
        (
            "--ttl",
            "soon",
            "invalid --ttl \"soon\": expected a duration",
        ),
    ] {
        let output = wishctl(&["up", "--issuer", ISSUER, "--audience", "a", flag, value]);
        assert!(!output.status.success(), "{flag} {value}");
        assert!(
            stderr(&output).contains(expected),
            "{flag} {value}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn delete_data_and_keep_data_exclude_each_other() {
    let output = wishctl(&["down", "--delete-data", "--keep-data"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot be used with"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_issuer_or_audience_is_a_usage_error() {
    let output = wishctl(&["up", "--audience", "a"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--issuer <URL>"),
        "{}",
        stderr(&output)
    );
    let output = wishctl(&["up", "--issuer", ISSUER]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--audience <AUD>"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn plan_usage_errors_exit_1_so_detailed_exitcode_never_reads_them_as_changes() {
    // GIVEN a typo in a flag and a missing required flag
    for args in [
        &[
            "plan",
            "--detailed-exitcode",
            "--isuer",
            "https://t.auth0.com/",
        ][..],
        &["plan", "--detailed-exitcode", "--audience", "a"][..],
    ] {
        // WHEN plan runs
        let output = wishctl(args);
        // THEN it fails with 1 (clap alone would say 2, which means "changes pending")
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(stderr(&output).contains("error:"), "{}", stderr(&output));
    }
    // --help is not an error.
    assert_eq!(wishctl(&["plan", "--help"]).status.code(), Some(0));
}
