//! The desired state: the stack description resolved against the account (ARNs, the access
//! policy document) into what each resource module diffs against.

use serde_json::Value;
use stack::{ResourceNames, StackSpec};

use crate::api::DesiredApi;
use crate::context::Env;
use crate::function::{DesiredFunction, FunctionCode};
use crate::observe::Observed;

/// The description resolved against the account: ARNs and documents.
#[derive(Debug, Clone)]
pub(crate) struct Desired<'a> {
    pub spec: &'a StackSpec,
    pub code: &'a FunctionCode,
    pub names: ResourceNames,
    pub env: Env,
    pub role_arn: String,
    pub function_arn: String,
    pub access_policy: Value,
}

impl<'a> Desired<'a> {
    pub fn new(
        spec: &'a StackSpec,
        code: &'a FunctionCode,
        observed: &Observed,
    ) -> anyhow::Result<Self> {
        let names = spec.names();
        let env = observed.env()?.clone();
        let access_policy = stack::access_policy(
            &env.table_arn(&names.table),
            &env.log_group_policy_arn(&names.log_group),
        );
        let role_arn = observed
            .role
            .as_ref()
            .map_or_else(|| env.role_arn(&names.role), |r| r.arn.clone());
        let function_arn = observed
            .function
            .as_ref()
            .map_or_else(|| env.function_arn(&names.function), |f| f.arn.clone());
        Ok(Desired {
            spec,
            code,
            names,
            env,
            role_arn,
            function_arn,
            access_policy,
        })
    }

    pub fn function(&self, role_arn: String) -> DesiredFunction<'_> {
        DesiredFunction {
            name: &self.names.function,
            role_arn,
            settings: &self.spec.function,
            table: &self.names.table,
            code: self.code,
            tags: &self.spec.tags,
        }
    }

    pub fn api(&self, function_arn: String) -> DesiredApi<'_> {
        DesiredApi {
            name: &self.names.api,
            authorizer_name: &self.names.authorizer,
            tags: &self.spec.tags,
            cors: &self.spec.cors,
            auth: &self.spec.authorizer,
            function_arn,
        }
    }
}
