//! Arbitrary bytes where a client controls them inside a well-formed event: the POST body (as
//! text or base64, valid or not) and the GET query string. Validation either stores exactly
//! the item sent (201, then listed unchanged) or refuses it with a 4xx and stores nothing.

#![no_main]

mod common;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use wishlist::MemoryStore;

fn event(method: &str, query: &str, body: Option<(&str, bool)>) -> Value {
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} /wish-list-service"),
        "rawPath": "/wish-list-service",
        "rawQueryString": query,
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "authorizer": {"jwt": {"claims": {"sub": "fuzz|user"}, "scopes": null}},
            "http": {"method": method, "path": "/wish-list-service"},
            "requestId": "fuzz", "timeEpoch": 1_795_600_800_000i64
        },
        "isBase64Encoded": false
    });
    if let Some((body, encoded)) = body {
        event["body"] = json!(body);
        event["isBase64Encoded"] = json!(encoded);
    }
    event
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let store = MemoryStore::new();
    let text = String::from_utf8_lossy(rest);
    let post = match mode % 4 {
        // The body as text.
        0 => event("POST", "", Some((&text, false))),
        // The bytes base64-encoded, as API Gateway sends binary bodies.
        1 => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(rest);
            event("POST", "", Some((&encoded, true)))
        }
        // The text claimed to be base64 (mostly invalid).
        2 => event("POST", "", Some((&text, true))),
        // The query string of a GET.
        _ => {
            let answer = common::block_on(wishlist::event::answer(
                &store,
                &event("GET", &text, None),
                Some("fuzz"),
            ));
            common::check_answer(&answer.response);
            assert!(matches!(answer.response.status_code, 200 | 400));
            return;
        }
    };
    let answer = common::block_on(wishlist::event::answer(&store, &post, Some("fuzz")));
    common::check_answer(&answer.response);
    let items = common::block_on(wishlist::Store::list_items(&store)).expect("memory store");
    match answer.response.status_code {
        201 => {
            assert_eq!(items.len(), 1);
            // What was stored is what the body said.
            let sent: Option<Value> = match mode % 4 {
                0 => serde_json::from_str(&text).ok(),
                1 => serde_json::from_slice(rest).ok(),
                _ => None,
            };
            if let Some(sent) = sent {
                assert_eq!(json!(items[0].name), sent["name"]);
                assert_eq!(json!(items[0].description), sent.get("description").cloned().unwrap_or(Value::Null));
                assert_eq!(json!(items[0].url), sent.get("url").cloned().unwrap_or(Value::Null));
            } else {
                assert!(mode % 4 == 2, "a 201 body must be JSON");
            }
            assert_eq!(items[0].created_by.as_deref(), Some("fuzz|user"));
        }
        400 | 413 => assert!(items.is_empty(), "a refused body stored an item"),
        other => panic!("unexpected status {other} for a POST"),
    }
});
