//! The IAM policy a CI deploy role needs to run wishctl on a family of stacks (`wishctl policy`).
//!
//! [`OPERATIONS`] is the one table of every AWS operation wishctl's commands make (`up`, `plan`,
//! `down`, `outputs`, `list`, `gc`, `logs`; `verify` only reads the outputs) and the IAM actions
//! each needs, with the kind of resource the action applies to ([`Target`]). The policy document
//! is built from that table, so a new call in the reconciler needs one new row here; the policy
//! coverage test (deploy/tests/cli/policy.rs) runs every command against moto with the call log
//! and fails, naming the row to add, when a call is missing or a grant is never used.
//!
//! Resources are scoped to the name patterns of the stacks with a given prefix, derived from
//! [`crate::ResourceNames`] (never restated here). What IAM cannot narrow is granted on `*` and
//! says so in its statement id: the account-wide listings `list` and `gc` need
//! (`dynamodb:ListTables`, `lambda:ListFunctions`, `iam:ListRoles`, `logs:DescribeLogGroups`),
//! and API Gateway, whose HTTP API ids are random and whose management API is authorised by HTTP
//! method on resource paths (`/apis`, `/apis/*`, `/tags/*`). `iam:PassRole` is granted on the
//! stacks' roles only, and only towards Lambda (`iam:PassedToService`). `sts:GetCallerIdentity`
//! needs no permission.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};
use thiserror::Error;

use crate::{StackName, LAMBDA_SERVICE_PRINCIPAL, ROLE_PATH};

/// What the policy cannot narrow on API Gateway, said with the policy (`wishctl policy` prints it
/// beside the statements, and on stderr with `--output json`).
///
/// Why there is no tag condition: API Gateway documents `aws:ResourceTag` / `aws:RequestTag`
/// conditions, but of an HTTP API (API Gateway V2) only the API, its stages, domain names and
/// VPC links can carry tags, and it documents tag inheritance to child resources (routes,
/// integrations, authorizers) for REST APIs (V1) only ("API Gateway resources that can be
/// tagged", developer guide). A condition on the stack tag would therefore deny the calls on
/// routes, integrations and authorizers that `up` and drift repair make on the stacks' own APIs,
/// and a condition on the API alone would leave those children of every API open anyway.
pub const API_GATEWAY_NOTE: &str = "API Gateway is not narrowed to the stacks: this role may \
    read, change and delete any HTTP API of the region (apigateway:GET/POST/PATCH/DELETE on \
    /apis/*), not only the stacks'. HTTP API ids are random, and tag conditions cannot narrow it \
    reliably: of an HTTP API only the API and its stages carry tags, and AWS documents tag \
    inheritance to routes, integrations and authorizers for REST APIs only. wishctl itself \
    changes only the APIs tagged for a stack, but the role does not enforce that. Mitigation: \
    give each pipeline's stacks an AWS account of their own, with no other HTTP APIs in it.";

/// The kind of resource an action is granted on; one policy statement per target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Account-wide listings: IAM cannot narrow them to a name.
    Listing,
    /// The stacks' DynamoDB tables.
    Table,
    /// The stacks' IAM roles (under the `/wishctl/` path).
    Role,
    /// `iam:PassRole` on the stacks' roles, to Lambda only.
    PassRoleToLambda,
    /// The stacks' Lambda functions.
    Function,
    /// The stacks' log groups.
    LogGroup,
    /// API Gateway's `/apis` collection (list and create HTTP APIs).
    ApiCollection,
    /// Any HTTP API of the region and its children (`/apis/*`): API ids are random.
    Api,
    /// API Gateway's tagging resource (`/tags/*`).
    ApiTags,
}

impl Target {
    /// The statement id of this target's statement.
    pub fn sid(self) -> &'static str {
        match self {
            Target::Listing => "ListStacksAccountWideCannotBeNarrowed",
            Target::Table => "StackTables",
            Target::Role => "StackRoles",
            Target::PassRoleToLambda => "PassStackRolesToLambdaOnly",
            Target::Function => "StackFunctions",
            Target::LogGroup => "StackLogGroups",
            Target::ApiCollection => "HttpApiCollectionCannotBeNarrowed",
            Target::Api => "HttpApisByRandomIdCannotBeNarrowed",
            Target::ApiTags => "HttpApiTagging",
        }
    }
}

/// One IAM action on one kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Grant {
    pub action: &'static str,
    pub target: Target,
}

/// An AWS operation (as the SDK names it, the way the call log records it) and what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OperationGrants {
    /// The SDK's service name: `DynamoDB`, `IAM`, `Lambda`, `CloudWatch Logs`, `ApiGatewayV2`,
    /// `STS`.
    pub service: &'static str,
    pub operation: &'static str,
    pub grants: &'static [Grant],
}

const fn g(action: &'static str, target: Target) -> Grant {
    Grant { action, target }
}

const fn op(
    service: &'static str,
    operation: &'static str,
    grants: &'static [Grant],
) -> OperationGrants {
    OperationGrants {
        service,
        operation,
        grants,
    }
}

use Target::{
    Api, ApiCollection, ApiTags, Function, Listing, LogGroup, PassRoleToLambda, Role, Table,
};

const DDB: &str = "DynamoDB";
const IAM: &str = "IAM";
const LAMBDA: &str = "Lambda";
const LOGS: &str = "CloudWatch Logs";
const APIGW: &str = "ApiGatewayV2";

/// Every operation wishctl makes, and the IAM actions it needs. Creating a resource with tags
/// also needs the service's tagging action; handing a role to Lambda needs `iam:PassRole`.
pub const OPERATIONS: &[OperationGrants] = &[
    // Who am I (account id for ARNs): needs no permission.
    op("STS", "GetCallerIdentity", &[]),
    // DynamoDB: the table.
    op(DDB, "ListTables", &[g("dynamodb:ListTables", Listing)]),
    op(DDB, "DescribeTable", &[g("dynamodb:DescribeTable", Table)]),
    op(
        DDB,
        "ListTagsOfResource",
        &[g("dynamodb:ListTagsOfResource", Table)],
    ),
    op(
        DDB,
        "CreateTable",
        &[
            g("dynamodb:CreateTable", Table),
            g("dynamodb:TagResource", Table),
        ],
    ),
    op(DDB, "UpdateTable", &[g("dynamodb:UpdateTable", Table)]),
    op(DDB, "TagResource", &[g("dynamodb:TagResource", Table)]),
    op(DDB, "Scan", &[g("dynamodb:Scan", Table)]),
    op(DDB, "DeleteTable", &[g("dynamodb:DeleteTable", Table)]),
    // IAM: the function's role and its inline policy.
    op(IAM, "ListRoles", &[g("iam:ListRoles", Listing)]),
    op(IAM, "GetRole", &[g("iam:GetRole", Role)]),
    op(IAM, "ListRoleTags", &[g("iam:ListRoleTags", Role)]),
    op(
        IAM,
        "CreateRole",
        &[g("iam:CreateRole", Role), g("iam:TagRole", Role)],
    ),
    op(IAM, "TagRole", &[g("iam:TagRole", Role)]),
    op(
        IAM,
        "UpdateAssumeRolePolicy",
        &[g("iam:UpdateAssumeRolePolicy", Role)],
    ),
    op(IAM, "GetRolePolicy", &[g("iam:GetRolePolicy", Role)]),
    op(IAM, "PutRolePolicy", &[g("iam:PutRolePolicy", Role)]),
    op(IAM, "DeleteRolePolicy", &[g("iam:DeleteRolePolicy", Role)]),
    op(IAM, "ListRolePolicies", &[g("iam:ListRolePolicies", Role)]),
    op(
        IAM,
        "ListAttachedRolePolicies",
        &[g("iam:ListAttachedRolePolicies", Role)],
    ),
    op(IAM, "DetachRolePolicy", &[g("iam:DetachRolePolicy", Role)]),
    op(IAM, "DeleteRole", &[g("iam:DeleteRole", Role)]),
    // Lambda: the function and its invoke permission.
    op(
        LAMBDA,
        "ListFunctions",
        &[g("lambda:ListFunctions", Listing)],
    ),
    op(LAMBDA, "GetFunction", &[g("lambda:GetFunction", Function)]),
    op(LAMBDA, "ListTags", &[g("lambda:ListTags", Function)]),
    op(
        LAMBDA,
        "CreateFunction",
        &[
            g("lambda:CreateFunction", Function),
            g("lambda:TagResource", Function),
            g("iam:PassRole", PassRoleToLambda),
        ],
    ),
    op(
        LAMBDA,
        "UpdateFunctionConfiguration",
        &[
            g("lambda:UpdateFunctionConfiguration", Function),
            g("iam:PassRole", PassRoleToLambda),
        ],
    ),
    op(
        LAMBDA,
        "UpdateFunctionCode",
        &[g("lambda:UpdateFunctionCode", Function)],
    ),
    op(LAMBDA, "TagResource", &[g("lambda:TagResource", Function)]),
    op(LAMBDA, "GetPolicy", &[g("lambda:GetPolicy", Function)]),
    op(
        LAMBDA,
        "AddPermission",
        &[g("lambda:AddPermission", Function)],
    ),
    op(
        LAMBDA,
        "RemovePermission",
        &[g("lambda:RemovePermission", Function)],
    ),
    op(
        LAMBDA,
        "DeleteFunction",
        &[g("lambda:DeleteFunction", Function)],
    ),
    // Drift: a function URL added by hand.
    op(
        LAMBDA,
        "GetFunctionUrlConfig",
        &[g("lambda:GetFunctionUrlConfig", Function)],
    ),
    op(
        LAMBDA,
        "DeleteFunctionUrlConfig",
        &[g("lambda:DeleteFunctionUrlConfig", Function)],
    ),
    // CloudWatch Logs: the function's log group.
    op(
        LOGS,
        "DescribeLogGroups",
        &[g("logs:DescribeLogGroups", Listing)],
    ),
    op(
        LOGS,
        "ListTagsForResource",
        &[g("logs:ListTagsForResource", LogGroup)],
    ),
    op(
        LOGS,
        "CreateLogGroup",
        &[
            g("logs:CreateLogGroup", LogGroup),
            g("logs:TagResource", LogGroup),
        ],
    ),
    op(
        LOGS,
        "PutRetentionPolicy",
        &[g("logs:PutRetentionPolicy", LogGroup)],
    ),
    op(LOGS, "TagResource", &[g("logs:TagResource", LogGroup)]),
    op(
        LOGS,
        "FilterLogEvents",
        &[g("logs:FilterLogEvents", LogGroup)],
    ),
    op(
        LOGS,
        "DeleteLogGroup",
        &[g("logs:DeleteLogGroup", LogGroup)],
    ),
    // The stack lock: a log stream in the stack's log group (provision's `lock` module).
    op(
        LOGS,
        "DescribeLogStreams",
        &[g("logs:DescribeLogStreams", LogGroup)],
    ),
    op(
        LOGS,
        "CreateLogStream",
        &[g("logs:CreateLogStream", LogGroup)],
    ),
    op(LOGS, "PutLogEvents", &[g("logs:PutLogEvents", LogGroup)]),
    op(
        LOGS,
        "DeleteLogStream",
        &[g("logs:DeleteLogStream", LogGroup)],
    ),
    // API Gateway v2: by HTTP method on resource paths.
    op(APIGW, "GetApis", &[g("apigateway:GET", ApiCollection)]),
    op(
        APIGW,
        "CreateApi",
        &[
            g("apigateway:POST", ApiCollection),
            g("apigateway:POST", ApiTags),
        ],
    ),
    op(APIGW, "UpdateApi", &[g("apigateway:PATCH", Api)]),
    op(APIGW, "DeleteApi", &[g("apigateway:DELETE", Api)]),
    op(
        APIGW,
        "DeleteCorsConfiguration",
        &[g("apigateway:DELETE", Api)],
    ),
    op(APIGW, "CreateAuthorizer", &[g("apigateway:POST", Api)]),
    op(APIGW, "GetAuthorizer", &[g("apigateway:GET", Api)]),
    op(APIGW, "GetAuthorizers", &[g("apigateway:GET", Api)]),
    op(APIGW, "UpdateAuthorizer", &[g("apigateway:PATCH", Api)]),
    op(
        APIGW,
        "CreateStage",
        &[g("apigateway:POST", Api), g("apigateway:POST", ApiTags)],
    ),
    op(APIGW, "GetStage", &[g("apigateway:GET", Api)]),
    op(APIGW, "UpdateStage", &[g("apigateway:PATCH", Api)]),
    op(APIGW, "CreateIntegration", &[g("apigateway:POST", Api)]),
    op(APIGW, "GetIntegrations", &[g("apigateway:GET", Api)]),
    op(APIGW, "UpdateIntegration", &[g("apigateway:PATCH", Api)]),
    op(APIGW, "CreateRoute", &[g("apigateway:POST", Api)]),
    op(APIGW, "GetRoutes", &[g("apigateway:GET", Api)]),
    op(APIGW, "UpdateRoute", &[g("apigateway:PATCH", Api)]),
    // Drift: children of the API that are not the stack's.
    op(APIGW, "GetStages", &[g("apigateway:GET", Api)]),
    op(APIGW, "DeleteStage", &[g("apigateway:DELETE", Api)]),
    op(APIGW, "DeleteRoute", &[g("apigateway:DELETE", Api)]),
    op(APIGW, "DeleteIntegration", &[g("apigateway:DELETE", Api)]),
    op(APIGW, "DeleteAuthorizer", &[g("apigateway:DELETE", Api)]),
    op(APIGW, "TagResource", &[g("apigateway:POST", ApiTags)]),
];

/// The grants of one operation, or `None` when the table does not know it.
pub fn grants_for(service: &str, operation: &str) -> Option<&'static [Grant]> {
    OPERATIONS
        .iter()
        .find(|o| o.service == service && o.operation == operation)
        .map(|o| o.grants)
}

/// Every grant of the table, once.
pub fn all_grants() -> BTreeSet<Grant> {
    OPERATIONS
        .iter()
        .flat_map(|o| o.grants.iter().copied())
        .collect()
}

/// A `--stack-prefix`, `--region` or `--account` that cannot go into a policy.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    #[error("invalid --stack-prefix {prefix:?}: {rule}")]
    Prefix { prefix: String, rule: String },
    #[error("invalid --region {region:?}: expected * or a region name such as eu-west-1")]
    Region { region: String },
    #[error("invalid --account {account:?}: expected * or a 12-digit account id")]
    Account { account: String },
    #[error("invalid --partition {partition:?}: expected aws, aws-cn or aws-us-gov")]
    Partition { partition: String },
}

/// Which stacks, where: the inputs of [`deploy_policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyScope {
    /// The stacks whose names start with this (empty: every stack).
    pub stack_prefix: String,
    /// A region name, or `*`.
    pub region: String,
    /// A 12-digit account id, or `*`.
    pub account: String,
    pub partition: String,
}

impl PolicyScope {
    /// Checks every input; `stack_prefix` must be the start of a valid stack name.
    pub fn new(
        stack_prefix: &str,
        region: &str,
        account: &str,
        partition: &str,
    ) -> Result<Self, PolicyError> {
        check_stack_prefix(stack_prefix)?;
        if region != "*"
            && (region.is_empty()
                || !region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        {
            return Err(PolicyError::Region {
                region: region.to_string(),
            });
        }
        if account != "*" && !(account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())) {
            return Err(PolicyError::Account {
                account: account.to_string(),
            });
        }
        if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
            return Err(PolicyError::Partition {
                partition: partition.to_string(),
            });
        }
        Ok(PolicyScope {
            stack_prefix: stack_prefix.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            partition: partition.to_string(),
        })
    }

    /// The resource ARN patterns of `target` for the stacks of this scope.
    pub fn resources(&self, target: Target) -> Vec<String> {
        let names = pattern_names(&self.stack_prefix, &self.region);
        let (p, r, a) = (&self.partition, &self.region, &self.account);
        match target {
            Target::Listing => vec!["*".to_string()],
            Target::Table => vec![format!("arn:{p}:dynamodb:{r}:{a}:table/{}", names.table)],
            Target::Role | Target::PassRoleToLambda => {
                vec![format!("arn:{p}:iam::{a}:role{ROLE_PATH}{}", names.role)]
            }
            Target::Function => vec![format!(
                "arn:{p}:lambda:{r}:{a}:function:{}",
                names.function
            )],
            // Some Logs actions are evaluated on `log-group:NAME`, others on `log-group:NAME:*`.
            Target::LogGroup => vec![
                format!("arn:{p}:logs:{r}:{a}:log-group:{}", names.log_group),
                format!("arn:{p}:logs:{r}:{a}:log-group:{}:*", names.log_group),
            ],
            Target::ApiCollection => vec![format!("arn:{p}:apigateway:{r}::/apis")],
            Target::Api => vec![format!("arn:{p}:apigateway:{r}::/apis/*")],
            Target::ApiTags => vec![format!("arn:{p}:apigateway:{r}::/tags/*")],
        }
    }
}

/// Checks that `prefix` is the start of a valid stack name (`--stack-prefix` of `policy`, `list`
/// and `gc`).
pub fn check_stack_prefix(prefix: &str) -> Result<(), PolicyError> {
    let probe = format!("{prefix}{PLACEHOLDER_TAIL}");
    match probe.parse::<StackName>() {
        Ok(_) => Ok(()),
        Err(err) => {
            let rule = match err {
                crate::SpecError::StackName { rule, .. } => rule.to_string(),
                other => other.to_string(),
            };
            Err(PolicyError::Prefix {
                prefix: prefix.to_string(),
                rule: format!("stack names with it would break a rule: {rule}"),
            })
        }
    }
}

/// The names of the resources of every stack whose name starts with `prefix`, in `region` (or
/// `*`, any region), as wildcard patterns: the stack name replaced by `PREFIX*`
/// (`wishctl-pr-*-items`). The policy's resources are built from them, and `list` / `gc` read no
/// resource whose name falls outside them.
pub fn name_patterns(prefix: &str, region: &str) -> Result<crate::ResourceNames, PolicyError> {
    check_stack_prefix(prefix)?;
    Ok(pattern_names(prefix, region))
}

/// Whether `name` matches `pattern`, a pattern of [`name_patterns`] with a concrete region (one
/// `*`), where `*` stands for at least one character (the rest of a stack name).
pub fn matches_name_pattern(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        Some((head, tail)) => {
            name.len() > head.len() + tail.len()
                && name.starts_with(head)
                && name.ends_with(tail)
                && !tail.contains('*')
        }
        None => name == pattern,
    }
}

/// What follows the prefix in the probe stack name whose derived names become patterns. It must
/// not occur in any fixed part of a derived name before the stack (`wishctl-`, `/aws/lambda/`).
const PLACEHOLDER_TAIL: &str = "q";

/// The stack's resource names with the stack name replaced by `PREFIX*`, derived by
/// [`crate::ResourceNames`] from a probe stack name, so that a change of naming changes the
/// policy too.
///
/// `region` is a region name or `*`: the role's name holds the region (IAM is global), so a
/// policy for every region matches any region there.
fn pattern_names(prefix: &str, region: &str) -> crate::ResourceNames {
    const PROBE_REGION: &str = "zz-probe-9";
    let probe_text = format!("{prefix}{PLACEHOLDER_TAIL}");
    let pattern = format!("{prefix}*");
    let Ok(probe) = probe_text.parse::<StackName>() else {
        // PolicyScope::new checked the prefix; fall back to every stack.
        return pattern_names("", region);
    };
    let probe_region = match region {
        "*" => PROBE_REGION.parse::<crate::Region>(),
        named => named.parse::<crate::Region>(),
    };
    let Ok(probe_region) = probe_region else {
        return pattern_names(prefix, "*");
    };
    let n = probe.resources(&probe_region);
    let swap = |name: String| {
        name.replacen(&probe_text, &pattern, 1)
            .replacen(PROBE_REGION, "*", 1)
    };
    crate::ResourceNames {
        table: swap(n.table),
        role: swap(n.role),
        role_policy: swap(n.role_policy),
        function: swap(n.function),
        log_group: swap(n.log_group),
        api: swap(n.api),
        authorizer: swap(n.authorizer),
        permission_statement: swap(n.permission_statement),
    }
}

/// The policy document: one statement per [`Target`], actions sorted, resources scoped.
pub fn deploy_policy(scope: &PolicyScope) -> Value {
    let mut by_target: BTreeMap<Target, BTreeSet<&'static str>> = BTreeMap::new();
    for grant in all_grants() {
        by_target
            .entry(grant.target)
            .or_default()
            .insert(grant.action);
    }
    let statements: Vec<Value> = by_target
        .into_iter()
        .map(|(target, actions)| {
            let resources = scope.resources(target);
            let resource = if resources.len() == 1 {
                json!(resources[0])
            } else {
                json!(resources)
            };
            let actions: Vec<&str> = actions.into_iter().collect();
            let mut statement = json!({
                "Sid": target.sid(),
                "Effect": "Allow",
                "Action": actions,
                "Resource": resource,
            });
            if target == Target::PassRoleToLambda {
                statement["Condition"] = json!({
                    "StringEquals": { "iam:PassedToService": LAMBDA_SERVICE_PRINCIPAL }
                });
            }
            statement
        })
        .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": statements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(prefix: &str) -> PolicyScope {
        PolicyScope::new(prefix, "eu-west-1", "123456789012", "aws").unwrap()
    }

    #[test]
    fn patterns_come_from_the_naming_functions() {
        let names = pattern_names("pr-", "eu-west-1");
        let real = "pr-42"
            .parse::<StackName>()
            .unwrap()
            .resources(&"eu-west-1".parse().unwrap());
        assert_eq!(names.table, "wishctl-pr-*-items");
        assert_eq!(names.log_group, "/aws/lambda/wishctl-pr-*-api");
        for (pattern, name) in [
            (&names.table, &real.table),
            (&names.role, &real.role),
            (&names.function, &real.function),
            (&names.log_group, &real.log_group),
        ] {
            let (head, tail) = pattern.split_once('*').unwrap();
            assert!(
                name.starts_with(head) && name.ends_with(tail),
                "{pattern} vs {name}"
            );
        }
        assert_eq!(pattern_names("", "*").table, "wishctl-*-items");
        assert_eq!(pattern_names("pr-", "*").role, "wishctl-pr-*-*-fn");
    }

    #[test]
    fn name_patterns_match_the_names_of_the_prefixs_stacks_only() {
        let names = name_patterns("pr-", "eu-west-1").unwrap();
        let real = "pr-42"
            .parse::<StackName>()
            .unwrap()
            .resources(&"eu-west-1".parse().unwrap());
        for (pattern, name) in [
            (&names.table, &real.table),
            (&names.role, &real.role),
            (&names.function, &real.function),
            (&names.log_group, &real.log_group),
            (&names.api, &real.api),
        ] {
            assert!(matches_name_pattern(pattern, name), "{pattern} vs {name}");
        }
        assert!(!matches_name_pattern(&names.table, "wishctl-main-items"));
        assert!(!matches_name_pattern(&names.table, "wishctl-pr--items"));
        assert!(!matches_name_pattern(
            &names.role,
            "wishctl-pr-1-us-east-1-fn"
        ));
        assert!(name_patterns("PR", "eu-west-1").is_err());
    }

    #[test]
    fn prefixes_that_no_stack_name_can_start_with_are_refused() {
        for bad in ["PR-", "1pr", "pr--", "pr_", &"a".repeat(32)] {
            assert!(
                PolicyScope::new(bad, "*", "*", "aws").is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(PolicyScope::new("pr-", "*", "*", "aws").is_ok());
        assert!(PolicyScope::new("", "*", "*", "aws").is_ok());
        assert!(PolicyScope::new("pr-", "eu west", "*", "aws").is_err());
        assert!(PolicyScope::new("pr-", "*", "12", "aws").is_err());
    }

    #[test]
    fn pass_role_goes_to_lambda_only_and_on_the_stacks_roles_only() {
        let policy = deploy_policy(&scope("pr-"));
        let statements = policy["Statement"].as_array().unwrap();
        let pass: Vec<&Value> = statements
            .iter()
            .filter(|s| {
                s["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a == "iam:PassRole")
            })
            .collect();
        assert_eq!(pass.len(), 1);
        assert_eq!(pass[0]["Action"], json!(["iam:PassRole"]));
        assert_eq!(
            pass[0]["Resource"],
            "arn:aws:iam::123456789012:role/wishctl/wishctl-pr-*-eu-west-1-fn"
        );
        assert_eq!(
            pass[0]["Condition"]["StringEquals"]["iam:PassedToService"],
            "lambda.amazonaws.com"
        );
    }

    #[test]
    fn only_listings_are_granted_on_every_resource_and_no_action_is_a_wildcard() {
        let policy = deploy_policy(&scope("pr-"));
        for statement in policy["Statement"].as_array().unwrap() {
            for action in statement["Action"].as_array().unwrap() {
                assert!(!action.as_str().unwrap().contains('*'), "{statement}");
            }
            if statement["Resource"] == "*" {
                let actions: Vec<&str> = statement["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                assert_eq!(
                    actions,
                    [
                        "dynamodb:ListTables",
                        "iam:ListRoles",
                        "lambda:ListFunctions",
                        "logs:DescribeLogGroups"
                    ]
                );
            }
        }
    }

    #[test]
    fn the_table_lists_each_operation_once() {
        let mut seen = BTreeSet::new();
        for o in OPERATIONS {
            assert!(seen.insert((o.service, o.operation)), "{o:?} twice");
        }
        assert_eq!(grants_for("STS", "GetCallerIdentity"), Some(&[][..]));
        assert_eq!(grants_for("Lambda", "InvokeFunction"), None);
    }
}
