//! `wishctl token`: an access token signed by the local dev key, for `wishctl dev`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use devserver::{DevKey, KeyOrigin, TokenRequest};
use serde_json::json;

/// Flags of `wishctl token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The token's subject (`sub`), which becomes `createdBy` of the items it posts.
    #[arg(long, value_name = "ID", default_value = devserver::DEFAULT_SUBJECT)]
    pub sub: String,

    /// A scope to grant (written to the space-separated `scope` claim); repeat for several.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,

    /// The token's audience (`aud`).
    #[arg(long, value_name = "AUD", default_value = devserver::DEFAULT_AUDIENCE)]
    pub audience: String,

    /// How long the token is valid, e.g. 15m, 1h, 7d.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub expires_in: Duration,

    /// Port of the `wishctl dev` that will receive the token: its issuer URL holds the port.
    #[arg(long, default_value_t = devserver::DEFAULT_PORT)]
    pub port: u16,

    /// Folder holding the local signing key (the same as `wishctl dev --dev-dir`).
    #[arg(long, value_name = "DIR", default_value = devserver::DEFAULT_DEV_DIR)]
    pub dev_dir: PathBuf,

    /// `text` prints the bare token (for `TOKEN=$(wishctl token)`); `json` adds its claims and
    /// expiry.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Longer-lived local tokens are allowed, but not forever: a leaked one should die on its own.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

pub async fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    if args.port == 0 {
        anyhow::bail!("--port 0 names no server: give the port `wishctl dev` printed");
    }
    if args.sub.trim().is_empty() {
        anyhow::bail!("--sub must not be empty");
    }
    if args.audience.trim().is_empty() {
        anyhow::bail!("--audience must not be empty");
    }
    if args.expires_in.is_zero() || args.expires_in > MAX_LIFETIME {
        anyhow::bail!(
            "--expires-in must be between 1s and 30 days, got {}",
            humantime::format_duration(args.expires_in)
        );
    }
    if let Some(bad) = args
        .scopes
        .iter()
        .find(|s| s.is_empty() || s.chars().any(char::is_whitespace))
    {
        anyhow::bail!("--scope {bad:?} must be one non-empty word; repeat --scope for several");
    }
    let (key, origin) = DevKey::load_or_create(&args.dev_dir)
        .context("preparing the local signing key (use --dev-dir to pick its folder)")?;
    if origin == KeyOrigin::Created {
        eprintln!(
            "created a new signing key in {}; a running `wishctl dev` with the same --dev-dir must be restarted to accept it",
            key.path().display()
        );
    }
    let minted = key
        .mint(&TokenRequest {
            issuer: devserver::self_issuer_url(args.port),
            subject: args.sub.clone(),
            audience: args.audience.clone(),
            scopes: args.scopes.clone(),
            expires_in: args.expires_in,
        })
        .context("signing the token")?;
    match args.output {
        Output::Text => println!("{}", minted.token),
        Output::Json => {
            let expires_at = i64::try_from(minted.expires_at)
                .ok()
                .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            let out = json!({
                "access_token": minted.token,
                "token_type": "Bearer",
                "expires_in": args.expires_in.as_secs(),
                "expires_at": expires_at,
                "claims": minted.claims,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&out).context("encoding the token as JSON")?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
