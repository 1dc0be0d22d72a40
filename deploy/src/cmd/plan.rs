use std::process::ExitCode;

/// Flags of `wishctl plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {}

pub async fn run(_args: PlanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("wishctl plan is not implemented yet")
}
