//! The authorizer listing (`GetAuthorizers`), the one read that sees an authorizer no route
//! references: read to its last page, and when the endpoint does not answer it (moto: a 500),
//! a cheap failure that does not stop `plan` or `up`. A proxy in front of moto answers the
//! listing as each test needs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_apigatewayv2::types::{AuthorizerType, JwtConfiguration};
use provision::{Clients, Provisioner};
use serde_json::json;
use testkit::aws_proxy::{AwsCall, AwsProxy, ModelSettings};
use testkit::faults::error_response;
use testkit::moto::MotoSession;

use crate::support::{code, moto, provisioner, quick_settings, spec};

/// A `200` answer of API Gateway to `call` with `body` (JSON). A macro: the proxy's response type
/// is only named inside testkit.
macro_rules! answer {
    ($call:expr, $body:expr) => {{
        let mut response = error_response($call, 200, "-", "-");
        response.headers_mut().remove("x-amzn-errortype");
        *response.body_mut() = $body.to_string().into();
        Some(response)
    }};
}

/// A deployed stack `demo` and a proxy in front of moto; `plan` runs through the proxy.
async fn deployed(session: &MotoSession) -> (stack::StackOutputs, AwsProxy, Provisioner) {
    let dir = tempfile::tempdir().unwrap();
    let up = provisioner(session)
        .await
        .up(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();
    let proxy = AwsProxy::start(
        session.endpoint(),
        ModelSettings::latency_only(Duration::ZERO),
    )
    .await
    .unwrap();
    let sdk = testkit::moto::sdk_config_for(proxy.endpoint()).await;
    let p = Provisioner::from_clients(Clients::from_conf(&sdk)).with_settings(quick_settings());
    (up.outputs, proxy, p)
}

fn listings(proxy: &AwsProxy) -> usize {
    proxy
        .records()
        .iter()
        .filter(|r| r.call.operation == "GetAuthorizers")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizer_on_a_later_page_of_the_listing_is_seen_as_drift() {
    // GIVEN a deployed stack with a second authorizer that no route references, and an endpoint
    // that lists the API's authorizers over two pages, the stray one on the second
    let session = moto().await;
    let (outputs, proxy, p) = deployed(&session).await;
    let stray = aws_sdk_apigatewayv2::Client::new(&session.sdk_config().await)
        .create_authorizer()
        .api_id(&outputs.api_id)
        .name("stray")
        .authorizer_type(AuthorizerType::Jwt)
        .identity_source("$request.header.Authorization")
        .jwt_configuration(
            JwtConfiguration::builder()
                .issuer("https://other.example.com/")
                .audience("x")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .authorizer_id()
        .unwrap()
        .to_string();
    let item = |id: &str, name: &str| {
        json!({
            "authorizerId": id,
            "name": name,
            "authorizerType": "JWT",
            "identitySource": ["$request.header.Authorization"],
        })
    };
    let first =
        json!({"items": [item(&outputs.authorizer_id, "wishctl-demo-jwt")], "nextToken": "page-2"});
    let second = json!({"items": [item(&stray, "stray")]});
    let served = Arc::new(AtomicUsize::new(0));
    proxy.set_responder(Some(Arc::new(move |call: &AwsCall| {
        if call.operation != "GetAuthorizers" {
            return None;
        }
        let page = if served.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            &first
        } else {
            &second
        };
        answer!(call, page)
    })));
    let dir = tempfile::tempdir().unwrap();

    // WHEN plan reads the stack
    let report = p
        .plan(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();

    // THEN it read both pages and reports the stray authorizer
    assert_eq!(listings(&proxy), 2);
    let plan = report.plan.to_string();
    assert!(plan.contains("other authorizers"), "{plan}");
    assert!(plan.contains(&stray), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_the_endpoint_fails_costs_one_short_retry_and_the_plan_goes_on() {
    // GIVEN a deployed stack and an endpoint that answers the authorizer listing with a 500
    let session = moto().await;
    let (_, proxy, p) = deployed(&session).await;
    proxy.set_responder(Some(Arc::new(|call: &AwsCall| {
        (call.operation == "GetAuthorizers")
            .then(|| error_response(call, 500, "InternalFailure", "Internal server error"))
    })));
    let dir = tempfile::tempdir().unwrap();

    // WHEN plan reads the stack
    let report = p
        .plan(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();

    // THEN the listing was tried twice (one retry, not the client's series of six), and the
    // plan, built from what the routes reference, is clean
    assert_eq!(listings(&proxy), 2);
    assert!(!report.plan.has_changes(), "{}", report.plan);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_repeats_its_page_token_is_cut_off_and_the_plan_goes_on() {
    // GIVEN a deployed stack and an endpoint that answers every page of the authorizer listing
    // with the same next token
    let session = moto().await;
    let (outputs, proxy, p) = deployed(&session).await;
    let page = json!({
        "items": [{"authorizerId": outputs.authorizer_id, "name": "wishctl-demo-jwt"}],
        "nextToken": "again",
    });
    proxy.set_responder(Some(Arc::new(move |call: &AwsCall| {
        if call.operation != "GetAuthorizers" {
            return None;
        }
        answer!(call, page)
    })));
    let dir = tempfile::tempdir().unwrap();

    // WHEN plan reads the stack
    let report = p
        .plan(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();

    // THEN the page guard stopped the listing at the repeated token, and the plan went on
    assert_eq!(listings(&proxy), 2);
    assert!(!report.plan.has_changes(), "{}", report.plan);
}
