//! The three steps over all resources: observe (read AWS), plan (diff against the description),
//! apply; and the teardown and outputs built on the same observation.

use std::fmt;

use serde::Serialize;
use serde_json::Value;
use stack::{ResourceNames, StackName, StackOutputs, StackSpec, Tags};

use crate::api::{self, ApiObservation, ApiPlan, DesiredApi};
use crate::calls::fork;
use crate::context::{Ctx, Env};
use crate::error::ForeignResource;
use crate::function::{self, DesiredFunction, FunctionCode, ObservedFunction};
use crate::log_group::{self, ObservedLogGroup};
use crate::permission::{self, ObservedPermission};
use crate::plan::{Action, Change, FieldChange, Plan};
use crate::role::{self, ObservedRole};
use crate::table::{self, ObservedTable};
use crate::{ProvisionError, ResourceKind};

/// Everything AWS holds under the stack's names.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    /// Account and partition; not read for [`Scope::Teardown`].
    pub env: Option<Env>,
    pub table: Option<ObservedTable>,
    pub log_group: Option<ObservedLogGroup>,
    pub role: Option<ObservedRole>,
    pub function: Option<ObservedFunction>,
    pub permission: Option<ObservedPermission>,
    pub apis: ApiObservation,
}

impl Observed {
    fn is_empty(&self) -> bool {
        self.table.is_none()
            && self.log_group.is_none()
            && self.role.is_none()
            && self.function.is_none()
            && self.apis.api.is_none()
            && self.apis.duplicates.is_empty()
    }
}

/// How much `observe` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Everything `plan`, `up` and `outputs` compare: configurations, the API's children, the
    /// account (for ARNs).
    Everything,
    /// What `down` needs: which resources exist, their tags, and the API ids.
    Teardown,
}

impl Observed {
    fn env(&self) -> anyhow::Result<&Env> {
        self.env
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("internal error: the account was not read"))
    }
}

/// Reads every resource of the stack, all kinds concurrently.
pub(crate) async fn observe(
    ctx: &Ctx,
    stack: &StackName,
    scope: Scope,
) -> anyhow::Result<Observed> {
    let names = stack.resources();
    let clients = &ctx.clients;
    let function_and_permission = async {
        let Some(found) = function::observe(&clients.lambda, &names.function).await? else {
            return Ok((None, None));
        };
        let permission = permission::observe(
            &clients.lambda,
            &names.function,
            &names.permission_statement,
        )
        .await?;
        anyhow::Ok((Some(found), permission))
    };
    let everything = scope == Scope::Everything;
    let env = async {
        if everything {
            Env::discover(clients).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let (env, table, log_group, role, (function, permission), apis) = tokio::try_join!(
        fork(env),
        fork(table::observe(&clients.dynamodb, &names.table)),
        fork(log_group::observe(&clients.logs, &names.log_group)),
        fork(role::observe(&clients.iam, &names.role, &names.role_policy)),
        fork(function_and_permission),
        fork(api::observe(
            &clients.apigateway,
            &names.api,
            stack,
            everything
        )),
    )?;
    Ok(Observed {
        env,
        table,
        log_group,
        role,
        function,
        permission,
        apis,
    })
}

fn owned(tags: &std::collections::BTreeMap<String, String>, stack: &StackName) -> bool {
    Tags::owned_by(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), stack)
}

/// Stops with [`ProvisionError::NotOwned`] when any resource under the stack's names is not
/// tagged for it.
pub(crate) fn check_ownership(
    observed: &Observed,
    stack: &StackName,
) -> Result<(), ProvisionError> {
    let names = stack.resources();
    let mut foreign = Vec::new();
    let mut check =
        |kind, name: &str, tags: Option<&std::collections::BTreeMap<String, String>>| {
            if tags.is_some_and(|tags| !owned(tags, stack)) {
                foreign.push(ForeignResource {
                    kind,
                    name: name.to_string(),
                });
            }
        };
    check(
        ResourceKind::Table,
        &names.table,
        observed.table.as_ref().map(|t| &t.tags),
    );
    check(
        ResourceKind::LogGroup,
        &names.log_group,
        observed.log_group.as_ref().map(|g| &g.tags),
    );
    check(
        ResourceKind::Role,
        &names.role,
        observed.role.as_ref().map(|r| &r.tags),
    );
    check(
        ResourceKind::Function,
        &names.function,
        observed.function.as_ref().map(|f| &f.tags),
    );
    // HTTP API names are not unique: an untagged namesake only matters while we have none.
    if observed.apis.api.is_none() {
        for id in &observed.apis.foreign {
            foreign.push(ForeignResource {
                kind: ResourceKind::Api,
                name: format!("{} ({id})", names.api),
            });
        }
    }
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(ProvisionError::NotOwned {
            stack: stack.to_string(),
            resources: foreign,
        })
    }
}

/// The description resolved against the account: ARNs and documents.
#[derive(Debug, Clone)]
struct Desired<'a> {
    spec: &'a StackSpec,
    code: &'a FunctionCode,
    names: ResourceNames,
    env: Env,
    role_arn: String,
    function_arn: String,
    access_policy: Value,
}

impl<'a> Desired<'a> {
    fn new(
        spec: &'a StackSpec,
        code: &'a FunctionCode,
        observed: &Observed,
    ) -> anyhow::Result<Self> {
        let names = spec.names();
        let env = observed.env()?.clone();
        let access_policy = stack::access_policy(
            &env.table_arn(&names.table),
            &env.log_group_policy_arn(&names.log_group),
        );
        let role_arn = observed
            .role
            .as_ref()
            .map_or_else(|| env.role_arn(&names.role), |r| r.arn.clone());
        let function_arn = observed
            .function
            .as_ref()
            .map_or_else(|| env.function_arn(&names.function), |f| f.arn.clone());
        Ok(Desired {
            spec,
            code,
            names,
            env,
            role_arn,
            function_arn,
            access_policy,
        })
    }

    fn function(&self, role_arn: String) -> DesiredFunction<'_> {
        DesiredFunction {
            name: &self.names.function,
            role_arn,
            settings: &self.spec.function,
            table: &self.names.table,
            code: self.code,
            tags: &self.spec.tags,
        }
    }

    fn api(&self, function_arn: String) -> DesiredApi<'_> {
        DesiredApi {
            name: &self.names.api,
            authorizer_name: &self.names.authorizer,
            tags: &self.spec.tags,
            cors: &self.spec.cors,
            auth: &self.spec.authorizer,
            function_arn,
        }
    }
}

/// The action for every resource, as applied.
#[derive(Debug, Clone)]
struct Actions {
    table: Action,
    log_group: Action,
    role: Action,
    policy: Action,
    function: Action,
    api: ApiPlan,
    permission: Action,
}

fn plan_actions(desired: &Desired<'_>, observed: &Observed) -> Result<Actions, ProvisionError> {
    let spec = desired.spec;
    let names = &desired.names;
    let table = table::diff(&names.table, &spec.tags, observed.table.as_ref())?;
    let log_group = log_group::diff(
        spec.function.log_retention_days,
        &spec.tags,
        observed.log_group.as_ref(),
    );
    let role = role::diff_role(&spec.tags, observed.role.as_ref());
    let policy = role::diff_policy(&desired.access_policy, observed.role.as_ref());
    let function = function::diff(
        &desired.function(desired.role_arn.clone()),
        observed.function.as_ref(),
    );
    let api = api::diff(
        &desired.api(desired.function_arn.clone()),
        observed.apis.api.as_ref(),
    );
    let permission = match (&observed.apis.api, &observed.function) {
        (Some(api), Some(_)) => permission::diff(
            &desired.env.execute_api_source_arn(&api.id),
            observed.permission.as_ref(),
        ),
        // A new API gets a new id, so an existing statement must be replaced.
        (None, Some(_)) => match &observed.permission {
            Some(found) => Action::Update {
                fields: vec![FieldChange::new(
                    "source arn",
                    found.source_arn.as_deref().unwrap_or("(none)"),
                    "(the new HTTP API)",
                )],
            },
            None => Action::Create,
        },
        (_, None) => Action::Create,
    };
    Ok(Actions {
        table,
        log_group,
        role,
        policy,
        function,
        api,
        permission,
    })
}

fn changes(desired: &Desired<'_>, actions: &Actions) -> Plan {
    let names = &desired.names;
    let change = |kind, name: &str, action: &Action| Change {
        kind,
        name: name.to_string(),
        action: action.clone(),
    };
    let mut changes = vec![
        change(ResourceKind::Table, &names.table, &actions.table),
        change(ResourceKind::LogGroup, &names.log_group, &actions.log_group),
        change(ResourceKind::Role, &names.role, &actions.role),
        change(
            ResourceKind::RolePolicy,
            &names.role_policy,
            &actions.policy,
        ),
        change(ResourceKind::Function, &names.function, &actions.function),
    ];
    changes.extend(
        actions
            .api
            .changes(&desired.api(desired.function_arn.clone())),
    );
    changes.push(change(
        ResourceKind::Permission,
        &names.permission_statement,
        &actions.permission,
    ));
    Plan {
        stack: desired.spec.name.to_string(),
        changes,
    }
}

/// Observe and diff: what `up` would do. Makes no mutating call.
pub(crate) async fn plan(ctx: &Ctx, spec: &StackSpec, code: &FunctionCode) -> anyhow::Result<Plan> {
    let observed = observe(ctx, &spec.name, Scope::Everything).await?;
    check_ownership(&observed, &spec.name)?;
    let desired = Desired::new(spec, code, &observed)?;
    let actions = plan_actions(&desired, &observed)?;
    Ok(changes(&desired, &actions))
}

/// Observe, diff, apply. Independent resources proceed concurrently; only the integration,
/// routes and permission wait for the function.
pub(crate) async fn up(
    ctx: &Ctx,
    spec: &StackSpec,
    code: &FunctionCode,
) -> anyhow::Result<(Plan, StackOutputs)> {
    let observed = observe(ctx, &spec.name, Scope::Everything).await?;
    check_ownership(&observed, &spec.name)?;
    let desired = Desired::new(spec, code, &observed)?;
    let actions = plan_actions(&desired, &observed)?;
    let plan = changes(&desired, &actions);
    for change in plan.changes.iter().filter(|c| !c.action.is_change()) {
        ctx.progress.report(change.kind, &change.name, "unchanged");
    }
    for id in &observed.apis.duplicates {
        ctx.progress.report(
            ResourceKind::Api,
            &format!("{} ({id})", desired.names.api),
            "also tagged for this stack (left over by an interrupted run); `down` removes it",
        );
    }
    let names = &desired.names;
    let tags = &spec.tags;

    let storage = async {
        tokio::try_join!(
            fork(table::apply(
                ctx,
                &names.table,
                tags,
                observed.table.as_ref(),
                &actions.table
            )),
            fork(log_group::apply(
                ctx,
                &names.log_group,
                spec.function.log_retention_days,
                tags,
                observed.log_group.as_ref(),
                &actions.log_group,
            )),
        )?;
        anyhow::Ok(())
    };
    let role_and_function = async {
        let role_arn = role::apply_role(
            ctx,
            &names.role,
            tags,
            observed.role.as_ref(),
            &actions.role,
        )
        .await?;
        let function = desired.function(role_arn);
        let ((), function_arn) = tokio::try_join!(
            fork(role::apply_policy(
                ctx,
                &names.role,
                &names.role_policy,
                &desired.access_policy,
                &actions.policy,
            )),
            fork(function::apply(
                ctx,
                &function,
                observed.function.as_ref(),
                &actions.function
            )),
        )?;
        anyhow::Ok(function_arn)
    };
    let planned_api = desired.api(desired.function_arn.clone());
    let application = async {
        let (function_arn, ids) = tokio::try_join!(
            fork(role_and_function),
            fork(api::apply_base(
                ctx,
                &desired.env,
                &planned_api,
                observed.apis.api.as_ref(),
                &actions.api
            )),
        )?;
        let api = desired.api(function_arn);
        let source_arn = desired.env.execute_api_source_arn(&ids.api_id);
        tokio::try_join!(
            fork(api::apply_routes(
                ctx,
                &api,
                &ids,
                observed.apis.api.as_ref(),
                &actions.api
            )),
            fork(permission::apply(
                ctx,
                &names.function,
                &names.permission_statement,
                &source_arn,
                &actions.permission,
            )),
        )?;
        anyhow::Ok(ids)
    };
    let ((), ids) = tokio::try_join!(fork(storage), fork(application))?;
    let outputs = StackOutputs {
        stack: spec.name.clone(),
        region: desired.env.region.clone(),
        url: stack::invoke_url(&ids.api_id, &desired.env.region),
        api_id: ids.api_id,
        authorizer_id: ids.authorizer_id,
        table: names.table.clone(),
        role: names.role.clone(),
        function: names.function.clone(),
        log_group: names.log_group.clone(),
    };
    Ok((plan, outputs))
}

/// The outputs of a deployed stack, read back from AWS.
pub(crate) async fn outputs(ctx: &Ctx, stack: &StackName) -> anyhow::Result<StackOutputs> {
    let observed = observe(ctx, stack, Scope::Everything).await?;
    check_ownership(&observed, stack)?;
    let names = stack.resources();
    let mut missing = Vec::new();
    let mut need = |present: bool, what: String| {
        if !present {
            missing.push(what);
        }
    };
    need(observed.table.is_some(), format!("table {}", names.table));
    need(
        observed.log_group.is_some(),
        format!("log group {}", names.log_group),
    );
    need(observed.role.is_some(), format!("role {}", names.role));
    need(
        observed.function.is_some(),
        format!("function {}", names.function),
    );
    need(
        observed.apis.api.is_some(),
        format!("HTTP API {}", names.api),
    );
    let authorizer = observed
        .apis
        .api
        .as_ref()
        .and_then(|a| a.authorizer.as_ref());
    if observed.apis.api.is_some() {
        need(
            authorizer.is_some(),
            format!("authorizer {}", names.authorizer),
        );
    }
    if observed.is_empty() {
        return Err(ProvisionError::NotDeployed {
            stack: stack.to_string(),
            missing: Vec::new(),
        }
        .into());
    }
    let (Some(api), Some(authorizer), true) = (&observed.apis.api, authorizer, missing.is_empty())
    else {
        return Err(ProvisionError::NotDeployed {
            stack: stack.to_string(),
            missing,
        }
        .into());
    };
    Ok(StackOutputs {
        stack: stack.clone(),
        region: observed.env()?.region.clone(),
        url: stack::invoke_url(&api.id, &observed.env()?.region),
        api_id: api.id.clone(),
        authorizer_id: authorizer.id.clone(),
        table: names.table,
        role: names.role,
        function: names.function,
        log_group: names.log_group,
    })
}

/// What `down` does with the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataPolicy {
    /// Delete the table only when it holds no items; otherwise refuse and delete nothing.
    #[default]
    RefuseIfNotEmpty,
    /// Delete the table with its items.
    Delete,
    /// Tear down everything else and keep the table (a later `up` adopts it).
    Keep,
}

/// What happened to one resource during `down`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "error", rename_all = "kebab-case")]
pub enum Outcome {
    Deleted,
    /// Not there (any more): counts as done.
    NotFound,
    /// Kept on request (`--keep-data`).
    Kept,
    Failed(String),
}

/// One line of the teardown report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    pub kind: ResourceKind,
    pub name: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Deleted => write!(f, "- {} {} deleted", self.kind, self.name),
            Outcome::NotFound => {
                write!(f, "  {} {} not found (nothing to do)", self.kind, self.name)
            }
            Outcome::Kept => write!(f, "= {} {} kept (--keep-data)", self.kind, self.name),
            Outcome::Failed(err) => write!(f, "! {} {} FAILED: {err}", self.kind, self.name),
        }
    }
}

/// Every resource `down` considered and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Teardown {
    pub stack: String,
    pub removals: Vec<Removal>,
}

impl Teardown {
    /// Whether there was nothing to delete (a second `down`).
    pub fn was_already_gone(&self) -> bool {
        self.removals.iter().all(|r| r.outcome == Outcome::NotFound)
    }

    pub fn failures(&self) -> Vec<&Removal> {
        self.removals
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .collect()
    }
}

impl fmt::Display for Teardown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.was_already_gone() {
            return write!(f, "stack {}: nothing left to delete", self.stack);
        }
        for removal in &self.removals {
            writeln!(f, "{removal}")?;
        }
        let failed = self.failures().len();
        if failed == 0 {
            write!(f, "stack {}: torn down", self.stack)
        } else {
            write!(f, "stack {}: {failed} deletion(s) failed", self.stack)
        }
    }
}

async fn attempt(
    ctx: &Ctx,
    kind: ResourceKind,
    name: String,
    exists: bool,
    delete: impl std::future::Future<Output = anyhow::Result<bool>>,
) -> Removal {
    let outcome = if !exists {
        Outcome::NotFound
    } else {
        match delete.await {
            Ok(true) => Outcome::Deleted,
            Ok(false) => Outcome::NotFound,
            Err(err) => Outcome::Failed(format!("{err:#}")),
        }
    };
    // Only what was there is worth a line; the summary says when nothing was.
    if exists {
        let what = match &outcome {
            Outcome::Deleted => "deleted".to_string(),
            Outcome::NotFound => "already gone".to_string(),
            Outcome::Kept => "kept".to_string(),
            Outcome::Failed(err) => format!("FAILED: {err}"),
        };
        ctx.progress.report(kind, &name, what);
    }
    Removal {
        kind,
        name,
        outcome,
    }
}

/// Removes everything the stack owns in reverse dependency order, attempting every delete and
/// reporting each result. Refuses (deleting nothing) when a resource is not the stack's or when
/// the table holds items and `data` does not say what to do with them.
pub(crate) async fn down(
    ctx: &Ctx,
    stack: &StackName,
    data: DataPolicy,
) -> anyhow::Result<Teardown> {
    let observed = observe(ctx, stack, Scope::Teardown).await?;
    check_ownership(&observed, stack)?;
    let names = stack.resources();
    let clients = &ctx.clients;
    if observed.table.is_some()
        && data == DataPolicy::RefuseIfNotEmpty
        && table::holds_items(&clients.dynamodb, &names.table).await?
    {
        return Err(ProvisionError::TableNotEmpty {
            table: names.table.clone(),
        }
        .into());
    }

    // 1. The API (routes, integration, authorizer and stage go with it) and the permission.
    let mut api_ids: Vec<String> = observed.apis.api.iter().map(|a| a.id.clone()).collect();
    api_ids.extend(observed.apis.duplicates.iter().cloned());
    let api_deletes = async {
        let mut removals = Vec::new();
        if api_ids.is_empty() {
            removals.push(
                attempt(ctx, ResourceKind::Api, names.api.clone(), false, async {
                    Ok(false)
                })
                .await,
            );
        }
        let deletes = api_ids.iter().map(|id| {
            fork(attempt(
                ctx,
                ResourceKind::Api,
                format!("{} ({id})", names.api),
                true,
                api::delete(&clients.apigateway, id),
            ))
        });
        removals.extend(futures::future::join_all(deletes).await);
        removals
    };
    let permission_delete = attempt(
        ctx,
        ResourceKind::Permission,
        names.permission_statement.clone(),
        observed.permission.is_some(),
        permission::remove(
            &clients.lambda,
            &names.function,
            &names.permission_statement,
        ),
    );
    let (mut removals, permission) = tokio::join!(fork(api_deletes), fork(permission_delete));
    removals.push(permission);

    // 2. The function.
    removals.push(
        fork(attempt(
            ctx,
            ResourceKind::Function,
            names.function.clone(),
            observed.function.is_some(),
            function::delete(&clients.lambda, &names.function),
        ))
        .await,
    );

    // 3. What the function used: its log group, its role (policy first), the table.
    let has_policy = observed.role.as_ref().is_some_and(|r| r.policy.is_some());
    let role_deletes = async {
        let policy = attempt(
            ctx,
            ResourceKind::RolePolicy,
            names.role_policy.clone(),
            has_policy,
            role::delete_policy(&clients.iam, &names.role, &names.role_policy),
        )
        .await;
        let role = attempt(
            ctx,
            ResourceKind::Role,
            names.role.clone(),
            observed.role.is_some(),
            role::delete_role(&clients.iam, &names.role),
        )
        .await;
        [policy, role]
    };
    let table_delete = async {
        if data == DataPolicy::Keep && observed.table.is_some() {
            ctx.progress
                .report(ResourceKind::Table, &names.table, "kept (--keep-data)");
            return Removal {
                kind: ResourceKind::Table,
                name: names.table.clone(),
                outcome: Outcome::Kept,
            };
        }
        attempt(
            ctx,
            ResourceKind::Table,
            names.table.clone(),
            observed.table.is_some(),
            table::delete(&clients.dynamodb, &names.table),
        )
        .await
    };
    let (log_group, role_removals, table_removal) = tokio::join!(
        fork(attempt(
            ctx,
            ResourceKind::LogGroup,
            names.log_group.clone(),
            observed.log_group.is_some(),
            log_group::delete(&clients.logs, &names.log_group),
        )),
        fork(role_deletes),
        fork(table_delete),
    );
    removals.push(log_group);
    removals.extend(role_removals);
    removals.push(table_removal);
    Ok(Teardown {
        stack: stack.to_string(),
        removals,
    })
}
