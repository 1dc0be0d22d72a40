//! The whole stack description (`StackSpec`) and its function and CORS settings, validated
//! against Lambda's and API Gateway's limits.

use serde::{Deserialize, Serialize};

use crate::{Architecture, AuthorizerSettings, ResourceNames, SpecError, StackName, Tags};

/// Log retention of the function's log group when none is given.
pub const DEFAULT_LOG_RETENTION_DAYS: i32 = 14;
const VALID_RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// How the Lambda function is configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSettings {
    pub architecture: Architecture,
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    pub log_retention_days: i32,
}

impl FunctionSettings {
    pub const RUNTIME: &'static str = "provided.al2023";
    pub const HANDLER: &'static str = "bootstrap";
    /// The one environment variable the handler reads.
    pub const TABLE_ENV: &'static str = "TABLE_NAME";

    pub fn new(
        architecture: Architecture,
        memory_mb: u32,
        timeout_seconds: u32,
        log_retention_days: i32,
    ) -> Result<Self, SpecError> {
        if !(128..=10240).contains(&memory_mb) {
            return Err(SpecError::Memory { mb: memory_mb });
        }
        if !(1..=30).contains(&timeout_seconds) {
            return Err(SpecError::Timeout {
                seconds: timeout_seconds,
            });
        }
        if !VALID_RETENTION_DAYS.contains(&log_retention_days) {
            return Err(SpecError::LogRetention {
                days: log_retention_days,
            });
        }
        Ok(FunctionSettings {
            architecture,
            memory_mb,
            timeout_seconds,
            log_retention_days,
        })
    }
}

impl Default for FunctionSettings {
    fn default() -> Self {
        FunctionSettings {
            architecture: Architecture::Arm64,
            memory_mb: 128,
            timeout_seconds: 10,
            log_retention_days: DEFAULT_LOG_RETENTION_DAYS,
        }
    }
}

/// The API's own CORS configuration; preflight is answered by API Gateway, never the authorizer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsSettings {
    /// Sorted and de-duplicated. Empty means no CORS configuration at all.
    pub allow_origins: Vec<String>,
}

impl CorsSettings {
    pub const ALLOW_METHODS: [&'static str; 2] = ["GET", "POST"];
    /// Lower-case, as API Gateway stores header names.
    pub const ALLOW_HEADERS: [&'static str; 2] = ["authorization", "content-type"];

    pub fn new(origins: impl IntoIterator<Item = String>) -> Result<Self, SpecError> {
        let mut allow_origins: Vec<String> = origins.into_iter().collect();
        for origin in &allow_origins {
            if origin == "*" {
                continue;
            }
            let url = url::Url::parse(origin).map_err(|_| SpecError::CorsOrigin {
                origin: origin.clone(),
                rule: "must be * or scheme://host[:port]",
            })?;
            if !matches!(url.scheme(), "http" | "https")
                || url.host().is_none()
                || url.path() != "/"
                || origin.ends_with('/')
            {
                return Err(SpecError::CorsOrigin {
                    origin: origin.clone(),
                    rule: "must be * or scheme://host[:port] without a path",
                });
            }
        }
        allow_origins.sort();
        allow_origins.dedup();
        Ok(CorsSettings { allow_origins })
    }

    pub fn is_enabled(&self) -> bool {
        !self.allow_origins.is_empty()
    }
}

/// Everything that describes one stack: the desired state `up` converges to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackSpec {
    pub name: StackName,
    pub authorizer: AuthorizerSettings,
    pub function: FunctionSettings,
    pub cors: CorsSettings,
    pub tags: Tags,
}

impl StackSpec {
    pub fn names(&self) -> ResourceNames {
        self.name.resources()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_settings_enforce_lambda_and_api_gateway_limits() {
        assert!(FunctionSettings::new(Architecture::Arm64, 127, 10, 14).is_err());
        assert!(FunctionSettings::new(Architecture::Arm64, 128, 31, 14).is_err());
        assert!(FunctionSettings::new(Architecture::Arm64, 128, 10, 13).is_err());
        assert!(FunctionSettings::new(Architecture::X86_64, 10240, 30, 3653).is_ok());
    }

    #[test]
    fn cors_origins_are_origins_not_urls() {
        assert!(CorsSettings::new(["https://app.example.com".to_string()]).is_ok());
        assert!(CorsSettings::new(["http://localhost:5173".to_string()]).is_ok());
        assert!(CorsSettings::new(["*".to_string()]).is_ok());
        assert!(CorsSettings::new(["https://app.example.com/path".to_string()]).is_err());
        assert!(CorsSettings::new(["app.example.com".to_string()]).is_err());
    }
}
