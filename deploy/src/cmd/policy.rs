//! `wishctl policy`: the IAM policy a CI deploy role needs for `up`, `plan`, `down`, `outputs`,
//! `verify`, `list`, `gc` and `logs` on the stacks with a name prefix. Makes no AWS call: the
//! document comes from `stack`'s operation table.

use std::process::ExitCode;

use serde_json::Value;
use stack::{PolicyScope, OPERATIONS};

use super::output::{print_json, OutputFormat};

/// Flags of `wishctl policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// The stacks the role may manage: those whose name starts with this (e.g. pr-). Empty:
    /// every stack.
    #[arg(long, value_name = "P", default_value = "")]
    pub stack_prefix: String,
    /// The region of the stacks, or * for any.
    #[arg(long, value_name = "REGION", default_value = "*")]
    pub region: String,
    /// The 12-digit account id of the stacks, or * for the role's own.
    #[arg(long, value_name = "ID", default_value = "*")]
    pub account: String,
    /// The AWS partition (aws, aws-cn, aws-us-gov).
    #[arg(long, value_name = "PARTITION", default_value = "aws")]
    pub partition: String,
    /// text: the statements for review; json: exactly the policy document (for
    /// `aws iam put-role-policy --policy-document file://policy.json`).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub output: OutputFormat,
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

pub fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    let scope = PolicyScope::new(
        &args.stack_prefix,
        &args.region,
        &args.account,
        &args.partition,
    )?;
    let document = stack::deploy_policy(&scope);
    match args.output {
        OutputFormat::Json => {
            // stdout is exactly the document (for put-role-policy); the caveat goes beside it.
            print_json(&document)?;
            eprintln!("note: {}", stack::API_GATEWAY_NOTE);
        }
        OutputFormat::Text => {
            println!(
                "IAM policy for wishctl on stacks {}* (region {}, account {}): {} operations",
                args.stack_prefix,
                args.region,
                args.account,
                OPERATIONS.len()
            );
            for statement in document["Statement"].as_array().into_iter().flatten() {
                println!();
                println!("{}", statement["Sid"].as_str().unwrap_or_default());
                for resource in strings(&statement["Resource"]) {
                    println!("  on   {resource}");
                }
                if let Some(condition) = statement.get("Condition") {
                    println!("  when {condition}");
                }
                println!("  allow {}", strings(&statement["Action"]).join(", "));
            }
            println!();
            println!("Note: {}", stack::API_GATEWAY_NOTE);
            println!();
            println!("The document itself: wishctl policy --output json");
        }
    }
    Ok(ExitCode::SUCCESS)
}
