//! The self-issued dev server's token endpoint: the OAuth 2.0 client-credentials grant (RFC 6749
//! section 4.4), answered as Auth0 answers a machine-to-machine application, so that a pipeline's
//! `wishctl token --client-id ...` step runs unchanged against `wishctl dev`.
//!
//! `POST /oauth/token` with `grant_type=client_credentials`, the client id and secret (form or
//! JSON body, or HTTP Basic), an optional `audience` (default: the server's first audience) and
//! `scope` (default: the route scopes). The token carries `sub = ID@clients`, `azp`,
//! `gty: client-credentials` and the granted `scope`. Errors are `{"error", "error_description"}`:
//! 401 `invalid_client`, 403 `access_denied` for an unknown audience, 400 otherwise.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};
use stack::AuthorizerSettings;

use crate::request_log::RequestRecord;
use crate::DevKey;

/// Where the dev issuer's token endpoint is (Auth0's path).
pub const TOKEN_PATH: &str = "/oauth/token";
/// Token requests are small; anything larger is refused unread.
pub const MAX_TOKEN_REQUEST_BYTES: usize = 16 * 1024;
/// Lifetime of issued tokens (Auth0's default for machine tokens: 24 h).
pub const ISSUED_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Answers one token request.
pub(crate) async fn issue(
    key: &DevKey,
    settings: &AuthorizerSettings,
    request: hyper::Request<Incoming>,
    body_timeout: Duration,
    record: &mut RequestRecord,
) -> http::Response<Bytes> {
    match decide(key, settings, request, body_timeout, record).await {
        Ok(response) => {
            record.auth = "allowed";
            response
        }
        Err((status, error, description)) => {
            record.auth = "denied";
            record.reason = Some(format!("{error}: {description}"));
            oauth_error(status, error, &description)
        }
    }
}

type Refusal = (StatusCode, &'static str, String);

async fn decide(
    key: &DevKey,
    settings: &AuthorizerSettings,
    request: hyper::Request<Incoming>,
    body_timeout: Duration,
    record: &mut RequestRecord,
) -> Result<http::Response<Bytes>, Refusal> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("the request body is larger than {MAX_TOKEN_REQUEST_BYTES} bytes"),
        )
    };
    if declared.is_some_and(|n| n > MAX_TOKEN_REQUEST_BYTES as u64) {
        return Err(too_large());
    }
    let body = match tokio::time::timeout(
        body_timeout,
        Limited::new(body, MAX_TOKEN_REQUEST_BYTES).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err))
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large())
        }
        Ok(Err(_)) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the request body could not be read".into(),
            ))
        }
        Err(_) => {
            return Err((
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request",
                format!(
                    "the request body did not arrive within {} ms",
                    body_timeout.as_millis()
                ),
            ))
        }
    };
    let json_body = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let fields = if json_body {
        json_fields(&body)?
    } else {
        url::form_urlencoded::parse(&body)
            .into_owned()
            .collect::<HashMap<String, String>>()
    };
    let grant = fields.get("grant_type").map(String::as_str);
    if grant != Some("client_credentials") {
        return Err((
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "grant_type must be client_credentials, got {}",
                grant
                    .map(|g| format!("{g:?}"))
                    .unwrap_or_else(|| "none".into())
            ),
        ));
    }
    let (client_id, secret) = match basic_credentials(&parts.headers)? {
        Some(pair) => pair,
        None => (
            fields.get("client_id").cloned().unwrap_or_default(),
            fields.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    let client = key.client();
    let id_matches = client_id == client.id;
    let secret_matches = aws_lc_rs::constant_time::verify_slices_are_equal(
        secret.as_bytes(),
        client.secret.expose().as_bytes(),
    )
    .is_ok();
    if !(id_matches && secret_matches) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "wrong client id or secret".into(),
        ));
    }
    record.sub = Some(format!("{client_id}@clients"));
    let audience = match fields.get("audience").filter(|a| !a.is_empty()) {
        Some(audience) if settings.audiences.contains(audience) => audience.clone(),
        Some(audience) => {
            return Err((
                StatusCode::FORBIDDEN,
                "access_denied",
                format!("Service not found: {audience}"),
            ))
        }
        None => settings
            .audiences
            .first()
            .cloned()
            .unwrap_or_else(|| crate::DEFAULT_AUDIENCE.to_string()),
    };
    let scopes: Vec<String> = match fields.get("scope") {
        Some(scope) => scope.split_whitespace().map(String::from).collect(),
        None => settings.scopes.clone(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let expires_at = now + ISSUED_TOKEN_LIFETIME.as_secs();
    let mut claims = json!({
        "iss": settings.issuer.as_str(),
        "sub": format!("{client_id}@clients"),
        "aud": audience,
        "iat": now,
        "exp": expires_at,
        "azp": client_id,
        "gty": "client-credentials",
    });
    if !scopes.is_empty() {
        claims["scope"] = Value::String(scopes.join(" "));
    }
    let minted = key.sign_claims(claims, expires_at).map_err(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "signing the token failed".to_string(),
        )
    })?;
    let mut answer = json!({
        "access_token": minted.token,
        "token_type": "Bearer",
        "expires_in": ISSUED_TOKEN_LIFETIME.as_secs(),
    });
    if !scopes.is_empty() {
        answer["scope"] = Value::String(scopes.join(" "));
    }
    Ok(no_store(StatusCode::OK, answer.to_string()))
}

fn json_fields(body: &[u8]) -> Result<HashMap<String, String>, Refusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect()),
        _ => Err((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the JSON body is not an object".into(),
        )),
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 2.3.1), if present.
fn basic_credentials(headers: &http::HeaderMap) -> Result<Option<(String, String)>, Refusal> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "the Authorization header is not HTTP Basic client authentication".to_string(),
        )
    };
    let text = value.to_str().map_err(|_| malformed())?.trim();
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |part: &str| {
        url::form_urlencoded::parse(format!("v={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> http::Response<Bytes> {
    no_store(
        status,
        json!({"error": error, "error_description": description}).to_string(),
    )
}

/// RFC 6749 5.1: token responses are never cached.
fn no_store(status: StatusCode, body: String) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
