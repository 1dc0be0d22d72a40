//! `wishctl gc`: tear down the stacks that crashed or forgotten runs left behind: those whose
//! expiry passed (`--expired`) or that are older than a duration (`--older-than`), optionally
//! only those whose name starts with a prefix.
//!
//! A stack is removed only when it meets at least one condition; with no condition `gc`
//! refuses before any AWS call. Stacks come from `list`'s discovery (narrowed to the prefix
//! before anything is read about a resource), so a resource that is not tagged as a stack's
//! is never considered, and each stack goes through `down` (which checks ownership again and
//! refuses a table with items unless `--delete-data`). A failure on one stack does not stop the
//! others; the exit code is 0 only when every matching stack went, was renewed meanwhile, or was
//! skipped.
//!
//! A stack with a resource under its names that is not its own (an untagged table someone made
//! by hand) is never deleted, by `gc` or `down`; `gc` reports it as skipped, with what a person
//! can do, and does not fail for it: a scheduled sweep that failed every hour on a stack it will
//! never be allowed to delete would hide the failures that matter. `--dry-run` makes the same
//! read-only checks as the real run, so it promises only what the real run does.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use provision::{
    DataPolicy, DownCondition, FoundResource, ProvisionError, Provisioner, Removal, StackSummary,
};
use serde::Serialize;
use stack::UtcTime;

use super::aws::AwsArgs;
use super::list::report_look_alikes;
use super::output::{
    print_calls, print_json, stderr_progress, CallCounts, OutputFormat, ReportArgs,
};

/// Flags of `wishctl gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Remove stacks whose expiry (`up --ttl`) has passed.
    #[arg(long)]
    pub expired: bool,
    /// Remove stacks created longer ago than this (e.g. 12h, 7d; 0s: any age).
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Only consider stacks whose name starts with this (e.g. pr-).
    #[arg(long, value_name = "P")]
    pub stack_prefix: Option<String>,
    /// Print what would be removed and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete tables that hold items too (without it, such a stack is reported as failed and
    /// left as it is).
    ///
    /// Exit status: 0 when every matching stack went (or would go), was renewed since the
    /// listing, or was skipped because a resource under its names is not its own; 1 when one
    /// failed (or would fail).
    #[arg(long)]
    pub delete_data: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// What `gc` did (or would do) with one matching stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Outcome {
    Removed,
    WouldRemove,
    /// Matched only as expired, and an `up` renewed its expiry after the listing: left alone.
    Renewed,
    /// A resource under its names is not its own: never deleted, not a failure (see `error`).
    Skipped,
    Failed,
    /// `--dry-run`: the real run would fail (a table with items without `--delete-data`).
    WouldFail,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GcStack {
    stack: String,
    /// Why it matched: `expired at ...`, `created ... (older than 7d)`.
    reasons: Vec<String>,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// What `down` did, resource by resource (not for a dry run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    removals: Vec<Removal>,
    /// The resources found for the stack.
    resources: Vec<FoundResource>,
    /// It failed because its table holds items (`--delete-data` would have removed it).
    #[serde(skip)]
    holds_data: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GcJson<'a> {
    region: &'a str,
    dry_run: bool,
    /// Every matching stack went (or would go).
    ok: bool,
    stacks: &'a [GcStack],
    /// Stacks (of the prefix) that matched no condition: left alone.
    kept: Vec<String>,
    api_calls: CallCounts,
}

/// The conditions, checked and parsed.
#[derive(Debug)]
struct Criteria {
    expired: bool,
    older_than: Option<(String, Duration)>,
    prefix: Option<String>,
}

impl Criteria {
    fn from_args(args: &GcArgs) -> anyhow::Result<Self> {
        if !args.expired && args.older_than.is_none() {
            anyhow::bail!(
                "gc needs a condition, or it would remove every stack: pass --expired (stacks whose \
                 `up --ttl` expiry passed) and/or --older-than DURATION (e.g. 7d); narrow with \
                 --stack-prefix P, and try --dry-run first"
            );
        }
        if let Some(prefix) = &args.stack_prefix {
            stack::check_stack_prefix(prefix)?;
        }
        let older_than = match &args.older_than {
            Some(text) => Some((
                text.clone(),
                stack::parse_duration(text).map_err(|e| anyhow::anyhow!("--older-than: {e}"))?,
            )),
            None => None,
        };
        Ok(Criteria {
            expired: args.expired,
            older_than,
            prefix: args.stack_prefix.clone(),
        })
    }

    /// Why `stack` is to be removed; empty when it meets no condition.
    fn reasons(&self, stack: &StackSummary, now: UtcTime) -> Vec<String> {
        if let Some(prefix) = &self.prefix {
            if !stack.stack.as_str().starts_with(prefix.as_str()) {
                return Vec::new();
            }
        }
        let mut reasons = Vec::new();
        if self.expired && stack.expired {
            let expiry = stack.expires_at.as_ref().map(ToString::to_string);
            reasons.push(format!("expired at {}", expiry.unwrap_or_default()));
        }
        if let Some(text) = self.old_enough(stack, now) {
            let created = stack.created_at.map(|t| t.to_string()).unwrap_or_default();
            reasons.push(format!("created {created} (older than {text})"));
        }
        reasons
    }

    /// The `--older-than` value when `stack` is at least that old at `now`.
    fn old_enough(&self, stack: &StackSummary, now: UtcTime) -> Option<&str> {
        let (text, limit) = self.older_than.as_ref()?;
        (stack.age_at(now)? >= *limit).then_some(text.as_str())
    }

    /// What `down` must find still true under the stack's lock: a stack matched only because
    /// it expired must still be expired then (an `up --ttl` may have renewed it meanwhile); a
    /// stack older than `--older-than` stays older.
    fn condition(&self, stack: &StackSummary, now: UtcTime) -> DownCondition {
        if self.old_enough(stack, now).is_some() {
            DownCondition::Always
        } else {
            DownCondition::ExpiredAt(UtcTime::from_system_time(SystemTime::now()))
        }
    }
}

pub async fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let criteria = Criteria::from_args(&args)?;
    let data = if args.delete_data {
        DataPolicy::Delete
    } else {
        DataPolicy::RefuseIfNotEmpty
    };
    let sdk = args.aws.sdk_config().await?;
    let provisioner = Provisioner::new(&sdk).with_progress(stderr_progress());
    // Only the prefix's stacks are read at all (a CI role may hold no permission on others).
    let prefix = criteria.prefix.as_deref().unwrap_or_default();
    let listed = provisioner.list_stacks(SystemTime::now(), prefix).await?;
    let inventory = &listed.inventory;
    report_look_alikes(&inventory.look_alikes);

    let mut results = Vec::new();
    let mut kept = Vec::new();
    // The stacks go one after the other: their critical paths add up.
    let mut critical_path = listed.calls.critical_path;
    for summary in &inventory.stacks {
        let reasons = criteria.reasons(summary, inventory.listed_at);
        if reasons.is_empty() {
            kept.push(summary.stack.to_string());
            continue;
        }
        let mut result = GcStack {
            stack: summary.stack.to_string(),
            reasons,
            outcome: Outcome::WouldRemove,
            error: None,
            removals: Vec::new(),
            resources: summary.resources.clone(),
            holds_data: false,
        };
        let condition = criteria.condition(summary, inventory.listed_at);
        if args.dry_run {
            // The checks the real run makes before deleting anything, read-only.
            let checked = provisioner
                .down_refusals(&summary.stack, data, condition)
                .await;
            if let Err(err) = checked {
                refused(&mut result, &err, true);
            }
        } else {
            eprintln!(
                "removing stack {} ({})",
                summary.stack,
                result.reasons.join("; ")
            );
            match provisioner.down_if(&summary.stack, data, condition).await {
                Ok(report) => {
                    critical_path += report.calls.critical_path;
                    let failures: Vec<String> = report
                        .teardown
                        .failures()
                        .iter()
                        .map(|r| r.to_string())
                        .collect();
                    result.removals = report.teardown.removals;
                    if failures.is_empty() {
                        result.outcome = Outcome::Removed;
                    } else {
                        result.outcome = Outcome::Failed;
                        result.error = Some(failures.join("; "));
                    }
                }
                Err(err) => refused(&mut result, &err, false),
            }
        }
        if result.outcome == Outcome::Skipped {
            eprintln!(
                "warning: skipped stack {}: {}",
                result.stack,
                result.error.as_deref().unwrap_or_default()
            );
        }
        results.push(result);
    }
    let calls = provisioner.counter().calls();
    let report = provision::CallReport {
        total: calls.len(),
        mutating: calls.iter().filter(|c| c.mutating).count(),
        critical_path,
        calls,
    };
    print_calls(&report, args.report.verbose);
    let failed: Vec<&GcStack> = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed | Outcome::WouldFail))
        .collect();
    let count = |outcome: Outcome| results.iter().filter(|r| r.outcome == outcome).count();
    match args.report.output {
        OutputFormat::Json => print_json(&GcJson {
            region: &inventory.region,
            dry_run: args.dry_run,
            ok: failed.is_empty(),
            stacks: &results,
            kept: kept.clone(),
            api_calls: CallCounts::from(&report),
        })?,
        OutputFormat::Text => {
            for result in &results {
                print!("{}", render(result));
            }
            let (gone, verb, fail_verb) = if args.dry_run {
                (count(Outcome::WouldRemove), "would remove", "would fail")
            } else {
                (count(Outcome::Removed), "removed", "failed")
            };
            println!(
                "gc in {}: {gone} {verb}, {} {fail_verb}, {} skipped (a resource not theirs), {} \
                 renewed since listed, {} kept (matched no condition)",
                inventory.region,
                failed.len(),
                count(Outcome::Skipped),
                count(Outcome::Renewed),
                kept.len()
            );
        }
    }
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let names: Vec<&str> = failed.iter().map(|r| r.stack.as_str()).collect();
    let with_data: Vec<&str> = failed
        .iter()
        .filter(|r| r.holds_data)
        .map(|r| r.stack.as_str())
        .collect();
    let data_hint = if with_data.is_empty() {
        String::new()
    } else {
        format!(
            "; {} hold(s) items in its table: add --delete-data to delete them with the stack",
            with_data.join(", ")
        )
    };
    if args.dry_run {
        eprintln!(
            "error: gc would fail to remove {} stack(s): {} (the reasons are above){data_hint}",
            failed.len(),
            names.join(", ")
        );
    } else {
        eprintln!(
            "error: gc could not remove {} stack(s): {}; the others went. Fix the cause shown \
             above and run gc again{data_hint}",
            failed.len(),
            names.join(", ")
        );
    }
    Ok(ExitCode::FAILURE)
}

/// Records why `down` (or, with `dry_run`, its read-only checks) would not remove the stack.
fn refused(result: &mut GcStack, err: &anyhow::Error, dry_run: bool) {
    let stack = &result.stack;
    let (outcome, error) = match err.downcast_ref::<ProvisionError>() {
        Some(ProvisionError::NoLongerExpired { .. }) => (Outcome::Renewed, format!("{err:#}")),
        Some(ProvisionError::NotOwned { resources, .. }) => {
            let them = if resources.len() == 1 { "it" } else { "them" };
            let names: Vec<String> = resources.iter().map(ToString::to_string).collect();
            (
                Outcome::Skipped,
                format!(
                    "{} under its names {} not tagged wishctl:stack={stack}, so nothing of the \
                     stack is deleted (gc never deletes a resource that is not a stack's own) \
                     and gc skips it on every run without failing. To let gc remove the stack: \
                     delete {them} by hand if no one needs {them}, or tag {them} \
                     wishctl:stack={stack} to hand {them} to the stack (gc then deletes {them} \
                     with it)",
                    names.join(", "),
                    if resources.len() == 1 { "is" } else { "are" },
                ),
            )
        }
        Some(ProvisionError::TableNotEmpty { table, .. }) => {
            result.holds_data = true;
            (
                if dry_run {
                    Outcome::WouldFail
                } else {
                    Outcome::Failed
                },
                format!(
                    "table {table} holds items, so nothing of the stack {} deleted: run gc with \
                     --delete-data to delete the items with it, or `wishctl down --stack {stack} \
                     --delete-data` (`--keep-data` keeps the table)",
                    if dry_run { "would be" } else { "was" }
                ),
            )
        }
        _ if dry_run => (Outcome::WouldFail, format!("{err:#}")),
        _ => (Outcome::Failed, format!("{err:#}")),
    };
    result.outcome = outcome;
    result.error = Some(error);
}

/// One stack's lines of the text report.
fn render(result: &GcStack) -> String {
    let why = result.reasons.join("; ");
    let stack = &result.stack;
    let error = result.error.as_deref().unwrap_or("unknown error");
    let mut out = match result.outcome {
        Outcome::WouldRemove => format!("would remove stack {stack} ({why}):\n"),
        Outcome::Removed => {
            let deleted = result
                .removals
                .iter()
                .filter(|r| r.outcome == provision::Outcome::Deleted)
                .count();
            format!("removed stack {stack} ({why}): {deleted} resource(s) deleted\n")
        }
        Outcome::Renewed => format!("kept stack {stack} ({why} when listed): {error}\n"),
        Outcome::Skipped => format!("skipped stack {stack} ({why}): {error}\n"),
        Outcome::Failed => format!("FAILED to remove stack {stack} ({why}): {error}\n"),
        Outcome::WouldFail => format!("would FAIL to remove stack {stack} ({why}): {error}\n"),
    };
    match result.outcome {
        // What it has (or what went before the failure, so that a person sees what is left).
        Outcome::WouldRemove | Outcome::WouldFail | Outcome::Skipped => {
            for resource in &result.resources {
                out.push_str(&format!("    {resource}\n"));
            }
        }
        Outcome::Removed | Outcome::Failed => {
            for removal in &result.removals {
                out.push_str(&format!("    {removal}\n"));
            }
        }
        Outcome::Renewed => {}
    }
    out
}
