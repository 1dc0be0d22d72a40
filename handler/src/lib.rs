//! The Lambda side of the wish-list API: hands each payload 2.0 event, as raw JSON from the
//! Lambda Runtime API, to `wishlist::event::answer` (the conversion `wishctl dev` uses too),
//! and writes one JSON log line per request. `main.rs` only wires configuration and logging.

use std::time::Instant;

use serde_json::Value;
use wishlist::event::HttpApiResponse;
use wishlist::Store;

/// Answers one event and logs it: method, route, status, latency and request id; never a
/// header, the body, a claim or a token.
pub async fn respond(store: &dyn Store, event: &Value, request_id: &str) -> HttpApiResponse {
    let started = Instant::now();
    tracing::debug!(request_id, "event received");
    let answer = wishlist::event::answer(store, event, Some(request_id)).await;
    tracing::info!(
        method = answer.method.as_deref().unwrap_or("-"),
        route = answer.path.as_deref().unwrap_or("-"),
        status = answer.response.status_code,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id = %answer.request_id,
        "request"
    );
    answer.response
}

/// The log filter: our own crates at `level`; every other crate (the runtime, the AWS SDK,
/// hyper) at most at WARN, because below that they log raw events (`lambda_runtime` at TRACE:
/// the whole event, `Authorization` header included) and signed requests (the SDK at DEBUG and
/// TRACE: the session token). No `AWS_LAMBDA_LOG_LEVEL` can let a token through.
pub fn log_filter(level: tracing::Level) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::LevelFilter;
    let ours = LevelFilter::from_level(level);
    let theirs = ours.min(LevelFilter::WARN);
    tracing_subscriber::filter::Targets::new()
        .with_default(theirs)
        .with_target("bootstrap", ours)
        .with_target("handler", ours)
        .with_target("wishlist", ours)
}

/// Tells the Lambda service that initialisation failed, with a message CloudWatch shows
/// (`POST /2018-06-01/runtime/init/error`). Best effort: the process exits non-zero either way.
pub async fn report_init_error(message: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = serde_json::json!({
        "errorMessage": message,
        "errorType": "Runtime.InitError",
    })
    .to_string();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Lambda-Runtime-Function-Error-Type: Runtime.InitError\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Ok(mut stream) = tokio::net::TcpStream::connect(&api).await {
        if stream.write_all(request.as_bytes()).await.is_ok() {
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::log_filter;

    #[test]
    fn other_crates_never_log_below_warn_whatever_the_level() {
        for level in [Level::TRACE, Level::DEBUG, Level::INFO] {
            let filter = log_filter(level);
            for target in [
                "lambda_runtime::layers::api_response",
                "lambda_runtime_api_client",
                "aws_sigv4::http_request::sign",
                "aws_smithy_runtime::client::orchestrator",
                "hyper_util",
            ] {
                assert!(
                    !filter.would_enable(target, &Level::INFO),
                    "{target} at {level}"
                );
                assert!(filter.would_enable(target, &Level::WARN), "{target}");
            }
            assert!(filter.would_enable("handler", &level));
            assert!(filter.would_enable("wishlist::dynamodb", &level));
        }
        let quiet = log_filter(Level::ERROR);
        assert!(!quiet.would_enable("lambda_runtime", &Level::WARN));
        assert!(!quiet.would_enable("handler", &Level::WARN));
    }
}
