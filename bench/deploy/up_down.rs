//! Benchmark of `wishctl up` / `wishctl down` against a timing model of AWS (testkit's
//! `AwsProxy` in front of moto: IAM propagation, `Pending` / `InProgress` functions,
//! `CREATING` / `DELETING` tables, API Gateway's rate limit, a latency per call), side by side
//! with the walkthrough's steps done one by one with the `aws` CLI (`aws-cli-walkthrough.sh`)
//! through the same model, and against moto alone (everything instant).
//!
//! For each operation (fresh `up`, no-op `up`, code-only update, configuration-only update,
//! authorizer change, `down`) it prints the wall time, the calls, and the **bound**: the time
//! the model forces on that operation (its waits plus the critical path of round trips AWS's
//! dependencies impose), computed from the model's settings by [`bound`].
//!
//! Run with `bash bench/deploy/run.sh` (it builds this as `cargo bench -p deploy --bench
//! up_down`). Environment: `RUNS` (default 3), `AWS_RUNS` (aws CLI runs, default 1; `0` skips
//! it), `LATENCY_MS` (default: the model's 50), `MODEL_SCALE` (multiplies every wait, default
//! 1), `AWS_CLI` (default `<workspace>/.venv/bin/aws`). Prints Markdown tables on stdout,
//! details on stderr.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::aws_proxy::{AwsProxy, ModelSettings};
use testkit::moto::MotoServer;

const ISSUER: &str = "https://tenant.eu.auth0.com/";
const AUDIENCE: &str = "https://wishlist.example.com";
const SECOND_AUDIENCE: &str = "https://admin.wishlist.example.com";
const STACK: &str = "bench";
/// The size of the real arm64 zip (BENCHMARKS.md: 2.5 MB), so uploads cost what they cost.
const ZIP_BYTES: usize = 2_500_000;

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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

fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The operations measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Fresh,
    NoOp,
    Code,
    Config,
    Authorizer,
    Down,
}

impl Step {
    const ALL: [Step; 6] = [
        Step::Fresh,
        Step::NoOp,
        Step::Code,
        Step::Config,
        Step::Authorizer,
        Step::Down,
    ];

    fn label(self) -> &'static str {
        match self {
            Step::Fresh => "fresh up",
            Step::NoOp => "no-op up",
            Step::Code => "code-only update (new zip)",
            Step::Config => "config-only update (memory 256)",
            Step::Authorizer => "authorizer change (2nd audience)",
            Step::Down => "down",
        }
    }
}

/// The time the model forces on `step`: its waits plus the round trips that must follow each
/// other (L = latency). What AWS's dependencies impose, not what wishctl happens to do:
///
/// - fresh up: one round of reads (is anything there?), `CreateRole`, then IAM propagation
///   (the first `CreateFunction` that can succeed completes when it ends), then `Pending`
///   until the function is `Active` (the last poll answers at that moment). The table
///   (`CreateTable` + `CREATING`) and the API chain (`CreateApi` -> authorizer / integration ->
///   routes: they only need the function's ARN, known from its name) run beside it:
///   max(2L + propagation + pending, 2L + creating, 5L).
/// - no-op up: `GetApis` -> `GetRoutes` -> `GetAuthorizer` (the authorizer is found through the
///   route): 3L.
/// - code-only or config-only update: `GetFunction` -> the update -> `InProgress` until
///   `Successful`: 2L + update, or the 3 reads of the API chain if longer.
/// - authorizer change: the 3 reads of the API chain -> `UpdateAuthorizer`: 4L.
/// - down: reads -> `DeleteRolePolicy` -> `DeleteRole` (IAM refuses to delete a role that has
///   policies), the rest beside it: 3L. The table's `DELETING` need not be waited for.
fn bound(step: Step, m: &ModelSettings) -> Duration {
    let l = m.latency;
    match step {
        Step::Fresh => (l * 2 + m.iam_propagation + m.function_pending)
            .max(l * 2 + m.table_creating)
            .max(l * 5),
        Step::NoOp => l * 3,
        Step::Code | Step::Config => (l * 2 + m.function_update).max(l * 3),
        Step::Authorizer => l * 4,
        Step::Down => l * 3,
    }
}

/// The target of issue 10: within 10% of the bound or 1 s, whichever is larger.
fn allowance(bound: Duration) -> Duration {
    (bound / 10).max(Duration::from_secs(1))
}

/// One measured command.
#[derive(Debug, Clone, Default)]
struct Sample {
    wall: Duration,
    total: u64,
    mutating: u64,
    critical_path: u64,
    /// Calls the proxy saw (an independent count), and how many the model refused (waits,
    /// propagation, rate limit).
    proxied: usize,
    refused: usize,
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

fn proxied(proxy: &AwsProxy, before: usize) -> (usize, usize) {
    let records = proxy.records();
    let new = records.get(before..).unwrap_or_default();
    (
        new.len(),
        new.iter().filter(|r| r.refused.is_some()).count(),
    )
}

fn wishctl(proxy: &AwsProxy, args: &[&str]) -> anyhow::Result<Sample> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wishctl"));
    command.args(args);
    aws_env(&mut command, proxy.endpoint());
    let before = proxy.requests();
    let started = Instant::now();
    let output = command.output()?;
    let wall = started.elapsed();
    let (proxied, refused) = proxied(proxy, before);
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
        total: calls["total"].as_u64().unwrap_or(0),
        mutating: calls["mutating"].as_u64().unwrap_or(0),
        critical_path: calls["criticalPath"].as_u64().unwrap_or(0),
        proxied,
        refused,
        ok: true,
    })
}

/// Runs the aws CLI script; its call count comes from its `calls N` line. Every aws call is on
/// the critical path: the script runs them one after the other.
fn aws_cli(script: &Path, proxy: &AwsProxy, args: &[&str]) -> anyhow::Result<(Sample, Output)> {
    let mut command = Command::new("bash");
    command.arg(script).args(args);
    aws_env(&mut command, proxy.endpoint());
    let before = proxy.requests();
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
    let (proxied, refused) = proxied(proxy, before);
    let sample = Sample {
        wall,
        total: calls,
        mutating: count("mutating "),
        critical_path: calls,
        proxied,
        refused,
        ok: output.status.success(),
    };
    Ok((sample, output))
}

/// A zip of the real one's size holding `bootstrap` with an arm64 ELF header (moto stores
/// code, never runs it); `variant` changes its bytes (a new build).
fn artifact(dir: &Path, variant: u8) -> PathBuf {
    let mut elf = testkit::lambda_zip::fake_elf(testkit::lambda_zip::ARM64, ZIP_BYTES);
    elf[100] = variant;
    testkit::lambda_zip::write_zip(
        &dir.join(format!("bootstrap-{variant}.zip")),
        "bootstrap",
        &elf,
    )
}

struct Row {
    tool: &'static str,
    target: String,
    step: String,
    bound: Option<Duration>,
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

fn up_args<'a>(zip: &'a str, audiences: &[&'a str], memory: &'a str) -> Vec<&'a str> {
    let mut args = vec!["up", "--stack", STACK, "--issuer", ISSUER];
    for audience in audiences {
        args.extend(["--audience", audience]);
    }
    // The bench's issuer is not reachable offline (its check overlaps the zip check and the
    // credentials; see BENCHMARKS.md).
    args.extend([
        "--memory",
        memory,
        "--artifact",
        zip,
        "--output",
        "json",
        "--skip-issuer-check",
    ]);
    args
}

/// The function's `CodeSha256` and `LastUpdateStatus`, read through the model: right after the
/// code-only `up` returned, the new code must be there and the update finished (the end of the
/// edit loop).
async fn code_state(proxy: &AwsProxy) -> anyhow::Result<(String, String)> {
    let sdk = testkit::moto::sdk_config_for(proxy.endpoint()).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let config = lambda
        .get_function_configuration()
        .function_name(format!("wishctl-{STACK}-api"))
        .send()
        .await?;
    Ok((
        config.code_sha256().unwrap_or_default().to_string(),
        config
            .last_update_status()
            .map_or("", |s| s.as_str())
            .to_string(),
    ))
}

async fn run() -> anyhow::Result<()> {
    let runs = env_number("RUNS", 3.0).max(1.0) as usize;
    let aws_runs = env_number("AWS_RUNS", 1.0) as usize;
    let scale = env_number("MODEL_SCALE", 1.0);
    let mut model = ModelSettings::default().scaled(scale);
    model.latency = Duration::from_millis(env_number("LATENCY_MS", 50.0) as u64);
    let root = testkit::workspace_root();
    let script = root.join("bench/deploy/aws-cli-walkthrough.sh");
    let aws = std::env::var("AWS_CLI")
        .unwrap_or_else(|_| root.join(".venv/bin/aws").display().to_string());
    std::env::set_var("AWS_CLI", &aws);
    let moto = MotoServer::shared();
    let instant =
        AwsProxy::start(moto.endpoint(), ModelSettings::latency_only(Duration::ZERO)).await?;
    let modelled = AwsProxy::start(moto.endpoint(), model.clone()).await?;
    let dir = tempfile::tempdir()?;
    let (v1, v2) = (artifact(dir.path(), 1), artifact(dir.path(), 2));
    let (zip1, zip2) = (v1.to_str().unwrap(), v2.to_str().unwrap());
    let down_args = [
        "down",
        "--stack",
        STACK,
        "--delete-data",
        "--output",
        "json",
    ];
    eprintln!("model: {model:?}");
    let model_label = format!(
        "AWS model (L {} ms, IAM {:.1} s, Pending {:.1} s, update {:.1} s, table {:.1} s)",
        model.latency.as_millis(),
        model.iam_propagation.as_secs_f64(),
        model.function_pending.as_secs_f64(),
        model.function_update.as_secs_f64(),
        model.table_creating.as_secs_f64()
    );
    let targets: [(String, &AwsProxy); 2] = [
        ("moto (instant)".to_string(), &instant),
        (model_label, &modelled),
    ];

    let mut rows = Vec::new();
    let mut edit_loop_served = Vec::new();
    for (label, proxy) in &targets {
        let settings = proxy.settings().clone();
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); Step::ALL.len()];
        for run in 0..runs {
            moto.reset();
            proxy.reset();
            let steps = [
                up_args(zip1, &[AUDIENCE], "128"),
                up_args(zip1, &[AUDIENCE], "128"),
                up_args(zip2, &[AUDIENCE], "128"),
                up_args(zip2, &[AUDIENCE], "256"),
                up_args(zip2, &[AUDIENCE, SECOND_AUDIENCE], "256"),
                down_args.to_vec(),
            ];
            let mut line = format!("wishctl via {label}, run {}:", run + 1);
            let mut old_code = String::new();
            for (i, args) in steps.iter().enumerate() {
                let sample = wishctl(proxy, args)?;
                if Step::ALL[i] == Step::NoOp {
                    old_code = code_state(proxy).await?.0;
                }
                if Step::ALL[i] == Step::Code {
                    let (code, status) = code_state(proxy).await?;
                    edit_loop_served.push(code != old_code && status == "Successful");
                }
                line.push_str(&format!(
                    " {} {:.0} ms;",
                    Step::ALL[i].label(),
                    sample.wall.as_secs_f64() * 1000.0
                ));
                samples[i].push(sample);
            }
            eprintln!("{line}");
            // The next fresh up must not find the table still DELETING.
            tokio::time::sleep(settings.table_deleting).await;
        }
        for (step, samples) in Step::ALL.iter().zip(samples) {
            rows.push(Row {
                tool: "wishctl",
                target: label.clone(),
                step: step.label().to_string(),
                bound: Some(bound(*step, &settings)),
                samples,
                note: String::new(),
            });
        }

        if aws_runs == 0 {
            continue;
        }
        let scripted: [(&str, Vec<&str>, Option<Step>); 6] = [
            (
                "fresh up",
                vec!["up", STACK, zip1, ISSUER, AUDIENCE],
                Some(Step::Fresh),
            ),
            (
                "re-run of up",
                vec!["up", STACK, zip1, ISSUER, AUDIENCE],
                None,
            ),
            (
                "code-only update",
                vec!["update-code", STACK, zip2],
                Some(Step::Code),
            ),
            (
                "config-only update",
                vec!["update-memory", STACK, "256"],
                Some(Step::Config),
            ),
            (
                "authorizer change",
                vec![
                    "set-audiences",
                    STACK,
                    ISSUER,
                    "https://wishlist.example.com,https://admin.wishlist.example.com",
                ],
                Some(Step::Authorizer),
            ),
            ("down", vec!["down", STACK], Some(Step::Down)),
        ];
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); scripted.len()];
        let mut notes = vec![String::new(); scripted.len()];
        for run in 0..aws_runs {
            moto.reset();
            proxy.reset();
            for (i, (name, args, _)) in scripted.iter().enumerate() {
                let (sample, output) = aws_cli(&script, proxy, args)?;
                if !sample.ok {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    notes[i] = stderr
                        .lines()
                        .find(|l| l.contains("error occurred"))
                        .unwrap_or("fails")
                        .trim()
                        .to_string();
                    anyhow::ensure!(*name == "re-run of up", "aws CLI {name} failed: {stderr}");
                }
                samples[i].push(sample);
            }
            eprintln!(
                "aws CLI via {label}, run {}: fresh up {:?}, down {:?}",
                run + 1,
                samples[0][run].wall,
                samples[5][run].wall
            );
            tokio::time::sleep(settings.table_deleting).await;
        }
        for (((name, _, step), samples), note) in scripted.iter().zip(samples).zip(notes) {
            rows.push(Row {
                tool: "aws CLI script",
                target: label.clone(),
                step: name.to_string(),
                bound: step.map(|s| bound(s, &settings)),
                samples,
                note: if note.is_empty() {
                    String::new()
                } else {
                    format!("fails (not idempotent): {note}")
                },
            });
        }
    }

    println!(
        "| tool | endpoint | step | wall ms (median of {runs}) | bound ms | within target | calls | mutating | critical path | proxy saw | refused by the model | note |"
    );
    println!("|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|");
    for row in &rows {
        let s = &row.samples;
        let wall = median(s, |x| x.wall.as_secs_f64() * 1000.0);
        let (bound, within) = match row.bound {
            Some(b) => (
                ms(b.as_secs_f64() * 1000.0),
                if wall <= (b + allowance(b)).as_secs_f64() * 1000.0 {
                    "yes".to_string()
                } else {
                    format!("no (+{:.0} ms)", wall - b.as_secs_f64() * 1000.0)
                },
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            row.tool,
            row.target,
            row.step,
            ms(wall),
            bound,
            within,
            median(s, |x| x.total as f64),
            median(s, |x| x.mutating as f64),
            median(s, |x| x.critical_path as f64),
            median(s, |x| x.proxied as f64),
            median(s, |x| x.refused as f64),
            row.note,
        );
    }

    let find = |tool: &str, step: &str| {
        rows.iter()
            .find(|r| r.tool == tool && r.target == targets[1].0 && r.step == step)
            .map(|r| median(&r.samples, |x| x.wall.as_secs_f64() * 1000.0))
            .unwrap_or(f64::NAN)
    };
    let ours = find("wishctl", Step::Fresh.label());
    let theirs = find("aws CLI script", "fresh up");
    println!();
    println!(
        "- fresh up under the model: wishctl {ours:.0} ms, aws CLI script {theirs:.0} ms: {:.1}x faster (target >= 5x)",
        theirs / ours
    );
    println!(
        "- edit loop: after the code-only `up` returned, the function served the new zip (CodeSha256 and LastUpdateStatus Successful) in {} of {} runs",
        edit_loop_served.iter().filter(|s| **s).count(),
        edit_loop_served.len()
    );
    Ok(())
}
