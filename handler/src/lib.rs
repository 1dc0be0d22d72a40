//! The Lambda side of the wish-list API: turns the `lambda_http` request that API Gateway's
//! payload 2.0 event becomes into a [`wishlist::ApiRequest`], answers it with the shared API
//! logic, and writes one JSON log line per request. `main.rs` only wires configuration.

use std::collections::BTreeMap;
use std::time::Instant;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use wishlist::{ApiRequest, ApiResponse, Store};

/// Answers one request and logs it (never the Authorization header or any token).
pub async fn respond(store: &dyn Store, request: Request) -> Response<Body> {
    let started = Instant::now();
    let api_request = to_api_request(request);
    let (method, path, request_id) = (
        api_request.method.clone(),
        api_request.path.clone(),
        api_request.request_id.clone(),
    );
    let response = wishlist::handle(store, api_request).await;
    tracing::info!(
        method = %method,
        route = %path,
        status = response.status,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id = %request_id,
        "request"
    );
    to_http_response(response)
}

/// The transport-free request: method, path, decoded body, the invocation's request id (the
/// new item's id, as `context.awsRequestId` in the walkthrough), JWT claims and request time.
pub fn to_api_request(request: Request) -> ApiRequest {
    let request_id = request
        .lambda_context_ref()
        .map(|context| context.request_id.clone())
        .unwrap_or_default();
    let (claims, time_epoch, route_key) = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => (
            context
                .authorizer
                .as_ref()
                .and_then(|authorizer| authorizer.jwt.as_ref())
                .map(|jwt| {
                    jwt.claims
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<BTreeMap<_, _>>()
                }),
            Some(context.time_epoch).filter(|epoch| *epoch > 0),
            context.route_key.clone(),
        ),
        _ => (None, None, None),
    };
    let time = match time_epoch {
        Some(epoch) => wishlist::event::rfc3339_from_epoch_millis(epoch),
        None => wishlist::event::now_rfc3339(),
    };
    let method = request.method().as_str().to_string();
    let path = route_path(
        route_key.as_deref(),
        request.raw_http_path(),
        request.uri().path(),
    );
    let body = match request.into_body() {
        Body::Empty => Vec::new(),
        Body::Text(text) => text.into_bytes(),
        Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    ApiRequest {
        method,
        path,
        body,
        request_id,
        claims,
        time,
    }
}

/// The path API Gateway matched: the path of the route key (`POST /wish-list-service`), which
/// carries no stage prefix and needs no `Host` header; else the raw path; else the URI's path.
fn route_path(route_key: Option<&str>, raw_path: &str, uri_path: &str) -> String {
    if let Some((_, path)) = route_key.and_then(|key| key.split_once(' ')) {
        if path.starts_with('/') {
            return path.to_string();
        }
    }
    if raw_path.starts_with('/') {
        return raw_path.to_string();
    }
    uri_path.to_string()
}

fn to_http_response(response: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name, value);
    }
    builder.body(Body::Text(response.body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::Text(
            r#"{"message":"Internal Server Error"}"#.to_string(),
        ));
        *fallback.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
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
    use super::route_path;

    #[test]
    fn the_route_key_wins_over_stage_prefixed_or_hostless_paths() {
        assert_eq!(
            route_path(
                Some("POST /wish-list-service"),
                "/prod/wish-list-service",
                "/"
            ),
            "/wish-list-service"
        );
        assert_eq!(route_path(Some("$default"), "/x", "/y"), "/x");
        assert_eq!(route_path(None, "", "/y"), "/y");
    }
}
