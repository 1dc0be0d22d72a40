//! The reconciler: observe the stack in AWS, plan the changes against its description, apply them.
//!
//! Given a [`stack::StackSpec`] and the function's zip, [`Provisioner::up`] reads every resource
//! of the stack back from AWS (there is no state file: names derive from the stack name, and
//! ownership is the `wishctl:stack` tag), diffs it against the description and creates or updates
//! only what differs, so a second `up` makes no mutating call. [`Provisioner::plan`] stops after
//! the diff; [`Provisioner::down`] removes everything the stack owns; [`Provisioner::outputs`]
//! reads back the URL and ids.
//!
//! One module per resource kind (`table`, `log_group`, `role`, `function`, `permission`, and
//! under `api` the HTTP API with its `authorizer`, `stage`, `integration` and `routes`) holds its
//! observe / diff / apply / delete. The steps over all of them are modules by concern:
//! `observe` (read AWS), `ownership` (the stack's tag), `desired` (the description resolved
//! against the account), `planning` (the diff `plan` and `up` share), `apply` (`up`),
//! `outputs` and `teardown` (`down`); `field` and `plan` are the typed diff they exchange. This crate is the only one (besides the wish-list
//! store) that calls the AWS SDK. It knows nothing of the command line: progress goes through a
//! [`Progress`] callback and every command returns data the CLI renders as text or JSON.

mod api;
mod apply;
mod calls;
mod context;
mod desired;
mod error;
mod field;
mod function;
mod hedge;
mod idempotency;
mod inventory;
mod lock;
mod log_group;
mod logs;
mod observe;
mod outputs;
mod ownership;
mod pages;
mod permission;
mod plan;
mod planning;
mod role;
mod table;
mod teardown;
mod timeouts;
mod wait;

use std::fmt;

use aws_types::SdkConfig;
use serde::Serialize;
use stack::{StackName, StackOutputs, StackSpec};

pub use calls::{is_mutating, ApiCall, CallCounter, CallReport, CALL_LOG_ENV};
pub use context::{Clients, Env, Progress, ProgressEvent, Settings};
pub use error::{ForeignResource, ProvisionError};
pub use field::{
    ApiField, AuthorizerField, Field, FunctionField, IntegrationField, LogGroupField,
    PermissionField, RoleField, RolePolicyField, RouteField, StageField, TableField,
};
pub use function::FunctionCode;
pub use inventory::{FoundResource, Inventory, ListReport, LookAlike, StackSummary, TAG_REGION};
pub use logs::{FollowReport, LogEvent, LogQuery, LogsReport, FOLLOW_LOOKBACK, MIN_POLL_INTERVAL};
pub use plan::{Action, Change, FieldChange, Plan, ResourceKind};
pub use teardown::{DataPolicy, DownCondition, Outcome, Removal, Teardown};
pub use timeouts::{timeout_config, FIRST_ATTEMPT_TIMEOUT, LONGEST_ATTEMPT_TIMEOUT};

/// Runs `plan`, `up`, `down` and `outputs` with one set of counted SDK clients.
#[derive(Debug, Clone)]
pub struct Provisioner {
    ctx: context::Ctx,
    counter: CallCounter,
}

/// The result of [`Provisioner::up`].
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub outputs: StackOutputs,
    /// What was planned (and then applied) per resource.
    pub plan: Plan,
    pub calls: CallReport,
}

/// The result of [`Provisioner::plan`].
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub plan: Plan,
    pub calls: CallReport,
}

/// The result of [`Provisioner::down`]. Check [`Teardown::failures`]: every delete is attempted
/// even when one fails.
#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    pub teardown: Teardown,
    pub calls: CallReport,
}

/// The result of [`Provisioner::outputs`].
#[derive(Debug, Clone, Serialize)]
pub struct OutputsReport {
    pub outputs: StackOutputs,
    /// What the stack's JWT authorizer trusts, as deployed (not what a later `up` would set).
    pub authorizer: DeployedAuthorizer,
    pub calls: CallReport,
}

/// The JWT configuration of a deployed stack's authorizer, read back from AWS: whom its tokens
/// must come from (`verify --stack` asks this issuer for a token for this audience).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployedAuthorizer {
    /// `None` when the authorizer has no JWT configuration (changed by hand).
    pub issuer: Option<String>,
    /// Sorted.
    pub audiences: Vec<String>,
}

/// The first backoff before retrying a throttled or failed call; each further retry doubles it
/// (with full jitter: a random share of it) up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);
/// The longest backoff between two attempts of one call.
pub const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(3);
/// Attempts per call (the first one included) unless `AWS_MAX_ATTEMPTS` or the profile's
/// `max_attempts` says otherwise.
pub const MAX_ATTEMPTS: u32 = 6;

/// The longest `up` lets pass, after a create's answer was lost, for that call to land before
/// it reads the stack a last time (the attempt timeout, if shorter).
pub const SETTLE_AFTER_LOST_ANSWER: std::time::Duration = std::time::Duration::from_secs(10);

/// The SDK retry behaviour for every client: standard mode, [`MAX_ATTEMPTS`] attempts, backoff
/// from [`INITIAL_BACKOFF`] doubling up to [`MAX_BACKOFF`]. Throttling (`ThrottlingException`,
/// `Throttling`, `TooManyRequestsException`, ...), 5xx answers, timeouts and broken connections
/// are retried; anything else (access denied, validation, a quota) fails at once.
///
/// Why not the adaptive mode: its client-side rate limiter is built for long-running clients
/// that make many calls. After one throttle it measures the client's send rate, which for a
/// tool making ~20 calls in a second is close to nothing, and then holds every later call of
/// the process (up to the maximum backoff each, 20 s by default): a few injected throttles
/// stretched an `up` of 0.4 s to 12-59 s. A bounded, short, jittered backoff gets a ~20-call
/// tool through the same throttles in well under a second per throttle, and API Gateway's
/// management limit (10 requests/s, burst 40) refills a token every 100 ms.
///
/// Where the retry settings come from, per setting (mode, attempts), the first that is set and
/// valid: the environment (`AWS_RETRY_MODE` = `standard` / `adaptive`, `AWS_MAX_ATTEMPTS`), as
/// every AWS SDK reads it; then the profile's `retry_mode` / `max_attempts` (see
/// [`retry_config_with_profile`]); then ours. The backoff is always ours.
pub fn retry_config() -> aws_smithy_types::retry::RetryConfig {
    retry_config_with_profile(None, None)
}

/// [`retry_config`] with the selected AWS profile's `retry_mode` and `max_attempts` between the
/// environment and our defaults: environment > profile > ours. The CLI reads the profile
/// (`--profile`, `AWS_PROFILE`) and hands the result to the SDK loader; [`Clients::from_conf`]
/// keeps a retry configuration set that way.
pub fn retry_config_with_profile(
    profile_mode: Option<&str>,
    profile_max_attempts: Option<&str>,
) -> aws_smithy_types::retry::RetryConfig {
    retry_config_from(
        [
            std::env::var("AWS_RETRY_MODE").ok().as_deref(),
            profile_mode,
        ],
        [
            std::env::var("AWS_MAX_ATTEMPTS").ok().as_deref(),
            profile_max_attempts,
        ],
    )
}

/// [`retry_config`] from settings in order of precedence; for each, the first that parses wins
/// (values that do not parse are skipped), else our default.
fn retry_config_from<const N: usize>(
    modes: [Option<&str>; N],
    max_attempts: [Option<&str>; N],
) -> aws_smithy_types::retry::RetryConfig {
    use aws_smithy_types::retry::{RetryConfig, RetryMode};
    let mode = modes
        .into_iter()
        .flatten()
        .find_map(|m| m.trim().parse::<RetryMode>().ok())
        .unwrap_or(RetryMode::Standard);
    let attempts = max_attempts
        .into_iter()
        .flatten()
        .find_map(|a| a.trim().parse::<u32>().ok().filter(|a| *a >= 1))
        .unwrap_or(MAX_ATTEMPTS);
    let config = match mode {
        RetryMode::Adaptive => RetryConfig::adaptive(),
        _ => RetryConfig::standard(),
    };
    config
        .with_max_attempts(attempts)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

impl fmt::Display for CallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} AWS API calls, {} mutating, {} on the critical path",
            self.total, self.mutating, self.critical_path
        )
    }
}

impl Provisioner {
    /// A provisioner with clients for every service built from `sdk` (the CLI's configuration).
    pub fn new(sdk: &SdkConfig) -> Self {
        Self::from_clients(Clients::from_conf(sdk))
    }

    /// A provisioner over given clients (tests pass the SDK's test doubles for some services).
    /// Each client gets a call-counting interceptor added.
    pub fn from_clients(clients: Clients) -> Self {
        let counter = CallCounter::new();
        Provisioner {
            ctx: context::Ctx {
                clients: clients.counted_by(&counter),
                settings: Settings::default(),
                progress: Progress::silent(),
                warnings: context::Warnings::default(),
            },
            counter,
        }
    }

    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.ctx.settings = settings;
        self
    }

    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.ctx.progress = progress;
        self
    }

    /// The counted clients (tests read resources back through them).
    pub fn clients(&self) -> &Clients {
        &self.ctx.clients
    }

    /// Every call made through this provisioner so far.
    pub fn counter(&self) -> &CallCounter {
        &self.counter
    }

    async fn counted<T>(
        &self,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<(T, CallReport)> {
        let mark = self.counter.mark();
        let (result, critical_path) = calls::measure(work).await;
        let value = result?;
        Ok((
            value,
            CallReport::new(self.counter.since(mark), critical_path),
        ))
    }

    /// What `up` would change, per resource. Makes no mutating call.
    pub async fn plan(&self, spec: &StackSpec, code: &FunctionCode) -> anyhow::Result<PlanReport> {
        let (plan, calls) = self.counted(planning::plan(&self.ctx, spec, code)).await?;
        Ok(PlanReport { plan, calls })
    }

    /// Creates what is missing and updates what differs; returns the stack's outputs.
    ///
    /// When a create's answer was lost (the call may have taken effect) or a create found its
    /// resource already there, the stack is read again and the work continues from what is
    /// there, a bounded number of times (`idempotency::MAX_RESUMES`): that is what the next `up` would do.
    pub async fn up(&self, spec: &StackSpec, code: &FunctionCode) -> anyhow::Result<UpReport> {
        let resumable = async {
            let mut resumed = 0;
            // When the last lost answer surfaced: the call it belongs to was abandoned then.
            let mut lost_at: Option<std::time::Instant> = None;
            // The plan of the run that did the work, when a last read after a lost answer made
            // another run necessary.
            let mut settled: Option<Plan> = None;
            loop {
                match apply::up(&self.ctx, spec, code).await {
                    Err(err)
                        if resumed < idempotency::MAX_RESUMES && idempotency::resumable(&err) =>
                    {
                        resumed += 1;
                        if idempotency::lost_answer(&err) {
                            lost_at = Some(std::time::Instant::now());
                        }
                        self.ctx.progress.report(
                            ResourceKind::Api,
                            spec.name.as_str(),
                            format!("{err:#}; reading the stack again to continue"),
                        );
                    }
                    Ok((plan, outputs)) if lost_at.is_some() && settled.is_none() => {
                        let lost_at = lost_at.unwrap_or_else(std::time::Instant::now);
                        if self.settled_after_lost_answer(spec, code, lost_at).await? {
                            return Ok((plan, outputs));
                        }
                        settled = Some(plan);
                    }
                    Ok((plan, outputs)) => return Ok((settled.unwrap_or(plan), outputs)),
                    Err(err) => return Err(err),
                }
            }
        };
        let ((plan, outputs), calls) = self.counted(resumable).await?;
        Ok(UpReport {
            outputs,
            plan,
            calls,
        })
    }

    /// After a run that lost a create's answer: that call was sent and AWS may still act on it
    /// after the stack was read again (a second API, integration or route). Waits until one
    /// attempt timeout (at most [`SETTLE_AFTER_LOST_ANSWER`]) has passed since the answer was
    /// lost (`lost_at`; the work after it already took part of that time) and reads the stack
    /// again: `true` when it is as declared, `false` when another run must remove what the late
    /// call made twice.
    async fn settled_after_lost_answer(
        &self,
        spec: &StackSpec,
        code: &FunctionCode,
        lost_at: std::time::Instant,
    ) -> anyhow::Result<bool> {
        let settle = self
            .ctx
            .clients
            .apigateway
            .config()
            .timeout_config()
            .and_then(|t| t.operation_attempt_timeout())
            .unwrap_or(timeouts::FIRST_ATTEMPT_TIMEOUT)
            .min(SETTLE_AFTER_LOST_ANSWER);
        let wait = settle.saturating_sub(lost_at.elapsed());
        self.ctx.progress.report(
            ResourceKind::Api,
            spec.name.as_str(),
            format!(
                "an answer was lost {:.1}s ago: waiting {:.1}s more for that call to land, then \
                 reading the stack again",
                lost_at.elapsed().as_secs_f64(),
                wait.as_secs_f64()
            ),
        );
        tokio::time::sleep(wait).await;
        let again = planning::plan(&self.ctx, spec, code).await?;
        Ok(!again.changes.iter().any(|c| c.action.is_change()))
    }

    /// Removes everything the stack owns.
    pub async fn down(&self, stack: &StackName, data: DataPolicy) -> anyhow::Result<DownReport> {
        self.down_if(stack, data, DownCondition::Always).await
    }

    /// Removes everything the stack owns if `condition` still holds on what `down` reads under
    /// the stack's lock; otherwise deletes nothing and fails with
    /// [`ProvisionError::NoLongerExpired`].
    pub async fn down_if(
        &self,
        stack: &StackName,
        data: DataPolicy,
        condition: DownCondition,
    ) -> anyhow::Result<DownReport> {
        let (teardown, calls) = self
            .counted(teardown::down(&self.ctx, stack, data, condition))
            .await?;
        Ok(DownReport { teardown, calls })
    }

    /// What [`Provisioner::down_if`] would refuse before deleting anything (a resource under the
    /// stack's names that is not its own, a `condition` that no longer holds, a table with items
    /// that `data` does not allow to delete), read without changing anything: `Ok` when it would
    /// go ahead.
    pub async fn down_refusals(
        &self,
        stack: &StackName,
        data: DataPolicy,
        condition: DownCondition,
    ) -> anyhow::Result<()> {
        teardown::refusals(&self.ctx, stack, data, condition).await?;
        Ok(())
    }

    /// The outputs of a deployed stack.
    pub async fn outputs(&self, stack: &StackName) -> anyhow::Result<OutputsReport> {
        let ((outputs, authorizer), calls) =
            self.counted(outputs::outputs(&self.ctx, stack)).await?;
        Ok(OutputsReport {
            outputs,
            authorizer,
            calls,
        })
    }
}

#[cfg(test)]
mod retry_tests {
    use aws_smithy_types::retry::RetryMode;

    use super::retry_config_from;

    #[test]
    fn standard_with_six_attempts_and_short_backoff_unless_the_standard_settings_say_otherwise() {
        let default = retry_config_from([None, None], [None, None]);
        assert_eq!(default.mode(), RetryMode::Standard);
        assert_eq!(default.max_attempts(), 6);
        assert_eq!(default.initial_backoff(), super::INITIAL_BACKOFF);
        assert_eq!(default.max_backoff(), super::MAX_BACKOFF);
        let user = retry_config_from([Some("adaptive"), None], [Some("2"), None]);
        assert_eq!(user.mode(), RetryMode::Adaptive);
        assert_eq!(user.max_attempts(), 2);
        assert_eq!(user.max_backoff(), super::MAX_BACKOFF);
        let garbage = retry_config_from([Some("sometimes"), None], [Some("0"), None]);
        assert_eq!(garbage.mode(), RetryMode::Standard);
        assert_eq!(garbage.max_attempts(), 6);
    }

    #[test]
    fn the_environment_wins_over_the_profile_and_the_profile_over_ours_per_setting() {
        // [environment, profile]
        let profile_only = retry_config_from([None, Some("adaptive")], [None, Some("3")]);
        assert_eq!(profile_only.mode(), RetryMode::Adaptive);
        assert_eq!(profile_only.max_attempts(), 3);
        let both = retry_config_from([Some("standard"), Some("adaptive")], [Some("2"), Some("3")]);
        assert_eq!(both.mode(), RetryMode::Standard);
        assert_eq!(both.max_attempts(), 2);
        let mixed = retry_config_from([None, Some("adaptive")], [Some("2"), Some("3")]);
        assert_eq!(mixed.mode(), RetryMode::Adaptive);
        assert_eq!(mixed.max_attempts(), 2);
        let invalid_env = retry_config_from([Some("x"), Some("adaptive")], [Some("0"), Some("4")]);
        assert_eq!(invalid_env.mode(), RetryMode::Adaptive);
        assert_eq!(invalid_env.max_attempts(), 4);
        assert_eq!(invalid_env.initial_backoff(), super::INITIAL_BACKOFF);
    }
}
