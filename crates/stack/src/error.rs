//! Why a stack input cannot be turned into a description; each message names the input and the
//! rule it breaks.

use thiserror::Error;

/// A stack input that cannot be turned into a valid description.
///
/// Every message names the input and the rule it breaks, so that the CLI can print it as is.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("invalid stack name {name:?}: {rule}")]
    StackName { name: String, rule: &'static str },
    #[error("invalid region {region:?}: {rule}")]
    Region { region: String, rule: &'static str },
    #[error("invalid issuer {issuer:?}: {rule}")]
    Issuer { issuer: String, rule: &'static str },
    #[error("invalid audience {audience:?}: {rule}")]
    Audience {
        audience: String,
        rule: &'static str,
    },
    #[error("too many audiences: {count} given, an HTTP API JWT authorizer accepts at most {max}")]
    TooManyAudiences { count: usize, max: usize },
    #[error("invalid scope {scope:?}: {rule}")]
    Scope { scope: String, rule: &'static str },
    #[error("too many scopes: {count} given, a route accepts at most {max}")]
    TooManyScopes { count: usize, max: usize },
    #[error("invalid tag {tag:?}: {rule}")]
    Tag { tag: String, rule: &'static str },
    #[error("invalid --ttl {value:?}: {rule}")]
    Ttl { value: String, rule: &'static str },
    #[error("invalid architecture {value:?}: expected arm64 or x86_64")]
    Architecture { value: String },
    #[error("invalid memory size {mb} MB: Lambda accepts 128 to 10240 MB")]
    Memory { mb: u32 },
    #[error(
        "invalid timeout {seconds} s: an HTTP API integration times out after 30 s, use 1 to 30"
    )]
    Timeout { seconds: u32 },
    #[error("invalid log retention {days} days: CloudWatch accepts 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653")]
    LogRetention { days: i32 },
    #[error("invalid CORS origin {origin:?}: {rule}")]
    CorsOrigin { origin: String, rule: &'static str },
}
