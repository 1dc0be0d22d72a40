//! What every resource module needs: the SDK clients, the account it works in, the bounds on
//! retries and waits, and where to report progress.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_types::SdkConfig;

use crate::calls::CallCounter;
use crate::ResourceKind;

/// The SDK clients of every service a stack uses.
#[derive(Debug, Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub apigateway: aws_sdk_apigatewayv2::Client,
    pub sts: aws_sdk_sts::Client,
}

impl Clients {
    /// Clients for every service from one SDK configuration (region, credentials, endpoint),
    /// each with the adaptive retry mode of [`crate::retry_config`].
    pub fn from_conf(sdk: &SdkConfig) -> Self {
        let retry = crate::retry_config();
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .retry_config(retry.clone())
                    .build(),
            ),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(sdk)
                    .retry_config(retry.clone())
                    .build(),
            ),
            lambda: aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(sdk)
                    .retry_config(retry.clone())
                    .build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                aws_sdk_cloudwatchlogs::config::Builder::from(sdk)
                    .retry_config(retry.clone())
                    .build(),
            ),
            apigateway: aws_sdk_apigatewayv2::Client::from_conf(
                aws_sdk_apigatewayv2::config::Builder::from(sdk)
                    .retry_config(retry.clone())
                    .build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(sdk)
                    .retry_config(retry)
                    .build(),
            ),
        }
    }

    /// The same clients, each also reporting its calls to `counter`. Works on clients built any
    /// way (including the SDK's test doubles), since it only adds an interceptor.
    pub fn counted_by(self, counter: &CallCounter) -> Self {
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                self.dynamodb
                    .config()
                    .to_builder()
                    .interceptor(counter.clone())
                    .build(),
            ),
            iam: aws_sdk_iam::Client::from_conf(
                self.iam
                    .config()
                    .to_builder()
                    .interceptor(counter.clone())
                    .build(),
            ),
            lambda: aws_sdk_lambda::Client::from_conf(
                self.lambda
                    .config()
                    .to_builder()
                    .interceptor(counter.clone())
                    .build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                self.logs
                    .config()
                    .to_builder()
                    .interceptor(counter.clone())
                    .build(),
            ),
            apigateway: aws_sdk_apigatewayv2::Client::from_conf(
                self.apigateway
                    .config()
                    .to_builder()
                    .interceptor(counter.clone())
                    .build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                self.sts
                    .config()
                    .to_builder()
                    .interceptor(counter.clone())
                    .build(),
            ),
        }
    }

    /// The region the clients talk to.
    pub fn region(&self) -> Option<String> {
        self.lambda.config().region().map(|r| r.to_string())
    }
}

/// The account and region the stack lives in, for building ARNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub account: String,
    pub partition: String,
    pub region: String,
}

impl Env {
    /// Asks STS who we are: `GetCallerIdentity` needs no permission and names account and
    /// partition (in the caller's ARN).
    pub(crate) async fn discover(clients: &Clients) -> anyhow::Result<Env> {
        let region = clients.region().context(
            "no AWS region configured: pass --region, set AWS_REGION, or set a region in the profile",
        )?;
        let identity = clients
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(describe_sdk_error)
            .context(
                "asking STS for the account id (GetCallerIdentity); are credentials configured?",
            )?;
        let account = identity
            .account()
            .context("GetCallerIdentity returned no account id")?
            .to_string();
        let partition = identity
            .arn()
            .and_then(|arn| arn.split(':').nth(1))
            .filter(|p| !p.is_empty())
            .unwrap_or("aws")
            .to_string();
        Ok(Env {
            account,
            partition,
            region,
        })
    }

    pub fn table_arn(&self, table: &str) -> String {
        stack::table_arn(&self.partition, &self.region, &self.account, table)
    }

    pub fn log_group_policy_arn(&self, log_group: &str) -> String {
        stack::log_group_arn(&self.partition, &self.region, &self.account, log_group)
    }

    pub fn role_arn(&self, role: &str) -> String {
        format!(
            "arn:{}:iam::{}:role{}{role}",
            self.partition,
            self.account,
            stack::ROLE_PATH
        )
    }

    pub fn function_arn(&self, function: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{function}",
            self.partition, self.region, self.account
        )
    }

    /// The HTTP API's ARN as the tagging API names it.
    pub fn api_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:apigateway:{}::/apis/{api_id}",
            self.partition, self.region
        )
    }

    /// The invoke permission's source ARN: any stage, any method, on the wish-list path of this
    /// API only (`arn:aws:execute-api:REGION:ACCOUNT:API/*/*/wish-list-service`).
    pub fn execute_api_source_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{api_id}/*/*{}",
            self.partition,
            self.region,
            self.account,
            stack::SERVICE_PATH
        )
    }
}

/// Bounds on the reconciler's own retries and waits (the SDK retries throttling by itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long to wait for a function to become `Active` or finish an update, or for a table
    /// to become `ACTIVE` or go away.
    pub wait_timeout: Duration,
    /// How long to keep retrying `CreateFunction` while IAM has not yet propagated a new role.
    pub propagation_timeout: Duration,
    /// The first delay between those retries; it doubles up to `propagation_max_delay`.
    pub propagation_first_delay: Duration,
    pub propagation_max_delay: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            wait_timeout: Duration::from_secs(300),
            propagation_timeout: Duration::from_secs(90),
            propagation_first_delay: Duration::from_secs(1),
            propagation_max_delay: Duration::from_secs(8),
        }
    }
}

/// One line of progress: what happened to which resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressEvent {
    pub kind: ResourceKind,
    pub name: String,
    /// e.g. `created`, `updated (audience)`, `deleted`, `not found`, `waiting until Active`.
    pub what: String,
}

impl fmt::Display for ProgressEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.name, self.what)
    }
}

/// Where progress goes; the CLI prints it on stderr, tests usually drop it.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<ReportFn>>);

type ReportFn = dyn Fn(&ProgressEvent) + Send + Sync;

impl Progress {
    pub fn new(report: impl Fn(&ProgressEvent) + Send + Sync + 'static) -> Self {
        Progress(Some(Arc::new(report)))
    }

    pub fn silent() -> Self {
        Progress(None)
    }

    pub(crate) fn report(&self, kind: ResourceKind, name: &str, what: impl Into<String>) {
        if let Some(report) = &self.0 {
            report(&ProgressEvent {
                kind,
                name: name.to_string(),
                what: what.into(),
            });
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(reporting)"
        } else {
            "Progress(silent)"
        })
    }
}

/// Everything a resource module's apply step needs.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub clients: Clients,
    pub settings: Settings,
    pub progress: Progress,
}

/// Turns an SDK error into an `anyhow::Error` whose message holds the service's own error code
/// and message (the SDK's `Display` alone only says "service error").
pub(crate) fn describe_sdk_error<E, R>(err: SdkError<E, R>) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    anyhow::anyhow!(
        "{}",
        aws_smithy_types::error::display::DisplayErrorContext(&err)
    )
}

/// `Ok(None)` for the not-found error of a call, the output otherwise.
pub(crate) fn found<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    is_not_found: impl FnOnce(&E) -> bool,
) -> Result<Option<T>, SdkError<E, R>> {
    match result {
        Ok(output) => Ok(Some(output)),
        Err(err) if err.as_service_error().is_some_and(is_not_found) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Context for SDK calls: `client.op().send().await.doing(|| format!("creating table {name}"))?`
/// gives "creating table NAME: <service error code and message>".
pub(crate) trait SdkResultExt<T> {
    fn doing(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E, R> SdkResultExt<T> for Result<T, SdkError<E, R>>
where
    E: std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    fn doing(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(describe_sdk_error).with_context(what)
    }
}
