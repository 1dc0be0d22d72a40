//! The fields a plan can change, typed per resource kind.
//!
//! Each resource kind has its own enum of the fields `plan` compares; `apply` asks whether a
//! given field is among the planned changes ([`crate::Action::updates`]) to choose the update
//! call, so a label is only ever text for people (and the `field` of `--output json`), never a
//! key that decides what is called.

use std::fmt;

use serde::{Serialize, Serializer};

/// Declares a per-resource field enum with the label of each variant.
macro_rules! fields {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The label `plan` prints and `--output json` carries in `field`.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

fields!(
    /// The DynamoDB table.
    TableField {
        BillingMode => "billing mode",
        Tags => "tags",
    }
);

fields!(
    /// The function's log group.
    LogGroupField {
        Retention => "retention days",
        Tags => "tags",
    }
);

fields!(
    /// The function's IAM role.
    RoleField {
        TrustPolicy => "trust policy",
        Tags => "tags",
        /// Managed policies attached to the role (wishctl attaches none).
        ManagedPolicies => "managed policies",
        /// Inline policies other than the stack's own.
        InlinePolicies => "other inline policies",
    }
);

fields!(
    /// The role's inline access policy.
    RolePolicyField {
        Document => "policy document",
    }
);

fields!(
    /// The Lambda function.
    FunctionField {
        Runtime => "runtime",
        Handler => "handler",
        Architecture => "architecture",
        Memory => "memory MB",
        Timeout => "timeout s",
        Environment => "environment",
        Role => "role",
        Code => "code sha256",
        /// Lambda layers (wishctl attaches none: a layer can hold an extension that sees every
        /// invocation).
        Layers => "layers",
        Description => "description",
        /// X-Ray tracing (`PassThrough`, as wishctl declares it).
        Tracing => "tracing mode",
        Tags => "tags",
        /// A function URL (an entry point that bypasses the API and its authorizer).
        Url => "function url",
        /// Statements in the function's resource policy other than the stack's own.
        ResourcePolicy => "other resource policy statements",
    }
);

fields!(
    /// The HTTP API itself, and children of it that are not the stack's.
    ApiField {
        Cors => "cors",
        Tags => "tags",
        Routes => "other routes",
        Integrations => "other integrations",
        Authorizers => "other authorizers",
        Stages => "other stages",
        /// Further HTTP APIs tagged for the stack (a create whose answer was lost, repeated).
        Duplicates => "duplicate http apis",
    }
);

fields!(
    /// The JWT authorizer.
    AuthorizerField {
        Type => "type",
        Name => "name",
        IdentitySource => "identity source",
        Issuer => "issuer",
        Audience => "audience",
    }
);

fields!(
    /// The `$default` stage.
    StageField {
        AutoDeploy => "auto deploy",
        Tags => "tags",
    }
);

fields!(
    /// The Lambda proxy integration.
    IntegrationField {
        Type => "type",
        Uri => "uri",
        PayloadFormat => "payload format",
    }
);

fields!(
    /// One route.
    RouteField {
        Target => "target",
        Authorization => "authorization",
        Authorizer => "authorizer",
        Scopes => "scopes",
    }
);

fields!(
    /// The invoke permission statement.
    PermissionField {
        SourceArn => "source arn",
        Principal => "principal",
        Action => "action",
    }
);

/// A field of any resource kind; serialized (and displayed) as its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Table(TableField),
    LogGroup(LogGroupField),
    Role(RoleField),
    RolePolicy(RolePolicyField),
    Function(FunctionField),
    Api(ApiField),
    Authorizer(AuthorizerField),
    Stage(StageField),
    Integration(IntegrationField),
    Route(RouteField),
    Permission(PermissionField),
}

impl Field {
    pub fn label(self) -> &'static str {
        match self {
            Field::Table(f) => f.label(),
            Field::LogGroup(f) => f.label(),
            Field::Role(f) => f.label(),
            Field::RolePolicy(f) => f.label(),
            Field::Function(f) => f.label(),
            Field::Api(f) => f.label(),
            Field::Authorizer(f) => f.label(),
            Field::Stage(f) => f.label(),
            Field::Integration(f) => f.label(),
            Field::Route(f) => f.label(),
            Field::Permission(f) => f.label(),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.label())
    }
}

macro_rules! into_field {
    ($($kind:ident => $variant:ident),+ $(,)?) => {
        $(impl From<$kind> for Field {
            fn from(field: $kind) -> Self {
                Field::$variant(field)
            }
        })+
    };
}

into_field!(
    TableField => Table,
    LogGroupField => LogGroup,
    RoleField => Role,
    RolePolicyField => RolePolicy,
    FunctionField => Function,
    ApiField => Api,
    AuthorizerField => Authorizer,
    StageField => Stage,
    IntegrationField => Integration,
    RouteField => Route,
    PermissionField => Permission,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_different_resources_with_the_same_label_stay_distinct() {
        let table: Field = TableField::Tags.into();
        let stage: Field = StageField::Tags.into();
        assert_eq!(table.label(), stage.label());
        assert_ne!(table, stage);
        assert_eq!(
            serde_json::to_value(Field::from(AuthorizerField::Audience)).unwrap_or_default(),
            serde_json::json!("audience")
        );
    }
}
