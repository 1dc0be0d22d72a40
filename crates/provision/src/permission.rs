//! The function's resource policy statement that lets API Gateway invoke it, scoped to this API
//! and path (`arn:aws:execute-api:REGION:ACCOUNT:API/*/*/wish-list-service`).

use serde_json::Value;

use crate::context::{found, Ctx, SdkResultExt};
use crate::field::PermissionField;
use crate::plan::{updated_message, Action, FieldChange};
use crate::ResourceKind;

pub(crate) const PRINCIPAL: &str = "apigateway.amazonaws.com";
pub(crate) const ACTION: &str = "lambda:InvokeFunction";

/// The statement with the stack's statement id in the function's resource policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObservedPermission {
    pub principal: Option<String>,
    pub action: Option<String>,
    pub source_arn: Option<String>,
}

/// The function's resource policy: the stack's statement, and the ids of every other one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ObservedPolicy {
    pub ours: Option<ObservedPermission>,
    /// Statement ids other than the stack's (drift: `up` removes them).
    pub others: Vec<String>,
}

pub(crate) async fn observe(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    statement_id: &str,
) -> anyhow::Result<ObservedPolicy> {
    let Some(output) = found(
        lambda.get_policy().function_name(function).send().await,
        |e| e.is_resource_not_found_exception(),
    )
    .doing(|| format!("reading the resource policy of function {function}"))?
    else {
        return Ok(ObservedPolicy::default());
    };
    let Some(policy) = output
        .policy()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
    else {
        return Ok(ObservedPolicy::default());
    };
    let mut others: Vec<String> = statements(&policy)
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .filter(|sid| *sid != statement_id)
        .map(str::to_string)
        .collect();
    others.sort();
    Ok(ObservedPolicy {
        ours: statement(&policy, statement_id),
        others,
    })
}

fn statements(policy: &Value) -> Vec<Value> {
    match &policy["Statement"] {
        Value::Array(list) => list.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        _ => Vec::new(),
    }
}

fn statement(policy: &Value, statement_id: &str) -> Option<ObservedPermission> {
    let statements = statements(policy);
    let found = statements
        .into_iter()
        .find(|s| s["Sid"].as_str() == Some(statement_id))?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    Some(ObservedPermission {
        principal: text(&found["Principal"]["Service"]).or_else(|| text(&found["Principal"])),
        action: text(&found["Action"]),
        source_arn: text(&found["Condition"]["ArnLike"]["AWS:SourceArn"]),
    })
}

pub(crate) fn diff(source_arn: &str, observed: Option<&ObservedPermission>) -> Action {
    let Some(found) = observed else {
        return Action::Create;
    };
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_string());
    let mut fields = Vec::new();
    if found.source_arn.as_deref() != Some(source_arn) {
        fields.push(FieldChange::new(
            PermissionField::SourceArn,
            show(&found.source_arn),
            source_arn,
        ));
    }
    if found.principal.as_deref() != Some(PRINCIPAL) {
        fields.push(FieldChange::new(
            PermissionField::Principal,
            show(&found.principal),
            PRINCIPAL,
        ));
    }
    if found.action.as_deref() != Some(ACTION) {
        fields.push(FieldChange::new(
            PermissionField::Action,
            show(&found.action),
            ACTION,
        ));
    }
    Action::from_fields(fields)
}

/// Adds the statement, replacing a different one with the same id (statements cannot be edited).
pub(crate) async fn apply(
    ctx: &Ctx,
    function: &str,
    statement_id: &str,
    source_arn: &str,
    action: &Action,
) -> anyhow::Result<()> {
    let lambda = &ctx.clients.lambda;
    if !action.is_change() {
        return Ok(());
    }
    if matches!(action, Action::Update { .. }) {
        remove(lambda, function, statement_id).await?;
    }
    lambda
        .add_permission()
        .function_name(function)
        .statement_id(statement_id)
        .action(ACTION)
        .principal(PRINCIPAL)
        .source_arn(source_arn)
        .send()
        .await
        .doing(|| format!("allowing API Gateway to invoke function {function} ({statement_id})"))?;
    let what = match action {
        Action::Update { fields } => updated_message(fields),
        _ => "created".to_string(),
    };
    ctx.progress
        .report(ResourceKind::Permission, statement_id, what);
    Ok(())
}

/// Removes the statement; `false` when it (or the function) was already gone.
pub(crate) async fn remove(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    statement_id: &str,
) -> anyhow::Result<bool> {
    let removed = found(
        lambda
            .remove_permission()
            .function_name(function)
            .statement_id(statement_id)
            .send()
            .await,
        |e| e.is_resource_not_found_exception(),
    )
    .doing(|| format!("removing permission {statement_id} from function {function}"))?;
    Ok(removed.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_stack_statement_among_others() {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "other", "Action": "lambda:InvokeFunction", "Principal": {"Service": "s3.amazonaws.com"}},
                {"Sid": "wishctl-a-apigw", "Action": "lambda:InvokeFunction",
                 "Principal": {"Service": "apigateway.amazonaws.com"},
                 "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:r:1:abc/*/*/wish-list-service"}}}
            ]
        });
        let found = statement(&policy, "wishctl-a-apigw").unwrap();
        assert_eq!(found.principal.as_deref(), Some(PRINCIPAL));
        assert_eq!(
            diff(
                "arn:aws:execute-api:r:1:abc/*/*/wish-list-service",
                Some(&found)
            ),
            Action::NoChange
        );
        assert!(diff(
            "arn:aws:execute-api:r:1:xyz/*/*/wish-list-service",
            Some(&found)
        )
        .is_change());
        assert!(statement(&policy, "missing").is_none());
    }

    #[test]
    fn a_policy_with_one_statement_as_an_object_is_read_too() {
        // IAM-style documents may hold a single statement without the array.
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": {"Sid": "wishctl-a-apigw", "Action": "lambda:InvokeFunction",
                          "Principal": {"Service": "apigateway.amazonaws.com"}}
        });
        let found = statement(&policy, "wishctl-a-apigw").unwrap();
        assert_eq!(found.action.as_deref(), Some(ACTION));
    }
}
