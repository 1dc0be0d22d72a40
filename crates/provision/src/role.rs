//! The function's IAM role (path `/wishctl/`, trusted by Lambda only) and its inline
//! least-privilege policy.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_iam::types::Tag;
use serde_json::Value;
use stack::Tags;

use crate::context::{found, Ctx, SdkResultExt};
use crate::field::{RoleField, RolePolicyField};
use crate::pages::Pages;
use crate::plan::{tag_change, updated_message, Action, FieldChange};
use crate::ResourceKind;

#[derive(Debug, Clone)]
pub(crate) struct ObservedRole {
    pub arn: String,
    pub trust_policy: Option<Value>,
    pub tags: BTreeMap<String, String>,
    /// The stack's inline policy, when the role has it.
    pub policy: Option<Value>,
    /// ARNs of managed policies attached to the role (wishctl attaches none: drift).
    pub managed_policies: Vec<String>,
    /// Names of inline policies other than the stack's (drift).
    pub other_inline: Vec<String>,
}

/// Managed policies attached to the role and the names of its inline policies, every page of
/// both listings (IAM allows 20 managed and a few hundred inline policies per role; the page
/// guard stops an endpoint that never stops paginating, naming the listing).
async fn attached_and_inline(
    iam: &aws_sdk_iam::Client,
    role: &str,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    // The two listings are independent: side by side, one round trip instead of two.
    let managed = async {
        let managed_listing = || format!("listing the managed policies attached to role {role}");
        let mut managed = Vec::new();
        let mut pages = Pages::new(managed_listing);
        let mut marker = None;
        loop {
            let page = iam
                .list_attached_role_policies()
                .role_name(role)
                .set_marker(marker)
                .send()
                .await
                .doing(managed_listing)?;
            managed.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string)),
            );
            // IAM's marker only means "more" when the page says it is truncated.
            marker = pages.next(page.marker().filter(|_| page.is_truncated()))?;
            if marker.is_none() {
                break;
            }
        }
        managed.sort();
        anyhow::Ok(managed)
    };
    let inline = async {
        let inline_listing = || format!("listing the inline policies of role {role}");
        let mut inline = Vec::new();
        let mut pages = Pages::new(inline_listing);
        let mut marker = None;
        loop {
            let page = iam
                .list_role_policies()
                .role_name(role)
                .set_marker(marker)
                .send()
                .await
                .doing(inline_listing)?;
            inline.extend(page.policy_names().iter().cloned());
            marker = pages.next(page.marker().filter(|_| page.is_truncated()))?;
            if marker.is_none() {
                break;
            }
        }
        inline.sort();
        anyhow::Ok(inline)
    };
    tokio::try_join!(crate::calls::fork(managed), crate::calls::fork(inline))
}

/// Reads the role and the stack's inline policy; with `drift`, also what else is attached to
/// it (`down` needs neither listing: a role that has more is emptied when it is deleted).
pub(crate) async fn observe(
    iam: &aws_sdk_iam::Client,
    role: &str,
    policy_name: &str,
    drift: bool,
) -> anyhow::Result<Option<ObservedRole>> {
    let Some(output) = found(iam.get_role().role_name(role).send().await, |e| {
        e.is_no_such_entity_exception()
    })
    .doing(|| format!("reading role {role}"))?
    else {
        return Ok(None);
    };
    let found_role = output
        .role()
        .with_context(|| format!("GetRole {role} returned no role"))?;
    let tags = found_role
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    let trust_policy = found_role
        .assume_role_policy_document()
        .and_then(parse_policy_document);
    let policy = async {
        let policy = found(
            iam.get_role_policy()
                .role_name(role)
                .policy_name(policy_name)
                .send()
                .await,
            |e| e.is_no_such_entity_exception(),
        )
        .doing(|| format!("reading policy {policy_name} of role {role}"))?
        .and_then(|o| parse_policy_document(o.policy_document()));
        anyhow::Ok(policy)
    };
    let listings = async {
        if drift {
            attached_and_inline(iam, role).await
        } else {
            Ok((Vec::new(), Vec::new()))
        }
    };
    let (policy, (managed_policies, inline)) =
        tokio::try_join!(crate::calls::fork(policy), crate::calls::fork(listings),)?;
    Ok(Some(ObservedRole {
        arn: found_role.arn().to_string(),
        trust_policy,
        tags,
        policy,
        managed_policies,
        other_inline: inline.into_iter().filter(|p| p != policy_name).collect(),
    }))
}

/// IAM returns policy documents URL-encoded (RFC 3986); some emulators return them as is.
pub(crate) fn parse_policy_document(text: &str) -> Option<Value> {
    serde_json::from_str(text)
        .ok()
        .or_else(|| serde_json::from_str(&percent_decode(text)?).ok())
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "(none)".to_string(), Value::to_string)
}

pub(crate) fn diff_role(tags: &Tags, observed: Option<&ObservedRole>) -> Action {
    let Some(role) = observed else {
        return Action::Create;
    };
    let trust = stack::trust_policy();
    let mut fields = Vec::new();
    if role.trust_policy.as_ref() != Some(&trust) {
        fields.push(FieldChange::new(
            RoleField::TrustPolicy,
            show(role.trust_policy.as_ref()),
            trust,
        ));
    }
    fields.extend(tag_change(RoleField::Tags, tags, &role.tags));
    if !role.managed_policies.is_empty() {
        fields.push(FieldChange::new(
            RoleField::ManagedPolicies,
            format!("[{}]", role.managed_policies.join(" ")),
            "(none)",
        ));
    }
    if !role.other_inline.is_empty() {
        fields.push(FieldChange::new(
            RoleField::InlinePolicies,
            format!("[{}]", role.other_inline.join(" ")),
            "(none)",
        ));
    }
    Action::from_fields(fields)
}

pub(crate) fn diff_policy(desired: &Value, observed: Option<&ObservedRole>) -> Action {
    match observed.and_then(|r| r.policy.as_ref()) {
        None => Action::Create,
        Some(found) if found == desired => Action::NoChange,
        Some(found) => Action::Update {
            fields: vec![FieldChange::new(RolePolicyField::Document, found, desired)],
        },
    }
}

/// Creates or updates the role; returns its ARN.
pub(crate) async fn apply_role(
    ctx: &Ctx,
    role: &str,
    tags: &Tags,
    observed: Option<&ObservedRole>,
    action: &Action,
) -> anyhow::Result<String> {
    let iam = &ctx.clients.iam;
    let trust = stack::trust_policy().to_string();
    match (action, observed) {
        (Action::Create, _) => {
            let output = iam
                .create_role()
                .role_name(role)
                .path(stack::ROLE_PATH)
                .assume_role_policy_document(trust)
                .description("Runs the wish-list Lambda function (managed by wishctl)")
                .set_tags(Some(iam_tags(tags)?))
                .send()
                .await
                .doing(|| format!("creating role {role}"))?;
            ctx.progress.report(ResourceKind::Role, role, "created");
            Ok(output
                .role()
                .with_context(|| format!("CreateRole {role} returned no role"))?
                .arn()
                .to_string())
        }
        (Action::NoChange, Some(found)) => Ok(found.arn.clone()),
        (Action::Update { fields }, Some(found)) => {
            if action.updates(RoleField::TrustPolicy) {
                iam.update_assume_role_policy()
                    .role_name(role)
                    .policy_document(trust)
                    .send()
                    .await
                    .doing(|| format!("updating the trust policy of role {role}"))?;
            }
            if action.updates(RoleField::Tags) {
                iam.tag_role()
                    .role_name(role)
                    .set_tags(Some(iam_tags(tags)?))
                    .send()
                    .await
                    .doing(|| format!("tagging role {role}"))?;
            }
            if action.updates(RoleField::ManagedPolicies) {
                for arn in &found.managed_policies {
                    detach_policy(iam, role, arn).await?;
                    ctx.progress.report(
                        ResourceKind::Role,
                        role,
                        format!("detached managed policy {arn} (not part of the stack)"),
                    );
                }
            }
            if action.updates(RoleField::InlinePolicies) {
                for name in &found.other_inline {
                    delete_policy(iam, role, name).await?;
                    ctx.progress.report(
                        ResourceKind::Role,
                        role,
                        format!("deleted inline policy {name} (not part of the stack)"),
                    );
                }
            }
            ctx.progress
                .report(ResourceKind::Role, role, updated_message(fields));
            Ok(found.arn.clone())
        }
        (_, None) => anyhow::bail!("internal error: role {role} planned as existing but not found"),
    }
}

pub(crate) async fn apply_policy(
    ctx: &Ctx,
    role: &str,
    policy_name: &str,
    document: &Value,
    action: &Action,
) -> anyhow::Result<()> {
    if !action.is_change() {
        return Ok(());
    }
    ctx.clients
        .iam
        .put_role_policy()
        .role_name(role)
        .policy_name(policy_name)
        .policy_document(document.to_string())
        .send()
        .await
        .doing(|| format!("putting policy {policy_name} on role {role}"))?;
    let what = match action {
        Action::Create => "created".to_string(),
        Action::Update { fields } => updated_message(fields),
        Action::NoChange => "unchanged".to_string(),
    };
    ctx.progress
        .report(ResourceKind::RolePolicy, policy_name, what);
    Ok(())
}

fn iam_tags(tags: &Tags) -> anyhow::Result<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .context("building an IAM tag")
        })
        .collect()
}

/// Detaches the managed policy `arn` from `role`.
async fn detach_policy(iam: &aws_sdk_iam::Client, role: &str, arn: &str) -> anyhow::Result<()> {
    iam.detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await
        .doing(|| format!("detaching policy {arn} from role {role}"))?;
    Ok(())
}

/// Deletes the stack's inline policy; `false` when it was already gone.
pub(crate) async fn delete_policy(
    iam: &aws_sdk_iam::Client,
    role: &str,
    policy_name: &str,
) -> anyhow::Result<bool> {
    let deleted = found(
        iam.delete_role_policy()
            .role_name(role)
            .policy_name(policy_name)
            .send()
            .await,
        |e| e.is_no_such_entity_exception(),
    )
    .doing(|| format!("deleting policy {policy_name} of role {role}"))?;
    Ok(deleted.is_some())
}

/// Deletes the role; `false` when it was already gone. Policies someone else put on the role
/// would block the delete (`DeleteConflict`): they are removed with it, since the role is ours.
pub(crate) async fn delete_role(iam: &aws_sdk_iam::Client, role: &str) -> anyhow::Result<bool> {
    match iam.delete_role().role_name(role).send().await {
        Ok(_) => return Ok(true),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            return Ok(false)
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_delete_conflict_exception()) => {}
        Err(err) => return Err(err).doing(|| format!("deleting role {role}")),
    }
    let (attached, inline) = attached_and_inline(iam, role).await?;
    for policy in &inline {
        delete_policy(iam, role, policy).await?;
    }
    for arn in &attached {
        detach_policy(iam, role, arn).await?;
    }
    let deleted = found(iam.delete_role().role_name(role).send().await, |e| {
        e.is_no_such_entity_exception()
    })
    .doing(|| format!("deleting role {role}"))?;
    Ok(deleted.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_are_read_url_encoded_or_plain() {
        let plain = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(parse_policy_document(plain), parse_policy_document(encoded));
        assert!(parse_policy_document(plain).is_some());
        assert_eq!(parse_policy_document("%7"), None);
        assert_eq!(parse_policy_document("not json"), None);
    }
}
