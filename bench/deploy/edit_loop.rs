//! The edit loop against AWS's timing model: a person edits the handler and runs `wishctl up`
//! again. In a copy of the checkout (so the repository is never edited), each round changes
//! `crates/wishlist/src/lib.rs` visibly (every answer gets an `x-edit-mark: N` header, so the
//! binary differs), runs `wishctl up` from the copy (the default build, then `--quick-build`)
//! through testkit's `AwsProxy` in front of moto with `ModelSettings::default()`, and measures
//! from the edit until the new code serves: `GetFunctionConfiguration` shows the new zip's
//! `CodeSha256` with `LastUpdateStatus` `Successful`. Split into: the build and zip (edit to
//! wishctl's `code:` line), the reads before the upload, the upload (`UpdateFunctionCode`,
//! arrival to answer at the proxy) and the `InProgress` wait (to the moment the model lets the
//! update succeed, or `up`'s return if later). From the proxy's call log: every mutating call
//! (only `UpdateFunctionCode` should be there) and any read made twice (the `InProgress` polls
//! excepted).
//!
//! Run with `bash bench/deploy/edit-loop.sh` (`cargo bench -p deploy --bench edit_loop`).
//! Environment: `RUNS` (edits per build profile, default 2), `BUILDS` (`quick,full` by default;
//! `quick` measures `--quick-build` alone), `EDIT_LOOP_DIR` (where the copy
//! and its own cargo target folder live, default `$TMPDIR/wishctl-edit-loop`: kept between
//! runs, so only the first run builds the dependencies; a fresh folder builds them once for
//! each profile, several minutes, before anything is measured).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::aws_proxy::{AwsProxy, ModelSettings, ProxyRecord};
use testkit::moto::MotoServer;

const STACK: &str = "edit";
const ISSUER: &str = "https://tenant.eu.auth0.com/";
const AUDIENCE: &str = "https://wishlist.example.com";
const FUNCTION: &str = "wishctl-edit-api";
const EDITED: &str = "crates/wishlist/src/lib.rs";

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

/// A call as the proxy saw it: when it arrived and when its answer left.
#[derive(Debug, Clone)]
struct Event {
    arrived: Option<Instant>,
    answered: Instant,
    record: ProxyRecord,
}

/// The proxy's call log with times.
#[derive(Clone, Default)]
struct Log {
    arrivals: Arc<Mutex<BTreeMap<usize, Instant>>>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Log {
    fn attach(proxy: &AwsProxy) -> Log {
        let log = Log::default();
        let arrivals = Arc::clone(&log.arrivals);
        proxy.set_arrival_hook(Some(Arc::new(move |record: &ProxyRecord| {
            arrivals.lock().unwrap().insert(record.seq, Instant::now());
        })));
        let sink = log.clone();
        proxy.set_hook(Some(Arc::new(move |record: &ProxyRecord| {
            let arrived = sink.arrivals.lock().unwrap().get(&record.seq).copied();
            sink.events.lock().unwrap().push(Event {
                arrived,
                answered: Instant::now(),
                record: record.clone(),
            });
        })));
        log
    }

    fn between(&self, from: Instant, to: Instant) -> Vec<Event> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.answered >= from && e.answered <= to)
            .cloned()
            .collect()
    }
}

/// The tracked files of the checkout, copied into `dest` (a file is written only when its
/// contents differ, so a kept copy does not rebuild what did not change).
fn copy_checkout(root: &Path, dest: &Path) -> anyhow::Result<usize> {
    let listed = Command::new("git")
        .current_dir(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()?;
    anyhow::ensure!(
        listed.status.success(),
        "git ls-files failed in {}",
        root.display()
    );
    let mut written = 0;
    for path in listed.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let relative = Path::new(std::str::from_utf8(path)?);
        let from = root.join(relative);
        let Ok(bytes) = std::fs::read(&from) else {
            continue; // deleted in the work tree
        };
        let to = dest.join(relative);
        if std::fs::read(&to).is_ok_and(|old| old == bytes) {
            continue;
        }
        std::fs::create_dir_all(to.parent().unwrap())?;
        std::fs::write(&to, &bytes)?;
        std::fs::set_permissions(&to, std::fs::metadata(&from)?.permissions())?;
        written += 1;
    }
    Ok(written)
}

/// `lib.rs` with the edit of round `mark`: `handle` wrapped so that every answer carries
/// `x-edit-mark: <mark>` (a visible change, and a different binary each round).
fn edited(original: &str, mark: &str) -> anyhow::Result<String> {
    let export = "pub use api::{handle, ";
    anyhow::ensure!(
        original.contains(export),
        "{EDITED} no longer has `{export}...`: update the edit in bench/deploy/edit_loop.rs"
    );
    Ok(format!(
        "{}\n/// Every answer of [`api::handle`], marked by the edit loop's benchmark.\n\
         pub async fn handle(store: &dyn Store, request: ApiRequest) -> ApiResponse {{\n    \
         let mut response = api::handle(store, request).await;\n    \
         response.headers.push((\"x-edit-mark\".into(), \"{mark}\".into()));\n    \
         response\n}}\n",
        original.replace(export, "pub use api::{")
    ))
}

/// One `wishctl up` from the copy, its stderr lines timed as they arrive.
struct Up {
    started: Instant,
    ended: Instant,
    /// When wishctl printed its `code:` line (the zip is ready), and that line.
    code_line: Option<(Instant, String)>,
    json: Value,
}

fn wishctl_up(copy: &Path, target: &Path, endpoint: &str, quick: bool) -> anyhow::Result<Up> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wishctl"));
    command
        .current_dir(copy)
        .env("CARGO_TARGET_DIR", target)
        .args([
            "up",
            "--stack",
            STACK,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
        ])
        .args(["--skip-issuer-check", "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if quick {
        command.arg("--quick-build");
    }
    for (key, value) in testkit::moto::aws_env(endpoint) {
        command.env(key, value);
    }
    command.env_remove("AWS_PROFILE");
    let started = Instant::now();
    let mut child = command.spawn()?;
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .map(|line| (Instant::now(), line))
            .collect::<Vec<_>>()
    });
    let output = child.wait_with_output()?;
    let ended = Instant::now();
    let lines = lines.join().unwrap();
    if !output.status.success() {
        let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        anyhow::bail!("wishctl up failed:\n{}", text.join("\n"));
    }
    Ok(Up {
        started,
        ended,
        code_line: lines.into_iter().find(|(_, l)| l.starts_with("code: ")),
        json: serde_json::from_slice(&output.stdout)?,
    })
}

/// The function's `CodeSha256` and `LastUpdateStatus`, read through the model.
async fn code_state(endpoint: &str) -> anyhow::Result<(String, String)> {
    let sdk = testkit::moto::sdk_config_for(endpoint).await;
    let config = aws_sdk_lambda::Client::new(&sdk)
        .get_function_configuration()
        .function_name(FUNCTION)
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

/// One measured round.
struct Round {
    profile: &'static str,
    serving: Duration,
    build: Duration,
    reads: Duration,
    upload: Duration,
    in_progress: Duration,
    calls: u64,
    critical_path: u64,
    mutating: Vec<String>,
    read_twice: Vec<String>,
    served: bool,
    zip_bytes: String,
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

async fn run() -> anyhow::Result<()> {
    let runs = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2usize)
        .max(1);
    let root = testkit::workspace_root();
    let base = std::env::var_os("EDIT_LOOP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("wishctl-edit-loop"));
    let copy = base.join("checkout");
    let target = base.join("target");
    let copied = copy_checkout(&root, &copy)?;
    eprintln!(
        "copy of {} at {} ({copied} files written)",
        root.display(),
        copy.display()
    );
    let lib = copy.join(EDITED);
    let original = std::fs::read_to_string(&lib)?;
    let original = match original.find("\n/// Every answer of [`api::handle`], marked") {
        // A copy left edited by an interrupted run.
        Some(at) => original[..at].replace("pub use api::{", "pub use api::{handle, "),
        None => original,
    };

    let model = ModelSettings::default();
    let moto = MotoServer::shared();
    moto.reset();
    let proxy = AwsProxy::start(moto.endpoint(), model.clone()).await?;
    let endpoint = proxy.endpoint().to_string();
    let log = Log::attach(&proxy);
    eprintln!("model: {model:?}");

    let builds: Vec<(bool, &'static str)> = [
        (true, "quick", "`--quick-build` (lambda-quick)"),
        (false, "full", "default (lambda)"),
    ]
    .into_iter()
    .filter(|(_, name, _)| {
        std::env::var("BUILDS")
            .unwrap_or_else(|_| "quick,full".to_string())
            .split(',')
            .any(|b| b.trim() == *name)
    })
    .map(|(quick, _, label)| (quick, label))
    .collect();
    anyhow::ensure!(!builds.is_empty(), "BUILDS names neither quick nor full");

    // Unmeasured: the first deploy, and the dependencies of each profile built once.
    for &(quick, _) in builds.iter().rev() {
        std::fs::write(&lib, edited(&original, "warm-up")?)?;
        let up = wishctl_up(&copy, &target, &endpoint, quick)?;
        eprintln!(
            "warm-up ({}): {:.1} s",
            if quick {
                "--quick-build"
            } else {
                "default build"
            },
            (up.ended - up.started).as_secs_f64()
        );
        tokio::time::sleep(model.function_update).await;
    }

    let mut rounds = Vec::new();
    for run in 0..runs {
        for &(quick, profile) in &builds {
            let mark = format!("{}-{run}", if quick { "quick" } else { "full" });
            let (old_code, _) = code_state(&endpoint).await?;
            let edit = Instant::now();
            std::fs::write(&lib, edited(&original, &mark)?)?;
            let up = wishctl_up(&copy, &target, &endpoint, quick)?;
            let events = log.between(edit, up.ended);
            let (code_at, code_line) = up
                .code_line
                .clone()
                .ok_or_else(|| anyhow::anyhow!("wishctl printed no `code:` line"))?;
            let update = events
                .iter()
                .find(|e| {
                    e.record.call.operation == "UpdateFunctionCode" && e.record.refused.is_none()
                })
                .ok_or_else(|| anyhow::anyhow!("no UpdateFunctionCode in round {mark}"))?;
            let sent = update.arrived.unwrap_or(update.answered);
            let settled = update.answered + model.function_update;
            let serving_at = settled.max(up.ended);
            let (code, status) = code_state(&endpoint).await?;
            // `... (arm64, N bytes, sha256 X)`: the zip's SHA-256 as Lambda reports it.
            let built_sha = code_line
                .split("sha256 ")
                .nth(1)
                .and_then(|s| s.split(')').next())
                .unwrap_or("")
                .to_string();
            let mut reads: BTreeMap<String, usize> = BTreeMap::new();
            for e in events.iter().filter(|e| !e.record.call.is_mutating()) {
                // The InProgress polls read the function again by design.
                let poll = e.answered > update.answered
                    && ["GetFunction", "GetFunctionConfiguration"]
                        .contains(&e.record.call.operation.as_str());
                if !poll {
                    let key = format!(
                        "{} {}",
                        e.record.call.operation,
                        e.record.call.resource.as_deref().unwrap_or("")
                    );
                    *reads.entry(key).or_default() += 1;
                }
            }
            let calls = &up.json["apiCalls"];
            rounds.push(Round {
                profile,
                serving: serving_at - edit,
                build: code_at - edit,
                reads: sent.saturating_duration_since(code_at),
                upload: update.answered - sent,
                in_progress: serving_at - update.answered,
                calls: calls["total"].as_u64().unwrap_or(0),
                critical_path: calls["criticalPath"].as_u64().unwrap_or(0),
                mutating: events
                    .iter()
                    .filter(|e| e.record.call.is_mutating())
                    .map(|e| e.record.call.operation.clone())
                    .collect(),
                read_twice: reads
                    .into_iter()
                    .filter(|(_, n)| *n > 1)
                    .map(|(k, n)| format!("{k} x{n}"))
                    .collect(),
                served: code != old_code && code == built_sha && status == "Successful",
                zip_bytes: code_line
                    .split(", ")
                    .find(|p| p.ends_with(" bytes"))
                    .unwrap_or("?")
                    .to_string(),
            });
            eprintln!("round {mark}: {code_line}");
        }
    }
    std::fs::write(&lib, &original)?;

    println!(
        "Edit loop under the model (L {} ms, InProgress {:.1} s), {runs} edit(s) per build, wishctl {}:",
        model.latency.as_millis(),
        model.function_update.as_secs_f64(),
        env!("CARGO_PKG_VERSION")
    );
    println!();
    println!("| build | edit -> new code serving ms | build + zip ms | reads before the upload ms | upload ms | InProgress wait ms | calls | critical path | mutating calls | read twice | new code served | zip |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|");
    for r in &rounds {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.profile,
            ms(r.serving),
            ms(r.build),
            ms(r.reads),
            ms(r.upload),
            ms(r.in_progress),
            r.calls,
            r.critical_path,
            r.mutating.join(", "),
            if r.read_twice.is_empty() {
                "none".to_string()
            } else {
                r.read_twice.join(", ")
            },
            if r.served { "yes" } else { "NO" },
            r.zip_bytes,
        );
    }
    Ok(())
}
