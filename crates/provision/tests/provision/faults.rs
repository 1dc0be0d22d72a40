//! What moto cannot show, with the SDK's own test doubles standing in for Lambda while every
//! other service is moto: IAM propagation, `Pending`, `InProgress`, throttling.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_lambda::operation::add_permission::AddPermissionOutput;
use aws_sdk_lambda::operation::create_function::{CreateFunctionError, CreateFunctionOutput};
use aws_sdk_lambda::operation::get_function::{GetFunctionError, GetFunctionOutput};
use aws_sdk_lambda::operation::get_policy::GetPolicyError;
use aws_sdk_lambda::operation::update_function_configuration::UpdateFunctionConfigurationOutput;
use aws_sdk_lambda::types::error::{InvalidParameterValueException, ResourceNotFoundException};
use aws_sdk_lambda::types::{
    Architecture, EnvironmentResponse, FunctionConfiguration, LastUpdateStatus, Runtime, State,
};
use aws_sdk_lambda::Client as Lambda;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use provision::{Clients, Progress, ProgressEvent, ProvisionError, Provisioner};
use testkit::moto::MotoSession;

use crate::support::{code, moto, quick_settings, spec, ACCOUNT, REGION};

const FUNCTION: &str = "wishctl-demo-api";

fn function_arn() -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}")
}

/// A Lambda client answered by `rules` (matched by operation), with the retry configuration the
/// CLI's clients get (`provision::retry_config`: standard mode, six attempts) and a shorter
/// backoff. Real clock, real sleeps: waiters poll as they would against AWS.
fn mocked_lambda(rules: &[&Rule]) -> Lambda {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    // The drift read every observation makes: these functions have no URL.
    let no_url = mock!(Lambda::get_function_url_config).then_error(|| {
        aws_sdk_lambda::operation::get_function_url_config::GetFunctionUrlConfigError::ResourceNotFoundException(
            ResourceNotFoundException::builder().message("no URL").build(),
        )
    });
    interceptor = interceptor.with_rule(&no_url);
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new(REGION))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(provision::retry_config().with_initial_backoff(Duration::from_millis(5)))
        .build();
    Lambda::from_conf(config)
}

/// Every service on moto except Lambda.
async fn provisioner_with(
    session: &MotoSession,
    lambda: Lambda,
) -> (Provisioner, Arc<Mutex<Vec<ProgressEvent>>>) {
    let clients = Clients {
        lambda,
        ..Clients::from_conf(&session.sdk_config().await)
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let p = Provisioner::from_clients(clients)
        .with_settings(quick_settings())
        .with_progress(Progress::new(move |e| sink.lock().unwrap().push(e.clone())));
    (p, events)
}

fn not_found() -> GetFunctionError {
    GetFunctionError::ResourceNotFoundException(
        ResourceNotFoundException::builder()
            .message("Function not found")
            .build(),
    )
}

fn no_policy() -> Rule {
    mock!(Lambda::get_policy).then_error(|| {
        GetPolicyError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("No policy")
                .build(),
        )
    })
}

fn configuration(state: State, update: LastUpdateStatus) -> FunctionConfiguration {
    FunctionConfiguration::builder()
        .function_name(FUNCTION)
        .function_arn(function_arn())
        .state(state)
        .last_update_status(update)
        .build()
}

fn get_function(state: State, update: LastUpdateStatus) -> GetFunctionOutput {
    GetFunctionOutput::builder()
        .configuration(configuration(state, update))
        .build()
}

fn created(state: State) -> CreateFunctionOutput {
    CreateFunctionOutput::builder()
        .function_name(FUNCTION)
        .function_arn(function_arn())
        .state(state)
        .build()
}

fn permission_added() -> Rule {
    mock!(Lambda::add_permission).then_output(|| AddPermissionOutput::builder().build())
}

fn role_not_assumable() -> CreateFunctionError {
    CreateFunctionError::InvalidParameterValueException(
        InvalidParameterValueException::builder()
            .r#type("User")
            .message("The role defined for the function cannot be assumed by Lambda.")
            .build(),
    )
}

fn operations(p: &Provisioner) -> Vec<String> {
    p.counter()
        .calls()
        .into_iter()
        .map(|c| c.operation)
        .collect()
}

fn count(ops: &[String], op: &str) -> usize {
    ops.iter().filter(|o| *o == op).count()
}

#[tokio::test]
async fn create_function_is_retried_while_iam_has_not_propagated_the_new_role() {
    // GIVEN Lambda refuses the brand-new role twice, as it does for seconds after CreateRole
    let session = moto().await;
    let lookup = mock!(Lambda::get_function).then_error(not_found);
    let create = mock!(Lambda::create_function)
        .sequence()
        .error(role_not_assumable)
        .times(2)
        .output(|| created(State::Active))
        .build();
    let permission = permission_added();
    let (p, events) =
        provisioner_with(&session, mocked_lambda(&[&lookup, &create, &permission])).await;
    let dir = tempfile::tempdir().unwrap();

    // WHEN up runs
    let report = p
        .up(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();

    // THEN CreateFunction was retried until it went through, and the retries were reported
    assert_eq!(create.num_calls(), 3);
    assert_eq!(count(&operations(&p), "CreateFunction"), 3);
    assert!(report.outputs.api_id.len() > 1);
    let events = events.lock().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.what.contains("IAM propagation"))
            .count()
            .min(1),
        1,
        "the retries were not reported: {events:?}"
    );
}

#[tokio::test]
async fn propagation_retries_give_up_after_the_bound_with_the_error_named() {
    // GIVEN Lambda never accepts the role
    let session = moto().await;
    let lookup = mock!(Lambda::get_function).then_error(not_found);
    let create = mock!(Lambda::create_function)
        .sequence()
        .error(role_not_assumable)
        .repeatedly()
        .build();
    let (p, _) = provisioner_with(&session, mocked_lambda(&[&lookup, &create])).await;
    let dir = tempfile::tempdir().unwrap();

    // WHEN up runs (propagation bound: 5 s in the quick settings)
    let started = Instant::now();
    let err = p
        .up(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap_err();

    // THEN it stops within the bound, saying which call failed and why
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let message = format!("{err:#}");
    assert!(
        message.contains("creating function wishctl-demo-api"),
        "{message}"
    );
    assert!(message.contains("cannot be assumed by Lambda"), "{message}");
    assert!(
        create.num_calls() > 3,
        "retried {} times",
        create.num_calls()
    );
}

#[tokio::test]
async fn a_pending_function_is_waited_out_before_the_permission_and_before_up_returns() {
    // GIVEN a new function that is Pending for one poll before it becomes Active
    let session = moto().await;
    let lookup = mock!(Lambda::get_function)
        .sequence()
        .error(not_found)
        .output(|| get_function(State::Pending, LastUpdateStatus::InProgress))
        .output(|| get_function(State::Active, LastUpdateStatus::Successful))
        .build();
    let create = mock!(Lambda::create_function).then_output(|| created(State::Pending));
    let permission = permission_added();
    let (p, events) =
        provisioner_with(&session, mocked_lambda(&[&lookup, &create, &permission])).await;
    let dir = tempfile::tempdir().unwrap();

    // WHEN up runs
    p.up(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();

    // THEN the waiter polled until Active and the permission (a policy on the function) came
    // after that; the integration names the function by ARN and may go up meanwhile
    assert_eq!(lookup.num_calls(), 3);
    let ops = operations(&p);
    let last_poll = ops.iter().rposition(|o| o == "GetFunction").unwrap();
    let create = ops.iter().position(|o| o == "CreateFunction").unwrap();
    let permission = ops.iter().position(|o| o == "AddPermission").unwrap();
    assert!(ops.iter().any(|o| o == "CreateIntegration"), "{ops:?}");
    assert!(create < last_poll && last_poll < permission, "{ops:?}");
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.what.contains("waiting until Active")));
}

#[tokio::test]
async fn a_function_that_stays_pending_times_out_naming_it() {
    // GIVEN a function that never leaves Pending
    let session = moto().await;
    let lookup = mock!(Lambda::get_function)
        .sequence()
        .error(not_found)
        .output(|| get_function(State::Pending, LastUpdateStatus::InProgress))
        .repeatedly()
        .build();
    let create = mock!(Lambda::create_function).then_output(|| created(State::Pending));
    let (p, _) = provisioner_with(&session, mocked_lambda(&[&lookup, &create])).await;
    let p = p.with_settings(provision::Settings {
        wait_timeout: Duration::from_secs(2),
        ..quick_settings()
    });
    let dir = tempfile::tempdir().unwrap();

    // WHEN up runs with a 2 s bound on waits
    let started = Instant::now();
    let err = p
        .up(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap_err();

    // THEN it gives up in bounded time with a timeout that names the function
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    match err.downcast_ref() {
        Some(ProvisionError::Timeout { what, .. }) => {
            assert_eq!(what, "function wishctl-demo-api to become Active")
        }
        _ => panic!("expected a timeout, got {err:#}"),
    }
}

#[tokio::test]
async fn an_update_in_progress_is_waited_out_before_the_next_update() {
    // GIVEN an existing function (ours, same code) with 256 MB whose last update is still
    // InProgress, while the stack asks for 128 MB
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"v1");
    let sha = zip.sha256_base64.clone();
    let existing = move |update: LastUpdateStatus| {
        let sha = sha.clone();
        GetFunctionOutput::builder()
            .configuration(
                FunctionConfiguration::builder()
                    .function_name(FUNCTION)
                    .function_arn(function_arn())
                    .runtime(Runtime::Providedal2023)
                    .handler("bootstrap")
                    .architectures(Architecture::Arm64)
                    .memory_size(256)
                    .timeout(10)
                    // As `up` declares it: only the memory differs.
                    .description("wish-list API (managed by wishctl)")
                    .role(format!(
                        "arn:aws:iam::{ACCOUNT}:role/wishctl/wishctl-demo-us-east-1-fn"
                    ))
                    .environment(
                        EnvironmentResponse::builder()
                            .variables("TABLE_NAME", "wishctl-demo-items")
                            .build(),
                    )
                    .code_sha256(sha)
                    .state(State::Active)
                    .last_update_status(update)
                    .build(),
            )
            .tags("wishctl:stack", "demo")
            .tags("wishctl:region", "us-east-1")
            .tags("team", "web")
            .build()
    };
    let first = existing.clone();
    let later = existing.clone();
    let lookup = mock!(Lambda::get_function)
        .sequence()
        .output(move || first(LastUpdateStatus::InProgress))
        .output(move || later(LastUpdateStatus::Successful))
        .repeatedly()
        .build();
    let policy = no_policy();
    let update = mock!(Lambda::update_function_configuration).then_output(|| {
        UpdateFunctionConfigurationOutput::builder()
            .function_arn(function_arn())
            .state(State::Active)
            .last_update_status(LastUpdateStatus::InProgress)
            .build()
    });
    let permission = permission_added();
    let (p, _) = provisioner_with(
        &session,
        mocked_lambda(&[&lookup, &policy, &update, &permission]),
    )
    .await;

    // WHEN up runs
    let report = p.up(&spec("demo", &["a"], &[]), &zip).await.unwrap();

    // THEN it waited for the running update, updated the memory, then waited for its own update
    // before anything used the function
    let ops: Vec<String> = operations(&p)
        .into_iter()
        .filter(|o| {
            [
                "GetFunction",
                "GetPolicy",
                "UpdateFunctionConfiguration",
                "AddPermission",
            ]
            .contains(&o.as_str())
        })
        .collect();
    assert_eq!(
        ops,
        [
            "GetFunction",
            "GetPolicy",
            "GetFunction",
            "UpdateFunctionConfiguration",
            "GetFunction",
            "AddPermission"
        ]
    );
    assert_eq!(update.num_calls(), 1);
    let function = report
        .plan
        .changes
        .iter()
        .find(|c| c.kind == provision::ResourceKind::Function)
        .unwrap();
    assert_eq!(
        function.to_string(),
        "~ function wishctl-demo-api (update)\n    memory MB: 256 -> 128"
    );
}

fn throttled() -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(429).unwrap(),
        SdkBody::from(r#"{"Type":"User","message":"Rate exceeded"}"#),
    )
}

#[tokio::test]
async fn throttled_calls_are_retried_by_the_standard_retry_mode() {
    // GIVEN Lambda throttles the first two lookups
    let session = moto().await;
    let lookup = mock!(Lambda::get_function)
        .sequence()
        .http_response(|| {
            let mut response = throttled();
            response
                .headers_mut()
                .insert("x-amzn-errortype", "TooManyRequestsException");
            response
        })
        .times(2)
        .error(not_found)
        .build();
    let create = mock!(Lambda::create_function).then_output(|| created(State::Active));
    let permission = permission_added();
    let (p, _) = provisioner_with(&session, mocked_lambda(&[&lookup, &create, &permission])).await;
    let dir = tempfile::tempdir().unwrap();

    // WHEN up runs
    let report = p
        .up(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();

    // THEN the SDK retried the throttled call (three attempts, all counted as round trips), in
    // standard mode
    assert_eq!(
        p.clients().lambda.config().retry_config().map(|r| r.mode()),
        Some(aws_smithy_types::retry::RetryMode::Standard)
    );
    assert_eq!(lookup.num_calls(), 3);
    assert_eq!(count(&operations(&p), "GetFunction"), 3);
    assert_eq!(count(&operations(&p), "CreateFunction"), 1);
    assert!(report.calls.total >= 3);
}

#[tokio::test]
async fn a_retry_configuration_set_on_the_loader_reaches_every_client_and_ours_applies_otherwise() {
    // GIVEN an SDK configuration whose retry settings were set explicitly (as the CLI sets the
    // environment's and the profile's), and one the loader resolved by itself
    let session = moto().await;
    let explicit = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(session.endpoint())
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(provision::retry_config_with_profile(None, Some("2")))
        .load()
        .await;
    let resolved = session.sdk_config().await;

    // WHEN clients are built from each
    let from_explicit = Clients::from_conf(&explicit);
    let from_resolved = Clients::from_conf(&resolved);

    // THEN the explicit settings reach every client, and otherwise ours apply (not the SDK's
    // defaults of 3 attempts and 20 s backoff)
    let attempts = |c: &Clients| {
        [
            c.dynamodb.config().retry_config().map(|r| r.max_attempts()),
            c.iam.config().retry_config().map(|r| r.max_attempts()),
            c.lambda.config().retry_config().map(|r| r.max_attempts()),
            c.logs.config().retry_config().map(|r| r.max_attempts()),
            c.apigateway
                .config()
                .retry_config()
                .map(|r| r.max_attempts()),
            c.sts.config().retry_config().map(|r| r.max_attempts()),
        ]
    };
    let expected = if std::env::var_os("AWS_MAX_ATTEMPTS").is_some() {
        provision::retry_config().max_attempts()
    } else {
        2
    };
    assert_eq!(attempts(&from_explicit), [Some(expected); 6]);
    let ours = provision::retry_config();
    assert_eq!(attempts(&from_resolved), [Some(ours.max_attempts()); 6]);
    assert_eq!(
        from_resolved
            .lambda
            .config()
            .retry_config()
            .map(|r| r.max_backoff()),
        Some(provision::MAX_BACKOFF)
    );
}
