//! What `plan` reports and `up` applies: per resource, create / update (fields old -> new) /
//! no change.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use stack::Tags;

use crate::field::Field;

/// The kinds of resources a stack is made of, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    Table,
    LogGroup,
    Role,
    RolePolicy,
    Function,
    Api,
    Authorizer,
    Stage,
    Integration,
    Route,
    Permission,
}

impl ResourceKind {
    pub fn label(self) -> &'static str {
        match self {
            ResourceKind::Table => "table",
            ResourceKind::LogGroup => "log group",
            ResourceKind::Role => "role",
            ResourceKind::RolePolicy => "role policy",
            ResourceKind::Function => "function",
            ResourceKind::Api => "http api",
            ResourceKind::Authorizer => "authorizer",
            ResourceKind::Stage => "stage",
            ResourceKind::Integration => "integration",
            ResourceKind::Route => "route",
            ResourceKind::Permission => "permission",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One field that differs between AWS and the description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: Field,
    pub old: String,
    pub new: String,
}

impl FieldChange {
    pub fn new(field: impl Into<Field>, old: impl fmt::Display, new: impl fmt::Display) -> Self {
        FieldChange {
            field: field.into(),
            old: old.to_string(),
            new: new.to_string(),
        }
    }
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.field, self.old, self.new)
    }
}

/// What `up` does (or would do) to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update { fields: Vec<FieldChange> },
    NoChange,
}

impl Action {
    pub(crate) fn from_fields(fields: Vec<FieldChange>) -> Self {
        if fields.is_empty() {
            Action::NoChange
        } else {
            Action::Update { fields }
        }
    }

    pub fn is_change(&self) -> bool {
        !matches!(self, Action::NoChange)
    }

    /// Whether `field` is among the fields to update.
    pub fn updates(&self, field: impl Into<Field>) -> bool {
        let field = field.into();
        match self {
            Action::Update { fields } => fields.iter().any(|f| f.field == field),
            _ => false,
        }
    }
}

/// The planned action for one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ResourceKind,
    pub name: String,
    #[serde(flatten)]
    pub action: Action,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Create => write!(f, "+ {} {} (create)", self.kind, self.name),
            Action::NoChange => write!(f, "= {} {} (no change)", self.kind, self.name),
            Action::Update { fields } => {
                write!(f, "~ {} {} (update)", self.kind, self.name)?;
                for field in fields {
                    write!(f, "\n    {field}")?;
                }
                Ok(())
            }
        }
    }
}

/// Every resource of a stack with what `up` would do to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub stack: String,
    pub changes: Vec<Change>,
}

impl Plan {
    /// Whether `up` would change anything.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_change())
    }

    /// The planned action for the first resource of `kind`.
    pub fn action(&self, kind: ResourceKind) -> Option<&Action> {
        self.changes
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| &c.action)
    }

    /// (to create, to update, unchanged)
    pub fn counts(&self) -> (usize, usize, usize) {
        self.changes
            .iter()
            .fold((0, 0, 0), |(c, u, n), change| match change.action {
                Action::Create => (c + 1, u, n),
                Action::Update { .. } => (c, u + 1, n),
                Action::NoChange => (c, u, n + 1),
            })
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for change in &self.changes {
            writeln!(f, "{change}")?;
        }
        let (create, update, same) = self.counts();
        write!(
            f,
            "stack {}: {create} to create, {update} to update, {same} unchanged",
            self.stack
        )
    }
}

/// The tag change a resource needs: tags of the description that are missing or different.
pub(crate) fn tag_change(
    field: impl Into<Field>,
    desired: &Tags,
    found: &BTreeMap<String, String>,
) -> Option<FieldChange> {
    let missing = desired.missing_from(found.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if missing.is_empty() {
        return None;
    }
    let old = missing
        .keys()
        .map(|k| match found.get(k) {
            Some(v) => format!("{k}={v}"),
            None => format!("{k}=(unset)"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let new = missing
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(FieldChange::new(field, old, new))
}

/// The progress line of an update: `updated (field, field)`.
pub(crate) fn updated_message(fields: &[FieldChange]) -> String {
    let names: Vec<&str> = fields.iter().map(|f| f.field.label()).collect();
    format!("updated ({})", names.join(", "))
}
