//! `up`: the shared first steps (`planning::prepare`), then every planned action applied.
//! Independent resources proceed concurrently; only the invoke permission waits for the
//! function (the integration and routes name it by its ARN, known in advance).

use stack::{StackOutputs, StackSpec};

use crate::api;
use crate::calls::fork;
use crate::context::Ctx;
use crate::field::ApiField;
use crate::function::{self, FunctionCode};
use crate::lock::{self, Acquired, LockSettings};
use crate::log_group;
use crate::observe;
use crate::permission;
use crate::plan::{Action, Plan};
use crate::planning::{prepare, Prepared};
use crate::role::{self, ObservedRole};
use crate::table;
use crate::ResourceKind;

/// Observe, diff, apply; returns what was planned and the stack's outputs.
///
/// A plan that creates nothing is applied as is. A plan that creates something is applied under
/// the stack's lock ([`crate::lock`]): when another run took the lock since this one looked, the
/// stack is observed and planned again under it (the other run may have done the work), so two
/// runs never both create the API or its authorizer.
pub(crate) async fn up(
    ctx: &Ctx,
    spec: &StackSpec,
    code: &FunctionCode,
) -> anyhow::Result<(Plan, StackOutputs)> {
    let group = spec.names(&observe::region(ctx)?).log_group;
    // Before observing: a later lock of exactly the next generation proves nobody changed the
    // stack in between.
    let before = lock::peek(ctx, &group).await?;
    let first = prepare(ctx, spec, code).await?;
    if !first.plan.creates() {
        let outputs = apply(ctx, &first).await?;
        return Ok((first.plan, outputs));
    }
    let settings = LockSettings::from_env();
    let mut first = Some(first);
    let mut created_group = false;
    // The role goes first of all: the IAM propagation that follows it (seconds) is the long pole
    // of a fresh stack, so it starts beside the lock's round trips instead of after them.
    // Creating it is safe without the lock: its name is unique in the account, so a second run
    // gets `EntityAlreadyExists` (and then plans again under the lock), and a role left by a run
    // that dies here is a partial stack that `up` completes and `down` removes.
    let mut created_role: Option<ObservedRole> = None;
    let mut role_taken = false;
    // Bounded: the log group vanishes under us only while a `down` deletes it, at most a few
    // times in a row.
    for _ in 0..5 {
        let tags = spec.tags.in_region(&observe::region(ctx)?);
        let group_planned = first
            .as_ref()
            .is_none_or(|f| f.actions.log_group == Action::Create);
        let role_planned = first.as_ref().filter(|f| f.actions.role == Action::Create);
        let take_lock = async {
            let mut created = false;
            if group_planned {
                created = log_group::create_if_missing(
                    ctx,
                    &group,
                    spec.function.log_retention_days,
                    &tags,
                )
                .await?;
            }
            anyhow::Ok((created, lock::acquire(ctx, &group, &settings).await?))
        };
        let create_role = async {
            let Some(prepared) = role_planned else {
                return Ok(None);
            };
            let names = &prepared.desired.names;
            role::apply_role(
                ctx,
                &names.role,
                &prepared.desired.tags,
                None,
                &Action::Create,
            )
            .await
            .map(|arn| Some(created_observation(arn, &prepared.desired.tags)))
        };
        let (locked, role_created) = tokio::join!(fork(take_lock), fork(create_role));
        let (group_created, acquired) = locked?;
        created_group |= group_created;
        match role_created {
            Ok(Some(role)) => created_role = Some(role),
            Ok(None) => {}
            Err(err) if already_exists(&err) => role_taken = true,
            Err(err) => {
                if let Acquired::Held(lease) = acquired {
                    lease.release(ctx).await;
                }
                return Err(err);
            }
        }
        let lease = match acquired {
            Acquired::Held(lease) => lease,
            Acquired::NoLogGroup => {
                first = None;
                continue;
            }
        };
        let unchanged_since = !before.busy && lease.generation == before.generation + 1;
        // A log group or role planned as new that this run did not create was created by
        // another run: the observation is out of date then too.
        let earlier = first
            .take()
            .filter(|f| unchanged_since && (f.actions.log_group != Action::Create || created_group))
            .filter(|_| !role_taken)
            .map(|mut prepared| {
                if created_group {
                    // Created above exactly as planned (retention and tags included).
                    prepared.actions.log_group = Action::NoChange;
                }
                if let Some(role) = created_role.clone() {
                    // Created above exactly as planned (trust policy and tags included).
                    prepared.observed.role = Some(role);
                    prepared.actions.role = Action::NoChange;
                }
                prepared
            });
        let result = async {
            let mut prepared = match earlier {
                Some(prepared) => prepared,
                None => prepare(ctx, spec, code).await?,
            };
            let outputs = apply(ctx, &prepared).await?;
            // Created by this run just before the lock, so the plan under the lock saw them.
            for (created, kind) in [
                (created_group, ResourceKind::LogGroup),
                (created_role.is_some(), ResourceKind::Role),
            ] {
                if let Some(change) = prepared
                    .plan
                    .changes
                    .iter_mut()
                    .find(|c| created && c.kind == kind)
                {
                    change.action = Action::Create;
                }
            }
            anyhow::Ok((prepared.plan, outputs))
        }
        .await;
        lease.release(ctx).await;
        return result;
    }
    anyhow::bail!(
        "log group {group} keeps disappearing while `up` takes the stack's lock: is a `wishctl down` \
         of this stack running in a loop? Retry when it has finished"
    )
}

/// What `CreateRole` made, as observing it would find it.
fn created_observation(arn: String, tags: &stack::Tags) -> ObservedRole {
    ObservedRole {
        arn,
        trust_policy: Some(stack::trust_policy()),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        policy: None,
        managed_policies: Vec::new(),
        other_inline: Vec::new(),
    }
}

/// Whether `CreateRole` failed because the role exists (another run made it).
fn already_exists(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| cause.to_string().contains("EntityAlreadyExists"))
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
    if actions.api.api.updates(ApiField::Duplicates) {
        // Tagged for this stack but not the stack's API (the one with routes, else the oldest): a
        // create whose answer was lost and that took effect anyway. Nothing points at it; it goes.
        for id in &observed.apis.duplicates {
            api::delete(&ctx.clients.apigateway, id).await?;
            ctx.progress.report(
                ResourceKind::Api,
                &format!("{} ({id})", desired.names.api),
                "deleted (a duplicate tagged for this stack, left by a create whose answer was lost)",
            );
        }
    }
    let names = &desired.names;
    let tags = &desired.tags;

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
        // The function's ARN is the planned one (`desired.function_arn`), which the API uses.
        let ((), _function_arn) = tokio::try_join!(
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
        anyhow::Ok(())
    };
    // The integration names the function by its ARN, known from its name before the function
    // exists, and API Gateway does not invoke or check the function when the integration and
    // routes are created: they go up beside the role and function (whose IAM propagation and
    // `Pending` wait are the long pole) instead of after them. Only the invoke permission, a
    // policy on the function itself, waits for the function.
    let api = desired.api(desired.function_arn.clone());
    let api_chain = async {
        let ids = api::apply_base(
            ctx,
            &desired.env,
            &api,
            observed.apis.api.as_ref(),
            &actions.api,
        )
        .await?;
        api::apply_routes(ctx, &api, &ids, observed.apis.api.as_ref(), &actions.api).await?;
        anyhow::Ok(ids)
    };
    let application = async {
        let ((), ids) = tokio::try_join!(fork(role_and_function), fork(api_chain))?;
        let source_arn = desired.env.execute_api_source_arn(&ids.api_id);
        permission::apply(
            ctx,
            &names.function,
            &names.permission_statement,
            &source_arn,
            &actions.permission,
        )
        .await?;
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
