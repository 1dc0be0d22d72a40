//! The AWS retry settings every `wishctl` run starts from: `AWS_MAX_ATTEMPTS` /
//! `AWS_RETRY_MODE` from the environment, then the profile's `max_attempts` / `retry_mode`, then
//! wishctl's own (standard mode, `provision::MAX_ATTEMPTS`). Counted as attempts per call on an
//! endpoint (the test proxy in front of moto) that throttles every call; the retry mode as every
//! client holds it, read from wishctl's debug log (the adaptive mode's effect, a client-side
//! rate limiter, shows only in timing). And the attempt
//! timeouts: a short first attempt, longer retries, on an endpoint slower than the first.

#![allow(clippy::unwrap_used)]

use crate::support as cli;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cli::{command, moto, stderr};
use testkit::aws_proxy::{AwsCall, AwsProxy, Hold, ModelSettings, ProxyRecord};
use testkit::faults::throttle_response;

/// Runs `wishctl outputs` against an endpoint that throttles every call, with `env` set (and
/// no other retry settings); returns the most attempts any one call got.
fn attempts_when_everything_throttles(proxy: &AwsProxy, env: &[(&str, &str)]) -> usize {
    proxy.reset();
    let mut run = command(proxy.endpoint(), &["outputs", "--stack", "demo"]);
    run.env_remove("AWS_MAX_ATTEMPTS")
        .env_remove("AWS_RETRY_MODE")
        .env("AWS_CONFIG_FILE", "/nonexistent/wishctl-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/wishctl-test/credentials",
        );
    for (key, value) in env {
        run.env(key, value);
    }
    let output = run.output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Rate exceeded"),
        "{}",
        stderr(&output)
    );
    let mut per_call: BTreeMap<String, usize> = BTreeMap::new();
    for record in proxy.records() {
        let key = format!("{} {:?}", record.call, record.call.resource);
        *per_call.entry(key).or_default() += 1;
    }
    per_call.into_values().max().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_attempts_come_from_the_environment_then_the_profile_then_wishctl() {
    // GIVEN an endpoint that answers every call with its service's throttling error, and a
    // profile that sets max_attempts = 3
    let session = moto().await;
    let proxy = AwsProxy::start(
        session.endpoint(),
        ModelSettings::latency_only(Duration::ZERO),
    )
    .await
    .unwrap();
    proxy.set_responder(Some(Arc::new(|call: &AwsCall| {
        Some(throttle_response(call))
    })));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "[default]\nmax_attempts = 3\n").unwrap();
    let config = config.to_str().unwrap();

    // WHEN wishctl runs with AWS_MAX_ATTEMPTS=2, with the profile, with both, and with neither
    let env_only = attempts_when_everything_throttles(&proxy, &[("AWS_MAX_ATTEMPTS", "2")]);
    let profile_only = attempts_when_everything_throttles(&proxy, &[("AWS_CONFIG_FILE", config)]);
    let both = attempts_when_everything_throttles(
        &proxy,
        &[("AWS_CONFIG_FILE", config), ("AWS_MAX_ATTEMPTS", "2")],
    );
    let neither = attempts_when_everything_throttles(&proxy, &[]);

    // THEN each call was tried as often as the setting of highest precedence says: the
    // environment, then the profile, then wishctl's own 6
    assert_eq!(
        [env_only, profile_only, both, neither],
        [2, 3, 2, provision::MAX_ATTEMPTS as usize]
    );
}

/// Runs `wishctl outputs` with the debug log of `provision` on and `env` set (and no other
/// retry settings); returns the retry settings its AWS clients hold, as it logs them.
fn logged_retry_settings(endpoint: &str, env: &[(&str, &str)]) -> String {
    let mut run = command(endpoint, &["outputs", "--stack", "demo"]);
    run.env_remove("AWS_MAX_ATTEMPTS")
        .env_remove("AWS_RETRY_MODE")
        .env("RUST_LOG", "provision=debug")
        .env("AWS_CONFIG_FILE", "/nonexistent/wishctl-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/wishctl-test/credentials",
        );
    for (key, value) in env {
        run.env(key, value);
    }
    let output = run.output().unwrap();
    let text = stderr(&output);
    text.lines()
        .find(|line| line.contains("AWS retry settings: "))
        .unwrap_or_else(|| panic!("no retry settings logged:\n{text}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_mode_reaches_every_client_from_the_environment_then_the_profile() {
    // GIVEN moto, and a profile that sets retry_mode = adaptive
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "[default]\nretry_mode = adaptive\n").unwrap();
    let config = config.to_str().unwrap();
    let endpoint = session.endpoint();

    // WHEN wishctl runs with AWS_RETRY_MODE=adaptive, with the profile, with the profile and
    // AWS_RETRY_MODE=standard, and with neither
    let env_only = logged_retry_settings(endpoint, &[("AWS_RETRY_MODE", "adaptive")]);
    let profile_only = logged_retry_settings(endpoint, &[("AWS_CONFIG_FILE", config)]);
    let env_over_profile = logged_retry_settings(
        endpoint,
        &[("AWS_CONFIG_FILE", config), ("AWS_RETRY_MODE", "standard")],
    );
    let neither = logged_retry_settings(endpoint, &[]);

    // THEN every client of every service holds the mode of highest precedence (the
    // environment, then the profile, then wishctl's standard mode), with wishctl's attempts
    for (logged, mode) in [
        (&env_only, "adaptive"),
        (&profile_only, "adaptive"),
        (&env_over_profile, "standard"),
        (&neither, "standard"),
    ] {
        for service in ["dynamodb", "iam", "lambda", "logs", "apigateway", "sts"] {
            let expected = format!(
                "{service}: {mode} mode, {} attempts",
                provision::MAX_ATTEMPTS
            );
            assert!(logged.contains(&expected), "{expected} not in {logged}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_is_answered_at_a_retry_with_a_longer_attempt_timeout() {
    // GIVEN an endpoint that answers every call after 0.7 s, and a first attempt timeout of
    // 0.3 s (each retry gets twice the attempt before it: 0.6 s, 1.2 s, 2.4 s, ...)
    let session = moto().await;
    let proxy = AwsProxy::start(
        session.endpoint(),
        ModelSettings::latency_only(Duration::from_millis(700)),
    )
    .await
    .unwrap();

    // WHEN wishctl reads a stack through it
    let output = command(proxy.endpoint(), &["outputs", "--stack", "demo"])
        .env("WISHCTL_ATTEMPT_TIMEOUT", "0.3")
        .env_remove("WISHCTL_OPERATION_TIMEOUT")
        .env_remove("AWS_MAX_ATTEMPTS")
        .output()
        .unwrap();

    // THEN the run ended with the stack's real state, not a timeout: each call's first attempt
    // was abandoned, and a retry with a longer attempt timeout got the answer (with a fixed
    // 0.3 s, all six attempts of the first call would have timed out). Each attempt of a read
    // may also send a copy after a third of its time (0.25 s at the least), so the proxy sees
    // up to two requests per attempt.
    let stderr = stderr(&output);
    assert!(!stderr.contains("timeout"), "{stderr}");
    assert!(stderr.contains("not deployed"), "{stderr}");
    let mut per_call: BTreeMap<String, usize> = BTreeMap::new();
    for record in proxy.records() {
        let key = format!("{} {:?}", record.call, record.call.resource);
        *per_call.entry(key).or_default() += 1;
    }
    let others = per_call.values().copied().collect::<Vec<_>>();
    assert!(others.len() >= 4, "{per_call:?}");
    assert!(
        others.iter().all(|&sent| (2..=8).contains(&sent)),
        "{per_call:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_read_is_answered_by_its_copy_within_the_same_attempt() {
    // GIVEN an endpoint that holds the answer to the first call it gets for 60 s, and one
    // attempt of 9 s per call (no retry could make up for the stall; the copy goes out after
    // 3 s and has 6 s to be answered, time enough for a moto slowed by a loaded machine)
    let session = moto().await;
    let proxy = AwsProxy::start(
        session.endpoint(),
        ModelSettings::latency_only(Duration::ZERO),
    )
    .await
    .unwrap();
    proxy.set_gate(Some(Arc::new(|record: &ProxyRecord| {
        (record.seq == 1).then(|| Box::pin(tokio::time::sleep(Duration::from_secs(60))) as Hold)
    })));

    // WHEN wishctl reads a stack through it
    let output = command(proxy.endpoint(), &["outputs", "--stack", "demo"])
        .env("WISHCTL_ATTEMPT_TIMEOUT", "9")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("WISHCTL_OPERATION_TIMEOUT")
        .output()
        .unwrap();

    // THEN the stalled read was sent a second time while its attempt ran, the copy's answer was
    // used, and the run ended with the stack's real state instead of a timeout
    let stderr = stderr(&output);
    assert!(stderr.contains("not deployed"), "{stderr}");
    assert!(!stderr.contains("timeout"), "{stderr}");
    let records = proxy.records();
    let key = |r: &ProxyRecord| format!("{} {:?}", r.call, r.call.resource);
    let stalled = key(&records[0]);
    let sent = records.iter().filter(|r| key(r) == stalled).count();
    assert_eq!(
        sent,
        2,
        "{stalled}: {:?}",
        records.iter().map(key).collect::<Vec<_>>()
    );
}

#[test]
fn no_credentials_at_all_are_named_with_what_to_set_not_blamed_on_the_network() {
    // GIVEN no credentials anywhere: no keys in the environment, no profile files, no web
    // identity token, no container or instance metadata
    let home = tempfile::tempdir().unwrap();
    let mut run = command("http://127.0.0.1:9", &["list"]);
    for key in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        run.env_remove(key);
    }
    run.env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_MAX_ATTEMPTS", "1");

    // WHEN wishctl list runs
    let output = run.output().unwrap();

    // THEN it says there are no credentials and what to set, without the SDK's debug dump
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    for needle in [
        "no AWS credentials found",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "role-to-assume",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    for wrong in ["check the network", "ProviderChainError", "DispatchFailure"] {
        assert!(!text.contains(wrong), "{wrong:?} in {text}");
    }
}
