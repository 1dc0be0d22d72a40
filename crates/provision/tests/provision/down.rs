//! `down` and `outputs` against moto: nothing left behind, idempotence, data safety, ownership,
//! independent stacks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::operation::scan::ScanInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_types::config_bag::ConfigBag;
use provision::{
    Action, Clients, DataPolicy, DownCondition, Outcome, ProvisionError, Provisioner, ResourceKind,
};
use stack::StackName;
use testkit::aws_proxy::{AwsProxy, ModelSettings};

use crate::support::{code, moto, provisioner, spec};
use crate::up::create_untagged_table;

fn stack(name: &str) -> StackName {
    name.parse().unwrap()
}

/// Whether any trace of `stack` is left in the account, looked up by name through the SDK.
async fn traces(p: &Provisioner, stack: &str) -> Vec<String> {
    let names = self::stack(stack).resources(&crate::support::REGION.parse().unwrap());
    let c = p.clients();
    let mut left = Vec::new();
    if c.dynamodb
        .describe_table()
        .table_name(&names.table)
        .send()
        .await
        .is_ok()
    {
        left.push(format!("table {}", names.table));
    }
    if c.iam.get_role().role_name(&names.role).send().await.is_ok() {
        left.push(format!("role {}", names.role));
    }
    let roles = c
        .iam
        .list_roles()
        .path_prefix(stack::ROLE_PATH)
        .send()
        .await
        .unwrap();
    for role in roles.roles() {
        if role.role_name() == names.role {
            left.push(format!("listed role {}", names.role));
        }
    }
    if c.lambda
        .get_function()
        .function_name(&names.function)
        .send()
        .await
        .is_ok()
    {
        left.push(format!("function {}", names.function));
    }
    let apis = c.apigateway.get_apis().send().await.unwrap();
    for api in apis
        .items()
        .iter()
        .filter(|a| a.name() == Some(names.api.as_str()))
    {
        left.push(format!("api {:?}", api.api_id()));
    }
    let groups = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&names.log_group)
        .send()
        .await
        .unwrap();
    for group in groups.log_groups() {
        left.push(format!("log group {:?}", group.log_group_name()));
    }
    left
}

async fn put_item(p: &Provisioner, table: &str) {
    p.clients()
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(HashMap::from([
            ("id".to_string(), AttributeValue::S("1".to_string())),
            ("name".to_string(), AttributeValue::S("a bike".to_string())),
        ])))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn down_leaves_nothing_behind_and_a_second_down_is_a_no_op() {
    // GIVEN a deployed stack
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    provisioner(&session)
        .await
        .up(&spec("demo", &["a"], &["s"]), &code(dir.path(), b"v1"))
        .await
        .unwrap();
    let p = provisioner(&session).await;
    assert_eq!(traces(&p, "demo").await.len(), 6);

    // WHEN down runs (a new process: nothing but AWS to go by)
    let report = provisioner(&session)
        .await
        .down(&stack("demo"), DataPolicy::RefuseIfNotEmpty)
        .await
        .unwrap();

    // THEN every resource was deleted and none is left
    assert!(report.teardown.failures().is_empty(), "{}", report.teardown);
    let deleted: Vec<ResourceKind> = report
        .teardown
        .removals
        .iter()
        .filter(|r| r.outcome == Outcome::Deleted)
        .map(|r| r.kind)
        .collect();
    for kind in [
        ResourceKind::Api,
        ResourceKind::Permission,
        ResourceKind::Function,
        ResourceKind::LogGroup,
        ResourceKind::RolePolicy,
        ResourceKind::Role,
        ResourceKind::Table,
    ] {
        assert!(
            deleted.contains(&kind),
            "{kind} not deleted: {}",
            report.teardown
        );
    }
    assert_eq!(traces(&p, "demo").await, Vec::<String>::new());

    // AND a second down finds nothing, changes nothing and succeeds
    let again = provisioner(&session)
        .await
        .down(&stack("demo"), DataPolicy::RefuseIfNotEmpty)
        .await
        .unwrap();
    assert!(again.teardown.was_already_gone(), "{}", again.teardown);
    assert_eq!(
        again.calls.mutating,
        0,
        "{:?}",
        again.calls.mutating_operations()
    );
    assert!(again.teardown.to_string().contains("nothing left"));
}

#[tokio::test]
async fn down_refuses_a_table_holding_items_and_deletes_nothing() {
    // GIVEN a deployed stack with one item in its table
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"v1");
    let spec = spec("demo", &["a"], &[]);
    let up = provisioner(&session).await.up(&spec, &zip).await.unwrap();
    let p = provisioner(&session).await;
    put_item(&p, &up.outputs.table).await;

    // WHEN down runs without --delete-data / --keep-data
    let before = p.counter().mark();
    let err = p
        .down(&stack("demo"), DataPolicy::RefuseIfNotEmpty)
        .await
        .unwrap_err();

    // THEN it refuses, names the table and the flags, and deleted nothing
    assert!(matches!(
        err.downcast_ref(),
        Some(ProvisionError::TableNotEmpty { .. })
    ));
    let message = format!("{err:#}");
    assert!(
        message.contains("wishctl-demo-items") && message.contains("--delete-data"),
        "{message}"
    );
    assert!(p.counter().since(before).iter().all(|c| !c.mutating));
    let plan = provisioner(&session).await.plan(&spec, &zip).await.unwrap();
    assert!(!plan.plan.has_changes(), "{}", plan.plan);
}

#[tokio::test]
async fn keep_data_keeps_the_table_and_a_later_up_adopts_it() {
    // GIVEN a deployed stack with an item
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"v1");
    let spec = spec("demo", &["a"], &[]);
    let up = provisioner(&session).await.up(&spec, &zip).await.unwrap();
    let p = provisioner(&session).await;
    put_item(&p, &up.outputs.table).await;

    // WHEN down --keep-data runs
    let report = provisioner(&session)
        .await
        .down(&stack("demo"), DataPolicy::Keep)
        .await
        .unwrap();

    // THEN only the table is left, with its item
    assert!(report.teardown.failures().is_empty(), "{}", report.teardown);
    assert_eq!(traces(&p, "demo").await, ["table wishctl-demo-items"]);
    let table_removal = report
        .teardown
        .removals
        .iter()
        .find(|r| r.kind == ResourceKind::Table)
        .unwrap();
    assert_eq!(table_removal.outcome, Outcome::Kept);

    // AND a later up adopts the table as it is and recreates the rest
    let again = provisioner(&session).await.up(&spec, &zip).await.unwrap();
    assert_eq!(
        again.plan.action(ResourceKind::Table),
        Some(&Action::NoChange)
    );
    assert!(!again.calls.mutating_operations().contains(&"CreateTable"));
    let scan = p
        .clients()
        .dynamodb
        .scan()
        .table_name(&again.outputs.table)
        .send()
        .await
        .unwrap();
    assert_eq!(scan.count(), 1);
}

#[tokio::test]
async fn delete_data_deletes_a_table_holding_items() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let up = provisioner(&session)
        .await
        .up(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();
    let p = provisioner(&session).await;
    put_item(&p, &up.outputs.table).await;

    let report = provisioner(&session)
        .await
        .down(&stack("demo"), DataPolicy::Delete)
        .await
        .unwrap();

    assert!(report.teardown.failures().is_empty(), "{}", report.teardown);
    assert_eq!(traces(&p, "demo").await, Vec::<String>::new());
}

#[tokio::test]
async fn two_stacks_side_by_side_stay_independent() {
    // GIVEN two stacks in the same account
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"v1");
    let a = provisioner(&session)
        .await
        .up(&spec("alpha", &["a"], &[]), &zip)
        .await
        .unwrap();
    let b = provisioner(&session)
        .await
        .up(&spec("beta", &["b"], &["s"]), &zip)
        .await
        .unwrap();
    assert_ne!(a.outputs.api_id, b.outputs.api_id);

    // WHEN one is changed and the other torn down
    provisioner(&session)
        .await
        .up(&spec("alpha", &["a2"], &[]), &zip)
        .await
        .unwrap();
    let report = provisioner(&session)
        .await
        .down(&stack("alpha"), DataPolicy::Delete)
        .await
        .unwrap();
    assert!(report.teardown.failures().is_empty(), "{}", report.teardown);

    // THEN the other is untouched: same outputs, nothing to change
    let p = provisioner(&session).await;
    assert_eq!(traces(&p, "alpha").await, Vec::<String>::new());
    assert_eq!(traces(&p, "beta").await.len(), 6);
    let outputs = provisioner(&session)
        .await
        .outputs(&stack("beta"))
        .await
        .unwrap();
    assert_eq!(outputs.outputs, b.outputs);
    let plan = provisioner(&session)
        .await
        .plan(&spec("beta", &["b"], &["s"]), &zip)
        .await
        .unwrap();
    assert!(!plan.plan.has_changes(), "{}", plan.plan);
}

#[tokio::test]
async fn down_never_deletes_a_foreign_table_with_the_stack_name() {
    // GIVEN a table created by hand under the stack's table name, next to an owned role
    let session = moto().await;
    let p = provisioner(&session).await;
    create_untagged_table(&p, "wishctl-demo-items").await;

    // WHEN down runs, even with --delete-data
    let err = p
        .down(&stack("demo"), DataPolicy::Delete)
        .await
        .unwrap_err();

    // THEN it refuses, naming the table, and the table is still there
    assert!(matches!(
        err.downcast_ref(),
        Some(ProvisionError::NotOwned { .. })
    ));
    assert!(format!("{err:#}").contains("table wishctl-demo-items"));
    assert!(p
        .clients()
        .dynamodb
        .describe_table()
        .table_name("wishctl-demo-items")
        .send()
        .await
        .is_ok());
}

#[tokio::test]
async fn outputs_read_the_deployed_stack_back_and_name_what_is_missing() {
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let up = provisioner(&session)
        .await
        .up(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();

    let read = provisioner(&session)
        .await
        .outputs(&stack("demo"))
        .await
        .unwrap();
    assert_eq!(read.outputs, up.outputs);
    assert_eq!(read.calls.mutating, 0);

    let missing = provisioner(&session)
        .await
        .outputs(&stack("other"))
        .await
        .unwrap_err();
    assert!(matches!(
        missing.downcast_ref(),
        Some(ProvisionError::NotDeployed { .. })
    ));
    assert!(format!("{missing:#}").contains("stack other is not deployed"));
}

#[tokio::test]
async fn an_item_written_while_down_runs_keeps_the_table_and_is_reported() {
    // GIVEN a deployed stack with an empty table
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"v1");
    let spec = spec("demo", &["a"], &[]);
    let up = provisioner(&session).await.up(&spec, &zip).await.unwrap();
    let table = up.outputs.table.clone();

    // WHEN an item arrives after down's first check, right when the function has gone (the
    // progress callback writes it from another thread, synchronously, before down goes on)
    let sdk = session.sdk_config().await;
    let writer_table = table.clone();
    let progress = provision::Progress::new(move |event| {
        if event.kind == ResourceKind::Function && event.what == "deleted" {
            put_late_item(&sdk, &writer_table);
        }
    });
    let p = provisioner(&session).await.with_progress(progress);
    let report = p
        .down(&stack("demo"), DataPolicy::RefuseIfNotEmpty)
        .await
        .unwrap();

    // THEN the table and its item are kept, and the teardown reports it as not done
    assert_table_refused_with_delete_data(&report.teardown);
    let item = p
        .clients()
        .dynamodb
        .get_item()
        .table_name(&table)
        .key("id", AttributeValue::S("late".to_string()))
        .send()
        .await
        .unwrap();
    assert!(item.item().is_some());
    // AND everything else is gone
    assert!(p
        .clients()
        .lambda
        .get_function()
        .function_name("wishctl-demo-api")
        .send()
        .await
        .is_err());
}

/// `spec` with the expiry tag `up --ttl` writes.
fn spec_expiring(name: &str, expiry: &str) -> stack::StackSpec {
    let mut spec = spec(name, &["a"], &[]);
    let expiry_tag = format!("{}={expiry}", stack::TAG_EXPIRES_AT);
    spec.tags = stack::Tags::for_stack(&spec.name, ["team=web", expiry_tag.as_str()]).unwrap();
    spec
}

#[tokio::test]
async fn a_down_for_expiry_deletes_nothing_when_an_up_renewed_the_stack_since_it_was_listed() {
    // GIVEN a stack that `gc --expired` listed as expired, and that an `up --ttl 2h` renewed
    // before gc's down reached it
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = code(dir.path(), b"v1");
    let p = provisioner(&session).await;
    p.up(&spec_expiring("renewed", "2000-01-01T00:00:00Z"), &zip)
        .await
        .unwrap();
    p.up(&spec_expiring("renewed", "2999-01-01T00:00:00Z"), &zip)
        .await
        .unwrap();
    let now = stack::UtcTime::from_system_time(std::time::SystemTime::now());

    // WHEN gc's down runs with the condition it was listed for
    let err = p
        .down_if(
            &stack("renewed"),
            DataPolicy::Delete,
            DownCondition::ExpiredAt(now),
        )
        .await
        .unwrap_err();

    // THEN it deletes nothing and says why
    assert!(
        matches!(
            err.downcast_ref::<ProvisionError>(),
            Some(ProvisionError::NoLongerExpired { expiry, .. }) if expiry == "2999-01-01T00:00:00Z"
        ),
        "{err:#}"
    );
    assert_eq!(traces(&p, "renewed").await.len(), 6);

    // AND a stack still expired under the lock goes
    p.up(&spec_expiring("renewed", "2000-01-01T00:00:00Z"), &zip)
        .await
        .unwrap();
    let report = p
        .down_if(
            &stack("renewed"),
            DataPolicy::Delete,
            DownCondition::ExpiredAt(now),
        )
        .await
        .unwrap();
    assert!(report.teardown.failures().is_empty(), "{}", report.teardown);
    assert_eq!(traces(&p, "renewed").await, Vec::<String>::new());
}

/// Records whether each DynamoDB `Scan` asked for a consistent read.
#[derive(Debug, Clone, Default)]
struct ScanReads(Arc<Mutex<Vec<Option<bool>>>>);

impl Intercept for ScanReads {
    fn name(&self) -> &'static str {
        "ScanReads"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(scan) = context.input().downcast_ref::<ScanInput>() {
            self.0.lock().unwrap().push(scan.consistent_read());
        }
        Ok(())
    }
}

/// A provisioner whose calls go through `proxy` (to moto), its DynamoDB client also recording
/// its scans in `scans`.
async fn provisioner_through(proxy: &AwsProxy, scans: &ScanReads) -> Provisioner {
    let clients = Clients::from_conf(&testkit::moto::sdk_config_for(proxy.endpoint()).await);
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        clients
            .dynamodb
            .config()
            .to_builder()
            .interceptor(scans.clone())
            .build(),
    );
    Provisioner::from_clients(Clients {
        dynamodb,
        ..clients
    })
    .with_settings(crate::support::quick_settings())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_emptiness_check_is_a_consistent_read_alone_right_before_delete_table() {
    // GIVEN a deployed stack with an empty table, and every call of `down` seen by a proxy
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    provisioner(&session)
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
    let scans = ScanReads::default();
    let p = provisioner_through(&proxy, &scans).await;

    // WHEN down runs
    let report = p
        .down(&stack("demo"), DataPolicy::RefuseIfNotEmpty)
        .await
        .unwrap();
    assert!(report.teardown.failures().is_empty(), "{}", report.teardown);

    // THEN every emptiness check was a consistent read
    let reads = scans.0.lock().unwrap().clone();
    assert!(!reads.is_empty(), "down never checked the table");
    assert!(reads.iter().all(|r| *r == Some(true)), "{reads:?}");
    // AND the last one came after everything that could write (API, permission, function) and
    // every other delete had ended, with DeleteTable the very next call
    let calls: Vec<String> = proxy
        .records()
        .iter()
        .map(|r| r.call.operation.clone())
        .collect();
    let last_scan = calls.iter().rposition(|c| c == "Scan").unwrap();
    let (before, after) = calls.split_at(last_scan + 1);
    for earlier in [
        "DeleteApi",
        "RemovePermission",
        "DeleteFunction",
        "DeleteRolePolicy",
        "DeleteRole",
    ] {
        assert!(
            before.iter().any(|c| c == earlier),
            "{earlier} not before the last check: {calls:?}"
        );
        assert!(
            !after.iter().any(|c| c == earlier),
            "{earlier} after the last check: {calls:?}"
        );
    }
    assert_eq!(
        after.first().map(String::as_str),
        Some("DeleteTable"),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_written_after_every_other_delete_keeps_the_table_and_says_to_use_delete_data() {
    // GIVEN a deployed stack with an empty table, and a proxy that, when the role is deleted
    // (the last delete before the table's), writes an item to the table and only then lets
    // `down` go on
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let up = provisioner(&session)
        .await
        .up(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();
    let table = up.outputs.table.clone();
    let proxy = AwsProxy::start(
        session.endpoint(),
        ModelSettings::latency_only(Duration::ZERO),
    )
    .await
    .unwrap();
    let sdk = session.sdk_config().await;
    let writer_table = table.clone();
    let written = Arc::new(AtomicBool::new(false));
    let wrote = Arc::clone(&written);
    proxy.set_hook(Some(Arc::new(move |record| {
        if record.call.operation != "DeleteRole" || wrote.swap(true, Ordering::SeqCst) {
            return;
        }
        put_late_item(&sdk, &writer_table);
    })));
    let p = provisioner_through(&proxy, &ScanReads::default()).await;

    // WHEN down runs
    let report = p
        .down(&stack("demo"), DataPolicy::RefuseIfNotEmpty)
        .await
        .unwrap();

    // THEN the item was written during down, and the table and its item are kept, with a
    // report that says what to do
    assert!(written.load(Ordering::SeqCst), "the role was never deleted");
    assert_table_refused_with_delete_data(&report.teardown);
    assert!(
        report.teardown.to_string().contains("NOT deleted"),
        "{}",
        report.teardown
    );
    let item = session_ddb(&session)
        .await
        .get_item()
        .table_name(&table)
        .key("id", AttributeValue::S("late".to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(item.item().is_some());
    // AND everything else is gone
    let left = traces(&p, "demo").await;
    assert_eq!(left, [format!("table {table}")]);
}

async fn session_ddb(session: &testkit::moto::MotoSession) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&session.sdk_config().await)
}

/// Writes an item named "late" into `table` from a thread of its own and waits for it: called
/// from hooks (progress events, proxy records) that run inside `down` and must not await.
fn put_late_item(sdk: &aws_types::SdkConfig, table: &str) {
    let (sdk, table) = (sdk.clone(), table.to_string());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                aws_sdk_dynamodb::Client::new(&sdk)
                    .put_item()
                    .table_name(&table)
                    .set_item(Some(HashMap::from([
                        ("id".to_string(), AttributeValue::S("late".to_string())),
                        ("name".to_string(), AttributeValue::S("late".to_string())),
                    ])))
                    .send()
                    .await
                    .unwrap();
            });
    })
    .join()
    .unwrap();
}

/// The teardown kept the table (refused, saying to use `--delete-data`), and that is its only
/// failure.
fn assert_table_refused_with_delete_data(teardown: &provision::Teardown) {
    let removal = teardown
        .removals
        .iter()
        .find(|r| r.kind == ResourceKind::Table)
        .unwrap();
    assert!(
        matches!(&removal.outcome, Outcome::Refused(why) if why.contains("--delete-data")),
        "{teardown}"
    );
    assert_eq!(teardown.failures().len(), 1, "{teardown}");
}

#[tokio::test]
async fn down_reads_the_stack_once_and_deletes_side_by_side_when_no_other_run_took_the_lock() {
    // GIVEN a deployed stack that no other run is changing
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    provisioner(&session)
        .await
        .up(&spec("demo", &["a"], &[]), &code(dir.path(), b"v1"))
        .await
        .unwrap();

    // WHEN down runs
    let report = provisioner(&session)
        .await
        .down(&stack("demo"), DataPolicy::Delete)
        .await
        .unwrap();
    assert!(report.teardown.failures().is_empty(), "{}", report.teardown);

    // THEN it read each resource once: the lock it took is the generation right after the one
    // it saw before reading, so no run changed the stack in between
    let operations: Vec<&str> = report
        .calls
        .calls
        .iter()
        .map(|c| c.operation.as_str())
        .collect();
    for read in [
        "DescribeTable",
        "GetRole",
        "GetFunction",
        "GetApis",
        "DescribeLogGroups",
    ] {
        let times = operations.iter().filter(|op| **op == read).count();
        assert_eq!(times, 1, "{read} made {times} times: {operations:?}");
    }
    // AND its critical path is the look at the lock, the reads (a resource, then its tags or
    // policy), the lock's list / create / list, the role's policy then the role (the API, the
    // function and the table beside them), and the log group
    assert!(
        report.calls.critical_path <= 9,
        "critical path {}: {operations:?}",
        report.calls.critical_path
    );
}
