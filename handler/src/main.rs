//! `bootstrap`: the wish-list Lambda for `provided.al2023`.
//!
//! Reads `TABLE_NAME`, builds the DynamoDB client once per process (with attempt and operation
//! timeouts under the function's timeout), and serves API Gateway payload 2.0 events with
//! `lambda_runtime`. Events arrive as raw JSON (`serde_json::Value`, which any event the Runtime
//! API delivers deserialises into) and are decoded by our own lenient code, so no event can crash
//! the process.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
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
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let store = Arc::clone(&store);
        async move {
            let response =
                handler::respond(store.as_ref(), &event.payload, &event.context.request_id).await;
            Ok::<_, Error>(response)
        }
    }))
    .await
}

/// The store, built once per process: the DynamoDB table named by `TABLE_NAME` (the client with
/// the store's attempt and operation timeouts, [`DynamoStore::timeout_config`], so that a stalled
/// DynamoDB gets a 503 within the function's timeout instead of a hung invocation), or, with
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
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(DynamoStore::timeout_config())
        .load()
        .await;
    Ok(Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        table,
    )))
}

/// JSON lines for CloudWatch: no timestamp (CloudWatch adds one), no target, one object per event.
/// The level comes from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), default
/// INFO; other crates never log below WARN ([`handler::log_filter`]), so no level logs a token.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .and_then(|level| level.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let format = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_ansi(false);
    tracing_subscriber::registry()
        .with(handler::log_filter(level))
        .with(format)
        .init();
}
