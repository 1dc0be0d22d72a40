//! The first steps `plan` and `up` share: observe, check ownership, resolve the desired state,
//! and diff every resource once. `plan` stops here; `up` applies the result.

use stack::StackSpec;

use crate::api::{self, ApiPlan};
use crate::context::Ctx;
use crate::desired::Desired;
use crate::field::PermissionField;
use crate::function::{self, FunctionCode};
use crate::log_group;
use crate::observe::{observe, Observed, Scope};
use crate::ownership;
use crate::permission;
use crate::plan::{Action, Change, FieldChange, Plan};
use crate::role;
use crate::table;
use crate::{ProvisionError, ResourceKind};

/// The action for every resource, as applied.
#[derive(Debug, Clone)]
pub(crate) struct Actions {
    pub table: Action,
    pub log_group: Action,
    pub role: Action,
    pub policy: Action,
    pub function: Action,
    pub api: ApiPlan,
    pub permission: Action,
}

/// An observation, the desired state resolved against it, and the diff between them.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub observed: Observed,
    pub desired: Desired<'a>,
    pub actions: Actions,
    pub plan: Plan,
}

/// Observe, check ownership, resolve, diff: everything `plan` reports and `up` starts from.
pub(crate) async fn prepare<'a>(
    ctx: &Ctx,
    spec: &'a StackSpec,
    code: &'a FunctionCode,
) -> anyhow::Result<Prepared<'a>> {
    let observed = observe(ctx, &spec.name, Scope::Everything).await?;
    ownership::check(&observed, &spec.name)?;
    let desired = Desired::new(spec, code, &observed)?;
    let actions = diff(&desired, &observed)?;
    let plan = changes(&desired, &actions);
    Ok(Prepared {
        observed,
        desired,
        actions,
        plan,
    })
}

fn diff(desired: &Desired<'_>, observed: &Observed) -> Result<Actions, ProvisionError> {
    let spec = desired.spec;
    let names = &desired.names;
    let tags = &desired.tags;
    let table = table::diff(&names.table, tags, observed.table.as_ref())?;
    let log_group = log_group::diff(
        spec.function.log_retention_days,
        tags,
        observed.log_group.as_ref(),
    );
    let role = role::diff_role(tags, observed.role.as_ref());
    let policy = role::diff_policy(&desired.access_policy, observed.role.as_ref());
    let function = function::diff(
        &desired.function(desired.role_arn.clone()),
        observed.function.as_ref(),
    );
    let mut api = api::diff(
        &desired.api(desired.function_arn.clone()),
        observed.apis.api.as_ref(),
    );
    api.add_duplicates(&observed.apis.duplicates);
    let permission = match (&observed.apis.api, &observed.function) {
        (Some(api), Some(_)) => permission::diff(
            &desired.env.execute_api_source_arn(&api.id),
            observed.permission.as_ref(),
        ),
        // A new API gets a new id, so an existing statement must be replaced.
        (None, Some(_)) => match &observed.permission {
            Some(found) => Action::Update {
                fields: vec![FieldChange::new(
                    PermissionField::SourceArn,
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

/// What `up` would do. Makes no mutating call.
pub(crate) async fn plan(ctx: &Ctx, spec: &StackSpec, code: &FunctionCode) -> anyhow::Result<Plan> {
    Ok(prepare(ctx, spec, code).await?.plan)
}
