//! The JWT authorizer settings: the issuer (kept byte for byte), audiences and route scopes,
//! within API Gateway's limits.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::SpecError;

/// Where the JWT authorizer reads the token from.
pub const IDENTITY_SOURCE: &str = "$request.header.Authorization";
/// API Gateway accepts at most 50 audiences per JWT authorizer.
pub const MAX_AUDIENCES: usize = 50;
/// API Gateway accepts at most 10 authorization scopes per route.
pub const MAX_SCOPES_PER_ROUTE: usize = 10;

/// A token issuer URL, kept exactly as given: API Gateway compares `iss` with it byte for byte,
/// so a trailing `/` (Auth0 issuers have one) matters and is never added or removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Issuer(String);

impl Issuer {
    /// An issuer API Gateway accepts: an absolute `https` URL with a host.
    pub fn parse(issuer: &str) -> Result<Self, SpecError> {
        let url = Self::parse_url(issuer)?;
        if url.scheme() != "https" {
            return Err(invalid(
                issuer,
                "must be an https URL (API Gateway fetches its keys over TLS)",
            ));
        }
        Ok(Issuer(issuer.to_string()))
    }

    /// An issuer for the local dev server: `https`, or `http` on a loopback host (a local OIDC
    /// issuer such as the one `wishctl dev` runs itself).
    pub fn parse_local(issuer: &str) -> Result<Self, SpecError> {
        let url = Self::parse_url(issuer)?;
        let loopback = matches!(
            url.host(),
            Some(url::Host::Domain("localhost"))
                | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
                | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
        );
        match url.scheme() {
            "https" => Ok(Issuer(issuer.to_string())),
            "http" if loopback => Ok(Issuer(issuer.to_string())),
            _ => Err(invalid(
                issuer,
                "must be an https URL, or http on localhost / 127.0.0.1",
            )),
        }
    }

    fn parse_url(issuer: &str) -> Result<url::Url, SpecError> {
        let err = |rule| invalid(issuer, rule);
        // The URL parser silently drops tabs and newlines; the issuer is compared byte for byte
        // with `iss`, so they are refused rather than kept or removed.
        if issuer.chars().any(char::is_control) {
            return Err(err("must not hold control characters (newline, tab, ...)"));
        }
        if issuer.chars().any(char::is_whitespace) {
            return Err(err("must not hold spaces"));
        }
        let url = url::Url::parse(issuer).map_err(|_| err("must be an absolute URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err(
                "must not hold user info (user:password@): credentials do not belong in an issuer URL",
            ));
        }
        if url.host().is_none() {
            return Err(err("must have a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(err("must not have a query or fragment"));
        }
        Ok(url)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The OIDC discovery document: `{issuer}/.well-known/openid-configuration`, with exactly one
    /// `/` between the issuer and the well-known path.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.0.trim_end_matches('/')
        )
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The error for `issuer`, which is shown with its user info masked: the message goes to
/// terminals and CI logs.
fn invalid(issuer: &str, rule: &'static str) -> SpecError {
    SpecError::Issuer {
        issuer: crate::url_for_message(issuer),
        rule,
    }
}

/// The JWT authorizer of the HTTP API, and the scopes of the routes it guards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerSettings {
    pub issuer: Issuer,
    /// Sorted and de-duplicated, so that comparing with what AWS returns is order-independent.
    pub audiences: Vec<String>,
    /// The authorization scopes of every JWT route; empty means any valid token is enough.
    pub scopes: Vec<String>,
}

impl AuthorizerSettings {
    pub fn new(
        issuer: Issuer,
        audiences: impl IntoIterator<Item = String>,
        scopes: impl IntoIterator<Item = String>,
    ) -> Result<Self, SpecError> {
        let mut audiences: Vec<String> = audiences.into_iter().collect();
        audiences.sort();
        audiences.dedup();
        if audiences.is_empty() {
            return Err(SpecError::Audience {
                audience: String::new(),
                rule: "at least one --audience is required",
            });
        }
        if audiences.len() > MAX_AUDIENCES {
            return Err(SpecError::TooManyAudiences {
                count: audiences.len(),
                max: MAX_AUDIENCES,
            });
        }
        for audience in &audiences {
            if audience.chars().any(char::is_control) {
                return Err(SpecError::Audience {
                    audience: audience.clone(),
                    rule: "must not hold control characters",
                });
            }
            if audience.trim().is_empty() {
                return Err(SpecError::Audience {
                    audience: audience.clone(),
                    rule: "must not be empty",
                });
            }
        }
        let mut scopes: Vec<String> = scopes.into_iter().collect();
        scopes.sort();
        scopes.dedup();
        if scopes.len() > MAX_SCOPES_PER_ROUTE {
            return Err(SpecError::TooManyScopes {
                count: scopes.len(),
                max: MAX_SCOPES_PER_ROUTE,
            });
        }
        for scope in &scopes {
            if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(SpecError::Scope {
                    scope: scope.clone(),
                    rule: "must be non-empty and hold no whitespace",
                });
            }
        }
        Ok(AuthorizerSettings {
            issuer,
            audiences,
            scopes,
        })
    }

    pub fn identity_source(&self) -> &'static str {
        IDENTITY_SOURCE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_is_kept_byte_for_byte() {
        let issuer = Issuer::parse("https://tenant.auth0.com/").unwrap();
        assert_eq!(issuer.as_str(), "https://tenant.auth0.com/");
        assert_eq!(
            issuer.discovery_url(),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
        let no_slash =
            Issuer::parse("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc").unwrap();
        assert_eq!(
            no_slash.discovery_url(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/openid-configuration"
        );
    }

    #[test]
    fn deployed_issuers_must_be_https() {
        for bad in [
            "http://tenant.auth0.com/",
            "tenant.auth0.com",
            "",
            "https://x/?a=b",
            "ftp://x/",
            "https://tenant.auth0.com/\n",
            "https://tenant\t.auth0.com/",
            "https://user:pw@tenant.auth0.com/",
            "https://user@tenant.auth0.com/",
        ] {
            assert!(Issuer::parse(bad).is_err(), "{bad:?}");
        }
        let err = Issuer::parse("https://user:pw@tenant.auth0.com/").unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
        for bad in ["http://127.0.0.1:1/\n", "http://u:p@127.0.0.1:1/"] {
            assert!(Issuer::parse_local(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_issuers_may_be_http_on_loopback_only() {
        assert!(Issuer::parse_local("http://127.0.0.1:3000/").is_ok());
        assert!(Issuer::parse_local("http://localhost:9999").is_ok());
        assert!(Issuer::parse_local("https://tenant.auth0.com/").is_ok());
        assert!(Issuer::parse_local("http://example.com/").is_err());
    }

    #[test]
    fn audiences_are_bounded_and_normalised() {
        let issuer = Issuer::parse("https://t.auth0.com/").unwrap();
        let settings = AuthorizerSettings::new(
            issuer.clone(),
            ["b".to_string(), "a".to_string(), "b".to_string()],
            [],
        )
        .unwrap();
        assert_eq!(settings.audiences, ["a", "b"]);
        let many = (0..51).map(|i| format!("aud-{i}"));
        assert_eq!(
            AuthorizerSettings::new(issuer.clone(), many, []),
            Err(SpecError::TooManyAudiences { count: 51, max: 50 })
        );
        assert!(AuthorizerSettings::new(issuer.clone(), [], []).is_err());
        let scopes = (0..11).map(|i| format!("s{i}"));
        assert!(AuthorizerSettings::new(issuer, ["a".to_string()], scopes).is_err());
    }
}
