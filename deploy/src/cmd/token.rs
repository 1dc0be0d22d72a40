use std::process::ExitCode;

/// Flags of `wishctl token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {}

pub async fn run(_args: TokenArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("wishctl token is not implemented yet")
}
