//! A misbehaving endpoint cannot hang the reconciler: listings that never end are cut off with
//! an error naming the listing, and a stalled answer is abandoned at the attempt timeout (and
//! retried), so `plan`, `up` and `down` end in bounded time.

use std::time::{Duration, Instant};

use aws_sdk_apigatewayv2::operation::get_apis::GetApisOutput;
use aws_sdk_apigatewayv2::Client as ApiGateway;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use provision::{Clients, Provisioner};
use testkit::aws_proxy::{AwsProxy, FaultKind, FaultPlan, ModelSettings};

use crate::support::{code, moto, quick_settings, spec, REGION};

fn mocked_apigateway(rules: &[&Rule]) -> ApiGateway {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let config = aws_sdk_apigatewayv2::Config::builder()
        .behavior_version(aws_sdk_apigatewayv2::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewayv2::config::Region::new(REGION))
        .credentials_provider(aws_sdk_apigatewayv2::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    ApiGateway::from_conf(config)
}

#[tokio::test]
async fn a_listing_that_repeats_its_page_token_is_cut_off_naming_the_listing() {
    // GIVEN an API Gateway that answers every GetApis page with the same next token
    let session = moto().await;
    let endless = mock!(ApiGateway::get_apis).then_output(|| {
        GetApisOutput::builder()
            .next_token("page-2")
            .set_items(Some(Vec::new()))
            .build()
    });
    let clients = Clients {
        apigateway: mocked_apigateway(&[&endless]),
        ..Clients::from_conf(&session.sdk_config().await)
    };
    let p = Provisioner::from_clients(clients).with_settings(quick_settings());
    let dir = tempfile::tempdir().unwrap();

    // WHEN plan reads the stack
    let err = p
        .plan(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap_err();

    // THEN it stops after the second page, saying which listing and what to check
    let message = format!("{err:#}");
    assert!(
        message.contains("listing HTTP APIs to find wishctl-demo"),
        "{message}"
    );
    assert!(message.contains("\"page-2\" twice"), "{message}");
    assert!(
        endless.num_calls() <= 3,
        "{} pages read",
        endless.num_calls()
    );
}

#[tokio::test]
#[ignore = "open: since API Gateway creates are no longer retried blindly after a lost answer (idempotency.rs), 30% stalls can exhaust up's resumes; the expectation needs rework"]
async fn stalled_answers_are_abandoned_at_the_attempt_timeout_and_retried() {
    // GIVEN an endpoint where every call's answer first stalls for 3 s (past a 300 ms attempt
    // timeout), then (for the retries) arrives at once
    let session = moto().await;
    let proxy = AwsProxy::start(
        session.endpoint(),
        ModelSettings::latency_only(Duration::ZERO),
    )
    .await
    .unwrap();
    proxy.set_faults(Some(
        FaultPlan::new(0.3, 42, Duration::from_secs(3)).with_kinds(&[FaultKind::Stall]),
    ));
    let sdk = testkit::moto::sdk_config_for(proxy.endpoint()).await;
    let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_millis(300))
        .operation_timeout(Duration::from_secs(10))
        .build();
    let sdk = sdk.into_builder().timeout_config(timeouts).build();
    let clients = Clients::from_conf(&sdk);
    let p = Provisioner::from_clients(clients).with_settings(quick_settings());
    let dir = tempfile::tempdir().unwrap();

    // WHEN up runs through it
    let started = Instant::now();
    let report = p
        .up(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await;

    // THEN it completed, well before the stalls would have ended one after the other
    let stalls = proxy.faults_by_kind().get(&FaultKind::Stall).copied();
    assert!(report.is_ok(), "{:#}", report.unwrap_err());
    assert!(stalls.unwrap_or(0) > 0, "no call stalled");
    let calls = report.unwrap().calls;
    assert!(
        calls.total > proxy.requests() / 2,
        "{} calls counted, {} seen",
        calls.total,
        proxy.requests()
    );
    eprintln!(
        "{stalls:?} stalled calls, up took {:?} ({} calls)",
        started.elapsed(),
        calls.total
    );
}
