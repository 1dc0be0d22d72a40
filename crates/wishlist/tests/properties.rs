//! Properties of the API over generated input (proptest): every accepted item comes back
//! unchanged from both stores (in memory, and DynamoDB through moto with the `dynamodb`
//! feature); every rejected body gets a 400 naming the field, and nothing is stored.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use wishlist::{handle, ApiRequest, Item, MemoryStore, Store};

const TIME: &str = "2026-11-25T10:00:00.000Z";

fn any_text(chars: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    // Any Unicode scalar value, control characters, quotes and backslashes included.
    prop::collection::vec(any::<char>(), chars).prop_map(String::from_iter)
}

fn valid_url() -> impl Strategy<Value = String> {
    "https?://[a-z][a-z0-9-]{0,20}\\.[a-z]{2,6}(:[1-9][0-9]{1,3})?(/[A-Za-z0-9._~%-]{0,30}){0,4}(\\?[a-z]{1,8}=[A-Za-z0-9]{0,12})?"
}

/// An accepted body's fields: name, description, url, and whether absent fields are sent as null.
fn accepted() -> impl Strategy<Value = (String, Option<String>, Option<String>, bool)> {
    (
        any_text(1..=200).prop_filter("name must not be blank", |n| !n.trim().is_empty()),
        prop::option::of(any_text(0..=2000)),
        prop::option::of(valid_url()),
        any::<bool>(),
    )
}

fn body_of(name: &str, description: &Option<String>, url: &Option<String>, nulls: bool) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("name".into(), json!(name));
    for (key, value) in [("description", description), ("url", url)] {
        match value {
            Some(value) => {
                body.insert(key.into(), json!(value));
            }
            None if nulls => {
                body.insert(key.into(), Value::Null);
            }
            None => {}
        }
    }
    serde_json::to_vec(&Value::Object(body)).unwrap()
}

fn post(id: &str, body: Vec<u8>, sub: &str) -> ApiRequest {
    ApiRequest {
        method: "POST".into(),
        path: stack::SERVICE_PATH.into(),
        body,
        request_id: id.into(),
        claims: Some(BTreeMap::from([("sub".to_string(), sub.to_string())])),
        time: TIME.into(),
        ..ApiRequest::default()
    }
}

/// Every item the API lists, following `NextCursor` with pages of `limit`.
async fn list_through_the_api(store: &dyn Store, limit: usize) -> Vec<Item> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut query = BTreeMap::from([("limit".to_string(), limit.to_string())]);
        if let Some(cursor) = &cursor {
            query.insert("cursor".into(), cursor.clone());
        }
        let get = ApiRequest {
            method: "GET".into(),
            path: stack::SERVICE_PATH.into(),
            query,
            ..ApiRequest::default()
        };
        let response = handle(store, get).await;
        assert_eq!(response.status, 200, "{}", response.body);
        let page: Value = serde_json::from_str(&response.body).unwrap();
        for item in page["Items"].as_array().unwrap() {
            items.push(serde_json::from_value(item.clone()).unwrap());
        }
        match page.get("NextCursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
    }
    panic!("pagination does not end");
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// POSTs the item, then finds it through paged GETs: it must be exactly what was sent.
async fn round_trip(
    store: &dyn Store,
    (name, description, url, nulls): (String, Option<String>, Option<String>, bool),
    sub: String,
) {
    let id = format!("prop-{:06}", NEXT_ID.fetch_add(1, Ordering::SeqCst));
    let created = handle(
        store,
        post(&id, body_of(&name, &description, &url, nulls), &sub),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        serde_json::from_str::<Value>(&created.body).unwrap(),
        json!({ "id": id })
    );
    let expected = Item {
        id: id.clone(),
        name,
        description,
        url,
        created_at: Some(TIME.into()),
        created_by: Some(sub),
    };
    let listed = list_through_the_api(store, 7).await;
    let found: Vec<&Item> = listed.iter().filter(|item| item.id == id).collect();
    assert_eq!(found, [&expected]);
    // The store itself holds the same item.
    let stored = store.list_items().await.unwrap();
    assert!(stored.contains(&expected));
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A body that breaks one rule, and the field the answer must name.
fn rejected() -> impl Strategy<Value = (Value, String)> {
    let not_a_string = prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(json!([])),
        Just(json!({"a": 1})),
    ]
    .boxed();
    let with = |field: &'static str| {
        move |value: Value| {
            let mut body = Map::new();
            if field != "name" {
                body.insert("name".into(), json!("x"));
            }
            body.insert(field.into(), value);
            (Value::Object(body), field.to_string())
        }
    };
    let unknown = "[A-Za-z_][A-Za-z0-9_]{0,11}"
        .prop_filter("a known field", |k| {
            !matches!(k.as_str(), "name" | "description" | "url")
        })
        .prop_map(|key| {
            let mut body = Map::new();
            body.insert("name".into(), json!("x"));
            body.insert(key.clone(), json!("v"));
            (Value::Object(body), key)
        });
    prop::strategy::Union::new(vec![
        any_text(201..=260)
            .prop_map(move |n| with("name")(json!(n)))
            .boxed(),
        not_a_string.clone().prop_map(with("name")).boxed(),
        "[ \t\n\r]{0,10}"
            .prop_map(move |n| with("name")(json!(n)))
            .boxed(),
        Just((json!({"description": "d"}), "name".to_string())).boxed(),
        any_text(2001..=2100)
            .prop_map(move |d| with("description")(json!(d)))
            .boxed(),
        not_a_string.clone().prop_map(with("description")).boxed(),
        "[a-z]{0,20}(\\.[a-z]{2,3})?|(ftp|file|javascript|mailto|data):[a-z/]{1,20}"
            .prop_map(move |u| with("url")(json!(u)))
            .boxed(),
        "[a-z]{2049,2100}"
            .prop_map(move |p| with("url")(json!(format!("https://e.com/{p}"))))
            .boxed(),
        not_a_string.prop_map(with("url")).boxed(),
        unknown.boxed(),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_accepted_item_round_trips_through_the_memory_store(
        fields in accepted(),
        sub in "[A-Za-z0-9|@._-]{1,40}",
    ) {
        let store = MemoryStore::new();
        block_on(round_trip(&store, fields, sub));
    }

    #[test]
    fn every_rejected_body_gets_400_naming_the_field_and_stores_nothing(
        (body, field) in rejected(),
    ) {
        let store = MemoryStore::new();
        let response = block_on(handle(&store, post("id", serde_json::to_vec(&body).unwrap(), "u")));
        prop_assert_eq!(response.status, 400, "{}", response.body);
        let message: Value = serde_json::from_str(&response.body).unwrap();
        let message = message["message"].as_str().unwrap();
        // Named as the subject ("name must be ...") or quoted ("unknown field \"k\""), not merely
        // somewhere in the text: a one-letter unknown key would be found in any message.
        let quoted = format!("{field:?}");
        prop_assert!(
            message.starts_with(&format!("{field} ")) || message.contains(&quoted),
            "{:?} does not name {:?}", message, field
        );
        prop_assert!(block_on(store.list_items()).unwrap().is_empty());
    }
}

#[cfg(feature = "dynamodb")]
mod dynamodb {
    use super::*;
    use testkit::moto::MotoServer;
    use wishlist::DynamoStore;

    #[test]
    fn every_accepted_item_round_trips_through_dynamodb_unchanged() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let session = runtime.block_on(MotoServer::shared().session());
        let store = runtime.block_on(async {
            let config = session.sdk_config().await;
            let store =
                DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), "wishctl-prop-items");
            store.create_table_if_missing().await.unwrap();
            // Small scan pages, so cursors resume inside and across DynamoDB pages.
            store.with_page_size(5)
        });
        // Bounded: each case is a PutItem and a few Scans against moto.
        let config = ProptestConfig {
            cases: 48,
            ..ProptestConfig::default()
        };
        let mut runner = proptest::test_runner::TestRunner::new(config);
        runner
            .run(&(accepted(), "[A-Za-z0-9|@._-]{1,40}"), |(fields, sub)| {
                runtime.block_on(round_trip(&store, fields, sub));
                Ok(())
            })
            .unwrap();
        drop(session);
    }
}
