//! `wishctl gc`: tear down the stacks that crashed or forgotten runs left behind: those whose
//! expiry passed (`--expired`) or that are older than a duration (`--older-than`), optionally
//! only those whose name starts with a prefix.
//!
//! A stack is removed only when it meets at least one condition; with no condition `gc`
//! refuses before any AWS call. Stacks come from `list`'s discovery (narrowed to the prefix
//! before anything is read about a resource), so a resource that is not tagged as a stack's
//! is never considered, and each stack goes through `down` (which checks ownership again and
//! refuses a table with items unless `--delete-data`). A failure on one stack does not stop the
//! others; the exit code is 0 only when every matching stack went.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use provision::{
    DataPolicy, DownCondition, FoundResource, ProvisionError, Provisioner, Removal, StackSummary,
};
use serde::Serialize;
use stack::UtcTime;

use super::aws::AwsArgs;
use super::list::{expiry_text, report_look_alikes};
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
    Failed,
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
            reasons.push(format!("expired at {}", expiry_text(stack)));
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
        };
        if !args.dry_run {
            eprintln!(
                "removing stack {} ({})",
                summary.stack,
                result.reasons.join("; ")
            );
            let condition = criteria.condition(summary, inventory.listed_at);
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
                Err(err)
                    if matches!(
                        err.downcast_ref::<ProvisionError>(),
                        Some(ProvisionError::NoLongerExpired { .. })
                    ) =>
                {
                    result.outcome = Outcome::Renewed;
                    result.error = Some(format!("{err:#}"));
                }
                Err(err) => {
                    result.outcome = Outcome::Failed;
                    result.error = Some(format!("{err:#}"));
                }
            }
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
        .filter(|r| r.outcome == Outcome::Failed)
        .collect();
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
                let why = result.reasons.join("; ");
                match result.outcome {
                    Outcome::WouldRemove => {
                        println!("would remove stack {} ({why}):", result.stack);
                        for resource in &result.resources {
                            println!("    {resource}");
                        }
                    }
                    Outcome::Removed => {
                        let deleted = result
                            .removals
                            .iter()
                            .filter(|r| r.outcome == provision::Outcome::Deleted)
                            .count();
                        println!(
                            "removed stack {} ({why}): {deleted} resource(s) deleted",
                            result.stack
                        );
                        for removal in &result.removals {
                            println!("    {removal}");
                        }
                    }
                    Outcome::Renewed => println!(
                        "kept stack {} ({why} when listed): {}",
                        result.stack,
                        result.error.as_deref().unwrap_or("renewed")
                    ),
                    Outcome::Failed => {
                        println!(
                            "FAILED to remove stack {} ({why}): {}",
                            result.stack,
                            result.error.as_deref().unwrap_or("unknown error")
                        );
                        // What went before the failure, so that a person sees what is left.
                        for removal in &result.removals {
                            println!("    {removal}");
                        }
                    }
                }
            }
            let verb = if args.dry_run {
                "would remove"
            } else {
                "removed"
            };
            let renewed = results
                .iter()
                .filter(|r| r.outcome == Outcome::Renewed)
                .count();
            println!(
                "gc in {}: {} {verb}, {} failed, {renewed} renewed since listed, {} kept (matched no condition)",
                inventory.region,
                results.len() - failed.len() - renewed,
                failed.len(),
                kept.len()
            );
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        let names: Vec<&str> = failed.iter().map(|r| r.stack.as_str()).collect();
        eprintln!(
            "error: gc could not remove {} stack(s): {}; the others went. Fix the cause shown \
             above and run gc again (a table with items needs --delete-data)",
            failed.len(),
            names.join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}
