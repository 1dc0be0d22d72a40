//! A timing model of AWS's control plane, applied by [`crate::aws_proxy::AwsProxy`] in front of
//! moto, which makes everything happen at once. It makes AWS's documented waits happen:
//!
//! - IAM propagation of a role: for [`ModelSettings::iam_propagation`] after `CreateRole`,
//!   `CreateFunction` / `UpdateFunctionConfiguration` naming that role fail with
//!   `InvalidParameterValueException` "The role defined for the function cannot be assumed by
//!   Lambda.", and `sts:AssumeRole` of it fails with `AccessDenied`. An
//!   `UpdateAssumeRolePolicy` that makes Lambda trusted where it was not starts the wait again;
//!   one that keeps Lambda trusted does not (Lambda could assume the role under either version
//!   of the document).
//! - IAM propagation of a role's permissions: for [`ModelSettings::iam_policy_propagation`]
//!   after `PutRolePolicy` / `AttachRolePolicy`, the role's sessions (the function's own calls)
//!   do not have the new permissions yet: [`TimingModel::policy_effective_at`] says when they
//!   will, and [`TimingModel::refuse_as_role`] answers a call made as the role with
//!   `AccessDeniedException` until then. The proxy cannot tell which calls are made as the role
//!   (moto's Lambda never runs the function), so it applies this only through those two methods.
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

use crate::aws_call::{percent_decode, AwsCall};
use crate::faults::error_response;

/// The durations and limits of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// Added to every call before it is forwarded (one round trip to the region).
    pub latency: Duration,
    /// How long after `CreateRole` Lambda (and `sts:AssumeRole`) refuses the role.
    pub iam_propagation: Duration,
    /// How long after `PutRolePolicy` / `AttachRolePolicy` the role's sessions lack the new
    /// permissions (the function's first DynamoDB calls get `AccessDeniedException`).
    pub iam_policy_propagation: Duration,
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
    /// AWS's waits. Where AWS documents a figure it is used as documented; where AWS documents
    /// only that a wait exists (most of them: "eventually consistent", "asynchronous"), the
    /// duration is a typical value, said so below. Real durations vary from run to run, and
    /// every benchmark states the settings it used.
    fn default() -> Self {
        ModelSettings {
            // Not documented by AWS: an assumption. One HTTPS round trip from a machine on the
            // region's continent to a regional endpoint, TLS connection reused, is tens of ms;
            // 50 ms is the figure the deploy benchmark has used since issue 3
            // (bench/deploy/up_down.rs takes it from here).
            latency: Duration::from_millis(50),
            // Documented as a wait, not as a duration. IAM user guide, "Troubleshoot IAM",
            // section "Changes that I make are not always immediately visible"
            // (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency):
            // IAM is eventually consistent and a change takes time to become visible; AWS
            // advises not to put IAM changes on a critical path. Lambda's side of it is the
            // `CreateFunction` error "The role defined for the function cannot be assumed by
            // Lambda." (Lambda API reference, CreateFunction, InvalidParameterValueException).
            // 7 s is a typical observed value, not an AWS figure; cargo-lambda's own probe
            // (crates/cargo-lambda-deploy/src/roles.rs: it sleeps 5 s, then tries
            // `sts:AssumeRole` twice, 5 s apart, telling its user "this can take up to 20
            // seconds") assumes the same order of magnitude.
            iam_propagation: Duration::from_secs(7),
            // Same IAM page: a policy put on a role is a change like any other, so the role's
            // sessions get it only after it has propagated. Not documented as a duration; taken
            // equal to the role's own propagation (the same mechanism).
            iam_policy_propagation: Duration::from_secs(7),
            // Lambda developer guide, "Lambda function states"
            // (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html): every new
            // function is `Pending` before `Active`, and API actions that operate on it fail
            // meanwhile. The guide gives no duration for a zip function outside a VPC (AWS
            // Compute Blog, "Tracking the state of AWS Lambda functions": "in most cases, this
            // process is very fast"); 3 s is a typical observed value, an assumption.
            function_pending: Duration::from_secs(3),
            // Same page, "Function states during updates": `LastUpdateStatus` is `InProgress`
            // after `UpdateFunctionCode` / `UpdateFunctionConfiguration`, and another update
            // meanwhile fails (`ResourceConflictException`). No documented duration; 2 s is an
            // assumption (typical for a small zip outside a VPC).
            function_update: Duration::from_secs(2),
            // DynamoDB API reference, CreateTable
            // (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html):
            // "CreateTable is an asynchronous operation ... immediately returns a response
            // with a TableStatus of CREATING. After the table is created, DynamoDB sets the
            // TableStatus to ACTIVE. You can perform read and write operations only on an
            // ACTIVE table." No documented duration; 6 s is a typical observed value for an
            // on-demand table without indexes, an assumption.
            table_creating: Duration::from_secs(6),
            // DynamoDB API reference, DeleteTable
            // (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DeleteTable.html):
            // the table is in the DELETING state until DynamoDB completes the deletion. No
            // documented duration; 4 s for an empty table is an assumption.
            table_deleting: Duration::from_secs(4),
            // Documented. API Gateway developer guide, "Amazon API Gateway quotas"
            // (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html),
            // table "API Gateway quotas for creating, deploying and managing an API", row
            // "Total operations": 10 requests per second with a burst quota of 40, per account,
            // not increasable (the operations listed above that row have lower limits of their
            // own; none of them is an HTTP API call wishctl makes).
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
            iam_policy_propagation: Duration::ZERO,
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
            iam_policy_propagation: self.iam_policy_propagation.mul_f64(f),
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
pub const REFUSED_POLICY: &str = "role policy not yet effective";

/// What the model knows of a role it saw created or changed.
#[derive(Debug, Clone)]
struct RoleTimes {
    /// When the role is visible everywhere: `sts:AssumeRole` by a principal its trust policy
    /// names works from then on.
    visible_at: Instant,
    /// When Lambda can assume it; `None` while its trust policy does not name Lambda.
    lambda_at: Option<Instant>,
    /// When the permissions last put on it (`PutRolePolicy` / `AttachRolePolicy`) take effect
    /// for its sessions; `None` if the model saw none put.
    policy_at: Option<Instant>,
}

impl RoleTimes {
    fn settled(now: Instant) -> Self {
        RoleTimes {
            visible_at: now,
            lambda_at: Some(now),
            policy_at: None,
        }
    }
}

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
    roles: HashMap<String, RoleTimes>,
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

    /// Records what a successful IAM call did to a role: `CreateRole`, `UpdateAssumeRolePolicy`,
    /// `PutRolePolicy`, `AttachRolePolicy`, `DeleteRole` (`request` is the call's form body;
    /// without one, a role's trust policy is taken to name Lambda). [`TimingModel::observe`]
    /// calls it; a benchmark that reads the proxy's call log can feed a model of its own with
    /// it, since IAM calls carry the role's name.
    pub fn observe_iam(&self, call: &AwsCall, request: &[u8], status: u16) {
        if call.service != "iam" || !(200..300).contains(&status) {
            return;
        }
        let Some(role) = call.resource.clone() else {
            return;
        };
        let now = Instant::now();
        let s = &self.settings;
        let mut state = self.lock();
        match call.operation.as_str() {
            "CreateRole" => {
                let trusts = form_field(request, "AssumeRolePolicyDocument")
                    .is_none_or(|doc| trusts_lambda(&doc));
                let visible_at = now + s.iam_propagation;
                state.roles.insert(
                    role,
                    RoleTimes {
                        visible_at,
                        lambda_at: trusts.then_some(visible_at),
                        policy_at: None,
                    },
                );
            }
            "UpdateAssumeRolePolicy" => {
                let trusts =
                    form_field(request, "PolicyDocument").is_none_or(|doc| trusts_lambda(&doc));
                let times = state
                    .roles
                    .entry(role)
                    .or_insert_with(|| RoleTimes::settled(now));
                times.lambda_at = match (trusts, times.lambda_at) {
                    // Lambda may assume it under the old document and the new one alike.
                    (true, Some(at)) => Some(at),
                    // Newly trusted: Lambda sees the new document once it has propagated.
                    (true, None) => Some(now + s.iam_propagation),
                    (false, _) => None,
                };
            }
            "PutRolePolicy" | "AttachRolePolicy" => {
                let times = state
                    .roles
                    .entry(role)
                    .or_insert_with(|| RoleTimes::settled(now));
                times.policy_at = Some(now + s.iam_policy_propagation);
            }
            "DeleteRole" => {
                state.roles.remove(&role);
            }
            _ => {}
        }
    }

    /// When Lambda can assume `role` (`CreateFunction` naming it succeeds), if the model saw
    /// the role created or its trust policy changed; `None` otherwise, or while its trust
    /// policy does not name Lambda.
    pub fn role_usable_at(&self, role: &str) -> Option<Instant> {
        self.lock().roles.get(role).and_then(|t| t.lambda_at)
    }

    /// When the permissions last put on `role` (`PutRolePolicy` / `AttachRolePolicy`) take
    /// effect for its sessions, i.e. from when the function's own calls are allowed; `None` if
    /// the model saw no policy put on it.
    pub fn policy_effective_at(&self, role: &str) -> Option<Instant> {
        self.lock().roles.get(role).and_then(|t| t.policy_at)
    }

    /// What AWS would answer at `at` to `call` made with `role`'s credentials (the function's
    /// own calls) instead of running it: `AccessDeniedException` while the permissions last put
    /// on the role have not taken effect; `None` when the call would be authorized. Only the
    /// timing is modelled: the policy's content is not evaluated.
    pub fn refuse_as_role(
        &self,
        role: &str,
        call: &AwsCall,
        at: Instant,
    ) -> Option<(Response<Full<Bytes>>, &'static str)> {
        let effective = self.policy_effective_at(role)?;
        if at >= effective {
            return None;
        }
        let resource = call.resource.as_deref().unwrap_or("*");
        let action = format!("{}:{}", call.service, call.operation);
        let message = format!(
            "User: arn:aws:sts::123456789012:assumed-role/{role}/function is not authorized to perform: \
             {action} on resource: {resource} because no identity-based policy allows the {action} action"
        );
        Some((
            error_response(call, 400, "AccessDeniedException", &message),
            REFUSED_POLICY,
        ))
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
                        .is_some_and(|times| times.lambda_at.is_none_or(|at| now < at))
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
            ("sts", "AssumeRole") => {
                let arn = form_field(body, "RoleArn")?;
                let role = arn.rsplit('/').next()?;
                if state.roles.get(role).is_some_and(|t| now < t.visible_at) {
                    let message = format!(
                        "User is not authorized to perform: sts:AssumeRole on resource: {arn}"
                    );
                    return Some((
                        error_response(call, 403, "AccessDenied", &message),
                        REFUSED_ROLE,
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
            ("iam", _) => {
                drop(state);
                self.observe_iam(call, request, status);
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

/// One field of a query-protocol (form) body, decoded.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (percent_decode(key) == name).then(|| percent_decode(&value.replace('+', " ")))
    })
}

/// Whether a trust policy lets Lambda assume the role (names the service principal
/// `lambda.amazonaws.com`).
fn trusts_lambda(document: &str) -> bool {
    document.contains("lambda.amazonaws.com")
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
    fn sts_refuses_to_assume_a_new_role_until_it_is_visible() {
        let model = TimingModel::new(ModelSettings {
            iam_propagation: Duration::from_millis(80),
            ..ModelSettings::latency_only(Duration::ZERO)
        });
        model.observe_iam(&call("iam", "CreateRole", Some("r1")), b"", 200);
        let assume = call("sts", "AssumeRole", None);
        let body =
            b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr1&RoleSessionName=s";
        let (response, why) = model.refuse(&assume, body).expect("refused");
        assert_eq!((response.status().as_u16(), why), (403, REFUSED_ROLE));
        assert_eq!(response.headers()["x-amzn-errortype"], "AccessDenied");
        std::thread::sleep(Duration::from_millis(100));
        assert!(model.refuse(&assume, body).is_none());
    }

    #[test]
    fn a_trust_policy_update_restarts_propagation_only_when_it_newly_trusts_lambda() {
        let model = TimingModel::new(ModelSettings {
            iam_propagation: Duration::from_secs(60),
            ..ModelSettings::latency_only(Duration::ZERO)
        });
        let ec2 = b"Action=CreateRole&RoleName=r1&AssumeRolePolicyDocument=%7B%22Principal%22%3A%7B%22Service%22%3A%22ec2.amazonaws.com%22%7D%7D";
        model.observe_iam(&call("iam", "CreateRole", Some("r1")), ec2, 200);
        assert_eq!(model.role_usable_at("r1"), None);
        let create = call("lambda", "CreateFunction", None);
        let function = br#"{"FunctionName":"f","Role":"arn:aws:iam::1:role/r1"}"#;
        assert!(model.refuse(&create, function).is_some());

        let lambda = b"Action=UpdateAssumeRolePolicy&RoleName=r1&PolicyDocument=%7B%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%7D";
        let update = call("iam", "UpdateAssumeRolePolicy", Some("r1"));
        let before = Instant::now();
        model.observe_iam(&update, lambda, 200);
        let usable = model.role_usable_at("r1").expect("trusted now");
        assert!(usable >= before + Duration::from_secs(60));
        // Lambda was already trusted: a second update does not start the wait again.
        std::thread::sleep(Duration::from_millis(5));
        model.observe_iam(&update, lambda, 200);
        assert_eq!(model.role_usable_at("r1"), Some(usable));
        assert!(model.refuse(&create, function).is_some());
    }

    #[test]
    fn a_role_policy_takes_effect_for_the_roles_own_calls_only_after_propagation() {
        let model = TimingModel::new(ModelSettings {
            iam_policy_propagation: Duration::from_secs(7),
            ..ModelSettings::latency_only(Duration::ZERO)
        });
        let put_item = call("dynamodb", "PutItem", Some("t"));
        assert_eq!(model.policy_effective_at("r1"), None);
        assert!(model
            .refuse_as_role("r1", &put_item, Instant::now())
            .is_none());

        let before = Instant::now();
        model.observe_iam(&call("iam", "PutRolePolicy", Some("r1")), b"", 200);
        let effective = model.policy_effective_at("r1").expect("recorded");
        assert!(effective >= before + Duration::from_secs(7));
        let (response, why) = model
            .refuse_as_role("r1", &put_item, Instant::now())
            .expect("denied");
        assert_eq!((response.status().as_u16(), why), (400, REFUSED_POLICY));
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "AccessDeniedException"
        );
        assert!(model.refuse_as_role("r1", &put_item, effective).is_none());
        // Wishctl's own calls (not made as the role) are not affected.
        assert!(model.refuse(&put_item, b"{}").is_none());
        // A failed put changes nothing; deleting the role forgets it.
        model.observe_iam(&call("iam", "PutRolePolicy", Some("r2")), b"", 400);
        assert_eq!(model.policy_effective_at("r2"), None);
        model.observe_iam(&call("iam", "DeleteRole", Some("r1")), b"", 200);
        assert_eq!(model.policy_effective_at("r1"), None);
    }

    #[test]
    fn scaling_scales_every_wait_and_latency_only_has_none() {
        let scaled = ModelSettings::default().scaled(0.5);
        assert_eq!(scaled.iam_policy_propagation, Duration::from_millis(3500));
        assert_eq!(scaled.apigateway_rate, 10.0);
        let plain = ModelSettings::latency_only(Duration::from_millis(5));
        assert_eq!(plain.iam_policy_propagation, Duration::ZERO);
        assert_eq!(plain.latency, Duration::from_millis(5));
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
