//! `wishctl outputs`: the URL, ids and names of a deployed stack, read back from AWS.

use std::process::ExitCode;

use provision::Provisioner;
use stack::StackName;

use super::aws::AwsArgs;
use super::up::{print_calls, print_json, OutputFormat};

/// Flags of `wishctl outputs`.
#[derive(Debug, clap::Args)]
pub struct OutputsArgs {
    /// The stack to read.
    #[arg(long, value_name = "NAME", default_value = stack::DEFAULT_STACK)]
    pub stack: String,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Result format on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub output: OutputFormat,
    /// Also print every AWS API call and the call counts on stderr.
    #[arg(long, short)]
    pub verbose: bool,
}

pub async fn run(args: OutputsArgs) -> anyhow::Result<ExitCode> {
    let stack: StackName = args.stack.parse()?;
    let sdk = args.aws.sdk_config().await?;
    let report = Provisioner::new(&sdk).outputs(&stack).await?;
    print_calls(&report.calls, args.verbose);
    match args.output {
        OutputFormat::Json => print_json(&report.outputs)?,
        OutputFormat::Text => println!("{}", report.outputs),
    }
    Ok(ExitCode::SUCCESS)
}
