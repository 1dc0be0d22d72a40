//! Counting AWS API calls: how many, how many mutate, and how many sit on the critical path.
//!
//! Every SDK client the reconciler builds carries a [`CallCounter`] interceptor. It sees each
//! attempt right before it goes on the wire (so SDK retries and waiter polls count as the round
//! trips they are) and records the operation.
//!
//! The critical path is the longest chain of calls that had to happen one after the other. The
//! reconciler runs independent work in [`fork`]ed branches; each branch is a *lane* whose depth
//! starts at its parent's depth and grows by one per call made inside it. When a branch ends it
//! raises its parent to its own depth, so after a `join` the parent sits at the depth of its
//! longest branch. Lanes live in a tokio task-local, which `join!`/`try_join!` keep separate
//! per branch because each branch's future is polled inside its own scope.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;

/// One attempt of one AWS API operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiCall {
    /// The service, as the SDK names it (`Lambda`, `ApiGatewayV2`, `IAM`, ...).
    pub service: String,
    /// The operation (`CreateFunction`, `GetApis`, ...).
    pub operation: String,
    /// Whether the operation changes something (anything but Get/List/Describe/Scan/Query).
    pub mutating: bool,
}

/// Whether an operation changes anything in the account. Reads are named `Get*`, `List*`,
/// `Describe*`, `Scan`, `Query` or `BatchGet*` across the services wishctl uses.
pub fn is_mutating(operation: &str) -> bool {
    const READS: [&str; 6] = ["Get", "List", "Describe", "Scan", "Query", "BatchGet"];
    !READS.iter().any(|prefix| operation.starts_with(prefix))
}

/// The calls made during one command, summed up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallReport {
    pub total: usize,
    pub mutating: usize,
    /// The longest chain of calls that had to wait for each other.
    pub critical_path: usize,
    /// Every call in the order it was sent.
    pub calls: Vec<ApiCall>,
}

impl CallReport {
    pub(crate) fn new(calls: Vec<ApiCall>, critical_path: usize) -> Self {
        CallReport {
            total: calls.len(),
            mutating: calls.iter().filter(|c| c.mutating).count(),
            critical_path,
            calls,
        }
    }

    /// The mutating operations, in order, e.g. `["CreateTable", "CreateRole", ...]`.
    pub fn mutating_operations(&self) -> Vec<&str> {
        self.calls
            .iter()
            .filter(|c| c.mutating)
            .map(|c| c.operation.as_str())
            .collect()
    }
}

/// The interceptor that records every attempt. Cheap to clone; clones share the log.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    log: Arc<Mutex<Vec<ApiCall>>>,
}

impl CallCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call recorded so far.
    pub fn calls(&self) -> Vec<ApiCall> {
        match self.log.lock() {
            Ok(log) => log.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How many calls have been recorded so far; a mark to take [`CallCounter::since`] from.
    pub fn mark(&self) -> usize {
        match self.log.lock() {
            Ok(log) => log.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    /// The calls recorded after `mark`.
    pub fn since(&self, mark: usize) -> Vec<ApiCall> {
        self.calls().into_iter().skip(mark).collect()
    }

    fn record(&self, call: ApiCall, request: Option<RequestLine<'_>>) {
        append_to_call_log(&call, request);
        match self.log.lock() {
            Ok(mut log) => log.push(call),
            Err(poisoned) => poisoned.into_inner().push(call),
        }
    }
}

/// `WISHCTL_CALL_LOG=PATH`: every call of the process is also appended to PATH as one JSON line
/// (`{"service":"Lambda","operation":"GetFunction","mutating":false,"request":{"method":"GET",
/// "uri":"...","body":"..."}}`), so that a command run as a process reports its calls and what
/// each named (the resource is in the URI or the body, depending on the service's protocol); the
/// IAM policy coverage test reads it. A body over 64 KiB, or not UTF-8 (a
/// zip upload), is left out.
pub const CALL_LOG_ENV: &str = "WISHCTL_CALL_LOG";

/// The largest request body the call log records.
const CALL_LOG_BODY_LIMIT: usize = 64 * 1024;

/// The request of a call, as the call log records it.
#[derive(Debug, Serialize)]
struct RequestLine<'a> {
    method: &'a str,
    uri: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
}

#[derive(Serialize)]
struct CallLogLine<'a> {
    #[serde(flatten)]
    call: &'a ApiCall,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<RequestLine<'a>>,
}

fn call_log_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os(CALL_LOG_ENV).is_some())
}

fn append_to_call_log(call: &ApiCall, request: Option<RequestLine<'_>>) {
    use std::io::Write as _;
    static LOG: std::sync::OnceLock<Option<Mutex<std::fs::File>>> = std::sync::OnceLock::new();
    let log = LOG.get_or_init(|| {
        let path = std::env::var_os(CALL_LOG_ENV)?;
        let opened = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        opened
            .map_err(|e| tracing::warn!("cannot open {CALL_LOG_ENV}={path:?}: {e}"))
            .ok()
            .map(Mutex::new)
    });
    let line = serde_json::to_string(&CallLogLine { call, request });
    if let (Some(file), Ok(line)) = (log, line) {
        let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = writeln!(file, "{line}");
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "wishctl::CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".to_string(), "unknown".to_string()));
        let mutating = is_mutating(&operation);
        let request = call_log_enabled().then(|| {
            let request = context.request();
            RequestLine {
                method: request.method(),
                uri: request.uri(),
                body: request
                    .body()
                    .bytes()
                    .filter(|b| b.len() <= CALL_LOG_BODY_LIMIT)
                    .and_then(|b| std::str::from_utf8(b).ok()),
            }
        });
        self.record(
            ApiCall {
                service,
                operation,
                mutating,
            },
            request,
        );
        let _ = LANE.try_with(|lane| lane.bump());
        Ok(())
    }
}

/// A chain of sequential calls; see the module documentation.
#[derive(Debug)]
struct Lane {
    depth: AtomicUsize,
}

impl Lane {
    fn starting_at(depth: usize) -> Arc<Self> {
        Arc::new(Lane {
            depth: AtomicUsize::new(depth),
        })
    }

    fn depth(&self) -> usize {
        self.depth.load(Ordering::SeqCst)
    }

    fn bump(&self) {
        self.depth.fetch_add(1, Ordering::SeqCst);
    }

    fn raise_to(&self, depth: usize) {
        self.depth.fetch_max(depth, Ordering::SeqCst);
    }
}

tokio::task_local! {
    static LANE: Arc<Lane>;
}

/// Runs `work` as a branch that proceeds concurrently with its siblings. Call it where the branch
/// is created (it reads the parent's depth then), and join the branches with `join!`/`try_join!`.
pub(crate) fn fork<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let parent = LANE.try_with(Arc::clone).ok();
    let child = Lane::starting_at(parent.as_ref().map_or(0, |p| p.depth()));
    // Boxed: SDK futures are large, and a join of several inlined ones overflows a 2 MiB stack
    // in debug builds.
    let scoped = Box::pin(LANE.scope(Arc::clone(&child), work));
    async move {
        let output = scoped.await;
        if let Some(parent) = parent {
            parent.raise_to(child.depth());
        }
        output
    }
}

/// Runs `work` and returns, with its output, the length of its critical path in calls.
pub(crate) async fn measure<F: Future>(work: F) -> (F::Output, usize) {
    let root = Lane::starting_at(0);
    let output = Box::pin(LANE.scope(Arc::clone(&root), work)).await;
    (output, root.depth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_are_told_apart_by_operation_name() {
        for read in [
            "GetFunction",
            "ListTagsOfResource",
            "DescribeTable",
            "Scan",
            "GetApis",
        ] {
            assert!(!is_mutating(read), "{read}");
        }
        for write in [
            "CreateTable",
            "PutRolePolicy",
            "TagResource",
            "AddPermission",
            "UpdateAuthorizer",
        ] {
            assert!(is_mutating(write), "{write}");
        }
    }

    async fn call() {
        // Stands in for an SDK call: the interceptor bumps the current lane.
        tokio::task::yield_now().await;
        let _ = LANE.try_with(|lane| lane.bump());
    }

    #[tokio::test]
    async fn critical_path_is_the_longest_branch_plus_what_runs_before_and_after() {
        let ((), depth) = measure(async {
            call().await;
            let three = fork(async {
                call().await;
                call().await;
                call().await;
            });
            let one = fork(call());
            tokio::join!(three, one);
            call().await;
        })
        .await;
        assert_eq!(depth, 1 + 3 + 1);
    }

    #[tokio::test]
    async fn nested_forks_start_at_their_parents_depth() {
        let ((), depth) = measure(async {
            let outer = fork(async {
                call().await;
                let a = fork(call());
                let b = fork(async {
                    call().await;
                    call().await;
                });
                tokio::join!(a, b);
            });
            let other = fork(call());
            tokio::join!(outer, other);
        })
        .await;
        assert_eq!(depth, 3);
    }
}
