//! Fetching documents from an issuer without trusting it: every body is read while it streams and
//! refused as soon as it passes its size limit (never buffered beyond it), every fetch shares one
//! deadline, redirects never change the scheme (and never leave https), and every URL an issuer
//! hands out (`jwks_uri`, `token_endpoint`) must be https, or plain http on this machine when the
//! issuer itself is a local http one.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;
use url::Url;

use stack::Issuer;

use crate::{ConfigError, FetchError};

/// API Gateway fetches a JWKS of at most 150,000 bytes (HTTP API quotas); a larger one is refused.
pub const MAX_JWKS_BYTES: usize = 150_000;
/// The largest discovery document accepted. API Gateway documents no limit for it; real ones are
/// 1-8 KB (Auth0 about 2 KB), so 64 KiB leaves room for any provider and none for abuse.
pub const MAX_DISCOVERY_BYTES: usize = 64 * 1024;
/// Redirects followed per fetch (same scheme only).
pub const MAX_REDIRECTS: usize = 3;

/// Whether a host is this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `url` carries a user name or password (`https://user:pw@host/`).
pub(crate) fn has_user_info(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// `url` as messages show it: any user name and password masked ([`stack::url_for_message`]).
pub(crate) fn redacted(url: &Url) -> String {
    stack::url_for_message(url.as_str())
}

/// Whether an endpoint an issuer names may be fetched, given where the issuer's document came
/// from: https always; http only when the document itself came over http from this machine and
/// the endpoint is on this machine too (a local test issuer); no other scheme, no user info.
pub(crate) fn check_endpoint(origin: &Url, endpoint: &Url) -> Result<(), String> {
    if has_user_info(endpoint) {
        return Err(format!(
            "{} carries a user name or password",
            redacted(endpoint)
        ));
    }
    match endpoint.scheme() {
        "https" => Ok(()),
        "http" if origin.scheme() == "http" && is_loopback(origin) && is_loopback(endpoint) => {
            Ok(())
        }
        "http" if origin.scheme() == "https" => Err(format!(
            "{endpoint} is plain http while the issuer is https"
        )),
        "http" => Err(format!(
            "{endpoint} is plain http off this machine (only https is fetched from elsewhere)"
        )),
        other => Err(format!("{endpoint} has scheme {other}, not https")),
    }
}

/// The redirect rule of every issuer client: at most [`MAX_REDIRECTS`] hops, never to another
/// scheme, never to a URL with user info, and plain http only between loopback hosts.
pub(crate) fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let previous = attempt.previous();
        if previous.len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let verdict = match previous.last() {
            Some(from) if from.scheme() != attempt.url().scheme() => Err(format!(
                "redirect from {} to another scheme ({}) refused",
                from.scheme(),
                attempt.url().scheme()
            )),
            Some(from) => check_endpoint(from, attempt.url())
                .map_err(|reason| format!("redirect refused: {reason}")),
            None => Ok(()),
        };
        match verdict {
            Ok(()) => attempt.follow(),
            Err(reason) => attempt.error(reason),
        }
    })
}

/// The HTTP client of every fetch from `issuer` (discovery, JWKS): `timeout` per request, the
/// authorizer's redirect rule, no idle sockets kept, and no proxy for an issuer on this machine.
pub fn issuer_client(issuer: &Issuer, timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    let loopback = Url::parse(issuer.as_str())
        .ok()
        .is_some_and(|url| is_loopback(&url));
    let mut http = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(redirect_policy())
        // Fetches are rare (at most one per refetch interval): keep no idle sockets open.
        .pool_max_idle_per_host(0)
        .user_agent(concat!("wishctl-authorizer/", env!("CARGO_PKG_VERSION")));
    if loopback {
        // A local issuer is never behind the user's HTTP(S)_PROXY.
        http = http.no_proxy();
    }
    http.build()
        .map_err(|err| ConfigError::HttpClient(err.to_string()))
}

/// One issuer document fetched as the authorizer fetches it (with a client of
/// [`issuer_client`]): a 2xx answer whose body is at most `limit` bytes, within `timeout`.
/// `document` names it in errors ("OpenID configuration", "JWKS").
pub async fn fetch_document(
    http: &reqwest::Client,
    url: &Url,
    document: &'static str,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, FetchError> {
    let deadline = Instant::now() + timeout;
    get_limited(http, url, document, limit, deadline, timeout).await
}

/// A GET whose answer must be a 2xx body of at most `limit` bytes, done by `deadline`.
/// `budget` is the total time the caller allows (reported in a timeout).
pub(crate) async fn get_limited(
    http: &reqwest::Client,
    url: &Url,
    document: &'static str,
    limit: usize,
    deadline: Instant,
    budget: Duration,
) -> Result<Bytes, FetchError> {
    let millis = budget.as_millis();
    let request = async {
        let mut response = http
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|err| classify(url, millis, &err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        read_limited(&mut response, url, document, limit, millis).await
    };
    match tokio::time::timeout_at(deadline, request).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout {
            url: url.to_string(),
            millis,
        }),
    }
}

/// The body of `response`, refused as soon as it passes `limit` (by its `content-length`, or by
/// what has arrived so far when it streams without one).
pub(crate) async fn read_limited(
    response: &mut reqwest::Response,
    url: &Url,
    document: &'static str,
    limit: usize,
    millis: u128,
) -> Result<Bytes, FetchError> {
    let too_large = || FetchError::TooLarge {
        url: url.to_string(),
        document,
        limit,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| classify(url, millis, &err))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

pub(crate) fn classify(url: &Url, millis: u128, err: &reqwest::Error) -> FetchError {
    if err.is_timeout() {
        FetchError::Timeout {
            url: url.to_string(),
            millis,
        }
    } else if err.is_redirect() {
        FetchError::Redirect {
            url: url.to_string(),
            reason: stack::error_chain(err),
        }
    } else {
        FetchError::Transport {
            url: url.to_string(),
            reason: stack::error_chain(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn endpoints_must_be_https_unless_issuer_and_endpoint_are_both_local_http() {
        let https = url("https://tenant.auth0.com/.well-known/openid-configuration");
        let local = url("http://127.0.0.1:3000/.well-known/openid-configuration");
        assert!(check_endpoint(&https, &url("https://tenant.auth0.com/jwks")).is_ok());
        assert!(check_endpoint(&https, &url("https://keys.example.net/jwks")).is_ok());
        assert!(check_endpoint(&https, &url("http://tenant.auth0.com/jwks")).is_err());
        assert!(check_endpoint(&https, &url("http://127.0.0.1/jwks")).is_err());
        assert!(check_endpoint(&https, &url("file:///etc/passwd")).is_err());
        assert!(check_endpoint(&https, &url("https://u:p@tenant.auth0.com/jwks")).is_err());
        assert!(check_endpoint(&local, &url("http://localhost:3000/jwks")).is_ok());
        assert!(check_endpoint(&local, &url("https://tenant.auth0.com/jwks")).is_ok());
        assert!(check_endpoint(&local, &url("http://tenant.example.com/jwks")).is_err());
        assert!(check_endpoint(&local, &url("ftp://127.0.0.1/jwks")).is_err());
    }

    #[test]
    fn user_info_is_masked_in_messages() {
        assert_eq!(
            redacted(&url("https://user:secret@tenant.auth0.com/")),
            "https://user:***@tenant.auth0.com/"
        );
        assert!(!has_user_info(&url("https://tenant.auth0.com/")));
        assert!(has_user_info(&url("https://user@tenant.auth0.com/")));
        assert!(has_user_info(&url("https://:pw@tenant.auth0.com/")));
    }
}
