//! API Gateway HTTP API payload format 2.0, as a Lambda proxy integration receives it, and the
//! one conversion between it and the API: [`decode`] / [`answer`] turn an event (raw JSON) into
//! an [`ApiRequest`] and the [`ApiResponse`] back into an [`HttpApiResponse`].
//!
//! `bootstrap` hands [`answer`] the event exactly as the Lambda Runtime API delivers it;
//! `wishctl dev` builds an [`HttpApiEvent`] per request, as API Gateway would, and answers it
//! with [`handle_event`], which goes through the same JSON and the same [`answer`]. Field names
//! follow the AWS documentation ("Working with AWS Lambda proxy integrations for HTTP APIs").

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ApiRequest, ApiResponse, Store};

/// The request event (payload format version 2.0).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpApiEvent {
    pub version: String,
    pub route_key: String,
    pub raw_path: String,
    pub raw_query_string: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookies: Option<Vec<String>>,
    /// Lower-case names; repeated headers joined with `,`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string_parameters: Option<BTreeMap<String, String>>,
    pub request_context: RequestContext,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub is_base64_encoded: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub account_id: String,
    pub api_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<Authorizer>,
    pub domain_name: String,
    pub domain_prefix: String,
    pub http: Http,
    pub request_id: String,
    pub route_key: String,
    pub stage: String,
    /// `25/Nov/2026:10:00:00 +0000`
    pub time: String,
    /// Milliseconds since the epoch.
    pub time_epoch: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Authorizer {
    pub jwt: JwtAuthorizer,
}

/// What a JWT authorizer passes on: every claim as a string (arrays rendered `[a b]`), and the
/// route's scopes that the token holds (`null` when the route has no scopes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JwtAuthorizer {
    pub claims: BTreeMap<String, String>,
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    pub method: String,
    pub path: String,
    pub protocol: String,
    pub source_ip: String,
    pub user_agent: String,
}

/// The response a Lambda returns for payload format 2.0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpApiResponse {
    pub status_code: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cookies: Vec<String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub is_base64_encoded: bool,
}

/// The one conversion from a payload 2.0 event to the API and back, for the Lambda
/// (`bootstrap` receives the event as raw JSON) and for `wishctl dev` (which builds an
/// [`HttpApiEvent`]): both end in [`answer`].
///
/// Decoding is lenient where API Gateway's own fields may vary and never panics: an event it
/// cannot use (not an object, another payload version, no method, a body marked base64 that is
/// not) is answered 400 with a message naming the event field, without reaching the store.
pub fn decode(event: &Value, invocation_id: Option<&str>) -> Result<ApiRequest, ApiResponse> {
    let Some(event) = event.as_object() else {
        return Err(bad_event(format!(
            "the event is {}, not a payload format 2.0 object",
            json_kind(event)
        )));
    };
    match event.get("version") {
        None | Some(Value::Null) => {}
        Some(Value::String(version)) if version == "2.0" => {}
        Some(other) => {
            return Err(bad_event(format!(
                "event version {} is not supported: set the integration's payload format version to 2.0",
                short(other)
            )))
        }
    }
    let context = match event.get("requestContext") {
        Some(Value::Object(context)) => context,
        _ => return Err(missing("requestContext", "an object")),
    };
    let http = context.get("http").and_then(Value::as_object);
    let method = match http
        .and_then(|http| http.get("method"))
        .and_then(Value::as_str)
    {
        Some(method) if is_method_token(method) => method.to_string(),
        _ => return Err(missing("requestContext.http.method", "an HTTP method")),
    };
    let path =
        route_path(event, http).ok_or_else(|| missing("rawPath", "a path starting with /"))?;
    let query = query_parameters(event)?;
    let body = body_bytes(event)?;
    let request_id = invocation_id
        .filter(|id| !id.is_empty())
        .or_else(|| context.get("requestId").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    let time = match context.get("timeEpoch").and_then(Value::as_i64) {
        Some(epoch) if epoch > 0 => rfc3339_from_epoch_millis(epoch),
        _ => now_rfc3339(),
    };
    Ok(ApiRequest {
        method,
        path,
        query,
        body,
        request_id,
        claims: jwt_claims(context),
        time,
    })
}

/// What [`answer`] did, for the caller's request log (never a header, body or claim).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub response: HttpApiResponse,
    /// The request's method and path, when the event had them.
    pub method: Option<String>,
    pub path: Option<String>,
    /// The id the request was handled under (the new item's id for a `POST`).
    pub request_id: String,
}

/// Answers one payload 2.0 event (raw JSON) with the wish-list API. `invocation_id` is the
/// Lambda invocation's request id (the new item's id, as `context.awsRequestId` in the
/// walkthrough); without it, `requestContext.requestId` is used.
pub async fn answer(store: &dyn Store, event: &Value, invocation_id: Option<&str>) -> Answer {
    match decode(event, invocation_id) {
        Ok(request) => {
            let (method, path, request_id) = (
                request.method.clone(),
                request.path.clone(),
                request.request_id.clone(),
            );
            Answer {
                response: crate::handle(store, request).await.into(),
                method: Some(method),
                path: Some(path),
                request_id,
            }
        }
        Err(response) => Answer {
            response: response.into(),
            method: None,
            path: None,
            request_id: invocation_id.unwrap_or_default().to_string(),
        },
    }
}

/// Answers an event built in process (`wishctl dev`) through the same [`answer`] as the Lambda:
/// the event goes through its JSON form, exactly as `bootstrap` receives it.
pub async fn handle_event(store: &dyn Store, event: &HttpApiEvent) -> HttpApiResponse {
    match serde_json::to_value(event) {
        Ok(json) => answer(store, &json, None).await.response,
        Err(_) => ApiResponse::message(500, "Internal Server Error").into(),
    }
}

impl From<ApiResponse> for HttpApiResponse {
    fn from(response: ApiResponse) -> Self {
        HttpApiResponse {
            status_code: response.status,
            headers: response.headers.into_iter().collect(),
            cookies: Vec::new(),
            body: response.body,
            is_base64_encoded: false,
        }
    }
}

fn bad_event(message: String) -> ApiResponse {
    ApiResponse::message(400, message)
}

fn missing(field: &str, expected: &str) -> ApiResponse {
    bad_event(format!(
        "event field {field} is missing or not {expected}: is this an API Gateway payload format 2.0 event?"
    ))
}

/// A value for a message, cut short: events may be megabytes.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 40 {
        text
    } else {
        format!("{}...", text.chars().take(40).collect::<String>())
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// RFC 9110 method token, at most 32 characters (API Gateway's methods are far shorter).
fn is_method_token(method: &str) -> bool {
    !method.is_empty()
        && method.len() <= 32
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The path API Gateway matched: the path of the route key (`POST /wish-list-service`), which
/// carries no stage prefix; for the `$default` route (or none), `rawPath`, then
/// `requestContext.http.path`.
fn route_path(event: &Map<String, Value>, http: Option<&Map<String, Value>>) -> Option<String> {
    let from_route_key = event
        .get("routeKey")
        .and_then(Value::as_str)
        .and_then(|key| key.split_once(' '))
        .map(|(_, path)| path)
        .filter(|path| path.starts_with('/'));
    let raw_path = event
        .get("rawPath")
        .and_then(Value::as_str)
        .filter(|path| path.starts_with('/'));
    let http_path = http
        .and_then(|http| http.get("path"))
        .and_then(Value::as_str)
        .filter(|path| path.starts_with('/'));
    from_route_key
        .or(raw_path)
        .or(http_path)
        .map(str::to_string)
}

/// `queryStringParameters` (already decoded, repeated names joined with `,`); without it, the
/// same from `rawQueryString`.
fn query_parameters(event: &Map<String, Value>) -> Result<BTreeMap<String, String>, ApiResponse> {
    match event.get("queryStringParameters") {
        Some(Value::Object(parameters)) => parameters
            .iter()
            .map(|(name, value)| match value {
                Value::String(value) => Ok((name.clone(), value.clone())),
                _ => Err(missing(
                    &format!(
                        "queryStringParameters.{}",
                        short(&Value::String(name.clone()))
                    ),
                    "a string",
                )),
            })
            .collect(),
        None | Some(Value::Null) => {
            let raw = match event.get("rawQueryString") {
                Some(Value::String(raw)) => raw.as_str(),
                None | Some(Value::Null) => "",
                Some(_) => return Err(missing("rawQueryString", "a string")),
            };
            let mut query: BTreeMap<String, String> = BTreeMap::new();
            for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
                query
                    .entry(name.into_owned())
                    .and_modify(|joined| {
                        joined.push(',');
                        joined.push_str(&value);
                    })
                    .or_insert_with(|| value.into_owned());
            }
            Ok(query)
        }
        Some(_) => Err(missing("queryStringParameters", "an object")),
    }
}

/// Standard, padded base64, as API Gateway writes it; anything else (truncated input, stray
/// characters, whitespace, non-canonical trailing bits) is refused rather than guessed at.
const BODY_BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn body_bytes(event: &Map<String, Value>) -> Result<Vec<u8>, ApiResponse> {
    let encoded = match event.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(encoded)) => *encoded,
        Some(_) => return Err(missing("isBase64Encoded", "true or false")),
    };
    match event.get("body") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(body)) if encoded => BODY_BASE64.decode(body).map_err(|_| {
            ApiResponse::message(
                400,
                "request body is marked base64 (isBase64Encoded) but is not valid base64",
            )
        }),
        Some(Value::String(body)) => Ok(body.clone().into_bytes()),
        Some(_) => Err(missing("body", "a string")),
    }
}

/// `requestContext.authorizer.jwt.claims` as API Gateway passes them (every value a string).
/// Numbers and booleans are kept as their JSON text; arrays, objects and nulls are dropped.
/// `None` when there is no JWT authorizer or no claim at all.
fn jwt_claims(context: &Map<String, Value>) -> Option<BTreeMap<String, String>> {
    let claims = context
        .get("authorizer")?
        .get("jwt")?
        .get("claims")?
        .as_object()?;
    let claims: BTreeMap<String, String> = claims
        .iter()
        .filter_map(|(name, value)| match value {
            Value::String(text) => Some((name.clone(), text.clone())),
            Value::Number(_) | Value::Bool(_) => Some((name.clone(), value.to_string())),
            _ => None,
        })
        .collect();
    (!claims.is_empty()).then_some(claims)
}

/// Formats epoch milliseconds as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339_from_epoch_millis(millis: i64) -> String {
    let nanos = i128::from(millis) * 1_000_000;
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time.format(&format).unwrap_or_default()
}

/// The current time as RFC 3339, for transports that carry no request time.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    rfc3339_from_epoch_millis((now.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    fn event(method: &str, body: Option<&str>, base64: bool) -> HttpApiEvent {
        HttpApiEvent {
            version: "2.0".into(),
            route_key: format!("{method} /wish-list-service"),
            raw_path: "/wish-list-service".into(),
            request_context: RequestContext {
                request_id: "abc".into(),
                time_epoch: 1_764_064_800_000,
                http: Http {
                    method: method.into(),
                    path: "/wish-list-service".into(),
                    ..Http::default()
                },
                authorizer: Some(Authorizer {
                    jwt: JwtAuthorizer {
                        claims: BTreeMap::from([("sub".into(), "u1".into())]),
                        scopes: None,
                    },
                }),
                ..RequestContext::default()
            },
            body: body.map(str::to_string),
            is_base64_encoded: base64,
            ..HttpApiEvent::default()
        }
    }

    fn decode_typed(event: &HttpApiEvent) -> Result<ApiRequest, ApiResponse> {
        decode(&serde_json::to_value(event).unwrap(), None)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn decodes_the_documented_example_event() {
        let json = r#"{
          "version": "2.0", "routeKey": "POST /wish-list-service", "rawPath": "/wish-list-service",
          "rawQueryString": "", "headers": {"content-type": "application/json"},
          "requestContext": {"accountId": "123456789012", "apiId": "api-id",
            "authorizer": {"jwt": {"claims": {"sub": "auth0|1", "aud": "[a b]"}, "scopes": null}},
            "domainName": "id.execute-api.us-east-1.amazonaws.com", "domainPrefix": "id",
            "http": {"method": "POST", "path": "/wish-list-service", "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "curl"},
            "requestId": "id", "routeKey": "POST /wish-list-service", "stage": "$default",
            "time": "12/Mar/2020:19:03:58 +0000", "timeEpoch": 1583348638390},
          "body": "eyJuYW1lIjoieCJ9", "isBase64Encoded": true}"#;
        let value: Value = serde_json::from_str(json).unwrap();
        let request = decode(&value, Some("lambda-request-id")).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/wish-list-service");
        assert_eq!(request.body, br#"{"name":"x"}"#);
        assert_eq!(request.request_id, "lambda-request-id");
        assert_eq!(request.claims.unwrap()["aud"], "[a b]");
        assert_eq!(request.time, "2020-03-04T19:03:58.390Z");
        // The typed event reads the same document.
        let typed: HttpApiEvent = serde_json::from_value(value).unwrap();
        assert_eq!(decode_typed(&typed).unwrap().request_id, "id");
    }

    #[test]
    fn base64_bodies_are_decoded_before_validation() {
        let store = MemoryStore::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(r#"{"name":"b64"}"#);
        let response = block_on(handle_event(&store, &event("POST", Some(&encoded), true)));
        assert_eq!(response.status_code, 201);
    }

    #[test]
    fn a_body_marked_base64_that_is_not_gets_400() {
        for broken in ["%%%", "eyJ", "a", "ab=c", "====", "eyJuYW1lIjoieCJ9\n"] {
            let response = decode_typed(&event("POST", Some(broken), true)).unwrap_err();
            assert_eq!(response.status, 400, "{broken}");
            assert!(
                response.body.contains("isBase64Encoded"),
                "{}",
                response.body
            );
        }
    }

    #[test]
    fn the_route_key_path_wins_over_a_stage_prefixed_raw_path() {
        let mut staged = event("GET", None, false);
        staged.raw_path = "/prod/wish-list-service".into();
        assert_eq!(decode_typed(&staged).unwrap().path, "/wish-list-service");
        let mut default_route = event("GET", None, false);
        default_route.route_key = "$default".into();
        default_route.raw_path = "/other".into();
        assert_eq!(decode_typed(&default_route).unwrap().path, "/other");
    }

    #[test]
    fn query_parameters_come_from_the_event_or_else_the_raw_query_string() {
        let mut get = event("GET", None, false);
        get.raw_query_string = "limit=5&cursor=a%2Bb&limit=6".into();
        let query = decode_typed(&get).unwrap().query;
        assert_eq!(query["limit"], "5,6");
        assert_eq!(query["cursor"], "a+b");
        get.query_string_parameters = Some(BTreeMap::from([("limit".into(), "7".into())]));
        assert_eq!(
            decode_typed(&get).unwrap().query,
            BTreeMap::from([("limit".to_string(), "7".to_string())])
        );
    }

    #[test]
    fn an_empty_claim_set_or_a_non_jwt_authorizer_is_no_claims() {
        let mut post = event("POST", Some("{}"), false);
        post.request_context.authorizer = Some(Authorizer {
            jwt: JwtAuthorizer::default(),
        });
        assert_eq!(decode_typed(&post).unwrap().claims, None);
        let mut value = serde_json::to_value(event("POST", None, false)).unwrap();
        value["requestContext"]["authorizer"] = serde_json::json!({"lambda": {"sub": "x"}});
        assert_eq!(decode(&value, None).unwrap().claims, None);
        value["requestContext"]["authorizer"] = serde_json::json!({"jwt": {"claims": {"sub": "u", "n": 3, "b": true, "a": [1], "z": null}}});
        let claims = decode(&value, None).unwrap().claims.unwrap();
        assert_eq!(
            claims,
            BTreeMap::from([
                ("b".to_string(), "true".to_string()),
                ("n".to_string(), "3".to_string()),
                ("sub".to_string(), "u".to_string()),
            ])
        );
    }

    #[test]
    fn malformed_events_get_400_naming_the_field_and_never_panic() {
        let good = serde_json::to_value(event("POST", Some("{}"), false)).unwrap();
        let with = |pointer: &str, value: Value| {
            let mut event = good.clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let parent = if parent.is_empty() {
                &mut event
            } else {
                event.pointer_mut(parent).unwrap()
            };
            parent.as_object_mut().unwrap().insert(key.into(), value);
            event
        };
        let without = |field: &str| {
            let mut event = good.clone();
            event.as_object_mut().unwrap().remove(field);
            event
        };
        let cases: Vec<(Value, &str)> = vec![
            (Value::Null, "not a payload format 2.0 object"),
            (serde_json::json!([1, 2]), "not a payload format 2.0 object"),
            (
                serde_json::json!("event"),
                "not a payload format 2.0 object",
            ),
            (serde_json::json!({}), "requestContext"),
            (
                with("/version", serde_json::json!("1.0")),
                "payload format version",
            ),
            (
                with("/version", serde_json::json!(2)),
                "payload format version",
            ),
            (without("requestContext"), "requestContext"),
            (
                with("/requestContext", serde_json::json!("x")),
                "requestContext",
            ),
            (
                with("/requestContext/http", Value::Null),
                "requestContext.http.method",
            ),
            (
                with("/requestContext/http/method", serde_json::json!(7)),
                "requestContext.http.method",
            ),
            (
                with("/requestContext/http/method", serde_json::json!("")),
                "requestContext.http.method",
            ),
            (
                with("/requestContext/http/method", serde_json::json!("GET /x")),
                "requestContext.http.method",
            ),
            (
                with("/body", serde_json::json!({"name": "x"})),
                "event field body",
            ),
            (
                with("/isBase64Encoded", serde_json::json!("yes")),
                "isBase64Encoded",
            ),
            (
                with("/rawQueryString", serde_json::json!(5)),
                "rawQueryString",
            ),
            (
                with("/queryStringParameters", serde_json::json!({"limit": 5})),
                "queryStringParameters.\"limit\"",
            ),
            (
                with("/queryStringParameters", serde_json::json!([])),
                "queryStringParameters",
            ),
        ];
        for (event, expected) in cases {
            let response = decode(&event, Some("id")).unwrap_err();
            assert_eq!(response.status, 400, "{event}");
            assert_eq!(response.header("content-type"), Some("application/json"));
            let message: Value = serde_json::from_str(&response.body).unwrap();
            let message = message["message"].as_str().unwrap();
            assert!(
                message.contains(expected),
                "{expected:?} not in {message:?}"
            );
        }
        // No route key and no usable path at all.
        let mut pathless = without("routeKey");
        pathless.as_object_mut().unwrap().remove("rawPath");
        pathless["requestContext"]["http"]
            .as_object_mut()
            .unwrap()
            .remove("path");
        assert!(decode(&pathless, None)
            .unwrap_err()
            .body
            .contains("rawPath"));
    }

    #[test]
    fn odd_but_harmless_fields_are_tolerated() {
        let mut value = serde_json::to_value(event("GET", None, false)).unwrap();
        value["headers"] = serde_json::json!({"x": 1, "": [null], "authorization": {"deep": []}});
        value["cookies"] = serde_json::json!("not a list");
        value["requestContext"]["timeEpoch"] = serde_json::json!("soon");
        value["requestContext"]["requestId"] = serde_json::json!(42);
        let request = decode(&value, None).unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.request_id, "");
        assert!(!request.time.is_empty());
    }

    #[test]
    fn extreme_epochs_do_not_panic() {
        assert_eq!(
            rfc3339_from_epoch_millis(i64::MAX),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_from_epoch_millis(i64::MIN),
            "1970-01-01T00:00:00.000Z"
        );
        let mut value = serde_json::to_value(event("GET", None, false)).unwrap();
        value["requestContext"]["timeEpoch"] = serde_json::json!(u64::MAX);
        assert!(decode(&value, None).is_ok());
    }
}
