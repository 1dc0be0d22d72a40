//! A timing model of AWS's control plane, applied by [`crate::aws_proxy::AwsProxy`] in front of
//! moto, which makes everything happen at once. It makes AWS's documented waits happen:
//!
//! - IAM propagation: for [`ModelSettings::iam_propagation`] after `CreateRole` (or
//!   `UpdateAssumeRolePolicy`), `CreateFunction` / `UpdateFunctionConfiguration` naming that
//!   role fail with `InvalidParameterValueException` "The role defined for the function cannot
//!   be assumed by Lambda.".
//! - A new function is `Pending` for [`ModelSettings::function_pending`]; after an update its
//!   `LastUpdateStatus` is `InProgress` for [`ModelSettings::function_update`]; an update
//!   meanwhile fails with `ResourceConflictException`.
//! - A new table is `CREATING` for [`ModelSettings::table_creating`] (data calls fail with
//!   `ResourceNotFoundException`); a deleted one is `DELETING` for
//!   [`ModelSettings::table_deleting`] (`DescribeTable` shows it, `CreateTable` of the name
//!   fails with `ResourceInUseException`).
//! - API Gateway's management API: a token bucket of [`ModelSettings::apigateway_rate`]
//!   requests/s, burst [`ModelSettings::apigateway_burst`], `TooManyRequestsException` beyond.
//! - [`ModelSettings::latency`] per call.
//!
//! Every default lives in [`ModelSettings::default`], with its source next to it. The states are
//! kept per resource name from what the proxy saw: a resource created without the proxy counts
//! as settled.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::Value;

use crate::aws_call::AwsCall;
use crate::faults::error_response;

/// The durations and limits of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// Added to every call before it is forwarded (one round trip to the region).
    pub latency: Duration,
    /// How long after `CreateRole` Lambda refuses the role.
    pub iam_propagation: Duration,
    /// How long a new function stays `Pending`.
    pub function_pending: Duration,
    /// How long `LastUpdateStatus` stays `InProgress` after an update.
    pub function_update: Duration,
    /// How long a new on-demand table stays `CREATING`.
    pub table_creating: Duration,
    /// How long a deleted table stays `DELETING`.
    pub table_deleting: Duration,
    /// API Gateway management requests per second (token refill rate); `0` for no limit.
    pub apigateway_rate: f64,
    /// API Gateway management burst (bucket size).
    pub apigateway_burst: f64,
}

impl Default for ModelSettings {
    /// AWS's waits as documented or commonly measured. Real durations vary from run to run;
    /// these are typical values, and every benchmark states the settings it used.
    fn default() -> Self {
        ModelSettings {
            // A round trip from a machine in the region's continent to a regional endpoint,
            // TLS connection reused: tens of ms (the deploy benchmark has used 50 ms since
            // issue 3).
            latency: Duration::from_millis(50),
            // IAM is eventually consistent ("IAM ... changes ... take time to become visible",
            // IAM user guide, "Troubleshooting IAM: changes that I make are not always
            // immediately visible"); Lambda refuses a new role for "several seconds"
            // (DESIGN.md); cargo-lambda probes up to about 20 s. Commonly observed: 5-10 s.
            iam_propagation: Duration::from_secs(7),
            // Lambda developer guide, "Lambda function states": a zip function outside a VPC
            // is Pending for "a few seconds" (typically 1-5 s).
            function_pending: Duration::from_secs(3),
            // Same page: LastUpdateStatus InProgress after UpdateFunctionCode /
            // UpdateFunctionConfiguration, typically 1-3 s for a zip function outside a VPC.
            function_update: Duration::from_secs(2),
            // DynamoDB developer guide, CreateTable: "CREATING ... for a few seconds" for an
            // on-demand table without indexes (typically 5-10 s observed).
            table_creating: Duration::from_secs(6),
            // DeleteTable: the table is DELETING until DynamoDB completes the deletion
            // (seconds for an empty table).
            table_deleting: Duration::from_secs(4),
            // API Gateway quotas ("API Gateway quotas for configuring and running an HTTP
            // API" / management API throttling): 10 requests/s per account, burst 40.
            apigateway_rate: 10.0,
            apigateway_burst: 40.0,
        }
    }
}

impl ModelSettings {
    /// moto as it is (no waits, no limit) plus a fixed latency per call.
    pub fn latency_only(latency: Duration) -> Self {
        ModelSettings {
            latency,
            iam_propagation: Duration::ZERO,
            function_pending: Duration::ZERO,
            function_update: Duration::ZERO,
            table_creating: Duration::ZERO,
            table_deleting: Duration::ZERO,
            apigateway_rate: 0.0,
            apigateway_burst: 0.0,
        }
    }

    /// Every duration multiplied by `factor` (the rate limit kept): the same behaviour, faster,
    /// for tests that must stay short.
    pub fn scaled(&self, factor: f64) -> Self {
        let f = factor.max(0.0);
        ModelSettings {
            latency: self.latency.mul_f64(f),
            iam_propagation: self.iam_propagation.mul_f64(f),
            function_pending: self.function_pending.mul_f64(f),
            function_update: self.function_update.mul_f64(f),
            table_creating: self.table_creating.mul_f64(f),
            table_deleting: self.table_deleting.mul_f64(f),
            ..self.clone()
        }
    }
}

/// Why the model refused a call (for the proxy's call log).
pub const REFUSED_ROLE: &str = "role not propagated";
pub const REFUSED_CONFLICT: &str = "update in progress";
pub const REFUSED_RATE: &str = "API Gateway rate limit";
pub const REFUSED_TABLE: &str = "table not ready";

#[derive(Debug, Clone)]
struct FunctionTimes {
    active_at: Instant,
    settled_at: Instant,
}

#[derive(Debug, Clone)]
struct TableTimes {
    active_at: Instant,
    gone_at: Option<Instant>,
    description: Value,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
struct State {
    roles: HashMap<String, Instant>,
    functions: HashMap<String, FunctionTimes>,
    tables: HashMap<String, TableTimes>,
    bucket: Bucket,
}

/// The model's state: what was created when, and API Gateway's token bucket.
#[derive(Debug)]
pub struct TimingModel {
    settings: ModelSettings,
    state: Mutex<State>,
}

const DATA_CALLS: [&str; 8] = [
    "PutItem",
    "GetItem",
    "Scan",
    "Query",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "BatchGetItem",
];

impl TimingModel {
    pub fn new(settings: ModelSettings) -> Self {
        let burst = settings.apigateway_burst;
        TimingModel {
            settings,
            state: Mutex::new(State {
                roles: HashMap::new(),
                functions: HashMap::new(),
                tables: HashMap::new(),
                bucket: Bucket {
                    tokens: burst,
                    at: Instant::now(),
                },
            }),
        }
    }

    pub fn settings(&self) -> &ModelSettings {
        &self.settings
    }

    /// Forgets every resource (after moto is reset) and refills the bucket.
    pub fn reset(&self) {
        let mut state = self.lock();
        state.roles.clear();
        state.functions.clear();
        state.tables.clear();
        state.bucket = Bucket {
            tokens: self.settings.apigateway_burst,
            at: Instant::now(),
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The answer AWS would give instead of forwarding the call, if any, and why.
    pub fn refuse(
        &self,
        call: &AwsCall,
        body: &[u8],
    ) -> Option<(Response<Full<Bytes>>, &'static str)> {
        let now = Instant::now();
        let mut state = self.lock();
        match (call.service.as_str(), call.operation.as_str()) {
            ("apigateway", _) if self.settings.apigateway_rate > 0.0 => {
                let bucket = &mut state.bucket;
                let refill =
                    now.duration_since(bucket.at).as_secs_f64() * self.settings.apigateway_rate;
                bucket.tokens = (bucket.tokens + refill).min(self.settings.apigateway_burst);
                bucket.at = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    None
                } else {
                    Some((
                        error_response(call, 429, "TooManyRequestsException", "Too Many Requests"),
                        REFUSED_RATE,
                    ))
                }
            }
            (
                "lambda",
                op @ ("CreateFunction" | "UpdateFunctionConfiguration" | "UpdateFunctionCode"),
            ) => {
                let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                if op != "UpdateFunctionCode" {
                    let role = json["Role"].as_str().and_then(|arn| arn.rsplit('/').next());
                    if role
                        .and_then(|r| state.roles.get(r))
                        .is_some_and(|at| now < *at)
                    {
                        return Some((
                            error_response(
                                call,
                                400,
                                "InvalidParameterValueException",
                                "The role defined for the function cannot be assumed by Lambda.",
                            ),
                            REFUSED_ROLE,
                        ));
                    }
                }
                if op == "CreateFunction" {
                    return None;
                }
                let name = call.resource.as_deref()?;
                let times = state.functions.get(name)?;
                if now < times.active_at || now < times.settled_at {
                    let message = format!(
                        "The operation cannot be performed at this time. An update is in progress for resource: {name}"
                    );
                    return Some((
                        error_response(call, 409, "ResourceConflictException", &message),
                        REFUSED_CONFLICT,
                    ));
                }
                None
            }
            ("dynamodb", op) => {
                let name = call.resource.as_deref()?;
                let table = state.tables.get(name)?.clone();
                let deleting = table.gone_at.is_some_and(|at| now < at);
                if table.gone_at.is_some_and(|at| now >= at) {
                    state.tables.remove(name);
                    return None;
                }
                let creating = now < table.active_at;
                match op {
                    "CreateTable" if deleting => Some((
                        error_response(
                            call,
                            400,
                            "ResourceInUseException",
                            &format!("Attempt to change a resource which is still in use: Table is being deleted: {name}"),
                        ),
                        REFUSED_TABLE,
                    )),
                    "DeleteTable" if creating => Some((
                        error_response(
                            call,
                            400,
                            "ResourceInUseException",
                            &format!("Attempt to change a resource which is still in use: Table is being created: {name}"),
                        ),
                        REFUSED_TABLE,
                    )),
                    "DescribeTable" if deleting => {
                        let mut description = table.description.clone();
                        description["TableStatus"] = Value::from("DELETING");
                        let body = serde_json::json!({ "Table": description }).to_string();
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        response.headers_mut().insert(
                            "content-type",
                            hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
                        );
                        Some((response, "table deleting"))
                    }
                    op if (creating || deleting) && DATA_CALLS.contains(&op) => Some((
                        error_response(call, 400, "ResourceNotFoundException", "Requested resource not found"),
                        REFUSED_TABLE,
                    )),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Records what a forwarded call did and rewrites moto's answer where moto says a resource
    /// is ready at once. `status` is moto's status; the returned body replaces moto's.
    pub fn observe(&self, call: &AwsCall, request: &[u8], status: u16, body: Bytes) -> Bytes {
        if !(200..300).contains(&status) {
            return body;
        }
        let now = Instant::now();
        let s = &self.settings;
        let mut state = self.lock();
        match (call.service.as_str(), call.operation.as_str()) {
            ("iam", "CreateRole" | "UpdateAssumeRolePolicy") => {
                if let Some(role) = &call.resource {
                    state.roles.insert(role.clone(), now + s.iam_propagation);
                }
                body
            }
            ("iam", "DeleteRole") => {
                if let Some(role) = &call.resource {
                    state.roles.remove(role);
                }
                body
            }
            ("lambda", "CreateFunction") => {
                let request: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
                let Some(name) = request["FunctionName"].as_str().map(str::to_string) else {
                    return body;
                };
                let ready = now + s.function_pending;
                state.functions.insert(
                    name,
                    FunctionTimes {
                        active_at: ready,
                        settled_at: ready,
                    },
                );
                rewrite(body, |json| function_state(json, now, ready, ready))
            }
            ("lambda", "UpdateFunctionCode" | "UpdateFunctionConfiguration") => {
                let Some(name) = &call.resource else {
                    return body;
                };
                let entry = state
                    .functions
                    .entry(name.clone())
                    .or_insert(FunctionTimes {
                        active_at: now,
                        settled_at: now,
                    });
                entry.settled_at = now + s.function_update;
                let (active, settled) = (entry.active_at, entry.settled_at);
                rewrite(body, |json| function_state(json, now, active, settled))
            }
            ("lambda", "GetFunction" | "GetFunctionConfiguration") => {
                let Some(times) = call.resource.as_ref().and_then(|n| state.functions.get(n))
                else {
                    return body;
                };
                let (active, settled) = (times.active_at, times.settled_at);
                rewrite(body, |json| {
                    let config = if call.operation == "GetFunction" {
                        &mut json["Configuration"]
                    } else {
                        json
                    };
                    function_state(config, now, active, settled)
                })
            }
            ("lambda", "DeleteFunction") => {
                if let Some(name) = &call.resource {
                    state.functions.remove(name);
                }
                body
            }
            ("dynamodb", "CreateTable") => {
                let Some(name) = call.resource.clone() else {
                    return body;
                };
                let active_at = now + s.table_creating;
                let mut description = Value::Null;
                let body = rewrite(body, |json| {
                    description = json["TableDescription"].clone();
                    if now < active_at {
                        json["TableDescription"]["TableStatus"] = Value::from("CREATING");
                    }
                });
                state.tables.insert(
                    name,
                    TableTimes {
                        active_at,
                        gone_at: None,
                        description,
                    },
                );
                body
            }
            ("dynamodb", "DescribeTable") => {
                let Some(table) = call.resource.as_ref().and_then(|n| state.tables.get_mut(n))
                else {
                    return body;
                };
                let creating = now < table.active_at;
                rewrite(body, |json| {
                    table.description = json["Table"].clone();
                    if creating {
                        json["Table"]["TableStatus"] = Value::from("CREATING");
                    }
                })
            }
            ("dynamodb", "DeleteTable") => {
                let Some(name) = call.resource.clone() else {
                    return body;
                };
                let gone_at = now + s.table_deleting;
                let mut description = Value::Null;
                let body = rewrite(body, |json| {
                    description = json["TableDescription"].clone();
                    if now < gone_at {
                        json["TableDescription"]["TableStatus"] = Value::from("DELETING");
                    }
                });
                if now < gone_at {
                    state.tables.insert(
                        name,
                        TableTimes {
                            active_at: now,
                            gone_at: Some(gone_at),
                            description,
                        },
                    );
                } else {
                    state.tables.remove(&name);
                }
                body
            }
            _ => body,
        }
    }
}

/// A function configuration as Lambda shows it at `now`.
fn function_state(config: &mut Value, now: Instant, active_at: Instant, settled_at: Instant) {
    if !config.is_object() {
        return;
    }
    if now < active_at {
        config["State"] = Value::from("Pending");
        config["StateReason"] = Value::from("The function is being created.");
        config["StateReasonCode"] = Value::from("Creating");
    }
    if now < settled_at {
        config["LastUpdateStatus"] = Value::from("InProgress");
        config["LastUpdateStatusReason"] = Value::from("The function is being created.");
        config["LastUpdateStatusReasonCode"] = Value::from("Creating");
        if now >= active_at {
            config["LastUpdateStatusReason"] = Value::from("The function is being updated.");
            config["LastUpdateStatusReasonCode"] = Value::from("Updating");
        }
    }
}

/// Applies `edit` to a JSON body; a body that is not JSON is returned unchanged.
fn rewrite(body: Bytes, edit: impl FnOnce(&mut Value)) -> Bytes {
    let Ok(mut json) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    edit(&mut json);
    Bytes::from(json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(service: &str, operation: &str, resource: Option<&str>) -> AwsCall {
        AwsCall {
            service: service.to_string(),
            operation: operation.to_string(),
            resource: resource.map(str::to_string),
        }
    }

    #[test]
    fn a_new_role_is_refused_by_lambda_until_it_has_propagated() {
        let model = TimingModel::new(ModelSettings {
            iam_propagation: Duration::from_millis(80),
            ..ModelSettings::latency_only(Duration::ZERO)
        });
        model.observe(
            &call("iam", "CreateRole", Some("r1")),
            b"",
            200,
            Bytes::new(),
        );
        let create = call("lambda", "CreateFunction", None);
        let body = br#"{"FunctionName":"f","Role":"arn:aws:iam::1:role/wishctl/r1"}"#;
        let (response, why) = model.refuse(&create, body).expect("refused");
        assert_eq!(why, REFUSED_ROLE);
        assert_eq!(response.status(), 400);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "InvalidParameterValueException"
        );
        std::thread::sleep(Duration::from_millis(100));
        assert!(model.refuse(&create, body).is_none());
    }

    #[test]
    fn a_new_function_is_pending_and_refuses_updates_until_active() {
        let model = TimingModel::new(ModelSettings {
            function_pending: Duration::from_millis(80),
            ..ModelSettings::latency_only(Duration::ZERO)
        });
        let created = model.observe(
            &call("lambda", "CreateFunction", None),
            br#"{"FunctionName":"f"}"#,
            201,
            Bytes::from(r#"{"FunctionName":"f","State":"Active","LastUpdateStatus":"Successful"}"#),
        );
        let created: Value = serde_json::from_slice(&created).unwrap();
        assert_eq!(created["State"], "Pending");
        let get = model.observe(
            &call("lambda", "GetFunction", Some("f")),
            b"",
            200,
            Bytes::from(r#"{"Configuration":{"State":"Active","LastUpdateStatus":"Successful"}}"#),
        );
        let get: Value = serde_json::from_slice(&get).unwrap();
        assert_eq!(get["Configuration"]["State"], "Pending");
        assert_eq!(get["Configuration"]["LastUpdateStatus"], "InProgress");
        let update = call("lambda", "UpdateFunctionCode", Some("f"));
        let (response, why) = model.refuse(&update, b"{}").expect("conflict");
        assert_eq!((response.status().as_u16(), why), (409, REFUSED_CONFLICT));
        std::thread::sleep(Duration::from_millis(100));
        assert!(model.refuse(&update, b"{}").is_none());
    }

    #[test]
    fn api_gateway_answers_429_beyond_its_burst() {
        let model = TimingModel::new(ModelSettings {
            apigateway_rate: 10.0,
            apigateway_burst: 5.0,
            ..ModelSettings::latency_only(Duration::ZERO)
        });
        let get = call("apigateway", "GetApis", None);
        let refused = (0..10)
            .filter(|_| model.refuse(&get, b"").is_some())
            .count();
        assert!((4..=5).contains(&refused), "{refused}");
    }

    #[test]
    fn a_table_is_creating_then_active_and_deleting_then_gone() {
        let model = TimingModel::new(ModelSettings {
            table_creating: Duration::from_millis(60),
            table_deleting: Duration::from_millis(60),
            ..ModelSettings::latency_only(Duration::ZERO)
        });
        let moto_table = r#"{"TableName":"t","TableStatus":"ACTIVE"}"#;
        let created = model.observe(
            &call("dynamodb", "CreateTable", Some("t")),
            b"",
            200,
            Bytes::from(format!(r#"{{"TableDescription":{moto_table}}}"#)),
        );
        assert!(String::from_utf8_lossy(&created).contains("CREATING"));
        let scan = call("dynamodb", "Scan", Some("t"));
        assert!(model.refuse(&scan, b"").is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(model.refuse(&scan, b"").is_none());
        model.observe(
            &call("dynamodb", "DeleteTable", Some("t")),
            b"",
            200,
            Bytes::from(format!(r#"{{"TableDescription":{moto_table}}}"#)),
        );
        let describe = call("dynamodb", "DescribeTable", Some("t"));
        let (shown, _) = model.refuse(&describe, b"").expect("synthesized");
        assert_eq!(shown.status(), 200);
        assert!(model
            .refuse(&call("dynamodb", "CreateTable", Some("t")), b"")
            .is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(model.refuse(&describe, b"").is_none());
    }
}
