//! `wishctl list`: the stacks of the account and region, complete or partial, with their age,
//! expiry and URL.

use std::process::ExitCode;
use std::time::SystemTime;

use provision::{Inventory, LookAlike, Provisioner, StackSummary};
use serde::Serialize;

use super::aws::AwsArgs;
use super::output::{print_calls, print_json, CallCounts, OutputFormat, ReportArgs};

/// Flags of `wishctl list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only the stacks whose name starts with this (e.g. pr-); nothing is read about any other
    /// resource, so a role with `wishctl policy --stack-prefix P` can run it.
    #[arg(long, value_name = "P", default_value = "")]
    pub stack_prefix: String,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListJson<'a> {
    #[serde(flatten)]
    inventory: &'a Inventory,
    api_calls: CallCounts,
}

pub async fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    stack::check_stack_prefix(&args.stack_prefix)?;
    let sdk = args.aws.sdk_config().await?;
    let report = Provisioner::new(&sdk)
        .list_stacks(SystemTime::now(), &args.stack_prefix)
        .await?;
    print_calls(&report.calls, args.report.verbose);
    let inventory = &report.inventory;
    match args.report.output {
        OutputFormat::Json => print_json(&ListJson {
            inventory,
            api_calls: CallCounts::from(&report.calls),
        })?,
        OutputFormat::Text => print!("{}", render(inventory)),
    }
    report_look_alikes(&inventory.look_alikes);
    Ok(ExitCode::SUCCESS)
}

/// On stderr: what looks like a stack's resource but is not tagged as one (never touched).
pub fn report_look_alikes(look_alikes: &[LookAlike]) {
    if look_alikes.is_empty() {
        return;
    }
    eprintln!(
        "ignored {} resource(s) named like a stack's but not tagged as one (wishctl never touches them):",
        look_alikes.len()
    );
    for l in look_alikes {
        eprintln!("  {} ({})", l.resource, l.reason);
    }
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_string())
}

/// The expiry column: the time, `(expired)` when it passed, `never`, or `-` without a TTL.
pub fn expiry_text(stack: &StackSummary) -> String {
    match &stack.expires_at {
        None => "-".to_string(),
        Some(expiry) if stack.expired => format!("{expiry} (expired)"),
        Some(expiry) => expiry.to_string(),
    }
}

fn render(inventory: &Inventory) -> String {
    if inventory.stacks.is_empty() {
        return format!("no stacks in {}\n", inventory.region);
    }
    let rows: Vec<[String; 5]> = inventory
        .stacks
        .iter()
        .map(|s| {
            [
                s.stack.to_string(),
                if s.complete { "complete" } else { "partial" }.to_string(),
                or_dash(s.created_at.map(|t| t.to_string())),
                expiry_text(s),
                or_dash(s.url.clone()),
            ]
        })
        .collect();
    let header = ["STACK", "STATUS", "CREATED", "EXPIRES", "URL"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: &[String; 5]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(&header);
    for (row, stack) in rows.iter().zip(&inventory.stacks) {
        out.push_str(&line(row));
        if !stack.complete {
            out.push_str(&format!("  missing: {}\n", stack.missing.join(", ")));
        }
    }
    out.push_str(&format!(
        "{} stack(s) in {}\n",
        inventory.stacks.len(),
        inventory.region
    ));
    out
}
