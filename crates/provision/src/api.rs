//! The HTTP API and what hangs off it: the JWT authorizer, the `$default` stage with
//! auto-deploy, the `AWS_PROXY` integration (payload 2.0) and the routes of `stack::ROUTES`,
//! plus the API's own CORS configuration.
//!
//! APIs have no unique names, so ours is the one named `wishctl-NAME` *and* tagged for the
//! stack. The authorizer is found through the route that references it (listing authorizers is
//! not something every emulator answers).

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_apigatewayv2::types::{
    AuthorizationType, AuthorizerType, Cors, IntegrationType, JwtConfiguration, ProtocolType,
};
use stack::{AuthorizerSettings, CorsSettings, Route, RouteAuth, Tags, ROUTES};

use crate::calls::fork;
use crate::context::{found, Ctx, Env, SdkResultExt};
use crate::plan::{tag_change, updated_message, Action, Change, FieldChange, FIELD_TAGS};
use crate::ResourceKind;

pub(crate) const STAGE: &str = "$default";
pub(crate) const PAYLOAD_FORMAT: &str = "2.0";
const FIELD_CORS: &str = "cors";
const FIELD_ISSUER: &str = "issuer";
const FIELD_AUDIENCE: &str = "audience";
const FIELD_IDENTITY: &str = "identity source";
const FIELD_TYPE: &str = "type";
const FIELD_NAME: &str = "name";
const FIELD_AUTO_DEPLOY: &str = "auto deploy";
const FIELD_URI: &str = "uri";
const FIELD_PAYLOAD: &str = "payload format";
const FIELD_TARGET: &str = "target";
const FIELD_AUTH: &str = "authorization";
const FIELD_AUTHORIZER: &str = "authorizer";
const FIELD_SCOPES: &str = "scopes";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObservedCors {
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub headers: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ObservedRoute {
    pub id: String,
    pub key: String,
    pub authorization: String,
    pub authorizer_id: Option<String>,
    pub scopes: Vec<String>,
    pub target: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ObservedIntegration {
    pub id: String,
    pub kind: String,
    pub uri: Option<String>,
    pub payload_format: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ObservedAuthorizer {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub identity_source: Vec<String>,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ObservedStage {
    pub auto_deploy: bool,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ObservedApi {
    pub id: String,
    pub tags: BTreeMap<String, String>,
    pub cors: Option<ObservedCors>,
    pub routes: Vec<ObservedRoute>,
    pub integrations: Vec<ObservedIntegration>,
    pub authorizer: Option<ObservedAuthorizer>,
    pub stage: Option<ObservedStage>,
}

impl ObservedApi {
    fn route(&self, key: &str) -> Option<&ObservedRoute> {
        self.routes.iter().find(|r| r.key == key)
    }

    /// The integration our routes point at, else one that targets the function.
    fn integration(&self, function_arn: &str) -> Option<&ObservedIntegration> {
        let referenced = self.routes.iter().find_map(|r| {
            let id = r.target.as_deref()?.strip_prefix("integrations/")?;
            self.integrations.iter().find(|i| i.id == id)
        });
        referenced.or_else(|| {
            self.integrations
                .iter()
                .find(|i| i.uri.as_deref() == Some(function_arn))
        })
    }
}

/// Every HTTP API carrying the stack's name.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiObservation {
    /// The stack's API (the oldest, if a cut-off run left several), read with its children.
    pub api: Option<ObservedApi>,
    /// Further APIs tagged for the stack; `down` removes them too.
    pub duplicates: Vec<String>,
    /// APIs with the stack's name that are not tagged for it.
    pub foreign: Vec<String>,
}

/// Finds the stack's API by name and tag; with `children`, also reads its routes,
/// integrations, stage and authorizer (`down` only needs the id: the children go with the API).
pub(crate) async fn observe(
    apigw: &aws_sdk_apigatewayv2::Client,
    name: &str,
    stack: &stack::StackName,
    children: bool,
) -> anyhow::Result<ApiObservation> {
    let mut named = Vec::new();
    let mut next = None;
    loop {
        let page = apigw
            .get_apis()
            .set_next_token(next)
            .send()
            .await
            .doing(|| format!("listing HTTP APIs to find {name}"))?;
        named.extend(
            page.items()
                .iter()
                .filter(|a| a.name() == Some(name))
                .cloned(),
        );
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    let (mut owned, foreign): (Vec<_>, Vec<_>) = named.into_iter().partition(|api| {
        api.tags().is_some_and(|tags| {
            Tags::owned_by(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), stack)
        })
    });
    owned.sort_by(|a, b| (a.created_date(), a.api_id()).cmp(&(b.created_date(), b.api_id())));
    let mut observation = ApiObservation {
        api: None,
        duplicates: owned
            .iter()
            .skip(1)
            .filter_map(|a| a.api_id().map(str::to_string))
            .collect(),
        foreign: foreign
            .iter()
            .filter_map(|a| a.api_id().map(str::to_string))
            .collect(),
    };
    let Some(api) = owned.into_iter().next() else {
        return Ok(observation);
    };
    let id = api
        .api_id()
        .with_context(|| format!("GetApis returned API {name} without an id"))?
        .to_string();
    let (routes, integrations, stage) = if children {
        tokio::try_join!(
            fork(routes(apigw, &id)),
            fork(integrations(apigw, &id)),
            fork(stage(apigw, &id)),
        )?
    } else {
        (Vec::new(), Vec::new(), None)
    };
    let authorizer_id = routes
        .iter()
        .filter(|r| r.authorization == AuthorizationType::Jwt.as_str())
        .find_map(|r| r.authorizer_id.clone());
    let authorizer = match authorizer_id {
        Some(authorizer_id) => authorizer(apigw, &id, &authorizer_id).await?,
        // No JWT route points at an authorizer: normally a new API, but an `up` killed between
        // creating the authorizer and attaching it leaves one behind. Adopt it by name rather
        // than create a second one.
        None if children => unattached_authorizer(apigw, &id, &stack.resources().authorizer).await,
        None => None,
    };
    observation.api = Some(ObservedApi {
        tags: api
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        cors: api.cors_configuration().map(|c| ObservedCors {
            origins: sorted(c.allow_origins().iter().cloned()),
            methods: sorted(c.allow_methods().iter().map(|m| m.to_ascii_uppercase())),
            headers: sorted(c.allow_headers().iter().map(|h| h.to_ascii_lowercase())),
        }),
        id,
        routes,
        integrations,
        authorizer,
        stage,
    });
    Ok(observation)
}

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.collect();
    items.sort();
    items.dedup();
    items
}

async fn routes(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> anyhow::Result<Vec<ObservedRoute>> {
    let mut routes = Vec::new();
    let mut next = None;
    loop {
        let page = apigw
            .get_routes()
            .api_id(api_id)
            .set_next_token(next)
            .send()
            .await
            .doing(|| format!("listing the routes of HTTP API {api_id}"))?;
        routes.extend(page.items().iter().filter_map(|r| {
            Some(ObservedRoute {
                id: r.route_id()?.to_string(),
                key: r.route_key()?.to_string(),
                authorization: r
                    .authorization_type()
                    .map_or("NONE", |a| a.as_str())
                    .to_string(),
                authorizer_id: r.authorizer_id().map(str::to_string),
                scopes: sorted(r.authorization_scopes().iter().cloned()),
                target: r.target().map(str::to_string),
            })
        }));
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(routes);
        }
    }
}

async fn integrations(
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

async fn stage(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> anyhow::Result<Option<ObservedStage>> {
    let stage = found(
        apigw
            .get_stage()
            .api_id(api_id)
            .stage_name(STAGE)
            .send()
            .await,
        |e| e.is_not_found_exception(),
    )
    .doing(|| format!("reading stage {STAGE} of HTTP API {api_id}"))?;
    Ok(stage.map(|s| ObservedStage {
        auto_deploy: s.auto_deploy().unwrap_or(false),
        tags: s
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }))
}

/// The stack's authorizer found by listing the API's authorizers. Best effort: moto answers
/// `GetAuthorizers` with a 500, and a failed lookup only means a new authorizer is created (the
/// old one still goes with the API on `down`).
async fn unattached_authorizer(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
    authorizer_name: &str,
) -> Option<ObservedAuthorizer> {
    let listed = apigw.get_authorizers().api_id(api_id).send().await;
    let id = match listed {
        Ok(page) => page
            .items()
            .iter()
            .find(|a| a.name() == Some(authorizer_name))
            .and_then(|a| a.authorizer_id().map(str::to_string))?,
        Err(err) => {
            tracing::debug!(api_id, error = %aws_sdk_apigatewayv2::error::DisplayErrorContext(&err), "listing authorizers failed");
            return None;
        }
    };
    authorizer(apigw, api_id, &id).await.ok().flatten()
}

async fn authorizer(
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
        audiences: sorted(
            a.jwt_configuration()
                .map(|j| j.audience().to_vec())
                .unwrap_or_default()
                .into_iter(),
        ),
    }))
}

/// What the API and its children should look like.
#[derive(Debug, Clone)]
pub(crate) struct DesiredApi<'a> {
    pub name: &'a str,
    pub authorizer_name: &'a str,
    pub tags: &'a Tags,
    pub cors: &'a CorsSettings,
    pub auth: &'a AuthorizerSettings,
    /// The function the integration invokes (its unqualified ARN).
    pub function_arn: String,
}

impl DesiredApi<'_> {
    fn cors(&self) -> Option<ObservedCors> {
        self.cors.is_enabled().then(|| ObservedCors {
            origins: self.cors.allow_origins.clone(),
            methods: sorted(CorsSettings::ALLOW_METHODS.iter().map(|m| m.to_string())),
            headers: sorted(CorsSettings::ALLOW_HEADERS.iter().map(|h| h.to_string())),
        })
    }

    fn sdk_cors(&self) -> Option<Cors> {
        self.cors().map(|c| {
            Cors::builder()
                .set_allow_origins(Some(c.origins))
                .set_allow_methods(Some(c.methods))
                .set_allow_headers(Some(c.headers))
                .build()
        })
    }

    fn jwt_configuration(&self) -> JwtConfiguration {
        JwtConfiguration::builder()
            .issuer(self.auth.issuer.as_str())
            .set_audience(Some(self.auth.audiences.clone()))
            .build()
    }
}

fn show_cors(cors: Option<&ObservedCors>) -> String {
    match cors {
        None => "(none)".to_string(),
        Some(c) => format!(
            "origins [{}] methods [{}] headers [{}]",
            c.origins.join(" "),
            c.methods.join(" "),
            c.headers.join(" ")
        ),
    }
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Per child of the API, what `up` does.
#[derive(Debug, Clone)]
pub(crate) struct ApiPlan {
    pub api: Action,
    pub authorizer: Action,
    pub stage: Action,
    pub integration: Action,
    pub routes: Vec<(&'static Route, Action)>,
}

impl ApiPlan {
    pub fn changes(&self, desired: &DesiredApi<'_>) -> Vec<Change> {
        let mut changes = vec![
            Change {
                kind: ResourceKind::Api,
                name: desired.name.to_string(),
                action: self.api.clone(),
            },
            Change {
                kind: ResourceKind::Authorizer,
                name: desired.authorizer_name.to_string(),
                action: self.authorizer.clone(),
            },
            Change {
                kind: ResourceKind::Stage,
                name: STAGE.to_string(),
                action: self.stage.clone(),
            },
            Change {
                kind: ResourceKind::Integration,
                name: format!("AWS_PROXY -> {}", desired.function_arn),
                action: self.integration.clone(),
            },
        ];
        changes.extend(self.routes.iter().map(|(route, action)| Change {
            kind: ResourceKind::Route,
            name: route.key(),
            action: action.clone(),
        }));
        changes
    }
}

pub(crate) fn diff(desired: &DesiredApi<'_>, observed: Option<&ObservedApi>) -> ApiPlan {
    let Some(api) = observed else {
        return ApiPlan {
            api: Action::Create,
            authorizer: Action::Create,
            stage: Action::Create,
            integration: Action::Create,
            routes: ROUTES.iter().map(|r| (r, Action::Create)).collect(),
        };
    };
    let mut api_fields = Vec::new();
    let cors = desired.cors();
    if api.cors.as_ref().filter(|c| !c.origins.is_empty()) != cors.as_ref() {
        api_fields.push(FieldChange::new(
            FIELD_CORS,
            show_cors(api.cors.as_ref()),
            show_cors(cors.as_ref()),
        ));
    }
    api_fields.extend(tag_change(desired.tags, &api.tags));

    let authorizer = diff_authorizer(desired, api.authorizer.as_ref());
    let stage = match &api.stage {
        None => Action::Create,
        Some(stage) => {
            let mut fields = Vec::new();
            if !stage.auto_deploy {
                fields.push(FieldChange::new(FIELD_AUTO_DEPLOY, false, true));
            }
            fields.extend(tag_change(desired.tags, &stage.tags));
            Action::from_fields(fields)
        }
    };
    let integration = api.integration(&desired.function_arn);
    let integration_action = diff_integration(desired, integration);
    let integration_id = integration.map(|i| i.id.as_str());
    let authorizer_id = api.authorizer.as_ref().map(|a| a.id.as_str());
    let routes = ROUTES
        .iter()
        .map(|route| {
            (
                route,
                diff_route(
                    route,
                    api.route(&route.key()),
                    integration_id,
                    authorizer_id,
                    &desired.auth.scopes,
                ),
            )
        })
        .collect();
    ApiPlan {
        api: Action::from_fields(api_fields),
        authorizer,
        stage,
        integration: integration_action,
        routes,
    }
}

fn diff_authorizer(desired: &DesiredApi<'_>, found: Option<&ObservedAuthorizer>) -> Action {
    let Some(found) = found else {
        return Action::Create;
    };
    let mut fields = Vec::new();
    if found.kind != AuthorizerType::Jwt.as_str() {
        fields.push(FieldChange::new(
            FIELD_TYPE,
            &found.kind,
            AuthorizerType::Jwt.as_str(),
        ));
    }
    if found.name != desired.authorizer_name {
        fields.push(FieldChange::new(
            FIELD_NAME,
            &found.name,
            desired.authorizer_name,
        ));
    }
    let identity = vec![desired.auth.identity_source().to_string()];
    if found.identity_source != identity {
        fields.push(FieldChange::new(
            FIELD_IDENTITY,
            list(&found.identity_source),
            list(&identity),
        ));
    }
    if found.issuer.as_deref() != Some(desired.auth.issuer.as_str()) {
        fields.push(FieldChange::new(
            FIELD_ISSUER,
            found.issuer.as_deref().unwrap_or("(none)"),
            desired.auth.issuer.as_str(),
        ));
    }
    if found.audiences != desired.auth.audiences {
        fields.push(FieldChange::new(
            FIELD_AUDIENCE,
            list(&found.audiences),
            list(&desired.auth.audiences),
        ));
    }
    Action::from_fields(fields)
}

fn diff_integration(desired: &DesiredApi<'_>, found: Option<&ObservedIntegration>) -> Action {
    let Some(found) = found else {
        return Action::Create;
    };
    let mut fields = Vec::new();
    if found.kind != IntegrationType::AwsProxy.as_str() {
        fields.push(FieldChange::new(
            FIELD_TYPE,
            &found.kind,
            IntegrationType::AwsProxy.as_str(),
        ));
    }
    if found.uri.as_deref() != Some(desired.function_arn.as_str()) {
        fields.push(FieldChange::new(
            FIELD_URI,
            found.uri.as_deref().unwrap_or("(none)"),
            &desired.function_arn,
        ));
    }
    if found.payload_format.as_deref() != Some(PAYLOAD_FORMAT) {
        fields.push(FieldChange::new(
            FIELD_PAYLOAD,
            found.payload_format.as_deref().unwrap_or("(none)"),
            PAYLOAD_FORMAT,
        ));
    }
    Action::from_fields(fields)
}

/// `integration_id` / `authorizer_id` are `None` when they are still to be created, which
/// always changes the route.
fn diff_route(
    route: &Route,
    found: Option<&ObservedRoute>,
    integration_id: Option<&str>,
    authorizer_id: Option<&str>,
    scopes: &[String],
) -> Action {
    let Some(found) = found else {
        return Action::Create;
    };
    let mut fields = Vec::new();
    let target = integration_id.map(|id| format!("integrations/{id}"));
    if target.is_none() || found.target != target {
        fields.push(FieldChange::new(
            FIELD_TARGET,
            found.target.as_deref().unwrap_or("(none)"),
            target.as_deref().unwrap_or("(new integration)"),
        ));
    }
    let (auth, want_authorizer, want_scopes): (&str, Option<&str>, &[String]) = match route.auth {
        RouteAuth::None => (AuthorizationType::None.as_str(), None, &[]),
        RouteAuth::Jwt => (
            AuthorizationType::Jwt.as_str(),
            Some(authorizer_id.unwrap_or("(new authorizer)")),
            scopes,
        ),
    };
    if found.authorization != auth {
        fields.push(FieldChange::new(FIELD_AUTH, &found.authorization, auth));
    }
    let authorizer_missing = route.auth == RouteAuth::Jwt && authorizer_id.is_none();
    if authorizer_missing || found.authorizer_id.as_deref() != want_authorizer {
        fields.push(FieldChange::new(
            FIELD_AUTHORIZER,
            found.authorizer_id.as_deref().unwrap_or("(none)"),
            want_authorizer.unwrap_or("(none)"),
        ));
    }
    if found.scopes != want_scopes {
        fields.push(FieldChange::new(
            FIELD_SCOPES,
            list(&found.scopes),
            list(want_scopes),
        ));
    }
    Action::from_fields(fields)
}

/// The ids of the API's parts that routes and the permission need.
#[derive(Debug, Clone)]
pub(crate) struct ApiIds {
    pub api_id: String,
    pub authorizer_id: String,
}

/// The part of the API that does not depend on the function: the API itself, its authorizer and
/// its stage. The authorizer and the stage proceed concurrently once the API exists.
pub(crate) async fn apply_base(
    ctx: &Ctx,
    env: &Env,
    desired: &DesiredApi<'_>,
    observed: Option<&ObservedApi>,
    plan: &ApiPlan,
) -> anyhow::Result<ApiIds> {
    let apigw = &ctx.clients.apigateway;
    let name = desired.name;
    let api_id = match (&plan.api, observed) {
        (Action::Create, _) => {
            let output = apigw
                .create_api()
                .name(name)
                .protocol_type(ProtocolType::Http)
                .description("wish-list API (managed by wishctl)")
                .set_cors_configuration(desired.sdk_cors())
                .set_tags(Some(desired.tags.to_hash_map()))
                .send()
                .await
                .doing(|| format!("creating HTTP API {name}"))?;
            let id = output
                .api_id()
                .with_context(|| format!("CreateApi {name} returned no id"))?
                .to_string();
            ctx.progress
                .report(ResourceKind::Api, name, format!("created ({id})"));
            id
        }
        (action, Some(api)) => {
            if let Action::Update { fields } = action {
                if action.updates(FIELD_CORS) {
                    match desired.sdk_cors() {
                        Some(cors) => {
                            apigw
                                .update_api()
                                .api_id(&api.id)
                                .cors_configuration(cors)
                                .send()
                                .await
                                .doing(|| {
                                    format!("updating the CORS configuration of HTTP API {name}")
                                })?;
                        }
                        None => {
                            apigw
                                .delete_cors_configuration()
                                .api_id(&api.id)
                                .send()
                                .await
                                .doing(|| {
                                    format!("removing the CORS configuration of HTTP API {name}")
                                })?;
                        }
                    }
                }
                if action.updates(FIELD_TAGS) {
                    apigw
                        .tag_resource()
                        .resource_arn(env.api_arn(&api.id))
                        .set_tags(Some(desired.tags.to_hash_map()))
                        .send()
                        .await
                        .doing(|| format!("tagging HTTP API {name}"))?;
                }
                ctx.progress
                    .report(ResourceKind::Api, name, updated_message(fields));
            }
            api.id.clone()
        }
        (_, None) => {
            anyhow::bail!("internal error: HTTP API {name} planned as existing but not found")
        }
    };
    let (authorizer_id, ()) = tokio::try_join!(
        fork(apply_authorizer(
            ctx,
            desired,
            &api_id,
            observed,
            &plan.authorizer
        )),
        fork(apply_stage(ctx, env, desired, &api_id, &plan.stage)),
    )?;
    Ok(ApiIds {
        api_id,
        authorizer_id,
    })
}

async fn apply_authorizer(
    ctx: &Ctx,
    desired: &DesiredApi<'_>,
    api_id: &str,
    observed: Option<&ObservedApi>,
    action: &Action,
) -> anyhow::Result<String> {
    let apigw = &ctx.clients.apigateway;
    let name = desired.authorizer_name;
    let existing = observed.and_then(|a| a.authorizer.as_ref());
    match (action, existing) {
        (Action::Create, _) => {
            let output = apigw
                .create_authorizer()
                .api_id(api_id)
                .name(name)
                .authorizer_type(AuthorizerType::Jwt)
                .identity_source(desired.auth.identity_source())
                .jwt_configuration(desired.jwt_configuration())
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
                .identity_source(desired.auth.identity_source())
                .jwt_configuration(desired.jwt_configuration())
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

async fn apply_stage(
    ctx: &Ctx,
    env: &Env,
    desired: &DesiredApi<'_>,
    api_id: &str,
    action: &Action,
) -> anyhow::Result<()> {
    let apigw = &ctx.clients.apigateway;
    match action {
        Action::NoChange => {}
        Action::Create => {
            apigw
                .create_stage()
                .api_id(api_id)
                .stage_name(STAGE)
                .auto_deploy(true)
                .set_tags(Some(desired.tags.to_hash_map()))
                .send()
                .await
                .doing(|| format!("creating stage {STAGE} of HTTP API {api_id}"))?;
            ctx.progress
                .report(ResourceKind::Stage, STAGE, "created (auto-deploy)");
        }
        Action::Update { fields } => {
            if action.updates(FIELD_AUTO_DEPLOY) {
                apigw
                    .update_stage()
                    .api_id(api_id)
                    .stage_name(STAGE)
                    .auto_deploy(true)
                    .send()
                    .await
                    .doing(|| {
                        format!("turning on auto-deploy of stage {STAGE} of HTTP API {api_id}")
                    })?;
            }
            if action.updates(FIELD_TAGS) {
                let tagged = apigw
                    .tag_resource()
                    .resource_arn(format!("{}/stages/{STAGE}", env.api_arn(api_id)))
                    .set_tags(Some(desired.tags.to_hash_map()))
                    .send()
                    .await;
                match tagged {
                    // Ownership and expiry are read from the API's own tags; moto answers 404 to
                    // tagging a stage (DESIGN.md), which must not fail `up --ttl` or `--tag`.
                    Err(err)
                        if err
                            .raw_response()
                            .is_some_and(|r| r.status().as_u16() == 404) =>
                    {
                        ctx.progress
                            .report(ResourceKind::Stage, STAGE, "tags not updated (404)");
                    }
                    other => {
                        other.doing(|| format!("tagging stage {STAGE} of HTTP API {api_id}"))?;
                    }
                }
            }
            ctx.progress
                .report(ResourceKind::Stage, STAGE, updated_message(fields));
        }
    }
    Ok(())
}

/// The part that needs the function: the integration, then the routes (concurrently).
pub(crate) async fn apply_routes(
    ctx: &Ctx,
    desired: &DesiredApi<'_>,
    ids: &ApiIds,
    observed: Option<&ObservedApi>,
    plan: &ApiPlan,
) -> anyhow::Result<()> {
    let apigw = &ctx.clients.apigateway;
    let api_id = ids.api_id.as_str();
    let existing = observed.and_then(|a| a.integration(&desired.function_arn));
    let label = format!("AWS_PROXY -> {}", desired.function_arn);
    let integration_id = match (&plan.integration, existing) {
        (Action::Create, _) => {
            let output = apigw
                .create_integration()
                .api_id(api_id)
                .integration_type(IntegrationType::AwsProxy)
                .integration_method("POST")
                .integration_uri(&desired.function_arn)
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
            id
        }
        (Action::NoChange, Some(found)) => found.id.clone(),
        (Action::Update { fields }, Some(found)) => {
            apigw
                .update_integration()
                .api_id(api_id)
                .integration_id(&found.id)
                .integration_type(IntegrationType::AwsProxy)
                .integration_method("POST")
                .integration_uri(&desired.function_arn)
                .payload_format_version(PAYLOAD_FORMAT)
                .send()
                .await
                .doing(|| format!("updating integration {} of HTTP API {api_id}", found.id))?;
            ctx.progress
                .report(ResourceKind::Integration, &label, updated_message(fields));
            found.id.clone()
        }
        (_, None) => anyhow::bail!("internal error: integration planned as existing but not found"),
    };
    let branches = ROUTES.iter().map(|route| {
        let found = observed.and_then(|a| a.route(&route.key()));
        // Re-diffed with the ids now known: a new integration or authorizer changes the route
        // even where the plan could only say "(new ...)".
        let action = diff_route(
            route,
            found,
            Some(&integration_id),
            Some(&ids.authorizer_id),
            &desired.auth.scopes,
        );
        fork(apply_route(
            ctx,
            api_id,
            route,
            found,
            action,
            &integration_id,
            &ids.authorizer_id,
            &desired.auth.scopes,
        ))
    });
    futures::future::try_join_all(branches).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn apply_route(
    ctx: &Ctx,
    api_id: &str,
    route: &Route,
    found: Option<&ObservedRoute>,
    action: Action,
    integration_id: &str,
    authorizer_id: &str,
    scopes: &[String],
) -> anyhow::Result<()> {
    let apigw = &ctx.clients.apigateway;
    let key = route.key();
    let target = format!("integrations/{integration_id}");
    let (auth, authorizer, scopes) = match route.auth {
        RouteAuth::None => (AuthorizationType::None, None, None),
        RouteAuth::Jwt => (
            AuthorizationType::Jwt,
            Some(authorizer_id.to_string()),
            Some(scopes.to_vec()),
        ),
    };
    match (&action, found) {
        (Action::NoChange, _) => {}
        (Action::Create, _) => {
            apigw
                .create_route()
                .api_id(api_id)
                .route_key(&key)
                .target(&target)
                .authorization_type(auth)
                .set_authorizer_id(authorizer)
                .set_authorization_scopes(scopes.filter(|s| !s.is_empty()))
                .send()
                .await
                .doing(|| format!("creating route {key} on HTTP API {api_id}"))?;
            ctx.progress.report(ResourceKind::Route, &key, "created");
        }
        (Action::Update { fields }, Some(found)) => {
            apigw
                .update_route()
                .api_id(api_id)
                .route_id(&found.id)
                .target(&target)
                .authorization_type(auth)
                .set_authorizer_id(authorizer)
                .set_authorization_scopes(Some(scopes.unwrap_or_default()))
                .send()
                .await
                .doing(|| format!("updating route {key} ({}) on HTTP API {api_id}", found.id))?;
            ctx.progress
                .report(ResourceKind::Route, &key, updated_message(fields));
        }
        (Action::Update { .. }, None) => {
            anyhow::bail!("internal error: route {key} planned as existing but not found")
        }
    }
    Ok(())
}

/// Deletes an HTTP API with its routes, integrations, authorizers and stages; `false` when it
/// was already gone.
pub(crate) async fn delete(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> anyhow::Result<bool> {
    let deleted = found(apigw.delete_api().api_id(api_id).send().await, |e| {
        e.is_not_found_exception()
    })
    .doing(|| format!("deleting HTTP API {api_id}"))?;
    Ok(deleted.is_some())
}
