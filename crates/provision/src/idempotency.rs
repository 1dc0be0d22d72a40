//! No blind retry of calls that create a second resource when repeated.
//!
//! When the connection breaks or times out after a request was sent, the call may have taken
//! effect and only its answer was lost. The SDK retries such errors as transient. For most of
//! our creates that is harmless: IAM roles, tables, functions and log groups have unique names,
//! so a repeated create fails with "already exists" and the next `up` adopts what the first
//! attempt made. API Gateway's `CreateApi`, `CreateAuthorizer`, `CreateIntegration`,
//! `CreateRoute`, `CreateStage` and `CreateDeployment` have no name uniqueness and no client
//! token: a retry after a lost answer makes a duplicate that nobody asked for. For those calls
//! this interceptor turns a lost answer into an error that is not retried, saying what
//! happened; the next `up` finds what the lost call created (by tag, route key or integration
//! target) instead of creating it twice. Throttling and 5xx answers (the call did not take
//! effect) are still retried.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// How many times `up` reads the stack again after a lost answer or a create that found its
/// resource already there. A fresh stack makes ten creates that can end this way (six on API
/// Gateway, four that find their resource already there when an attempt whose answer was lost is
/// repeated); in the fault campaign at 20% faults with the shipped timeouts one run met three,
/// and with two resumes it failed and had to be run again. Each resume reads the stack once and
/// continues from there, so the bound still keeps a run short.
pub(crate) const MAX_RESUMES: usize = 4;

/// What the error of a lost answer says (it reaches the reconciler as text).
const LOST: &str = "was lost (";

/// Errors after which reading the stack again and continuing is right: a lost answer, or a
/// create that found its resource already there (its earlier attempt took effect, or another
/// run made it: the ownership check then decides).
pub(crate) fn resumable(err: &anyhow::Error) -> bool {
    const ALREADY_THERE: [&str; 5] = [
        LOST,
        "EntityAlreadyExists",
        "ResourceInUseException",
        "ResourceAlreadyExistsException",
        "ResourceConflictException",
    ];
    err.chain().any(|cause| {
        let text = cause.to_string();
        ALREADY_THERE.iter().any(|marker| text.contains(marker))
    })
}

/// Whether `err` is (or wraps) a lost answer: the call was sent and may still take effect.
pub(crate) fn lost_answer(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| is_lost_answer_text(&cause.to_string()))
}

/// Whether an error's text is that of a lost answer.
pub(crate) fn is_lost_answer_text(text: &str) -> bool {
    text.contains(LOST)
}

/// API Gateway creates that a repeat would duplicate.
const NOT_IDEMPOTENT: [&str; 6] = [
    "CreateApi",
    "CreateAuthorizer",
    "CreateIntegration",
    "CreateRoute",
    "CreateStage",
    "CreateDeployment",
];

/// The interceptor; add it to the API Gateway client.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoBlindRetryOfCreates;

/// The error that replaces a lost answer.
#[derive(Debug)]
struct AnswerLost {
    operation: String,
    cause: String,
}

impl std::fmt::Display for AnswerLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the answer to {} {LOST}{}); it may have taken effect, and repeating it could \
             create a duplicate, so it was not retried: run the command again (it finds what \
             the call created)",
            self.operation, self.cause
        )
    }
}

impl std::error::Error for AnswerLost {}

/// Whether the attempt failed in transport (after the request may have been sent).
fn answer_lost<E>(error: &OrchestratorError<E>) -> bool {
    error.is_timeout_error()
        || error.is_response_error()
        || error
            .as_connector_error()
            .is_some_and(|c| c.is_io() || c.is_timeout() || c.is_other())
}

impl Intercept for NoBlindRetryOfCreates {
    fn name(&self) -> &'static str {
        "wishctl::NoBlindRetryOfCreates"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(operation) = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_string())
            .filter(|name| NOT_IDEMPOTENT.contains(&name.as_str()))
        else {
            return Ok(());
        };
        let Some(Err(error)) = context.output_or_error_mut() else {
            return Ok(());
        };
        if answer_lost(error) {
            let cause = stack::error_chain(&*error);
            *error = OrchestratorError::other(AnswerLost { operation, cause });
        }
        Ok(())
    }
}
