use std::process::ExitCode;

/// Flags of `wishctl dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {}

pub async fn run(_args: DevArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("wishctl dev is not implemented yet")
}
