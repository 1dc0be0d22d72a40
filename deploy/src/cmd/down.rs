use std::process::ExitCode;

/// Flags of `wishctl down`.
#[derive(Debug, clap::Args)]
pub struct DownArgs {}

pub async fn run(_args: DownArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("wishctl down is not implemented yet")
}
