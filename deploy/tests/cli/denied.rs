//! Errors no retry can fix, on the creates of every service `up` makes a resource with: the
//! run fails at the first attempt, and its error names the resource, the service's own error
//! code and message, and what to do, never the SDK's debug dump of the raw response.

#![allow(clippy::unwrap_used)]

use crate::support as cli;

use std::sync::Arc;
use std::time::Duration;

use cli::{artifact, moto, stack_args, stderr, wishctl};
use testkit::aws_proxy::{AwsCall, AwsProxy, ModelSettings};
use testkit::faults::error_response;

/// Fragments of the SDK's `Debug` output of an error: none belongs in a user-facing message.
const SDK_INTERNALS: [&str; 4] = ["ServiceError(", "SdkBody", "raw: Response", "ErrorMetadata"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_on_a_create_fails_at_once_with_the_services_code_and_message_only() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    let proxy = AwsProxy::start(
        session.endpoint(),
        ModelSettings::latency_only(Duration::ZERO),
    )
    .await
    .unwrap();

    for (operation, stack, resource) in [
        (
            "CreateTable",
            "denied-table",
            "creating table wishctl-denied-table",
        ),
        (
            "CreateFunction",
            "denied-function",
            "creating function wishctl-denied-function",
        ),
        (
            "CreateApi",
            "denied-api",
            "creating HTTP API wishctl-denied-api",
        ),
    ] {
        // GIVEN a service that refuses the create with AccessDeniedException
        let message = format!(
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: {operation}"
        );
        let answer = message.clone();
        proxy.reset();
        proxy.set_responder(Some(Arc::new(move |call: &AwsCall| {
            (call.operation == operation)
                .then(|| error_response(call, 403, "AccessDeniedException", &answer))
        })));

        // WHEN up runs
        let run = wishctl(proxy.endpoint(), &stack_args("up", stack, zip));

        // THEN it fails after one attempt, naming the resource, the code, the message and what
        // to do, without the SDK's internals
        let text = stderr(&run);
        assert_eq!(run.status.code(), Some(1), "{text}");
        let attempts = proxy
            .records()
            .iter()
            .filter(|r| r.call.operation == operation)
            .count();
        assert_eq!(attempts, 1, "{operation} was retried: {text}");
        assert!(text.contains(resource), "{text}");
        assert!(
            text.contains(&format!("AccessDeniedException: {message}")),
            "{text}"
        );
        assert!(text.contains("lack this permission"), "{text}");
        for internal in SDK_INTERNALS {
            assert!(!text.contains(internal), "{internal} in:\n{text}");
        }

        proxy.set_responder(None);
        let cleanup = wishctl(proxy.endpoint(), &["down", "--stack", stack]);
        assert!(cleanup.status.success(), "{}", stderr(&cleanup));
    }
}
