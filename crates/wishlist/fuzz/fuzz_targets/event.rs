//! Any JSON document as the Lambda Runtime API would deliver it: decoding it into a request and
//! answering it never panics, and the answer is always a status with a JSON body.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use wishlist::MemoryStore;

fuzz_target!(|data: &[u8]| {
    // The runtime hands the function only documents that parse as JSON.
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let store = MemoryStore::new();
    let answer = common::block_on(wishlist::event::answer(&store, &event, Some("fuzz-1")));
    common::check_answer(&answer.response);
    // Whatever was answered, a GET afterwards still works and lists at most that one item.
    let get = serde_json::json!({
        "version": "2.0", "routeKey": "GET /wish-list-service", "rawPath": "/wish-list-service",
        "requestContext": {"http": {"method": "GET"}, "requestId": "fuzz-2", "timeEpoch": 1}
    });
    let listed = common::block_on(wishlist::event::answer(&store, &get, Some("fuzz-2")));
    assert_eq!(listed.response.status_code, 200);
    let body: serde_json::Value = serde_json::from_str(&listed.response.body).expect("JSON");
    let count = body["Count"].as_u64().expect("Count");
    assert!(count <= 1);
    if count == 1 {
        assert_eq!(answer.response.status_code, 201, "only a 201 stores an item");
    }
});
