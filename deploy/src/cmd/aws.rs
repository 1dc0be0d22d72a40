//! AWS connection flags shared by every command that talks to AWS.

use std::borrow::Cow;

use anyhow::Context as _;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where and as whom to talk to AWS. Without flags, the standard chain applies: `AWS_REGION`,
/// `AWS_PROFILE`, `AWS_ENDPOINT_URL`, `~/.aws/config` and `~/.aws/credentials`, SSO, instance
/// roles.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AwsArgs {
    /// AWS region, e.g. eu-west-1 (default: AWS_REGION or the profile's region).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Named profile from ~/.aws/config (default: AWS_PROFILE or "default").
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint instead, e.g. a local emulator such as
    /// http://127.0.0.1:5000 (default: AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

impl AwsArgs {
    /// The SDK configuration of these flags over the standard chain, with the retries of
    /// [`provision::retry_config`]: standard mode (throttling, 5xx answers and broken
    /// connections retried with a short jittered backoff; not the adaptive mode, whose
    /// client-side rate limiter stalls a short-lived tool for seconds after one throttle).
    ///
    /// Retry settings, per setting (mode, attempts): `AWS_RETRY_MODE` / `AWS_MAX_ATTEMPTS` first,
    /// then the profile's `retry_mode` / `max_attempts`, then ours (6 attempts); the backoff is
    /// always ours. The SDK loader alone would read the first two but fall back to its own
    /// defaults (3 attempts, up to 20 s backoff), so they are resolved here and handed to it.
    pub async fn sdk_config(&self) -> anyhow::Result<SdkConfig> {
        let (profile_mode, profile_attempts) =
            profile_retry_settings(self.profile.as_deref()).await;
        let retry = provision::retry_config_with_profile(
            profile_mode.as_deref(),
            profile_attempts.as_deref(),
        );
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry);
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &self.region {
            // The region is part of the role's name: refuse what cannot be one before any call.
            region
                .parse::<stack::Region>()
                .map_err(|e| anyhow::anyhow!("--region: {e}"))?;
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint_url {
            let shown = stack::url_for_message(endpoint);
            if stack::url_has_user_info(endpoint) {
                anyhow::bail!(
                    "--endpoint-url {shown:?} must not contain a user name or password: AWS requests are signed with the credentials of the environment or profile; remove them from the URL"
                );
            }
            let url = url::Url::parse(endpoint).with_context(|| {
                format!("invalid --endpoint-url {shown:?}: expected an absolute http(s) URL")
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                anyhow::bail!("invalid --endpoint-url {shown:?}: expected an http or https URL");
            }
            loader = loader.endpoint_url(endpoint);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            anyhow::bail!(
                "no AWS region configured: pass --region, set AWS_REGION, or set a region in the profile"
            );
        }
        Ok(config)
    }
}

/// The selected profile's `retry_mode` and `max_attempts` (`--profile`, else `AWS_PROFILE`, else
/// `default`; from `~/.aws/config` or `AWS_CONFIG_FILE`). Nothing when the files are missing or
/// do not parse: the credential chain reports a broken profile file itself.
async fn profile_retry_settings(profile: Option<&str>) -> (Option<String>, Option<String>) {
    let profiles = aws_config::profile::load(
        &aws_types::os_shim_internal::Fs::real(),
        &aws_types::os_shim_internal::Env::real(),
        // The standard files: ~/.aws/config and ~/.aws/credentials, or AWS_CONFIG_FILE and
        // AWS_SHARED_CREDENTIALS_FILE.
        &Default::default(),
        profile.map(|p| Cow::Owned(p.to_string())),
    )
    .await;
    match profiles {
        Ok(profiles) => (
            profiles.get("retry_mode").map(str::to_string),
            profiles.get("max_attempts").map(str::to_string),
        ),
        Err(_) => (None, None),
    }
}
