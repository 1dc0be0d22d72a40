//! An HTTP request turned into the payload format 2.0 event API Gateway would send the Lambda,
//! and the Lambda's response turned back into HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue};
use http::StatusCode;
use wishlist::event::{
    Authorizer, Http, HttpApiEvent, HttpApiResponse, JwtAuthorizer, RequestContext,
};

/// The account id in local events (none is real).
pub const LOCAL_ACCOUNT_ID: &str = "000000000000";
/// The API id in local events.
pub const LOCAL_API_ID: &str = "wishctl-dev";

/// What the event is built from, besides the HTTP request itself.
#[derive(Debug, Clone)]
pub struct EventContext<'a> {
    pub route_key: &'a str,
    pub request_id: &'a str,
    /// Milliseconds since the epoch.
    pub time_epoch_ms: i64,
    pub source: SocketAddr,
    pub local_port: u16,
    /// `Some` for routes behind the JWT authorizer.
    pub jwt: Option<&'a authorizer::Authorization>,
}

/// The request parts the event needs.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub version: http::Version,
    pub headers: &'a HeaderMap,
}

/// Builds the event as API Gateway does: header names lower-cased and repeated values joined
/// with `,`; cookies moved out of the headers into `cookies`; query parameters decoded (repeated
/// names joined with `,`); the body as text for text content types and base64 otherwise.
pub fn build_event(
    request: &RequestParts<'_>,
    body: &[u8],
    context: &EventContext<'_>,
) -> HttpApiEvent {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in request.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        if name == http::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from),
            );
            continue;
        }
        headers
            .entry(name.as_str().to_string())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    headers
        .entry("x-forwarded-for".into())
        .or_insert_with(|| context.source.ip().to_string());
    headers
        .entry("x-forwarded-port".into())
        .or_insert_with(|| context.local_port.to_string());
    headers
        .entry("x-forwarded-proto".into())
        .or_insert_with(|| "http".into());

    let raw_query = request.query.unwrap_or_default();
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(name.into_owned())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }

    let (body, is_base64_encoded) =
        encode_body(headers.get("content-type").map(String::as_str), body);
    let domain_name = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| format!("127.0.0.1:{}", context.local_port));
    let domain_prefix = domain_name
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();

    HttpApiEvent {
        version: "2.0".into(),
        route_key: context.route_key.to_string(),
        raw_path: request.path.to_string(),
        raw_query_string: raw_query.to_string(),
        cookies: (!cookies.is_empty()).then_some(cookies),
        headers,
        query_string_parameters: (!query.is_empty()).then_some(query),
        request_context: RequestContext {
            account_id: LOCAL_ACCOUNT_ID.into(),
            api_id: LOCAL_API_ID.into(),
            authorizer: context.jwt.map(|jwt| Authorizer {
                jwt: JwtAuthorizer {
                    claims: jwt.claims.clone(),
                    scopes: jwt.scopes.clone(),
                },
            }),
            domain_name,
            domain_prefix,
            http: Http {
                method: request.method.to_string(),
                path: request.path.to_string(),
                protocol: protocol(request.version).into(),
                source_ip: context.source.ip().to_string(),
                user_agent,
            },
            request_id: context.request_id.to_string(),
            route_key: context.route_key.to_string(),
            stage: "$default".into(),
            time: clf_time(context.time_epoch_ms),
            time_epoch: context.time_epoch_ms,
        },
        body,
        is_base64_encoded,
    }
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

/// No body: `None`. Text (by content type, and valid UTF-8): as is. Anything else: base64.
fn encode_body(content_type: Option<&str>, body: &[u8]) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    if content_type.is_some_and(is_text_content_type) {
        if let Ok(text) = std::str::from_utf8(body) {
            return (Some(text.to_string()), false);
        }
    }
    (Some(STANDARD.encode(body)), true)
}

/// Content types API Gateway passes as text: `text/*`, JSON, XML and JavaScript (with their
/// `+json` / `+xml` suffixes). Form posts and bodies without a content type arrive base64-encoded.
pub fn is_text_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/json" | "application/xml" | "application/javascript"
        )
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
}

/// API Gateway's `requestContext.time`: `25/Nov/2026:10:00:00 +0000`.
pub fn clf_time(epoch_ms: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(epoch_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    time.format(&format).unwrap_or_default()
}

/// The HTTP response for the Lambda's answer. A status outside 100-599 is the integration's
/// fault: 500 `{"message":"Internal Server Error"}`, as API Gateway answers.
pub fn into_http(response: HttpApiResponse, request_id: &str) -> http::Response<Bytes> {
    let body = if response.is_base64_encoded {
        STANDARD.decode(response.body.as_bytes()).ok()
    } else {
        Some(response.body.into_bytes())
    };
    let (Ok(status), Some(body)) = (StatusCode::from_u16(response.status_code), body) else {
        return message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            request_id,
        );
    };
    let mut out = http::Response::new(Bytes::from(body));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    for (name, value) in &response.headers {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    for cookie in &response.cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(http::header::SET_COOKIE, value);
        }
    }
    if !headers.contains_key(http::header::CONTENT_TYPE) && !out.body().is_empty() {
        out.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    add_request_id(out.headers_mut(), request_id);
    out
}

/// API Gateway's own JSON answer: `{"message":"..."}`.
pub fn message(status: StatusCode, message: &str, request_id: &str) -> http::Response<Bytes> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut out = http::Response::new(Bytes::from(body));
    *out.status_mut() = status;
    out.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    add_request_id(out.headers_mut(), request_id);
    out
}

fn add_request_id(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("apigw-requestid", value);
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn context<'a>(jwt: Option<&'a authorizer::Authorization>) -> EventContext<'a> {
        EventContext {
            route_key: "POST /wish-list-service",
            request_id: "req-1",
            time_epoch_ms: 1_764_064_800_123,
            source: "127.0.0.1:50000".parse().unwrap(),
            local_port: 3000,
            jwt,
        }
    }

    #[test]
    fn given_a_post_with_a_token_then_the_event_has_every_payload_2_field() {
        let jwt = authorizer::Authorization {
            claims: BTreeMap::from([("sub".to_string(), "alice".to_string())]),
            scopes: None,
        };
        let headers = headers(&[
            ("Host", "127.0.0.1:3000"),
            ("Content-Type", "application/json"),
            ("User-Agent", "curl/8"),
            ("X-Multi", "a"),
            ("x-multi", "b"),
            ("Cookie", "a=1; b=2"),
        ]);
        let request = RequestParts {
            method: "POST",
            path: "/wish-list-service",
            query: Some("q=a%20b&q=c&empty="),
            version: http::Version::HTTP_11,
            headers: &headers,
        };
        let event = build_event(&request, br#"{"name":"x"}"#, &context(Some(&jwt)));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "version": "2.0",
                "routeKey": "POST /wish-list-service",
                "rawPath": "/wish-list-service",
                "rawQueryString": "q=a%20b&q=c&empty=",
                "cookies": ["a=1", "b=2"],
                "headers": {
                    "content-type": "application/json",
                    "host": "127.0.0.1:3000",
                    "user-agent": "curl/8",
                    "x-multi": "a,b",
                    "x-forwarded-for": "127.0.0.1",
                    "x-forwarded-port": "3000",
                    "x-forwarded-proto": "http"
                },
                "queryStringParameters": {"q": "a b,c", "empty": ""},
                "requestContext": {
                    "accountId": "000000000000",
                    "apiId": "wishctl-dev",
                    "authorizer": {"jwt": {"claims": {"sub": "alice"}, "scopes": null}},
                    "domainName": "127.0.0.1:3000",
                    "domainPrefix": "127",
                    "http": {
                        "method": "POST",
                        "path": "/wish-list-service",
                        "protocol": "HTTP/1.1",
                        "sourceIp": "127.0.0.1",
                        "userAgent": "curl/8"
                    },
                    "requestId": "req-1",
                    "routeKey": "POST /wish-list-service",
                    "stage": "$default",
                    "time": "25/Nov/2025:10:00:00 +0000",
                    "timeEpoch": 1_764_064_800_123i64
                },
                "body": "{\"name\":\"x\"}",
                "isBase64Encoded": false
            })
        );
    }

    #[test]
    fn given_an_open_route_then_there_is_no_authorizer_and_no_empty_fields() {
        let headers = headers(&[]);
        let request = RequestParts {
            method: "GET",
            path: "/wish-list-service",
            query: None,
            version: http::Version::HTTP_11,
            headers: &headers,
        };
        let event = build_event(&request, b"", &context(None));
        let json = serde_json::to_value(&event).unwrap();
        assert!(json["requestContext"].get("authorizer").is_none());
        assert!(json.get("body").is_none());
        assert!(json.get("cookies").is_none());
        assert!(json.get("queryStringParameters").is_none());
        assert_eq!(json["rawQueryString"], "");
        assert_eq!(json["isBase64Encoded"], false);
        assert_eq!(json["requestContext"]["domainName"], "127.0.0.1:3000");
    }

    #[test]
    fn non_text_bodies_are_base64_encoded() {
        assert_eq!(
            encode_body(Some("application/json; charset=utf-8"), b"{}"),
            (Some("{}".into()), false)
        );
        assert_eq!(
            encode_body(Some("text/plain"), b"hi"),
            (Some("hi".into()), false)
        );
        assert_eq!(
            encode_body(Some("application/vnd.api+json"), b"{}"),
            (Some("{}".into()), false)
        );
        assert_eq!(
            encode_body(Some("application/octet-stream"), b"hi"),
            (Some("aGk=".into()), true)
        );
        assert_eq!(
            encode_body(Some("application/x-www-form-urlencoded"), b"a=1"),
            (Some("YT0x".into()), true)
        );
        assert_eq!(encode_body(None, b"hi"), (Some("aGk=".into()), true));
        assert_eq!(
            encode_body(Some("text/plain"), &[0xff, 0xfe]),
            (Some("//4=".into()), true)
        );
        assert_eq!(encode_body(Some("text/plain"), b""), (None, false));
    }

    #[test]
    fn time_is_in_common_log_format() {
        assert_eq!(clf_time(1_583_348_638_390), "04/Mar/2020:19:03:58 +0000");
    }

    #[test]
    fn a_lambda_response_becomes_http_with_cookies_and_base64_decoded() {
        let response = HttpApiResponse {
            status_code: 200,
            headers: BTreeMap::from([("x-a".to_string(), "1".to_string())]),
            cookies: vec!["s=1; HttpOnly".into()],
            body: "aGk=".into(),
            is_base64_encoded: true,
        };
        let http = into_http(response, "rid");
        assert_eq!(http.status(), 200);
        assert_eq!(http.body().as_ref(), b"hi");
        assert_eq!(http.headers()["x-a"], "1");
        assert_eq!(http.headers()["set-cookie"], "s=1; HttpOnly");
        assert_eq!(http.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(http.headers()["apigw-requestid"], "rid");
    }

    #[test]
    fn an_invalid_lambda_status_is_an_internal_server_error() {
        let response = HttpApiResponse {
            status_code: 1000,
            ..HttpApiResponse::default()
        };
        let http = into_http(response, "rid");
        assert_eq!(http.status(), 500);
        assert_eq!(
            http.body().as_ref(),
            br#"{"message":"Internal Server Error"}"#
        );
    }
}
