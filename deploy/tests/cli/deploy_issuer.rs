//! The issuer pre-check of `wishctl plan` / `up` against a local OIDC issuer (testkit's, over
//! http on 127.0.0.1: the test-only allowance `WISHCTL_TEST_ALLOW_LOOPBACK_HTTP_ISSUER=1` stands
//! in for https; the https rule itself is unit-tested in cmd/issuer_check.rs and refused here
//! without the allowance). Configuration traps stop the run before any AWS call.

#![allow(clippy::unwrap_used)]

use crate::support as cli;

use std::process::Output;

use cli::{artifact, command, moto, stderr};
use serde_json::json;
use testkit::issuer::{DiscoveryMode, JwksMode, TestIssuer};

const ALLOW: &str = "WISHCTL_TEST_ALLOW_LOOPBACK_HTTP_ISSUER";

/// `wishctl plan` with `issuer`, AWS at `endpoint`, the loopback allowance on.
fn plan_with(endpoint: &str, issuer: &str, zip: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "plan",
        "--stack",
        "iss",
        "--issuer",
        issuer,
        "--audience",
        "aud",
        "--artifact",
        zip,
    ];
    args.extend(extra);
    command(endpoint, &args).env(ALLOW, "1").output().unwrap()
}

/// Nothing listens here: a run that reaches AWS fails with a connection error instead.
const NO_AWS: &str = "http://127.0.0.1:9";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_issuer_passes_and_the_plan_goes_on() {
    let session = moto().await;
    let issuer = TestIssuer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());

    let output = plan_with(
        session.endpoint(),
        issuer.issuer(),
        zip.to_str().unwrap(),
        &[],
    );

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("discovery document and JWKS checked (1 RSA signing key(s))"),
        "{}",
        stderr(&output)
    );
    assert_eq!(issuer.discovery_requests(), 1);
    assert_eq!(issuer.jwks_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trailing_slash_trap_stops_before_any_aws_call_naming_the_right_issuer() {
    let issuer = TestIssuer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let without_slash = issuer.issuer().trim_end_matches('/').to_string();

    let output = plan_with(NO_AWS, &without_slash, zip.to_str().unwrap(), &[]);

    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains("trailing slash"), "{said}");
    assert!(
        said.contains(&format!("Pass --issuer {}", issuer.issuer())),
        "{said}"
    );
    assert!(!said.contains("127.0.0.1:9"), "reached AWS: {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_without_an_rsa_signing_key_stops_the_run() {
    let issuer = TestIssuer::start().await.unwrap();
    issuer.unpublish(&issuer.current_kid());
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());

    let output = plan_with(NO_AWS, issuer.issuer(), zip.to_str().unwrap(), &[]);

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("holds no RSA signing key"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_issuer_is_reported_and_the_plan_goes_on() {
    let session = moto().await;
    let port = testkit::moto::free_port();
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());

    let output = plan_with(
        session.endpoint(),
        &format!("http://127.0.0.1:{port}/"),
        zip.to_str().unwrap(),
        &[],
    );

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("could not be reached"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_issuer_check_does_not_fetch_anything() {
    let session = moto().await;
    let issuer = TestIssuer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let without_slash = issuer.issuer().trim_end_matches('/').to_string();

    let output = plan_with(
        session.endpoint(),
        &without_slash,
        zip.to_str().unwrap(),
        &["--skip-issuer-check"],
    );

    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(issuer.discovery_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_issuer_is_refused_without_the_test_allowance() {
    let issuer = TestIssuer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let output = command(
        NO_AWS,
        &[
            "plan",
            "--issuer",
            issuer.issuer(),
            "--audience",
            "aud",
            "--artifact",
            zip.to_str().unwrap(),
        ],
    )
    .env_remove(ALLOW)
    .output()
    .unwrap();

    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("https"), "{}", stderr(&output));
    assert_eq!(issuer.discovery_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_that_names_another_issuer_stops_the_run_naming_both() {
    // GIVEN an issuer whose discovery document names a different issuer altogether
    let issuer = TestIssuer::start().await.unwrap();
    issuer.set_discovery_mode(DiscoveryMode::Document(json!({
        "issuer": "https://login.other.example.com/",
        "jwks_uri": issuer.jwks_url(),
    })));
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());

    // WHEN plan runs with --issuer as the user typed it
    let output = plan_with(NO_AWS, issuer.issuer(), zip.to_str().unwrap(), &[]);

    // THEN it stops before any AWS call, naming both issuers, not as a trailing-slash slip
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(
        said.contains("names issuer \"https://login.other.example.com/\""),
        "{said}"
    );
    assert!(
        said.contains(&format!("not --issuer {}", issuer.issuer())),
        "{said}"
    );
    assert!(!said.contains("trailing slash"), "{said}");
    assert!(!said.contains("127.0.0.1:9"), "reached AWS: {said}");
    assert_eq!(issuer.jwks_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_uri_that_is_not_https_stops_the_run_without_fetching_it() {
    // GIVEN an issuer (https, as far as the check knows: the loopback allowance stands in for
    // it) whose discovery document puts the keys behind plain http
    let issuer = TestIssuer::start().await.unwrap();
    issuer.set_discovery_mode(DiscoveryMode::Document(json!({
        "issuer": issuer.issuer(),
        "jwks_uri": "http://keys.example.com/.well-known/jwks.json",
    })));
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());

    // WHEN plan runs
    let output = plan_with(NO_AWS, issuer.issuer(), zip.to_str().unwrap(), &[]);

    // THEN it stops before any AWS call, naming the jwks_uri and the rule
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(
        said.contains("`jwks_uri` http://keys.example.com/.well-known/jwks.json"),
        "{said}"
    );
    assert!(said.contains("is not https"), "{said}");
    assert!(!said.contains("127.0.0.1:9"), "reached AWS: {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_uri_with_user_info_is_refused_and_its_credentials_never_printed() {
    // GIVEN an issuer whose discovery document names its own JWKS with credentials in the URL
    let issuer = TestIssuer::start().await.unwrap();
    let with_credentials = issuer
        .jwks_url()
        .replacen("http://", "http://keyreader:hunter2@", 1);
    issuer.set_discovery_mode(DiscoveryMode::Document(json!({
        "issuer": issuer.issuer(),
        "jwks_uri": with_credentials,
    })));
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());

    // WHEN plan runs
    let output = plan_with(NO_AWS, issuer.issuer(), zip.to_str().unwrap(), &[]);

    // THEN it stops, says why, never fetched the keys, and printed the password nowhere: the
    // URL is shown with it masked
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains("carries user info"), "{said}");
    let masked = issuer
        .jwks_url()
        .replacen("http://", "http://keyreader:***@", 1);
    assert!(said.contains(&masked), "{said}");
    let printed = format!("{said}{}", cli::stdout(&output));
    assert!(!printed.contains("hunter2"), "{printed}");
    assert_eq!(issuer.jwks_requests(), 0);
}

/// An RSA modulus of 2048 bits in base64url (not a real key: the check never verifies with it).
fn modulus_2048() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xC3_u8; 256])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_whose_only_rsa_key_the_authorizer_cannot_use_stops_the_run() {
    // GIVEN an issuer whose JWKS holds one RSA key marked for signatures, without a kid, with a
    // 15-bit modulus and an encryption alg: no token can be verified with it
    let issuer = TestIssuer::start().await.unwrap();
    issuer.set_jwks_mode(JwksMode::Document {
        body: json!({"keys":[{"kty":"RSA","n":"abc","e":"AQAB","use":"sig","alg":"RSA-OAEP"}]}),
    });
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());

    // WHEN plan runs
    let output = plan_with(NO_AWS, issuer.issuer(), zip.to_str().unwrap(), &[]);

    // THEN it stops before any AWS call, saying that no key is usable and why this one is not
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("holds no RSA signing key"), "{said}");
    assert!(said.contains("a key without kid: it has no kid"), "{said}");
    assert!(!said.contains("RSA signing key(s)"), "{said}");
    assert!(!said.contains("127.0.0.1:9"), "reached AWS: {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_unusable_key_is_named_with_why_it_was_skipped() {
    // GIVEN a JWKS of RSA keys with a kid that each break one rule of the authorizer
    let issuer = TestIssuer::start().await.unwrap();
    let n = modulus_2048();
    issuer.set_jwks_mode(JwksMode::Document {
        body: json!({"keys": [
            {"kty": "RSA", "kid": "oaep", "n": n, "e": "AQAB", "alg": "RSA-OAEP"},
            {"kty": "RSA", "kid": "short", "n": "abc", "e": "AQAB", "use": "sig"},
            {"kty": "RSA", "kid": "enc", "n": n, "e": "AQAB", "use": "enc"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AQAB", "y": "AQAB"}
        ]}),
    });
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());

    // WHEN plan runs
    let output = plan_with(NO_AWS, issuer.issuer(), zip.to_str().unwrap(), &[]);

    // THEN it stops, naming each key and its fault
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let said = stderr(&output);
    for expected in [
        "key \"oaep\": alg \"RSA-OAEP\" is not an RSA signing algorithm",
        "key \"short\": its modulus is 15 bits",
        "key \"enc\": use \"enc\" is not \"sig\"",
        "key \"ec\": kty \"EC\" is not RSA",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usable_key_beside_unusable_ones_passes_and_names_the_skipped() {
    // GIVEN the issuer's own signing key, and beside it a key with an encryption alg
    let issuer = TestIssuer::start().await.unwrap();
    let session = moto().await;
    let jwks: serde_json::Value = reqwest::get(issuer.jwks_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut keys = jwks["keys"].as_array().unwrap().clone();
    keys.push(
        json!({"kty": "RSA", "kid": "oaep", "n": modulus_2048(), "e": "AQAB", "alg": "RSA-OAEP"}),
    );
    issuer.set_jwks_mode(JwksMode::Document {
        body: json!({ "keys": keys }),
    });
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());

    // WHEN plan runs
    let output = plan_with(
        session.endpoint(),
        issuer.issuer(),
        zip.to_str().unwrap(),
        &[],
    );

    // THEN the plan goes on, counting one key, and says which was skipped
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("(1 RSA signing key(s))"), "{said}");
    assert!(said.contains("key \"oaep\": alg \"RSA-OAEP\""), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_document_behind_a_redirect_is_followed_as_the_authorizer_does() {
    // GIVEN an issuer whose discovery URL redirects (same scheme) to a copy of its document
    // served by a second issuer that names the first one and its keys
    let issuer = TestIssuer::start().await.unwrap();
    let copy = TestIssuer::start().await.unwrap();
    copy.set_discovery_mode(DiscoveryMode::Document(json!({
        "issuer": issuer.issuer(),
        "jwks_uri": issuer.jwks_url(),
    })));
    issuer.set_discovery_mode(DiscoveryMode::Redirect(copy.discovery_url()));
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());

    // WHEN plan runs
    let output = plan_with(
        session.endpoint(),
        issuer.issuer(),
        zip.to_str().unwrap(),
        &[],
    );

    // THEN the check followed the redirect and passed
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("(1 RSA signing key(s))"),
        "{}",
        stderr(&output)
    );
    assert_eq!(copy.discovery_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_a_bad_issuer_stops_before_creating_anything() {
    // GIVEN moto, which would accept every call, and an issuer typed without its trailing slash
    let session = moto().await;
    let issuer = TestIssuer::start().await.unwrap();
    let without_slash = issuer.issuer().trim_end_matches('/').to_string();
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let stack = "badiss";

    // WHEN up runs
    let output = command(
        session.endpoint(),
        &[
            "up",
            "--stack",
            stack,
            "--issuer",
            &without_slash,
            "--audience",
            "aud",
            "--artifact",
            zip.to_str().unwrap(),
        ],
    )
    .env(ALLOW, "1")
    .output()
    .unwrap();

    // THEN it stops on the trap
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("trailing slash"), "{said}");
    // AND nothing of the stack exists: no table, role, function, log group or API
    let sdk = session.sdk_config().await;
    let tables = aws_sdk_dynamodb::Client::new(&sdk)
        .list_tables()
        .send()
        .await
        .unwrap();
    assert!(
        !tables
            .table_names()
            .iter()
            .any(|t| t.contains(&format!("wishctl-{stack}"))),
        "{tables:?}"
    );
    let roles = aws_sdk_iam::Client::new(&sdk)
        .list_roles()
        .send()
        .await
        .unwrap();
    assert!(
        !roles
            .roles()
            .iter()
            .any(|r| r.role_name().contains(&format!("wishctl-{stack}"))),
        "{roles:?}"
    );
    let functions = aws_sdk_lambda::Client::new(&sdk)
        .list_functions()
        .send()
        .await
        .unwrap();
    assert!(
        !functions
            .functions()
            .iter()
            .any(|f| f.function_name().unwrap_or_default().contains(stack)),
        "{functions:?}"
    );
    let groups = aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/wishctl-{stack}"))
        .send()
        .await
        .unwrap();
    assert!(groups.log_groups().is_empty(), "{groups:?}");
    let apigw = aws_sdk_apigatewayv2::Client::new(&sdk);
    assert!(cli::apis_named(&apigw, stack).await.is_empty());
    assert_eq!(issuer.jwks_requests(), 0);
}
