//! Fault injection for [`crate::aws_proxy::AwsProxy`]: for a chosen share of calls, one of the
//! ways a real AWS endpoint fails, picked by a seeded generator so that a failing run can be
//! replayed with its seed.
//!
//! Each kind is answered as the service would spell it: throttling is `ThrottlingException`
//! (DynamoDB, CloudWatch Logs), `Throttling` (IAM, STS, query protocol, XML) or
//! `TooManyRequestsException` (Lambda, API Gateway, HTTP 429).

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use crate::aws_call::AwsCall;

/// A way for a call to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The service's throttling error; the call does not take effect.
    Throttle,
    /// HTTP 500 `InternalFailure` or 503 `ServiceUnavailable`; the call does not take effect.
    ServerError,
    /// The connection is reset before the request reaches the service.
    Reset,
    /// The call takes effect, then the connection is reset: the client never sees the answer.
    LostResponse,
    /// The call takes effect (forwarded at once, or with [`FaultPlan::with_late_effects`] at a
    /// random moment within the stall), and its answer comes only [`FaultPlan::stall`] after
    /// the call arrived, past the client's attempt timeout. The call takes effect whether or
    /// not the client waits: a client that gives up and retries repeats a call that took
    /// effect, or (late effects) one whose effect lands after the retry.
    Stall,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Throttle,
        FaultKind::ServerError,
        FaultKind::Reset,
        FaultKind::LostResponse,
        FaultKind::Stall,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Throttle => "throttle",
            FaultKind::ServerError => "5xx",
            FaultKind::Reset => "reset",
            FaultKind::LostResponse => "lost response",
            FaultKind::Stall => "stall",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which calls fail, and how.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Share of calls that fail, 0.0-1.0.
    pub share: f64,
    /// Seed of the generator that picks the failing calls and their kinds.
    pub seed: u64,
    /// The kinds to pick from (uniformly).
    pub kinds: Vec<FaultKind>,
    /// How long a [`FaultKind::Stall`] holds the answer.
    pub stall: Duration,
    /// Whether a stalled call takes effect at a random moment within the stall (picked by the
    /// generator) instead of at once.
    pub late_effects: bool,
}

impl FaultPlan {
    /// `share` of the calls fail with any of the kinds, stalls lasting `stall`.
    pub fn new(share: f64, seed: u64, stall: Duration) -> Self {
        FaultPlan {
            share,
            seed,
            kinds: FaultKind::ALL.to_vec(),
            stall,
            late_effects: false,
        }
    }

    pub fn with_kinds(mut self, kinds: &[FaultKind]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }

    /// Stalled calls take effect at a random moment within the stall: before or after the
    /// client's attempt timeout and its retry.
    pub fn with_late_effects(mut self) -> Self {
        self.late_effects = true;
        self
    }
}

/// A [`FaultPlan`] being applied: the generator's state.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    plan: FaultPlan,
    rng: Mutex<SplitMix64>,
}

impl FaultInjector {
    pub(crate) fn new(plan: FaultPlan) -> Self {
        let rng = Mutex::new(SplitMix64(plan.seed));
        FaultInjector { plan, rng }
    }

    /// How long a stall holds the answer, and how long after the fault its call takes effect.
    pub(crate) fn stall_timing(&self) -> (Duration, Duration) {
        let stall = self.plan.stall;
        if !self.plan.late_effects {
            return (stall, Duration::ZERO);
        }
        let unit = match self.rng.lock() {
            Ok(mut rng) => rng.unit(),
            Err(poisoned) => poisoned.into_inner().unit(),
        };
        (stall, stall.mul_f64(unit))
    }

    /// Whether this call fails, and how.
    pub(crate) fn decide(&self) -> Option<FaultKind> {
        if self.plan.kinds.is_empty() || self.plan.share <= 0.0 {
            return None;
        }
        let mut rng = match self.rng.lock() {
            Ok(rng) => rng,
            Err(poisoned) => poisoned.into_inner(),
        };
        if rng.unit() >= self.plan.share {
            return None;
        }
        let index = (rng.next_u64() % self.plan.kinds.len() as u64) as usize;
        Some(self.plan.kinds[index])
    }

    /// A fresh 500 or 503 (picked by the generator).
    pub(crate) fn server_error(&self, call: &AwsCall) -> Response<Full<Bytes>> {
        let unavailable = match self.rng.lock() {
            Ok(mut rng) => rng.next_u64() % 2 == 0,
            Err(poisoned) => poisoned.into_inner().next_u64() % 2 == 0,
        };
        if unavailable {
            error_response(call, 503, "ServiceUnavailable", "Service is unavailable")
        } else {
            error_response(call, 500, "InternalFailure", "Internal server error")
        }
    }
}

/// The service's throttling error for `call`.
pub fn throttle_response(call: &AwsCall) -> Response<Full<Bytes>> {
    match call.service.as_str() {
        "lambda" | "apigateway" => {
            error_response(call, 429, "TooManyRequestsException", "Rate exceeded")
        }
        "iam" | "sts" => error_response(call, 400, "Throttling", "Rate exceeded"),
        _ => error_response(call, 400, "ThrottlingException", "Rate exceeded"),
    }
}

/// An error answer in the wire format of `call`'s service: REST JSON with `x-amzn-ErrorType`
/// (Lambda, API Gateway), JSON with `__type` (DynamoDB, CloudWatch Logs), query XML (IAM, STS).
pub fn error_response(
    call: &AwsCall,
    status: u16,
    code: &str,
    message: &str,
) -> Response<Full<Bytes>> {
    let (content_type, body) = match call.service.as_str() {
        "iam" | "sts" => {
            let namespace = if call.service == "iam" {
                "https://iam.amazonaws.com/doc/2010-05-08/"
            } else {
                "https://sts.amazonaws.com/doc/2011-06-15/"
            };
            let kind = if status >= 500 { "Receiver" } else { "Sender" };
            (
                "text/xml",
                format!(
                    "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{kind}</Type><Code>{code}</Code>\
                     <Message>{message}</Message></Error><RequestId>testkit-proxy</RequestId></ErrorResponse>"
                ),
            )
        }
        "dynamodb" => (
            "application/x-amz-json-1.0",
            serde_json::json!({
                "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
                "message": message,
            })
            .to_string(),
        ),
        "logs" => (
            "application/x-amz-json-1.1",
            serde_json::json!({ "__type": code, "message": message }).to_string(),
        ),
        _ => (
            "application/json",
            serde_json::json!({ "Type": "User", "message": message, "Message": message })
                .to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    if let Ok(value) = hyper::header::HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", value);
    }
    headers.insert(
        "x-amzn-requestid",
        hyper::header::HeaderValue::from_static("testkit-proxy"),
    );
    response
}

/// A small, seedable generator (SplitMix64): enough to pick faults reproducibly.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_of_faults_is_close_to_the_plan_and_the_seed_replays_it() {
        let picks = |seed| {
            let injector = FaultInjector::new(FaultPlan::new(0.2, seed, Duration::ZERO));
            (0..5000).map(|_| injector.decide()).collect::<Vec<_>>()
        };
        let first = picks(7);
        assert_eq!(first, picks(7));
        assert_ne!(first, picks(8));
        let faults = first.iter().filter(|f| f.is_some()).count();
        assert!((850..1150).contains(&faults), "{faults} of 5000");
        for kind in FaultKind::ALL {
            assert!(first.contains(&Some(kind)), "{kind} never picked");
        }
    }

    #[test]
    fn throttling_is_spelled_as_each_service_spells_it() {
        let call = |service: &str| AwsCall {
            service: service.to_string(),
            operation: "X".to_string(),
            resource: None,
        };
        let lambda = throttle_response(&call("lambda"));
        assert_eq!(lambda.status(), 429);
        assert_eq!(
            lambda.headers()["x-amzn-errortype"],
            "TooManyRequestsException"
        );
        assert_eq!(
            throttle_response(&call("iam")).headers()["x-amzn-errortype"],
            "Throttling"
        );
        assert_eq!(
            throttle_response(&call("dynamodb")).headers()["x-amzn-errortype"],
            "ThrottlingException"
        );
    }
}
