//! `wishctl down`: remove everything a stack owns, never data silently.

use std::process::ExitCode;

use provision::{DataPolicy, Provisioner, Removal};
use serde::Serialize;
use stack::StackName;

use super::aws::AwsArgs;
use super::output::{
    print_calls, print_json, stderr_progress, CallCounts, OutputFormat, ReportArgs,
};

/// Flags of `wishctl down`.
#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// The stack to remove.
    #[arg(long, value_name = "NAME", default_value = stack::DEFAULT_STACK)]
    pub stack: String,
    /// Delete the table even when it holds items.
    #[arg(long, conflicts_with = "keep_data")]
    pub delete_data: bool,
    /// Remove everything but the table, which a later `up` adopts again.
    #[arg(long)]
    pub keep_data: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DownJson<'a> {
    stack: &'a str,
    removals: &'a [Removal],
    already_gone: bool,
    api_calls: CallCounts,
}

pub async fn run(args: DownArgs) -> anyhow::Result<ExitCode> {
    let stack: StackName = args.stack.parse()?;
    let data = if args.delete_data {
        DataPolicy::Delete
    } else if args.keep_data {
        DataPolicy::Keep
    } else {
        DataPolicy::RefuseIfNotEmpty
    };
    let sdk = args.aws.sdk_config().await?;
    let report = Provisioner::new(&sdk)
        .with_progress(stderr_progress())
        .down(&stack, data)
        .await?;
    print_calls(&report.calls, args.report.verbose);
    let teardown = &report.teardown;
    match args.report.output {
        OutputFormat::Json => print_json(&DownJson {
            stack: &teardown.stack,
            removals: &teardown.removals,
            already_gone: teardown.was_already_gone(),
            api_calls: CallCounts::from(&report.calls),
        })?,
        OutputFormat::Text => {
            let failures = teardown.failures();
            if teardown.was_already_gone() {
                println!("stack {stack}: nothing left to delete");
            } else if failures.is_empty() {
                println!("stack {stack}: torn down");
            } else {
                println!("stack {stack}: {} deletion(s) failed", failures.len());
            }
        }
    }
    let failures = teardown.failures();
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let listed: Vec<String> = failures.iter().map(|r| r.to_string()).collect();
    Err(provision::ProvisionError::TeardownIncomplete { failures: listed }.into())
}
