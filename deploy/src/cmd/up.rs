//! `wishctl up`: create what is missing, update what differs, print the outputs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use provision::{Change, FunctionCode, Provisioner};
use serde::Serialize;
use stack::{
    Architecture, AuthorizerSettings, CorsSettings, FunctionSettings, Issuer, SpecError, StackName,
    StackOutputs, StackSpec, Tags, DEFAULT_LOG_RETENTION_DAYS,
};

use super::aws::AwsArgs;
use super::output::{
    print_calls, print_json, stderr_progress, CallCounts, OutputFormat, ReportArgs,
};

/// Flags shared by `up` and `plan`: the stack description, the code, and where AWS is.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// Token issuer: an absolute https URL, exactly as in the tokens' `iss` claim (Auth0's ends
    /// with `/`).
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// Accepted token audience (`aud`), e.g. the Auth0 API identifier. Repeat for more (at most 50).
    #[arg(long = "audience", value_name = "AUD", required = true)]
    pub audiences: Vec<String>,
    /// Stack name: 1-32 lowercase letters, digits and '-'. Every resource name derives from it.
    #[arg(long, value_name = "NAME", default_value = stack::DEFAULT_STACK)]
    pub stack: String,
    /// Scope a token must hold to POST (any one of them). Repeat for more (at most 10).
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// Architecture of the function: arm64 (Graviton, cheaper) or x86_64.
    #[arg(long, value_name = "ARCH", default_value = "arm64")]
    pub arch: String,
    /// Memory of the function in MB (128-10240).
    #[arg(long, value_name = "MB", default_value_t = 128)]
    pub memory: u32,
    /// Deploy this zip (one entry `bootstrap`) instead of building the handler from source.
    #[arg(long, value_name = "ZIP")]
    pub artifact: Option<PathBuf>,
    /// Inside a wishctl checkout, build the handler without whole-program optimisation
    /// (cargo profile lambda-quick): seconds instead of a minute or more after an edit, for a
    /// somewhat larger zip. For the edit loop; releases and CI use the default build.
    #[arg(long, conflicts_with = "artifact")]
    pub quick_build: bool,
    /// Extra tag for every resource. Repeat for more.
    #[arg(long = "tag", value_name = "K=V")]
    pub tags: Vec<String>,
    /// Do not fetch the issuer's discovery document and keys before deploying (air-gapped
    /// runners; by default `up` and `plan` stop when they contradict --issuer).
    #[arg(long)]
    pub skip_issuer_check: bool,
    /// Origin allowed by the API's CORS configuration (GET and POST, Authorization and
    /// Content-Type headers), e.g. `https://app.example.com`. Repeat for more.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Lifetime: the stack expires this long after this run (30m, 2h, 7d; tag
    /// wishctl:expires-at) and `wishctl gc --expired` removes it then; `none` clears it. Without
    /// --ttl the recorded expiry is kept.
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub report: ReportArgs,
}

impl StackArgs {
    /// The stack description of these flags, or the first rule a flag breaks.
    pub fn spec(&self) -> Result<StackSpec, SpecError> {
        let name: StackName = self.stack.parse()?;
        let issuer = if super::issuer_check::loopback_http_allowed() {
            Issuer::parse_local(&self.issuer)?
        } else {
            Issuer::parse(&self.issuer)?
        };
        let authorizer = AuthorizerSettings::new(
            issuer,
            self.audiences.iter().cloned(),
            self.scopes.iter().cloned(),
        )?;
        let architecture: Architecture = self.arch.parse()?;
        let defaults = FunctionSettings::default();
        let function = FunctionSettings::new(
            architecture,
            self.memory,
            defaults.timeout_seconds,
            DEFAULT_LOG_RETENTION_DAYS,
        )?;
        let cors = CorsSettings::new(self.cors_origins.iter().cloned())?;
        let mut tags = self.tags.clone();
        if let Some(ttl) = &self.ttl {
            tags.push(
                ttl.parse::<stack::Ttl>()?
                    .tag_from(std::time::SystemTime::now()),
            );
        }
        let tags = Tags::for_stack(&name, tags.iter().map(String::as_str))?;
        Ok(StackSpec {
            name,
            authorizer,
            function,
            cors,
            tags,
        })
    }

    /// The issuer pre-check, unless `--skip-issuer-check`.
    pub async fn check_issuer(&self, spec: &StackSpec) -> anyhow::Result<()> {
        if self.skip_issuer_check {
            return Ok(());
        }
        super::issuer_check::run(&spec.authorizer.issuer).await
    }

    /// The zip to deploy: `--artifact`; inside a wishctl checkout, the handler built from it;
    /// elsewhere, the zip this binary carries for its own version (release builds, see
    /// deploy/build.rs). Prints which on stderr.
    pub async fn function_code(&self, arch: Architecture) -> anyhow::Result<FunctionCode> {
        /// Empty unless built with WISHCTL_EMBED_DIST (scripts/package.sh does).
        const CARRIED: &[artifact::carried::CarriedZip] =
            include!(concat!(env!("OUT_DIR"), "/carried_zips.rs"));
        let explicit = self.artifact.clone();
        let build_profile = if self.quick_build {
            artifact::BuildProfile::Quick
        } else {
            artifact::BuildProfile::Release
        };
        let cwd = std::env::current_dir().context("reading the current directory")?;
        let selected = tokio::task::spawn_blocking(move || {
            let request = artifact::source::CodeRequest {
                arch,
                explicit: explicit.as_deref(),
                cwd: &cwd,
                carried: CARRIED,
                version: env!("CARGO_PKG_VERSION"),
                cache_dir: &artifact::carried::default_cache_dir(),
                build_profile,
            };
            artifact::source::select(&request, &|line| eprintln!("{line}"))
        })
        .await
        .context("the code selection task panicked")?
        .with_context(|| format!("preparing the {arch} Lambda zip"))?;
        eprintln!("{selected}");
        let artifact = selected.artifact;
        if let Some(found) = artifact.arch {
            if found != arch {
                anyhow::bail!(
                    "{} holds a bootstrap for {found}, but the function is {arch}: pass --arch {found} \
                     or a zip built for {arch} (`wishctl build --arch {arch}`)",
                    artifact.path.display()
                );
            }
        }
        Ok(FunctionCode {
            path: artifact.path,
            sha256_base64: artifact.sha256_base64,
        })
    }
}

/// `wishctl up --output json`: the stack outputs plus what was done.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UpJson<'a> {
    #[serde(flatten)]
    outputs: &'a StackOutputs,
    changes: &'a [Change],
    api_calls: CallCounts,
    elapsed_ms: u128,
}

/// Flags of `wishctl up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub stack: StackArgs,
}

pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let args = args.stack;
    let spec = args.spec()?;
    // Independent of each other, so side by side: the issuer's documents (two round trips to
    // the issuer), the zip (checked, or built in a checkout), the credentials. Nothing is
    // changed in AWS before all three succeeded.
    let ((), code, sdk) = tokio::try_join!(
        args.check_issuer(&spec),
        args.function_code(spec.function.architecture),
        args.aws.sdk_config(),
    )?;
    let provisioner = Provisioner::new(&sdk).with_progress(stderr_progress());
    let started = Instant::now();
    let report = provisioner.up(&spec, &code).await?;
    let elapsed = started.elapsed();
    print_calls(&report.calls, args.report.verbose);
    match args.report.output {
        OutputFormat::Json => print_json(&UpJson {
            outputs: &report.outputs,
            changes: &report.plan.changes,
            api_calls: CallCounts::from(&report.calls),
            elapsed_ms: elapsed.as_millis(),
        })?,
        OutputFormat::Text => {
            let (created, updated, unchanged) = report.plan.counts();
            eprintln!(
                "stack {}: {created} created, {updated} updated, {unchanged} unchanged in {:.1}s ({} AWS calls, {} mutating)",
                spec.name,
                elapsed.as_secs_f64(),
                report.calls.total,
                report.calls.mutating
            );
            println!("{}", report.outputs);
        }
    }
    Ok(ExitCode::SUCCESS)
}
