//! `wishctl outputs`: the URL, ids and names of a deployed stack, read back from AWS.

use std::process::ExitCode;

use provision::Provisioner;
use stack::StackName;

use super::aws::AwsArgs;
use super::output::{print_calls, print_json, OutputFormat, ReportArgs};

/// Flags of `wishctl outputs`.
#[derive(Debug, clap::Args)]
pub struct OutputsArgs {
    /// The stack to read.
    #[arg(long, value_name = "NAME", default_value = stack::DEFAULT_STACK)]
    pub stack: String,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub report: ReportArgs,
}

pub async fn run(args: OutputsArgs) -> anyhow::Result<ExitCode> {
    let stack: StackName = args.stack.parse()?;
    let sdk = args.aws.sdk_config().await?;
    let report = Provisioner::new(&sdk).outputs(&stack).await?;
    print_calls(&report.calls, args.report.verbose);
    match args.report.output {
        OutputFormat::Json => print_json(&report.outputs)?,
        OutputFormat::Text => println!("{}", report.outputs),
    }
    Ok(ExitCode::SUCCESS)
}
