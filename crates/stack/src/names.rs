//! The stack name and the deterministic names of every resource derived from it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::SpecError;

/// The stack used when `--stack` is not given.
pub const DEFAULT_STACK: &str = "wishlist";

/// Every role wishctl creates lives under this IAM path, so that `list_roles` with a path prefix
/// finds our roles without listing the whole account.
pub const ROLE_PATH: &str = "/wishctl/";

const MAX_STACK_NAME: usize = 32;

/// A validated stack name: 1-32 characters, lowercase ASCII letters, digits and `-`, starting with a
/// letter and not ending with `-`. The limit keeps every derived name inside the tightest AWS
/// limit (64 characters for IAM role and Lambda function names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StackName(String);

impl StackName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The names of every resource this stack owns.
    pub fn resources(&self) -> ResourceNames {
        ResourceNames::for_stack(self)
    }
}

impl Default for StackName {
    fn default() -> Self {
        StackName(DEFAULT_STACK.to_string())
    }
}

impl FromStr for StackName {
    type Err = SpecError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let err = |rule| SpecError::StackName {
            name: name.to_string(),
            rule,
        };
        if name.is_empty() {
            return Err(err("must not be empty"));
        }
        if name.len() > MAX_STACK_NAME {
            return Err(err("must be at most 32 characters"));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(err("must start with a lowercase letter"));
        }
        if name.ends_with('-') {
            return Err(err("must not end with '-'"));
        }
        if name.contains("--") {
            return Err(err("must not contain '--'"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(err("may only contain lowercase letters, digits and '-'"));
        }
        Ok(StackName(name.to_string()))
    }
}

impl TryFrom<String> for StackName {
    type Error = SpecError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<StackName> for String {
    fn from(value: StackName) -> Self {
        value.0
    }
}

impl fmt::Display for StackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The deterministic names of a stack's resources. With stack `NAME`:
///
/// | resource            | name                              |
/// |---------------------|-----------------------------------|
/// | DynamoDB table      | `wishctl-NAME-items`              |
/// | IAM role            | `wishctl-NAME-fn` (path `/wishctl/`) |
/// | inline role policy  | `wishctl-NAME-access`             |
/// | Lambda function     | `wishctl-NAME-api`                |
/// | log group           | `/aws/lambda/wishctl-NAME-api`    |
/// | HTTP API            | `wishctl-NAME`                    |
/// | JWT authorizer      | `wishctl-NAME-jwt`                |
/// | invoke permission   | statement id `wishctl-NAME-apigw` |
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceNames {
    pub table: String,
    pub role: String,
    pub role_policy: String,
    pub function: String,
    pub log_group: String,
    pub api: String,
    pub authorizer: String,
    pub permission_statement: String,
}

impl ResourceNames {
    pub fn for_stack(stack: &StackName) -> Self {
        let prefix = format!("wishctl-{stack}");
        let function = format!("{prefix}-api");
        ResourceNames {
            table: format!("{prefix}-items"),
            role: format!("{prefix}-fn"),
            role_policy: format!("{prefix}-access"),
            log_group: format!("/aws/lambda/{function}"),
            function,
            api: prefix.clone(),
            authorizer: format!("{prefix}-jwt"),
            permission_statement: format!("{prefix}-apigw"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_typical_ci_names() {
        for name in ["wishlist", "pr-1234", "ci-7f3a9b", "a", "a1-b2"] {
            assert!(name.parse::<StackName>().is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_names_that_would_break_aws_naming_rules() {
        for name in [
            "",
            "Wishlist",
            "1abc",
            "-abc",
            "abc-",
            "a--b",
            "has space",
            "under_score",
            "a.b",
            "abcdefghijabcdefghijabcdefghijabc",
        ] {
            assert!(name.parse::<StackName>().is_err(), "{name:?} was accepted");
        }
    }

    #[test]
    fn derived_names_fit_aws_limits_for_the_longest_stack_name() {
        let stack: StackName = "a".repeat(32).parse().unwrap();
        let names = stack.resources();
        assert!(names.role.len() <= 64);
        assert!(names.function.len() <= 64);
        assert!(names.table.len() <= 255);
        assert!(names.role_policy.len() <= 128);
        assert!(names.permission_statement.len() <= 100);
    }

    #[test]
    fn names_derive_deterministically_from_the_stack() {
        let names = "pr-7".parse::<StackName>().unwrap().resources();
        assert_eq!(names.table, "wishctl-pr-7-items");
        assert_eq!(names.function, "wishctl-pr-7-api");
        assert_eq!(names.log_group, "/aws/lambda/wishctl-pr-7-api");
        assert_eq!(names.role, "wishctl-pr-7-fn");
        assert_eq!(names.api, "wishctl-pr-7");
    }
}
