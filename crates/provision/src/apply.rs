//! `up`: the shared first steps (`planning::prepare`), then every planned action applied.
//! Independent resources proceed concurrently; only the integration, the routes and the
//! permission wait for the function.

use stack::{StackOutputs, StackSpec};

use crate::api;
use crate::calls::fork;
use crate::context::Ctx;
use crate::function::{self, FunctionCode};
use crate::log_group;
use crate::permission;
use crate::plan::Plan;
use crate::planning::{prepare, Prepared};
use crate::role;
use crate::table;
use crate::ResourceKind;

/// Observe, diff, apply; returns what was planned and the stack's outputs.
pub(crate) async fn up(
    ctx: &Ctx,
    spec: &StackSpec,
    code: &FunctionCode,
) -> anyhow::Result<(Plan, StackOutputs)> {
    let prepared = prepare(ctx, spec, code).await?;
    let outputs = apply(ctx, &prepared).await?;
    Ok((prepared.plan, outputs))
}

/// Applies a prepared plan.
async fn apply(ctx: &Ctx, prepared: &Prepared<'_>) -> anyhow::Result<StackOutputs> {
    let Prepared {
        observed,
        desired,
        actions,
        plan,
    } = prepared;
    let spec = desired.spec;
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
    Ok(StackOutputs {
        stack: spec.name.clone(),
        region: desired.env.region.clone(),
        url: stack::invoke_url(&ids.api_id, &desired.env.region),
        api_id: ids.api_id,
        authorizer_id: ids.authorizer_id,
        table: names.table.clone(),
        role: names.role.clone(),
        function: names.function.clone(),
        log_group: names.log_group.clone(),
    })
}
