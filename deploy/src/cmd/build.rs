use std::process::ExitCode;

/// Flags of `wishctl build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {}

pub async fn run(_args: BuildArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("wishctl build is not implemented yet")
}
