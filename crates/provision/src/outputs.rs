//! `outputs`: the URL, ids and names of a deployed stack, read back from AWS; an error naming
//! what is missing when the stack is not (completely) deployed.

use stack::{StackName, StackOutputs};

use crate::context::Ctx;
use crate::observe::{observe, Scope};
use crate::ownership;
use crate::{DeployedAuthorizer, ProvisionError};

/// The outputs of a deployed stack and its authorizer's JWT configuration, read back from AWS.
pub(crate) async fn outputs(
    ctx: &Ctx,
    stack: &StackName,
) -> anyhow::Result<(StackOutputs, DeployedAuthorizer)> {
    let observed = observe(ctx, stack, Scope::Everything).await?;
    ownership::check(&observed, stack)?;
    let names = observed.names.clone();
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
            region: crate::observe::region(ctx)?.to_string(),
            missing: Vec::new(),
        }
        .into());
    }
    let (Some(api), Some(authorizer), true) = (&observed.apis.api, authorizer, missing.is_empty())
    else {
        return Err(ProvisionError::NotDeployed {
            stack: stack.to_string(),
            region: crate::observe::region(ctx)?.to_string(),
            missing,
        }
        .into());
    };
    let deployed = DeployedAuthorizer {
        issuer: authorizer.issuer.clone(),
        audiences: authorizer.audiences.clone(),
    };
    let outputs = StackOutputs {
        stack: stack.clone(),
        region: observed.env()?.region.clone(),
        url: stack::invoke_url(&api.id, &observed.env()?.region),
        api_id: api.id.clone(),
        authorizer_id: authorizer.id.clone(),
        table: names.table,
        role: names.role,
        function: names.function,
        log_group: names.log_group,
    };
    Ok((outputs, deployed))
}
