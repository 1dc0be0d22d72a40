//! `wishctl logs` as a user runs it, against moto's CloudWatch Logs: the lines of a time window,
//! text and JSON, `--follow` printing new lines once each until `--for` ends, a window of many
//! pages printed page by page (and where it stops), and a stack that is not deployed.

#![allow(clippy::unwrap_used)]

use std::io::BufRead as _;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use serde_json::Value;
use testkit::moto::MotoSession;

use crate::support::moto;

const ISSUER: &str = "https://tenant.eu.auth0.com/";
const STREAM: &str = "2026/11/29/[$LATEST]0123456789abcdef";

fn command(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wishctl"));
    command.args(args).env_remove("AWS_PROFILE");
    for (key, value) in testkit::moto::aws_env(endpoint) {
        command.env(key, value);
    }
    command
}

fn wishctl(endpoint: &str, args: &[&str]) -> Output {
    command(endpoint, args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Deploys `stack` (which creates its log group) and opens a log stream in it, as Lambda would.
async fn deployed_with_stream(
    session: &MotoSession,
    stack: &str,
) -> aws_sdk_cloudwatchlogs::Client {
    let dir = tempfile::tempdir().unwrap();
    let zip = testkit::lambda_zip::fake_bootstrap_zip(dir.path());
    ok(wishctl(
        session.endpoint(),
        &[
            "up",
            "--stack",
            stack,
            "--issuer",
            ISSUER,
            "--audience",
            "aud",
            "--artifact",
            zip.to_str().unwrap(),
        ],
    ));
    let logs = aws_sdk_cloudwatchlogs::Client::new(&session.sdk_config().await);
    logs.create_log_stream()
        .log_group_name(format!("/aws/lambda/wishctl-{stack}-api"))
        .log_stream_name(STREAM)
        .send()
        .await
        .unwrap();
    logs
}

async fn put(logs: &aws_sdk_cloudwatchlogs::Client, stack: &str, lines: &[(i64, &str)]) {
    put_in(logs, stack, STREAM, lines).await;
}

async fn put_in(
    logs: &aws_sdk_cloudwatchlogs::Client,
    stack: &str,
    stream: &str,
    lines: &[(i64, &str)],
) {
    logs.put_log_events()
        .log_group_name(format!("/aws/lambda/wishctl-{stack}-api"))
        .log_stream_name(stream)
        .set_log_events(Some(
            lines
                .iter()
                .map(|(ts, message)| {
                    InputLogEvent::builder()
                        .timestamp(*ts)
                        .message(*message)
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap();
}

const REQUEST_LINE: &str = r#"{"method":"GET","route":"/wish-list-service","status":200,"latency_ms":12,"request_id":"r-1"}"#;
const ERROR_LINE: &str = "ERROR store unavailable: DynamoDB throttled the scan";

/// `wishctl logs ARGS` started in the background, its stdout read line by line by a thread
/// into the returned channel.
fn spawn_follow(
    endpoint: &str,
    args: &[&str],
) -> (
    std::process::Child,
    mpsc::Receiver<String>,
    std::thread::JoinHandle<()>,
) {
    let mut child = command(endpoint, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines, reader)
}

/// Waits for `child` to exit, killing it and failing with `what` after `within`; returns its
/// status and stderr.
fn exit_within(
    child: &mut std::process::Child,
    within: Duration,
    what: &str,
) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

#[tokio::test]
async fn logs_prints_the_lines_of_the_window_as_text_and_json() {
    let session = moto().await;
    let logs = deployed_with_stream(&session, "lg").await;
    // GIVEN a line from two hours ago and two recent ones (a request line and an error)
    let now = now_ms();
    put(
        &logs,
        "lg",
        &[
            (now - 2 * 3_600_000, "an old line"),
            (now - 60_000, REQUEST_LINE),
            (now - 30_000, ERROR_LINE),
        ],
    )
    .await;

    // WHEN logs runs with the default window (10 minutes) and --output json
    let output = ok(wishctl(
        session.endpoint(),
        &["logs", "--stack", "lg", "--output", "json"],
    ));

    // THEN it prints one object with the two recent lines, oldest first, the request line parsed
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["stack"], "lg");
    assert_eq!(value["logGroup"], "/aws/lambda/wishctl-lg-api");
    let events = value["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{value:#}");
    assert_eq!(events[0]["message"], REQUEST_LINE);
    assert_eq!(events[0]["json"]["status"], 200);
    assert_eq!(events[0]["logStream"], STREAM);
    assert_eq!(events[1]["message"], ERROR_LINE);
    assert!(events[1].get("json").is_none());
    assert!(events[1]["time"].as_str().unwrap().ends_with('Z'));
    assert!(events[0]["eventId"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));

    // AND the text form prints each line after its time
    let plain = text(&ok(wishctl(session.endpoint(), &["logs", "--stack", "lg"])).stdout);
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 2, "{plain}");
    assert!(lines[0].ends_with(REQUEST_LINE), "{plain}");
    assert!(lines[1].ends_with(ERROR_LINE), "{plain}");

    // AND a wider window includes the old line
    let wide = text(
        &ok(wishctl(
            session.endpoint(),
            &["logs", "--stack", "lg", "--since", "3h"],
        ))
        .stdout,
    );
    assert_eq!(wide.lines().count(), 3, "{wide}");
    assert!(wide.lines().next().unwrap().ends_with("an old line"));
}

#[tokio::test]
async fn follow_prints_new_lines_once_each_until_the_duration_ends() {
    let session = moto().await;
    let logs = deployed_with_stream(&session, "fl").await;
    let now = now_ms();
    put(&logs, "fl", &[(now - 5_000, REQUEST_LINE)]).await;

    // WHEN logs --follow --for 8s runs
    let (mut child, lines, reader) = spawn_follow(
        session.endpoint(),
        &[
            "logs", "--stack", "fl", "--follow", "--for", "8s", "--output", "json",
        ],
    );

    // THEN it prints the line already there
    let first = lines.recv_timeout(Duration::from_secs(60)).unwrap();
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["message"], REQUEST_LINE);

    // AND a line written while it follows shows up too
    put(&logs, "fl", &[(now_ms(), ERROR_LINE)]).await;

    // AND it stops by itself once the duration ends (bounded: killed after 60 s)
    let (status, stderr) = exit_within(
        &mut child,
        Duration::from_secs(60),
        "logs --follow --for 8s did not stop",
    );
    reader.join().unwrap();
    assert!(status.success(), "{stderr}");
    let rest: Vec<Value> = lines
        .try_iter()
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    // AND every line was printed once: polls overlap, the event ids tell repeats apart
    assert_eq!(rest.len(), 1, "{rest:?}\n{stderr}");
    assert_eq!(rest[0]["message"], ERROR_LINE);
    assert_ne!(rest[0]["eventId"], first["eventId"]);
}

#[tokio::test]
async fn logs_of_a_stack_that_is_not_deployed_says_where_to_look() {
    let session = moto().await;
    let output = wishctl(session.endpoint(), &["logs", "--stack", "nothing"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("/aws/lambda/wishctl-nothing-api"),
        "{stderr}"
    );
    assert!(stderr.contains("wishctl list"), "{stderr}");
    // It names the region it looked in.
    assert!(
        stderr.contains(&format!("does not exist in {}", testkit::moto::REGION)),
        "{stderr}"
    );

    // AND bad durations are refused before any AWS call
    let bad = wishctl(session.endpoint(), &["logs", "--since", "ten minutes"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("--since"),
        "{}",
        text(&bad.stderr)
    );
    let for_without_follow = wishctl(session.endpoint(), &["logs", "--for", "5s"]);
    assert_eq!(for_without_follow.status.code(), Some(1));
}

#[tokio::test]
async fn follow_without_a_duration_stops_cleanly_on_ctrl_c() {
    let session = moto().await;
    let logs = deployed_with_stream(&session, "fc").await;
    put(&logs, "fc", &[(now_ms() - 5_000, REQUEST_LINE)]).await;

    // GIVEN logs --follow with no --for, printing the line already there
    let (mut child, lines, reader) = spawn_follow(
        session.endpoint(),
        &["logs", "--stack", "fc", "--follow", "--output", "json"],
    );
    let first = lines.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(first.contains("\"message\""), "{first}");

    // WHEN the person presses Ctrl-C (SIGINT)
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());

    // THEN it stops, successfully, saying so (bounded: killed after 30 s)
    let (status, stderr) = exit_within(
        &mut child,
        Duration::from_secs(30),
        "logs --follow did not stop on SIGINT",
    );
    reader.join().unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.trim_end().ends_with("stopped"), "{stderr}");
}

/// A second Lambda instance's stream beside [`STREAM`].
const OTHER_STREAM: &str = "2026/11/29/[$LATEST]fedcba9876543210";
/// What `wishctl logs` reads per `FilterLogEvents` page in these tests (moto's default page is
/// 10,000 events; a busy log group on AWS makes many small pages).
const PAGE_SIZE_ENV: &str = "WISHCTL_TEST_LOG_PAGE_SIZE";

/// `count` lines a second apart ending a minute ago, alternating between two streams (as two
/// Lambda instances write them), each named by its position: `line 0007`.
async fn many_lines(session: &MotoSession, stack: &str, count: usize) -> Vec<String> {
    let logs = deployed_with_stream(session, stack).await;
    logs.create_log_stream()
        .log_group_name(format!("/aws/lambda/wishctl-{stack}-api"))
        .log_stream_name(OTHER_STREAM)
        .send()
        .await
        .unwrap();
    let first = now_ms() - 60_000 - 1_000 * i64::try_from(count).unwrap();
    let names: Vec<String> = (0..count).map(|i| format!("line {i:04}")).collect();
    for (stream, parity) in [(STREAM, 0), (OTHER_STREAM, 1)] {
        let lines: Vec<(i64, &str)> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(i, name)| (first + 1_000 * i64::try_from(i).unwrap(), name.as_str()))
            .collect();
        put_in(&logs, stack, stream, &lines).await;
    }
    names
}

fn messages_of_text(stdout: &[u8]) -> Vec<String> {
    text(stdout)
        .lines()
        .map(|l| l.split_once("  ").unwrap().1.to_string())
        .collect()
}

#[tokio::test]
async fn a_window_of_many_pages_prints_every_line_once_in_time_order() {
    // GIVEN 150 lines across two streams, read 7 a page (22 pages)
    let session = moto().await;
    let names = many_lines(&session, "mp", 150).await;
    let logs = |args: &[&str]| {
        let mut all = vec!["logs", "--stack", "mp"];
        all.extend(args);
        ok(command(session.endpoint(), &all)
            .env(PAGE_SIZE_ENV, "7")
            .output()
            .unwrap())
    };

    // WHEN logs runs, as text and as JSON
    let plain = logs(&[]);
    let json = logs(&["--output", "json"]);

    // THEN every line shows once, oldest first, the two streams merged by time
    assert_eq!(messages_of_text(&plain.stdout), names);
    // AND --output json is still one document with every event in order
    let value: Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", text(&json.stdout)));
    assert_eq!(value["stack"], "mp");
    assert_eq!(value["logGroup"], "/aws/lambda/wishctl-mp-api");
    assert!(value["since"].as_str().unwrap().ends_with('Z'));
    assert!(value.get("incomplete").is_none(), "{value:#}");
    let messages: Vec<&str> = value["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, names);

    // AND a window without lines is still one document, with no events
    let empty = logs(&["--since", "10s", "--output", "json"]);
    let value: Value = serde_json::from_slice(&empty.stdout).unwrap();
    assert_eq!(value["events"], serde_json::json!([]));
}

#[tokio::test]
async fn a_window_of_more_pages_than_the_bound_prints_the_oldest_lines_and_says_to_narrow_since() {
    // GIVEN 250 lines read one a page: more pages than logs reads (200)
    let session = moto().await;
    let names = many_lines(&session, "bp", 250).await;
    let logs = |args: &[&str]| {
        let mut all = vec!["logs", "--stack", "bp", "--since", "1h"];
        all.extend(args);
        command(session.endpoint(), &all)
            .env(PAGE_SIZE_ENV, "1")
            .output()
            .unwrap()
    };

    // WHEN logs runs
    let output = logs(&[]);

    // THEN the lines of the pages it read were printed as they came (the 200 oldest, in order)
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(messages_of_text(&output.stdout), names[..200]);
    // AND the error says what the bound means and what to do, without blaming the endpoint
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("/aws/lambda/wishctl-bp-api")
            && stderr.contains("more than 200 pages")
            && stderr.contains("200 oldest line(s)")
            && stderr.contains("Narrow --since"),
        "{stderr}"
    );
    assert!(!stderr.contains("endpoint"), "{stderr}");

    // AND with --output json, stdout is one document of those events, marked incomplete
    let output = logs(&["--output", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let value: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", text(&output.stdout)));
    assert_eq!(value["events"].as_array().unwrap().len(), 200);
    assert_eq!(value["events"][199]["message"], names[199].as_str());
    assert!(
        value["incomplete"]
            .as_str()
            .is_some_and(|reason| reason.contains("more than 200 pages")),
        "{value:#}"
    );
}
