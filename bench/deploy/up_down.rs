//! Benchmark of `wishctl up` / `wishctl down` against moto, directly and through a proxy that
//! adds a fixed delay to every call (the order of a real AWS round trip), side by side with the
//! walkthrough's steps done one by one with the `aws` CLI (`aws-cli-walkthrough.sh`).
//!
//! Run with `bash bench/deploy/run.sh` (it builds this as `cargo bench -p deploy --bench up_down`).
//! Environment: `RUNS` (default 5), `DELAY_MS` (default 50), `AWS_CLI` (default
//! `<workspace>/.venv/bin/aws`). Prints a Markdown table on stdout; details on stderr.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::latency_proxy::LatencyProxy;
use testkit::moto::MotoServer;

const ISSUER: &str = "https://tenant.eu.auth0.com/";
const AUDIENCE: &str = "https://wishlist.example.com";
const STACK: &str = "bench";

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("benchmark failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One measured command.
#[derive(Debug, Clone, Default)]
struct Sample {
    wall: Duration,
    /// `elapsedMs` of `up` (reconcile only: no process start, no zip check).
    reconcile: Option<Duration>,
    total: u64,
    mutating: u64,
    critical_path: u64,
    /// Requests the latency proxy saw (an independent count), when measured through it.
    proxied: Option<usize>,
    ok: bool,
}

fn median(samples: &[Sample], key: impl Fn(&Sample) -> f64) -> f64 {
    let mut values: Vec<f64> = samples.iter().map(key).collect();
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return f64::NAN;
    }
    values[values.len() / 2]
}

fn aws_env(command: &mut Command, endpoint: &str) {
    for (key, value) in testkit::moto::aws_env(endpoint) {
        command.env(key, value);
    }
    command.env("AWS_DEFAULT_REGION", testkit::moto::REGION);
    command.env_remove("AWS_PROFILE");
}

fn wishctl(endpoint: &str, args: &[&str], proxy: Option<&LatencyProxy>) -> anyhow::Result<Sample> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wishctl"));
    command.args(args);
    aws_env(&mut command, endpoint);
    let before = proxy.map(LatencyProxy::requests);
    let started = Instant::now();
    let output = command.output()?;
    let wall = started.elapsed();
    let proxied = proxy.zip(before).map(|(p, b)| p.requests() - b);
    if !output.status.success() {
        anyhow::bail!(
            "wishctl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let value: Value = serde_json::from_slice(&output.stdout)?;
    let calls = &value["apiCalls"];
    Ok(Sample {
        wall,
        reconcile: value["elapsedMs"].as_u64().map(Duration::from_millis),
        total: calls["total"].as_u64().unwrap_or(0),
        mutating: calls["mutating"].as_u64().unwrap_or(0),
        critical_path: calls["criticalPath"].as_u64().unwrap_or(0),
        proxied,
        ok: true,
    })
}

/// Runs the aws CLI script; its call count comes from its `calls N` line. Every aws call is on
/// the critical path: the script runs them one after the other.
fn aws_cli(
    script: &Path,
    endpoint: &str,
    args: &[&str],
    proxy: Option<&LatencyProxy>,
) -> anyhow::Result<(Sample, Output)> {
    let mut command = Command::new("bash");
    command.arg(script).args(args);
    aws_env(&mut command, endpoint);
    let before = proxy.map(LatencyProxy::requests);
    let started = Instant::now();
    let output = command.output()?;
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let count = |prefix: &str| -> u64 {
        stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let calls = count("calls ");
    let sample = Sample {
        wall,
        reconcile: None,
        total: calls,
        mutating: count("mutating "),
        critical_path: calls,
        proxied: proxy.zip(before).map(|(p, b)| p.requests() - b),
        ok: output.status.success(),
    };
    Ok((sample, output))
}

/// A Lambda zip holding `bootstrap` with an arm64 ELF header: moto stores code, never runs it.
fn artifact(dir: &Path) -> PathBuf {
    testkit::lambda_zip::fake_bootstrap_zip(dir)
}

struct Row {
    tool: &'static str,
    target: String,
    step: &'static str,
    samples: Vec<Sample>,
    note: String,
}

fn ms(d: f64) -> String {
    if d.is_nan() {
        "-".to_string()
    } else {
        format!("{d:.0}")
    }
}

async fn run() -> anyhow::Result<()> {
    let runs = env_number("RUNS", 5).max(1) as usize;
    let delay = Duration::from_millis(env_number("DELAY_MS", 50));
    let root = testkit::workspace_root();
    let script = root.join("bench/deploy/aws-cli-walkthrough.sh");
    let aws = std::env::var("AWS_CLI")
        .unwrap_or_else(|_| root.join(".venv/bin/aws").display().to_string());
    std::env::set_var("AWS_CLI", &aws);
    let moto = MotoServer::shared();
    let proxy = LatencyProxy::start(moto.endpoint(), delay).await?;
    let dir = tempfile::tempdir()?;
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    let up_args = [
        "up",
        "--stack",
        STACK,
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
        "--artifact",
        zip,
        "--output",
        "json",
    ];
    let down_args = [
        "down",
        "--stack",
        STACK,
        "--delete-data",
        "--output",
        "json",
    ];
    let delay_label = format!("moto + {} ms/call", delay.as_millis());
    let targets: [(String, &str, Option<&LatencyProxy>); 2] = [
        ("moto".to_string(), moto.endpoint(), None),
        (delay_label, proxy.endpoint(), Some(&proxy)),
    ];

    let mut rows = Vec::new();
    for (label, endpoint, via) in &targets {
        let (mut fresh, mut noop, mut down) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            moto.reset();
            fresh.push(wishctl(endpoint, &up_args, *via)?);
            noop.push(wishctl(endpoint, &up_args, *via)?);
            down.push(wishctl(endpoint, &down_args, *via)?);
            eprintln!(
                "wishctl via {label}, run {}: fresh {:?}, no-op {:?}, down {:?}",
                run + 1,
                fresh[run].wall,
                noop[run].wall,
                down[run].wall
            );
        }
        for (step, samples) in [("fresh up", fresh), ("no-op up", noop), ("down", down)] {
            rows.push(Row {
                tool: "wishctl",
                target: label.clone(),
                step,
                samples,
                note: String::new(),
            });
        }

        let aws_runs = runs.min(3);
        let (mut up, mut again, mut teardown) = (Vec::new(), Vec::new(), Vec::new());
        let mut again_error = String::new();
        for run in 0..aws_runs {
            moto.reset();
            let (sample, output) = aws_cli(
                &script,
                endpoint,
                &["up", STACK, zip, ISSUER, AUDIENCE],
                *via,
            )?;
            anyhow::ensure!(
                sample.ok,
                "aws CLI up failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            up.push(sample);
            let (sample, output) = aws_cli(
                &script,
                endpoint,
                &["up", STACK, zip, ISSUER, AUDIENCE],
                *via,
            )?;
            if !sample.ok {
                again_error = String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .find(|l| l.contains("error occurred"))
                    .unwrap_or("fails")
                    .trim()
                    .to_string();
            }
            again.push(sample);
            let (sample, output) = aws_cli(&script, endpoint, &["down", STACK], *via)?;
            anyhow::ensure!(
                sample.ok,
                "aws CLI down failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            teardown.push(sample);
            eprintln!(
                "aws CLI via {label}, run {}: up {:?}, down {:?}",
                run + 1,
                up[run].wall,
                teardown[run].wall
            );
        }
        rows.push(Row {
            tool: "aws CLI script",
            target: label.clone(),
            step: "fresh up",
            samples: up,
            note: String::new(),
        });
        rows.push(Row {
            tool: "aws CLI script",
            target: label.clone(),
            step: "no-op up (re-run)",
            samples: again,
            note: if again_error.is_empty() {
                String::new()
            } else {
                format!("not idempotent: {again_error}")
            },
        });
        rows.push(Row {
            tool: "aws CLI script",
            target: label.clone(),
            step: "down",
            samples: teardown,
            note: String::new(),
        });
    }

    println!(
        "| tool | endpoint | step | wall ms (median of {runs}) | reconcile ms | calls | mutating | critical path | proxy saw | note |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---|");
    for row in &rows {
        let s = &row.samples;
        let reconcile = median(s, |x| {
            x.reconcile.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        });
        let proxied = median(s, |x| x.proxied.map_or(f64::NAN, |n| n as f64));
        let mutating = format!("{:.0}", median(s, |x| x.mutating as f64));
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {} | {:.0} | {} | {} |",
            row.tool,
            row.target,
            row.step,
            ms(median(s, |x| x.wall.as_secs_f64() * 1000.0)),
            ms(reconcile),
            median(s, |x| x.total as f64),
            mutating,
            median(s, |x| x.critical_path as f64),
            ms(proxied),
            row.note,
        );
    }

    // The targets of issue 3, checked on the medians.
    let find = |tool: &str, target: &str, step: &str| {
        rows.iter()
            .find(|r| r.tool == tool && r.target == target && r.step == step)
            .map(|r| r.samples.clone())
            .unwrap_or_default()
    };
    let noop = find("wishctl", "moto", "no-op up");
    let fresh_delayed = find("wishctl", &targets[1].0, "fresh up");
    let noop_calls = median(&noop, |x| x.total as f64);
    let noop_mutating = median(&noop, |x| x.mutating as f64);
    let noop_wall = median(&noop, |x| x.wall.as_secs_f64() * 1000.0);
    let cp = median(&fresh_delayed, |x| x.critical_path as f64);
    let total = median(&fresh_delayed, |x| x.total as f64);
    let budget = 1.5 * cp * delay.as_millis() as f64;
    let fresh_wall = median(&fresh_delayed, |x| x.wall.as_secs_f64() * 1000.0);
    let fresh_reconcile = median(&fresh_delayed, |x| {
        x.reconcile.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    });
    println!();
    println!("Targets:");
    println!(
        "- no-op up: {noop_calls:.0} calls (<= 15: {}), {noop_mutating:.0} mutating (0: {}), {noop_wall:.0} ms against moto (< 1000: {})",
        noop_calls <= 15.0,
        noop_mutating == 0.0,
        noop_wall < 1000.0
    );
    println!(
        "- fresh up through the {} ms proxy: critical path {cp:.0} of {total:.0} calls (<= half: {}); budget 1.5 x {cp:.0} x {} ms = {budget:.0} ms; reconcile {fresh_reconcile:.0} ms (met: {}), whole process {fresh_wall:.0} ms (met: {})",
        delay.as_millis(),
        cp * 2.0 <= total,
        delay.as_millis(),
        fresh_reconcile <= budget,
        fresh_wall <= budget
    );
    Ok(())
}
