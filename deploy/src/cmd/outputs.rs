use std::process::ExitCode;

/// Flags of `wishctl outputs`.
#[derive(Debug, clap::Args)]
pub struct OutputsArgs {}

pub async fn run(_args: OutputsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("wishctl outputs is not implemented yet")
}
