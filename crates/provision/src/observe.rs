//! Reading the stack back from AWS: every resource under the stack's names, all kinds
//! concurrently. There is no state file; this observation is what `plan`, `up`, `down` and
//! `outputs` start from.

use stack::{Region, ResourceNames, StackName, Tags};

use crate::api::{self, ApiObservation};
use crate::calls::fork;
use crate::context::{Ctx, Env};
use crate::function::{self, ObservedFunction};
use crate::log_group::{self, ObservedLogGroup};
use crate::permission::{self, ObservedPermission};
use crate::role::{self, ObservedRole};
use crate::table::{self, ObservedTable};

/// Everything AWS holds under the stack's names.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    /// The region the clients talk to, and the stack's names there.
    pub region: Region,
    pub names: ResourceNames,
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
    /// Whether nothing of the stack exists.
    pub fn is_empty(&self) -> bool {
        self.table.is_none()
            && self.log_group.is_none()
            && self.role.is_none()
            && self.function.is_none()
            && self.apis.api.is_none()
            && self.apis.duplicates.is_empty()
    }

    pub fn env(&self) -> anyhow::Result<&Env> {
        self.env
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("internal error: the account was not read"))
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

/// Whether a resource's tags mark it as the stack's in `region`: the stack tag, and no region
/// tag naming another region.
pub(crate) fn owned(
    tags: &std::collections::BTreeMap<String, String>,
    stack: &StackName,
    region: &Region,
) -> bool {
    Tags::owned_in_region(
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        stack,
        region,
    )
}

/// The region the clients talk to, validated: it is part of the role's name.
pub(crate) fn region(ctx: &Ctx) -> anyhow::Result<Region> {
    let region = ctx.clients.region().ok_or_else(|| {
        anyhow::anyhow!(
            "no AWS region configured: pass --region, set AWS_REGION, or set a region in the profile"
        )
    })?;
    Ok(region.parse::<Region>()?)
}

/// Reads every resource of the stack, all kinds concurrently.
pub(crate) async fn observe(
    ctx: &Ctx,
    stack: &StackName,
    scope: Scope,
) -> anyhow::Result<Observed> {
    let region = region(ctx)?;
    let names = stack.resources(&region);
    let clients = &ctx.clients;
    let everything = scope == Scope::Everything;
    let function_and_permission = async {
        let Some(mut found) = function::observe(&clients.lambda, &names.function).await? else {
            return Ok((None, None));
        };
        // Both by the function's name, side by side. `down` needs no URL: it goes with the
        // function.
        let url = async {
            if everything {
                function::function_url(&clients.lambda, &names.function).await
            } else {
                Ok(None)
            }
        };
        let policy = permission::observe(
            &clients.lambda,
            &names.function,
            &names.permission_statement,
        );
        let (url, policy) = tokio::try_join!(fork(url), fork(policy))?;
        found.url = url;
        found.other_statements = policy.others;
        anyhow::Ok((Some(found), policy.ours))
    };
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
        fork(role::observe(
            &clients.iam,
            &names.role,
            &names.role_policy,
            everything,
        )),
        fork(function_and_permission),
        fork(api::observe(
            &clients.apigateway,
            &names.api,
            &names.authorizer,
            |tags| owned(tags, stack, &region),
            everything,
            &ctx.warnings,
        )),
    )?;
    Ok(Observed {
        region,
        names,
        env,
        table,
        log_group,
        role,
        function,
        permission,
        apis,
    })
}
