//! The JWT authorizer: issuer, audiences, identity source `$request.header.Authorization`.
//!
//! It is found through the route that references it: listing authorizers is not something every
//! emulator answers (moto's `GetAuthorizers` fails), so the listing only adds what no route
//! references (an authorizer left unattached by an interrupted run, or one added by hand), and
//! when it fails the run says so once and goes on.

use anyhow::Context as _;
use aws_sdk_apigatewayv2::types::{AuthorizerType, JwtConfiguration};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use stack::AuthorizerSettings;

use crate::context::{found, Ctx, SdkResultExt};
use crate::field::AuthorizerField;
use crate::plan::{updated_message, Action, FieldChange};
use crate::ResourceKind;

#[derive(Debug, Clone)]
pub(crate) struct ObservedAuthorizer {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub identity_source: Vec<String>,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
}

/// Reads one authorizer by id; `None` when it does not exist.
pub(crate) async fn observe(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
    authorizer_id: &str,
) -> anyhow::Result<Option<ObservedAuthorizer>> {
    let authorizer = found(
        apigw
            .get_authorizer()
            .api_id(api_id)
            .authorizer_id(authorizer_id)
            .send()
            .await,
        |e| e.is_not_found_exception(),
    )
    .doing(|| format!("reading authorizer {authorizer_id} of HTTP API {api_id}"))?;
    Ok(authorizer.map(|a| ObservedAuthorizer {
        id: authorizer_id.to_string(),
        name: a.name().unwrap_or_default().to_string(),
        kind: a.authorizer_type().map_or("", |t| t.as_str()).to_string(),
        identity_source: a.identity_source().to_vec(),
        issuer: a
            .jwt_configuration()
            .and_then(|j| j.issuer())
            .map(str::to_string),
        audiences: super::sorted(
            a.jwt_configuration()
                .map(|j| j.audience().to_vec())
                .unwrap_or_default()
                .into_iter(),
        ),
    }))
}

/// Attempts of one `GetAuthorizers` page: one short retry at most. Some endpoints never answer
/// the listing (moto: a 500), and every `plan` and `up` reads it; the client's own series of
/// backoffs would cost seconds on each of them for a read whose failure is only a warning.
const LIST_ATTEMPTS: u32 = 2;
/// The pause before that retry (jittered by the SDK).
const LIST_RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// How hard [`list`] tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListEffort {
    /// [`LIST_ATTEMPTS`] attempts: the listing every `plan` and `up` reads beside the routes.
    Quick,
    /// The client's own retry policy: when no route references an authorizer, the listing is
    /// the only way to find one that an interrupted `up` created, and not finding it means
    /// creating a second one.
    Thorough,
}

/// The ids and names of the API's authorizers, every page. An error when the endpoint does not
/// answer the listing (moto answers `GetAuthorizers` with a 500) or pages without end; the
/// caller warns and goes on with the authorizers the routes reference.
pub(crate) async fn list(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
    effort: ListEffort,
) -> anyhow::Result<Vec<(String, String)>> {
    let listing = || format!("listing the authorizers of HTTP API {api_id}");
    let client_retry = apigw.config().retry_config().cloned();
    let retry = match effort {
        ListEffort::Thorough => client_retry.unwrap_or_else(crate::retry_config),
        ListEffort::Quick => {
            // No more attempts than the client's own settings allow (AWS_MAX_ATTEMPTS=1: one).
            let attempts =
                client_retry.map_or(LIST_ATTEMPTS, |r| r.max_attempts().min(LIST_ATTEMPTS));
            aws_smithy_types::retry::RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(LIST_RETRY_BACKOFF)
                .with_max_backoff(LIST_RETRY_BACKOFF)
        }
    };
    let mut listed = Vec::new();
    let mut pages = crate::pages::Pages::new(listing);
    let mut next = None;
    loop {
        let page = apigw
            .get_authorizers()
            .api_id(api_id)
            .set_next_token(next)
            .customize()
            .config_override(
                aws_sdk_apigatewayv2::config::Builder::default().retry_config(retry.clone()),
            )
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("{}: {}", listing(), short_cause(&err)))?;
        listed.extend(page.items().iter().filter_map(|a| {
            Some((
                a.authorizer_id()?.to_string(),
                a.name().unwrap_or_default().to_string(),
            ))
        }));
        next = pages.next(page.next_token())?;
        if next.is_none() {
            return Ok(listed);
        }
    }
}

/// What went wrong, in a few words: this goes into a warning on every run against an endpoint
/// that does not answer the listing, where the SDK's full error (the raw response included)
/// would bury the output.
fn short_cause<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> String {
    match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match (service.err().code(), service.err().message()) {
                (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
                (Some(code), None) => format!("{code} (HTTP {status})"),
                _ => format!("the endpoint answered HTTP {status}"),
            }
        }
        SdkError::ResponseError(response) => format!(
            "the endpoint's answer (HTTP {}) could not be read",
            response.raw().status().as_u16()
        ),
        SdkError::TimeoutError(_) => "no answer within the timeout".to_string(),
        SdkError::DispatchFailure(_) => "the endpoint could not be reached".to_string(),
        _ => "the request could not be sent".to_string(),
    }
}

fn jwt_configuration(auth: &AuthorizerSettings) -> JwtConfiguration {
    JwtConfiguration::builder()
        .issuer(auth.issuer.as_str())
        .set_audience(Some(auth.audiences.clone()))
        .build()
}

pub(crate) fn diff(
    name: &str,
    auth: &AuthorizerSettings,
    found: Option<&ObservedAuthorizer>,
) -> Action {
    let Some(found) = found else {
        return Action::Create;
    };
    let mut fields = Vec::new();
    if found.kind != AuthorizerType::Jwt.as_str() {
        fields.push(FieldChange::new(
            AuthorizerField::Type,
            &found.kind,
            AuthorizerType::Jwt.as_str(),
        ));
    }
    if found.name != name {
        fields.push(FieldChange::new(AuthorizerField::Name, &found.name, name));
    }
    let identity = vec![auth.identity_source().to_string()];
    if found.identity_source != identity {
        fields.push(FieldChange::new(
            AuthorizerField::IdentitySource,
            super::list(&found.identity_source),
            super::list(&identity),
        ));
    }
    if found.issuer.as_deref() != Some(auth.issuer.as_str()) {
        fields.push(FieldChange::new(
            AuthorizerField::Issuer,
            found.issuer.as_deref().unwrap_or("(none)"),
            auth.issuer.as_str(),
        ));
    }
    if found.audiences != auth.audiences {
        fields.push(FieldChange::new(
            AuthorizerField::Audience,
            super::list(&found.audiences),
            super::list(&auth.audiences),
        ));
    }
    Action::from_fields(fields)
}

/// Deletes an authorizer that is not the stack's (drift); `false` when it was already gone.
pub(crate) async fn delete(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
    authorizer_id: &str,
) -> anyhow::Result<bool> {
    let deleted = found(
        apigw
            .delete_authorizer()
            .api_id(api_id)
            .authorizer_id(authorizer_id)
            .send()
            .await,
        |e| e.is_not_found_exception(),
    )
    .doing(|| format!("deleting authorizer {authorizer_id} of HTTP API {api_id}"))?;
    Ok(deleted.is_some())
}

/// Creates or updates the authorizer; returns its id. One `UpdateAuthorizer` sets every field.
pub(crate) async fn apply(
    ctx: &Ctx,
    name: &str,
    auth: &AuthorizerSettings,
    api_id: &str,
    found: Option<&ObservedAuthorizer>,
    action: &Action,
) -> anyhow::Result<String> {
    let apigw = &ctx.clients.apigateway;
    match (action, found) {
        (Action::Create, _) => {
            let output = apigw
                .create_authorizer()
                .api_id(api_id)
                .name(name)
                .authorizer_type(AuthorizerType::Jwt)
                .identity_source(auth.identity_source())
                .jwt_configuration(jwt_configuration(auth))
                .send()
                .await
                .doing(|| format!("creating JWT authorizer {name} on HTTP API {api_id}"))?;
            let id = output
                .authorizer_id()
                .with_context(|| format!("CreateAuthorizer {name} returned no id"))?
                .to_string();
            ctx.progress
                .report(ResourceKind::Authorizer, name, format!("created ({id})"));
            Ok(id)
        }
        (Action::NoChange, Some(found)) => Ok(found.id.clone()),
        (Action::Update { fields }, Some(found)) => {
            apigw
                .update_authorizer()
                .api_id(api_id)
                .authorizer_id(&found.id)
                .name(name)
                .authorizer_type(AuthorizerType::Jwt)
                .identity_source(auth.identity_source())
                .jwt_configuration(jwt_configuration(auth))
                .send()
                .await
                .doing(|| {
                    format!(
                        "updating JWT authorizer {name} ({}) on HTTP API {api_id}",
                        found.id
                    )
                })?;
            ctx.progress
                .report(ResourceKind::Authorizer, name, updated_message(fields));
            Ok(found.id.clone())
        }
        (_, None) => {
            anyhow::bail!("internal error: authorizer {name} planned as existing but not found")
        }
    }
}
