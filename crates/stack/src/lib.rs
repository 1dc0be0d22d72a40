//! The description of one wish-list stack, as pure data.
//!
//! Everything `wishctl up`, `plan`, `down`, `outputs`, `dev` and `verify` need to know about a
//! stack is derived here from a handful of inputs: the resource names (from `--stack`), the tags
//! that mark ownership, the IAM documents, the route table and the JWT authorizer settings.
//! This crate never calls an SDK and never touches the network; the reconciler (`provision`) and
//! the local server (`devserver`) read from it instead of restating routes or names.

mod arch;
mod auth;
mod error;
mod error_text;
mod iam;
mod lifetime;
mod names;
mod outputs;
mod policy;
mod redact;
mod routes;
mod spec;
mod table;
mod tags;

pub use arch::Architecture;
pub use auth::{AuthorizerSettings, Issuer, IDENTITY_SOURCE, MAX_AUDIENCES, MAX_SCOPES_PER_ROUTE};
pub use error::SpecError;
pub use error_text::error_chain;
pub use iam::{access_policy, log_group_arn, table_arn, trust_policy, LAMBDA_SERVICE_PRINCIPAL};
pub use lifetime::{
    parse_duration, Expiry, LifetimeError, Ttl, UtcTime, MAX_TTL, NO_EXPIRY, TAG_EXPIRES_AT,
};
pub use names::{role_name, Region, ResourceNames, StackName, DEFAULT_STACK, ROLE_PATH};
pub use outputs::{invoke_url, StackOutputs};
pub use policy::{
    all_grants, check_stack_prefix, deploy_policy, grants_for, matches_name_pattern, name_patterns,
    Grant, OperationGrants, PolicyError, PolicyScope, Target, API_GATEWAY_NOTE, OPERATIONS,
};
pub use redact::{url_for_message, url_has_user_info};
pub use routes::{Route, RouteAuth, ROUTES, SERVICE_PATH};
pub use spec::{CorsSettings, FunctionSettings, StackSpec, DEFAULT_LOG_RETENTION_DAYS};
pub use table::{TableKey, TABLE_KEY};
pub use tags::{Tags, TAG_REGION, TAG_STACK};
