//! A loopback HTTP proxy that forwards every request to an upstream (moto) after a fixed delay,
//! so that a local benchmark sees the round-trip cost of a real AWS endpoint (tens of ms).
//!
//! Point an SDK or CLI at [`LatencyProxy::endpoint`] instead of the upstream. Requests are
//! forwarded as they are (method, path, query, headers, body), so SigV4 signatures stay intact;
//! the delay is added once per request, before forwarding. Requests are served concurrently, as
//! AWS serves them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Headers that describe one connection, not the message; not forwarded.
const HOP_BY_HOP: [&str; 4] = ["connection", "keep-alive", "transfer-encoding", "upgrade"];

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct LatencyProxy {
    endpoint: String,
    requests: Arc<AtomicUsize>,
    _shutdown: oneshot::Sender<()>,
}

impl LatencyProxy {
    /// Starts a proxy on a free port of 127.0.0.1 that forwards to `upstream`
    /// (`http://host:port`) after waiting `delay` for each request. Must be called inside a
    /// tokio runtime, which then serves the proxy.
    pub async fn start(upstream: &str, delay: Duration) -> std::io::Result<LatencyProxy> {
        let upstream: Uri = upstream.trim_end_matches('/').parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("upstream {upstream}: {e}"),
            )
        })?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(AtomicUsize::new(0));
        let (shutdown, mut stopped) = oneshot::channel::<()>();
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let counter = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { continue };
                let (client, upstream, counter) =
                    (client.clone(), upstream.clone(), Arc::clone(&counter));
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        forward(client.clone(), upstream.clone(), delay, request)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(LatencyProxy {
            endpoint,
            requests,
            _shutdown: shutdown,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How many requests have been forwarded so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn forward(
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    upstream: Uri,
    delay: Duration,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    tokio::time::sleep(delay).await;
    Ok(match relay(&client, &upstream, request).await {
        Ok(response) => response,
        Err(err) => {
            let mut response =
                Response::new(Full::new(Bytes::from(format!("latency proxy: {err}"))));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    })
}

async fn relay(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    upstream: &Uri,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let scheme = upstream.scheme_str().unwrap_or("http");
    let authority = upstream.authority().ok_or("the upstream URL has no host")?;
    parts.uri = format!("{scheme}://{authority}{path}").parse()?;
    for header in HOP_BY_HOP {
        parts.headers.remove(header);
    }
    let response = client
        .request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    for header in HOP_BY_HOP {
        parts.headers.remove(header);
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    async fn get(endpoint: &str, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = endpoint.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .expect("write");
        let mut text = String::new();
        stream.read_to_string(&mut text).await.expect("read");
        let status = text[9..12].parse().expect("status");
        let body = text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        (status, body)
    }

    #[tokio::test]
    async fn forwards_path_and_query_after_the_delay() {
        // An upstream that echoes the request target.
        let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream_addr = upstream.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = upstream.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let service = service_fn(|request: Request<Incoming>| async move {
                        let target = request
                            .uri()
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_string();
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(target))))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let proxy = LatencyProxy::start(
            &format!("http://{upstream_addr}"),
            Duration::from_millis(50),
        )
        .await
        .expect("proxy");

        let started = Instant::now();
        let (status, body) = get(proxy.endpoint(), "/moto-api/?a=b").await;

        assert_eq!(status, 200);
        assert_eq!(body, "/moto-api/?a=b");
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(proxy.requests(), 1);
    }
}
