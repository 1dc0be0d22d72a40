//! `up` and `plan` against moto: the configuration of every resource, read back through the SDK,
//! convergence (zero mutating calls) and in-place updates.

use std::collections::HashMap;

use aws_sdk_apigatewayv2::types::{AuthorizationType, AuthorizerType, IntegrationType};
use aws_sdk_dynamodb::types::{BillingMode, KeyType, ScalarAttributeType};
use aws_sdk_lambda::types::{Architecture, Runtime};
use provision::{Action, AuthorizerField, ProvisionError, ResourceKind};
use serde_json::{json, Value};
use stack::{CorsSettings, TAG_REGION, TAG_STACK};

use crate::support::{code, moto, provisioner, spec, ACCOUNT, ISSUER, REGION};

fn decode_policy(text: &str) -> Value {
    serde_json::from_str(text)
        .or_else(|_| {
            let decoded: String = url_decode(text);
            serde_json::from_str(&decoded)
        })
        .unwrap()
}

fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn fresh_up_creates_every_resource_exactly_as_described() {
    // GIVEN an empty account
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"fake bootstrap v1");
    let spec = spec(
        "demo",
        &["https://api.example.com", "wishlist-cli"],
        &["write:wishes"],
    );
    let p = provisioner(&session).await;

    // WHEN up runs
    let report = p.up(&spec, &zip).await.unwrap();

    // THEN every planned action was a create, and the outputs name the resources
    assert!(
        report
            .plan
            .changes
            .iter()
            .all(|c| c.action == Action::Create),
        "{}",
        report.plan
    );
    let out = &report.outputs;
    assert_eq!(out.table, "wishctl-demo-items");
    assert_eq!(out.role, "wishctl-demo-us-east-1-fn");
    assert_eq!(out.function, "wishctl-demo-api");
    assert_eq!(out.log_group, "/aws/lambda/wishctl-demo-api");
    assert_eq!(out.region, REGION);
    assert_eq!(
        out.url,
        format!(
            "https://{}.execute-api.{REGION}.amazonaws.com/wish-list-service",
            out.api_id
        )
    );
    let expected_tags: HashMap<String, String> = [
        (TAG_STACK.to_string(), "demo".to_string()),
        (TAG_REGION.to_string(), REGION.to_string()),
        ("team".to_string(), "web".to_string()),
    ]
    .into();
    let c = p.clients();

    // table: on-demand, partition key id (S), tagged
    let table = c
        .dynamodb
        .describe_table()
        .table_name(&out.table)
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    assert_eq!(table.key_schema().len(), 1);
    assert_eq!(table.key_schema()[0].attribute_name(), "id");
    assert_eq!(table.key_schema()[0].key_type(), &KeyType::Hash);
    assert_eq!(
        table.attribute_definitions()[0].attribute_type(),
        &ScalarAttributeType::S
    );
    let table_arn = table.table_arn().unwrap().to_string();
    assert_eq!(
        table_arn,
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/wishctl-demo-items")
    );
    let tags = c
        .dynamodb
        .list_tags_of_resource()
        .resource_arn(&table_arn)
        .send()
        .await
        .unwrap();
    let tags: HashMap<String, String> = tags
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(tags, expected_tags);

    // log group: 14 days retention, tagged
    let groups = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&out.log_group)
        .send()
        .await
        .unwrap();
    let group = groups
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(&out.log_group))
        .unwrap();
    assert_eq!(group.retention_in_days(), Some(14));
    let tags = c
        .logs
        .list_tags_for_resource()
        .resource_arn(group.log_group_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().cloned().unwrap_or_default(), expected_tags);

    // role: path /wishctl/, trusted by Lambda only, one inline policy naming exactly this table
    // and this log group, no managed policy
    let role = c.iam.get_role().role_name(&out.role).send().await.unwrap();
    let role = role.role().unwrap();
    assert_eq!(role.path(), "/wishctl/");
    assert_eq!(
        role.arn(),
        format!("arn:aws:iam::{ACCOUNT}:role/wishctl/wishctl-demo-us-east-1-fn")
    );
    assert_eq!(
        decode_policy(role.assume_role_policy_document().unwrap()),
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole"
            }]
        })
    );
    let role_tags: HashMap<String, String> = role
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(role_tags, expected_tags);
    let inline = c
        .iam
        .list_role_policies()
        .role_name(&out.role)
        .send()
        .await
        .unwrap();
    assert_eq!(inline.policy_names(), ["wishctl-demo-access"]);
    let attached = c
        .iam
        .list_attached_role_policies()
        .role_name(&out.role)
        .send()
        .await
        .unwrap();
    assert!(attached.attached_policies().is_empty());
    let policy = c
        .iam
        .get_role_policy()
        .role_name(&out.role)
        .policy_name("wishctl-demo-access")
        .send()
        .await
        .unwrap();
    assert_eq!(
        decode_policy(policy.policy_document()),
        json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WishListTable",
                    "Effect": "Allow",
                    "Action": ["dynamodb:PutItem", "dynamodb:Scan"],
                    "Resource": table_arn
                },
                {
                    "Sid": "OwnLogGroup",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/wishctl-demo-api:*")
                }
            ]
        })
    );

    // function: provided.al2023, bootstrap, arm64, 128 MB, TABLE_NAME, this role, this code
    let function = c
        .lambda
        .get_function()
        .function_name(&out.function)
        .send()
        .await
        .unwrap();
    let config = function.configuration().unwrap();
    assert_eq!(config.runtime(), Some(&Runtime::Providedal2023));
    assert_eq!(config.handler(), Some("bootstrap"));
    assert_eq!(config.architectures(), [Architecture::Arm64]);
    assert_eq!(config.memory_size(), Some(128));
    assert_eq!(config.timeout(), Some(10));
    assert_eq!(config.role(), Some(role.arn()));
    assert_eq!(config.code_sha256(), Some(zip.sha256_base64.as_str()));
    let env = config.environment().unwrap().variables().unwrap();
    assert_eq!(env.len(), 1);
    assert_eq!(
        env.get("TABLE_NAME").map(String::as_str),
        Some("wishctl-demo-items")
    );
    assert_eq!(function.tags().cloned().unwrap_or_default(), expected_tags);
    let function_arn = config.function_arn().unwrap().to_string();

    // HTTP API: tagged, no CORS unless asked
    let apis = c.apigateway.get_apis().send().await.unwrap();
    let ours: Vec<_> = apis
        .items()
        .iter()
        .filter(|a| a.name() == Some("wishctl-demo"))
        .collect();
    assert_eq!(ours.len(), 1);
    let api = ours[0];
    assert_eq!(api.api_id(), Some(out.api_id.as_str()));
    assert_eq!(api.protocol_type().map(|p| p.as_str()), Some("HTTP"));
    assert_eq!(api.tags().cloned().unwrap_or_default(), expected_tags);
    assert!(api.cors_configuration().is_none());

    // authorizer: JWT, Authorization header, this issuer, these audiences
    let authorizer = c
        .apigateway
        .get_authorizer()
        .api_id(&out.api_id)
        .authorizer_id(&out.authorizer_id)
        .send()
        .await
        .unwrap();
    assert_eq!(authorizer.authorizer_type(), Some(&AuthorizerType::Jwt));
    assert_eq!(authorizer.name(), Some("wishctl-demo-jwt"));
    assert_eq!(
        authorizer.identity_source(),
        ["$request.header.Authorization"]
    );
    let jwt = authorizer.jwt_configuration().unwrap();
    assert_eq!(jwt.issuer(), Some(ISSUER));
    let mut audiences = jwt.audience().to_vec();
    audiences.sort();
    assert_eq!(audiences, ["https://api.example.com", "wishlist-cli"]);

    // integration: AWS_PROXY to the function, payload 2.0, the only one
    let integrations = c
        .apigateway
        .get_integrations()
        .api_id(&out.api_id)
        .send()
        .await
        .unwrap();
    assert_eq!(integrations.items().len(), 1);
    let integration = &integrations.items()[0];
    assert_eq!(
        integration.integration_type(),
        Some(&IntegrationType::AwsProxy)
    );
    assert_eq!(integration.integration_uri(), Some(function_arn.as_str()));
    assert_eq!(integration.payload_format_version(), Some("2.0"));
    let target = format!("integrations/{}", integration.integration_id().unwrap());

    // routes: GET open, POST behind the authorizer with the scopes, both to the integration
    let routes = c
        .apigateway
        .get_routes()
        .api_id(&out.api_id)
        .send()
        .await
        .unwrap();
    assert_eq!(routes.items().len(), 2);
    let route = |key: &str| {
        routes
            .items()
            .iter()
            .find(|r| r.route_key() == Some(key))
            .unwrap()
    };
    let get = route("GET /wish-list-service");
    assert_eq!(get.authorization_type(), Some(&AuthorizationType::None));
    assert_eq!(get.authorizer_id(), None);
    assert_eq!(get.target(), Some(target.as_str()));
    let post = route("POST /wish-list-service");
    assert_eq!(post.authorization_type(), Some(&AuthorizationType::Jwt));
    assert_eq!(post.authorizer_id(), Some(out.authorizer_id.as_str()));
    assert_eq!(post.authorization_scopes(), ["write:wishes"]);
    assert_eq!(post.target(), Some(target.as_str()));

    // stage: $default with auto-deploy
    let stage = c
        .apigateway
        .get_stage()
        .api_id(&out.api_id)
        .stage_name("$default")
        .send()
        .await
        .unwrap();
    assert_eq!(stage.auto_deploy(), Some(true));

    // permission: API Gateway may invoke the function, from this API's wish-list path only
    let policy = c
        .lambda
        .get_policy()
        .function_name(&out.function)
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    let statement = &statements[0];
    assert_eq!(statement["Sid"], "wishctl-demo-apigw");
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Action"], "lambda:InvokeFunction");
    assert_eq!(
        statement["Principal"]["Service"],
        "apigateway.amazonaws.com"
    );
    assert_eq!(
        statement["Condition"]["ArnLike"]["AWS:SourceArn"],
        format!(
            "arn:aws:execute-api:{REGION}:{ACCOUNT}:{}/*/*/wish-list-service",
            out.api_id
        )
    );
}

#[tokio::test]
async fn second_up_with_the_same_inputs_makes_no_mutating_call() {
    // GIVEN a deployed stack
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"fake bootstrap v1");
    let spec = spec("demo", &["wishlist-cli"], &[]);
    let first = provisioner(&session).await.up(&spec, &zip).await.unwrap();
    assert!(
        first.calls.mutating >= 13,
        "{:?}",
        first.calls.mutating_operations()
    );
    // Independent resources are created concurrently: the critical path is at most half of the
    // calls, plus the stack lock's own sequential calls (look, create the log group and set its
    // retention, list, create, list again, mark released, delete).
    const LOCK_CALLS: usize = 8;
    assert!(
        first.calls.critical_path * 2 <= first.calls.total + 2 * LOCK_CALLS,
        "critical path {} of {} calls",
        first.calls.critical_path,
        first.calls.total
    );

    // WHEN up runs again with the same inputs (a fresh process: a new provisioner)
    let second = provisioner(&session).await.up(&spec, &zip).await.unwrap();

    // THEN nothing is mutated, only reads are made, and the outputs are the same
    assert_eq!(
        second.calls.mutating,
        0,
        "{:?}",
        second.calls.mutating_operations()
    );
    // The stack's reads, the drift reads (role policies, function URL, stages, authorizers) and
    // one look at the stack's lock.
    assert!(
        second.calls.total <= 21,
        "{} calls: {:?}",
        second.calls.total,
        second.calls.calls
    );
    assert!(!second.plan.has_changes(), "{}", second.plan);
    assert_eq!(second.outputs, first.outputs);

    // AND plan agrees
    let plan = provisioner(&session).await.plan(&spec, &zip).await.unwrap();
    assert!(!plan.plan.has_changes(), "{}", plan.plan);
    assert_eq!(plan.calls.mutating, 0);
}

#[tokio::test]
async fn changed_audience_updates_the_authorizer_in_place_and_keeps_the_api() {
    // GIVEN a deployed stack
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"fake bootstrap v1");
    let first = provisioner(&session)
        .await
        .up(&spec("demo", &["old-audience"], &[]), &zip)
        .await
        .unwrap();

    // WHEN the audience changes
    let changed = spec("demo", &["new-audience"], &[]);
    let plan = provisioner(&session)
        .await
        .plan(&changed, &zip)
        .await
        .unwrap();
    let second = provisioner(&session)
        .await
        .up(&changed, &zip)
        .await
        .unwrap();

    // THEN plan showed exactly the authorizer's audience, and up updated only the authorizer
    let changes: Vec<_> = plan
        .plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .collect();
    assert_eq!(changes.len(), 1, "{}", plan.plan);
    assert_eq!(changes[0].kind, ResourceKind::Authorizer);
    let Action::Update { fields } = &changes[0].action else {
        panic!("{}", plan.plan)
    };
    assert_eq!(fields.len(), 1);
    assert_eq!(fields[0].field, AuthorizerField::Audience.into());
    assert_eq!(fields[0].old, "[old-audience]");
    assert_eq!(fields[0].new, "[new-audience]");
    assert_eq!(second.calls.mutating_operations(), ["UpdateAuthorizer"]);
    assert_eq!(second.outputs.api_id, first.outputs.api_id);
    assert_eq!(second.outputs.authorizer_id, first.outputs.authorizer_id);
    assert_eq!(second.outputs.url, first.outputs.url);
    let authorizer = second_authorizer_audiences(&session, &second.outputs).await;
    assert_eq!(authorizer, ["new-audience"]);
}

async fn second_authorizer_audiences(
    session: &testkit::moto::MotoSession,
    out: &stack::StackOutputs,
) -> Vec<String> {
    let p = provisioner(session).await;
    let authorizer = p
        .clients()
        .apigateway
        .get_authorizer()
        .api_id(&out.api_id)
        .authorizer_id(&out.authorizer_id)
        .send()
        .await
        .unwrap();
    authorizer.jwt_configuration().unwrap().audience().to_vec()
}

#[tokio::test]
async fn changed_scopes_update_the_post_route_only() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"fake bootstrap v1");
    let first = provisioner(&session)
        .await
        .up(&spec("demo", &["a"], &["read"]), &zip)
        .await
        .unwrap();

    let second = provisioner(&session)
        .await
        .up(&spec("demo", &["a"], &["write"]), &zip)
        .await
        .unwrap();

    assert_eq!(second.calls.mutating_operations(), ["UpdateRoute"]);
    assert_eq!(second.outputs.api_id, first.outputs.api_id);
    let routes = provisioner(&session)
        .await
        .clients()
        .apigateway
        .get_routes()
        .api_id(&second.outputs.api_id)
        .send()
        .await
        .unwrap();
    let post = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("POST /wish-list-service"))
        .unwrap();
    assert_eq!(post.authorization_scopes(), ["write"]);
}

#[tokio::test]
async fn new_code_is_uploaded_only_when_its_sha256_differs() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec("demo", &["a"], &[]);
    provisioner(&session)
        .await
        .up(&spec, &code(dir.path(), b"v1"))
        .await
        .unwrap();

    let v2 = code(dir.path(), b"version two");
    let second = provisioner(&session).await.up(&spec, &v2).await.unwrap();

    assert_eq!(second.calls.mutating_operations(), ["UpdateFunctionCode"]);
    let config = provisioner(&session)
        .await
        .clients()
        .lambda
        .get_function_configuration()
        .function_name("wishctl-demo-api")
        .send()
        .await
        .unwrap();
    assert_eq!(config.code_sha256(), Some(v2.sha256_base64.as_str()));
}

#[tokio::test]
async fn memory_and_architecture_changes_update_the_function_in_place() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"v1");
    let mut spec = spec("demo", &["a"], &[]);
    provisioner(&session).await.up(&spec, &zip).await.unwrap();

    spec.function.memory_mb = 256;
    spec.function.architecture = stack::Architecture::X86_64;
    let second = provisioner(&session).await.up(&spec, &zip).await.unwrap();

    assert_eq!(
        second.calls.mutating_operations(),
        ["UpdateFunctionConfiguration", "UpdateFunctionCode"]
    );
    let config = provisioner(&session)
        .await
        .clients()
        .lambda
        .get_function_configuration()
        .function_name("wishctl-demo-api")
        .send()
        .await
        .unwrap();
    assert_eq!(config.memory_size(), Some(256));
    // The architecture travels with the code (UpdateFunctionCode), which moto stores without its
    // Architectures field, so it cannot be read back here; the call itself is asserted above.
}

#[tokio::test]
async fn cors_origins_configure_the_api_and_removing_them_removes_the_configuration() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"v1");
    let mut spec = spec("demo", &["a"], &[]);
    spec.cors = CorsSettings::new(["https://app.example.com".to_string()]).unwrap();
    let first = provisioner(&session).await.up(&spec, &zip).await.unwrap();
    let p = provisioner(&session).await;
    let api = p
        .clients()
        .apigateway
        .get_api()
        .api_id(&first.outputs.api_id)
        .send()
        .await
        .unwrap();
    let cors = api.cors_configuration().unwrap();
    assert_eq!(cors.allow_origins(), ["https://app.example.com"]);
    assert_eq!(cors.allow_methods(), ["GET", "POST"]);
    assert_eq!(cors.allow_headers(), ["authorization", "content-type"]);
    let again = provisioner(&session).await.up(&spec, &zip).await.unwrap();
    assert_eq!(
        again.calls.mutating,
        0,
        "{:?}",
        again.calls.mutating_operations()
    );

    spec.cors = CorsSettings::default();
    let removed = provisioner(&session).await.up(&spec, &zip).await.unwrap();

    assert_eq!(
        removed.calls.mutating_operations(),
        ["DeleteCorsConfiguration"]
    );
    let api = p
        .clients()
        .apigateway
        .get_api()
        .api_id(&first.outputs.api_id)
        .send()
        .await
        .unwrap();
    assert!(api.cors_configuration().is_none());
}

#[tokio::test]
async fn a_foreign_table_with_the_stack_name_is_refused_and_nothing_is_created() {
    // GIVEN a table someone created by hand under the stack's table name
    let session = moto().await;
    let p = provisioner(&session).await;
    create_untagged_table(&p, "wishctl-demo-items").await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"v1");
    let spec = spec("demo", &["a"], &[]);

    // WHEN up and plan run
    let before = p.counter().mark();
    let err = p.up(&spec, &zip).await.unwrap_err();
    let plan_err = p.plan(&spec, &zip).await.unwrap_err();

    // THEN both stop with an error naming the table, and no call mutated anything
    let message = format!("{err:#}");
    assert!(message.contains("table wishctl-demo-items"), "{message}");
    assert!(message.contains("not owned by stack demo"), "{message}");
    assert!(matches!(
        err.downcast_ref(),
        Some(ProvisionError::NotOwned { .. })
    ));
    assert!(matches!(
        plan_err.downcast_ref(),
        Some(ProvisionError::NotOwned { .. })
    ));
    let mutating: Vec<_> = p
        .counter()
        .since(before)
        .into_iter()
        .filter(|c| c.mutating)
        .collect();
    assert!(mutating.is_empty(), "{mutating:?}");
    let roles = p
        .clients()
        .iam
        .get_role()
        .role_name("wishctl-demo-us-east-1-fn")
        .send()
        .await;
    assert!(roles.is_err(), "no role was created");
}

pub async fn create_untagged_table(p: &provision::Provisioner, name: &str) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, KeySchemaElement};
    p.clients()
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn plan_reports_every_resource_as_create_on_an_empty_account_without_mutating() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let p = provisioner(&session).await;

    let report = p
        .plan(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();

    assert!(report.plan.has_changes());
    assert_eq!(
        report.calls.mutating,
        0,
        "{:?}",
        report.calls.mutating_operations()
    );
    let kinds: Vec<ResourceKind> = report.plan.changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ResourceKind::Table,
            ResourceKind::LogGroup,
            ResourceKind::Role,
            ResourceKind::RolePolicy,
            ResourceKind::Function,
            ResourceKind::Api,
            ResourceKind::Authorizer,
            ResourceKind::Stage,
            ResourceKind::Integration,
            ResourceKind::Route,
            ResourceKind::Route,
            ResourceKind::Permission,
        ]
    );
    assert!(report
        .plan
        .changes
        .iter()
        .all(|c| c.action == Action::Create));
}

#[tokio::test]
async fn an_interrupted_up_is_completed_by_the_next_one() {
    // GIVEN a stack whose POST route and permission are missing (as if up was killed)
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"v1");
    let spec = spec("demo", &["a"], &[]);
    let first = provisioner(&session).await.up(&spec, &zip).await.unwrap();
    let p = provisioner(&session).await;
    let routes = p
        .clients()
        .apigateway
        .get_routes()
        .api_id(&first.outputs.api_id)
        .send()
        .await
        .unwrap();
    let post = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("POST /wish-list-service"))
        .unwrap();
    p.clients()
        .apigateway
        .delete_route()
        .api_id(&first.outputs.api_id)
        .route_id(post.route_id().unwrap())
        .send()
        .await
        .unwrap();
    p.clients()
        .lambda
        .remove_permission()
        .function_name("wishctl-demo-api")
        .statement_id("wishctl-demo-apigw")
        .send()
        .await
        .unwrap();

    // WHEN up runs again
    let second = provisioner(&session).await.up(&spec, &zip).await.unwrap();

    // THEN it recreates what is missing (the authorizer too: it was only reachable through the
    // route), keeps the API, and a third up is a no-op
    // (Creating takes the stack's lock: a lock stream and its release marker.)
    let mut ops: Vec<&str> = second
        .calls
        .mutating_operations()
        .into_iter()
        .filter(|op| !op.ends_with("LogStream"))
        .collect();
    ops.sort();
    assert_eq!(ops, ["AddPermission", "CreateAuthorizer", "CreateRoute"]);
    assert_eq!(second.outputs.api_id, first.outputs.api_id);
    let third = provisioner(&session).await.up(&spec, &zip).await.unwrap();
    assert_eq!(
        third.calls.mutating,
        0,
        "{:?}",
        third.calls.mutating_operations()
    );
}

#[tokio::test]
async fn a_second_api_tagged_for_the_stack_is_planned_away_and_removed_by_up() {
    // GIVEN a deployed stack, and a second HTTP API with its name and tags: what a CreateApi
    // whose answer was lost leaves when it lands after `up` read the stack again
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"fake bootstrap v1");
    let spec = spec("dupe", &["wishlist-cli"], &[]);
    let first = provisioner(&session).await.up(&spec, &zip).await.unwrap();
    let apigw = aws_sdk_apigatewayv2::Client::new(&session.sdk_config().await);
    let tags = spec.tags.in_region(&REGION.parse().unwrap()).to_hash_map();
    let late = apigw
        .create_api()
        .name("wishctl-dupe")
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap()
        .api_id()
        .unwrap()
        .to_string();

    // WHEN plan runs
    let plan = provisioner(&session).await.plan(&spec, &zip).await.unwrap();
    // THEN it reports the duplicate as drift of the stack's API, naming it
    let shown = plan.plan.to_string();
    assert!(plan.plan.has_changes(), "{shown}");
    assert!(shown.contains("duplicate http apis"), "{shown}");
    assert!(shown.contains(&late), "{shown}");

    // WHEN up runs
    let second = provisioner(&session).await.up(&spec, &zip).await.unwrap();
    // THEN the duplicate is gone, the stack's API (the first) is kept, and plan is clean
    let apis = apigw.get_apis().send().await.unwrap();
    let named: Vec<&str> = apis
        .items()
        .iter()
        .filter(|a| a.name() == Some("wishctl-dupe"))
        .filter_map(|a| a.api_id())
        .collect();
    assert_eq!(named, [first.outputs.api_id.as_str()]);
    assert_eq!(second.outputs.api_id, first.outputs.api_id);
    let after = provisioner(&session).await.plan(&spec, &zip).await.unwrap();
    assert!(!after.plan.has_changes(), "{}", after.plan);
}
