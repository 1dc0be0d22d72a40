//! The refusals and give-ups of the reconciler that callers tell apart from ordinary AWS
//! failures (which travel as `anyhow::Error` with context naming the resource).

use std::fmt;
use std::time::Duration;

use thiserror::Error;

use crate::ResourceKind;

/// A resource found under one of the stack's names that the stack does not own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignResource {
    pub kind: ResourceKind,
    pub name: String,
}

impl fmt::Display for ForeignResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// Refusals and give-ups the CLI (and tests) tell apart from ordinary AWS failures. Everything
/// else travels as `anyhow::Error` with context naming the resource.
#[derive(Debug, Error)]
pub enum ProvisionError {
    /// A resource with the expected name exists without the `wishctl:stack` tag of this stack.
    /// It is never modified or deleted.
    #[error(
        "{} not owned by stack {stack} (no tag wishctl:stack={stack}): refusing to modify or delete {}. \
         Remove {} or choose another --stack; to adopt it, tag it wishctl:stack={stack}",
        list(resources), if resources.len() == 1 { "it" } else { "them" }, if resources.len() == 1 { "it" } else { "them" }
    )]
    NotOwned {
        stack: String,
        resources: Vec<ForeignResource>,
    },
    /// `down` without `--delete-data` / `--keep-data` on a table that holds items.
    #[error(
        "table {table} holds items: nothing was deleted. Run `wishctl down --stack {stack} \
         --delete-data` to delete them with the stack, or `wishctl down --stack {stack} \
         --keep-data` to keep the table (a later `up` adopts it)"
    )]
    TableNotEmpty { stack: String, table: String },
    /// A bounded wait ran out.
    #[error("timed out after {}s waiting for {what}", waited.as_secs())]
    Timeout { what: String, waited: Duration },
    /// The table exists with a key schema the handler cannot use; DynamoDB cannot change it.
    #[error("table {table} has key schema {found}, expected partition key {} only; delete the table or choose another --stack", stack::TABLE_KEY.describe())]
    IncompatibleTable { table: String, found: String },
    /// `outputs` on a stack that does not exist (or only in part).
    #[error("stack {stack} is not deployed in {region}{}", if missing.is_empty() { " (`wishctl list` shows the stacks of a region; --region picks another)".to_string() } else { format!(" completely: missing {}; run `wishctl up` to complete it", missing.join(", ")) })]
    NotDeployed {
        stack: String,
        region: String,
        missing: Vec<String>,
    },
    /// `gc --expired` found, under the stack's lock, that an `up` renewed the stack's expiry
    /// since the listing.
    #[error("stack {stack} is no longer expired (it now expires {expiry}): an `up` renewed it after `gc` listed it; nothing was deleted")]
    NoLongerExpired { stack: String, expiry: String },
    /// `logs` read its bound of `FilterLogEvents` pages (200) and the window still
    /// had more: a busy log group or a long `--since` (the service hands out many small pages,
    /// some of them empty, while it searches). The lines of the pages read were passed on.
    #[error(
        "log group {log_group}: the window since {since} has more than {pages} pages of events; \
         stopped after {}. Narrow --since (e.g. --since 10m) to read the newest lines",
        if *events == 0 { "those pages, which held none of its lines".to_string() } else { format!("the {events} oldest line(s)") }
    )]
    LogWindowTooLarge {
        log_group: String,
        since: String,
        pages: usize,
        events: usize,
    },
    /// `down` attempted every delete and some failed.
    #[error("down failed for {}", failures.join("; "))]
    TeardownIncomplete { failures: Vec<String> },
}

fn list(resources: &[ForeignResource]) -> String {
    resources
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
