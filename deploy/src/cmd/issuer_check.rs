//! The issuer pre-check of `up` and `plan`: configuration traps caught before anything is
//! deployed, by reading the issuer's OIDC discovery document and JWKS as API Gateway will.
//!
//! It stops with an error when the discovery document's `issuer` differs from `--issuer` (the
//! trailing-slash trap: API Gateway compares `iss` byte for byte), when the JWKS holds no RSA
//! signing key (API Gateway accepts RSA only) or is larger than API Gateway fetches, or when the
//! issuer cannot be an API Gateway issuer (not https). When the issuer cannot be reached at all
//! (an air-gapped runner, a private network), it says so and goes on: `--skip-issuer-check`
//! skips the check entirely.

use std::time::Duration;

use serde_json::Value;
use stack::Issuer;

/// How long each fetch may take. API Gateway gives the issuer 1500 ms; a runner's first TLS
/// handshake may be slower, and this is a pre-check, not the authorizer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// API Gateway does not use a JWKS larger than this (HTTP API quotas).
pub const MAX_JWKS_BYTES: usize = 150_000;
/// A discovery document is a few KB; anything this large is not one.
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// Set to `1` by tests only: accept `http://` issuers on a loopback host (a local test issuer),
/// which API Gateway itself never would.
pub const ALLOW_LOOPBACK_HTTP_ENV: &str = "WISHCTL_TEST_ALLOW_LOOPBACK_HTTP_ISSUER";

/// Whether the test-only allowance for loopback http issuers is on.
pub fn loopback_http_allowed() -> bool {
    std::env::var(ALLOW_LOOPBACK_HTTP_ENV).is_ok_and(|v| v == "1")
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerCheck {
    /// Discovery and JWKS read and consistent with `--issuer`.
    Passed { rsa_keys: usize },
    /// The issuer could not be reached (why); nothing was checked.
    Unreachable(String),
}

/// The https rule: API Gateway only accepts https issuers; `allow_loopback_http` lets tests use
/// a local http issuer on 127.0.0.1 / localhost.
pub fn check_scheme(issuer: &str, allow_loopback_http: bool) -> anyhow::Result<()> {
    let url = url::Url::parse(issuer)
        .map_err(|e| anyhow::anyhow!("--issuer {issuer:?} is not an absolute URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_loopback_http && is_loopback(&url) => Ok(()),
        other => anyhow::bail!(
            "--issuer {issuer} uses {other}: API Gateway only accepts https issuers (its JWT \
             authorizer fetches the keys over TLS); use the issuer's https URL"
        ),
    }
}

/// Whether `url` carries user info (`user:password@`).
fn has_user_info(url: &url::Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// `url` as it may be printed: without its user info (a password in a URL must never reach a
/// terminal or a CI log). Text that is not a URL is shown only when it cannot hold any.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if has_user_info(&parsed) => {
            // Both fail only for URLs that cannot have user info at all.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            format!("{parsed} (user info removed)")
        }
        // `user:password@host` without a scheme parses as scheme `user` and no host.
        Ok(parsed) if parsed.host().is_none() && url.contains('@') => {
            "(a string that is not a URL)".to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) if url.contains('@') => "(a string that is not a URL)".to_string(),
        Err(_) => url.to_string(),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Reads the discovery document and the JWKS of `issuer` and checks them against the rules in
/// the module documentation.
pub async fn check(issuer: &Issuer, allow_loopback_http: bool) -> anyhow::Result<IssuerCheck> {
    let issuer_str = issuer.as_str();
    check_scheme(issuer_str, allow_loopback_http)?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| anyhow::anyhow!("building the HTTP client for the issuer check: {e}"))?;
    let discovery_url = issuer.discovery_url();
    let discovery = match fetch(&client, &discovery_url, MAX_DISCOVERY_BYTES).await {
        Ok(body) => body,
        Err(Fetch::Unreachable(why)) => {
            return Ok(IssuerCheck::Unreachable(format!("{discovery_url}: {why}")))
        }
        Err(Fetch::Refused(why)) => anyhow::bail!(
            "issuer check: the discovery document {discovery_url} {why}; is --issuer the exact \
             `iss` of your tokens? (--skip-issuer-check skips this check)"
        ),
    };
    let document: Value = serde_json::from_slice(&discovery).map_err(|e| {
        anyhow::anyhow!("issuer check: {discovery_url} is not a JSON discovery document: {e}")
    })?;
    let found = document["issuer"].as_str().unwrap_or_default();
    if found != issuer_str {
        // The document's own string, never printed with credentials in it.
        let found = &shown(found);
        let slash_only = found.trim_end_matches('/') == issuer_str.trim_end_matches('/');
        if slash_only {
            anyhow::bail!(
                "issuer check: --issuer {issuer_str} differs from the issuer's own `issuer` \
                 {found:?} only by the trailing slash; API Gateway compares the tokens' `iss` \
                 byte for byte, so every token would be refused. Pass --issuer {found}"
            );
        }
        anyhow::bail!(
            "issuer check: {discovery_url} names issuer {found:?}, not --issuer {issuer_str}; \
             tokens would be refused. Pass the issuer exactly as it names itself"
        );
    }
    let jwks_uri = document["jwks_uri"].as_str().ok_or_else(|| {
        anyhow::anyhow!("issuer check: {discovery_url} has no `jwks_uri`; API Gateway needs one")
    })?;
    let parsed = url::Url::parse(jwks_uri).map_err(|e| {
        anyhow::anyhow!(
            "issuer check: the `jwks_uri` {} of {discovery_url} is not an absolute URL ({e}); \
             fix the issuer's discovery document",
            shown(jwks_uri)
        )
    })?;
    if has_user_info(&parsed) {
        anyhow::bail!(
            "issuer check: the `jwks_uri` of {discovery_url} carries user info (credentials in \
             the URL, not shown: {}); API Gateway fetches the keys without credentials, and \
             wishctl does not send them either. Publish the JWKS at a URL without user info",
            shown(jwks_uri)
        );
    }
    check_scheme(jwks_uri, allow_loopback_http).map_err(|_| {
        anyhow::anyhow!(
            "issuer check: the `jwks_uri` {} of {discovery_url} is not https, while the \
             issuer is: API Gateway fetches the keys over https only. Fix the issuer's discovery \
             document (--skip-issuer-check skips this check)",
            shown(jwks_uri)
        )
    })?;
    let jwks = match fetch(&client, jwks_uri, MAX_JWKS_BYTES).await {
        Ok(body) => body,
        Err(Fetch::Unreachable(why) | Fetch::Refused(why)) => {
            anyhow::bail!("issuer check: the JWKS {jwks_uri} {why}")
        }
    };
    let rsa_keys = rsa_signing_keys(&jwks)
        .map_err(|why| anyhow::anyhow!("issuer check: the JWKS {jwks_uri} {why}"))?;
    if rsa_keys == 0 {
        anyhow::bail!(
            "issuer check: the JWKS {jwks_uri} holds no RSA signing key (kty RSA, use sig); \
             API Gateway's JWT authorizer accepts RSA keys only. Switch the issuer's signing \
             algorithm to RS256"
        );
    }
    Ok(IssuerCheck::Passed { rsa_keys })
}

/// How a fetch failed: could not get an answer at all, or got one that is unusable.
#[derive(Debug)]
enum Fetch {
    Unreachable(String),
    Refused(String),
}

async fn fetch(client: &reqwest::Client, url: &str, limit: usize) -> Result<Vec<u8>, Fetch> {
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| Fetch::Unreachable(describe(&e)))?;
    let status = response.status();
    if status.is_redirection() {
        let to = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?");
        return Err(Fetch::Refused(format!(
            "answered a redirect ({status}) to {}; the URL must answer directly",
            shown(to)
        )));
    }
    if !status.is_success() {
        return Err(Fetch::Refused(format!("answered HTTP {status}")));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(Fetch::Refused(format!(
                        "is larger than {limit} bytes, more than API Gateway reads"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(Fetch::Unreachable(describe(&e))),
        }
    }
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        format!("no answer within {}s", FETCH_TIMEOUT.as_secs())
    } else if err.is_connect() {
        "cannot connect".to_string()
    } else {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }
}

/// The number of RSA keys usable for signatures in a JWKS document.
fn rsa_signing_keys(jwks: &[u8]) -> Result<usize, String> {
    let document: Value =
        serde_json::from_slice(jwks).map_err(|e| format!("is not a JSON key set: {e}"))?;
    let keys = document["keys"]
        .as_array()
        .ok_or_else(|| "has no `keys` array".to_string())?;
    Ok(keys
        .iter()
        .filter(|k| {
            k["kty"] == "RSA"
                && k["n"].is_string()
                && k["e"].is_string()
                && matches!(k["use"].as_str(), None | Some("sig"))
        })
        .count())
}

/// Runs the check for `up` / `plan` and reports on stderr.
pub async fn run(issuer: &Issuer) -> anyhow::Result<()> {
    match check(issuer, loopback_http_allowed()).await? {
        IssuerCheck::Passed { rsa_keys } => {
            eprintln!("issuer {issuer}: discovery document and JWKS checked ({rsa_keys} RSA signing key(s))");
        }
        IssuerCheck::Unreachable(why) => {
            eprintln!(
                "warning: issuer {issuer} could not be reached ({why}); its discovery document \
                 and keys were not checked (--skip-issuer-check skips the check)"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_issuers_pass_unless_tests_allow_loopback_http() {
        assert!(check_scheme("https://tenant.auth0.com/", false).is_ok());
        assert!(check_scheme("http://tenant.auth0.com/", false).is_err());
        assert!(check_scheme("http://127.0.0.1:8080/", false).is_err());
        assert!(check_scheme("http://127.0.0.1:8080/", true).is_ok());
        assert!(check_scheme("http://localhost:8080/", true).is_ok());
        assert!(check_scheme("http://tenant.auth0.com/", true).is_err());
        assert!(check_scheme("ftp://127.0.0.1/", true).is_err());
    }

    #[test]
    fn user_info_is_never_shown() {
        let with = "https://alice:s3cret@keys.example.com/jwks.json";
        let text = shown(with);
        assert_eq!(
            text,
            "https://keys.example.com/jwks.json (user info removed)"
        );
        assert!(!shown("https://alice@keys.example.com/").contains("alice"));
        assert!(!shown("alice:s3cret@not a url").contains("s3cret"));
        assert!(!shown("alice:s3cret@keys.example.com/jwks").contains("s3cret"));
        assert_eq!(
            shown("https://keys.example.com/a@b"),
            "https://keys.example.com/a@b"
        );
        assert_eq!(
            shown("https://keys.example.com/jwks"),
            "https://keys.example.com/jwks"
        );
        assert!(has_user_info(&url::Url::parse(with).unwrap()));
        assert!(!has_user_info(
            &url::Url::parse("https://keys.example.com/").unwrap()
        ));
    }

    #[test]
    fn only_rsa_signing_keys_count() {
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "n": "abc", "e": "AQAB", "use": "sig", "kid": "1"},
            {"kty": "RSA", "n": "abc", "e": "AQAB", "kid": "2"},
            {"kty": "RSA", "n": "abc", "e": "AQAB", "use": "enc", "kid": "3"},
            {"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "kid": "4"},
            {"kty": "oct", "k": "secret", "kid": "5"}
        ]});
        assert_eq!(rsa_signing_keys(jwks.to_string().as_bytes()), Ok(2));
        assert_eq!(rsa_signing_keys(br#"{"keys": [{"kty": "EC"}]}"#), Ok(0));
        assert!(rsa_signing_keys(b"[]").is_err());
        assert!(rsa_signing_keys(b"not json").is_err());
    }
}
