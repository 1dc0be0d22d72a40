//! `wishctl plan`: what `up` would change, per resource, without changing anything.

use std::process::ExitCode;

use provision::{Plan, Provisioner};
use serde::Serialize;

use super::output::{print_calls, print_json, CallCounts, OutputFormat};
use super::up::StackArgs;

/// Flags of `wishctl plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error (as Terraform).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanJson<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    has_changes: bool,
    api_calls: CallCounts,
}

pub async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let spec = args.stack.spec()?;
    // Independent of each other: the issuer's documents, the zip, the credentials.
    let ((), code, sdk) = tokio::try_join!(
        args.stack.check_issuer(&spec),
        args.stack.function_code(spec.function.architecture),
        args.stack.aws.sdk_config(),
    )?;
    let report = Provisioner::new(&sdk).plan(&spec, &code).await?;
    print_calls(&report.calls, args.stack.report.verbose);
    let has_changes = report.plan.has_changes();
    match args.stack.report.output {
        OutputFormat::Json => print_json(&PlanJson {
            plan: &report.plan,
            has_changes,
            api_calls: CallCounts::from(&report.calls),
        })?,
        OutputFormat::Text => println!("{}", report.plan),
    }
    Ok(if args.detailed_exitcode && has_changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
