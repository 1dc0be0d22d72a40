//! What `up` and `outputs` report about a deployed stack: the invoke URL, ids and names.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{StackName, SERVICE_PATH};

/// The invoke URL of the wish-list route on the `$default` stage (which has no path prefix).
pub fn invoke_url(api_id: &str, region: &str) -> String {
    format!("https://{api_id}.execute-api.{region}.amazonaws.com{SERVICE_PATH}")
}

/// What `up` and `outputs` report about a deployed stack. `--output json` prints this object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackOutputs {
    pub stack: StackName,
    pub region: String,
    pub url: String,
    pub api_id: String,
    pub authorizer_id: String,
    pub table: String,
    pub role: String,
    pub function: String,
    pub log_group: String,
}

impl fmt::Display for StackOutputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "stack          {}", self.stack)?;
        writeln!(f, "region         {}", self.region)?;
        writeln!(f, "url            {}", self.url)?;
        writeln!(f, "api id         {}", self.api_id)?;
        writeln!(f, "authorizer id  {}", self.authorizer_id)?;
        writeln!(f, "table          {}", self.table)?;
        writeln!(f, "role           {}", self.role)?;
        writeln!(f, "function       {}", self.function)?;
        write!(f, "log group      {}", self.log_group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_url_has_no_stage_prefix_on_the_default_stage() {
        assert_eq!(
            invoke_url("a1b2c3", "eu-west-1"),
            "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/wish-list-service"
        );
    }
}
