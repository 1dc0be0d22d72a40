//! The OIDC discovery document (`{issuer}/.well-known/openid-configuration`), read as untrusted
//! input: only the fields this crate uses, each checked before it is followed.

use serde_json::Value;
use url::Url;

use crate::fetch::check_endpoint;

/// The parts of a discovery document that the authorizer and the client-credentials grant use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoveryDocument {
    /// `issuer`, when it is a string.
    pub issuer: Option<String>,
    /// `jwks_uri`, as written.
    pub jwks_uri: Option<String>,
    /// `token_endpoint`, as written.
    pub token_endpoint: Option<String>,
    /// `token_endpoint_auth_methods_supported` (the strings among them).
    pub token_endpoint_auth_methods: Vec<String>,
}

impl DiscoveryDocument {
    /// Parses a discovery document: it must be a JSON object; fields of the wrong type count as
    /// absent.
    pub fn from_slice(document: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(document).map_err(|err| err.to_string())?;
        let Value::Object(fields) = value else {
            return Err("it is not a JSON object".into());
        };
        let text = |name: &str| fields.get(name).and_then(Value::as_str).map(String::from);
        Ok(DiscoveryDocument {
            issuer: text("issuer"),
            jwks_uri: text("jwks_uri"),
            token_endpoint: text("token_endpoint"),
            token_endpoint_auth_methods: fields
                .get("token_endpoint_auth_methods_supported")
                .and_then(Value::as_array)
                .map(|methods| {
                    methods
                        .iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// `jwks_uri` as a URL that may be fetched, the document having come from `origin`.
    pub fn jwks_uri(&self, origin: &Url) -> Result<Url, String> {
        endpoint(self.jwks_uri.as_deref(), "jwks_uri", origin)
    }

    /// `token_endpoint` as a URL that may be posted to, the document having come from `origin`.
    pub fn token_endpoint(&self, origin: &Url) -> Result<Url, String> {
        endpoint(self.token_endpoint.as_deref(), "token_endpoint", origin)
    }
}

fn endpoint(value: Option<&str>, name: &str, origin: &Url) -> Result<Url, String> {
    let value = value.ok_or_else(|| format!("it has no {name} string"))?;
    let url = Url::parse(value).map_err(|err| {
        format!(
            "its {name} {:?} is not an absolute URL ({err})",
            shorten(value)
        )
    })?;
    check_endpoint(origin, &url).map_err(|reason| format!("its {name} is refused: {reason}"))?;
    Ok(url)
}

/// At most 200 characters of an issuer-controlled string, for messages.
fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push_str("...");
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Url {
        Url::parse("https://tenant.auth0.com/.well-known/openid-configuration").unwrap()
    }

    #[test]
    fn the_fields_used_are_read_and_others_ignored() {
        let doc = DiscoveryDocument::from_slice(
            br#"{"issuer": "https://tenant.auth0.com/", "jwks_uri": "https://tenant.auth0.com/.well-known/jwks.json",
                "token_endpoint": "https://tenant.auth0.com/oauth/token",
                "token_endpoint_auth_methods_supported": ["client_secret_basic", 7, "client_secret_post"],
                "scopes_supported": ["openid"]}"#,
        )
        .unwrap();
        assert_eq!(doc.issuer.as_deref(), Some("https://tenant.auth0.com/"));
        assert_eq!(
            doc.jwks_uri(&origin()).unwrap().as_str(),
            "https://tenant.auth0.com/.well-known/jwks.json"
        );
        assert_eq!(
            doc.token_endpoint(&origin()).unwrap().as_str(),
            "https://tenant.auth0.com/oauth/token"
        );
        assert_eq!(
            doc.token_endpoint_auth_methods,
            ["client_secret_basic", "client_secret_post"]
        );
    }

    #[test]
    fn a_document_that_points_elsewhere_is_refused() {
        for (document, problem) in [
            (
                r#"{"jwks_uri": "http://tenant.auth0.com/jwks"}"#,
                "plain http",
            ),
            (r#"{"jwks_uri": "file:///etc/passwd"}"#, "scheme file"),
            (r#"{"jwks_uri": "/relative/jwks"}"#, "not an absolute URL"),
            (r#"{"jwks_uri": 7}"#, "no jwks_uri"),
            (r#"{}"#, "no jwks_uri"),
            (
                r#"{"jwks_uri": "https://u:p@tenant.auth0.com/jwks"}"#,
                "user name or password",
            ),
        ] {
            let doc = DiscoveryDocument::from_slice(document.as_bytes()).unwrap();
            let err = doc.jwks_uri(&origin()).unwrap_err();
            assert!(err.contains(problem), "{document}: {err}");
            assert!(!err.contains("u:p"), "{err}");
        }
        assert!(DiscoveryDocument::from_slice(b"[]").is_err());
        assert!(DiscoveryDocument::from_slice(b"{").is_err());
    }
}
