//! The authorizer's errors: [`AuthError`], why a request is refused, with the status (401 or
//! 403) and the `www-authenticate` header API Gateway would answer; [`FetchError`], why the
//! issuer's discovery document or JWKS could not be fetched; [`ConfigError`], settings an
//! authorizer cannot be built from. No message ever repeats a token.

use thiserror::Error;

/// Why a request was refused. `Display` is the `error_description` API Gateway would send back in
/// the `www-authenticate` header, so every message says what is wrong with the token in plain words
/// and never repeats the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No `Authorization` header, or one that holds nothing but `Bearer`.
    #[error("the request has no access token in its Authorization header")]
    MissingToken,
    /// Not three base64url segments of JSON, or a header/payload that is not a JSON object.
    #[error("the token is not a valid JWT: {0}")]
    Malformed(&'static str),
    /// `none`, `HS*`, `ES*` and anything else that is not one of the six RSA algorithms.
    #[error("signing method {0} is invalid: only RS256, RS384, RS512, PS256, PS384 and PS512 are accepted")]
    UnsupportedAlgorithm(String),
    /// The header names no `kid`, so no key of the issuer can be chosen.
    #[error("the token header has no kid")]
    MissingKeyId,
    /// The issuer's JWKS has no key with this `kid`, even after a refetch.
    #[error("the issuer's JWKS has no key with kid {0}")]
    UnknownKey(String),
    /// The key exists but declares another algorithm than the token's.
    #[error("key {kid} is for {key_alg}, the token is signed with {token_alg}")]
    KeyAlgorithmMismatch {
        kid: String,
        key_alg: String,
        token_alg: String,
    },
    /// Discovery or the JWKS could not be fetched (timeout, HTTP error, bad document).
    #[error("the issuer's signing keys are unavailable: {0}")]
    KeysUnavailable(#[from] FetchError),
    /// The signature does not verify with the issuer's key.
    #[error("the token signature is invalid")]
    BadSignature,
    /// A time claim that is not a number.
    #[error("the {0} claim is not a number")]
    BadTimeClaim(&'static str),
    /// API Gateway needs `exp`.
    #[error("the token has no exp claim")]
    MissingExpiry,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("the token was issued in the future (iat is in the future)")]
    IssuedInFuture,
    /// `iss` differs from the configured issuer, even by a trailing `/`.
    #[error("the token does not have a valid issuer: iss is {found}, expected exactly {expected}")]
    WrongIssuer { found: String, expected: String },
    /// Neither `aud` nor (without `aud`) `client_id` names a configured audience.
    #[error("the token does not have a valid audience")]
    WrongAudience,
    /// The token is valid but holds none of the route's scopes: 403, not 401.
    #[error("the token does not hold any of the scopes [{}] this route requires", required.join(" "))]
    InsufficientScope { required: Vec<String> },
}

impl AuthError {
    /// The HTTP status API Gateway answers with: 403 for a scope mismatch, 401 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::InsufficientScope { .. } => 403,
            _ => 401,
        }
    }

    /// The JSON body API Gateway answers with.
    pub fn body(&self) -> &'static str {
        match self {
            AuthError::InsufficientScope { .. } => r#"{"message":"Forbidden"}"#,
            _ => r#"{"message":"Unauthorized"}"#,
        }
    }

    /// The RFC 6750 error code: `insufficient_scope` for 403, `invalid_token` otherwise.
    pub fn error_code(&self) -> &'static str {
        match self {
            AuthError::InsufficientScope { .. } => "insufficient_scope",
            _ => "invalid_token",
        }
    }

    /// The `www-authenticate` header value, in API Gateway's shape:
    /// `Bearer scope="<route scopes>" error="invalid_token" error_description="<why>"`.
    /// Values taken from the token are reduced to printable ASCII without quotes or backslashes, so
    /// the result is always a valid header value.
    pub fn www_authenticate(&self, route_scopes: &[String]) -> String {
        format!(
            "Bearer scope=\"{}\" error=\"{}\" error_description=\"{}\"",
            quoted_string_safe(&route_scopes.join(" ")),
            self.error_code(),
            quoted_string_safe(&self.to_string())
        )
    }
}

/// Keeps a header `quoted-string` valid and short whatever a token put into it.
fn quoted_string_safe(text: &str) -> String {
    const MAX_CHARS: usize = 300;
    let mut out: String = text
        .chars()
        .take(MAX_CHARS)
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect();
    if text.chars().count() > MAX_CHARS {
        out.push_str("...");
    }
    out
}

/// A failure to obtain the issuer's keys.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FetchError {
    #[error("GET {url} timed out after {millis} ms")]
    Timeout { url: String, millis: u128 },
    #[error("GET {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("GET {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    /// The body passed its size limit (API Gateway's for a JWKS); reading stopped there.
    #[error("{url} is not a usable {document}: it is larger than {limit} bytes")]
    TooLarge {
        url: String,
        document: &'static str,
        limit: usize,
    },
    /// A redirect to another scheme, to a URL with user info, or one too many.
    #[error("GET {url} was redirected where it may not go: {reason}")]
    Redirect { url: String, reason: String },
    #[error("{url} is not a valid {document}: {reason}")]
    Document {
        url: String,
        document: &'static str,
        reason: String,
    },
    /// A failed fetch is not retried at once; requests meanwhile are refused with its cause.
    #[error("{cause} (next attempt in at most {retry_in_ms} ms)")]
    RecentlyFailed {
        cause: Box<FetchError>,
        retry_in_ms: u128,
    },
}

/// A configuration the authorizer cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("at least one audience is required")]
    NoAudience,
    #[error("cannot build the HTTP client for key fetches: {0}")]
    HttpClient(String),
    /// `https://user:pw@host/`: credentials in an issuer URL would travel with every fetch.
    #[error("the issuer URL {issuer} must not contain a user name or password; remove the `user:password@` part")]
    IssuerCredentials { issuer: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_mismatch_is_forbidden_and_everything_else_unauthorized() {
        let forbidden = AuthError::InsufficientScope {
            required: vec!["write".into()],
        };
        assert_eq!(forbidden.status(), 403);
        assert_eq!(forbidden.body(), r#"{"message":"Forbidden"}"#);
        assert_eq!(AuthError::Expired.status(), 401);
        assert_eq!(AuthError::Expired.body(), r#"{"message":"Unauthorized"}"#);
    }

    #[test]
    fn www_authenticate_has_api_gateway_shape() {
        assert_eq!(
            AuthError::WrongAudience.www_authenticate(&[]),
            r#"Bearer scope="" error="invalid_token" error_description="the token does not have a valid audience""#
        );
        let forbidden = AuthError::InsufficientScope {
            required: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            forbidden.www_authenticate(&["a".into(), "b".into()]),
            r#"Bearer scope="a b" error="insufficient_scope" error_description="the token does not hold any of the scopes [a b] this route requires""#
        );
    }

    #[test]
    fn token_controlled_text_cannot_break_the_header() {
        let err = AuthError::WrongIssuer {
            found: "evil\"\r\nset-cookie: x=\\é".into(),
            expected: "https://t/".into(),
        };
        let header = err.www_authenticate(&[]);
        assert!(header.chars().all(|c| (' '..='~').contains(&c)), "{header}");
        assert_eq!(header.matches('"').count(), 6, "{header}");
        let long = AuthError::UnknownKey("k".repeat(10_000));
        assert!(long.www_authenticate(&[]).len() < 500);
    }
}
