//! AWS connection flags shared by every command that talks to AWS.

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
    /// The SDK configuration of these flags over the standard chain, with adaptive retries
    /// (throttling is retried with backoff and slows the client down).
    pub async fn sdk_config(&self) -> anyhow::Result<SdkConfig> {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).retry_config(provision::retry_config());
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
            let url = url::Url::parse(endpoint).with_context(|| {
                format!("invalid --endpoint-url {endpoint:?}: expected an absolute http(s) URL")
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                anyhow::bail!("invalid --endpoint-url {endpoint:?}: expected an http or https URL");
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
