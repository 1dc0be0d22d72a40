//! `down`: remove everything the stack owns in reverse dependency order, attempt every delete and
//! report each result; never delete a table's items silently.

use std::fmt;

use serde::Serialize;
use stack::{Expiry, StackName, UtcTime, TAG_EXPIRES_AT};

use crate::api;
use crate::calls::fork;
use crate::context::Ctx;
use crate::function;
use crate::lock::{self, Acquired, LockSettings};
use crate::log_group;
use crate::observe::{observe, Observed, Scope};
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
    /// Not deleted although asked to: the table received items while `down` ran (why).
    Refused(String),
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
            Outcome::Refused(why) => write!(f, "! {} {} NOT deleted: {why}", self.kind, self.name),
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

    /// The removals that did not happen: failed deletes, and a table refused because items
    /// arrived during `down`.
    pub fn failures(&self) -> Vec<&Removal> {
        self.removals
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_) | Outcome::Refused(_)))
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
            Outcome::Refused(why) => format!("NOT deleted: {why}"),
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

/// What `down` checks again, on what it reads under the stack's lock, before it deletes
/// anything. `gc` removes a stack for a reason that an `up` may have taken away since `gc`
/// listed it: a pipeline that re-runs `up --ttl 2h` renews a stack that was about to expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownCondition {
    /// None (a plain `down`).
    Always,
    /// The stack's expiry (`wishctl:expires-at`, read from its table, function and log group)
    /// has passed at this time.
    ExpiredAt(UtcTime),
}

impl DownCondition {
    fn check(self, observed: &Observed, stack: &StackName) -> Result<(), ProvisionError> {
        let DownCondition::ExpiredAt(now) = self else {
            return Ok(());
        };
        let tags = [
            observed.table.as_ref().map(|t| &t.tags),
            observed.function.as_ref().map(|f| &f.tags),
            observed.log_group.as_ref().map(|g| &g.tags),
        ];
        let expiry = tags
            .into_iter()
            .flatten()
            .filter_map(|tags| tags.get(TAG_EXPIRES_AT))
            .map(|value| Expiry::from_tag(value))
            .reduce(Expiry::longest);
        match expiry {
            Some(expiry) if expiry.is_expired(now) => Ok(()),
            // Nothing left that carries the tag: a partial stack; removing it is what was asked.
            None => Ok(()),
            Some(expiry) => Err(ProvisionError::NoLongerExpired {
                stack: stack.to_string(),
                expiry: match expiry {
                    Expiry::At(at) => at.to_string(),
                    Expiry::Never => "never".to_string(),
                    Expiry::Unreadable(value) => format!("{value:?}"),
                },
            }),
        }
    }
}

/// Removes everything the stack owns in reverse dependency order, attempting every delete and
/// reporting each result. Refuses (deleting nothing) when a resource is not the stack's or when
/// the table holds items and `data` does not say what to do with them.
///
/// Holds the stack's lock ([`crate::lock`]) while it works, so that it never interleaves with an
/// `up`: a racing `up` either finishes first (then everything goes) or waits and then builds the
/// stack again from nothing. The log group, which holds the lock, goes last.
///
/// The stack is read once, after a look at the lock ([`lock::peek`]) and before the lock is
/// taken (a refusal then changes nothing at all). It is read again under the lock only when that
/// reading may be out of date: when another run held or took the lock since the look (as `up`
/// decides), or when `condition` must be checked again (`gc`: an `up --ttl` may have renewed
/// the stack meanwhile without taking the lock).
pub(crate) async fn down(
    ctx: &Ctx,
    stack: &StackName,
    data: DataPolicy,
    condition: DownCondition,
) -> anyhow::Result<Teardown> {
    let group = stack.resources(&crate::observe::region(ctx)?).log_group;
    // Before observing: a lock of exactly the next generation then proves that no `up` changed
    // the stack after this reading began.
    let before = lock::peek(ctx, &group).await?;
    let first = refusals(ctx, stack, data, condition).await?;
    if first.log_group.is_none() {
        return teardown(ctx, stack, data, first).await;
    }
    let lease = match lock::acquire(ctx, &first.names.log_group, &LockSettings::from_env()).await? {
        Acquired::Held(lease) => Some(lease),
        Acquired::NoLogGroup => None,
    };
    let unchanged_since = lease
        .as_ref()
        .is_some_and(|lease| !before.busy && lease.generation == before.generation + 1);
    let observed = if unchanged_since && condition == DownCondition::Always {
        Ok(first)
    } else {
        refusals(ctx, stack, data, condition).await
    };
    let result = match observed {
        Ok(observed) => teardown(ctx, stack, data, observed).await,
        Err(err) => Err(err),
    };
    if let Some(lease) = lease {
        let group_gone = result.as_ref().is_ok_and(|t| {
            t.removals
                .iter()
                .any(|r| r.kind == ResourceKind::LogGroup && r.outcome == Outcome::Deleted)
        });
        if group_gone {
            lease.gone();
        } else {
            lease.release(ctx).await;
        }
    }
    result
}

/// What `down` checks before it takes the lock, read-only: a resource under the stack's names
/// that is not the stack's ([`ProvisionError::NotOwned`]), a `condition` that no longer holds,
/// and a table with items that `data` does not say what to do with
/// ([`ProvisionError::TableNotEmpty`]). `gc --dry-run` runs exactly this, so that it promises
/// only what the real run does; `down` runs it again under the lock when its first reading may
/// be out of date.
pub(crate) async fn refusals(
    ctx: &Ctx,
    stack: &StackName,
    data: DataPolicy,
    condition: DownCondition,
) -> anyhow::Result<Observed> {
    let observed = observe(ctx, stack, Scope::Teardown).await?;
    ownership::check(&observed, stack)?;
    condition.check(&observed, stack)?;
    refuse_if_not_empty(ctx, stack, &observed, data).await?;
    Ok(observed)
}

/// Refuses, deleting nothing, when `data` keeps a table's items safe and the table holds some.
async fn refuse_if_not_empty(
    ctx: &Ctx,
    stack: &StackName,
    observed: &Observed,
    data: DataPolicy,
) -> anyhow::Result<()> {
    let table = &observed.names.table;
    if observed.table.is_some()
        && data == DataPolicy::RefuseIfNotEmpty
        && table::holds_items(&ctx.clients.dynamodb, table).await?
    {
        return Err(ProvisionError::TableNotEmpty {
            stack: stack.to_string(),
            table: table.clone(),
        }
        .into());
    }
    Ok(())
}

/// Deletes what `observed` found, every delete that AWS lets run beside the others at once: the
/// API (its routes, integration, authorizer and stage go with it), the function (its invoke
/// permission first), the role (its policy first: IAM refuses to delete a role that has one),
/// and with [`DataPolicy::Delete`] the table. A table whose items are kept safe goes only after
/// all of them, behind its last emptiness check; the log group, which holds the stack's lock,
/// goes last.
async fn teardown(
    ctx: &Ctx,
    stack: &StackName,
    data: DataPolicy,
    observed: Observed,
) -> anyhow::Result<Teardown> {
    let names = observed.names.clone();
    let clients = &ctx.clients;

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
    // The permission first: `DeleteFunction` takes it along, and a `RemovePermission` that came
    // second would find it already gone.
    let function_deletes = async {
        let permission = attempt(
            ctx,
            ResourceKind::Permission,
            names.permission_statement.clone(),
            observed.permission.is_some(),
            permission::remove(
                &clients.lambda,
                &names.function,
                &names.permission_statement,
            ),
        )
        .await;
        let function = attempt(
            ctx,
            ResourceKind::Function,
            names.function.clone(),
            observed.function.is_some(),
            function::delete(&clients.lambda, &names.function),
        )
        .await;
        [permission, function]
    };
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
    let has_table = observed.table.is_some();
    // Deleted with its items, or kept: the table waits for nothing.
    let table_now = async {
        match data {
            DataPolicy::RefuseIfNotEmpty => None,
            DataPolicy::Delete | DataPolicy::Keep => {
                Some(delete_table(ctx, stack, &names.table, data, has_table).await)
            }
        }
    };
    let (mut removals, function, role, table) = tokio::join!(
        fork(api_deletes),
        fork(function_deletes),
        fork(role_deletes),
        fork(table_now),
    );
    removals.extend(function);
    removals.extend(role);

    // The table whose items are kept safe, once every other delete has ended: its last
    // emptiness check runs alone, right before DeleteTable, after everything that could write
    // to it is gone.
    let table = match table {
        Some(table) => table,
        None => fork(delete_table(ctx, stack, &names.table, data, has_table)).await,
    };
    removals.push(table);

    // The log group, which holds the stack's lock.
    removals.push(
        fork(attempt(
            ctx,
            ResourceKind::LogGroup,
            names.log_group.clone(),
            observed.log_group.is_some(),
            log_group::delete(&clients.logs, &names.log_group),
        ))
        .await,
    );
    Ok(Teardown {
        stack: stack.to_string(),
        removals,
    })
}

/// Deletes the table as `data` says. With [`DataPolicy::RefuseIfNotEmpty`] it checks once more
/// that the table is empty (a consistent read) right before `DeleteTable`: the caller has
/// removed everything that could write to it (the API, the permission, the function) and ends
/// every other delete first, so an item written at any moment before this check is seen and the
/// table is kept, never deleted with it silently.
async fn delete_table(
    ctx: &Ctx,
    stack: &StackName,
    name: &str,
    data: DataPolicy,
    exists: bool,
) -> Removal {
    let ddb = &ctx.clients.dynamodb;
    let outcome = |outcome| Removal {
        kind: ResourceKind::Table,
        name: name.to_string(),
        outcome,
    };
    if data == DataPolicy::Keep && exists {
        ctx.progress
            .report(ResourceKind::Table, name, "kept (--keep-data)");
        return outcome(Outcome::Kept);
    }
    if data == DataPolicy::RefuseIfNotEmpty && exists {
        match table::holds_items(ddb, name).await {
            Ok(false) => {}
            Ok(true) => {
                let why = format!(
                    "items were written to it while `down` ran; run `wishctl down --stack \
                     {stack} --delete-data` to delete them, or `--keep-data` to keep the table"
                );
                ctx.progress
                    .report(ResourceKind::Table, name, format!("NOT deleted: {why}"));
                return outcome(Outcome::Refused(why));
            }
            Err(err) => {
                let err = format!(
                    "{err:#} (the table was not deleted: run `wishctl down` again, or \
                     `--delete-data` to delete it with whatever it holds)"
                );
                ctx.progress
                    .report(ResourceKind::Table, name, format!("FAILED: {err}"));
                return outcome(Outcome::Failed(err));
            }
        }
    }
    attempt(
        ctx,
        ResourceKind::Table,
        name.to_string(),
        exists,
        table::delete(ddb, name),
    )
    .await
}
