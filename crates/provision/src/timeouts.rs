//! How long one SDK call may take: a short first attempt, longer retries, a bound on the whole.
//!
//! AWS answers the control-plane calls of a stack in well under a second, so a call that has not
//! answered after [`FIRST_ATTEMPT_TIMEOUT`] is almost always stalled (a dropped connection, a
//! lost packet, an overloaded front end), and retrying it at once is faster than waiting longer.
//! A slow link, though, is not a stall: each retry after an attempt that timed out therefore gets
//! twice that attempt's time ([`LongerRetries`]), up to [`LONGEST_ATTEMPT_TIMEOUT`], so a call
//! that needs 5 s answers at its second attempt instead of failing six times. The operation as a
//! whole (attempts, backoff and all) is bounded too. Measured against the fault-injecting proxy:
//! with a fixed 10 s per attempt, every stalled call cost 10 s and 4 in 12 `up`s at 20% faults
//! took longer than 20 s (BENCHMARKS.md, "Faults, races and hostile input").
//!
//! `WISHCTL_ATTEMPT_TIMEOUT` (seconds, e.g. `2.5`) sets the first attempt's timeout and
//! `WISHCTL_OPERATION_TIMEOUT` the operation's; the calls that upload the zip get a first attempt
//! longer by the zip's size ([`upload_timeout_config`]), and log searches start at the longest
//! ([`log_search_timeout_config`]).

use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextMut, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_types::timeout::TimeoutConfig;

/// How long the first attempt of a call may take before it is abandoned and retried, unless
/// `WISHCTL_ATTEMPT_TIMEOUT` says otherwise. A first call to a service also pays for DNS, TCP
/// and TLS: about three round trips, 1 s even at 300 ms per round trip.
pub const FIRST_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest any retry waits for an answer (each retry doubles the attempt before it, up to
/// this); a first attempt timeout set longer than this is kept for every attempt.
pub const LONGEST_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The operation timeout is this many longest attempts (retries and backoff included).
const OPERATION_ATTEMPTS: u32 = 6;

/// The timeouts of every SDK call: [`FIRST_ATTEMPT_TIMEOUT`] for the first attempt and six
/// [`LONGEST_ATTEMPT_TIMEOUT`]s for the operation, or what `WISHCTL_ATTEMPT_TIMEOUT` and
/// `WISHCTL_OPERATION_TIMEOUT` say. The retries' longer attempt timeouts are set by an
/// interceptor every client of [`crate::Clients`] has.
pub fn timeout_config() -> TimeoutConfig {
    timeout_config_from(
        std::env::var("WISHCTL_ATTEMPT_TIMEOUT").ok().as_deref(),
        std::env::var("WISHCTL_OPERATION_TIMEOUT").ok().as_deref(),
        true,
    )
}

/// Only the timeouts the environment sets (`WISHCTL_ATTEMPT_TIMEOUT`,
/// `WISHCTL_OPERATION_TIMEOUT`), for layering over a caller's configuration.
pub(crate) fn timeout_config_from_env() -> TimeoutConfig {
    timeout_config_from(
        std::env::var("WISHCTL_ATTEMPT_TIMEOUT").ok().as_deref(),
        std::env::var("WISHCTL_OPERATION_TIMEOUT").ok().as_deref(),
        false,
    )
}

fn seconds(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64)
}

/// The timeouts of the two settings; without `defaults`, only those the settings give.
fn timeout_config_from(
    attempt: Option<&str>,
    operation: Option<&str>,
    defaults: bool,
) -> TimeoutConfig {
    let given_attempt = seconds(attempt);
    let attempt = given_attempt.unwrap_or(FIRST_ATTEMPT_TIMEOUT);
    let given_operation = seconds(operation);
    let operation =
        given_operation.unwrap_or(attempt.max(LONGEST_ATTEMPT_TIMEOUT) * OPERATION_ATTEMPTS);
    let mut builder = TimeoutConfig::builder();
    if defaults || given_attempt.is_some() {
        builder = builder.operation_attempt_timeout(attempt);
    }
    if defaults || given_operation.is_some() || given_attempt.is_some() {
        builder = builder.operation_timeout(operation);
    }
    builder.build()
}

/// The slowest uplink an upload's first attempt allows for: 1 MB/s (8 Mbit/s). A slower one
/// is served by the retries, each with twice the time of the attempt before.
const UPLOAD_BYTES_PER_SECOND: u64 = 1_000_000;

/// Timeouts for the calls that upload a zip of `zip_bytes` (`CreateFunction`,
/// `UpdateFunctionCode`) with a client whose timeouts are `ordinary`: the first attempt gets the
/// ordinary first attempt plus a second per MB
/// (3 s for a small zip, 15 s for the 12 MB release zip), each retry twice the attempt before it
/// (up to 8 times the first; see [`LongerRetries`]), and the operation six times the ordinary
/// operation timeout. A stall costs an upload of a small zip no more than any other call.
pub(crate) fn upload_timeout_config(ordinary: &TimeoutConfig, zip_bytes: usize) -> TimeoutConfig {
    let transfer = Duration::from_secs_f64(zip_bytes as f64 / UPLOAD_BYTES_PER_SECOND as f64);
    let attempt = ordinary
        .operation_attempt_timeout()
        .unwrap_or(FIRST_ATTEMPT_TIMEOUT)
        .saturating_add(transfer);
    let operation = ordinary
        .operation_timeout()
        .unwrap_or(LONGEST_ATTEMPT_TIMEOUT * OPERATION_ATTEMPTS)
        * 6;
    TimeoutConfig::builder()
        .operation_attempt_timeout(attempt)
        .operation_timeout(operation.max(attempt))
        .build()
}

/// Timeouts for log searches (`FilterLogEvents`, `wishctl logs`): CloudWatch Logs may take
/// seconds to search a large group before it answers a page, so every attempt gets the longest
/// attempt timeout (or the first attempt's, when that is longer).
pub(crate) fn log_search_timeout_config() -> TimeoutConfig {
    let ordinary = timeout_config();
    let attempt = ordinary
        .operation_attempt_timeout()
        .unwrap_or(FIRST_ATTEMPT_TIMEOUT)
        .max(LONGEST_ATTEMPT_TIMEOUT);
    ordinary
        .to_builder()
        .operation_attempt_timeout(attempt)
        .build()
}

/// The attempt timeout in effect for the first attempt of the operation under way (the client's,
/// or the operation's own, such as the uploads').
#[derive(Debug, Clone, Copy)]
struct FirstAttempt(Duration);

impl Storable for FirstAttempt {
    type Storer = StoreReplace<Self>;
}

/// How many attempts of the operation under way timed out so far.
#[derive(Debug, Clone, Copy)]
struct TimedOut(u32);

impl Storable for TimedOut {
    type Storer = StoreReplace<Self>;
}

/// Gives the retry after an attempt that timed out twice that attempt's timeout, up to
/// `longest`, or up to 8 times the first attempt's when that is longer than `longest` (the
/// uploads of large zips): a stalled call is abandoned after the short first attempt, and a
/// slow one still gets time to answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LongerRetries {
    longest: Duration,
}

impl LongerRetries {
    pub(crate) fn up_to(longest: Duration) -> Self {
        LongerRetries { longest }
    }

    /// The attempt timeout after `next - 1` attempts timed out, when the first attempt had
    /// `first`.
    fn attempt_timeout(&self, first: Duration, next: u32) -> Duration {
        let longest = if first < self.longest {
            self.longest
        } else {
            first.saturating_mul(8)
        };
        let doublings = next.saturating_sub(1).min(16);
        first.saturating_mul(1 << doublings).min(longest)
    }
}

impl Intercept for LongerRetries {
    fn name(&self) -> &'static str {
        "wishctl::LongerRetries"
    }

    fn modify_before_retry_loop(
        &self,
        _context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(first) = cfg
            .load::<TimeoutConfig>()
            .and_then(TimeoutConfig::operation_attempt_timeout)
        {
            cfg.interceptor_state().store_put(FirstAttempt(first));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Only an attempt that timed out says the link may be slow; one that was throttled or
        // failed fast was answered in time, and its retry keeps the timeout it had.
        let timed_out =
            matches!(context.output_or_error(), Some(Err(err)) if err.is_timeout_error());
        if !timed_out {
            return Ok(());
        }
        let (Some(FirstAttempt(first)), Some(current)) = (
            cfg.load::<FirstAttempt>().copied(),
            cfg.load::<TimeoutConfig>(),
        ) else {
            return Ok(());
        };
        let timeouts = cfg.load::<TimedOut>().map_or(0, |t| t.0) + 1;
        let next = current
            .to_builder()
            .operation_attempt_timeout(self.attempt_timeout(first, timeouts + 1))
            .build();
        cfg.interceptor_state().store_put(TimedOut(timeouts));
        cfg.interceptor_state().store_put(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{timeout_config_from, upload_timeout_config, LongerRetries};

    #[test]
    fn every_call_has_an_attempt_and_an_operation_timeout() {
        let default = timeout_config_from(None, None, true);
        assert_eq!(
            default.operation_attempt_timeout(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(default.operation_timeout(), Some(Duration::from_secs(60)));
        let user = timeout_config_from(Some("1.5"), None, false);
        assert_eq!(
            user.operation_attempt_timeout(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(user.operation_timeout(), Some(Duration::from_secs(60)));
        let long = timeout_config_from(Some("20"), None, false);
        assert_eq!(long.operation_timeout(), Some(Duration::from_secs(120)));
        let garbage = timeout_config_from(Some("-1"), Some("forever"), true);
        assert_eq!(
            garbage.operation_attempt_timeout(),
            Some(Duration::from_secs(3))
        );
        let unset = timeout_config_from(None, None, false);
        assert_eq!(unset.operation_attempt_timeout(), None);
    }

    #[test]
    fn each_retry_doubles_the_attempt_timeout_up_to_the_longest() {
        let retries = LongerRetries::up_to(Duration::from_secs(10));
        let first = Duration::from_secs(3);
        let timeouts: Vec<_> = (1..=6).map(|n| retries.attempt_timeout(first, n)).collect();
        assert_eq!(
            timeouts,
            [3, 6, 10, 10, 10, 10].map(Duration::from_secs).to_vec()
        );
        // A first attempt longer than the longest (a large zip's upload) doubles up to 8 times.
        let upload = Duration::from_secs(15);
        let timeouts: Vec<_> = (1..=6)
            .map(|n| retries.attempt_timeout(upload, n))
            .collect();
        assert_eq!(
            timeouts,
            [15, 30, 60, 120, 120, 120]
                .map(Duration::from_secs)
                .to_vec()
        );
        // No overflow for absurd attempt numbers.
        assert_eq!(
            retries.attempt_timeout(first, u32::MAX),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn uploads_get_a_first_attempt_longer_by_the_zips_size() {
        let ordinary = timeout_config_from(None, None, true);
        let small = upload_timeout_config(&ordinary, 4_212);
        let release = upload_timeout_config(&ordinary, 12_000_000);
        let small_attempt = small.operation_attempt_timeout().unwrap();
        assert!(
            small_attempt < Duration::from_millis(3_010),
            "{small_attempt:?}"
        );
        assert_eq!(
            release.operation_attempt_timeout(),
            Some(Duration::from_secs(15))
        );
        assert_eq!(release.operation_timeout(), Some(Duration::from_secs(360)));
    }
}
