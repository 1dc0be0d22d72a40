//! `bootstrap`: the wish-list Lambda for `provided.al2023`.
//!
//! Reads `TABLE_NAME`, builds the DynamoDB client once per process, and serves API Gateway
//! payload 2.0 events with `lambda_http`.

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use wishlist::{DynamoStore, MemoryStore, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_logging();
    let store = match build_store().await {
        Ok(store) => store,
        Err(message) => {
            tracing::error!(message);
            handler::report_init_error(message).await;
            return Err(message.into());
        }
    };
    lambda_http::run(service_fn(move |request: Request| {
        let store = Arc::clone(&store);
        async move { Ok::<_, Error>(handler::respond(store.as_ref(), request).await) }
    }))
    .await
}

/// The store, built once per process: the DynamoDB table named by `TABLE_NAME`, or, with
/// `WISHLIST_STORE=memory`, items kept in this process (local runs and benchmarks only: a
/// Lambda's memory is per instance and lost on recycle).
async fn build_store() -> Result<Arc<dyn Store>, &'static str> {
    if std::env::var("WISHLIST_STORE").as_deref() == Ok("memory") {
        return Ok(Arc::new(MemoryStore::new()));
    }
    let Some(table) = std::env::var("TABLE_NAME").ok().filter(|t| !t.is_empty()) else {
        return Err(
            "TABLE_NAME is not set: set it to the wish-list DynamoDB table \
                    (wishctl up sets it on the function)",
        );
    };
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Ok(Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        table,
    )))
}

/// JSON lines for CloudWatch: no timestamp (CloudWatch adds one), no target, one object per event.
/// The level comes from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), default INFO.
fn init_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .and_then(|level| level.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_max_level(level)
        .init();
}
