//! The issuer pre-check of `up` and `plan`: configuration traps caught before anything is
//! deployed, by reading the issuer's OIDC discovery document and JWKS as API Gateway will.
//!
//! It stops with an error when the discovery document's `issuer` differs from `--issuer` (the
//! trailing-slash trap: API Gateway compares `iss` byte for byte), when the JWKS holds no RSA
//! signing key the authorizer can use (saying why each key was skipped) or is larger than API
//! Gateway fetches, or when the issuer cannot be an API Gateway issuer (not https). When the
//! issuer cannot be reached at all (an air-gapped runner, a private network), it says so and goes
//! on: `--skip-issuer-check` skips the check entirely.
//!
//! What a usable issuer is comes from the `authorizer` crate, which `wishctl dev` runs: the same
//! HTTP client (redirect rule, size limits), the same discovery parsing and `jwks_uri` rule, and
//! the same JWKS parser ([`authorizer::JwkSet`]), so `plan`/`up` pass exactly the issuers whose
//! tokens the authorizer can verify. Only the time limit differs (see [`FETCH_TIMEOUT`]).

use std::time::Duration;

use authorizer::{
    fetch_document, issuer_client, DiscoveryDocument, FetchError, JwkSet, MAX_DISCOVERY_BYTES,
    MAX_JWKS_BYTES,
};
use stack::{url_for_message as shown, Issuer};

/// How long each fetch may take. API Gateway gives the issuer 1500 ms; a runner's first TLS
/// handshake may be slower, and this is a pre-check, not the authorizer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many skipped keys are listed in a message.
const SKIPPED_SHOWN: usize = 5;

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
    /// Discovery and JWKS read and consistent with `--issuer`: the number of usable keys, and the
    /// keys skipped (with why), when some were.
    Passed {
        rsa_keys: usize,
        skipped: Option<String>,
    },
    /// The issuer could not be reached (why); nothing was checked.
    Unreachable(String),
}

/// The https rule: API Gateway only accepts https issuers; `allow_loopback_http` lets tests use
/// a local http issuer on 127.0.0.1 / localhost.
pub fn check_scheme(issuer: &str, allow_loopback_http: bool) -> anyhow::Result<()> {
    let url = url::Url::parse(issuer)
        .map_err(|e| anyhow::anyhow!("--issuer {:?} is not an absolute URL: {e}", shown(issuer)))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_loopback_http && is_loopback(&url) => Ok(()),
        other => anyhow::bail!(
            "--issuer {} uses {other}: API Gateway only accepts https issuers (its JWT \
             authorizer fetches the keys over TLS); use the issuer's https URL",
            shown(issuer)
        ),
    }
}

/// Whether `url` carries user info (`user:password@`).
fn has_user_info(url: &url::Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
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
    let client =
        issuer_client(issuer, FETCH_TIMEOUT).map_err(|e| anyhow::anyhow!("issuer check: {e}"))?;
    let discovery_url = url::Url::parse(&issuer.discovery_url()).map_err(|e| {
        anyhow::anyhow!("--issuer {issuer_str}: its discovery URL is not a URL ({e})")
    })?;
    let discovery = match fetch_document(
        &client,
        &discovery_url,
        "OpenID configuration",
        MAX_DISCOVERY_BYTES,
        FETCH_TIMEOUT,
    )
    .await
    {
        Ok(body) => body,
        Err(e @ (FetchError::Timeout { .. } | FetchError::Transport { .. })) => {
            return Ok(IssuerCheck::Unreachable(e.to_string()))
        }
        Err(e) => anyhow::bail!(
            "issuer check: the discovery document cannot be used: {e}; is --issuer the exact \
             `iss` of your tokens? (--skip-issuer-check skips this check)"
        ),
    };
    let document = DiscoveryDocument::from_slice(&discovery).map_err(|e| {
        anyhow::anyhow!("issuer check: {discovery_url} is not a JSON discovery document: {e}")
    })?;
    let found = document.issuer.as_deref().unwrap_or_default();
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
    let jwks_uri = document.jwks_uri.as_deref().ok_or_else(|| {
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
    // The authorizer's own rule for where keys may come from (it refuses what is left).
    let jwks_url = document.jwks_uri(&discovery_url).map_err(|why| {
        anyhow::anyhow!(
            "issuer check: the discovery document {discovery_url} cannot be used: {why}; fix the \
             issuer's discovery document (--skip-issuer-check skips this check)"
        )
    })?;
    let jwks = fetch_document(&client, &jwks_url, "JWKS", MAX_JWKS_BYTES, FETCH_TIMEOUT)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "issuer check: the issuer's keys cannot be read: {e}; API Gateway would refuse \
                 every token (--skip-issuer-check skips this check)"
            )
        })?;
    let keys = JwkSet::from_slice(&jwks).map_err(|why| {
        anyhow::anyhow!("issuer check: the JWKS {jwks_url} is not a JSON key set: {why}")
    })?;
    let skipped = skipped_keys(&keys);
    if keys.is_empty() {
        let why = if keys.skipped().is_empty() {
            "it holds no keys at all".to_string()
        } else {
            format!("every key was skipped: {skipped}")
        };
        anyhow::bail!(
            "issuer check: the JWKS {jwks_url} holds no RSA signing key the authorizer can use \
             (kty RSA with a kid, use sig, an RSA signing alg and a 2048- to 8192-bit modulus): \
             {why}. API Gateway's JWT authorizer verifies RSA signatures only, so every token \
             would be refused: switch the issuer's signing algorithm to RS256"
        );
    }
    Ok(IssuerCheck::Passed {
        rsa_keys: keys.len(),
        skipped: (!keys.skipped().is_empty()).then_some(skipped),
    })
}

/// The skipped keys of `keys` with the reason for each, at most [`SKIPPED_SHOWN`] of them.
fn skipped_keys(keys: &JwkSet) -> String {
    let all = keys.skipped();
    let mut text = all
        .iter()
        .take(SKIPPED_SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if all.len() > SKIPPED_SHOWN {
        text.push_str(&format!("; and {} more", all.len() - SKIPPED_SHOWN));
    }
    text
}

/// Runs the check for `up` / `plan` and reports on stderr.
pub async fn run(issuer: &Issuer) -> anyhow::Result<()> {
    match check(issuer, loopback_http_allowed()).await? {
        IssuerCheck::Passed { rsa_keys, skipped } => {
            eprintln!("issuer {issuer}: discovery document and JWKS checked ({rsa_keys} RSA signing key(s))");
            if let Some(skipped) = skipped {
                eprintln!(
                    "note: the issuer's JWKS also holds keys no token can be verified with \
                     (skipped): {skipped}"
                );
            }
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
        assert_eq!(text, "https://alice:***@keys.example.com/jwks.json");
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
}
