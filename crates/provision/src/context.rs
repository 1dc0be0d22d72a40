//! What every resource module needs: the SDK clients, the account it works in, the bounds on
//! retries and waits, and where to report progress.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::SdkConfig;

use crate::calls::CallCounter;
use crate::timeouts;
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
    /// each with the timeouts of [`timeouts::timeout_config`] (retries of a call getting longer
    /// attempts than the first) and the retry behaviour of
    /// [`crate::retry_config`], unless the configuration's retry settings were set explicitly
    /// (`aws_config::defaults(..).retry_config(..)`, as the CLI does with
    /// [`crate::retry_config_with_profile`]): those are kept as they are. A retry configuration
    /// the loader resolved by itself is not used: it would be the SDK's defaults (3 attempts,
    /// backoff up to 20 s) rather than ours.
    pub fn from_conf(sdk: &SdkConfig) -> Self {
        let retry = match sdk.retry_config() {
            Some(explicit) if sdk.get_origin("retry_config").is_client_config() => explicit.clone(),
            _ => crate::retry_config(),
        };
        // The environment's settings first, then the caller's configuration, then ours.
        let call_timeouts = timeouts::timeout_config_from_env()
            .to_builder()
            .take_unset_from(
                sdk.timeout_config()
                    .map(|t| t.to_builder())
                    .unwrap_or_default(),
            )
            .take_unset_from(timeouts::timeout_config().to_builder())
            .build();
        // Retries get longer attempts than the first (see `timeouts`).
        let longer_retries = timeouts::LongerRetries::up_to(timeouts::LONGEST_ATTEMPT_TIMEOUT);
        // A read that is slow to answer is sent a second time (see `hedge`).
        let http_client = crate::hedge::HedgedReads::around(sdk.http_client());
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(sdk)
                        .retry_config(retry.clone())
                        .timeout_config(call_timeouts.clone())
                        .interceptor(longer_retries)
                        .interceptor(crate::hedge::MarkReads)
                        .http_client(http_client.clone())
                        .build(),
                )
            };
        }
        let clients = Clients {
            dynamodb: client!(aws_sdk_dynamodb),
            iam: client!(aws_sdk_iam),
            lambda: client!(aws_sdk_lambda),
            logs: client!(aws_sdk_cloudwatchlogs),
            apigateway: aws_sdk_apigatewayv2::Client::from_conf(
                aws_sdk_apigatewayv2::config::Builder::from(sdk)
                    .retry_config(retry.clone())
                    .timeout_config(call_timeouts.clone())
                    .interceptor(longer_retries)
                    .interceptor(crate::idempotency::NoBlindRetryOfCreates)
                    .interceptor(crate::hedge::MarkReads)
                    .http_client(http_client.clone())
                    .build(),
            ),
            sts: client!(aws_sdk_sts),
        };
        tracing::debug!("AWS retry settings: {}", clients.retry_settings());
        clients
    }

    /// The retry settings each client holds, for the debug log: `dynamodb: standard mode, 6
    /// attempts, backoff 200ms to 3s; iam: ...` (what `AWS_RETRY_MODE`, `AWS_MAX_ATTEMPTS` and
    /// the profile's `retry_mode` / `max_attempts` ended up as).
    fn retry_settings(&self) -> String {
        use aws_smithy_types::retry::{RetryConfig, RetryMode};
        let describe = |service: &str, retry: Option<&RetryConfig>| match retry {
            Some(retry) => format!(
                "{service}: {} mode, {} attempts, backoff {:?} to {:?}",
                match retry.mode() {
                    RetryMode::Adaptive => "adaptive",
                    RetryMode::Standard => "standard",
                    _ => "other",
                },
                retry.max_attempts(),
                retry.initial_backoff(),
                retry.max_backoff()
            ),
            None => format!("{service}: the SDK's defaults"),
        };
        [
            describe("dynamodb", self.dynamodb.config().retry_config()),
            describe("iam", self.iam.config().retry_config()),
            describe("lambda", self.lambda.config().retry_config()),
            describe("logs", self.logs.config().retry_config()),
            describe("apigateway", self.apigateway.config().retry_config()),
            describe("sts", self.sts.config().retry_config()),
        ]
        .join("; ")
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

/// Bounds on the reconciler's own retries and waits (the SDK retries throttling and transient
/// errors by itself, see [`crate::retry_config`]).
///
/// The intervals are short because the states they wait out are short (seconds) and every
/// poll is one cheap read: a few calls per second per wait, far below the services' limits
/// (Lambda's control plane allows 15-100 requests/s per operation, DynamoDB's `DescribeTable`
/// more), and close enough to the moment the state changes that a deploy ends within a poll of
/// the time AWS forces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long to wait for a function to become `Active` or finish an update, or for a table
    /// to become `ACTIVE` or go away.
    pub wait_timeout: Duration,
    /// Time between two polls of such a state.
    pub poll_interval: Duration,
    /// How long to keep retrying `CreateFunction` while IAM has not yet propagated a new role.
    pub propagation_timeout: Duration,
    /// Time between those retries. Constant, not doubling: the role becomes assumable at one
    /// moment a few seconds after `CreateRole`, and a doubling pause overshoots that moment by
    /// up to the length of the last pause. Each retry uploads the zip again, hence slower than
    /// [`Settings::poll_interval`].
    pub propagation_retry_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            wait_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_millis(250),
            propagation_timeout: Duration::from_secs(90),
            propagation_retry_interval: Duration::from_millis(500),
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
    pub warnings: Warnings,
}

/// Warnings given once per [`crate::Provisioner`] (one CLI run), however often the run reads
/// the stack: `up` observes it before and again under the stack's lock.
#[derive(Debug, Clone, Default)]
pub(crate) struct Warnings(Arc<Mutex<BTreeSet<&'static str>>>);

impl Warnings {
    /// Logs `message` as a warning unless a warning of this `topic` was given already.
    pub(crate) fn once(&self, topic: &'static str, message: impl FnOnce() -> String) {
        let first = match self.0.lock() {
            Ok(mut given) => given.insert(topic),
            Err(poisoned) => poisoned.into_inner().insert(topic),
        };
        if first {
            tracing::warn!("{}", message());
        }
    }
}

/// Turns an SDK error into an `anyhow::Error` whose message holds the service's own error code
/// and message (the SDK's `Display` alone only says "service error"), plus what to do about it
/// when the error is one retrying cannot fix. Never the SDK's `Debug` output (the raw HTTP
/// response, headers and body: over a kilobyte of internals before the part a user can act on);
/// that goes to the debug log (`RUST_LOG=provision=debug`) instead.
pub(crate) fn describe_sdk_error<E, R>(err: SdkError<E, R>) -> anyhow::Error
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    if no_credentials(&err) {
        // The SDK's own text lists every provider it tried, with its debug output: what matters
        // is that there are none, and what to set.
        return anyhow::anyhow!("{NO_CREDENTIALS}");
    }
    tracing::debug!(error = ?err, "AWS SDK error in full");
    let hint = match &err {
        SdkError::ServiceError(service) => service.err().code().and_then(hint_for_code),
        SdkError::TimeoutError(_) => Some(
            "no answer within the timeout after every retry: check the network and the endpoint, \
             or raise WISHCTL_ATTEMPT_TIMEOUT / WISHCTL_OPERATION_TIMEOUT (seconds)",
        ),
        SdkError::DispatchFailure(_) => Some(
            "could not reach AWS after every retry: check the network, the region and \
             --endpoint-url / AWS_ENDPOINT_URL",
        ),
        _ => None,
    };
    let message = match &err {
        SdkError::ServiceError(service) => service_error_text(service.err(), &err),
        _ => stack::error_chain(&err),
    };
    // A lost answer (`idempotency`) is a dispatch failure that was deliberately not retried: its
    // own text says what happened and what to do; "after every retry" would be wrong.
    let hint = hint.filter(|_| !crate::idempotency::is_lost_answer_text(&message));
    match hint {
        Some(hint) => anyhow::anyhow!("{message} ({hint})"),
        None => anyhow::anyhow!("{message}"),
    }
}

/// What a service answered, as `CODE: message` from the error's metadata (every AWS protocol
/// carries both); the error chain when the answer had neither (a body that was not an AWS error).
fn service_error_text(
    service: &(impl ProvideErrorMetadata + ?Sized),
    whole: &(dyn std::error::Error + 'static),
) -> String {
    match (service.code(), service.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        (None, Some(message)) => format!("service error: {message}"),
        (None, None) => stack::error_chain(whole),
    }
}

/// What wishctl says when no credential provider of the chain found any credentials.
pub(crate) const NO_CREDENTIALS: &str =
    "no AWS credentials found (wishctl looked in the environment, \
    the profile, a web identity token, ECS and instance metadata): set AWS_PROFILE (or pass \
    --profile) to a profile of ~/.aws/config, or set AWS_ACCESS_KEY_ID and \
    AWS_SECRET_ACCESS_KEY; in a CI job, assume the deploy role first (GitHub Actions: \
    aws-actions/configure-aws-credentials with role-to-assume, and `permissions: id-token: \
    write` for OIDC)";

/// Whether the call never went out because the credential chain found no credentials at all
/// (the SDK reports it as a dispatch failure, which would otherwise read as a network problem).
fn no_credentials<E, R>(err: &SdkError<E, R>) -> bool
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    use aws_credential_types::provider::error::CredentialsError;
    let SdkError::DispatchFailure(failure) = err else {
        return false;
    };
    let Some(connector) = failure.as_connector_error() else {
        return false;
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(connector);
    while let Some(error) = source {
        if let Some(CredentialsError::CredentialsNotLoaded(_)) = error.downcast_ref() {
            return true;
        }
        source = error.source();
    }
    false
}

/// What to do about an error code that retrying does not fix (the SDK has retried throttling
/// and transient errors already; these fail at the first attempt).
fn hint_for_code(code: &str) -> Option<&'static str> {
    Some(match code {
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnauthorizedException"
        | "AuthorizationError" => {
            "the credentials in use lack this permission: grant it (the IAM actions are listed \
             in README.md) or use other credentials (--profile)"
        }
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch" => {
            "the credentials are not valid: refresh them (e.g. `aws sso login`) or use other \
             credentials (--profile)"
        }
        "LimitExceeded"
        | "LimitExceededException"
        | "ServiceQuotaExceededException"
        | "CodeStorageExceededException" => {
            "an AWS quota of the account is reached: delete unused resources or request a \
             quota increase (Service Quotas), then run the command again"
        }
        "TooManyRequestsException" | "ThrottlingException" | "Throttling" => {
            "AWS kept throttling through every retry: run the command again in a minute, or \
             raise AWS_MAX_ATTEMPTS"
        }
        "ValidationException"
        | "InvalidParameterValueException"
        | "BadRequestException"
        | "MalformedPolicyDocument"
        | "InvalidParameterException"
        | "InvalidInput" => {
            "AWS refused a value: check the flags (issuer, audiences, scopes, tags, memory)"
        }
        _ => return None,
    })
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
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    fn doing(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(describe_sdk_error).with_context(what)
    }
}
