//! Bounded waits on the SDK's waiters: a timeout is a [`ProvisionError::Timeout`] that names what
//! was being waited for.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::waiters::error::WaiterError;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::ProvisionError;

/// Runs an SDK waiter that was given `timeout` as its max wait. A second, slightly longer tokio
/// timeout guards against a waiter whose clock does not advance.
pub(crate) async fn bounded<T, O, E>(
    what: impl FnOnce() -> String,
    timeout: Duration,
    wait: impl Future<Output = Result<T, WaiterError<O, E>>>,
) -> anyhow::Result<T>
where
    O: fmt::Debug,
    E: std::error::Error + fmt::Debug + Send + Sync + 'static,
{
    match tokio::time::timeout(timeout + Duration::from_secs(2), wait).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(WaiterError::ExceededMaxWait(_))) | Err(_) => Err(ProvisionError::Timeout {
            what: what(),
            waited: timeout,
        }
        .into()),
        Ok(Err(err)) => Err(anyhow::anyhow!("{}", DisplayErrorContext(&err))
            .context(format!("waiting for {}", what()))),
    }
}
