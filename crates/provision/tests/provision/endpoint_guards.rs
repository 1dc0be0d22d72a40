//! A misbehaving endpoint cannot hang the reconciler: listings that never end are cut off with
//! an error naming the listing, and a stalled answer is abandoned at the attempt timeout (and
//! retried), so `plan`, `up` and `down` end in bounded time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_apigatewayv2::operation::get_apis::GetApisOutput;
use aws_sdk_apigatewayv2::Client as ApiGateway;
use aws_sdk_iam::operation::get_role::GetRoleOutput;
use aws_sdk_iam::operation::get_role_policy::GetRolePolicyError;
use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesOutput;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_iam::types::Role;
use aws_sdk_iam::Client as Iam;
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
async fn stalled_answers_are_abandoned_at_the_attempt_timeout_and_retried() {
    // GIVEN an endpoint where 30% of the answers stall for 3 s (past a 300 ms attempt timeout)
    // after the call took effect
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
    let p = Provisioner::from_clients(Clients::from_conf(&sdk)).with_settings(quick_settings());
    let dir = tempfile::tempdir().unwrap();
    let stack = spec("demo", &["a"], &[]);
    let zip = code(dir.path(), b"v1");

    // WHEN up runs through it, and again as a user would when one run reports a lost answer
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        match p.up(&stack, &zip).await {
            Ok(_) => {
                outcomes.push("ok".to_string());
                break;
            }
            Err(err) => outcomes.push(format!("{err:#}")),
        }
    }

    // THEN it converged: every failed run was an API Gateway create whose answer was lost (not
    // repeated blindly: a repeat would duplicate it), and the next run went on from there
    assert_eq!(
        outcomes.last().map(String::as_str),
        Some("ok"),
        "{outcomes:#?}"
    );
    for failed in &outcomes[..outcomes.len() - 1] {
        assert!(
            failed.contains("was lost") && failed.contains("run the command again"),
            "{failed}"
        );
        // It was not retried, so no hint about retries that did not happen.
        assert!(!failed.contains("after every retry"), "{failed}");
    }
    // AND stalled answers of calls that are safe to repeat were abandoned and retried
    let records = proxy.records();
    let stalled: Vec<_> = records
        .iter()
        .filter(|r| r.fault == Some(FaultKind::Stall))
        .collect();
    assert!(!stalled.is_empty(), "no call stalled");
    let retried = stalled
        .iter()
        .filter(|s| {
            records
                .iter()
                .any(|r| r.seq > s.seq && r.call.operation == s.call.operation)
        })
        .count();
    assert!(retried > 0, "no stalled call was retried: {stalled:#?}");
    // AND the stack is whole: a plan without faults finds nothing to change
    proxy.set_faults(None);
    let plan = p.plan(&stack, &zip).await.unwrap();
    assert!(!plan.plan.has_changes(), "{}", plan.plan);
    eprintln!(
        "{} stalled calls ({retried} retried), {} runs of up, {:?} in all",
        stalled.len(),
        outcomes.len(),
        started.elapsed()
    );
}

/// An IAM endpoint that has the stack's role (without its policy), lists its managed and
/// inline policies with `attached` and `inline`, and answers nothing else.
fn mocked_iam(attached: &Rule, inline: &Rule) -> Iam {
    let role = mock!(Iam::get_role).then_output(|| {
        GetRoleOutput::builder()
            .role(
                Role::builder()
                    .path("/wishctl/")
                    .role_name("wishctl-demo-us-east-1-fn")
                    .role_id("AROAEXAMPLE")
                    .arn("arn:aws:iam::123456789012:role/wishctl/wishctl-demo-us-east-1-fn")
                    .create_date(aws_smithy_types::DateTime::from_secs(0))
                    .build()
                    .unwrap(),
            )
            .build()
    });
    let no_policy = mock!(Iam::get_role_policy).then_error(|| {
        GetRolePolicyError::NoSuchEntityException(
            NoSuchEntityException::builder()
                .message("no such policy")
                .build(),
        )
    });
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(&role)
        .with_rule(&no_policy)
        .with_rule(attached)
        .with_rule(inline);
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new(REGION))
        .credentials_provider(aws_sdk_iam::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    Iam::from_conf(config)
}

async fn plan_with_iam(iam: Iam) -> anyhow::Result<provision::PlanReport> {
    let session = moto().await;
    let clients = Clients {
        iam,
        ..Clients::from_conf(&session.sdk_config().await)
    };
    let p = Provisioner::from_clients(clients).with_settings(quick_settings());
    let dir = tempfile::tempdir().unwrap();
    p.plan(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
}

#[tokio::test]
async fn a_role_policy_listing_that_never_ends_is_cut_off_naming_it() {
    // GIVEN an IAM endpoint whose managed-policy listing of the role hands out a fresh marker on
    // every page, forever
    let pages = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pages);
    let endless = mock!(Iam::list_attached_role_policies).then_output(move || {
        let page = counter.fetch_add(1, Ordering::SeqCst);
        ListAttachedRolePoliciesOutput::builder()
            .is_truncated(true)
            .marker(format!("marker-{page}"))
            .build()
    });
    let inline = mock!(Iam::list_role_policies).then_output(|| {
        ListRolePoliciesOutput::builder()
            .set_policy_names(Some(Vec::new()))
            .build()
            .unwrap()
    });

    // WHEN plan reads the stack
    let err = plan_with_iam(mocked_iam(&endless, &inline))
        .await
        .unwrap_err();

    // THEN it fails at the page guard's bound (not silently with a partial list), naming the
    // listing and what to check
    let message = format!("{err:#}");
    assert!(
        message.contains(
            "listing the managed policies attached to role wishctl-demo-us-east-1-fn: stopped \
             after 200 pages"
        ),
        "{message}"
    );
    assert!(message.contains("check the endpoint"), "{message}");
    assert_eq!(endless.num_calls(), 200);
}

#[tokio::test]
async fn a_role_policy_listing_that_repeats_its_marker_is_cut_off_naming_it() {
    // GIVEN an IAM endpoint whose inline-policy listing of the role answers every page with the
    // same marker
    let attached = mock!(Iam::list_attached_role_policies)
        .then_output(|| ListAttachedRolePoliciesOutput::builder().build());
    let repeating = mock!(Iam::list_role_policies).then_output(|| {
        ListRolePoliciesOutput::builder()
            .set_policy_names(Some(vec!["extra".to_string()]))
            .is_truncated(true)
            .marker("page-2")
            .build()
            .unwrap()
    });

    // WHEN plan reads the stack
    let err = plan_with_iam(mocked_iam(&attached, &repeating))
        .await
        .unwrap_err();

    // THEN it stops at the second page, naming the listing
    let message = format!("{err:#}");
    assert!(
        message.contains("listing the inline policies of role wishctl-demo-us-east-1-fn"),
        "{message}"
    );
    assert!(message.contains("\"page-2\" twice"), "{message}");
    assert_eq!(repeating.num_calls(), 2);
}
