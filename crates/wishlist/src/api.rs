//! [`handle`]: one transport-free request in, one response out. Routing, the `POST` rules
//! (claims, size, validation, conditional write) and the `GET` page contract live here.

use std::collections::BTreeMap;

use serde_json::json;
use stack::SERVICE_PATH;

use crate::page::{encode_cursor, page_request};
use crate::{Item, NewItem, Store, StoreError};

/// Bodies above this size are refused with 413 before any parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One request, already decoded from its transport (Lambda event or local HTTP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    /// Query string parameters, decoded, repeated names joined with `,` (as API Gateway's
    /// `queryStringParameters`). `GET` reads `cursor` and `limit`; the rest are ignored.
    pub query: BTreeMap<String, String>,
    /// The body bytes, base64-decoded when the transport had encoded them.
    pub body: Vec<u8>,
    /// Unique per request (the Lambda invocation's request id); becomes the new item's id.
    pub request_id: String,
    /// `requestContext.authorizer.jwt.claims`, present when the route has a JWT authorizer.
    /// `None` (or no claim at all) on a `POST` is refused with 401.
    pub claims: Option<BTreeMap<String, String>>,
    /// The request time, RFC 3339. Taken from the transport so that tests are deterministic.
    pub time: String,
}

/// The response, before it is encoded for its transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ApiResponse {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        ApiResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn message(status: u16, message: impl std::fmt::Display) -> Self {
        Self::json(status, json!({ "message": message.to_string() }))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Answers one request: `GET` lists items (every item, or one page with a cursor), `POST` adds
/// one.
pub async fn handle(store: &dyn Store, request: ApiRequest) -> ApiResponse {
    if request.path != SERVICE_PATH {
        return ApiResponse::message(404, "Not Found");
    }
    match request.method.to_ascii_uppercase().as_str() {
        "GET" => list_items(store, &request.query).await,
        "POST" => create_item(store, request).await,
        _ => {
            let mut response = ApiResponse::message(
                405,
                format!(
                    "method {} is not allowed on {SERVICE_PATH}: use GET or POST",
                    request.method
                ),
            );
            response.headers.push(("allow".into(), "GET, POST".into()));
            response
        }
    }
}

/// `{"Items":[...],"Count":N}` plus `"NextCursor"` when more items exist after this page.
async fn list_items(store: &dyn Store, query: &BTreeMap<String, String>) -> ApiResponse {
    let request = match page_request(query) {
        Ok(request) => request,
        Err(err) => return ApiResponse::message(400, err),
    };
    match store.list_page(&request).await {
        Ok(page) => {
            let mut items = page.items;
            // A scan returns items in hash order; oldest first is what a reader expects. When
            // everything fits one answer, that is the whole list oldest first.
            items.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
            let count = items.len();
            let mut body = json!({ "Items": items, "Count": count });
            if let Some(after) = page.next_after {
                body["NextCursor"] = json!(encode_cursor(&after));
            }
            ApiResponse::json(200, body)
        }
        Err(err) => store_failure("listing items", err),
    }
}

async fn create_item(store: &dyn Store, request: ApiRequest) -> ApiResponse {
    // The route is behind the JWT authorizer, so API Gateway always passes claims. Without
    // any (a function URL, a route whose authorizer was removed) nobody is known: refuse
    // rather than store an anonymous item.
    if request.claims.as_ref().is_none_or(BTreeMap::is_empty) {
        return ApiResponse::message(401, "Unauthorized");
    }
    if request.body.len() > MAX_BODY_BYTES {
        return ApiResponse::message(
            413,
            format!(
                "request body is {} bytes, the limit is {MAX_BODY_BYTES} bytes",
                request.body.len()
            ),
        );
    }
    let new_item = match NewItem::from_json(&request.body) {
        Ok(item) => item,
        Err(err) => return ApiResponse::message(400, err),
    };
    if request.request_id.is_empty() {
        return ApiResponse::message(500, "request has no request id");
    }
    let created_by = request
        .claims
        .as_ref()
        .and_then(|claims| claims.get("sub"))
        .filter(|sub| !sub.is_empty())
        .cloned();
    let item: Item = new_item.into_item(request.request_id, request.time, created_by);
    match store.insert_new(&item).await {
        Ok(()) => ApiResponse::json(201, json!({ "id": item.id })),
        Err(StoreError::AlreadyExists(id)) => {
            ApiResponse::message(409, format!("an item with id {id:?} already exists"))
        }
        Err(err) => store_failure("adding an item", err),
    }
}

fn store_failure(action: &str, err: StoreError) -> ApiResponse {
    match err {
        StoreError::Unavailable(_) => ApiResponse::message(
            503,
            format!("the wish list is unavailable while {action}; retry in a moment"),
        ),
        _ => ApiResponse::message(502, format!("the wish list store failed while {action}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use serde_json::Value;

    use super::*;
    use crate::MemoryStore;

    fn request(method: &str, body: &str) -> ApiRequest {
        ApiRequest {
            method: method.into(),
            path: SERVICE_PATH.into(),
            query: BTreeMap::new(),
            body: body.as_bytes().to_vec(),
            request_id: "req-1".into(),
            claims: Some(BTreeMap::from([("iss".into(), "https://issuer/".into())])),
            time: "2026-11-25T10:00:00Z".into(),
        }
    }

    fn body(response: &ApiResponse) -> Value {
        serde_json::from_str(&response.body).unwrap()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn get_on_an_empty_list_returns_zero_items_as_json() {
        let store = MemoryStore::new();
        let response = block_on(handle(&store, request("GET", "")));
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(body(&response), json!({"Items": [], "Count": 0}));
    }

    #[test]
    fn post_then_get_returns_the_item_with_its_creator_from_the_token() {
        // GIVEN a store and a POST carrying the authorizer's claims
        let store = MemoryStore::new();
        let mut post = request("POST", r#"{"name":"Lamp","url":"https://e.com/lamp"}"#);
        post.claims = Some(BTreeMap::from([("sub".into(), "auth0|alice".into())]));
        // WHEN it is handled
        let created = block_on(handle(&store, post));
        // THEN it answers 201 with the request id as the item id, and GET lists it
        assert_eq!(created.status, 201);
        assert_eq!(body(&created), json!({"id": "req-1"}));
        let listed = body(&block_on(handle(&store, request("GET", ""))));
        assert_eq!(listed["Count"], 1);
        let item = &listed["Items"][0];
        assert_eq!(item["id"], "req-1");
        assert_eq!(item["name"], "Lamp");
        assert_eq!(item["url"], "https://e.com/lamp");
        assert_eq!(item["createdAt"], "2026-11-25T10:00:00Z");
        assert_eq!(item["createdBy"], "auth0|alice");
        assert!(item.get("description").is_none());
    }

    #[test]
    fn post_with_claims_but_no_sub_has_no_creator() {
        let store = MemoryStore::new();
        block_on(handle(&store, request("POST", r#"{"name":"Lamp"}"#)));
        let listed = body(&block_on(handle(&store, request("GET", ""))));
        assert!(listed["Items"][0].get("createdBy").is_none());
    }

    #[test]
    fn post_without_any_claims_is_refused_401_and_nothing_is_stored() {
        // GIVEN a POST that reached the handler without the authorizer (a function URL, a
        // route whose authorizer was removed): no claims at all, or an empty claim set
        let store = MemoryStore::new();
        for claims in [None, Some(BTreeMap::new())] {
            let mut post = request("POST", r#"{"name":"Lamp"}"#);
            post.claims = claims;
            // WHEN it is handled
            let response = block_on(handle(&store, post));
            // THEN it is refused and the store stays empty
            assert_eq!(response.status, 401);
            assert_eq!(body(&response), json!({"message": "Unauthorized"}));
        }
        let mut invalid = request("POST", "not json");
        invalid.claims = None;
        assert_eq!(block_on(handle(&store, invalid)).status, 401);
        let listed = body(&block_on(handle(&store, request("GET", ""))));
        assert_eq!(listed["Count"], 0);
    }

    fn get_page(store: &MemoryStore, params: &[(&str, &str)]) -> ApiResponse {
        let mut get = request("GET", "");
        get.query = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        block_on(handle(store, get))
    }

    #[test]
    fn get_with_a_limit_pages_through_every_item_once_and_the_last_page_has_no_cursor() {
        // GIVEN five items
        let store = MemoryStore::new();
        for i in 0..5 {
            let mut post = request("POST", r#"{"name":"x"}"#);
            post.request_id = format!("id-{i}");
            assert_eq!(block_on(handle(&store, post)).status, 201);
        }
        // WHEN a client follows NextCursor with limit=2
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut params = vec![("limit", "2")];
            if let Some(cursor) = &cursor {
                params.push(("cursor", cursor));
            }
            let page = body(&get_page(&store, &params));
            pages += 1;
            let items = page["Items"].as_array().unwrap();
            assert_eq!(page["Count"], items.len());
            seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
            match page.get("NextCursor") {
                Some(next) => cursor = Some(next.as_str().unwrap().to_string()),
                None => break,
            }
        }
        // THEN it saw every item exactly once in three pages (2, 2, 1)
        assert_eq!(pages, 3);
        seen.sort();
        assert_eq!(seen, ["id-0", "id-1", "id-2", "id-3", "id-4"]);
        // and a limit of exactly the item count gives one page without a cursor
        let all = body(&get_page(&store, &[("limit", "5")]));
        assert_eq!(all["Count"], 5);
        assert!(all.get("NextCursor").is_none());
    }

    #[test]
    fn invalid_cursor_or_limit_gets_400_naming_the_parameter() {
        let store = MemoryStore::new();
        for (params, starts) in [
            (vec![("limit", "0")], "limit must be"),
            (vec![("limit", "abc")], "limit must be"),
            (vec![("limit", "1001")], "limit must be"),
            (vec![("cursor", "!!")], "cursor is not valid"),
            (vec![("cursor", "")], "cursor is not valid"),
        ] {
            let response = get_page(&store, &params);
            assert_eq!(response.status, 400, "{params:?}");
            let message = body(&response)["message"].as_str().unwrap().to_string();
            assert!(message.starts_with(starts), "{message}");
        }
    }

    #[test]
    fn a_repeated_request_id_never_overwrites_an_item() {
        let store = MemoryStore::new();
        assert_eq!(
            block_on(handle(&store, request("POST", r#"{"name":"a"}"#))).status,
            201
        );
        let second = block_on(handle(&store, request("POST", r#"{"name":"b"}"#)));
        assert_eq!(second.status, 409);
        let listed = body(&block_on(handle(&store, request("GET", ""))));
        assert_eq!(listed["Items"][0]["name"], "a");
    }

    #[test]
    fn bad_bodies_get_400_with_a_message_naming_the_field() {
        let store = MemoryStore::new();
        let response = block_on(handle(&store, request("POST", r#"{"name":""}"#)));
        assert_eq!(response.status, 400);
        assert_eq!(
            body(&response),
            json!({"message": "name must not be empty"})
        );
        let response = block_on(handle(&store, request("POST", "not json")));
        assert_eq!(response.status, 400);
        assert!(body(&response)["message"]
            .as_str()
            .unwrap()
            .starts_with("request body is not valid JSON"));
    }

    #[test]
    fn bodies_over_64_kib_get_413() {
        let store = MemoryStore::new();
        let huge = format!(r#"{{"name":"{}"}}"#, "a".repeat(MAX_BODY_BYTES));
        let response = block_on(handle(&store, request("POST", &huge)));
        assert_eq!(response.status, 413);
        assert!(body(&response)["message"]
            .as_str()
            .unwrap()
            .contains("65536"));
    }

    #[test]
    fn other_methods_get_405_with_allow() {
        let store = MemoryStore::new();
        for method in ["DELETE", "PUT", "PATCH", "OPTIONS"] {
            let response = block_on(handle(&store, request(method, "")));
            assert_eq!(response.status, 405, "{method}");
            assert_eq!(response.header("allow"), Some("GET, POST"));
        }
    }

    #[test]
    fn methods_match_case_insensitively() {
        let store = MemoryStore::new();
        assert_eq!(block_on(handle(&store, request("get", ""))).status, 200);
    }

    #[test]
    fn other_paths_get_404_like_api_gateway() {
        let store = MemoryStore::new();
        let mut get = request("GET", "");
        get.path = "/wish-list-service/extra".into();
        let response = block_on(handle(&store, get));
        assert_eq!(response.status, 404);
        assert_eq!(body(&response), json!({"message": "Not Found"}));
    }

    #[test]
    fn items_are_listed_oldest_first() {
        let store = MemoryStore::new();
        for (id, time) in [
            ("b", "2026-01-02T00:00:00Z"),
            ("a", "2026-01-03T00:00:00Z"),
            ("c", "2026-01-01T00:00:00Z"),
        ] {
            let mut post = request("POST", r#"{"name":"x"}"#);
            post.request_id = id.into();
            post.time = time.into();
            assert_eq!(block_on(handle(&store, post)).status, 201);
        }
        let listed = body(&block_on(handle(&store, request("GET", ""))));
        let ids: Vec<&str> = listed["Items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["c", "b", "a"]);
    }

    struct FailingStore {
        unavailable: bool,
        wrote: AtomicBool,
    }

    #[async_trait]
    impl Store for FailingStore {
        async fn list_page(
            &self,
            _request: &crate::page::PageRequest,
        ) -> Result<crate::page::Page, StoreError> {
            Err(self.error())
        }
        async fn insert_new(&self, _item: &Item) -> Result<(), StoreError> {
            self.wrote.store(true, Ordering::SeqCst);
            Err(self.error())
        }
    }

    impl FailingStore {
        fn error(&self) -> StoreError {
            if self.unavailable {
                StoreError::Unavailable("throttled".into())
            } else {
                StoreError::Failed("boom".into())
            }
        }
    }

    #[test]
    fn store_failures_map_to_503_when_retryable_and_502_otherwise() {
        let throttled = FailingStore {
            unavailable: true,
            wrote: AtomicBool::new(false),
        };
        assert_eq!(block_on(handle(&throttled, request("GET", ""))).status, 503);
        let broken = FailingStore {
            unavailable: false,
            wrote: AtomicBool::new(false),
        };
        let response = block_on(handle(&broken, request("POST", r#"{"name":"x"}"#)));
        assert_eq!(response.status, 502);
        assert!(body(&response)["message"]
            .as_str()
            .unwrap()
            .contains("adding an item"));
    }

    #[test]
    fn invalid_bodies_never_reach_the_store() {
        let store = FailingStore {
            unavailable: false,
            wrote: AtomicBool::new(false),
        };
        block_on(handle(&store, request("POST", r#"{"name":1}"#)));
        assert!(!store.wrote.load(Ordering::SeqCst));
    }
}
