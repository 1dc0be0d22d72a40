//! Tokens without a person: the OAuth 2.0 client-credentials grant (RFC 6749 section 4.4), as a
//! CI pipeline gets an access token from Auth0 for a machine-to-machine application.
//!
//! [`request_token`] finds `token_endpoint` in `{issuer}/.well-known/openid-configuration`, posts
//! `grant_type=client_credentials` with the client id and secret (in the form body, or as HTTP
//! Basic when the issuer supports only that), `audience` and `scope` when given, and returns the
//! access token. Discovery and the grant share one deadline ([`TOKEN_REQUEST_TIMEOUT`]); each
//! answer is read while it streams and refused past its size limit; the token endpoint must be
//! https (plain http only for an issuer on this machine) and is never followed through a
//! redirect. The issuer's own `error` / `error_description` come back in
//! [`ClientCredentialsError::Refused`].
//!
//! The client secret and the access token are [`Secret`]s: their `Debug` and `Display` print
//! `[redacted]`, so neither can reach a log by accident; nothing here logs them on purpose.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use thiserror::Error;
use url::Url;

use crate::discovery::DiscoveryDocument;
use crate::fetch::{
    classify, get_limited, is_loopback, read_limited, redirect_policy, MAX_DISCOVERY_BYTES,
};
use crate::FetchError;

/// Discovery and the token request together: a pipeline step fails within this, never hangs.
pub const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest token response read (real ones are 1-4 KB).
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// A value that must never be printed: a client secret or an access token. `Debug` and `Display`
/// show `[redacted]`; [`Secret::expose`] is the one way to the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that must send or print it on purpose.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What the client-credentials grant needs.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// The issuer URL (Auth0: `https://TENANT.auth0.com/`); discovery is read below it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The API the token is for (Auth0's `audience`); omitted when `None`.
    pub audience: Option<String>,
    /// Space-separated scopes to ask for; omitted when `None` (Auth0 then grants all the
    /// application is authorized for).
    pub scope: Option<String>,
}

/// The issuer's answer to the grant.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: Secret,
    /// `Bearer` for every issuer this is used with.
    pub token_type: String,
    /// Seconds the token is valid for, when the issuer says.
    pub expires_in: Option<u64>,
    /// The granted scopes, when the issuer says.
    pub scope: Option<String>,
}

/// Why no token was obtained. Every message names the issuer or URL involved and never the
/// secret; [`ClientCredentialsError::hint`] says what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientCredentialsError {
    #[error("the issuer {issuer} is not usable: {reason}")]
    InvalidIssuer { issuer: String, reason: String },
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("discovering the token endpoint of {issuer} failed: {source}")]
    Discovery {
        issuer: String,
        #[source]
        source: FetchError,
    },
    #[error("the OpenID configuration at {url} names no usable token endpoint: {reason}")]
    NoTokenEndpoint { url: String, reason: String },
    #[error("POST {url} timed out (discovery and the token request get {millis} ms together)")]
    Timeout { url: String, millis: u128 },
    #[error("POST {url} failed: {reason}")]
    Transport { url: String, reason: String },
    /// The issuer answered with an OAuth error (`invalid_client`, `access_denied`, ...).
    #[error("{url} refused the client-credentials grant for client {client_id} (HTTP {status}): {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        url: String,
        client_id: String,
        status: u16,
        /// The issuer's `error`.
        error: String,
        /// The issuer's `error_description`.
        description: Option<String>,
    },
    #[error("POST {url} answered HTTP {status} without an OAuth error")]
    Status { url: String, status: u16 },
    #[error("the answer of {url} is not a token response: {reason}")]
    BadResponse { url: String, reason: String },
}

impl ClientCredentialsError {
    /// What the user can do about it, when there is something specific.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            // Auth0 answers a wrong secret with 401 `access_denied`; RFC 6749 with `invalid_client`.
            ClientCredentialsError::Refused { error, status, .. } => match (*status, error.as_str()) {
                (401, _) | (_, "invalid_client" | "unauthorized_client") => Some(
                    "check the client id and secret (Auth0: the machine-to-machine application's Settings tab)",
                ),
                (403, _) | (_, "access_denied" | "invalid_scope" | "invalid_request") => Some(
                    "check the audience and scopes: the application must be authorized for the API (Auth0: APIs > your API > Machine To Machine Applications)",
                ),
                _ => None,
            },
            ClientCredentialsError::Discovery { .. } | ClientCredentialsError::Timeout { .. } => {
                Some("check the issuer URL and that the issuer is reachable from here")
            }
            _ => None,
        }
    }
}

/// Obtains an access token for `creds` through the client-credentials grant.
pub async fn request_token(
    creds: &ClientCredentials,
) -> Result<IssuedToken, ClientCredentialsError> {
    request_token_within(creds, TOKEN_REQUEST_TIMEOUT).await
}

/// [`request_token`] with another total time limit.
pub async fn request_token_within(
    creds: &ClientCredentials,
    budget: Duration,
) -> Result<IssuedToken, ClientCredentialsError> {
    let deadline = tokio::time::Instant::now() + budget;
    let issuer = issuer_url(&creds.issuer)?;
    if creds.client_id.trim().is_empty() {
        return Err(ClientCredentialsError::InvalidRequest(
            "the client id must not be empty",
        ));
    }
    if creds.client_secret.is_empty() {
        return Err(ClientCredentialsError::InvalidRequest(
            "the client secret must not be empty",
        ));
    }
    // Discovery follows same-scheme redirects as the authorizer does; the POST carrying the
    // secret follows none.
    let discovery_http = http_client(&issuer, budget, redirect_policy())?;
    let post_http = http_client(&issuer, budget, reqwest::redirect::Policy::none())?;

    let discovery_url = discovery_url(&issuer)?;
    let document = get_limited(
        &discovery_http,
        &discovery_url,
        "OpenID configuration",
        MAX_DISCOVERY_BYTES,
        deadline,
        budget,
    )
    .await
    .map_err(|source| ClientCredentialsError::Discovery {
        issuer: stack::url_for_message(&creds.issuer),
        source,
    })?;
    let no_endpoint = |reason: String| ClientCredentialsError::NoTokenEndpoint {
        url: discovery_url.to_string(),
        reason,
    };
    let discovery = DiscoveryDocument::from_slice(&document).map_err(no_endpoint)?;
    let endpoint = discovery
        .token_endpoint(&discovery_url)
        .map_err(no_endpoint)?;
    let basic = uses_basic_auth(&discovery.token_endpoint_auth_methods);

    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if !basic {
        form.append_pair("client_id", &creds.client_id);
        form.append_pair("client_secret", creds.client_secret.expose());
    }
    if let Some(audience) = &creds.audience {
        form.append_pair("audience", audience);
    }
    if let Some(scope) = &creds.scope {
        form.append_pair("scope", scope);
    }
    let mut request = post_http
        .post(endpoint.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form.finish());
    if basic {
        request = request.header(
            "authorization",
            basic_authorization(&creds.client_id, &creds.client_secret),
        );
    }
    let millis = budget.as_millis();
    let timeout = || ClientCredentialsError::Timeout {
        url: endpoint.to_string(),
        millis,
    };
    let exchange = async {
        let mut response = request
            .send()
            .await
            .map_err(|err| post_error(&endpoint, millis, &err))?;
        let status = response.status().as_u16();
        let body = read_limited(
            &mut response,
            &endpoint,
            "token response",
            MAX_TOKEN_RESPONSE_BYTES,
            millis,
        )
        .await
        .map_err(|err| match err {
            FetchError::Timeout { .. } => timeout(),
            other => ClientCredentialsError::BadResponse {
                url: endpoint.to_string(),
                reason: other.to_string(),
            },
        })?;
        Ok::<_, ClientCredentialsError>((status, body))
    };
    let (status, body) = tokio::time::timeout_at(deadline, exchange)
        .await
        .map_err(|_| timeout())??;
    parse_token_response(&endpoint, &creds.client_id, status, &body)
}

fn http_client(
    issuer: &Url,
    budget: Duration,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::Client, ClientCredentialsError> {
    let mut builder = reqwest::Client::builder()
        .timeout(budget)
        .connect_timeout(budget)
        .redirect(redirects)
        .user_agent(concat!("wishctl/", env!("CARGO_PKG_VERSION")));
    if is_loopback(issuer) {
        // A local issuer is never behind the user's HTTP(S)_PROXY.
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|err| ClientCredentialsError::Transport {
            url: issuer.to_string(),
            reason: stack::error_chain(&err),
        })
}

/// The issuer as a URL that may be used: https, or http on this machine; no user info, query or
/// fragment.
fn issuer_url(issuer: &str) -> Result<Url, ClientCredentialsError> {
    // Every message shows the issuer with its user info masked, whatever else is wrong with it.
    let invalid = |reason: &str| ClientCredentialsError::InvalidIssuer {
        issuer: stack::url_for_message(issuer),
        reason: reason.to_string(),
    };
    if stack::url_has_user_info(issuer) {
        return Err(invalid(
            "it must not contain a user name or password (remove the `user:password@` part)",
        ));
    }
    let url = Url::parse(issuer).map_err(|_| invalid("it is not an absolute URL"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(invalid(
            "it must be an https URL (or http on localhost / 127.0.0.1)",
        )),
    }
}

fn discovery_url(issuer: &Url) -> Result<Url, ClientCredentialsError> {
    let text = format!(
        "{}/.well-known/openid-configuration",
        issuer.as_str().trim_end_matches('/')
    );
    Url::parse(&text).map_err(|err| ClientCredentialsError::InvalidIssuer {
        issuer: issuer.to_string(),
        reason: err.to_string(),
    })
}

/// Form body unless the issuer lists only `client_secret_basic` (RFC 8414: absent means
/// `client_secret_basic`, but Auth0 and most issuers accept the form body, which needs no
/// second encoding).
fn uses_basic_auth(methods: &[String]) -> bool {
    !methods.is_empty()
        && !methods.iter().any(|m| m == "client_secret_post")
        && methods.iter().any(|m| m == "client_secret_basic")
}

/// RFC 6749 2.3.1: id and secret form-urlencoded, then `id:secret` in base64.
fn basic_authorization(client_id: &str, secret: &Secret) -> String {
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(secret.expose()));
    format!("Basic {}", STANDARD.encode(pair))
}

fn post_error(url: &Url, millis: u128, err: &reqwest::Error) -> ClientCredentialsError {
    match classify(url, millis, err) {
        FetchError::Timeout { url, millis } => ClientCredentialsError::Timeout { url, millis },
        other => ClientCredentialsError::Transport {
            url: url.to_string(),
            reason: other.to_string(),
        },
    }
}

/// Reads the token endpoint's answer: a token on 2xx, the issuer's OAuth error otherwise.
pub fn parse_token_response(
    url: &Url,
    client_id: &str,
    status: u16,
    body: &[u8],
) -> Result<IssuedToken, ClientCredentialsError> {
    let bad = |reason: &str| ClientCredentialsError::BadResponse {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed: Option<serde_json::Map<String, Value>> = match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Some(fields),
        _ => None,
    };
    if !(200..300).contains(&status) {
        let error = parsed
            .as_ref()
            .and_then(|f| f.get("error"))
            .and_then(Value::as_str);
        return Err(match error {
            Some(error) => ClientCredentialsError::Refused {
                url: url.to_string(),
                client_id: printable(client_id),
                status,
                error: printable(error),
                description: parsed
                    .as_ref()
                    .and_then(|f| f.get("error_description"))
                    .and_then(Value::as_str)
                    .map(printable),
            },
            None => ClientCredentialsError::Status {
                url: url.to_string(),
                status,
            },
        });
    }
    let fields = parsed.ok_or_else(|| bad("the body is not a JSON object"))?;
    let access_token = match fields.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => token.clone(),
        _ => return Err(bad("it has no access_token string")),
    };
    let token_type = match fields.get("token_type") {
        Some(Value::String(kind)) => printable(kind),
        None => "Bearer".to_string(),
        Some(_) => return Err(bad("token_type is not a string")),
    };
    let expires_in = match fields.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_u64(),
        // Some issuers send it as a string.
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    let scope = fields
        .get("scope")
        .and_then(Value::as_str)
        .map(String::from);
    Ok(IssuedToken {
        access_token: Secret(access_token),
        token_type,
        expires_in,
        scope,
    })
}

/// An issuer-controlled string made safe for a terminal: no control characters, at most 500
/// characters.
fn printable(text: &str) -> String {
    const MAX: usize = 500;
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Url {
        Url::parse("https://tenant.auth0.com/oauth/token").unwrap()
    }

    #[test]
    fn secrets_never_print() {
        let creds = ClientCredentials {
            issuer: "https://tenant.auth0.com/".into(),
            client_id: "abc".into(),
            client_secret: Secret::new("s3cr3t-value"),
            audience: None,
            scope: None,
        };
        let shown = format!("{creds:?} {}", creds.client_secret);
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("[redacted]"));
        assert_eq!(creds.client_secret.expose(), "s3cr3t-value");
    }

    #[test]
    fn a_token_response_is_read_with_its_optional_fields() {
        let ok = parse_token_response(
            &endpoint(),
            "abc",
            200,
            br#"{"access_token": "t.o.k", "token_type": "Bearer", "expires_in": 86400, "scope": "read write"}"#,
        )
        .unwrap();
        assert_eq!(ok.access_token.expose(), "t.o.k");
        assert_eq!(ok.expires_in, Some(86400));
        assert_eq!(ok.scope.as_deref(), Some("read write"));
        let minimal = parse_token_response(
            &endpoint(),
            "abc",
            200,
            br#"{"access_token": "x", "expires_in": "60"}"#,
        )
        .unwrap();
        assert_eq!(minimal.token_type, "Bearer");
        assert_eq!(minimal.expires_in, Some(60));
        assert!(parse_token_response(&endpoint(), "abc", 200, b"{}").is_err());
        assert!(parse_token_response(&endpoint(), "abc", 200, b"<html>").is_err());
    }

    #[test]
    fn the_issuers_error_and_description_are_kept() {
        let err = parse_token_response(
            &endpoint(),
            "abc",
            401,
            br#"{"error": "access_denied", "error_description": "Unauthorized\u001b[31m"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "https://tenant.auth0.com/oauth/token refused the client-credentials grant for client abc (HTTP 401): access_denied: Unauthorized?[31m"
        );
        assert!(err.hint().is_some());
        assert_eq!(
            parse_token_response(&endpoint(), "abc", 502, b"bad gateway").unwrap_err(),
            ClientCredentialsError::Status {
                url: endpoint().to_string(),
                status: 502
            }
        );
    }

    #[test]
    fn issuers_with_credentials_or_plain_http_elsewhere_are_refused() {
        let err = issuer_url("https://user:pw@tenant.auth0.com/").unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
        assert!(issuer_url("http://tenant.auth0.com/").is_err());
        assert!(issuer_url("http://127.0.0.1:3000/").is_ok());
        assert!(issuer_url("https://tenant.auth0.com/?x=1").is_err());
    }

    #[test]
    fn basic_auth_only_when_the_issuer_offers_nothing_else() {
        let methods = |list: &[&str]| list.iter().map(|m| m.to_string()).collect::<Vec<_>>();
        assert!(!uses_basic_auth(&methods(&[])));
        assert!(!uses_basic_auth(&methods(&[
            "client_secret_post",
            "client_secret_basic"
        ])));
        assert!(uses_basic_auth(&methods(&["client_secret_basic"])));
        assert_eq!(
            basic_authorization("a b", &Secret::new("p:w")),
            format!("Basic {}", STANDARD.encode("a+b:p%3Aw"))
        );
    }
}
