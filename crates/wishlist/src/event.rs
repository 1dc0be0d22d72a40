//! API Gateway HTTP API payload format 2.0, as a Lambda proxy integration receives it.
//!
//! `wishctl dev` builds an [`HttpApiEvent`] per request, exactly as API Gateway would, and the
//! tests feed the same events to the real `bootstrap`. Field names follow the AWS documentation
//! ("Working with AWS Lambda proxy integrations for HTTP APIs").

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::{ApiRequest, ApiResponse};

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

impl HttpApiEvent {
    /// The transport-free request, with the body base64-decoded when `isBase64Encoded`.
    /// A body that claims base64 but is not gets a 400 response instead.
    pub fn to_api_request(&self) -> Result<ApiRequest, ApiResponse> {
        let body = match &self.body {
            None => Vec::new(),
            Some(body) if self.is_base64_encoded => base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|_| {
                    ApiResponse::message(400, "request body is marked base64 but is not base64")
                })?,
            Some(body) => body.clone().into_bytes(),
        };
        Ok(ApiRequest {
            method: self.request_context.http.method.clone(),
            path: self.raw_path.clone(),
            body,
            request_id: self.request_context.request_id.clone(),
            claims: self
                .request_context
                .authorizer
                .as_ref()
                .map(|a| a.jwt.claims.clone()),
            time: rfc3339_from_epoch_millis(self.request_context.time_epoch),
        })
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

/// Answers a payload 2.0 event with the wish-list API.
pub async fn handle_event(store: &dyn crate::Store, event: &HttpApiEvent) -> HttpApiResponse {
    match event.to_api_request() {
        Ok(request) => crate::handle(store, request).await.into(),
        Err(response) => response.into(),
    }
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

    #[test]
    fn deserialises_the_documented_example_event() {
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
        let event: HttpApiEvent = serde_json::from_str(json).unwrap();
        let request = event.to_api_request().unwrap();
        assert_eq!(request.body, br#"{"name":"x"}"#);
        assert_eq!(request.claims.unwrap()["aud"], "[a b]");
        assert_eq!(request.time, "2020-03-04T19:03:58.390Z");
    }

    #[test]
    fn base64_bodies_are_decoded_before_validation() {
        let store = MemoryStore::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(r#"{"name":"b64"}"#);
        let response = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(handle_event(&store, &event("POST", Some(&encoded), true)));
        assert_eq!(response.status_code, 201);
    }

    #[test]
    fn a_body_marked_base64_that_is_not_gets_400() {
        let response = event("POST", Some("%%%"), true)
            .to_api_request()
            .unwrap_err();
        assert_eq!(response.status, 400);
    }
}
