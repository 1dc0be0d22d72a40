//! How API Gateway hands claims to the integration, and how it reads scopes.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Every claim rendered as API Gateway passes it in `requestContext.authorizer.jwt.claims`.
pub fn render_claims(claims: &Map<String, Value>) -> BTreeMap<String, String> {
    claims
        .iter()
        .map(|(name, value)| (name.clone(), render_claim_value(value)))
        .collect()
}

/// One claim value as a string, the way API Gateway (a Go service) prints it: strings as they
/// are, numbers as written in the token (`1700000000`, not `1.7e+09`), booleans as `true` and
/// `false`, arrays as `[a b]`, objects as `map[key:value]` with sorted keys, `null` as `<nil>`.
pub fn render_claim_value(value: &Value) -> String {
    let mut out = String::new();
    render_into(value, &mut out);
    out
}

fn render_into(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("<nil>"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                render_into(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            // serde_json's Map is ordered by key unless `preserve_order` is on; sort anyway, as
            // Go's fmt prints map keys sorted.
            let mut sorted: Vec<(&String, &Value)> = fields.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            out.push_str("map[");
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                render_into(item, out);
            }
            out.push(']');
        }
    }
}

/// The scopes a token holds: `scope` split on spaces (OAuth 2.0, Auth0), plus `scp` as an array
/// of strings or a space-separated string (Okta, Entra ID). Both are read when both are present.
pub fn token_scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut scopes = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(s)) => {
                scopes.extend(s.split(' ').filter(|s| !s.is_empty()).map(String::from))
            }
            Some(Value::Array(items)) => scopes.extend(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            ),
            _ => {}
        }
    }
    scopes
}

/// The route scopes the token holds, in the route's order; `None` when the route has no scopes
/// (API Gateway passes `"scopes": null` then, and checks nothing).
pub fn matched_scopes(route_scopes: &[String], held: &[String]) -> Option<Vec<String>> {
    if route_scopes.is_empty() {
        return None;
    }
    Some(
        route_scopes
            .iter()
            .filter(|scope| held.iter().any(|h| h == *scope))
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn given_claims_of_every_json_type_then_each_renders_as_api_gateway_passes_it() {
        let claims = object(json!({
            "sub": "auth0|abc",
            "exp": 1700000000,
            "ratio": 1.5,
            "negative": -3,
            "email_verified": true,
            "blocked": false,
            "aud": ["https://api", "https://tenant/userinfo"],
            "empty": [],
            "nested": [["a", 1], {"k": "v"}],
            "org": {"name": "acme", "id": 7, "active": true},
            "gone": null,
            "scope": "read write"
        }));
        let rendered = render_claims(&claims);
        let expect = |name: &str, value: &str| assert_eq!(rendered[name], value, "claim {name}");
        expect("sub", "auth0|abc");
        expect("exp", "1700000000");
        expect("ratio", "1.5");
        expect("negative", "-3");
        expect("email_verified", "true");
        expect("blocked", "false");
        expect("aud", "[https://api https://tenant/userinfo]");
        expect("empty", "[]");
        expect("nested", "[[a 1] map[k:v]]");
        expect("org", "map[active:true id:7 name:acme]");
        expect("gone", "<nil>");
        expect("scope", "read write");
        assert_eq!(rendered.len(), claims.len());
    }

    #[test]
    fn given_a_scope_string_then_scopes_are_split_on_spaces() {
        let claims = object(json!({"scope": "read  write"}));
        assert_eq!(token_scopes(&claims), ["read", "write"]);
    }

    #[test]
    fn given_scp_as_array_or_string_then_both_forms_are_read() {
        assert_eq!(
            token_scopes(&object(json!({"scp": ["a", "b", 3]}))),
            ["a", "b"]
        );
        assert_eq!(token_scopes(&object(json!({"scp": "a b"}))), ["a", "b"]);
        assert_eq!(
            token_scopes(&object(json!({"scope": "a", "scp": ["b"]}))),
            ["a", "b"]
        );
        assert!(token_scopes(&object(json!({"scope": 7}))).is_empty());
    }

    #[test]
    fn given_route_scopes_then_only_held_ones_are_passed_on() {
        let route = vec!["write".to_string(), "admin".to_string()];
        assert_eq!(
            matched_scopes(&route, &["read".into(), "write".into()]),
            Some(vec!["write".to_string()])
        );
        assert_eq!(matched_scopes(&route, &["read".into()]), Some(vec![]));
        assert_eq!(matched_scopes(&[], &["read".into()]), None);
    }
}
