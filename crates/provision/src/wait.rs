//! Bounded polling for the states AWS makes us wait out (a `Pending` function, an update
//! `InProgress`, a `CREATING` or `DELETING` table).
//!
//! The SDK's generated waiters are not used: their minimum delays are far longer than the states
//! they wait for (DynamoDB's table waiter sleeps at least 20 s between polls, Lambda's 1-5 s, for
//! states that last a few seconds), so a deploy would spend most of its time asleep after the
//! state had already changed. Here every wait polls at [`crate::Settings::poll_interval`] (a few
//! calls per second at most), gives up after [`crate::Settings::wait_timeout`] with a
//! [`ProvisionError::Timeout`] naming what it waited for, and stops at once on an error (the SDK
//! has already retried throttling and transient errors; anything else will not go away by
//! polling).

use std::time::{Duration, Instant};

use crate::ProvisionError;

/// What one poll found.
#[derive(Debug)]
pub(crate) enum Poll<T> {
    /// The state was reached.
    Ready(T),
    /// Not yet; the current state, for the timeout message (e.g. `State Pending`).
    NotYet(String),
}

/// Polls `probe` every `interval` (sleeping first: the caller has just seen the state it waits
/// to end) until it answers [`Poll::Ready`], for at most `timeout`.
pub(crate) async fn poll_until<T, F, Fut>(
    what: impl Fn() -> String,
    timeout: Duration,
    interval: Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Poll<T>>>,
{
    let started = Instant::now();
    let interval = interval.max(Duration::from_millis(1));
    let mut last = String::from("not polled yet");
    loop {
        let remaining = timeout.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Err(timed_out(what(), timeout, &last));
        }
        tokio::time::sleep(interval.min(remaining)).await;
        // A probe that hangs (the SDK's own timeouts should prevent it) still cannot outlast
        // the bound by more than a moment.
        let budget = timeout.saturating_sub(started.elapsed()) + interval;
        match tokio::time::timeout(budget, probe()).await {
            Ok(Ok(Poll::Ready(value))) => return Ok(value),
            Ok(Ok(Poll::NotYet(state))) => last = state,
            Ok(Err(err)) => return Err(err.context(format!("waiting for {}", what()))),
            Err(_) => return Err(timed_out(what(), timeout, &last)),
        }
    }
}

fn timed_out(what: String, waited: Duration, last: &str) -> anyhow::Error {
    anyhow::Error::new(ProvisionError::Timeout { what, waited }).context(format!(
        "gave up (last seen: {last}); AWS may still finish it: run the command again to continue"
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn polls_until_ready_at_the_interval() {
        let polls = AtomicUsize::new(0);
        let started = Instant::now();
        let value = poll_until(
            || "thing".to_string(),
            Duration::from_secs(5),
            Duration::from_millis(10),
            || async {
                let n = polls.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(if n == 3 {
                    Poll::Ready(n)
                } else {
                    Poll::NotYet(format!("poll {n}"))
                })
            },
        )
        .await
        .unwrap();
        assert_eq!(value, 3);
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[tokio::test]
    async fn gives_up_after_the_bound_naming_the_wait_and_the_last_state() {
        let err = poll_until(
            || "function f to become Active".to_string(),
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async { anyhow::Ok(Poll::<()>::NotYet("State Pending".to_string())) },
        )
        .await
        .unwrap_err();
        match err.downcast_ref() {
            Some(ProvisionError::Timeout { what, .. }) => {
                assert_eq!(what, "function f to become Active")
            }
            _ => panic!("expected a timeout, got {err:#}"),
        }
        assert!(format!("{err:#}").contains("State Pending"), "{err:#}");
    }

    #[tokio::test]
    async fn an_error_stops_the_wait_at_once() {
        let polls = AtomicUsize::new(0);
        let err = poll_until(
            || "table t to become ACTIVE".to_string(),
            Duration::from_secs(5),
            Duration::from_millis(1),
            || async {
                polls.fetch_add(1, Ordering::SeqCst);
                anyhow::Result::<Poll<()>>::Err(anyhow::anyhow!("AccessDeniedException"))
            },
        )
        .await
        .unwrap_err();
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        assert!(format!("{err:#}").contains("waiting for table t to become ACTIVE"));
    }
}
