//! The `AWS_PROXY` integration (payload format 2.0) that hands every route's request to the
//! function.

use anyhow::Context as _;
use aws_sdk_apigatewayv2::types::IntegrationType;

use crate::context::{Ctx, SdkResultExt};
use crate::field::IntegrationField;
use crate::plan::{updated_message, Action, FieldChange};
use crate::ResourceKind;

pub(crate) const PAYLOAD_FORMAT: &str = "2.0";

#[derive(Debug, Clone)]
pub(crate) struct ObservedIntegration {
    pub id: String,
    pub kind: String,
    pub uri: Option<String>,
    pub payload_format: Option<String>,
}

/// Every integration of the API.
pub(crate) async fn observe(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> anyhow::Result<Vec<ObservedIntegration>> {
    let mut integrations = Vec::new();
    let mut next = None;
    loop {
        let page = apigw
            .get_integrations()
            .api_id(api_id)
            .set_next_token(next)
            .send()
            .await
            .doing(|| format!("listing the integrations of HTTP API {api_id}"))?;
        integrations.extend(page.items().iter().filter_map(|i| {
            Some(ObservedIntegration {
                id: i.integration_id()?.to_string(),
                kind: i.integration_type().map_or("", |t| t.as_str()).to_string(),
                uri: i.integration_uri().map(str::to_string),
                payload_format: i.payload_format_version().map(str::to_string),
            })
        }));
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(integrations);
        }
    }
}

/// How `plan` names the integration: `AWS_PROXY -> FUNCTION_ARN`.
pub(crate) fn label(function_arn: &str) -> String {
    format!("AWS_PROXY -> {function_arn}")
}

pub(crate) fn diff(function_arn: &str, found: Option<&ObservedIntegration>) -> Action {
    let Some(found) = found else {
        return Action::Create;
    };
    let mut fields = Vec::new();
    if found.kind != IntegrationType::AwsProxy.as_str() {
        fields.push(FieldChange::new(
            IntegrationField::Type,
            &found.kind,
            IntegrationType::AwsProxy.as_str(),
        ));
    }
    if found.uri.as_deref() != Some(function_arn) {
        fields.push(FieldChange::new(
            IntegrationField::Uri,
            found.uri.as_deref().unwrap_or("(none)"),
            function_arn,
        ));
    }
    if found.payload_format.as_deref() != Some(PAYLOAD_FORMAT) {
        fields.push(FieldChange::new(
            IntegrationField::PayloadFormat,
            found.payload_format.as_deref().unwrap_or("(none)"),
            PAYLOAD_FORMAT,
        ));
    }
    Action::from_fields(fields)
}

/// Creates or updates the integration; returns its id.
pub(crate) async fn apply(
    ctx: &Ctx,
    api_id: &str,
    function_arn: &str,
    found: Option<&ObservedIntegration>,
    action: &Action,
) -> anyhow::Result<String> {
    let apigw = &ctx.clients.apigateway;
    let label = label(function_arn);
    match (action, found) {
        (Action::Create, _) => {
            let output = apigw
                .create_integration()
                .api_id(api_id)
                .integration_type(IntegrationType::AwsProxy)
                .integration_method("POST")
                .integration_uri(function_arn)
                .payload_format_version(PAYLOAD_FORMAT)
                .send()
                .await
                .doing(|| format!("creating the Lambda integration of HTTP API {api_id}"))?;
            let id = output
                .integration_id()
                .context("CreateIntegration returned no id")?
                .to_string();
            ctx.progress
                .report(ResourceKind::Integration, &label, format!("created ({id})"));
            Ok(id)
        }
        (Action::NoChange, Some(found)) => Ok(found.id.clone()),
        (Action::Update { fields }, Some(found)) => {
            apigw
                .update_integration()
                .api_id(api_id)
                .integration_id(&found.id)
                .integration_type(IntegrationType::AwsProxy)
                .integration_method("POST")
                .integration_uri(function_arn)
                .payload_format_version(PAYLOAD_FORMAT)
                .send()
                .await
                .doing(|| format!("updating integration {} of HTTP API {api_id}", found.id))?;
            ctx.progress
                .report(ResourceKind::Integration, &label, updated_message(fields));
            Ok(found.id.clone())
        }
        (_, None) => anyhow::bail!("internal error: integration planned as existing but not found"),
    }
}
