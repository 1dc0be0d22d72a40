//! Finding the token in the request and taking it apart, before any key is involved.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::AuthError;

/// The token in an `Authorization` header value: the bare token or `Bearer <token>` (the scheme
/// matched case-insensitively), surrounding whitespace ignored.
pub fn extract_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization.map(str::trim).unwrap_or_default();
    let token = match value.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim_start(),
        _ if value.eq_ignore_ascii_case("bearer") => "",
        _ => value,
    };
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}

/// A compact JWS split into its parts, header and claims decoded, signature not yet checked.
#[derive(Debug, Clone)]
pub struct UnverifiedToken<'a> {
    pub algorithm: Algorithm,
    pub kid: String,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub signing_input: &'a str,
    /// base64url, as in the token.
    pub signature: &'a str,
    pub claims: Map<String, Value>,
}

impl<'a> UnverifiedToken<'a> {
    /// Checks the shape and the header: three segments, an RSA `alg`, a `kid`, JSON objects.
    pub fn parse(token: &'a str) -> Result<Self, AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("it does not have three segments"));
        };
        let header = decode_object(header, "the header is not base64url-encoded JSON")?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg.as_str(),
            Some(_) => return Err(AuthError::Malformed("alg is not a string")),
            None => return Err(AuthError::Malformed("the header has no alg")),
        };
        let algorithm =
            rsa_algorithm(alg).ok_or_else(|| AuthError::UnsupportedAlgorithm(alg.to_string()))?;
        let kid = match header.get("kid") {
            Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
            _ => return Err(AuthError::MissingKeyId),
        };
        let claims = decode_object(payload, "the payload is not base64url-encoded JSON")?;
        if signature.is_empty() {
            return Err(AuthError::BadSignature);
        }
        let signing_input = &token[..header_len(token, signature)];
        Ok(UnverifiedToken {
            algorithm,
            kid,
            signing_input,
            signature,
            claims,
        })
    }
}

/// The claims of a compact JWS, decoded but not verified (for showing what a token says, never
/// for deciding anything): `None` when `token` is not three segments with a JSON-object payload.
pub fn decode_claims_unverified(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    decode_object(payload, "").ok()
}

/// The length of `header.payload` in `token`, which ends with `.signature`.
fn header_len(token: &str, signature: &str) -> usize {
    token.len() - signature.len() - 1
}

/// The six algorithms an HTTP API JWT authorizer accepts.
pub fn rsa_algorithm(alg: &str) -> Option<Algorithm> {
    match alg {
        "RS256" => Some(Algorithm::RS256),
        "RS384" => Some(Algorithm::RS384),
        "RS512" => Some(Algorithm::RS512),
        "PS256" => Some(Algorithm::PS256),
        "PS384" => Some(Algorithm::PS384),
        "PS512" => Some(Algorithm::PS512),
        _ => None,
    }
}

fn decode_object(segment: &str, problem: &'static str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthError::Malformed(problem))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AuthError::Malformed(problem)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn bearer_prefix_is_optional_and_case_insensitive() {
        assert_eq!(extract_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(extract_token(Some("bearer   abc ")), Ok("abc"));
        assert_eq!(extract_token(Some("abc")), Ok("abc"));
        assert_eq!(extract_token(Some("  abc")), Ok("abc"));
    }

    #[test]
    fn no_header_or_a_bare_scheme_is_a_missing_token() {
        assert_eq!(extract_token(None), Err(AuthError::MissingToken));
        assert_eq!(extract_token(Some("")), Err(AuthError::MissingToken));
        assert_eq!(extract_token(Some("Bearer")), Err(AuthError::MissingToken));
        assert_eq!(
            extract_token(Some("Bearer   ")),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn only_rsa_algorithms_are_accepted() {
        for ok in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
            assert!(rsa_algorithm(ok).is_some(), "{ok}");
        }
        for bad in [
            "none", "None", "HS256", "HS384", "HS512", "ES256", "ES384", "EdDSA", "rs256", "",
        ] {
            assert!(rsa_algorithm(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn claims_are_decoded_without_verification_for_display() {
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256"}"#),
            b64(r#"{"sub":"u"}"#)
        );
        assert_eq!(decode_claims_unverified(&token).unwrap()["sub"], "u");
        assert!(decode_claims_unverified("opaque-token").is_none());
        assert!(decode_claims_unverified("a.!!.c").is_none());
    }

    #[test]
    fn parse_splits_header_claims_and_signing_input() {
        let header = b64(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
        let payload = b64(r#"{"sub":"u"}"#);
        let token = format!("{header}.{payload}.c2ln");
        let parsed = UnverifiedToken::parse(&token).unwrap();
        assert_eq!(parsed.algorithm, Algorithm::RS256);
        assert_eq!(parsed.kid, "k1");
        assert_eq!(parsed.signing_input, format!("{header}.{payload}"));
        assert_eq!(parsed.signature, "c2ln");
        assert_eq!(parsed.claims["sub"], "u");
    }

    #[test]
    fn parse_rejects_each_malformation_with_its_own_reason() {
        let rs = b64(r#"{"alg":"RS256","kid":"k"}"#);
        let claims = b64(r#"{"sub":"u"}"#);
        let cases = [
            (
                "garbage".to_string(),
                AuthError::Malformed("it does not have three segments"),
            ),
            (
                format!("{rs}.{claims}"),
                AuthError::Malformed("it does not have three segments"),
            ),
            (
                format!("{rs}.{claims}.s.x"),
                AuthError::Malformed("it does not have three segments"),
            ),
            (
                format!("!!.{claims}.s"),
                AuthError::Malformed("the header is not base64url-encoded JSON"),
            ),
            (
                format!("{}.{claims}.s", b64("[1]")),
                AuthError::Malformed("the header is not base64url-encoded JSON"),
            ),
            (
                format!("{rs}.{}.s", b64("\"x\"")),
                AuthError::Malformed("the payload is not base64url-encoded JSON"),
            ),
            (
                format!("{}.{claims}.", b64(r#"{"alg":"none"}"#)),
                AuthError::UnsupportedAlgorithm("none".into()),
            ),
            (
                format!("{}.{claims}.s", b64(r#"{"alg":"HS256","kid":"k"}"#)),
                AuthError::UnsupportedAlgorithm("HS256".into()),
            ),
            (
                format!("{}.{claims}.s", b64(r#"{"kid":"k"}"#)),
                AuthError::Malformed("the header has no alg"),
            ),
            (
                format!("{}.{claims}.s", b64(r#"{"alg":"RS256"}"#)),
                AuthError::MissingKeyId,
            ),
            (format!("{rs}.{claims}."), AuthError::BadSignature),
        ];
        for (token, expected) in cases {
            assert_eq!(
                UnverifiedToken::parse(&token).unwrap_err(),
                expected,
                "{token}"
            );
        }
    }
}
