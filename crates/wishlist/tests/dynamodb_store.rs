//! The DynamoDB store against a real DynamoDB wire endpoint (moto's server mode).

use std::collections::HashSet;

use testkit::moto::{MotoServer, MotoSession};
use wishlist::{handle, ApiRequest, DynamoStore, Item, PageRequest, Store, StoreError};

const TABLE: &str = "wishctl-test-items";

async fn store_with_table(session: &MotoSession) -> DynamoStore {
    let config = session.sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), TABLE);
    assert!(store
        .create_table_if_missing()
        .await
        .expect("creating table"));
    store
}

fn item(id: &str) -> Item {
    Item {
        id: id.into(),
        name: format!("item {id}"),
        description: Some("d".into()),
        url: Some("https://example.com/x".into()),
        created_at: Some("2026-11-25T10:00:00.000Z".into()),
        created_by: Some("auth0|tester".into()),
    }
}

#[tokio::test]
async fn listing_follows_last_evaluated_key_past_the_first_page() {
    // GIVEN 25 items and a scan page of 10 items
    let session = MotoServer::shared().session().await;
    let store = store_with_table(&session).await.with_page_size(10);
    for i in 0..25 {
        store
            .insert_new(&item(&format!("id-{i:02}")))
            .await
            .expect("put");
    }
    // WHEN every item is listed
    let items = store.list_items().await.expect("scan");
    // THEN all 25 come back, each once, with every attribute
    assert_eq!(items.len(), 25);
    let ids: HashSet<_> = items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(ids.len(), 25);
    let first = items.iter().find(|i| i.id == "id-00").expect("id-00");
    assert_eq!(first, &item("id-00"));
}

#[tokio::test]
async fn insert_is_conditional_and_never_overwrites() {
    let session = MotoServer::shared().session().await;
    let store = store_with_table(&session).await;
    store.insert_new(&item("same")).await.expect("first put");
    let mut other = item("same");
    other.name = "overwritten?".into();
    let err = store
        .insert_new(&other)
        .await
        .expect_err("second put must fail");
    assert!(matches!(err, StoreError::AlreadyExists(id) if id == "same"));
    let items = store.list_items().await.expect("scan");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].name, "item same");
}

#[tokio::test]
async fn create_table_if_missing_is_idempotent() {
    let session = MotoServer::shared().session().await;
    let store = store_with_table(&session).await;
    assert!(!store
        .create_table_if_missing()
        .await
        .expect("second create"));
}

#[tokio::test]
async fn a_missing_table_is_a_502_not_a_panic() {
    let session = MotoServer::shared().session().await;
    let config = session.sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), "no-such-table");
    let response = handle(
        &store,
        ApiRequest {
            method: "GET".into(),
            path: "/wish-list-service".into(),
            ..ApiRequest::default()
        },
    )
    .await;
    assert_eq!(response.status, 502);
    assert!(response.body.contains("listing items"), "{}", response.body);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_503() {
    // Nothing listens on this port: the SDK's dispatch failure is retryable, so 503.
    let port = testkit::moto::free_port();
    let config = testkit::moto::sdk_config_for(&format!("http://127.0.0.1:{port}")).await;
    let config = config
        .into_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), TABLE);
    let err = store.list_items().await.expect_err("no server");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn pages_resume_from_the_cursor_inside_and_across_scan_pages() {
    // GIVEN 23 items and scan pages of 4 items
    let session = MotoServer::shared().session().await;
    let store = store_with_table(&session).await.with_page_size(4);
    for i in 0..23 {
        store
            .insert_new(&item(&format!("id-{i:02}")))
            .await
            .expect("put");
    }
    for limit in [1, 3, 4, 5, 22, 23, 1000] {
        // WHEN pages of `limit` are followed from the start
        let mut request = PageRequest {
            limit,
            ..PageRequest::first()
        };
        let (mut seen, mut pages) = (Vec::new(), 0);
        loop {
            let page = store.list_page(&request).await.expect("page");
            pages += 1;
            assert!(page.items.len() <= limit);
            seen.extend(page.items.iter().map(|i| i.id.clone()));
            match page.next_after {
                Some(after) => {
                    // a cursor is only given when more items follow: the page was full
                    assert_eq!(page.items.len(), limit);
                    request.after = Some(after);
                }
                None => break,
            }
        }
        // THEN every item comes back exactly once, in ceil(23 / limit) pages
        assert_eq!(pages, 23_usize.div_ceil(limit), "limit {limit}");
        let unique: HashSet<_> = seen.iter().cloned().collect();
        assert_eq!((seen.len(), unique.len()), (23, 23), "limit {limit}");
    }
}

#[tokio::test]
async fn open_local_creates_the_table_once_on_a_local_endpoint() {
    let session = MotoServer::shared().session().await;
    let (store, created) = DynamoStore::open_local(session.endpoint(), "wishctl-dev-items")
        .await
        .expect("open");
    assert!(created);
    assert_eq!(store.table(), "wishctl-dev-items");
    store.insert_new(&item("local")).await.expect("put");
    let (again, created) = DynamoStore::open_local(session.endpoint(), "wishctl-dev-items")
        .await
        .expect("reopen");
    assert!(!created);
    assert_eq!(again.list_items().await.expect("scan"), vec![item("local")]);
}
