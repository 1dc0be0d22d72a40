//! `wishctl dev` and `wishctl token` as a user runs them: real processes, real HTTP on loopback.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use testkit::issuer::{unix_now, IssuerProcess};

const WISHCTL: &str = env!("CARGO_BIN_EXE_wishctl");
const ITEM: &str = r#"{"name": "Test Item 3", "description": "Test Description 3", "url": "https://www.amazon.com"}"#;
const AUDIENCE: &str = "https://wishlist.example.com";

/// A running `wishctl dev`, killed when dropped.
struct DevProcess {
    child: Child,
    port: u16,
    banner: Vec<String>,
    stderr: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
    /// stderr, when the test chose not to read it.
    held_stderr: Option<std::process::ChildStderr>,
}

impl DevProcess {
    fn start(args: &[&str]) -> DevProcess {
        Self::start_with_env(args, &[])
    }

    fn start_with_env(args: &[&str], env: &[(&str, String)]) -> DevProcess {
        Self::start_full(args, env, true)
    }

    /// `read_stderr: false` leaves stderr piped but never read, as a stalled log reader would.
    fn start_full(args: &[&str], env: &[(&str, String)], read_stderr: bool) -> DevProcess {
        let mut command = Command::new(WISHCTL);
        command
            .arg("dev")
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .env("PATH", path_without_wishctl());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("wishctl starts");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (out_tx, out_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if out_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        let mut held_stderr = None;
        if read_stderr {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if err_tx.send(line).is_err() {
                        break;
                    }
                }
            });
        } else {
            held_stderr = Some(stderr);
            drop(err_tx);
        }
        let mut banner = Vec::new();
        // The banner ends with the line telling how to stop.
        while !banner
            .last()
            .is_some_and(|l: &String| l.starts_with("Stop with Ctrl-C"))
        {
            match out_rx.recv_timeout(Duration::from_secs(15)) {
                Ok(line) => banner.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let errors: Vec<String> = err_rx.try_iter().collect();
                    panic!("wishctl dev printed no banner; stdout: {banner:?}; stderr: {errors:?}");
                }
            }
        }
        let first = banner.first().cloned().unwrap_or_default();
        let port = first
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no URL in the banner: {banner:?}"));
        DevProcess {
            child,
            port,
            banner,
            stderr: err_rx,
            stderr_seen: Vec::new(),
            held_stderr,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/wish-list-service", self.port)
    }

    fn still_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The stderr lines so far, waiting (up to 5 s) until `done` holds for them.
    fn stderr_until(&mut self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !done(&self.stderr_seen) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.stderr_seen.push(line),
                Err(_) => break,
            }
        }
        self.stderr_seen.clone()
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wishctl(args: &[&str]) -> Output {
    Command::new(WISHCTL)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("wishctl runs")
}

/// How the banner names `wishctl` when it is not on the PATH: the executable's own path.
fn wishctl_as_printed() -> String {
    std::fs::canonicalize(WISHCTL)
        .expect("wishctl exists")
        .display()
        .to_string()
}

/// A PATH without `wishctl` on it (the tests' own PATH might have an installed one).
fn path_without_wishctl() -> String {
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .filter(|dir| !dir.join("wishctl").exists())
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default()
}

fn dir_arg(dir: &Path) -> String {
    dir.display().to_string()
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    www_authenticate: Option<String>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("wishctl dev answers");
    let www_authenticate = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_string());
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    Answer {
        status,
        body,
        www_authenticate,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

async fn post(url: &str, token: Option<&str>) -> Answer {
    let mut request = client()
        .post(url)
        .header("content-type", "application/json")
        .body(ITEM);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    send(request).await
}

async fn get(url: &str) -> Answer {
    send(client().get(url)).await
}

#[tokio::test]
async fn the_walkthrough_test_section_with_wishctl_dev_and_wishctl_token() {
    // GIVEN `wishctl dev` with no configuration (its own issuer, in-memory store)
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let dev_dir_arg = dir_arg(dev_dir.path());
    let dev = DevProcess::start(&["--dev-dir", &dev_dir_arg, "--log", "off"]);
    let banner = dev.banner.join("\n");
    assert!(
        banner.contains(&format!("curl -i {}", dev.url())),
        "{banner}"
    );
    assert!(
        banner.contains(&format!(
            "TOKEN=$({} token --port {} --dev-dir {dev_dir_arg})",
            wishctl_as_printed(),
            dev.port
        )),
        "{banner}"
    );
    assert!(
        banner.contains("-H \"Authorization: Bearer $TOKEN\""),
        "{banner}"
    );

    // GET 200 with an empty list
    let listed = get(&dev.url()).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json(), json!({"Items": [], "Count": 0}));

    // POST without a token: 401
    let refused = post(&dev.url(), None).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, r#"{"message":"Unauthorized"}"#);
    assert_eq!(
        refused.www_authenticate.as_deref(),
        Some(
            r#"Bearer scope="" error="invalid_token" error_description="the request has no access token in its Authorization header""#
        )
    );

    // POST with a token printed by `wishctl token`: 201
    let port = dev.port.to_string();
    let minted = wishctl(&[
        "token",
        "--port",
        &port,
        "--dev-dir",
        &dev_dir_arg,
        "--sub",
        "auth0|walkthrough",
    ]);
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let token = String::from_utf8(minted.stdout).expect("utf-8");
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let created = post(&dev.url(), Some(token)).await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.json()["id"].as_str().expect("id").to_string();

    // The next GET shows the item, created by the token's subject
    let listed = get(&dev.url()).await.json();
    assert_eq!(listed["Count"], 1);
    assert_eq!(listed["Items"][0]["id"], id);
    assert_eq!(listed["Items"][0]["name"], "Test Item 3");
    assert_eq!(listed["Items"][0]["createdBy"], "auth0|walkthrough");
}

#[tokio::test]
async fn token_output_json_adds_claims_and_expiry_and_scopes_are_enforced() {
    // GIVEN `wishctl dev` whose POST route needs scope write:items
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let dev_dir_arg = dir_arg(dev_dir.path());
    let dev = DevProcess::start(&[
        "--dev-dir",
        &dev_dir_arg,
        "--scope",
        "write:items",
        "--log",
        "off",
    ]);
    assert!(
        dev.banner.join("\n").contains(&format!(
            "TOKEN=$({} token --port {} --dev-dir {dev_dir_arg} --scope write:items)",
            wishctl_as_printed(),
            dev.port
        )),
        "{:?}",
        dev.banner
    );
    let port = dev.port.to_string();

    // WHEN a token with that scope is asked for as JSON
    let out = wishctl(&[
        "token",
        "--port",
        &port,
        "--dev-dir",
        &dev_dir_arg,
        "--scope",
        "read:items",
        "--scope",
        "write:items",
        "--expires-in",
        "15m",
        "--output",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let minted: Value = serde_json::from_slice(&out.stdout).expect("json");
    // THEN it carries its claims and expiry
    assert_eq!(minted["token_type"], "Bearer");
    assert_eq!(minted["expires_in"], 900);
    let claims = &minted["claims"];
    assert_eq!(claims["iss"], format!("http://127.0.0.1:{port}/"));
    assert_eq!(claims["aud"], "wishctl-dev");
    assert_eq!(claims["sub"], "wishctl|dev-user");
    assert_eq!(claims["scope"], "read:items write:items");
    assert_eq!(
        claims["exp"]
            .as_i64()
            .zip(claims["iat"].as_i64())
            .map(|(e, i)| e - i),
        Some(900)
    );
    assert!(
        minted["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{minted}"
    );
    let token = minted["access_token"].as_str().expect("token");
    assert_eq!(post(&dev.url(), Some(token)).await.status, 201);

    // AND a token without the scope is forbidden
    let out = wishctl(&["token", "--port", &port, "--dev-dir", &dev_dir_arg]);
    let plain = String::from_utf8(out.stdout).expect("utf-8");
    let forbidden = post(&dev.url(), Some(plain.trim())).await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.body, r#"{"message":"Forbidden"}"#);
}

fn claims(issuer: &IssuerProcess, sub: &str, aud: &str) -> Value {
    let now = unix_now();
    json!({"iss": issuer.issuer(), "sub": sub, "aud": aud, "iat": now, "exp": now + 3600})
}

#[tokio::test]
async fn given_a_separate_issuer_process_then_its_tokens_are_accepted_through_discovery() {
    // GIVEN an OIDC issuer process and `wishctl dev --issuer` in another process
    let issuer = IssuerProcess::spawn().expect("test-issuer runs");
    let mut dev = DevProcess::start(&[
        "--issuer",
        issuer.issuer(),
        "--audience",
        AUDIENCE,
        "--log",
        "json",
    ]);
    assert!(dev
        .banner
        .join("\n")
        .contains(&format!("issuer     {}", issuer.issuer())));
    let stats = issuer.stats().await.expect("stats");
    assert_eq!(
        stats["discovery_requests"], 1,
        "keys are fetched at startup"
    );

    // WHEN it receives the issuer's token THEN 201, and the item is created by its subject
    let token = issuer
        .mint(&claims(&issuer, "auth0|from-issuer", AUDIENCE))
        .await
        .expect("token");
    assert_eq!(post(&dev.url(), Some(&token)).await.status, 201);
    assert_eq!(
        get(&dev.url()).await.json()["Items"][0]["createdBy"],
        "auth0|from-issuer"
    );

    // AND a token for another audience is refused
    let other = issuer
        .mint(&claims(&issuer, "auth0|x", "https://other.example.com"))
        .await
        .expect("token");
    let refused = post(&dev.url(), Some(&other)).await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.www_authenticate.as_deref(),
        Some(
            r#"Bearer scope="" error="invalid_token" error_description="the token does not have a valid audience""#
        )
    );

    // AND the keys were fetched once, not per request
    let stats = issuer.stats().await.expect("stats");
    assert_eq!(stats["discovery_requests"], 1);
    assert_eq!(stats["jwks_requests"], 1);

    // AND each request was logged as one JSON line without the token
    let json_lines = |lines: &[String]| -> Vec<Value> {
        lines
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    };
    let log = json_lines(&dev.stderr_until(|lines| json_lines(lines).len() >= 3));
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[0]["status"], 201);
    assert_eq!(log[0]["sub"], "auth0|from-issuer");
    assert_eq!(log[2]["reason"], "the token does not have a valid audience");
    let text = serde_json::to_string(&log).expect("json");
    assert!(!text.contains(&token) && !text.contains(&other));
}

#[tokio::test]
async fn given_a_discovery_document_that_never_arrives_then_posts_are_refused_and_dev_stays_up() {
    // GIVEN an issuer process whose discovery hangs
    let issuer = IssuerProcess::spawn().expect("test-issuer runs");
    issuer.hang_discovery(true).await.expect("hang");
    // WHEN `wishctl dev` starts against it
    let mut dev = DevProcess::start(&[
        "--issuer",
        issuer.issuer(),
        "--audience",
        AUDIENCE,
        "--log",
        "off",
    ]);
    // THEN it warns that the keys could not be fetched within 1500 ms, and serves anyway
    let warnings = dev
        .stderr_until(|lines| lines.iter().any(|l| l.contains("warning: cannot fetch")))
        .join("\n");
    assert!(
        warnings.contains("warning: cannot fetch the signing keys of")
            && warnings.contains("timed out after 1500 ms"),
        "{warnings}"
    );
    let token = issuer
        .mint(&claims(&issuer, "auth0|u", AUDIENCE))
        .await
        .expect("token");
    let refused = post(&dev.url(), Some(&token)).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, r#"{"message":"Unauthorized"}"#);
    let header = refused.www_authenticate.unwrap_or_default();
    assert!(
        header.contains(r#"error="invalid_token" error_description="the issuer's signing keys are unavailable: GET "#)
            && header.contains("timed out after 1500 ms"),
        "{header}"
    );
    // AND GET still works and the process is alive
    assert_eq!(get(&dev.url()).await.status, 200);
    assert!(dev.still_running());
}

#[tokio::test]
async fn dev_with_a_dynamodb_endpoint_creates_the_table_and_keeps_items_there() {
    let session = testkit::moto::MotoServer::shared().session().await;
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let dev_dir_arg = dir_arg(dev_dir.path());
    let dev = DevProcess::start_with_env(
        &[
            "--dev-dir",
            &dev_dir_arg,
            "--log",
            "off",
            "--dynamodb-endpoint",
            session.endpoint(),
            "--table",
            "dev-items",
        ],
        &testkit::moto::aws_env(session.endpoint()),
    );
    assert!(
        dev.banner
            .join("\n")
            .contains("DynamoDB table dev-items on"),
        "{:?}",
        dev.banner
    );
    let port = dev.port.to_string();
    let out = wishctl(&[
        "token",
        "--port",
        &port,
        "--dev-dir",
        &dev_dir_arg,
        "--sub",
        "auth0|dynamo",
    ]);
    let token = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(post(&dev.url(), Some(token.trim())).await.status, 201);

    let client = aws_sdk_dynamodb::Client::new(&session.sdk_config().await);
    let scan = client
        .scan()
        .table_name("dev-items")
        .send()
        .await
        .expect("scan");
    assert_eq!(scan.count(), 1);
    let item = &scan.items()[0];
    assert_eq!(
        item.get("createdBy")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("auth0|dynamo")
    );
    assert_eq!(get(&dev.url()).await.json()["Count"], 1);
}

#[test]
fn dev_with_a_dynamodb_endpoint_that_never_answers_fails_instead_of_hanging() {
    // GIVEN a "DynamoDB" that accepts connections and never answers
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", stalled.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in stalled.incoming().map_while(Result::ok).take(64) {
            held.push(stream);
        }
    });
    // WHEN `wishctl dev` is pointed at it
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(WISHCTL)
        .args(["dev", "--port", "0", "--log", "off", "--dev-dir"])
        .arg(dev_dir.path())
        .args(["--dynamodb-endpoint", &endpoint, "--table", "never"])
        .env_remove("RUST_LOG")
        .env_remove("AWS_PROFILE")
        .envs(testkit::moto::aws_env(&endpoint))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wishctl starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        let _ = tx.send(text);
    });
    // THEN it gives up by itself (its client's operation timeout) and says on what; the patience
    // here is many times that timeout
    let stderr = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let status = child.wait().expect("wait");
    let stderr = stderr.expect("wishctl dev gave up by itself instead of waiting forever");
    assert!(!status.success());
    assert!(stderr.contains("preparing table never on"), "{stderr}");
    assert!(stderr.contains("timeout"), "{stderr}");
}

#[test]
fn dev_with_an_issuer_needs_an_audience() {
    let out = wishctl(&[
        "dev",
        "--port",
        "0",
        "--issuer",
        "https://tenant.auth0.com/",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: --issuer https://tenant.auth0.com/ needs at least one --audience (the API identifier its tokens carry in aud)"
    );
}

#[test]
fn dev_refuses_a_plain_http_issuer_off_this_machine() {
    let out = wishctl(&[
        "dev",
        "--port",
        "0",
        "--issuer",
        "http://tenant.example.com/",
        "--audience",
        "a",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: --issuer is not usable: invalid issuer \"http://tenant.example.com/\""
        ),
        "{stderr}"
    );
}

#[test]
fn token_refuses_flags_it_cannot_honour() {
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let dev_dir_arg = dir_arg(dev_dir.path());
    for (args, message) in [
        (
            vec!["--port", "0"],
            "error: --port 0 names no server: give the port `wishctl dev` printed",
        ),
        (
            vec!["--expires-in", "0s"],
            "error: --expires-in must be between 1s and 30 days, got 0s",
        ),
        (
            vec!["--scope", "a b"],
            "error: --scope \"a b\" must be one non-empty word; repeat --scope for several",
        ),
        (vec!["--sub", " "], "error: --sub must not be empty"),
    ] {
        let mut full = vec!["token", "--dev-dir", &dev_dir_arg];
        full.extend(args.iter().copied());
        let out = wishctl(&full);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            message,
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let too_long = wishctl(&["token", "--dev-dir", &dev_dir_arg, "--expires-in", "31days"]);
    assert!(!too_long.status.success());
    assert!(String::from_utf8_lossy(&too_long.stderr)
        .starts_with("error: --expires-in must be between 1s and 30 days, got 1month"));
}

#[test]
fn token_and_dev_share_one_key_that_is_created_once() {
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let dev_dir_arg = dir_arg(dev_dir.path());
    let first = wishctl(&["token", "--dev-dir", &dev_dir_arg]);
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stderr).contains("created a new signing key"));
    let second = wishctl(&["token", "--dev-dir", &dev_dir_arg]);
    assert!(second.status.success());
    assert!(
        second.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let kid = |out: &Output| {
        let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let header = token.split('.').next().unwrap_or_default().to_string();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("json")["kid"].clone()
    };
    assert_eq!(kid(&first), kid(&second));
}

/// `sh -c SCRIPT` with `env`; its stdout, trimmed.
fn sh(script: &str, env: &[(&str, String)]) -> String {
    let mut command = Command::new("sh");
    command
        .args(["-c", script])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().expect("sh runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The banner line that starts with `prefix` (after indentation).
fn banner_line<'a>(banner: &'a [String], prefix: &str) -> &'a str {
    banner
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {banner:#?}"))
}

#[tokio::test]
async fn the_banner_commands_work_as_printed_with_or_without_wishctl_on_the_path() {
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let dev_dir_arg = dir_arg(dev_dir.path());
    // GIVEN wishctl is not on the PATH
    let dev = DevProcess::start(&["--dev-dir", &dev_dir_arg, "--log", "off"]);
    // THEN the banner names the executable itself, and its TOKEN line works as printed in sh
    let line = banner_line(&dev.banner, "TOKEN=$(");
    assert!(
        line.starts_with(&format!("TOKEN=$({} token", wishctl_as_printed())),
        "{line}"
    );
    let token = sh(
        &format!("{line}; printf %s \"$TOKEN\""),
        &[("PATH", path_without_wishctl())],
    );
    assert_eq!(post(&dev.url(), Some(&token)).await.status, 201);

    // GIVEN wishctl on the PATH (as after `cargo install --path deploy`)
    let bin_dir = std::path::Path::new(&wishctl_as_printed())
        .parent()
        .expect("bin dir")
        .display()
        .to_string();
    let path = format!("{bin_dir}:{}", path_without_wishctl());
    let on_path = DevProcess::start_with_env(
        &["--dev-dir", &dev_dir_arg, "--log", "off"],
        &[("PATH", path.clone())],
    );
    // THEN the banner says `wishctl`, and that works as printed too
    let line = banner_line(&on_path.banner, "TOKEN=$(");
    assert!(line.starts_with("TOKEN=$(wishctl token"), "{line}");
    let token = sh(&format!("{line}; printf %s \"$TOKEN\""), &[("PATH", path)]);
    assert_eq!(post(&on_path.url(), Some(&token)).await.status, 201);
}

#[tokio::test]
async fn a_pipelines_client_credentials_steps_run_unchanged_against_wishctl_dev() {
    // GIVEN `wishctl dev` as its own issuer
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let dev_dir_arg = dir_arg(dev_dir.path());
    let dev = DevProcess::start(&["--dev-dir", &dev_dir_arg, "--log", "off"]);
    // THEN its banner names the dev client, and prints the secret and the pipeline's command
    let client = banner_line(&dev.banner, "client ");
    assert!(client.contains("wishctl-dev-client"), "{client}");
    assert!(
        client.contains(&format!("http://127.0.0.1:{}/oauth/token", dev.port)),
        "{client}"
    );
    let export = banner_line(&dev.banner, "export WISHCTL_CLIENT_SECRET=");
    let secret = std::fs::read_to_string(dev_dir.path().join("client-secret")).expect("secret");
    assert_eq!(
        export,
        format!("export WISHCTL_CLIENT_SECRET={}", secret.trim())
    );
    let command = dev
        .banner
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("TOKEN=$("))
        .find(|l| l.contains("--client-id"))
        .expect("a client-credentials TOKEN line")
        .to_string();
    assert!(
        command.contains(&format!(
            "--issuer http://127.0.0.1:{}/ --client-id wishctl-dev-client --client-secret-env WISHCTL_CLIENT_SECRET --audience wishctl-dev",
            dev.port
        )),
        "{command}"
    );
    // WHEN a pipeline runs those two lines
    let token = sh(
        &format!("{export}; {command}; printf %s \"$TOKEN\""),
        &[("PATH", path_without_wishctl())],
    );
    // THEN the token is an Auth0-style machine token that the API accepts
    let claims = {
        use base64::Engine as _;
        let payload = token.split('.').nth(1).expect("a JWT");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("json")
    };
    assert_eq!(claims["sub"], "wishctl-dev-client@clients");
    assert_eq!(claims["gty"], "client-credentials");
    assert_eq!(post(&dev.url(), Some(&token)).await.status, 201);

    // AND a wrong secret is refused with the dev issuer's OAuth error
    let port = dev.port.to_string();
    let wrong = Command::new(WISHCTL)
        .args([
            "token",
            "--port",
            &port,
            "--client-id",
            "wishctl-dev-client",
            "--client-secret-env",
            "S",
        ])
        .env("S", "wrong")
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert!(!wrong.status.success());
    let text = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        text.contains("(HTTP 401): invalid_client: wrong client id or secret"),
        "{text}"
    );
}

#[test]
fn dev_refuses_an_issuer_with_credentials_without_echoing_them() {
    let out = wishctl(&[
        "dev",
        "--port",
        "0",
        "--issuer",
        "https://admin:hunter2@tenant.auth0.com/",
        "--audience",
        "a",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: --issuer must not contain a user name or password"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2") && stderr.contains("admin:***@tenant.auth0.com"),
        "{stderr}"
    );
}

#[test]
fn dev_refuses_an_issuer_or_endpoint_with_a_password_without_echoing_it() {
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let dev_dir_arg = dir_arg(dev_dir.path());
    for url in crate::support::URLS_WITH_A_PASSWORD {
        for flags in [
            ["--issuer", url, "--audience", "a"],
            ["--dynamodb-endpoint", url, "--dev-dir", &dev_dir_arg],
        ] {
            let out = Command::new(WISHCTL)
                .args(["dev", "--port", "0"])
                .args(flags)
                .env("RUST_LOG", "trace")
                .stdin(Stdio::null())
                .output()
                .expect("wishctl runs");
            assert!(
                !out.status.success(),
                "{flags:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            crate::support::assert_no_password(&out, url);
        }
    }
}

/// A request the server cannot parse, on a connection of its own: the status of its answer (0
/// when none comes within 5 s). The server logs, at DEBUG, that the connection ended with an
/// error.
async fn unparsable_request_status(port: u16) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream
            .write_all(b"GET /wish-list-service HTTP/1.1\r\nno colon here\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer)
            .split(' ')
            .nth(1)?
            .parse()
            .ok()
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_stderr_nobody_reads_never_freezes_the_server_even_at_debug_level() {
    // GIVEN `wishctl dev` at RUST_LOG=debug, logging every request to a stderr pipe that is never
    // read
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let dev_dir_arg = dir_arg(dev_dir.path());
    let mut dev = DevProcess::start_full(
        &["--dev-dir", &dev_dir_arg, "--log", "text"],
        &[("RUST_LOG", "debug".to_string())],
        false,
    );
    // WHEN far more log lines are due than the pipe (64 KiB, a few hundred lines) and the log's
    // queue (4096 lines) hold together: each round a request log line and a DEBUG line about a
    // connection that sent something unparsable
    let client = client();
    for round in 0..3000 {
        // THEN every request is still answered, the bad ones included
        let bad = unparsable_request_status(dev.port).await;
        assert!((400..500).contains(&bad), "round {round}: {bad}");
        let status = client
            .get(dev.url())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        assert_eq!(status, 200, "round {round}");
    }
    assert!(dev.still_running());
    // AND once stderr is read again, the log says how many lines it had to drop, and the DEBUG
    // lines went through the same queue
    let stderr = dev.held_stderr.take().expect("held stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let _ = unparsable_request_status(dev.port).await;
    let _ = get(&dev.url()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (mut dropped_report, mut debug_line, mut lines) = (false, false, 0);
    while !(dropped_report && debug_line) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                lines += 1;
                dropped_report |= line.contains("dropped_log_lines=");
                debug_line |= line.contains("DEBUG") && line.contains("connection ended");
            }
            Err(_) => panic!(
                "in {lines} lines: a dropped_log_lines report: {dropped_report}, a DEBUG line: {debug_line}"
            ),
        }
    }
}

#[tokio::test]
async fn no_token_or_client_secret_reaches_the_dev_log_at_trace_level() {
    // GIVEN `wishctl dev` at RUST_LOG=trace
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let dev_dir_arg = dir_arg(dev_dir.path());
    let mut dev = DevProcess::start_with_env(
        &["--dev-dir", &dev_dir_arg, "--log", "json"],
        &[("RUST_LOG", "trace".to_string())],
    );
    let secret = std::fs::read_to_string(dev_dir.path().join("client-secret"))
        .expect("secret")
        .trim()
        .to_string();
    // WHEN a token is issued by its endpoint and used, and a bad secret is tried
    let port = dev.port.to_string();
    let run_token = |secret: &str| {
        Command::new(WISHCTL)
            .args([
                "token",
                "--port",
                &port,
                "--client-id",
                "wishctl-dev-client",
                "--client-secret-env",
                "S",
            ])
            .env("S", secret)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("runs")
    };
    let issued = run_token(&secret);
    assert!(issued.status.success());
    let token = String::from_utf8_lossy(&issued.stdout).trim().to_string();
    assert_eq!(post(&dev.url(), Some(&token)).await.status, 201);
    let _ = run_token("wrong-secret-abc");
    let mut tampered = token.clone();
    tampered.push('x');
    assert_eq!(post(&dev.url(), Some(&tampered)).await.status, 401);
    // THEN the log has the four requests, and neither the token, its signature nor a secret
    let log = dev
        .stderr_until(|lines| {
            lines
                .iter()
                .filter(|l| l.contains("\"request_id\""))
                .count()
                >= 4
        })
        .join("\n");
    assert!(log.matches("\"request_id\"").count() >= 4, "{log}");
    let signature = token.split('.').nth(2).expect("signature");
    assert!(!log.contains(signature), "the token is in the log");
    assert!(!log.contains(&secret), "the client secret is in the log");
    assert!(
        !log.contains("wrong-secret-abc"),
        "a tried secret is in the log"
    );
}

#[test]
fn the_dev_key_defaults_to_a_per_user_folder_not_the_current_one() {
    // GIVEN a HOME and a current folder of their own
    let home = tempfile::tempdir().expect("home");
    let cwd = tempfile::tempdir().expect("cwd");
    let out = Command::new(WISHCTL)
        .arg("token")
        .current_dir(cwd.path())
        .env("HOME", home.path())
        .env_remove("XDG_STATE_HOME")
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // THEN the key is in the per-user state folder, and nothing in the current one
    let key = home.path().join(".local/state/wishctl/dev/signing-key.pk8");
    assert!(key.is_file());
    assert_eq!(std::fs::read_dir(cwd.path()).expect("cwd").count(), 0);
    // AND XDG_STATE_HOME moves it
    let state = tempfile::tempdir().expect("state");
    let out = Command::new(WISHCTL)
        .arg("token")
        .current_dir(cwd.path())
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", state.path())
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(state.path().join("wishctl/dev/signing-key.pk8").is_file());
}

/// A fresh git checkout.
fn git_checkout() -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("repo");
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(repo.path())
        .status()
        .expect("git runs");
    assert!(git.success());
    repo
}

/// `git status --porcelain --untracked-files=all` of `repo`: what `git add .` would take.
fn git_status(repo: &Path) -> String {
    let out = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(repo)
        .output()
        .expect("git runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `wishctl ARGS` run from `cwd`.
fn wishctl_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(WISHCTL)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("wishctl runs")
}

#[test]
fn a_dev_dir_inside_a_git_checkout_is_used_only_when_git_ignores_it() {
    // GIVEN a git checkout
    let repo = git_checkout();
    let keys = repo.path().join("sub/keys");
    let keys_arg = dir_arg(&keys);
    // WHEN the key would go into a folder git does not ignore
    let refused = wishctl(&["token", "--dev-dir", &keys_arg]);
    // THEN it is refused, saying why and what to do, and nothing is written
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refusing to keep the dev key and client secret in")
            && stderr.contains(
                "git does not ignore signing-key.pk8, client-secret, .signing-key.pk8.* and \
                 .client-secret.*"
            )
            && stderr.contains("Add the line `/sub/keys/` to"),
        "{stderr}"
    );
    assert!(!keys.exists());
    // AND once .gitignore covers it, it is used
    std::fs::write(repo.path().join(".gitignore"), "keys/\n").expect("gitignore");
    let accepted = wishctl(&["token", "--dev-dir", &keys_arg]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(keys.join("signing-key.pk8").is_file());
    assert_eq!(git_status(repo.path()), "?? .gitignore\n");
}

#[test]
fn a_dev_dir_where_git_ignores_only_the_key_is_refused_before_the_client_secret_is_written() {
    // GIVEN a checkout whose .gitignore covers the key file of sub/k, and not the client secret
    let repo = git_checkout();
    std::fs::write(repo.path().join(".gitignore"), "sub/k/signing-key.pk8\n").expect("gitignore");
    let sub = repo.path().join("sub");
    std::fs::create_dir(&sub).expect("sub");
    // WHEN `wishctl token --dev-dir ./k` runs in sub/
    let refused = wishctl_in(&sub, &["token", "--dev-dir", "./k"]);
    // THEN it is refused, naming the files git would commit and the line that ignores them all
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr
            .contains("git does not ignore client-secret, .signing-key.pk8.* and .client-secret.*")
            && stderr.contains("Add the line `/sub/k/` to"),
        "{stderr}"
    );
    // AND nothing was written: git sees only the .gitignore
    assert!(!sub.join("k").exists());
    assert_eq!(git_status(repo.path()), "?? .gitignore\n");

    // WHEN every file it writes is ignored (each named, temporary copies included)
    std::fs::write(
        repo.path().join(".gitignore"),
        "sub/k/signing-key.pk8\nsub/k/client-secret\nsub/k/.*.*\n",
    )
    .expect("gitignore");
    let accepted = wishctl_in(&sub, &["token", "--dev-dir", "./k"]);
    // THEN the folder is used, and git still sees nothing to commit in it
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(sub.join("k/signing-key.pk8").is_file() && sub.join("k/client-secret").is_file());
    assert_eq!(git_status(repo.path()), "?? .gitignore\n");
}

#[test]
fn a_default_dev_folder_inside_a_checkout_is_refused_without_suggesting_itself() {
    // GIVEN a home folder that is a git checkout (dotfiles), with no ignore rule for the state
    let home = git_checkout();
    let cwd = tempfile::tempdir().expect("cwd");
    // WHEN `wishctl token` uses the default folder
    let out = Command::new(WISHCTL)
        .arg("token")
        .current_dir(cwd.path())
        .env("HOME", home.path())
        .env_remove("XDG_STATE_HOME")
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    // THEN it is refused; the advice is to ignore the folder or move it, not to use the default
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Add the line `/.local/state/wishctl/dev/` to")
            && stderr.contains("set XDG_STATE_HOME to a folder outside the checkout")
            && !stderr.contains("the default"),
        "{stderr}"
    );
    assert!(!home.path().join(".local").exists());
}

#[cfg(unix)]
#[test]
fn a_dev_dir_or_key_that_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("dev");
    let dir_arg = dir_arg(&dir);
    assert!(wishctl(&["token", "--dev-dir", &dir_arg]).status.success());
    // A folder others can write
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = wishctl(&["token", "--dev-dir", &dir_arg]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is writable by others (mode 777)"),
        "{stderr}"
    );
    assert!(stderr.contains("chmod 700"), "{stderr}");
    // A key file others can write
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let key = dir.join("signing-key.pk8");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = wishctl(&["token", "--dev-dir", &dir_arg]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("signing-key.pk8 is writable by others (mode 666)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_listing_pages_through_every_item_once_and_bad_paging_parameters_are_named() {
    // GIVEN `wishctl dev` (in-memory store) and a token from `wishctl token`
    let dev_dir = tempfile::tempdir().expect("tempdir");
    let dev_dir_arg = dir_arg(dev_dir.path());
    let dev = DevProcess::start(&["--dev-dir", &dev_dir_arg, "--log", "off"]);
    let port = dev.port.to_string();
    let minted = wishctl(&["token", "--port", &port, "--dev-dir", &dev_dir_arg]);
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let token = String::from_utf8(minted.stdout).expect("utf-8");
    let token = token.trim();

    // AND five items posted with it
    let mut posted = Vec::new();
    for _ in 0..5 {
        let created = post(&dev.url(), Some(token)).await;
        assert_eq!(created.status, 201, "{created:?}");
        posted.push(created.json()["id"].as_str().expect("id").to_string());
    }

    // WHEN a client GETs with ?limit=2 and follows NextCursor until there is none
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 10, "the cursor never ran out: {seen:?}");
        let mut query = vec![("limit", "2".to_string())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let url = url::Url::parse_with_params(&dev.url(), &query).expect("url");
        let page = get(url.as_str()).await;
        assert_eq!(page.status, 200, "{page:?}");
        let page = page.json();
        let items = page["Items"].as_array().expect("Items");
        assert!(items.len() <= 2, "{page}");
        assert_eq!(page["Count"], items.len(), "{page}");
        seen.extend(
            items
                .iter()
                .map(|i| i["id"].as_str().expect("id").to_string()),
        );
        match page["NextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }

    // THEN every item was seen exactly once, in pages of at most two
    assert!(pages >= 3, "5 items in pages of 2 took {pages} page(s)");
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    sorted_seen.dedup();
    assert_eq!(
        sorted_seen.len(),
        seen.len(),
        "an item came twice: {seen:?}"
    );
    posted.sort();
    assert_eq!(sorted_seen, posted);

    // AND limit=0, a cursor that was never handed out and a repeated limit get a 400 that
    // names the parameter
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=2&limit=3", "limit"),
    ] {
        let refused = get(&format!("{}?{query}", dev.url())).await;
        assert_eq!(refused.status, 400, "{query}: {refused:?}");
        let message = refused.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            message.starts_with(&format!("{parameter} ")),
            "{query}: {refused:?}"
        );
    }
}
