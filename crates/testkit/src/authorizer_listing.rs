//! API Gateway v2's `GetAuthorizers` (`GET /v2/apis/{apiId}/authorizers`), answered by
//! [`crate::aws_proxy::AwsProxy`] because moto cannot: moto 5 answers it with a 500, so an
//! authorizer that no route references (left by an `up` whose `CreateAuthorizer` answer was lost,
//! or killed before attaching it) is invisible to every client, and no test could see two
//! authorizers for one stack. A behaviour the proxy adds because moto lacks it, not part of the
//! timing model.
//!
//! How it is answered, as AWS answers it: `200` with `{"items": [...], "nextToken": "..."}`, each
//! item the authorizer as `GetAuthorizer` returns it (`authorizerId`, `name`, `authorizerType`,
//! `identitySource`, `jwtConfiguration`, ...), oldest first; `maxResults` (1-500) bounds a page
//! and `nextToken` (opaque, from the previous page) continues it; a page without `nextToken` is
//! the last. AWS does not document v2's default page size; the proxy uses 25 (API Gateway v1's
//! documented default) unless [`crate::aws_proxy::AwsProxy::set_authorizer_page_size`] says
//! otherwise. An unknown API is moto's own `404 NotFoundException`; a malformed `maxResults` or
//! `nextToken` a `400 BadRequestException`.
//!
//! Where the items come from: the proxy records every `CreateAuthorizer` that took effect in moto
//! (a 2xx from moto, whether or not the client got the answer: lost answers and stalls
//! included) and forgets those a `DeleteAuthorizer` or `DeleteApi` removed; each listed
//! authorizer is then read from moto with `GetAuthorizer`, so the items are moto's current
//! state, and one that moto no longer has is left out. What the proxy cannot see is not listed:
//! an authorizer created straight in moto, around the proxy.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The page size when the request gives no `maxResults`.
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// The largest `maxResults` accepted.
pub const MAX_PAGE_SIZE: usize = 500;

/// What an API Gateway request means to the authorizer listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthorizerCall {
    /// `GET /v2/apis/{api}/authorizers[?maxResults=N&nextToken=T]`
    List {
        api: String,
        max_results: Option<String>,
        next_token: Option<String>,
    },
    /// `POST /v2/apis/{api}/authorizers`
    Create { api: String },
    /// `DELETE /v2/apis/{api}/authorizers/{id}`
    Delete { api: String, id: String },
    /// `DELETE /v2/apis/{api}`
    DeleteApi { api: String },
}

impl AuthorizerCall {
    /// The call of `method` on `path_and_query` (an API Gateway v2 request), if it is one the
    /// listing cares about.
    pub(crate) fn of(method: &str, path_and_query: &str) -> Option<AuthorizerCall> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(crate::aws_call::percent_decode)
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let query_value = |name: &str| {
            query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key == name).then(|| crate::aws_call::percent_decode(value))
            })
        };
        Some(match (method, segments.as_slice()) {
            ("GET", ["v2", "apis", api, "authorizers"]) => AuthorizerCall::List {
                api: api.to_string(),
                max_results: query_value("maxResults"),
                next_token: query_value("nextToken"),
            },
            ("POST", ["v2", "apis", api, "authorizers"]) => AuthorizerCall::Create {
                api: api.to_string(),
            },
            ("DELETE", ["v2", "apis", api, "authorizers", id]) => AuthorizerCall::Delete {
                api: api.to_string(),
                id: id.to_string(),
            },
            ("DELETE", ["v2", "apis", api]) => AuthorizerCall::DeleteApi {
                api: api.to_string(),
            },
            _ => return None,
        })
    }
}

/// Why a page cannot be served (answered as `400 BadRequestException`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadPageRequest(pub String);

/// One page of an API's authorizer ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub ids: Vec<String>,
    pub next_token: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    /// Creation order across the proxy's life; the page tokens are built from it.
    next_order: u64,
    /// Per API: (creation order, authorizer id), oldest first.
    by_api: BTreeMap<String, Vec<(u64, String)>>,
    page_size: Option<usize>,
}

/// The authorizers that took effect through the proxy, per API.
#[derive(Debug, Default)]
pub(crate) struct AuthorizerRegistry {
    state: Mutex<State>,
}

impl AuthorizerRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Records what a call forwarded to moto did; `status` and `answer` are moto's.
    pub(crate) fn observe(&self, call: &AuthorizerCall, status: u16, answer: &[u8]) {
        if !(200..300).contains(&status) {
            return;
        }
        let mut state = self.lock();
        match call {
            AuthorizerCall::Create { api } => {
                let Some(id) = serde_json::from_slice::<serde_json::Value>(answer)
                    .ok()
                    .and_then(|v| v["authorizerId"].as_str().map(str::to_string))
                else {
                    return;
                };
                state.next_order += 1;
                let order = state.next_order;
                state
                    .by_api
                    .entry(api.clone())
                    .or_default()
                    .push((order, id));
            }
            AuthorizerCall::Delete { api, id } => {
                if let Some(ids) = state.by_api.get_mut(api) {
                    ids.retain(|(_, known)| known != id);
                }
            }
            AuthorizerCall::DeleteApi { api } => {
                state.by_api.remove(api);
            }
            AuthorizerCall::List { .. } => {}
        }
    }

    /// Forgets an authorizer that moto no longer has.
    pub(crate) fn forget(&self, api: &str, id: &str) {
        if let Some(ids) = self.lock().by_api.get_mut(api) {
            ids.retain(|(_, known)| known != id);
        }
    }

    /// Every (API id, authorizer id) recorded, APIs in id order, authorizers oldest first.
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        self.lock()
            .by_api
            .iter()
            .flat_map(|(api, ids)| ids.iter().map(|(_, id)| (api.clone(), id.clone())))
            .collect()
    }

    pub(crate) fn set_page_size(&self, size: Option<usize>) {
        self.lock().page_size = size.map(|s| s.clamp(1, MAX_PAGE_SIZE));
    }

    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.by_api.clear();
    }

    /// The page of `api`'s authorizer ids that `max_results` and `next_token` ask for.
    pub(crate) fn page(
        &self,
        api: &str,
        max_results: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<Page, BadPageRequest> {
        let state = self.lock();
        let size = match max_results {
            None => state.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
            Some(text) => match text.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => {
                    return Err(BadPageRequest(format!(
                        "Invalid maxResults: {text} (1-{MAX_PAGE_SIZE})"
                    )))
                }
            },
        };
        // The token is the creation order of the page's first authorizer: deleting one between
        // two pages neither repeats nor skips the others.
        let from = match next_token {
            None => 0,
            Some(token) => token
                .strip_prefix("authorizers-")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| BadPageRequest(format!("Invalid nextToken: {token}")))?,
        };
        let remaining: Vec<&(u64, String)> = state
            .by_api
            .get(api)
            .map(|ids| ids.iter().filter(|(order, _)| *order >= from).collect())
            .unwrap_or_default();
        Ok(Page {
            ids: remaining
                .iter()
                .take(size)
                .map(|(_, id)| id.clone())
                .collect(),
            next_token: remaining
                .get(size)
                .map(|(order, _)| format!("authorizers-{order}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(registry: &AuthorizerRegistry, api: &str, id: &str) {
        registry.observe(
            &AuthorizerCall::Create {
                api: api.to_string(),
            },
            201,
            format!(r#"{{"authorizerId":"{id}","name":"n"}}"#).as_bytes(),
        );
    }

    #[test]
    fn requests_are_told_apart_by_method_and_path() {
        assert_eq!(
            AuthorizerCall::of(
                "GET",
                "/v2/apis/a1/authorizers?maxResults=2&nextToken=x%2By"
            ),
            Some(AuthorizerCall::List {
                api: "a1".into(),
                max_results: Some("2".into()),
                next_token: Some("x+y".into()),
            })
        );
        assert_eq!(
            AuthorizerCall::of("POST", "/v2/apis/a1/authorizers"),
            Some(AuthorizerCall::Create { api: "a1".into() })
        );
        assert_eq!(
            AuthorizerCall::of("DELETE", "/v2/apis/a1/authorizers/z9"),
            Some(AuthorizerCall::Delete {
                api: "a1".into(),
                id: "z9".into()
            })
        );
        assert_eq!(
            AuthorizerCall::of("DELETE", "/v2/apis/a1"),
            Some(AuthorizerCall::DeleteApi { api: "a1".into() })
        );
        assert_eq!(
            AuthorizerCall::of("GET", "/v2/apis/a1/authorizers/z9"),
            None
        );
        assert_eq!(AuthorizerCall::of("GET", "/v2/apis/a1/routes"), None);
    }

    #[test]
    fn only_creates_and_deletes_that_took_effect_count() {
        let registry = AuthorizerRegistry::default();
        created(&registry, "a1", "z1");
        created(&registry, "a1", "z2");
        created(&registry, "a2", "y1");
        // A refused create (throttled, 5xx) took no effect.
        registry.observe(
            &AuthorizerCall::Create { api: "a1".into() },
            429,
            br#"{"authorizerId":"never"}"#,
        );
        registry.observe(
            &AuthorizerCall::Delete {
                api: "a1".into(),
                id: "z1".into(),
            },
            204,
            b"",
        );
        assert_eq!(
            registry.all(),
            [("a1".into(), "z2".into()), ("a2".into(), "y1".into())]
        );
        registry.observe(&AuthorizerCall::DeleteApi { api: "a2".into() }, 204, b"");
        assert_eq!(registry.all(), [("a1".to_string(), "z2".to_string())]);
    }

    #[test]
    fn pages_follow_the_token_to_the_end_without_repeating_or_skipping() {
        let registry = AuthorizerRegistry::default();
        for id in ["z1", "z2", "z3", "z4", "z5"] {
            created(&registry, "a1", id);
        }
        let first = registry.page("a1", Some("2"), None).unwrap();
        assert_eq!(first.ids, ["z1", "z2"]);
        // One of the next page is deleted between the two requests.
        registry.forget("a1", "z3");
        let second = registry
            .page("a1", Some("2"), first.next_token.as_deref())
            .unwrap();
        assert_eq!(second.ids, ["z4", "z5"]);
        assert_eq!(second.next_token, None);
        assert_eq!(
            registry.page("a1", None, None).unwrap().ids,
            ["z1", "z2", "z4", "z5"]
        );
        registry.set_page_size(Some(3));
        assert_eq!(registry.page("a1", None, None).unwrap().ids.len(), 3);
        assert!(registry.page("a1", Some("0"), None).is_err());
        assert!(registry.page("a1", Some("501"), None).is_err());
        assert!(registry.page("a1", None, Some("bogus")).is_err());
        assert_eq!(
            registry.page("unknown", None, None).unwrap(),
            Page {
                ids: Vec::new(),
                next_token: None
            }
        );
    }
}
