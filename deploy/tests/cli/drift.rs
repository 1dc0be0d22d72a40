//! `plan` sees drift made behind wishctl's back, `up` restores the declared state and says what
//! it removed or reset, and the next `plan` is clean: each change is made with SDK calls against
//! moto, as a colleague with console access would.
//!
//! Not tested here: a tracing mode (X-Ray `Active`) set by hand. moto's
//! `UpdateFunctionConfiguration` ignores `TracingConfig` (it keeps the mode given at creation), so
//! the change cannot be made behind wishctl's back, nor reset by `up`, on moto; the diff that sees
//! it is unit-tested in `crates/provision/src/function.rs`.

#![allow(clippy::unwrap_used)]

use crate::support as cli;

use std::collections::HashMap;

use aws_sdk_apigatewayv2::types::{
    AuthorizationType, AuthorizerType, IntegrationType, JwtConfiguration,
};
use aws_sdk_lambda::types::{Environment, FunctionUrlAuthType, Runtime};
use cli::{artifact, changed, json, moto, plan, stderr, up, wishctl};

const STACK: &str = "drift";

#[tokio::test]
async fn plan_lists_every_change_made_behind_its_back_and_up_restores_the_stack() {
    // GIVEN a deployed stack
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    let outputs = json(&up(session.endpoint(), STACK, zip, &["--output", "json"]));
    let api_id = outputs["apiId"].as_str().unwrap().to_string();
    let role = outputs["role"].as_str().unwrap().to_string();
    let function = outputs["function"].as_str().unwrap().to_string();
    let sdk = session.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let apigw = aws_sdk_apigatewayv2::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);

    // WHEN someone changes it by hand:
    // the role gets a managed policy and a second inline policy,
    let managed = iam
        .create_policy()
        .policy_name("broad")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let managed_arn = managed.policy().unwrap().arn().unwrap().to_string();
    iam.attach_role_policy()
        .role_name(&role)
        .policy_arn(&managed_arn)
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name(&role)
        .policy_name("extra")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    // the API gets a route, an integration, an authorizer (referenced by a route, since moto
    // cannot list authorizers) and a stage of someone else's, and POST loses its authorization,
    let routes = apigw.get_routes().api_id(&api_id).send().await.unwrap();
    let post = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("POST /wish-list-service"))
        .unwrap();
    let target = post.target().unwrap().to_string();
    apigw
        .create_route()
        .api_id(&api_id)
        .route_key("GET /extra")
        .target(&target)
        .send()
        .await
        .unwrap();
    let foreign_integration = apigw
        .create_integration()
        .api_id(&api_id)
        .integration_type(IntegrationType::HttpProxy)
        .integration_method("GET")
        .integration_uri("https://example.com/")
        .payload_format_version("1.0")
        .send()
        .await
        .unwrap()
        .integration_id()
        .unwrap()
        .to_string();
    let rogue = apigw
        .create_authorizer()
        .api_id(&api_id)
        .name("rogue")
        .authorizer_type(AuthorizerType::Jwt)
        .identity_source("$request.header.Authorization")
        .jwt_configuration(
            JwtConfiguration::builder()
                .issuer("https://evil.example.com/")
                .audience("x")
                .build(),
        )
        .send()
        .await
        .unwrap();
    apigw
        .create_route()
        .api_id(&api_id)
        .route_key("PUT /rogue")
        .target(&target)
        .authorization_type(AuthorizationType::Jwt)
        .authorizer_id(rogue.authorizer_id().unwrap())
        .send()
        .await
        .unwrap();
    apigw
        .create_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .send()
        .await
        .unwrap();
    apigw
        .update_route()
        .api_id(&api_id)
        .route_id(post.route_id().unwrap())
        .authorization_type(AuthorizationType::None)
        .send()
        .await
        .unwrap();
    // the function gets a second resource policy statement, a function URL, and other
    // environment, runtime, handler and timeout,
    lambda
        .add_permission()
        .function_name(&function)
        .statement_id("rogue")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .send()
        .await
        .unwrap();
    lambda
        .create_function_url_config()
        .function_name(&function)
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .unwrap();
    lambda
        .update_function_configuration()
        .function_name(&function)
        .runtime(Runtime::from("provided.al2"))
        .handler("other")
        .timeout(25)
        .environment(
            Environment::builder()
                .set_variables(Some(HashMap::from([
                    ("TABLE_NAME".to_string(), "someone-elses-table".to_string()),
                    ("DEBUG".to_string(), "1".to_string()),
                ])))
                .build(),
        )
        .send()
        .await
        .unwrap();
    // and the table loses its ownership tags.
    let table_arn = ddb
        .describe_table()
        .table_name("wishctl-drift-items")
        .send()
        .await
        .unwrap()
        .table()
        .unwrap()
        .table_arn()
        .unwrap()
        .to_string();
    ddb.untag_resource()
        .resource_arn(&table_arn)
        .tag_keys("wishctl:region")
        .send()
        .await
        .unwrap();
    // and a second HTTP API with the stack's name and tags appears (what a CreateApi whose
    // answer was lost leaves when it lands after `up` read the stack again)
    let tags = apigw
        .get_api()
        .api_id(&api_id)
        .send()
        .await
        .unwrap()
        .tags()
        .cloned()
        .unwrap();
    let duplicate = apigw
        .create_api()
        .name("wishctl-drift")
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap()
        .api_id()
        .unwrap()
        .to_string();

    // THEN list names the stack's own API (the one with the routes, as `up` keeps it), whether
    // or not the duplicate was created in the same second, and finds its routes
    let listed = json(&wishctl(session.endpoint(), &["list", "--output", "json"]));
    let listed = listed["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack"] == STACK)
        .unwrap_or_else(|| panic!("{STACK} not listed: {listed}"));
    assert_eq!(listed["apiId"], api_id.as_str(), "{listed}");
    let missing = listed["missing"].to_string();
    assert!(!missing.contains("route"), "{listed}");

    // AND plan exits 2 and lists every one of them
    let (code, before) = plan(session.endpoint(), STACK, zip, &[]);
    assert_eq!(code, Some(2));
    let lines = changed(&before).join("\n");
    for expected in [
        "update table wishctl-drift-items: tags",
        "update role wishctl-drift-us-east-1-fn: managed policies, other inline policies",
        "update function wishctl-drift-api: runtime, handler, timeout s, environment, function url, other resource policy statements",
        "update api wishctl-drift: other routes, other integrations, other authorizers, other stages, duplicate http apis",
        "update route POST /wish-list-service: authorization",
    ] {
        assert!(lines.contains(expected), "missing {expected:?} in:\n{lines}");
    }
    assert_eq!(
        before["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["action"] != "no-change")
            .count(),
        5,
        "{lines}"
    );

    // WHEN up runs
    let mut args = cli::stack_args("up", STACK, zip);
    args.push("-v");
    let restored = wishctl(session.endpoint(), &args);
    assert!(restored.status.success(), "{}", stderr(&restored));

    // THEN it says what it removed or reset
    let said = stderr(&restored);
    for expected in [
        &format!("detached managed policy {managed_arn}"),
        "deleted inline policy extra",
        "deleted route GET /extra",
        "deleted route PUT /rogue",
        &format!("deleted authorizer {}", rogue.authorizer_id().unwrap()),
        "deleted stage dev",
        "deleted function URL",
        "removed resource policy statement rogue",
        "route POST /wish-list-service: updated (authorization)",
        &format!("deleted integration {foreign_integration} (not part of the stack)"),
        &format!(
            "http api wishctl-drift ({duplicate}): deleted (a duplicate tagged for this stack"
        ),
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }
    // the function's configuration, reset field by field,
    let function_update = said
        .lines()
        .find(|l| l.contains(&format!("function {function}: updated (")))
        .unwrap_or_else(|| panic!("no update of function {function} in:\n{said}"));
    for field in ["runtime", "handler", "timeout s", "environment"] {
        assert!(
            function_update.contains(field),
            "{field:?} not reset in: {function_update}"
        );
    }
    // and, once, on one line, that the authorizer listing cannot be read (moto answers it with a
    // 500), what was used instead, and what goes unseen
    let warning: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("listing the authorizers of HTTP API"))
        .collect();
    assert_eq!(warning.len(), 1, "{said}");
    assert!(
        warning[0].contains("HTTP 500")
            && warning[0].contains("used the authorizer the routes reference instead")
            && warning[0].contains("would go unseen"),
        "{said}"
    );
    // in plain text: stderr is not a terminal here, so no colour codes
    assert!(!said.contains('\u{1b}'), "{said:?}");

    // AND the next plan is clean, and the hand-made additions are really gone
    let (code, after) = plan(session.endpoint(), STACK, zip, &[]);
    assert_eq!(code, Some(0), "{}", changed(&after).join("\n"));
    assert!(iam
        .list_attached_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap()
        .attached_policies()
        .is_empty());
    assert_eq!(
        iam.list_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap()
            .policy_names(),
        ["wishctl-drift-access"]
    );
    assert!(lambda
        .get_function_url_config()
        .function_name(&function)
        .send()
        .await
        .is_err());
    let keys: Vec<String> = apigw
        .get_routes()
        .api_id(&api_id)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter_map(|r| r.route_key().map(str::to_string))
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(cli::apis_named(&apigw, STACK).await, [api_id.as_str()]);
    let config = lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert_eq!(config.handler(), Some("bootstrap"));
    assert_eq!(config.timeout(), Some(10));
    assert_eq!(config.runtime(), Some(&Runtime::from("provided.al2023")));
    let variables = config.environment().and_then(|e| e.variables()).unwrap();
    assert_eq!(
        variables.get("TABLE_NAME").map(String::as_str),
        Some("wishctl-drift-items")
    );
    assert!(!variables.contains_key("DEBUG"), "{variables:?}");
}

#[tokio::test]
async fn a_stage_tag_update_that_fails_is_reported_as_not_done() {
    // GIVEN a deployed stack (moto answers 404 to tagging an HTTP API stage)
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    up(session.endpoint(), "stagetag", zip, &[]);

    // WHEN up runs again with a new tag
    let mut args = cli::stack_args("up", "stagetag", zip);
    args.extend(["--tag", "team=x", "-v"]);
    let output = wishctl(session.endpoint(), &args);

    // THEN the run goes on (ownership is read from the API's tags), but it says that the
    // stage's tags were not updated, why and what to do, and never that they were
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(
        said.contains("stage $default: tags NOT updated (TagResource answered 404)"),
        "{said}"
    );
    assert!(
        said.contains("the tags of stage $default of HTTP API"),
        "{said}"
    );
    assert!(said.contains("run `wishctl up` again"), "{said}");
    assert!(!said.contains("stage $default: updated"), "{said}");
}

/// Stack of [`a_tag_removed_by_hand_from_the_role_function_api_or_log_group_is_put_back`].
const TAGS_STACK: &str = "tagdrift";

#[tokio::test]
async fn a_tag_removed_by_hand_from_the_role_function_api_or_log_group_is_put_back() {
    // GIVEN a stack deployed with a tag of the user's
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    let team = ["--tag", "team=web"];
    let outputs = json(&up(
        session.endpoint(),
        TAGS_STACK,
        zip,
        &["--tag", "team=web", "--output", "json"],
    ));
    let api_id = outputs["apiId"].as_str().unwrap().to_string();
    let role = outputs["role"].as_str().unwrap().to_string();
    let function = outputs["function"].as_str().unwrap().to_string();
    let log_group = outputs["logGroup"].as_str().unwrap().to_string();
    let (code, _) = plan(session.endpoint(), TAGS_STACK, zip, &team);
    assert_eq!(code, Some(0));
    let sdk = session.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let apigw = aws_sdk_apigatewayv2::Client::new(&sdk);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let function_arn = lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .unwrap()
        .configuration()
        .unwrap()
        .function_arn()
        .unwrap()
        .to_string();
    let api_arn = format!("arn:aws:apigateway:us-east-1::/apis/{api_id}");
    let log_group_arn = format!("arn:aws:logs:us-east-1:123456789012:log-group:{log_group}");

    // WHEN someone removes a tag from each: the region tag from the role and the log group,
    // the user's tag from the function and the API
    iam.untag_role()
        .role_name(&role)
        .tag_keys("wishctl:region")
        .send()
        .await
        .unwrap();
    logs.untag_resource()
        .resource_arn(&log_group_arn)
        .tag_keys("wishctl:region")
        .send()
        .await
        .unwrap();
    lambda
        .untag_resource()
        .resource(&function_arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    apigw
        .untag_resource()
        .resource_arn(&api_arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();

    // THEN plan exits 2 naming each resource and the tag it lacks
    let (code, before) = plan(session.endpoint(), TAGS_STACK, zip, &team);
    assert_eq!(code, Some(2));
    let lines = changed(&before).join("\n");
    for expected in [
        format!("update role {role}: tags"),
        format!("update log-group {log_group}: tags"),
        format!("update function {function}: tags"),
        format!("update api wishctl-{TAGS_STACK}: tags"),
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in:\n{lines}"
        );
    }
    assert_eq!(changed(&before).len(), 4, "{lines}");
    let missing_tags: Vec<String> = before["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-change")
        .map(|c| format!("{} {}", c["kind"], c["fields"][0]["new"]))
        .collect();
    for expected in [
        "\"role\" \"wishctl:region=us-east-1\"",
        "\"log-group\" \"wishctl:region=us-east-1\"",
        "\"function\" \"team=web\"",
        "\"api\" \"team=web\"",
    ] {
        assert!(
            missing_tags.contains(&expected.to_string()),
            "{expected} not in {missing_tags:?}"
        );
    }

    // WHEN up runs
    let mut args = cli::stack_args("up", TAGS_STACK, zip);
    args.extend(team);
    args.push("-v");
    let restored = wishctl(session.endpoint(), &args);
    assert!(restored.status.success(), "{}", stderr(&restored));

    // THEN it says it put each back
    let said = stderr(&restored);
    for expected in [
        format!("role {role}: updated (tags)"),
        format!("log group {log_group}: updated (tags)"),
        format!("function {function}: updated (tags)"),
        format!("http api wishctl-{TAGS_STACK}: updated (tags)"),
    ] {
        assert!(said.contains(&expected), "missing {expected:?} in:\n{said}");
    }

    // AND the next plan is clean, and the tags are back
    let (code, after) = plan(session.endpoint(), TAGS_STACK, zip, &team);
    assert_eq!(code, Some(0), "{}", changed(&after).join("\n"));
    let role_tags = iam.list_role_tags().role_name(&role).send().await.unwrap();
    assert!(
        role_tags
            .tags()
            .iter()
            .any(|t| t.key() == "wishctl:region" && t.value() == "us-east-1"),
        "{role_tags:?}"
    );
    let function_tags = lambda
        .list_tags()
        .resource(&function_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        function_tags
            .tags()
            .and_then(|t| t.get("team"))
            .map(String::as_str),
        Some("web")
    );
}

#[tokio::test]
async fn a_layer_and_a_description_set_by_hand_are_seen_and_removed() {
    // GIVEN a deployed stack
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    let stack = "layerdrift";
    let outputs = json(&up(session.endpoint(), stack, zip, &["--output", "json"]));
    let function = outputs["function"].as_str().unwrap().to_string();
    let sdk = session.sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);

    // WHEN someone publishes a layer (an extension would see every invocation) and attaches it,
    // and rewrites the description
    let layer_zip = testkit::lambda_zip::write_zip(
        &dir.path().join("layer.zip"),
        "extensions/spy",
        b"#!/bin/sh\n",
    );
    let layer = lambda
        .publish_layer_version()
        .layer_name("spy")
        .content(
            aws_sdk_lambda::types::LayerVersionContentInput::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(
                    std::fs::read(&layer_zip).unwrap(),
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let layer_arn = layer.layer_version_arn().unwrap().to_string();
    lambda
        .update_function_configuration()
        .function_name(&function)
        .layers(&layer_arn)
        .description("patched by hand")
        .send()
        .await
        .unwrap();

    // THEN plan exits 2 naming both, with the layer's ARN
    let (code, before) = plan(session.endpoint(), stack, zip, &[]);
    assert_eq!(code, Some(2));
    let lines = changed(&before).join("\n");
    assert_eq!(
        changed(&before),
        [format!("update function {function}: layers, description")],
        "{lines}"
    );
    let shown = before.to_string();
    assert!(shown.contains(&layer_arn), "{shown}");
    assert!(shown.contains("patched by hand"), "{shown}");

    // WHEN up runs
    let mut args = cli::stack_args("up", stack, zip);
    args.push("-v");
    let restored = wishctl(session.endpoint(), &args);
    assert!(restored.status.success(), "{}", stderr(&restored));

    // THEN it says it detached the layer and reset the description
    let said = stderr(&restored);
    assert!(
        said.contains(&format!(
            "detached layers {layer_arn} (not part of the stack)"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "function {function}: updated (layers, description)"
        )),
        "{said}"
    );

    // AND the next plan is clean, and the function has no layer and wishctl's description
    let (code, after) = plan(session.endpoint(), stack, zip, &[]);
    assert_eq!(code, Some(0), "{}", changed(&after).join("\n"));
    let config = lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert!(config.layers().is_empty(), "{:?}", config.layers());
    assert_eq!(
        config.description(),
        Some("wish-list API (managed by wishctl)")
    );
}
