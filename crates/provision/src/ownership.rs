//! Ownership: a resource under one of the stack's names is the stack's only when it carries the
//! stack's tag; anything else is never modified or deleted.

use std::collections::BTreeMap;

use stack::StackName;

use crate::error::ForeignResource;
use crate::observe::{owned, Observed};
use crate::{ProvisionError, ResourceKind};

/// Stops with [`ProvisionError::NotOwned`] when any resource under the stack's names is not
/// tagged for it.
pub(crate) fn check(observed: &Observed, stack: &StackName) -> Result<(), ProvisionError> {
    let names = stack.resources();
    let mut foreign = Vec::new();
    let mut check = |kind, name: &str, tags: Option<&BTreeMap<String, String>>| {
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
