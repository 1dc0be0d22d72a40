//! `down`: remove everything the stack owns in reverse dependency order, attempt every delete and
//! report each result; never delete a table's items silently.

use std::fmt;

use serde::Serialize;
use stack::StackName;

use crate::api;
use crate::calls::fork;
use crate::context::Ctx;
use crate::function;
use crate::log_group;
use crate::observe::{observe, Scope};
use crate::ownership;
use crate::permission;
use crate::role;
use crate::table;
use crate::{ProvisionError, ResourceKind};

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
    ownership::check(&observed, stack)?;
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
