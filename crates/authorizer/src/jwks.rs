//! OIDC discovery and the JWKS cache: `{issuer}/.well-known/openid-configuration` names the
//! `jwks_uri`; its RSA keys are kept for up to the key TTL (two hours, as API Gateway) and
//! refetched early when a token names a `kid` the cache does not know, at most once per
//! refetch interval so that a stream of bad tokens cannot turn into a stream of fetches.
//! Discovery and the JWKS together get one deadline (1500 ms) and their own size limits (see
//! `fetch`), so a slow, huge or endless issuer costs a request at most that long.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use url::Url;

use crate::discovery::DiscoveryDocument;
use crate::fetch::{get_limited, MAX_DISCOVERY_BYTES, MAX_JWKS_BYTES};
use crate::token::rsa_algorithm;
use crate::{AuthError, FetchError};

/// One verification key of the issuer.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) key: DecodingKey,
    /// The JWK's `alg`, when it declares one.
    pub(crate) algorithm: Option<Algorithm>,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, VerifyingKey>,
    fetched_at: Option<Instant>,
    /// Bumped on every successful fetch, so a waiter can tell that someone else refreshed.
    generation: u64,
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_error: Option<FetchError>,
}

/// The keys of one issuer, fetched on demand and shared by every request.
pub(crate) struct JwksCache {
    discovery_url: String,
    http: reqwest::Client,
    fetch_timeout: Duration,
    key_ttl: Duration,
    min_refetch_interval: Duration,
    keys: RwLock<Arc<KeySet>>,
    /// Held while fetching: concurrent requests that miss wait for one fetch instead of each
    /// starting their own.
    refresh: tokio::sync::Mutex<RefreshState>,
}

impl JwksCache {
    pub(crate) fn new(
        discovery_url: String,
        http: reqwest::Client,
        fetch_timeout: Duration,
        key_ttl: Duration,
        min_refetch_interval: Duration,
    ) -> Self {
        JwksCache {
            discovery_url,
            http,
            fetch_timeout,
            key_ttl,
            min_refetch_interval,
            keys: RwLock::new(Arc::new(KeySet::default())),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        }
    }

    fn snapshot(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            // A panic while swapping an Arc cannot leave it half-written.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn is_fresh(&self, set: &KeySet, now: Instant) -> bool {
        set.fetched_at
            .is_some_and(|at| now.saturating_duration_since(at) < self.key_ttl)
    }

    /// The key named `kid`, fetching the JWKS when the cache is empty, older than the TTL, or
    /// does not know `kid` (rate-limited).
    pub(crate) async fn key(&self, kid: &str) -> Result<VerifyingKey, AuthError> {
        let seen = self.snapshot();
        let fresh = self.is_fresh(&seen, Instant::now());
        if fresh {
            if let Some(key) = seen.keys.get(kid) {
                return Ok(key.clone());
            }
        }
        let mut state = self.refresh.lock().await;
        let current = self.snapshot();
        let now = Instant::now();
        if current.generation != seen.generation && self.is_fresh(&current, now) {
            // Someone refreshed while this request waited for the lock.
            return current
                .keys
                .get(kid)
                .cloned()
                .ok_or_else(|| AuthError::UnknownKey(kid.to_string()));
        }
        let rate_limited = state
            .last_attempt
            .is_some_and(|at| now.saturating_duration_since(at) < self.min_refetch_interval);
        if rate_limited {
            if self.is_fresh(&current, now) {
                // An unknown kid shortly after a fetch: do not fetch again yet.
                return Err(AuthError::UnknownKey(kid.to_string()));
            }
            if let (Some(cause), Some(at)) = (&state.last_error, state.last_attempt) {
                let retry_in = self
                    .min_refetch_interval
                    .saturating_sub(now.saturating_duration_since(at));
                return Err(AuthError::KeysUnavailable(FetchError::RecentlyFailed {
                    cause: Box::new(cause.clone()),
                    retry_in_ms: retry_in.as_millis(),
                }));
            }
        }
        state.last_attempt = Some(now);
        match self.fetch().await {
            Ok(keys) => {
                state.last_error = None;
                let found = keys.get(kid).cloned();
                self.store(keys, current.generation + 1);
                found.ok_or_else(|| AuthError::UnknownKey(kid.to_string()))
            }
            Err(err) => {
                // The refused requests carry the cause; this is for whoever debugs the cache.
                tracing::debug!(error = %err, "fetching the issuer's signing keys failed");
                state.last_error = Some(err.clone());
                Err(AuthError::KeysUnavailable(err))
            }
        }
    }

    /// Fetches discovery and the JWKS now, whatever the cache holds; the number of usable keys.
    pub(crate) async fn refresh_now(&self) -> Result<usize, FetchError> {
        let mut state = self.refresh.lock().await;
        state.last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                state.last_error = None;
                let count = keys.len();
                let generation = self.snapshot().generation + 1;
                self.store(keys, generation);
                Ok(count)
            }
            Err(err) => {
                state.last_error = Some(err.clone());
                Err(err)
            }
        }
    }

    fn store(&self, keys: HashMap<String, VerifyingKey>, generation: u64) {
        let set = Arc::new(KeySet {
            keys,
            fetched_at: Some(Instant::now()),
            generation,
        });
        match self.keys.write() {
            Ok(mut slot) => *slot = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
    }

    /// Discovery, then the JWKS it names, within one deadline of `fetch_timeout` for both.
    async fn fetch(&self) -> Result<HashMap<String, VerifyingKey>, FetchError> {
        let deadline = tokio::time::Instant::now() + self.fetch_timeout;
        let discovery_url =
            Url::parse(&self.discovery_url).map_err(|err| FetchError::Document {
                url: self.discovery_url.clone(),
                document: "OpenID configuration URL",
                reason: err.to_string(),
            })?;
        let document = get_limited(
            &self.http,
            &discovery_url,
            "OpenID configuration",
            MAX_DISCOVERY_BYTES,
            deadline,
            self.fetch_timeout,
        )
        .await?;
        let invalid = |reason: String| FetchError::Document {
            url: self.discovery_url.clone(),
            document: "OpenID configuration",
            reason,
        };
        let jwks_uri = DiscoveryDocument::from_slice(&document)
            .map_err(invalid)?
            .jwks_uri(&discovery_url)
            .map_err(invalid)?;
        let jwks = get_limited(
            &self.http,
            &jwks_uri,
            "JWKS",
            MAX_JWKS_BYTES,
            deadline,
            self.fetch_timeout,
        )
        .await?;
        let keys = JwkSet::from_slice(&jwks).map_err(|reason| FetchError::Document {
            url: jwks_uri.to_string(),
            document: "JWKS",
            reason,
        })?;
        tracing::debug!(
            jwks_uri = %jwks_uri,
            keys = keys.len(),
            "fetched the issuer's signing keys"
        );
        Ok(keys.keys)
    }
}

/// The usable keys of a JWKS document: RSA keys with a `kid`, meant for signatures, with a
/// modulus of at most 8192 bits. Others (EC keys, encryption keys, oversized keys) are skipped,
/// as a token signed with them is refused anyway; [`JwkSet::skipped`] says which and why.
#[derive(Clone, Default)]
pub struct JwkSet {
    keys: HashMap<String, VerifyingKey>,
    skipped: Vec<SkippedKey>,
}

impl std::fmt::Debug for JwkSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwkSet")
            .field("kids", &self.kids())
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// A key of a JWKS that no token can be verified with, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Its `kid`, when it has a string one (at most 64 characters of it).
    pub kid: Option<String>,
    /// Why it is skipped, in plain words.
    pub reason: String,
}

impl std::fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "key {kid:?}: {}", self.reason),
            None => write!(f, "a key without kid: {}", self.reason),
        }
    }
}

/// RSA moduli over 8192 bits are skipped: no issuer uses them and each costs verification time.
const MAX_MODULUS_BASE64_CHARS: usize = 8192 / 6 + 1;
/// Shorter moduli verify no signature (see [`usable_key`]).
const MIN_MODULUS_BITS: usize = 2048;

/// The bit length of a base64url (unpadded) big-endian modulus, leading zeros aside.
fn modulus_bits(n: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).ok()?;
    let Some(first) = bytes.iter().position(|b| *b != 0) else {
        return Some(0);
    };
    Some((bytes.len() - first - 1) * 8 + (8 - bytes[first].leading_zeros() as usize))
}

impl JwkSet {
    /// Parses a JWKS document (`{"keys": [...]}`); an error says what is wrong with it.
    pub fn from_slice(document: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(document).map_err(|err| err.to_string())?;
        let (keys, skipped) = parse_jwks_explained(&value)?;
        Ok(JwkSet { keys, skipped })
    }

    /// The number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `kid`s of the usable keys, sorted.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// The keys of the document that are not usable, in document order, with the reason.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }
}

/// The usable keys of a parsed JWKS (see [`JwkSet`]).
#[cfg(test)]
fn parse_jwks(jwks: &Value) -> Result<HashMap<String, VerifyingKey>, String> {
    parse_jwks_explained(jwks).map(|(usable, _)| usable)
}

/// The usable keys of a parsed JWKS, and the others with the reason each is skipped.
fn parse_jwks_explained(
    jwks: &Value,
) -> Result<(HashMap<String, VerifyingKey>, Vec<SkippedKey>), String> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("it has no keys array")?;
    let mut usable = HashMap::new();
    let mut skipped = Vec::new();
    for jwk in keys {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        match usable_key(jwk) {
            Ok((kid, key)) => {
                usable.insert(kid, key);
            }
            Err(reason) => skipped.push(SkippedKey {
                kid: field("kid").map(|kid| kid.chars().take(64).collect()),
                reason,
            }),
        }
    }
    Ok((usable, skipped))
}

/// One JWK as a verification key, or why it cannot be one.
fn usable_key(jwk: &Value) -> Result<(String, VerifyingKey), String> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    match field("kty") {
        Some("RSA") => {}
        Some(other) => {
            return Err(format!(
                "kty {:?} is not RSA (API Gateway verifies RSA signatures only)",
                short(other)
            ))
        }
        None => return Err("it has no kty".into()),
    }
    if let Some(other) = field("use").filter(|u| *u != "sig") {
        return Err(format!(
            "use {:?} is not \"sig\" (it is not a signing key)",
            short(other)
        ));
    }
    let kid = field("kid").ok_or("it has no kid, so no token can name it")?;
    let (Some(n), Some(e)) = (field("n"), field("e")) else {
        return Err("it lacks its modulus n or exponent e".into());
    };
    if n.len() > MAX_MODULUS_BASE64_CHARS {
        return Err("its modulus is larger than 8192 bits".into());
    }
    if e.len() > 16 {
        return Err("its exponent e is implausibly long".into());
    }
    let bits = modulus_bits(n).ok_or("its modulus n is not valid base64url")?;
    // The verifier (aws-lc's RSA_*_2048_8192) accepts 2048- to 8192-bit moduli only.
    if !(MIN_MODULUS_BITS..=8192).contains(&bits) {
        return Err(format!(
            "its modulus is {bits} bits; RSA signatures are verified with 2048- to 8192-bit keys only"
        ));
    }
    let key = DecodingKey::from_rsa_components(n, e)
        .map_err(|_| "its exponent e is not valid base64url".to_string())?;
    let algorithm = match field("alg") {
        None => None,
        Some(alg) => Some(rsa_algorithm(alg).ok_or_else(|| {
            format!(
                "alg {:?} is not an RSA signing algorithm (RS256/384/512, PS256/384/512)",
                short(alg)
            )
        })?),
    };
    Ok((kid.to_string(), VerifyingKey { key, algorithm }))
}

/// At most 40 characters of an issuer-controlled string, for messages.
fn short(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A base64url modulus of exactly `bits` bits (not a real key: parsing never checks primes).
    fn modulus(bits: usize) -> String {
        let mut bytes = vec![0xFF_u8; bits.div_ceil(8)];
        bytes[0] = 0xFF >> (bytes.len() * 8 - bits);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn only_rsa_signing_keys_with_a_kid_are_kept() {
        let n = modulus(2048);
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": n, "e": "AQAB", "use": "sig", "alg": "RS256"},
            {"kty": "RSA", "kid": "b", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "n": n, "e": "AQAB", "use": "enc"},
            {"kty": "RSA", "kid": "hs", "n": n, "e": "AQAB", "alg": "HS256"},
            {"kty": "RSA", "kid": "oaep", "n": n, "e": "AQAB", "use": "sig", "alg": "RSA-OAEP"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AQAB", "y": "AQAB"},
            {"kty": "RSA", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "bad", "n": "!!", "e": "AQAB"},
            {"kty": "RSA", "kid": "tiny", "n": "abc", "e": "AQAB"}
        ]});
        let keys = parse_jwks(&jwks).unwrap();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort();
        assert_eq!(kids, ["a", "b"]);
        assert_eq!(keys["a"].algorithm, Some(Algorithm::RS256));
        assert_eq!(keys["b"].algorithm, None);
    }

    #[test]
    fn every_skipped_key_says_why() {
        let n = modulus(2048);
        let set = JwkSet::from_slice(
            json!({"keys": [
                {"kty": "RSA", "n": n, "e": "AQAB", "use": "sig", "alg": "RS256"},
                {"kty": "RSA", "kid": "oaep", "n": n, "e": "AQAB", "alg": "RSA-OAEP"},
                {"kty": "RSA", "kid": "enc", "n": n, "e": "AQAB", "use": "enc"},
                {"kty": "RSA", "kid": "tiny", "n": "abc", "e": "AQAB"},
                {"kty": "RSA", "kid": "bad", "n": "!!", "e": "AQAB"},
                {"kty": "EC", "kid": "ec"}
            ]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert!(set.is_empty());
        let said: Vec<String> = set.skipped().iter().map(ToString::to_string).collect();
        assert_eq!(said.len(), 6, "{said:?}");
        for (text, expected) in said.iter().zip([
            "a key without kid: it has no kid",
            "key \"oaep\": alg \"RSA-OAEP\" is not an RSA signing algorithm",
            "key \"enc\": use \"enc\" is not \"sig\"",
            "key \"tiny\": its modulus is 15 bits",
            "key \"bad\": its modulus n is not valid base64url",
            "key \"ec\": kty \"EC\" is not RSA",
        ]) {
            assert!(text.starts_with(expected), "{text}");
        }
    }

    #[test]
    fn moduli_outside_what_the_verifier_accepts_are_skipped() {
        let huge = "A".repeat(MAX_MODULUS_BASE64_CHARS + 1);
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "big", "n": huge, "e": "AQAB"}]});
        assert!(parse_jwks(&jwks).unwrap().is_empty());
        for (bits, usable) in [(2047, false), (2048, true), (4096, true), (8192, true)] {
            let document =
                json!({"keys": [{"kty": "RSA", "kid": "k", "n": modulus(bits), "e": "AQAB"}]});
            let set = JwkSet::from_slice(document.to_string().as_bytes()).unwrap();
            assert_eq!(set.len(), usize::from(usable), "{bits} bits: {set:?}");
        }
        let set = JwkSet::from_slice(
            json!({"keys": [{"kty": "RSA", "kid": "k", "n": modulus(2048), "e": "AQAB"}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(set.kids(), ["k"]);
        assert!(JwkSet::from_slice(b"not json").is_err());
    }

    #[test]
    fn a_document_without_keys_is_rejected() {
        assert!(parse_jwks(&json!({"nokeys": []})).is_err());
        assert!(parse_jwks(&json!({"keys": []})).unwrap().is_empty());
    }
}
