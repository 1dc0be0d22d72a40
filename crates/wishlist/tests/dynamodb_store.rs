//! The DynamoDB store against a real DynamoDB wire endpoint (moto's server mode).

use std::collections::HashSet;
use std::time::Duration;

use testkit::aws_proxy::{AwsProxy, ModelSettings};
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

/// A store on `session`'s table whose DynamoDB answers every call `latency` late (the test
/// proxy in front of moto), with scan pages of `page_size` items and a page time budget of
/// `budget`. The proxy lives as long as the store is used.
async fn slow_store(
    session: &MotoSession,
    latency: Duration,
    page_size: i32,
    budget: Duration,
) -> (DynamoStore, AwsProxy) {
    let proxy = AwsProxy::start(session.endpoint(), ModelSettings::latency_only(latency))
        .await
        .expect("proxy");
    let config = session
        .sdk_config()
        .await
        .into_builder()
        .endpoint_url(proxy.endpoint())
        .build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), TABLE)
        .with_page_size(page_size)
        .with_page_time_budget(budget);
    (store, proxy)
}

#[tokio::test]
async fn a_slow_dynamodb_gets_a_partial_page_with_a_cursor_and_nothing_is_lost_or_repeated() {
    // GIVEN 20 items, scan pages of 2 items, a DynamoDB that answers each call at least 400 ms
    // late, and a page time budget of 2 s: at most 4 Scans (8 items) fit one page
    let session = MotoServer::shared().session().await;
    let fast = store_with_table(&session).await;
    for i in 0..20 {
        fast.insert_new(&item(&format!("id-{i:02}")))
            .await
            .expect("put");
    }
    let (store, proxy) = slow_store(
        &session,
        Duration::from_millis(400),
        2,
        Duration::from_secs(2),
    )
    .await;

    // WHEN a client asks for every item (no limit) and follows the cursors
    let mut request = PageRequest::first();
    let (mut seen, mut pages) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let page = match store.list_page(&request).await {
            Ok(page) => page,
            // a page with no item read in time (a very busy machine): the client retries
            Err(StoreError::Unavailable(_)) => continue,
            Err(err) => panic!("{err:?}"),
        };
        pages.push(page.items.len());
        seen.extend(page.items.iter().map(|i| i.id.clone()));
        match page.next_after {
            Some(after) => request.after = Some(after),
            None => break,
        }
    }

    // THEN the first answer was a partial page with a cursor (the size budget alone would
    // have taken all 20), and following the cursors gave every item exactly once
    assert!(pages.len() > 1 && pages[0] < 20, "pages: {pages:?}");
    assert!(pages[0] <= 8, "pages: {pages:?}");
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!((seen.len(), unique.len()), (20, 20), "{seen:?}");
    assert!(
        proxy.records().len() >= 10,
        "every Scan went through the slow endpoint"
    );
}

#[tokio::test]
async fn a_dynamodb_too_slow_for_one_item_in_the_page_budget_is_a_503_saying_to_retry() {
    // GIVEN items, and a DynamoDB that answers each call at least 500 ms late while a page
    // may spend 100 ms
    let session = MotoServer::shared().session().await;
    let fast = store_with_table(&session).await;
    fast.insert_new(&item("only")).await.expect("put");
    let (store, _proxy) = slow_store(
        &session,
        Duration::from_millis(500),
        2,
        Duration::from_millis(100),
    )
    .await;

    // WHEN a client GETs
    let response = handle(
        &store,
        ApiRequest {
            method: "GET".into(),
            path: "/wish-list-service".into(),
            ..ApiRequest::default()
        },
    )
    .await;

    // THEN the answer is a 503 JSON error saying to retry, not a hang or an empty list
    assert_eq!(response.status, 503, "{}", response.body);
    assert!(response.body.contains("retry"), "{}", response.body);
    let err = store
        .list_page(&PageRequest::first())
        .await
        .expect_err("no item in time");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}
