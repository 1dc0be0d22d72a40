//! `wishctl token`: an access token, either signed by the local dev key (for `wishctl dev`), or,
//! with `--client-id`, obtained from an issuer through the OAuth 2.0 client-credentials grant as a
//! CI pipeline does (Auth0 machine-to-machine applications, or `wishctl dev`'s own endpoint).
//!
//! The client secret comes from an environment variable or stdin, never from a flag value (which
//! `ps` and shell history would show); neither it nor the token is ever logged.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use authorizer::{ClientCredentials, Secret};
use devserver::{DevKey, KeyOrigin, TokenRequest};
use serde_json::{json, Value};

/// Flags of `wishctl token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The token's subject (`sub`), which becomes `createdBy` of the items it posts.
    #[arg(long, value_name = "ID", default_value = devserver::DEFAULT_SUBJECT, conflicts_with = "client_id")]
    pub sub: String,

    /// A scope to grant (written to the space-separated `scope` claim, or asked for with
    /// --client-id); repeat for several.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,

    /// The token's audience (`aud`): `wishctl-dev` for the dev key; with --client-id, the API
    /// identifier to ask the issuer for (Auth0's `audience`).
    #[arg(long, value_name = "AUD")]
    pub audience: Option<String>,

    /// How long the token is valid, e.g. 15m, 1h, 7d (dev key only: an issuer decides itself).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub expires_in: Duration,

    /// Port of the `wishctl dev` that will receive the token: its issuer URL holds the port.
    #[arg(long, default_value_t = devserver::DEFAULT_PORT)]
    pub port: u16,

    /// Folder holding the local signing key (the same as `wishctl dev --dev-dir`).
    #[arg(long, value_name = "DIR", conflicts_with = "client_id")]
    pub dev_dir: Option<PathBuf>,

    /// Issuer to ask with --client-id (Auth0: `https://TENANT.auth0.com/`); default: the
    /// `wishctl dev` on --port.
    #[arg(long, value_name = "URL", requires = "client_id")]
    pub issuer: Option<String>,

    /// Client id of a machine-to-machine application: get the token through the OAuth 2.0
    /// client-credentials grant at the issuer's token endpoint instead of the dev key.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,

    /// Environment variable holding the client secret.
    #[arg(
        long,
        value_name = "VAR",
        requires = "client_id",
        conflicts_with = "client_secret_stdin"
    )]
    pub client_secret_env: Option<String>,

    /// Read the client secret from the first line of stdin.
    #[arg(long, requires = "client_id")]
    pub client_secret_stdin: bool,

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
/// A client secret longer than this is not a secret but a mistake (a file piped by accident).
const MAX_SECRET_BYTES: usize = 4096;

pub async fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    if args.port == 0 {
        anyhow::bail!("--port 0 names no server: give the port `wishctl dev` printed");
    }
    if let Some(bad) = args
        .scopes
        .iter()
        .find(|s| s.is_empty() || s.chars().any(char::is_whitespace))
    {
        anyhow::bail!("--scope {bad:?} must be one non-empty word; repeat --scope for several");
    }
    if args
        .audience
        .as_deref()
        .is_some_and(|a| a.trim().is_empty())
    {
        anyhow::bail!("--audience must not be empty");
    }
    if let Some(client_id) = &args.client_id {
        return client_credentials(&args, client_id).await;
    }
    dev_key_token(&args)
}

/// The client-credentials grant against `--issuer` (or the local `wishctl dev`).
async fn client_credentials(args: &TokenArgs, client_id: &str) -> anyhow::Result<ExitCode> {
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| devserver::self_issuer_url(args.port));
    super::dev::refuse_issuer_credentials(&issuer)?;
    if client_id.trim().is_empty() {
        anyhow::bail!("--client-id must not be empty");
    }
    let client_secret = read_secret(args)?;
    let creds = ClientCredentials {
        issuer: issuer.clone(),
        client_id: client_id.to_string(),
        client_secret,
        audience: args.audience.clone(),
        scope: (!args.scopes.is_empty()).then(|| args.scopes.join(" ")),
    };
    let shown = stack::url_for_message(&issuer);
    let issued = match authorizer::request_token(&creds).await {
        Ok(issued) => issued,
        Err(err) => match err.hint() {
            Some(hint) => anyhow::bail!("getting a token from {shown}: {err}\n  {hint}"),
            None => anyhow::bail!("getting a token from {shown}: {err}"),
        },
    };
    let token = issued.access_token.expose();
    match args.output {
        Output::Text => println!("{token}"),
        Output::Json => {
            let claims = authorizer::decode_claims_unverified(token).map(Value::Object);
            let expires_at = issued
                .expires_in
                .and_then(|secs| rfc3339(now_secs().saturating_add(secs)))
                .or_else(|| {
                    claims
                        .as_ref()
                        .and_then(|c| c["exp"].as_u64())
                        .and_then(rfc3339)
                });
            let out = json!({
                "access_token": token,
                "token_type": issued.token_type,
                "expires_in": issued.expires_in,
                "expires_at": expires_at,
                "scope": issued.scope,
                "claims": claims,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&out).context("encoding the token as JSON")?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_secret(args: &TokenArgs) -> anyhow::Result<Secret> {
    let secret = match (&args.client_secret_env, args.client_secret_stdin) {
        (Some(var), _) => match std::env::var(var) {
            Ok(value) => value,
            Err(std::env::VarError::NotPresent) => anyhow::bail!(
                "--client-secret-env {var}: the environment variable {var} is not set; export the client secret in it"
            ),
            Err(std::env::VarError::NotUnicode(_)) => {
                anyhow::bail!("--client-secret-env {var}: the value of {var} is not UTF-8")
            }
        },
        (None, true) => {
            let mut buf = Vec::new();
            std::io::stdin()
                .take(MAX_SECRET_BYTES as u64 + 1)
                .read_to_end(&mut buf)
                .context("reading the client secret from stdin")?;
            let text = String::from_utf8(buf)
                .map_err(|_| anyhow::anyhow!("the client secret on stdin is not UTF-8"))?;
            text.lines().next().unwrap_or_default().to_string()
        }
        (None, false) => anyhow::bail!(
            "--client-id needs the client secret from --client-secret-env VAR or --client-secret-stdin (never as a flag value, which ps and shell history would show)"
        ),
    };
    let secret = secret.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        anyhow::bail!("the client secret is empty");
    }
    if secret.len() > MAX_SECRET_BYTES {
        anyhow::bail!(
            "the client secret is longer than {MAX_SECRET_BYTES} bytes: is this the right input?"
        );
    }
    Ok(Secret::new(secret))
}

/// A token signed by the local dev key, for the `wishctl dev` on `--port`.
fn dev_key_token(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    if args.sub.trim().is_empty() {
        anyhow::bail!("--sub must not be empty");
    }
    if args.expires_in.is_zero() || args.expires_in > MAX_LIFETIME {
        anyhow::bail!(
            "--expires-in must be between 1s and 30 days, got {}",
            humantime::format_duration(args.expires_in)
        );
    }
    let dev_dir = super::dev::resolve_dev_dir(args.dev_dir.as_deref())?;
    let (key, origin) = DevKey::load_or_create(&dev_dir)
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
            audience: args
                .audience
                .clone()
                .unwrap_or_else(|| devserver::DEFAULT_AUDIENCE.to_string()),
            scopes: args.scopes.clone(),
            expires_in: args.expires_in,
        })
        .context("signing the token")?;
    match args.output {
        Output::Text => println!("{}", minted.token),
        Output::Json => {
            let out = json!({
                "access_token": minted.token,
                "token_type": "Bearer",
                "expires_in": args.expires_in.as_secs(),
                "expires_at": rfc3339(minted.expires_at).unwrap_or_default(),
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

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds since the epoch as RFC 3339 (UTC).
fn rfc3339(secs: u64) -> Option<String> {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
}
