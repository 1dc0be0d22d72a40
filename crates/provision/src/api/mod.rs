//! The HTTP API and what hangs off it, one module per resource kind: the JWT `authorizer`, the
//! `$default` `stage`, the Lambda `integration` and the `routes` of `stack::ROUTES`. This module
//! holds the API itself (name, tags, CORS), finds it, and composes its children's plans.
//!
//! APIs have no unique names, so ours is the one named `wishctl-NAME` *and* tagged for the
//! stack.

pub(crate) mod authorizer;
pub(crate) mod integration;
pub(crate) mod routes;
pub(crate) mod stage;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use aws_sdk_apigatewayv2::types::{AuthorizationType, Cors, ProtocolType};
use stack::{AuthorizerSettings, CorsSettings, Route, Tags, ROUTES};

use crate::calls::fork;
use crate::context::{found, Ctx, Env, SdkResultExt, Warnings};
use crate::field::ApiField;
use crate::plan::{tag_change, updated_message, Action, Change, FieldChange};
use crate::ResourceKind;

use self::authorizer::ObservedAuthorizer;
use self::integration::ObservedIntegration;
use self::routes::{ObservedRoute, Ref};
use self::stage::{ObservedStage, STAGE};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObservedCors {
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub headers: Vec<String>,
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
    /// Every authorizer id known: listed (where the endpoint answers the listing) or referenced
    /// by any route.
    pub authorizer_ids: Vec<String>,
    /// The names of every stage.
    pub stages: Vec<String>,
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
    /// The stack's API (if a cut-off run left several: the one with the most routes, then the
    /// oldest), read with its children.
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
    authorizer_name: &str,
    owned_by_stack: impl Fn(&BTreeMap<String, String>) -> bool,
    children: bool,
    warnings: &Warnings,
) -> anyhow::Result<ApiObservation> {
    let mut named = Vec::new();
    let mut next = None;
    let mut pages = crate::pages::Pages::new(|| format!("listing HTTP APIs to find {name}"));
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
        next = pages.next(page.next_token())?;
        if next.is_none() {
            break;
        }
    }
    let tags_of = |api: &aws_sdk_apigatewayv2::types::Api| -> BTreeMap<String, String> {
        api.tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    let (mut owned, foreign): (Vec<_>, Vec<_>) = named
        .into_iter()
        .partition(|api| owned_by_stack(&tags_of(api)));
    owned.sort_by(|a, b| (a.created_date(), a.api_id()).cmp(&(b.created_date(), b.api_id())));
    if children && owned.len() > 1 {
        // Creation times have a resolution of a second, so the oldest may be a tie: the API with
        // the most routes is the stack's, not an empty one that a late create left (which `up`
        // then deletes). Only read when there are several: a rare case.
        let mut counted = Vec::with_capacity(owned.len());
        for api in owned {
            let routes = match api.api_id() {
                Some(id) => routes::observe(apigw, id).await?.len(),
                None => 0,
            };
            counted.push((routes, api));
        }
        // Stable: among equals, the oldest stays first.
        counted.sort_by_key(|(routes, _)| std::cmp::Reverse(*routes));
        owned = counted.into_iter().map(|(_, api)| api).collect();
    }
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
    let (routes, integrations, stage, stages, listed) = if children {
        tokio::try_join!(
            fork(routes::observe(apigw, &id)),
            fork(integration::observe(apigw, &id)),
            fork(stage::observe(apigw, &id)),
            fork(stage::list(apigw, &id)),
            fork(async {
                anyhow::Ok(authorizer::list(apigw, &id, authorizer::ListEffort::Quick).await)
            }),
        )?
    } else {
        (Vec::new(), Vec::new(), None, Vec::new(), Ok(Vec::new()))
    };
    // The stack's authorizer: the one the stack's JWT route points at (even if someone switched
    // its authorization off), else the one of the stack's name among the listed ones: an `up`
    // killed between creating the authorizer and attaching it leaves one behind, and adopting it
    // avoids a second one.
    let jwt_keys: Vec<String> = ROUTES
        .iter()
        .filter(|r| r.auth == stack::RouteAuth::Jwt)
        .map(Route::key)
        .collect();
    let referenced = routes
        .iter()
        .filter(|r| jwt_keys.contains(&r.key))
        .find_map(|r| r.authorizer_id.clone())
        .or_else(|| {
            routes
                .iter()
                .filter(|r| r.authorization == AuthorizationType::Jwt.as_str())
                .find_map(|r| r.authorizer_id.clone())
        });
    let listed = match listed {
        Ok(listed) => Some(listed),
        Err(quick) => {
            // Without a route that references it, an authorizer an interrupted `up` created is
            // found only by listing: try as hard as for any other call before giving up on it
            // (giving up here means `up` creates a second one).
            let retried = if children && referenced.is_none() {
                authorizer::list(apigw, &id, authorizer::ListEffort::Thorough).await
            } else {
                Err(quick)
            };
            match retried {
                Ok(listed) => Some(listed),
                Err(err) => {
                    // One line: what failed, what was used instead, what goes unseen. Moto never
                    // answers the listing; on AWS a failure here is real (a permission, an outage).
                    warnings.once("authorizer listing", || match &referenced {
                        Some(_) => format!(
                            "{err:#}; used the authorizer the routes reference instead (one no \
                             route references would go unseen)"
                        ),
                        None => format!(
                            "{err:#}; no route references an authorizer either, so one left \
                             unattached goes unseen (and `up` creates a new one)"
                        ),
                    });
                    None
                }
            }
        }
    };
    let by_name = || {
        listed
            .as_ref()?
            .iter()
            .find(|(_, n)| n == authorizer_name)
            .map(|(id, _)| id.clone())
    };
    let authorizer = match referenced.or_else(by_name) {
        Some(authorizer_id) => authorizer::observe(apigw, &id, &authorizer_id).await?,
        None => None,
    };
    let authorizer_ids: BTreeSet<String> = listed
        .iter()
        .flatten()
        .map(|(id, _)| id.clone())
        .chain(routes.iter().filter_map(|r| r.authorizer_id.clone()))
        .chain(authorizer.iter().map(|a| a.id.clone()))
        .collect();
    observation.api = Some(ObservedApi {
        tags: tags_of(&api),
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
        authorizer_ids: authorizer_ids.into_iter().collect(),
        stages,
    });
    Ok(observation)
}

pub(crate) fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.collect();
    items.sort();
    items.dedup();
    items
}

pub(crate) fn list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
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

/// Children of the API that are not the stack's: `plan` reports them as drift of the API and
/// `up` removes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ForeignChildren {
    /// (id, route key)
    pub routes: Vec<(String, String)>,
    pub integrations: Vec<String>,
    pub authorizers: Vec<String>,
    pub stages: Vec<String>,
}

impl ForeignChildren {
    fn of(api: &ObservedApi, integration: Option<&ObservedIntegration>) -> Self {
        let ours: Vec<&str> = ROUTES
            .iter()
            .filter_map(|r| api.route(&r.key()).map(|found| found.id.as_str()))
            .collect();
        ForeignChildren {
            routes: api
                .routes
                .iter()
                .filter(|r| !ours.contains(&r.id.as_str()))
                .map(|r| (r.id.clone(), r.key.clone()))
                .collect(),
            integrations: api
                .integrations
                .iter()
                .filter(|i| integration.is_none_or(|ours| ours.id != i.id))
                .map(|i| i.id.clone())
                .collect(),
            authorizers: api
                .authorizer_ids
                .iter()
                .filter(|id| api.authorizer.as_ref().is_none_or(|a| &a.id != *id))
                .cloned()
                .collect(),
            stages: api
                .stages
                .iter()
                .filter(|s| s.as_str() != STAGE)
                .cloned()
                .collect(),
        }
    }

    fn fields(&self) -> Vec<FieldChange> {
        let mut fields = Vec::new();
        let mut add = |field: ApiField, items: Vec<String>| {
            if !items.is_empty() {
                fields.push(FieldChange::new(field, list(&items), "(none)"));
            }
        };
        add(
            ApiField::Routes,
            self.routes.iter().map(|(_, key)| key.clone()).collect(),
        );
        add(ApiField::Integrations, self.integrations.clone());
        add(ApiField::Authorizers, self.authorizers.clone());
        add(ApiField::Stages, self.stages.clone());
        fields
    }
}

/// Per child of the API, what `up` does.
#[derive(Debug, Clone)]
pub(crate) struct ApiPlan {
    pub api: Action,
    pub authorizer: Action,
    pub stage: Action,
    pub integration: Action,
    pub routes: Vec<(&'static Route, Action)>,
    pub foreign: ForeignChildren,
}

impl ApiPlan {
    /// Further APIs tagged for the stack (the observation keeps the oldest as the stack's): drift
    /// of the API that `up` removes.
    pub fn add_duplicates(&mut self, duplicates: &[String]) {
        if duplicates.is_empty() {
            return;
        }
        let change = FieldChange::new(ApiField::Duplicates, list(duplicates), "(none)");
        self.api = match std::mem::replace(&mut self.api, Action::NoChange) {
            Action::NoChange => Action::Update {
                fields: vec![change],
            },
            Action::Update { mut fields } => {
                fields.push(change);
                Action::Update { fields }
            }
            // Not reached: duplicates are only counted beside an existing API.
            Action::Create => Action::Create,
        };
    }

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
                name: integration::label(&desired.function_arn),
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

/// The plan of the API and every child, each diffed once.
pub(crate) fn diff(desired: &DesiredApi<'_>, observed: Option<&ObservedApi>) -> ApiPlan {
    let Some(api) = observed else {
        return ApiPlan {
            api: Action::Create,
            authorizer: Action::Create,
            stage: Action::Create,
            integration: Action::Create,
            routes: routes::diff_all(&[], Ref::New, Ref::New, &desired.auth.scopes),
            foreign: ForeignChildren::default(),
        };
    };
    let mut api_fields = Vec::new();
    let cors = desired.cors();
    if api.cors.as_ref().filter(|c| !c.origins.is_empty()) != cors.as_ref() {
        api_fields.push(FieldChange::new(
            ApiField::Cors,
            show_cors(api.cors.as_ref()),
            show_cors(cors.as_ref()),
        ));
    }
    api_fields.extend(tag_change(ApiField::Tags, desired.tags, &api.tags));

    let authorizer = authorizer::diff(
        desired.authorizer_name,
        desired.auth,
        api.authorizer.as_ref(),
    );
    let stage = stage::diff(desired.tags, api.stage.as_ref());
    let found_integration = api.integration(&desired.function_arn);
    let integration = integration::diff(&desired.function_arn, found_integration);
    fn reference<'a>(id: Option<&'a str>, action: &Action) -> Ref<'a> {
        match id {
            Some(id) if *action != Action::Create => Ref::Existing(id),
            _ => Ref::New,
        }
    }
    let routes = routes::diff_all(
        &api.routes,
        reference(found_integration.map(|i| i.id.as_str()), &integration),
        reference(api.authorizer.as_ref().map(|a| a.id.as_str()), &authorizer),
        &desired.auth.scopes,
    );
    let foreign = ForeignChildren::of(api, found_integration);
    api_fields.extend(foreign.fields());
    ApiPlan {
        api: Action::from_fields(api_fields),
        authorizer,
        stage,
        integration,
        routes,
        foreign,
    }
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
                if action.updates(ApiField::Cors) {
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
                if action.updates(ApiField::Tags) {
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
        fork(authorizer::apply(
            ctx,
            desired.authorizer_name,
            desired.auth,
            &api_id,
            observed.and_then(|a| a.authorizer.as_ref()),
            &plan.authorizer
        )),
        fork(stage::apply(ctx, env, desired.tags, &api_id, &plan.stage)),
    )?;
    Ok(ApiIds {
        api_id,
        authorizer_id,
    })
}

/// The part that needs the function: the integration, then the routes (concurrently), each as
/// planned.
pub(crate) async fn apply_routes(
    ctx: &Ctx,
    desired: &DesiredApi<'_>,
    ids: &ApiIds,
    observed: Option<&ObservedApi>,
    plan: &ApiPlan,
) -> anyhow::Result<()> {
    let api_id = ids.api_id.as_str();
    let integration_id = integration::apply(
        ctx,
        api_id,
        &desired.function_arn,
        observed.and_then(|a| a.integration(&desired.function_arn)),
        &plan.integration,
    )
    .await?;
    let branches = plan.routes.iter().map(|(route, action)| {
        let found = observed.and_then(|a| a.route(&route.key()));
        fork(routes::apply(
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
    remove_foreign(ctx, desired.name, api_id, &plan.foreign).await
}

/// Removes the API's children that are not the stack's, routes first (they reference the
/// integrations and authorizers), and says what went.
async fn remove_foreign(
    ctx: &Ctx,
    name: &str,
    api_id: &str,
    foreign: &ForeignChildren,
) -> anyhow::Result<()> {
    let apigw = &ctx.clients.apigateway;
    let report = |what: String| {
        ctx.progress.report(
            ResourceKind::Api,
            name,
            format!("{what} (not part of the stack)"),
        )
    };
    for (id, key) in &foreign.routes {
        routes::delete(apigw, api_id, id).await?;
        report(format!("deleted route {key} ({id})"));
    }
    for id in &foreign.integrations {
        integration::delete(apigw, api_id, id).await?;
        report(format!("deleted integration {id}"));
    }
    for id in &foreign.authorizers {
        authorizer::delete(apigw, api_id, id).await?;
        report(format!("deleted authorizer {id}"));
    }
    for stage in &foreign.stages {
        stage::delete(apigw, api_id, stage).await?;
        report(format!("deleted stage {stage}"));
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
