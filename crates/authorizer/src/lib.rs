//! API Gateway's HTTP API JWT authorizer, as a library.
//!
//! [`Authorizer::authorize`] takes the `Authorization` header of a request and the scopes of its
//! route and decides as API Gateway does (AWS developer guide, "Controlling access to HTTP APIs
//! with JWT authorizers"): the token may be bare or follow `Bearer `; only RSA algorithms are
//! accepted; the key is the JWKS entry named by the token's `kid`, found through OIDC discovery
//! (`{issuer}/.well-known/openid-configuration` -> `jwks_uri`) and cached for two hours, with an
//! early, rate-limited refetch for an unknown `kid` and a 1500 ms limit on every fetch; `exp` must
//! be in the future, `nbf` and `iat` not; `iss` must equal the issuer byte for byte; `aud` (a
//! string or an array) must name a configured audience, or `client_id` must when there is no
//! `aud`; a route with scopes needs one of them in `scope` or `scp`.
//!
//! Issuer fetches are hostile input: discovery and JWKS bodies are read while they stream and
//! refused past [`MAX_DISCOVERY_BYTES`] / [`MAX_JWKS_BYTES`] (API Gateway's JWKS quota), both
//! fetches share one 1500 ms deadline, redirects never change scheme, and `jwks_uri` must be https
//! (plain http only for an issuer on this machine). Any such failure refuses the request (401).
//!
//! [`client_credentials`] obtains a token without a person (OAuth 2.0 client credentials), as a
//! CI pipeline does from Auth0.
//!
//! The outcome is either an [`Authorization`] (the claims rendered as the integration receives
//! them, and the matched scopes) or an [`AuthError`], which knows its status (401, or 403 for a
//! scope mismatch), its body and its `www-authenticate` header.
//!
//! It is not an HTTP server and not a token issuer: `devserver` puts it in front of the API.

mod claims;
pub mod client_credentials;
mod discovery;
mod error;
mod fetch;
mod jwks;
mod token;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use stack::{AuthorizerSettings, Issuer};

pub use claims::{matched_scopes, render_claim_value, render_claims, token_scopes};
pub use client_credentials::{
    request_token, ClientCredentials, ClientCredentialsError, IssuedToken, Secret,
};
pub use discovery::DiscoveryDocument;
pub use error::{AuthError, ConfigError, FetchError};
pub use fetch::{
    fetch_document, issuer_client, MAX_DISCOVERY_BYTES, MAX_JWKS_BYTES, MAX_REDIRECTS,
};
pub use jwks::{JwkSet, SkippedKey};
pub use token::{decode_claims_unverified, extract_token, rsa_algorithm, UnverifiedToken};

use jwks::JwksCache;

/// How long fetched keys are used before they are fetched again (API Gateway: up to two hours).
pub const KEY_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// API Gateway gives discovery and JWKS fetches 1500 ms.
pub const FETCH_TIMEOUT: Duration = Duration::from_millis(1500);
/// At most one refetch per this interval for unknown `kid`s, and after a failed fetch.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// What the authorizer checks tokens against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Compared with `iss` byte for byte; discovery is fetched from
    /// [`Issuer::discovery_url`].
    pub issuer: Issuer,
    /// `aud` must name one of these (or `client_id`, when the token has no `aud`).
    pub audiences: Vec<String>,
    pub key_ttl: Duration,
    pub fetch_timeout: Duration,
    pub min_refetch_interval: Duration,
    /// Tolerance for `exp`, `nbf` and `iat`; zero by default, as the rules are stated.
    pub leeway: Duration,
}

impl AuthorizerConfig {
    /// API Gateway's settings for `issuer` and `audiences`.
    pub fn new(issuer: Issuer, audiences: impl IntoIterator<Item = String>) -> Self {
        AuthorizerConfig {
            issuer,
            audiences: audiences.into_iter().collect(),
            key_ttl: KEY_TTL,
            fetch_timeout: FETCH_TIMEOUT,
            min_refetch_interval: MIN_REFETCH_INTERVAL,
            leeway: Duration::ZERO,
        }
    }

    /// The issuer and audiences of a stack's authorizer, as `up` deploys them.
    pub fn from_settings(settings: &AuthorizerSettings) -> Self {
        Self::new(settings.issuer.clone(), settings.audiences.iter().cloned())
    }
}

/// A request the authorizer let through: what API Gateway passes to the integration as
/// `requestContext.authorizer.jwt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Every claim, as a string (arrays as `[a b]`).
    pub claims: BTreeMap<String, String>,
    /// The route's scopes the token holds; `None` when the route has no scopes.
    pub scopes: Option<Vec<String>>,
}

impl Authorization {
    /// The token's `sub`, if any.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").map(String::as_str)
    }
}

/// One JWT authorizer: an issuer, its audiences and its key cache. Cheap to share behind an `Arc`.
pub struct Authorizer {
    config: AuthorizerConfig,
    keys: JwksCache,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    pub fn new(config: AuthorizerConfig) -> Result<Self, ConfigError> {
        if config.audiences.is_empty() {
            return Err(ConfigError::NoAudience);
        }
        if stack::url_has_user_info(config.issuer.as_str()) {
            return Err(ConfigError::IssuerCredentials {
                issuer: stack::url_for_message(config.issuer.as_str()),
            });
        }
        let http = issuer_client(&config.issuer, config.fetch_timeout)?;
        let keys = JwksCache::new(
            config.issuer.discovery_url(),
            http,
            config.fetch_timeout,
            config.key_ttl,
            config.min_refetch_interval,
        );
        Ok(Authorizer { config, keys })
    }

    pub fn config(&self) -> &AuthorizerConfig {
        &self.config
    }

    /// Fetches discovery and keys now (at startup, so that the first request does not wait, and
    /// so that an unreachable issuer shows at once). Returns the number of usable keys.
    pub async fn prefetch(&self) -> Result<usize, FetchError> {
        self.keys.refresh_now().await
    }

    /// Decides one request: `authorization` is its `Authorization` header, `route_scopes` the
    /// authorization scopes of its route (empty: any valid token).
    pub async fn authorize(
        &self,
        authorization: Option<&str>,
        route_scopes: &[String],
    ) -> Result<Authorization, AuthError> {
        let token = extract_token(authorization)?;
        let token = UnverifiedToken::parse(token)?;
        let key = self.keys.key(&token.kid).await?;
        if let Some(key_alg) = key.algorithm {
            if key_alg != token.algorithm {
                return Err(AuthError::KeyAlgorithmMismatch {
                    kid: token.kid.clone(),
                    key_alg: format!("{key_alg:?}"),
                    token_alg: format!("{:?}", token.algorithm),
                });
            }
        }
        let verified = jsonwebtoken::crypto::verify(
            token.signature,
            token.signing_input.as_bytes(),
            &key.key,
            token.algorithm,
        )
        .unwrap_or(false);
        if !verified {
            return Err(AuthError::BadSignature);
        }
        self.check_claims(&token.claims, route_scopes, now_seconds())
    }

    /// The claim rules, for a token whose signature is already verified, at `now` (seconds since
    /// the epoch).
    pub fn check_claims(
        &self,
        claims: &Map<String, Value>,
        route_scopes: &[String],
        now: f64,
    ) -> Result<Authorization, AuthError> {
        let leeway = self.config.leeway.as_secs_f64();
        match time_claim(claims, "exp")? {
            None => return Err(AuthError::MissingExpiry),
            Some(exp) if now >= exp + leeway => return Err(AuthError::Expired),
            Some(_) => {}
        }
        if time_claim(claims, "nbf")?.is_some_and(|nbf| nbf > now + leeway) {
            return Err(AuthError::NotYetValid);
        }
        if time_claim(claims, "iat")?.is_some_and(|iat| iat > now + leeway) {
            return Err(AuthError::IssuedInFuture);
        }
        match claims.get("iss") {
            Some(Value::String(iss)) if iss == self.config.issuer.as_str() => {}
            found => {
                return Err(AuthError::WrongIssuer {
                    found: found
                        .map(render_claim_value)
                        .unwrap_or_else(|| "missing".into()),
                    expected: self.config.issuer.to_string(),
                })
            }
        }
        if !self.audience_matches(claims) {
            return Err(AuthError::WrongAudience);
        }
        let held = token_scopes(claims);
        let scopes = matched_scopes(route_scopes, &held);
        if scopes.as_ref().is_some_and(Vec::is_empty) {
            return Err(AuthError::InsufficientScope {
                required: route_scopes.to_vec(),
            });
        }
        Ok(Authorization {
            claims: render_claims(claims),
            scopes,
        })
    }

    /// `aud` decides when present (string or array); `client_id` only when `aud` is absent.
    fn audience_matches(&self, claims: &Map<String, Value>) -> bool {
        let configured = |candidate: &str| self.config.audiences.iter().any(|a| a == candidate);
        match claims.get("aud") {
            Some(Value::String(aud)) => configured(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(configured),
            Some(_) => false,
            None => claims
                .get("client_id")
                .and_then(Value::as_str)
                .is_some_and(configured),
        }
    }
}

fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .map(Some)
            .ok_or(AuthError::BadTimeClaim(name)),
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn authorizer(audiences: &[&str]) -> Authorizer {
        Authorizer::new(AuthorizerConfig::new(
            issuer("https://tenant.auth0.com/"),
            audiences.iter().map(|a| a.to_string()),
        ))
        .unwrap()
    }

    fn issuer(url: &str) -> Issuer {
        Issuer::parse_local(url).unwrap()
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "iss": "https://tenant.auth0.com/",
            "sub": "auth0|u1",
            "aud": "https://api",
            "iat": NOW - 10,
            "exp": NOW + 3600,
        });
        if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
            for (k, v) in extra {
                if v.is_null() {
                    base.remove(&k);
                } else {
                    base.insert(k, v);
                }
            }
        }
        match base {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn check(extra: Value, scopes: &[&str]) -> Result<Authorization, AuthError> {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        authorizer(&["https://api", "other"]).check_claims(&claims(extra), &scopes, NOW as f64)
    }

    #[test]
    fn given_valid_claims_then_they_are_passed_on_rendered() {
        let ok = check(json!({}), &[]).unwrap();
        assert_eq!(ok.subject(), Some("auth0|u1"));
        assert_eq!(ok.claims["exp"], "1800003600");
        assert_eq!(ok.scopes, None);
    }

    #[test]
    fn exp_must_be_present_and_in_the_future() {
        assert_eq!(
            check(json!({"exp": null}), &[]),
            Err(AuthError::MissingExpiry)
        );
        assert_eq!(check(json!({"exp": NOW}), &[]), Err(AuthError::Expired));
        assert_eq!(check(json!({"exp": NOW - 1}), &[]), Err(AuthError::Expired));
        assert_eq!(
            check(json!({"exp": "soon"}), &[]),
            Err(AuthError::BadTimeClaim("exp"))
        );
    }

    #[test]
    fn nbf_and_iat_must_not_be_in_the_future() {
        assert_eq!(
            check(json!({"nbf": NOW + 60}), &[]),
            Err(AuthError::NotYetValid)
        );
        assert!(check(json!({"nbf": NOW}), &[]).is_ok());
        assert_eq!(
            check(json!({"iat": NOW + 60}), &[]),
            Err(AuthError::IssuedInFuture)
        );
        assert!(check(json!({"iat": null}), &[]).is_ok());
    }

    #[test]
    fn leeway_tolerates_clock_skew_when_configured() {
        let mut config = AuthorizerConfig::new(
            issuer("https://tenant.auth0.com/"),
            ["https://api".to_string()],
        );
        config.leeway = Duration::from_secs(30);
        let lenient = Authorizer::new(config).unwrap();
        assert!(lenient
            .check_claims(&claims(json!({"nbf": NOW + 20})), &[], NOW as f64)
            .is_ok());
        assert!(lenient
            .check_claims(&claims(json!({"exp": NOW - 20})), &[], NOW as f64)
            .is_ok());
    }

    #[test]
    fn iss_must_match_byte_for_byte() {
        assert_eq!(
            check(json!({"iss": "https://tenant.auth0.com"}), &[]),
            Err(AuthError::WrongIssuer {
                found: "https://tenant.auth0.com".into(),
                expected: "https://tenant.auth0.com/".into()
            })
        );
        assert!(matches!(
            check(json!({"iss": null}), &[]),
            Err(AuthError::WrongIssuer { .. })
        ));
    }

    #[test]
    fn aud_as_string_or_array_must_name_a_configured_audience() {
        assert!(check(json!({"aud": "other"}), &[]).is_ok());
        assert!(check(json!({"aud": ["x", "https://api"]}), &[]).is_ok());
        assert_eq!(
            check(json!({"aud": "x"}), &[]),
            Err(AuthError::WrongAudience)
        );
        assert_eq!(
            check(json!({"aud": ["x", "y"]}), &[]),
            Err(AuthError::WrongAudience)
        );
        assert_eq!(check(json!({"aud": 7}), &[]), Err(AuthError::WrongAudience));
    }

    #[test]
    fn client_id_counts_only_without_aud() {
        assert!(check(json!({"aud": null, "client_id": "other"}), &[]).is_ok());
        assert_eq!(
            check(json!({"aud": null, "client_id": "x"}), &[]),
            Err(AuthError::WrongAudience)
        );
        assert_eq!(
            check(json!({"aud": "x", "client_id": "https://api"}), &[]),
            Err(AuthError::WrongAudience)
        );
        assert_eq!(
            check(json!({"aud": null}), &[]),
            Err(AuthError::WrongAudience)
        );
    }

    #[test]
    fn route_scopes_need_one_held_scope_else_forbidden() {
        let ok = check(json!({"scope": "read write"}), &["write", "admin"]).unwrap();
        assert_eq!(ok.scopes, Some(vec!["write".to_string()]));
        let ok = check(json!({"scp": ["admin"]}), &["write", "admin"]).unwrap();
        assert_eq!(ok.scopes, Some(vec!["admin".to_string()]));
        assert_eq!(
            check(json!({"scope": "read"}), &["write"]),
            Err(AuthError::InsufficientScope {
                required: vec!["write".into()]
            })
        );
        assert!(matches!(
            check(json!({}), &["write"]),
            Err(AuthError::InsufficientScope { .. })
        ));
    }

    #[test]
    fn config_needs_an_audience() {
        assert_eq!(
            Authorizer::new(AuthorizerConfig::new(issuer("https://x/"), Vec::new())).unwrap_err(),
            ConfigError::NoAudience
        );
    }
}
