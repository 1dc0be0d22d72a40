//! `wishctl` as a process against moto behind the fault-injecting proxy (testkit's `AwsProxy`,
//! with AWS's timing model scaled down so that each run takes seconds):
//!
//! - the fault campaign: 20% of calls fail (throttling as each service spells it, 5xx, reset
//!   connections, responses lost after the call took effect, answers past the attempt timeout);
//!   `up` converges (`plan` is clean afterwards), `down` leaves nothing, nothing crashes; the
//!   time to converge (median, max) is printed as a figure, never asserted;
//! - the SIGKILL campaign: `wishctl up` is killed after a random number of calls, then `down`
//!   leaves nothing, or `up` completes the stack with a clean `plan` and no duplicates;
//! - errors that retrying cannot fix (access denied, a quota) fail at the first attempt, naming
//!   the resource, the cause and what to do.
//!
//! Bounded: 10 seeded runs and 10 seeded trials by default, each process limited in time.
//! Long mode for the BENCHMARKS figures: `WISHCTL_FAULT_RUNS=100 WISHCTL_KILL_TRIALS=100 cargo
//! test -p deploy --test faults_campaign -- --nocapture` (`WISHCTL_FAULT_SHARE` changes the
//! share, `WISHCTL_FAULT_SEED` the first seed; `AWS_RETRY_MODE=adaptive` compares the SDK's
//! adaptive mode). Each test prints its figures on stderr.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::aws_proxy::{
    error_response, AwsProxy, FaultKind, FaultPlan, ModelSettings, ProxyRecord,
};
use testkit::faults::SplitMix64;
use testkit::moto::{MotoServer, MotoSession};

const ISSUER: &str = "https://tenant.eu.auth0.com/";
/// The SDK attempt timeout the campaign gives `wishctl` (`WISHCTL_ATTEMPT_TIMEOUT`), and the
/// stall that exceeds it.
const ATTEMPT_TIMEOUT_SECS: &str = "1.5";
const STALL: Duration = Duration::from_millis(2500);
/// No `wishctl` process of these tests may run longer than this.
const PROCESS_BOUND: Duration = Duration::from_secs(60);
/// AWS's waits at 1/20 of their defaults (IAM propagation 350 ms, Pending 150 ms, ...).
const MODEL_SCALE: f64 = 0.05;

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn moto() -> MotoSession {
    MotoServer::shared().session().await
}

/// How one `wishctl` process ended.
#[derive(Debug)]
struct Run {
    output: Output,
    wall: Duration,
}

impl Run {
    fn ok(&self) -> bool {
        self.output.status.success()
    }

    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// A panic (exit 101) or a signal we did not send.
    fn crashed(&self, killed_by_us: bool) -> bool {
        let signalled = self.output.status.signal().is_some() && !killed_by_us;
        signalled || self.code() == Some(101) || self.stderr().contains("panicked at")
    }
}

fn command(endpoint: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wishctl"));
    command
        .args(args)
        .env_remove("AWS_PROFILE")
        .env("WISHCTL_ATTEMPT_TIMEOUT", ATTEMPT_TIMEOUT_SECS)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in testkit::moto::aws_env(endpoint) {
        command.env(key, value);
    }
    command
}

/// Runs `wishctl args` to its end (bounded by [`PROCESS_BOUND`]).
async fn wishctl(endpoint: &str, args: &[&str]) -> Run {
    let started = Instant::now();
    let child = command(endpoint, args).spawn().unwrap();
    Run {
        output: bounded_output(child, args).await,
        wall: started.elapsed(),
    }
}

/// The child's output; past [`PROCESS_BOUND`] it is killed and the test fails with what it
/// printed so far (where it waited).
async fn bounded_output(mut child: tokio::process::Child, args: &[&str]) -> Output {
    use tokio::io::AsyncReadExt;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes).await;
        bytes
    });
    let err = tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes).await;
        bytes
    });
    let status = match tokio::time::timeout(PROCESS_BOUND, child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = child.kill().await;
            let stderr = err.await.unwrap_or_default();
            panic!(
                "wishctl {args:?} ran longer than {PROCESS_BOUND:?}; its stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
    };
    Output {
        status,
        stdout: out.await.unwrap_or_default(),
        stderr: err.await.unwrap_or_default(),
    }
}

struct Stack {
    name: String,
    zip: String,
}

impl Stack {
    fn new(name: &str, dir: &Path) -> Stack {
        Stack {
            name: name.to_string(),
            zip: testkit::lambda_zip::fake_bootstrap_zip(dir)
                .to_str()
                .unwrap()
                .to_string(),
        }
    }

    fn flags(&self) -> Vec<&str> {
        vec![
            "--stack",
            &self.name,
            "--issuer",
            ISSUER,
            "--audience",
            "https://wishlist.example.com",
            "--artifact",
            &self.zip,
            // The campaign's issuer is not reachable from here; its checks are in
            // cli_deploy_issuer.rs.
            "--skip-issuer-check",
        ]
    }

    fn up(&self) -> Vec<&str> {
        let mut args = vec!["up"];
        args.extend(self.flags());
        args
    }

    fn plan(&self) -> Vec<&str> {
        let mut args = vec!["plan"];
        args.extend(self.flags());
        args.push("--detailed-exitcode");
        args
    }

    fn down(&self) -> Vec<&str> {
        vec!["down", "--stack", &self.name, "--delete-data"]
    }
}

/// Runs `args` until it succeeds, at most `tries` times, as a user would; every run counts.
async fn until_ok(endpoint: &str, args: &[&str], tries: usize, runs: &mut Vec<Run>) -> bool {
    for _ in 0..tries {
        let run = wishctl(endpoint, args).await;
        let ok = run.ok();
        runs.push(run);
        if ok {
            return true;
        }
    }
    false
}

/// What AWS (moto itself, not through the proxy) holds of the stack.
struct Inventory {
    table: bool,
    function: bool,
    role: bool,
    log_group: bool,
    apis: Vec<String>,
    routes: usize,
    integrations: usize,
    permissions: usize,
}

impl Inventory {
    async fn read(moto: &str, stack: &str) -> Inventory {
        let sdk = testkit::moto::sdk_config_for(moto).await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        let iam = aws_sdk_iam::Client::new(&sdk);
        let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        let apigw = aws_sdk_apigatewayv2::Client::new(&sdk);
        let prefix = format!("wishctl-{stack}");
        let function = format!("{prefix}-api");
        let tables = ddb.list_tables().send().await.unwrap();
        let apis: Vec<String> = apigw
            .get_apis()
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .filter(|a| a.name() == Some(prefix.as_str()))
            .filter_map(|a| a.api_id().map(str::to_string))
            .collect();
        let (mut routes, mut integrations) = (0, 0);
        for api in &apis {
            routes += apigw
                .get_routes()
                .api_id(api)
                .send()
                .await
                .unwrap()
                .items()
                .len();
            integrations += apigw
                .get_integrations()
                .api_id(api)
                .send()
                .await
                .unwrap()
                .items()
                .len();
        }
        // Distinct statement ids: moto accepts a repeated AddPermission of one statement id
        // (after a lost answer), which AWS refuses with ResourceConflictException.
        let permissions = match lambda.get_policy().function_name(&function).send().await {
            Ok(policy) => {
                let policy: serde_json::Value =
                    serde_json::from_str(policy.policy().unwrap_or("{}")).unwrap_or_default();
                let sids: std::collections::BTreeSet<String> = policy["Statement"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .filter_map(|st| st["Sid"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                sids.len()
            }
            Err(_) => 0,
        };
        Inventory {
            table: tables.table_names().contains(&format!("{prefix}-items")),
            function: lambda
                .get_function()
                .function_name(&function)
                .send()
                .await
                .is_ok(),
            role: iam
                .get_role()
                .role_name(stack::role_name(
                    &stack.parse().unwrap(),
                    &testkit::moto::REGION.parse().unwrap(),
                ))
                .send()
                .await
                .is_ok(),
            log_group: logs
                .describe_log_groups()
                .log_group_name_prefix(format!("/aws/lambda/{function}"))
                .send()
                .await
                .unwrap()
                .log_groups()
                .iter()
                .any(|g| g.log_group_name() == Some(&format!("/aws/lambda/{function}"))),
            apis,
            routes,
            integrations,
            permissions,
        }
    }

    /// What is left (for a stack that should be gone).
    fn left(&self) -> Vec<String> {
        let mut left = Vec::new();
        for (present, what) in [
            (self.table, "table"),
            (self.function, "function"),
            (self.role, "role"),
            (self.log_group, "log group"),
        ] {
            if present {
                left.push(what.to_string());
            }
        }
        left.extend(self.apis.iter().map(|id| format!("HTTP API {id}")));
        left
    }

    /// What is duplicated or missing (for a stack that should be complete).
    fn defects(&self) -> Vec<String> {
        let mut defects = Vec::new();
        if !(self.table && self.function && self.role && self.log_group) {
            defects.push(format!("missing: {:?}", self.left()));
        }
        if self.apis.len() != 1 {
            defects.push(format!("{} HTTP APIs", self.apis.len()));
        }
        if self.routes != 2 {
            defects.push(format!("{} routes", self.routes));
        }
        if self.integrations != 1 {
            defects.push(format!("{} integrations", self.integrations));
        }
        if self.permissions != 1 {
            defects.push(format!("{} invoke permissions", self.permissions));
        }
        defects
    }
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

async fn campaign_proxy(session: &MotoSession) -> AwsProxy {
    AwsProxy::start(
        session.endpoint(),
        ModelSettings::default().scaled(MODEL_SCALE),
    )
    .await
    .unwrap()
}

/// A fresh `up` without faults: its wall time and how many calls it made.
async fn fault_free_up(proxy: &AwsProxy, stack: &Stack) -> (Duration, usize) {
    MotoServer::shared().reset();
    proxy.reset();
    let run = wishctl(proxy.endpoint(), &stack.up()).await;
    assert!(run.ok(), "fault-free up failed: {}", run.stderr());
    let calls = proxy.requests();
    let down = wishctl(proxy.endpoint(), &stack.down()).await;
    assert!(down.ok(), "fault-free down failed: {}", down.stderr());
    (run.wall, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_20_percent_faults_up_converges_and_down_leaves_nothing() {
    let runs: u64 = env_number("WISHCTL_FAULT_RUNS", 10);
    let share: f64 = env_number("WISHCTL_FAULT_SHARE", 0.2);
    let first_seed: u64 = env_number("WISHCTL_FAULT_SEED", 1);
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::new("faults", dir.path());
    let proxy = campaign_proxy(&session).await;

    // GIVEN the fault-free time of a fresh up through the same proxy and model
    let mut baseline = Vec::new();
    for _ in 0..3 {
        baseline.push(fault_free_up(&proxy, &stack).await.0);
    }
    let fault_free = median(&baseline);

    let mut converge_times = Vec::new();
    let mut faults: BTreeMap<FaultKind, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut crashes, mut extra_ups, mut extra_downs, mut calls) = (0, 0, 0, 0);
    for seed in first_seed..first_seed + runs {
        // WHEN up, plan and down run with `share` of their calls failing
        MotoServer::shared().reset();
        proxy.reset();
        proxy.set_faults(Some(FaultPlan::new(share, seed, STALL)));
        let mut ups = Vec::new();
        let converged = until_ok(proxy.endpoint(), &stack.up(), 3, &mut ups).await;
        let up_time: Duration = ups.iter().map(|r| r.wall).sum();
        extra_ups += ups.len() - 1;
        let mut plans = Vec::new();
        let planned = converged && until_ok(proxy.endpoint(), &stack.plan(), 3, &mut plans).await;
        // exit 2 means changes: not converged; 1 an error (faults through every retry)
        let clean = planned && plans.last().is_some_and(|p| p.code() == Some(0));
        let inventory = Inventory::read(session.endpoint(), &stack.name).await;
        let mut downs = Vec::new();
        let removed = until_ok(proxy.endpoint(), &stack.down(), 3, &mut downs).await;
        extra_downs += downs.len() - 1;
        for (kind, n) in proxy.faults_by_kind() {
            *faults.entry(kind).or_insert(0) += n;
        }
        calls += proxy.requests();
        proxy.set_faults(None);
        let left = Inventory::read(session.endpoint(), &stack.name)
            .await
            .left();
        crashes += ups
            .iter()
            .chain(&plans)
            .chain(&downs)
            .filter(|r| r.crashed(false))
            .count();
        converge_times.push(up_time);
        eprintln!(
            "seed {seed}: up {} in {} run(s), plan clean {clean}, down in {} run(s), left {left:?}, stack defects {:?}",
            secs(up_time),
            ups.len(),
            downs.len(),
            inventory.defects()
        );
        // A run that needed running again shows why (the error is its last lines).
        for failed in ups.iter().chain(&plans).chain(&downs).filter(|r| !r.ok()) {
            let stderr = failed.stderr();
            let lines: Vec<&str> = stderr.lines().collect();
            eprintln!(
                "seed {seed}: a run failed (exit {:?}), ending:\n{}",
                failed.code(),
                lines[lines.len().saturating_sub(4)..].join("\n")
            );
        }
        // A run past the issue's per-run target (20 s) shows what it did, to find the wait.
        for slow in ups.iter().filter(|r| r.wall > Duration::from_secs(20)) {
            eprintln!(
                "seed {seed}: up took {}:\n{}",
                secs(slow.wall),
                slow.stderr()
            );
        }
        let last_error = |runs: &[Run]| runs.last().map(Run::stderr).unwrap_or_default();
        if !converged {
            failures.push(format!(
                "seed {seed}: up did not converge: {}",
                last_error(&ups)
            ));
        } else if !clean {
            failures.push(format!(
                "seed {seed}: plan not clean: {}",
                last_error(&plans)
            ));
        }
        if !inventory.defects().is_empty() {
            failures.push(format!("seed {seed}: after up: {:?}", inventory.defects()));
        }
        if !removed || !left.is_empty() {
            failures.push(format!(
                "seed {seed}: down left {left:?}: {}",
                last_error(&downs)
            ));
        }
    }

    // THEN every run converged, nothing was left, nothing crashed
    let median_up = median(&converge_times);
    let max_up = converge_times.iter().max().copied().unwrap_or_default();
    let injected: usize = faults.values().sum();
    eprintln!(
        "FAULT CAMPAIGN: {runs} runs at {:.0}% faults, {calls} calls, {injected} faults injected {faults:?}; \
         fault-free up {}; time to converge median {} max {}; extra up runs {extra_ups}, extra down runs {extra_downs}; \
         crashes {crashes}; failures {}",
        share * 100.0,
        secs(fault_free),
        secs(median_up),
        secs(max_up),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(crashes, 0);
    assert!(
        injected > 0 || runs == 0,
        "the campaign injected no fault: it proves nothing"
    );
    // The time to converge (median within 3x the fault-free time plus 5 s, max 20 s) is a
    // figure, printed above and recorded in BENCHMARKS.md from the long mode, not an assertion:
    // this machine is shared and noisy, and a timed assertion would fail on load, not on wishctl.
}

/// Kills the process with `pid` (SIGKILL) once, when call `at` has taken effect and before its
/// answer leaves the proxy.
fn kill_after(
    at: usize,
    pid: Arc<AtomicU32>,
    killed: Arc<AtomicBool>,
) -> testkit::aws_proxy::CallHook {
    Arc::new(move |record: &ProxyRecord| {
        let pid = pid.load(Ordering::SeqCst);
        if record.seq >= at && pid != 0 && !killed.swap(true, Ordering::SeqCst) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_up_then_down_leaves_nothing_or_up_completes_without_duplicates() {
    let trials: u64 = env_number("WISHCTL_KILL_TRIALS", 10);
    let first_seed: u64 = env_number("WISHCTL_FAULT_SEED", 1);
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::new("killed", dir.path());
    let proxy = campaign_proxy(&session).await;
    let (_, full_up_calls) = fault_free_up(&proxy, &stack).await;

    let mut failures = Vec::new();
    let (mut killed_count, mut crashes) = (0, 0);
    let mut recover_times = Vec::new();
    let mut kill_points = Vec::new();
    for seed in first_seed..first_seed + trials {
        // GIVEN an up killed after a random number of calls
        MotoServer::shared().reset();
        proxy.reset();
        let mut rng = SplitMix64(seed);
        let at = rng.between(1, full_up_calls as u64) as usize;
        let pid = Arc::new(AtomicU32::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        proxy.set_hook(Some(kill_after(at, Arc::clone(&pid), Arc::clone(&killed))));
        let started = Instant::now();
        let child = command(proxy.endpoint(), &stack.up()).spawn().unwrap();
        pid.store(child.id().unwrap_or(0), Ordering::SeqCst);
        let output = bounded_output(child, &stack.up()).await;
        proxy.set_hook(None);
        let run = Run {
            output,
            wall: started.elapsed(),
        };
        let was_killed = run.output.status.signal() == Some(9);
        killed_count += usize::from(was_killed);
        crashes += usize::from(run.crashed(was_killed));
        kill_points.push(at);
        let last = proxy
            .records()
            .iter()
            .find(|r| r.seq == at)
            .map(|r| r.call.to_string())
            .unwrap_or_default();

        // WHEN the next command is down (even seeds) or up (odd seeds)
        let recovered = Instant::now();
        let (outcome, ok) = if seed % 2 == 0 {
            let down = wishctl(proxy.endpoint(), &stack.down()).await;
            crashes += usize::from(down.crashed(false));
            let left = Inventory::read(session.endpoint(), &stack.name)
                .await
                .left();
            // THEN nothing remains
            let ok = down.ok() && left.is_empty();
            if !ok {
                failures.push(format!(
                    "seed {seed} (killed at call {at}, {last}): down left {left:?}: {}",
                    down.stderr()
                ));
            }
            (format!("down, left {left:?}"), ok)
        } else {
            let up = wishctl(proxy.endpoint(), &stack.up()).await;
            let plan = wishctl(proxy.endpoint(), &stack.plan()).await;
            crashes += usize::from(up.crashed(false)) + usize::from(plan.crashed(false));
            let defects = Inventory::read(session.endpoint(), &stack.name)
                .await
                .defects();
            // THEN the stack is complete, plan is clean and nothing is duplicated
            let ok = up.ok() && plan.code() == Some(0) && defects.is_empty();
            if !ok {
                failures.push(format!(
                    "seed {seed} (killed at call {at}, {last}): up ok {}, plan exit {:?}, defects {defects:?}: {}{}",
                    up.ok(),
                    plan.code(),
                    up.stderr(),
                    plan.stderr()
                ));
            }
            let down = wishctl(proxy.endpoint(), &stack.down()).await;
            assert!(down.ok(), "cleanup down failed: {}", down.stderr());
            (
                format!("up, plan exit {:?}, defects {defects:?}", plan.code()),
                ok,
            )
        };
        recover_times.push(recovered.elapsed());
        eprintln!(
            "seed {seed}: killed {was_killed} at call {at} of ~{full_up_calls} ({last}) after {}; then {outcome}: {}",
            secs(run.wall),
            if ok { "ok" } else { "FAILED" }
        );
    }

    let max_recover = recover_times.iter().max().copied().unwrap_or_default();
    eprintln!(
        "KILL CAMPAIGN: {trials} trials, {killed_count} killed (calls {kill_points:?} of ~{full_up_calls}), \
         recovery median {} max {}, crashes {crashes}, failures {}",
        secs(median(&recover_times)),
        secs(max_recover),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(crashes, 0);
    assert!(
        killed_count * 2 >= trials as usize,
        "only {killed_count} of {trials} trials were killed before up ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_that_retrying_cannot_fix_fail_at_the_first_attempt_naming_resource_and_cause() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::new("denied", dir.path());
    let proxy = campaign_proxy(&session).await;

    for (code, status, message, hint) in [
        (
            "AccessDenied",
            403,
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iam:CreateRole",
            "lack this permission",
        ),
        (
            "LimitExceeded",
            409,
            "Cannot exceed quota for RolesPerAccount: 1000",
            "quota",
        ),
    ] {
        // GIVEN IAM refuses CreateRole with an error no retry can fix
        MotoServer::shared().reset();
        proxy.reset();
        proxy.set_responder(Some(Arc::new(move |call| {
            (call.operation == "CreateRole").then(|| error_response(call, status, code, message))
        })));

        // WHEN up runs
        let run = wishctl(proxy.endpoint(), &stack.up()).await;

        // THEN it fails once (no retry), saying which resource, why, and what to do
        let stderr = run.stderr();
        assert_eq!(run.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("creating role wishctl-denied-us-east-1-fn"),
            "{stderr}"
        );
        assert!(
            stderr.contains(code) && stderr.contains(message),
            "{stderr}"
        );
        assert!(stderr.contains(hint), "{stderr}");
        let attempts = proxy
            .records()
            .iter()
            .filter(|r| r.call.operation == "CreateRole")
            .count();
        assert_eq!(attempts, 1, "CreateRole was retried after {code}");
        proxy.set_responder(None);
        let cleanup = wishctl(proxy.endpoint(), &stack.down()).await;
        assert!(cleanup.ok(), "{}", cleanup.stderr());
    }
}
