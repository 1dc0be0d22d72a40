//! The function's log group `/aws/lambda/<function>`, created by us with a retention so that
//! `down` owns and removes it (Lambda would create it on first write, untagged and kept forever).

use std::collections::BTreeMap;

use stack::Tags;

use crate::context::{found, Ctx, SdkResultExt};
use crate::field::LogGroupField;
use crate::plan::{tag_change, updated_message, Action, FieldChange};
use crate::ResourceKind;

#[derive(Debug, Clone)]
pub(crate) struct ObservedLogGroup {
    /// The ARN without the trailing `:*`, as the tagging calls want it.
    pub arn: String,
    pub retention_days: Option<i32>,
    pub tags: BTreeMap<String, String>,
}

pub(crate) async fn observe(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
) -> anyhow::Result<Option<ObservedLogGroup>> {
    // The name is a prefix filter: look for the exact name among the (few) matches.
    let mut next = None;
    let group = loop {
        let page = logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .set_next_token(next)
            .send()
            .await
            .doing(|| format!("describing log group {name}"))?;
        if let Some(group) = page
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name))
        {
            break group.clone();
        }
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(None);
        }
    };
    let arn = group
        .log_group_arn()
        .map(str::to_string)
        .or_else(|| group.arn().map(|a| a.trim_end_matches(":*").to_string()))
        .ok_or_else(|| anyhow::anyhow!("DescribeLogGroups returned no ARN for {name}"))?;
    let tags = found(
        logs.list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await,
        |e| e.is_resource_not_found_exception(),
    )
    .doing(|| format!("listing tags of log group {name}"))?
    .and_then(|o| o.tags().cloned())
    .unwrap_or_default()
    .into_iter()
    .collect();
    Ok(Some(ObservedLogGroup {
        arn,
        retention_days: group.retention_in_days(),
        tags,
    }))
}

pub(crate) fn diff(
    retention_days: i32,
    tags: &Tags,
    observed: Option<&ObservedLogGroup>,
) -> Action {
    let Some(group) = observed else {
        return Action::Create;
    };
    let mut fields = Vec::new();
    if group.retention_days != Some(retention_days) {
        fields.push(FieldChange::new(
            LogGroupField::Retention,
            group
                .retention_days
                .map_or_else(|| "never expire".to_string(), |d| d.to_string()),
            retention_days,
        ));
    }
    fields.extend(tag_change(LogGroupField::Tags, tags, &group.tags));
    Action::from_fields(fields)
}

pub(crate) async fn apply(
    ctx: &Ctx,
    name: &str,
    retention_days: i32,
    tags: &Tags,
    observed: Option<&ObservedLogGroup>,
    action: &Action,
) -> anyhow::Result<()> {
    let logs = &ctx.clients.logs;
    let put_retention = || async {
        logs.put_retention_policy()
            .log_group_name(name)
            .retention_in_days(retention_days)
            .send()
            .await
            .doing(|| format!("setting the retention of log group {name}"))
    };
    match action {
        Action::NoChange => {}
        Action::Create => {
            logs.create_log_group()
                .log_group_name(name)
                .set_tags(Some(tags.to_hash_map()))
                .send()
                .await
                .doing(|| format!("creating log group {name}"))?;
            put_retention().await?;
            ctx.progress.report(ResourceKind::LogGroup, name, "created");
        }
        Action::Update { fields } => {
            if action.updates(LogGroupField::Retention) {
                put_retention().await?;
            }
            if action.updates(LogGroupField::Tags) {
                let arn = observed.map(|g| g.arn.clone()).ok_or_else(|| {
                    anyhow::anyhow!("internal error: tagging missing log group {name}")
                })?;
                logs.tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(tags.to_hash_map()))
                    .send()
                    .await
                    .doing(|| format!("tagging log group {name}"))?;
            }
            ctx.progress
                .report(ResourceKind::LogGroup, name, updated_message(fields));
        }
    }
    Ok(())
}

/// Deletes the log group; `false` when it was already gone.
pub(crate) async fn delete(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
) -> anyhow::Result<bool> {
    let deleted = found(
        logs.delete_log_group().log_group_name(name).send().await,
        |e| e.is_resource_not_found_exception(),
    )
    .doing(|| format!("deleting log group {name}"))?;
    Ok(deleted.is_some())
}
