//! One request path: the same events give the same answer through the real `bootstrap`
//! (Runtime API emulator, in-memory store) and through `wishctl dev`'s event path (the event
//! `devserver::event::build_event` makes from an HTTP request, answered by
//! `wishlist::event::handle_event`, exactly as the dev server does), for good and bad requests.
//!
//! Both sides get the same request ids and times, so the answers must be byte for byte equal:
//! status, headers and body.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::time::Duration;

use devserver::event::{build_event, EventContext, RequestParts};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use testkit::runtime::RuntimeEmulator;
use wishlist::event::{HttpApiEvent, HttpApiResponse};
use wishlist::MemoryStore;

const TIMEOUT: Duration = Duration::from_secs(20);

/// One HTTP request as `wishctl dev` receives it, after its router and authorizer.
struct DevRequest {
    method: &'static str,
    path: &'static str,
    query: Option<String>,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    /// The route key the dev router matched (`$default` for no route of ours).
    route_key: &'static str,
    /// The authorizer's result for JWT routes; `None` when it let the request through without
    /// one (as a function URL or a route without authorizer would).
    sub: Option<&'static str>,
}

fn request(method: &'static str, body: &str, sub: Option<&'static str>) -> DevRequest {
    DevRequest {
        method,
        path: "/wish-list-service",
        query: None,
        headers: vec![
            ("content-type", "application/json"),
            ("host", "127.0.0.1:3000"),
        ],
        body: body.as_bytes().to_vec(),
        route_key: match method {
            "GET" => "GET /wish-list-service",
            "POST" => "POST /wish-list-service",
            _ => "$default",
        },
        sub,
    }
}

fn to_event(request: &DevRequest, request_id: &str, n: i64) -> HttpApiEvent {
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    let jwt = request.sub.map(|sub| authorizer::Authorization {
        claims: BTreeMap::from([
            ("sub".to_string(), sub.to_string()),
            ("aud".to_string(), "wishctl-dev".to_string()),
        ]),
        scopes: None,
    });
    build_event(
        &RequestParts {
            method: request.method,
            path: request.path,
            query: request.query.as_deref(),
            version: http::Version::HTTP_11,
            headers: &headers,
        },
        &request.body,
        &EventContext {
            route_key: request.route_key,
            request_id,
            time_epoch_ms: 1_795_600_800_000 + n * 1000,
            source: "127.0.0.1:50000".parse().unwrap(),
            local_port: 3000,
            jwt: jwt.as_ref(),
        },
    )
}

struct BothPaths {
    emulator: RuntimeEmulator,
    _child: tokio::process::Child,
    dev_store: MemoryStore,
    next: i64,
}

impl BothPaths {
    async fn start() -> BothPaths {
        let emulator = RuntimeEmulator::start().await.unwrap();
        let child = emulator
            .spawn_function(
                std::path::Path::new(env!("CARGO_BIN_EXE_bootstrap")),
                &[("WISHLIST_STORE", "memory".to_string())],
            )
            .unwrap();
        BothPaths {
            emulator,
            _child: child,
            dev_store: MemoryStore::new(),
            next: 0,
        }
    }

    fn request_id(&mut self) -> (String, i64) {
        self.next += 1;
        (
            format!("00000000-0000-4000-8000-{:012}", self.next),
            self.next,
        )
    }

    /// The event through both paths; both answers, asserted equal.
    async fn same_answer(
        &mut self,
        label: &str,
        event: Value,
        request_id: &str,
    ) -> HttpApiResponse {
        let lambda = self
            .emulator
            .invoke_with_id(request_id, event.clone(), TIMEOUT)
            .await
            .unwrap_or_else(|err| panic!("{label}: {err}"))
            .response();
        let lambda: HttpApiResponse = serde_json::from_value(lambda).unwrap();
        let dev = match serde_json::from_value::<HttpApiEvent>(event.clone()) {
            // What the dev server does with the event it built.
            Ok(typed) => wishlist::event::handle_event(&self.dev_store, &typed).await,
            // Events the dev server cannot build (wrong types): the conversion underneath.
            Err(_) => {
                wishlist::event::answer(&self.dev_store, &event, Some(request_id))
                    .await
                    .response
            }
        };
        assert_eq!(lambda, dev, "{label}: bootstrap and wishctl dev differ");
        lambda
    }

    async fn http(&mut self, label: &str, request: DevRequest) -> HttpApiResponse {
        let (id, n) = self.request_id();
        let event = serde_json::to_value(to_event(&request, &id, n)).unwrap();
        self.same_answer(label, event, &id).await
    }

    async fn raw(&mut self, label: &str, edit: impl FnOnce(&mut Value)) -> HttpApiResponse {
        let (id, n) = self.request_id();
        let mut event = serde_json::to_value(to_event(
            &request("POST", r#"{"name":"x"}"#, Some("u")),
            &id,
            n,
        ))
        .unwrap();
        edit(&mut event);
        self.same_answer(label, event, &id).await
    }
}

/// A change that makes a good event malformed.
type EventEdit = Box<dyn FnOnce(&mut Value)>;

fn body(response: &HttpApiResponse) -> Value {
    serde_json::from_str(&response.body).unwrap()
}

#[tokio::test]
async fn the_same_events_get_the_same_answers_from_bootstrap_and_wishctl_dev() {
    let mut both = BothPaths::start().await;
    let status = |r: &HttpApiResponse| r.status_code;

    let r = both.http("empty GET", request("GET", "", None)).await;
    assert_eq!(
        (status(&r), body(&r)),
        (200, json!({"Items": [], "Count": 0}))
    );

    for i in 0..5 {
        let post = request(
            "POST",
            &format!(r#"{{"name":"item {i}","url":"https://e.com/{i}"}}"#),
            Some("auth0|alice"),
        );
        assert_eq!(status(&both.http("good POST", post).await), 201);
    }
    let mut binary = request("POST", "", Some("auth0|bob"));
    binary.headers = vec![("content-type", "application/octet-stream")];
    binary.body = br#"{"name":"sent as bytes"}"#.to_vec();
    let r = both.http("base64-encoded POST", binary).await;
    assert_eq!(status(&r), 201, "{}", r.body);

    let mut form = request("POST", "", Some("auth0|bob"));
    form.headers = vec![("content-type", "application/x-www-form-urlencoded")];
    form.body = b"name=x".to_vec();
    assert_eq!(status(&both.http("form POST", form).await), 400);

    let r = both
        .http(
            "POST without claims",
            request("POST", r#"{"name":"anon"}"#, None),
        )
        .await;
    assert_eq!(status(&r), 401);
    for (label, text, expected) in [
        ("invalid JSON", "{nope", 400),
        (
            "unknown field",
            r#"{"name":"x","createdBy":"mallory"}"#,
            400,
        ),
        (
            "name too long",
            format!(r#"{{"name":"{}"}}"#, "n".repeat(201)).as_str(),
            400,
        ),
        (
            "bad url",
            r#"{"name":"x","url":"javascript:alert(1)"}"#,
            400,
        ),
        ("no body", "", 400),
        (
            "huge body",
            format!(r#"{{"name":"{}"}}"#, "n".repeat(70_000)).as_str(),
            413,
        ),
    ] {
        let r = both
            .http(label, request("POST", text, Some("auth0|alice")))
            .await;
        assert_eq!(status(&r), expected, "{label}");
    }
    for method in ["DELETE", "PUT", "PATCH", "OPTIONS"] {
        let r = both.http(method, request(method, "", None)).await;
        assert_eq!(status(&r), 405, "{method}");
    }
    let mut other = request("GET", "", None);
    other.route_key = "$default";
    other.path = "/wish-list-service/extra";
    assert_eq!(status(&both.http("other path", other).await), 404);

    // Pagination: 6 items, pages of 4 then 2.
    let mut first = request("GET", "", None);
    first.query = Some("limit=4".into());
    let page = both.http("first page", first).await;
    let page = body(&page);
    assert_eq!(page["Count"], 4);
    let cursor = page["NextCursor"].as_str().unwrap().to_string();
    let mut second = request("GET", "", None);
    second.query = Some(format!("limit=4&cursor={cursor}"));
    let last = body(&both.http("last page", second).await);
    assert_eq!(last["Count"], 2);
    assert!(last.get("NextCursor").is_none());
    for query in [
        "limit=0",
        "limit=x",
        "limit=4&limit=5",
        "cursor=zz!",
        "cursor=",
    ] {
        let mut bad = request("GET", "", None);
        bad.query = Some(query.into());
        assert_eq!(status(&both.http(query, bad).await), 400, "{query}");
    }
    let everything = body(&both.http("full GET", request("GET", "", None)).await);
    assert_eq!(everything["Count"], 6);
    assert!(everything.get("NextCursor").is_none());

    // Events API Gateway would never send, decoded by the same code on both sides.
    let broken_base64 = |e: &mut Value| {
        e["isBase64Encoded"] = json!(true);
        e["body"] = json!("eyJuYW1lIjoi%%%");
    };
    assert_eq!(status(&both.raw("broken base64", broken_base64).await), 400);
    let checks: Vec<(&str, EventEdit)> = vec![
        (
            "no requestContext",
            Box::new(|e: &mut Value| {
                e.as_object_mut().unwrap().remove("requestContext");
            }),
        ),
        (
            "method of the wrong type",
            Box::new(|e: &mut Value| e["requestContext"]["http"]["method"] = json!(5)),
        ),
        (
            "body of the wrong type",
            Box::new(|e: &mut Value| e["body"] = json!({"name": "x"})),
        ),
        (
            "payload 1.0",
            Box::new(|e: &mut Value| e["version"] = json!("1.0")),
        ),
        (
            "empty claims",
            Box::new(|e: &mut Value| {
                e["requestContext"]["authorizer"]["jwt"]["claims"] = json!({})
            }),
        ),
    ];
    for (label, edit) in checks {
        let r = both.raw(label, edit).await;
        assert!((400..500).contains(&status(&r)), "{label}: {}", r.body);
    }

    // Headers the API does not read cannot break it, whatever their shape.
    let odd = both
        .raw("odd headers", |e| {
            e["headers"] = json!({"x": [1], "": null, "n": 5})
        })
        .await;
    assert_eq!(status(&odd), 201, "{}", odd.body);

    // Nothing a refused request carried was stored: the six good items and the last one.
    let everything = body(&both.http("final GET", request("GET", "", None)).await);
    assert_eq!(everything["Count"], 7);
    let base64_item = everything["Items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "sent as bytes")
        .unwrap();
    assert_eq!(base64_item["createdBy"], "auth0|bob");
}
