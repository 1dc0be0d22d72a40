//! The DynamoDB table: on-demand billing, partition key `id` (S).

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, Select,
    TableStatus, Tag,
};
use stack::Tags;

use crate::context::{found, Ctx, SdkResultExt};
use crate::field::TableField;
use crate::plan::{tag_change, updated_message, Action, FieldChange};
use crate::{wait, ProvisionError, ResourceKind, Settings};

/// The table as DynamoDB describes it.
#[derive(Debug, Clone)]
pub(crate) struct ObservedTable {
    pub arn: String,
    pub status: Option<TableStatus>,
    pub billing_mode: BillingMode,
    /// `name (S) HASH, ...` of the key schema.
    pub key_schema: String,
    pub tags: BTreeMap<String, String>,
}

impl ObservedTable {
    fn is_deleting(&self) -> bool {
        self.status == Some(TableStatus::Deleting)
    }
}

pub(crate) async fn observe(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> anyhow::Result<Option<ObservedTable>> {
    let Some(output) = found(ddb.describe_table().table_name(name).send().await, |e| {
        e.is_resource_not_found_exception()
    })
    .doing(|| format!("describing table {name}"))?
    else {
        return Ok(None);
    };
    let table = output
        .table()
        .with_context(|| format!("DescribeTable {name} returned no table"))?;
    let arn = table
        .table_arn()
        .with_context(|| format!("DescribeTable {name} returned no ARN"))?
        .to_string();
    let types: BTreeMap<&str, &str> = table
        .attribute_definitions()
        .iter()
        .map(|a| (a.attribute_name(), a.attribute_type().as_str()))
        .collect();
    let key_schema = table
        .key_schema()
        .iter()
        .map(|k| {
            format!(
                "{} ({}) {}",
                k.attribute_name(),
                types.get(k.attribute_name()).copied().unwrap_or("?"),
                k.key_type().as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let billing_mode = table
        .billing_mode_summary()
        .and_then(|b| b.billing_mode().cloned())
        // Tables created before on-demand existed (or without a mode) report no summary.
        .unwrap_or(BillingMode::Provisioned);
    let mut tags = BTreeMap::new();
    let mut next = None;
    let mut pages = crate::pages::Pages::new(|| format!("listing tags of table {name}"));
    loop {
        let page = ddb
            .list_tags_of_resource()
            .resource_arn(&arn)
            .set_next_token(next)
            .send()
            .await
            .doing(|| format!("listing tags of table {name}"))?;
        for tag in page.tags() {
            tags.insert(tag.key().to_string(), tag.value().to_string());
        }
        next = pages.next(page.next_token())?;
        if next.is_none() {
            break;
        }
    }
    Ok(Some(ObservedTable {
        arn,
        status: table.table_status().cloned(),
        billing_mode,
        key_schema,
        tags,
    }))
}

fn expected_key_schema() -> String {
    stack::TABLE_KEY.describe()
}

pub(crate) fn diff(
    name: &str,
    tags: &Tags,
    observed: Option<&ObservedTable>,
) -> Result<Action, ProvisionError> {
    let Some(table) = observed.filter(|t| !t.is_deleting()) else {
        return Ok(Action::Create);
    };
    if table.key_schema != expected_key_schema() {
        return Err(ProvisionError::IncompatibleTable {
            table: name.to_string(),
            found: table.key_schema.clone(),
        });
    }
    let mut fields = Vec::new();
    if table.billing_mode != BillingMode::PayPerRequest {
        fields.push(FieldChange::new(
            TableField::BillingMode,
            table.billing_mode.as_str(),
            BillingMode::PayPerRequest.as_str(),
        ));
    }
    fields.extend(tag_change(TableField::Tags, tags, &table.tags));
    Ok(Action::from_fields(fields))
}

/// Creates or updates the table; returns its ARN.
pub(crate) async fn apply(
    ctx: &Ctx,
    name: &str,
    tags: &Tags,
    observed: Option<&ObservedTable>,
    action: &Action,
) -> anyhow::Result<()> {
    let ddb = &ctx.clients.dynamodb;
    match (action, observed) {
        (Action::NoChange, _) => {}
        (Action::Create, previous) => {
            if previous.is_some_and(ObservedTable::is_deleting) {
                ctx.progress.report(
                    ResourceKind::Table,
                    name,
                    "waiting for the previous table to finish deleting",
                );
                wait_until_gone(ddb, name, &ctx.settings).await?;
            }
            let output = ddb
                .create_table()
                .table_name(name)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(stack::TABLE_KEY.name)
                        .attribute_type(ScalarAttributeType::from(stack::TABLE_KEY.attribute_type))
                        .build()
                        .context("building the table's attribute definition")?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(stack::TABLE_KEY.name)
                        .key_type(KeyType::Hash)
                        .build()
                        .context("building the table's key schema")?,
                )
                .set_tags(Some(dynamodb_tags(tags)?))
                .send()
                .await
                .doing(|| format!("creating table {name}"))?;
            let status = output
                .table_description()
                .and_then(|t| t.table_status().cloned());
            if status != Some(TableStatus::Active) {
                wait_until_active(ctx, name).await?;
            }
            ctx.progress.report(ResourceKind::Table, name, "created");
        }
        (Action::Update { fields }, Some(table)) => {
            if action.updates(TableField::BillingMode) {
                ddb.update_table()
                    .table_name(name)
                    .billing_mode(BillingMode::PayPerRequest)
                    .send()
                    .await
                    .doing(|| format!("switching table {name} to on-demand billing"))?;
                wait_until_active(ctx, name).await?;
            }
            if action.updates(TableField::Tags) {
                // Only the tags that are missing or differ: TagResource adds or overwrites those
                // and leaves the others as they are. (moto appends every key it is sent again,
                // even one already there, and then pages its tag listing in a loop.)
                let changed: Vec<Tag> = dynamodb_tags(tags)?
                    .into_iter()
                    .filter(|t| table.tags.get(t.key()).map(String::as_str) != Some(t.value()))
                    .collect();
                if !changed.is_empty() {
                    ddb.tag_resource()
                        .resource_arn(&table.arn)
                        .set_tags(Some(changed))
                        .send()
                        .await
                        .doing(|| format!("tagging table {name}"))?;
                }
            }
            ctx.progress
                .report(ResourceKind::Table, name, updated_message(fields));
        }
        (Action::Update { .. }, None) => {
            anyhow::bail!("internal error: update planned for table {name}, which does not exist")
        }
    }
    Ok(())
}

fn dynamodb_tags(tags: &Tags) -> anyhow::Result<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .context("building a DynamoDB tag")
        })
        .collect()
}

async fn wait_until_active(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    ctx.progress
        .report(ResourceKind::Table, name, "waiting until ACTIVE");
    let ddb = &ctx.clients.dynamodb;
    wait::poll_until(
        || format!("table {name} to become ACTIVE"),
        ctx.settings.wait_timeout,
        ctx.settings.poll_interval,
        || async {
            // Not found right after CreateTable is eventual consistency, not an answer.
            let status = status(ddb, name).await?;
            Ok(match status {
                Some(TableStatus::Active) => wait::Poll::Ready(()),
                other => wait::Poll::NotYet(show_status(other.as_ref())),
            })
        },
    )
    .await
}

async fn wait_until_gone(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
    settings: &Settings,
) -> anyhow::Result<()> {
    wait::poll_until(
        || format!("table {name} to finish deleting"),
        settings.wait_timeout,
        settings.poll_interval,
        || async {
            Ok(match status(ddb, name).await? {
                None => wait::Poll::Ready(()),
                Some(other) => wait::Poll::NotYet(show_status(Some(&other))),
            })
        },
    )
    .await
}

/// The table's status; `None` when DynamoDB does not know the table.
async fn status(ddb: &aws_sdk_dynamodb::Client, name: &str) -> anyhow::Result<Option<TableStatus>> {
    let output = found(ddb.describe_table().table_name(name).send().await, |e| {
        e.is_resource_not_found_exception()
    })
    .doing(|| format!("reading the status of table {name}"))?;
    Ok(output.map(|o| {
        o.table()
            .and_then(|t| t.table_status().cloned())
            .unwrap_or_else(|| TableStatus::from("(no status)"))
    }))
}

fn show_status(status: Option<&TableStatus>) -> String {
    status.map_or_else(
        || "TableStatus (table not found)".to_string(),
        |s| format!("TableStatus {}", s.as_str()),
    )
}

/// Whether the table holds at least one item: a one-item scan (`ItemCount` lags by hours), read
/// consistently, so that an item whose `PutItem` has been answered is always seen (an
/// eventually consistent scan may miss a write of the last second, and `down` deletes the table
/// on that answer).
pub(crate) async fn holds_items(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> anyhow::Result<bool> {
    let output = found(
        ddb.scan()
            .table_name(name)
            .select(Select::Count)
            .limit(1)
            .consistent_read(true)
            .send()
            .await,
        |e| e.is_resource_not_found_exception(),
    )
    .doing(|| format!("checking whether table {name} holds items"))?;
    Ok(output.is_some_and(|o| o.count() > 0 || o.last_evaluated_key().is_some()))
}

/// Deletes the table; `false` when it was already gone. A table still `CREATING` (an `up` cut
/// off right after `CreateTable`) cannot be deleted yet: wait until it is `ACTIVE`, then
/// delete it.
pub(crate) async fn delete(ddb: &aws_sdk_dynamodb::Client, name: &str) -> anyhow::Result<bool> {
    let settings = Settings::default();
    let mut waited = false;
    loop {
        let result = ddb.delete_table().table_name(name).send().await;
        let in_use = result.as_ref().err().and_then(|e| e.as_service_error());
        if !waited && in_use.is_some_and(|e| e.is_resource_in_use_exception()) {
            waited = true;
            wait::poll_until(
                || format!("table {name} to finish creating before deleting it"),
                settings.wait_timeout,
                settings.poll_interval,
                || async {
                    Ok(match status(ddb, name).await? {
                        Some(TableStatus::Creating) | Some(TableStatus::Updating) => {
                            wait::Poll::NotYet("TableStatus CREATING".to_string())
                        }
                        _ => wait::Poll::Ready(()),
                    })
                },
            )
            .await?;
            continue;
        }
        let deleted = found(result, |e| e.is_resource_not_found_exception())
            .doing(|| format!("deleting table {name}"))?;
        return Ok(deleted.is_some());
    }
}
