use std::process::ExitCode;

/// Flags of `wishctl up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {}

pub async fn run(_args: UpArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("wishctl up is not implemented yet")
}
