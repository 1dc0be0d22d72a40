//! A loopback HTTP proxy that forwards every request to an upstream (moto) after a fixed delay,
//! so that a local benchmark sees the round-trip cost of a real AWS endpoint (tens of ms).
//!
//! This is [`crate::aws_proxy::AwsProxy`] with the latency only ([`ModelSettings::latency_only`]):
//! no waits, no rate limit, no faults. Point an SDK or CLI at [`LatencyProxy::endpoint`]
//! instead of the upstream; requests are forwarded as they are, so SigV4 signatures stay intact,
//! and served concurrently, as AWS serves them.

use std::time::Duration;

use crate::aws_proxy::{AwsProxy, ModelSettings};

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct LatencyProxy {
    proxy: AwsProxy,
}

impl LatencyProxy {
    /// Starts a proxy on a free port of 127.0.0.1 that forwards to `upstream`
    /// (`http://host:port`) after waiting `delay` for each request. Must be called inside a
    /// tokio runtime, which then serves the proxy.
    pub async fn start(upstream: &str, delay: Duration) -> std::io::Result<LatencyProxy> {
        Ok(LatencyProxy {
            proxy: AwsProxy::start(upstream, ModelSettings::latency_only(delay)).await?,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        self.proxy.endpoint()
    }

    /// How many requests have been forwarded so far.
    pub fn requests(&self) -> usize {
        self.proxy.requests()
    }

    /// The proxy with all its behaviours.
    pub fn proxy(&self) -> &AwsProxy {
        &self.proxy
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Instant;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

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
