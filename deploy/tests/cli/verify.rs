//! `wishctl verify` as a process: it passes against `wishctl dev` and against a well-behaved
//! paginated server, and fails, naming the check, against servers whose POST is open, that accept
//! any signature, that lose items, or whose GET fails; never writing more than one item.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const WISHCTL: &str = env!("CARGO_BIN_EXE_wishctl");
const CHECKS: [&str; 5] = [
    "get-items",
    "post-without-token",
    "post-forged-signature",
    "post-with-token",
    "item-listed",
];

/// Runs `wishctl` off the async runtime (the servers of these tests run on it meanwhile).
async fn wishctl(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(WISHCTL);
        command
            .args(&args)
            .stdin(Stdio::null())
            .env_remove("WISHCTL_TOKEN")
            .env_remove("RUST_LOG");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    })
    .await
    .unwrap()
}

async fn verify_json(url: &str, token: &str) -> (Output, Value) {
    let output = wishctl(
        [
            "verify",
            "--url",
            url,
            "--token",
            token,
            "--output",
            "json",
            "--timeout",
            "5s",
        ]
        .map(String::from)
        .to_vec(),
        vec![],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, value)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

/// Asserts that exactly the `failing` checks failed, in the report, the exit code and stderr.
fn assert_failed(output: &Output, report: &Value, failing: &[&str]) {
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, CHECKS, "{report}");
    for name in CHECKS {
        let expected = !failing.contains(&name);
        assert_eq!(
            check(report, name)["passed"],
            expected,
            "check {name}: {report}"
        );
    }
    assert_eq!(report["failed"], json!(failing), "{report}");
    assert_eq!(report["passed"], failing.is_empty());
    assert_eq!(output.status.success(), failing.is_empty(), "{report}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in failing {
        assert!(
            stderr.contains(name),
            "stderr does not name {name}: {stderr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A small server of the wish-list API with one configurable flaw.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// None: POST needs exactly the test's token; GET pages 2 items at a time.
    None,
    /// POST needs no token at all.
    PostOpen,
    /// POST takes any bearer token shaped like a JWT, whoever signed it.
    AnySignature,
    /// POST answers 201 with an id but keeps nothing.
    LosesItems,
    /// GET answers 500.
    GetFails,
}

#[derive(Debug)]
struct FakeApi {
    flaw: Flaw,
    token: String,
    items: Mutex<Vec<Value>>,
    /// Items written by POSTs (the seeds excluded).
    writes: Mutex<usize>,
}

struct Request {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

const PAGE_SIZE: usize = 2;

impl FakeApi {
    async fn start(flaw: Flaw, token: &str, seeds: usize) -> (Arc<FakeApi>, String) {
        let items = (0..seeds)
            .map(|i| json!({"id": format!("seed-{i}"), "name": format!("seed {i}")}))
            .collect();
        let api = Arc::new(FakeApi {
            flaw,
            token: token.to_string(),
            items: Mutex::new(items),
            writes: Mutex::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/wish-list-service",
            listener.local_addr().unwrap()
        );
        let server = api.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move { server.serve(stream).await });
            }
        });
        (api, url)
    }

    fn writes(&self) -> usize {
        *self.writes.lock().unwrap()
    }

    async fn serve(&self, mut stream: TcpStream) {
        let Some(request) = read_request(&mut stream).await else {
            return;
        };
        let (status, body) = self.answer(&request);
        let reason = match status {
            200 => "OK",
            201 => "Created",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            _ => "Internal Server Error",
        };
        let body = body.to_string();
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn answer(&self, request: &Request) -> (u16, Value) {
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((&request.target, ""));
        if path != "/wish-list-service" {
            return (404, json!({"message": "Not Found"}));
        }
        match request.method.as_str() {
            "GET" if self.flaw == Flaw::GetFails => {
                (500, json!({"message": "Internal Server Error"}))
            }
            "GET" => {
                let start: usize = query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("cursor="))
                    .and_then(|c| c.strip_prefix("page-"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let items = self.items.lock().unwrap();
                let page: Vec<Value> = items.iter().skip(start).take(PAGE_SIZE).cloned().collect();
                let mut body = json!({"Items": page, "Count": page.len()});
                if start + PAGE_SIZE < items.len() {
                    body["NextCursor"] = json!(format!("page-{}", start + PAGE_SIZE));
                }
                (200, body)
            }
            "POST" => {
                let bearer = request
                    .headers
                    .get("authorization")
                    .and_then(|v| v.strip_prefix("Bearer "));
                let allowed = match self.flaw {
                    Flaw::PostOpen => true,
                    Flaw::AnySignature => bearer.is_some_and(|t| t.split('.').count() == 3),
                    _ => bearer == Some(self.token.as_str()),
                };
                if !allowed {
                    return (401, json!({"message": "Unauthorized"}));
                }
                let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let Some(name) = body.get("name").and_then(Value::as_str) else {
                    return (400, json!({"message": "name is required"}));
                };
                let id = format!("id-{}", uuid_like());
                *self.writes.lock().unwrap() += 1;
                if self.flaw != Flaw::LosesItems {
                    self.items
                        .lock()
                        .unwrap()
                        .push(json!({"id": id, "name": name}));
                }
                (201, json!({"id": id}))
            }
            _ => (405, json!({"message": "Method Not Allowed"})),
        }
    }
}

fn uuid_like() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[header_end..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

/// A token shaped like an Auth0 access token (its signature is not a real one: the fake servers
/// compare the whole string).
fn fake_token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "tenant-key-1"});
    let claims = json!({
        "iss": "https://tenant.example.com/", "aud": "https://wishlist.example.com",
        "sub": "ci@clients", "iat": now, "exp": now + 3600,
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(b"the issuer's signature")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_well_behaved_paginated_server_passes_and_the_item_is_found_on_a_later_page() {
    // GIVEN a server with 5 items, 2 per page, that checks its token exactly
    let token = fake_token();
    let (api, url) = FakeApi::start(Flaw::None, &token, 5).await;

    // WHEN verify runs
    let (output, report) = verify_json(&url, &token).await;

    // THEN every check passes, the new item was found by following NextCursor, one item written
    assert_failed(&output, &report, &[]);
    assert_eq!(check(&report, "item-listed")["got"], "listed on page 3");
    assert_eq!(api.writes(), 1);
    let name = report["item"]["name"].as_str().unwrap();
    assert!(name.starts_with("wishctl verify "), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_whose_post_is_open_fails_post_without_token_and_gets_no_extra_item() {
    let token = fake_token();
    let (api, url) = FakeApi::start(Flaw::PostOpen, &token, 1).await;
    let (output, report) = verify_json(&url, &token).await;
    assert_failed(
        &output,
        &report,
        &["post-without-token", "post-forged-signature"],
    );
    let got = check(&report, "post-without-token")["got"]
        .as_str()
        .unwrap();
    assert!(got.starts_with("400"), "{got}");
    // The refused POSTs carried a body the handler rejects: only verify's own item was written.
    assert_eq!(api.writes(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_accepts_any_signature_fails_post_forged_signature() {
    let token = fake_token();
    let (api, url) = FakeApi::start(Flaw::AnySignature, &token, 0).await;
    let (output, report) = verify_json(&url, &token).await;
    assert_failed(&output, &report, &["post-forged-signature"]);
    assert_eq!(api.writes(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_loses_items_fails_item_listed() {
    let token = fake_token();
    let (api, url) = FakeApi::start(Flaw::LosesItems, &token, 3).await;
    let (output, report) = verify_json(&url, &token).await;
    assert_failed(&output, &report, &["item-listed"]);
    let got = check(&report, "item-listed")["got"].as_str().unwrap();
    assert_eq!(got, "not in 3 items on 2 page(s)");
    assert_eq!(api.writes(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_whose_get_fails_fails_get_items() {
    let token = fake_token();
    let (_api, url) = FakeApi::start(Flaw::GetFails, &token, 0).await;
    let (output, report) = verify_json(&url, &token).await;
    assert_failed(&output, &report, &["get-items", "item-listed"]);
    assert!(check(&report, "get-items")["got"]
        .as_str()
        .unwrap()
        .starts_with("500"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_listening_fails_every_check_with_the_connection_error() {
    let port = testkit::moto::free_port();
    let (output, report) = verify_json(&format!("http://127.0.0.1:{port}"), &fake_token()).await;
    assert_failed(&output, &report, &CHECKS);
    assert_eq!(
        report["url"],
        format!("http://127.0.0.1:{port}/wish-list-service")
    );
    let got = check(&report, "get-items")["got"].as_str().unwrap();
    assert!(got.starts_with("error:"), "{got}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_text_output_is_a_table_that_names_the_failed_check() {
    let token = fake_token();
    let (_api, url) = FakeApi::start(Flaw::AnySignature, &token, 0).await;
    let output = wishctl(
        vec!["verify".into(), "--url".into(), url],
        vec![("WISHCTL_TOKEN".into(), token)],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[1].contains("CHECK") && lines[1].contains("EXPECTED") && lines[1].contains("GOT"),
        "{stdout}"
    );
    let forged = lines
        .iter()
        .find(|l| l.trim_start().starts_with("post-forged-signature"))
        .unwrap();
    assert!(forged.ends_with("FAIL"), "{stdout}");
    assert!(forged.contains("401") && forged.contains("400"), "{stdout}");
    assert!(lines
        .iter()
        .find(|l| l.trim_start().starts_with("get-items"))
        .unwrap()
        .ends_with("pass"));
    assert!(stdout.contains("1 of 5 checks failed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_verify_says_how_to_get_one() {
    let output = wishctl(
        ["verify", "--url", "http://127.0.0.1:9/"]
            .map(String::from)
            .to_vec(),
        vec![],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--token") && stderr.contains("WISHCTL_TOKEN"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Against `wishctl dev`: the real authorizer, the real handler.
// ---------------------------------------------------------------------------------------------

struct DevProcess {
    child: Child,
    port: u16,
}

impl DevProcess {
    /// `wishctl dev` with its own issuer, its key in `dev_dir`.
    fn start(dev_dir: &std::path::Path) -> DevProcess {
        Self::spawn(&["--dev-dir", &dev_dir.display().to_string()])
    }

    fn spawn(args: &[&str]) -> DevProcess {
        let mut child = Command::new(WISHCTL)
            .args(["dev", "--port", "0", "--log", "off"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let port = first
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            panic!("wishctl dev printed no URL: {first:?}");
        };
        // Keep draining the banner so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in rx {});
        DevProcess { child, port }
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_passes_against_wishctl_dev_and_writes_one_recognisable_item() {
    // GIVEN wishctl dev, its own issuer, and a token from wishctl token
    let dir = tempfile::tempdir().unwrap();
    let dev = DevProcess::start(dir.path());
    let port = dev.port.to_string();
    let dev_dir = dir.path().display().to_string();
    let token = wishctl(
        ["token", "--port", &port, "--dev-dir", &dev_dir]
            .map(String::from)
            .to_vec(),
        vec![],
    )
    .await;
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();

    // WHEN verify runs against its URL (a bare origin)
    let (output, report) = verify_json(&format!("http://127.0.0.1:{port}"), &token).await;

    // THEN every check passes, the forged token was refused by the authorizer
    assert_failed(&output, &report, &[]);
    assert_eq!(
        check(&report, "post-forged-signature")["got"]
            .as_str()
            .map(|g| g.starts_with("401")),
        Some(true)
    );
    // AND the API holds exactly one item, verify's, with a recognisable name
    let listing: Value = reqwest::get(format!("http://127.0.0.1:{port}/wish-list-service"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = listing["Items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listing}");
    assert_eq!(items[0]["id"], report["item"]["id"]);
    assert!(items[0]["name"]
        .as_str()
        .unwrap()
        .starts_with("wishctl verify "));
    drop(dev);
}

// ---------------------------------------------------------------------------------------------
// Client credentials: the token from an issuer's grant, as a pipeline gets it.
// ---------------------------------------------------------------------------------------------

/// `wishctl dev` trusting an external issuer (the test issuer, in this process).
fn dev_with_issuer(issuer: &str, audience: &str) -> DevProcess {
    DevProcess::spawn(&["--issuer", issuer, "--audience", audience])
}

fn verify_with_client(url: &str, issuer: &str) -> Vec<String> {
    [
        "verify",
        "--url",
        url,
        "--client-id",
        "ci-app",
        "--client-secret-env",
        "CI_SECRET",
        "--issuer",
        issuer,
        "--audience",
        "https://wishlist.example.com",
        "--output",
        "json",
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_client_credentials_verify_gets_its_token_from_the_issuer_and_passes() {
    // GIVEN an issuer with a machine-to-machine client, and wishctl dev trusting that issuer
    let issuer = testkit::issuer::TestIssuer::start().await.unwrap();
    issuer.register_client("ci-app", "s3cret", &["https://wishlist.example.com"]);
    let dev = dev_with_issuer(issuer.issuer(), "https://wishlist.example.com");
    let url = format!("http://127.0.0.1:{}/wish-list-service", dev.port);

    // WHEN verify runs with the client id, the secret in an environment variable
    let output = wishctl(
        verify_with_client(&url, issuer.issuer()),
        vec![("CI_SECRET".into(), "s3cret".into())],
    )
    .await;

    // THEN it got one token from the grant and every check passed; the secret is never printed
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    assert_failed(&output, &report, &[]);
    assert_eq!(issuer.token_requests(), 1);
    assert!(!stdout.contains("s3cret") && !stderr.contains("s3cret"));
    drop(dev);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_client_secret_fails_before_any_check_with_the_issuers_error() {
    let issuer = testkit::issuer::TestIssuer::start().await.unwrap();
    issuer.register_client("ci-app", "s3cret", &["https://wishlist.example.com"]);
    let token = fake_token();
    let (api, url) = FakeApi::start(Flaw::None, &token, 0).await;

    let output = wishctl(
        verify_with_client(&url, issuer.issuer()),
        vec![("CI_SECRET".into(), "wr0ng-secret-value".into())],
    )
    .await;

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("access_denied") && stderr.contains("Unauthorized"),
        "{stderr}"
    );
    assert!(stderr.contains("no token for verify"), "{stderr}");
    assert!(
        !stderr.contains("wr0ng-secret-value"),
        "the secret was printed: {stderr}"
    );
    assert!(output.stdout.is_empty());
    assert_eq!(api.writes(), 0);

    // An unset secret variable is named, and nothing is asked of the issuer.
    let output = wishctl(verify_with_client(&url, issuer.issuer()), vec![]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CI_SECRET"), "{stderr}");
    assert_eq!(issuer.token_requests(), 1);
}

// ---------------------------------------------------------------------------------------------
// --stack: the URL comes from the stack's outputs (moto's invoke URL serves nothing, so every
// check fails there; what is pinned is where the URL came from).
// ---------------------------------------------------------------------------------------------

/// The environment that points `wishctl` at moto.
fn moto_env(endpoint: &str) -> Vec<(String, String)> {
    testkit::moto::aws_env(endpoint)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_stack_the_url_is_read_from_the_stacks_outputs() {
    let session = testkit::moto::MotoServer::shared().session().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = testkit::lambda_zip::fake_bootstrap_zip(dir.path());
    let aws = moto_env(session.endpoint());
    let up = wishctl(
        [
            "up",
            "--stack",
            "verify-me",
            "--issuer",
            "https://tenant.example.com/",
            "--audience",
            "aud",
            "--artifact",
            zip.to_str().unwrap(),
            "--output",
            "json",
        ]
        .map(String::from)
        .to_vec(),
        aws.clone(),
    )
    .await;
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let outputs: Value = serde_json::from_slice(&up.stdout).unwrap();

    let output = wishctl(
        [
            "verify",
            "--stack",
            "verify-me",
            "--output",
            "json",
            "--timeout",
            "2s",
        ]
        .map(String::from)
        .to_vec(),
        [aws.clone(), vec![("WISHCTL_TOKEN".into(), fake_token())]].concat(),
    )
    .await;
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["url"], outputs["url"]);
    assert_eq!(report["stack"], "verify-me");
    assert_eq!(output.status.code(), Some(1));

    // A stack that is not deployed: an error before any check, naming the stack.
    let missing = wishctl(
        ["verify", "--stack", "not-there"]
            .map(String::from)
            .to_vec(),
        [aws, vec![("WISHCTL_TOKEN".into(), fake_token())]].concat(),
    )
    .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(missing.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("not-there"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_stack_and_client_credentials_the_issuer_and_audience_come_from_the_stacks_authorizer()
{
    // GIVEN a stack whose authorizer trusts a local issuer for one audience, and a client of that
    // issuer allowed only that audience (the issuer refuses a grant for any other)
    let session = testkit::moto::MotoServer::shared().session().await;
    let issuer = testkit::issuer::TestIssuer::start().await.unwrap();
    let audience = "https://wishlist.example.com";
    issuer.register_client("ci-app", "s3cret", &[audience]);
    let dir = tempfile::tempdir().unwrap();
    let zip = testkit::lambda_zip::fake_bootstrap_zip(dir.path());
    let aws = moto_env(session.endpoint());
    let env = |extra: Vec<(String, String)>| [aws.clone(), extra].concat();
    let up = wishctl(
        [
            "up",
            "--stack",
            "pr-1",
            "--issuer",
            issuer.issuer(),
            "--audience",
            audience,
            "--artifact",
            zip.to_str().unwrap(),
            "--output",
            "json",
        ]
        .map(String::from)
        .to_vec(),
        env(vec![(
            "WISHCTL_TEST_ALLOW_LOOPBACK_HTTP_ISSUER".into(),
            "1".into(),
        )]),
    )
    .await;
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let outputs: Value = serde_json::from_slice(&up.stdout).unwrap();
    let verify = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "verify",
            "--stack",
            "pr-1",
            "--client-id",
            "ci-app",
            "--client-secret-env",
            "CI_SECRET",
            "--output",
            "json",
            "--timeout",
            "2s",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|a| a.to_string()));
        wishctl(args, env(vec![("CI_SECRET".into(), "s3cret".into())]))
    };

    // WHEN verify --stack runs with client credentials and neither --issuer nor --audience
    let output = verify(&[]).await;

    // THEN it asked the stack's issuer for a token for the stack's audience, said so, and ran
    // the checks against the stack's URL (moto's invoke URL serves nothing: they fail)
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        stderr.contains(&format!(
            "using the issuer {} and audience {audience} of stack pr-1's authorizer",
            issuer.issuer()
        )),
        "{stderr}"
    );
    assert_eq!(issuer.token_requests(), 1, "{stderr}");
    let report: Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(report["url"], outputs["url"]);
    assert_eq!(report["stack"], "pr-1");
    assert_eq!(output.status.code(), Some(1));
    assert!(!stderr.contains("s3cret"), "{stderr}");

    // AND --audience wins over the stack's: the issuer is asked for that one, and refuses it
    let output = verify(&["--audience", "https://other.example.com"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("no token for verify")
            && stderr.contains("Service not found: https://other.example.com"),
        "{stderr}"
    );
    assert!(!stderr.contains("and audience"), "{stderr}");
    assert_eq!(issuer.token_requests(), 2);

    // AND --issuer wins over the stack's: nothing listens there, and the stack's issuer is not asked
    let output = verify(&["--issuer", "http://127.0.0.1:9/"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("no token for verify") && stderr.contains("127.0.0.1:9"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("using the audience {audience} of stack pr-1's")),
        "{stderr}"
    );
    assert_eq!(issuer.token_requests(), 2);

    // AND with --url there is no stack to read: --issuer is required, named, nothing is sent
    let output = wishctl(
        [
            "verify",
            "--url",
            "http://127.0.0.1:9/",
            "--client-id",
            "ci-app",
            "--client-secret-env",
            "CI_SECRET",
        ]
        .map(String::from)
        .to_vec(),
        env(vec![("CI_SECRET".into(), "s3cret".into())]),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_ne!(output.status.code(), Some(0));
    assert!(stderr.contains("--issuer"), "{stderr}");
    assert!(output.stdout.is_empty());
    assert_eq!(issuer.token_requests(), 2);
}
