//! The routes of `stack::ROUTES` on the HTTP API: their target (the integration), their
//! authorization (none, or the JWT authorizer with the stack's scopes).
//!
//! A route points at an integration and an authorizer by id. When `up` is about to create one of
//! those, the plan cannot know its id yet: the route is diffed once, against a [`Ref::New`], which
//! always changes the route, and `apply` sets every field of a changed route with the ids it then
//! has.

use anyhow::Context as _;
use aws_sdk_apigatewayv2::types::AuthorizationType;
use stack::{Route, RouteAuth, ROUTES};

use crate::context::{Ctx, SdkResultExt};
use crate::field::RouteField;
use crate::plan::{updated_message, Action, FieldChange};
use crate::ResourceKind;

#[derive(Debug, Clone)]
pub(crate) struct ObservedRoute {
    pub id: String,
    pub key: String,
    pub authorization: String,
    pub authorizer_id: Option<String>,
    pub scopes: Vec<String>,
    pub target: Option<String>,
}

/// Every route of the API.
pub(crate) async fn observe(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> anyhow::Result<Vec<ObservedRoute>> {
    observe_if_present(apigw, api_id)
        .await?
        .with_context(|| format!("listing the routes of HTTP API {api_id}: NotFoundException"))
}

/// Every route of the API; `None` when the API is gone (deleted meanwhile, as `gc` or another
/// run may).
pub(crate) async fn observe_if_present(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> anyhow::Result<Option<Vec<ObservedRoute>>> {
    let mut routes = Vec::new();
    let mut next = None;
    let mut pages = crate::pages::Pages::new(|| format!("listing the routes of HTTP API {api_id}"));
    loop {
        let Some(page) = crate::context::found(
            apigw
                .get_routes()
                .api_id(api_id)
                .set_next_token(next)
                .send()
                .await,
            |e| e.is_not_found_exception(),
        )
        .doing(|| format!("listing the routes of HTTP API {api_id}"))?
        else {
            return Ok(None);
        };
        routes.extend(page.items().iter().filter_map(|r| {
            Some(ObservedRoute {
                id: r.route_id()?.to_string(),
                key: r.route_key()?.to_string(),
                authorization: r
                    .authorization_type()
                    .map_or("NONE", |a| a.as_str())
                    .to_string(),
                authorizer_id: r.authorizer_id().map(str::to_string),
                scopes: super::sorted(r.authorization_scopes().iter().cloned()),
                target: r.target().map(str::to_string),
            })
        }));
        next = pages.next(page.next_token())?;
        if next.is_none() {
            return Ok(Some(routes));
        }
    }
}

/// Deletes a route that is not the stack's (drift); `false` when it was already gone.
pub(crate) async fn delete(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
    route_id: &str,
) -> anyhow::Result<bool> {
    let deleted = crate::context::found(
        apigw
            .delete_route()
            .api_id(api_id)
            .route_id(route_id)
            .send()
            .await,
        |e| e.is_not_found_exception(),
    )
    .doing(|| format!("deleting route {route_id} of HTTP API {api_id}"))?;
    Ok(deleted.is_some())
}

/// An id a route refers to: one that exists, or one `up` creates before the routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ref<'a> {
    Existing(&'a str),
    New,
}

impl Ref<'_> {
    fn existing(self) -> Option<String> {
        match self {
            Ref::Existing(id) => Some(id.to_string()),
            Ref::New => None,
        }
    }
}

/// The integration's route target: `integrations/ID`.
fn target(integration: Ref<'_>) -> Option<String> {
    integration
        .existing()
        .map(|id| format!("integrations/{id}"))
}

/// What `route` should look like given the integration and authorizer it points at.
pub(crate) fn diff(
    route: &Route,
    found: Option<&ObservedRoute>,
    integration: Ref<'_>,
    authorizer: Ref<'_>,
    scopes: &[String],
) -> Action {
    let Some(found) = found else {
        return Action::Create;
    };
    let mut fields = Vec::new();
    let want_target = target(integration);
    if want_target.is_none() || found.target != want_target {
        fields.push(FieldChange::new(
            RouteField::Target,
            found.target.as_deref().unwrap_or("(none)"),
            want_target.as_deref().unwrap_or("(new integration)"),
        ));
    }
    let (auth, want_authorizer, want_scopes): (&str, Option<String>, &[String]) = match route.auth {
        RouteAuth::None => (AuthorizationType::None.as_str(), None, &[]),
        RouteAuth::Jwt => (
            AuthorizationType::Jwt.as_str(),
            Some(
                authorizer
                    .existing()
                    .unwrap_or_else(|| "(new authorizer)".to_string()),
            ),
            scopes,
        ),
    };
    if found.authorization != auth {
        fields.push(FieldChange::new(
            RouteField::Authorization,
            &found.authorization,
            auth,
        ));
    }
    let authorizer_new = route.auth == RouteAuth::Jwt && authorizer == Ref::New;
    if authorizer_new || found.authorizer_id != want_authorizer {
        fields.push(FieldChange::new(
            RouteField::Authorizer,
            found.authorizer_id.as_deref().unwrap_or("(none)"),
            want_authorizer.as_deref().unwrap_or("(none)"),
        ));
    }
    if found.scopes != want_scopes {
        fields.push(FieldChange::new(
            RouteField::Scopes,
            super::list(&found.scopes),
            super::list(want_scopes),
        ));
    }
    Action::from_fields(fields)
}

/// Every route of the stack with its planned action, diffed once.
pub(crate) fn diff_all(
    found: &[ObservedRoute],
    integration: Ref<'_>,
    authorizer: Ref<'_>,
    scopes: &[String],
) -> Vec<(&'static Route, Action)> {
    ROUTES
        .iter()
        .map(|route| {
            let key = route.key();
            let existing = found.iter().find(|r| r.key == key);
            (
                route,
                diff(route, existing, integration, authorizer, scopes),
            )
        })
        .collect()
}

/// Creates or updates one route as planned, pointing it at the ids that now exist.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn apply(
    ctx: &Ctx,
    api_id: &str,
    route: &Route,
    found: Option<&ObservedRoute>,
    action: &Action,
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
    match (action, found) {
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
