//! A loopback proxy between an AWS client (the SDK in `wishctl`, the aws CLI) and moto, with
//! pluggable behaviour per call:
//!
//! 1. a latency ([`ModelSettings::latency`]);
//! 2. injected faults ([`FaultPlan`]: throttling as each service spells it, 5xx, a reset
//!    connection, a response lost after the call took effect, an answer past the client's
//!    timeout);
//! 3. AWS's timing model ([`crate::aws_model`]: IAM propagation, `Pending` / `InProgress`
//!    functions, `CREATING` / `DELETING` tables, API Gateway's rate limit);
//! 4. a hook called after each call took effect and before its answer goes back (a test uses
//!    it to SIGKILL the client after N calls).
//!
//! Every call is identified ([`AwsCall`]) and logged with what happened to it
//! ([`ProxyRecord`]). Requests are forwarded as they are (SigV4 signatures stay valid) and served
//! concurrently, as AWS serves them. Listens on 127.0.0.1 only; stops when dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use crate::aws_call::AwsCall;
pub use crate::aws_model::{ModelSettings, TimingModel};
pub use crate::faults::{error_response, FaultKind, FaultPlan};
use crate::faults::{throttle_response, FaultInjector};

/// Headers that describe one connection, not the message; not forwarded.
const HOP_BY_HOP: [&str; 4] = ["connection", "keep-alive", "transfer-encoding", "upgrade"];

/// What happened to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRecord {
    /// 1 for the first call the proxy saw (since the last reset).
    pub seq: usize,
    pub call: AwsCall,
    /// The injected fault, if any.
    pub fault: Option<FaultKind>,
    /// Why the timing model answered instead of moto, if it did.
    pub refused: Option<&'static str>,
    /// The status the client got (0 when the connection was reset).
    pub status: u16,
}

/// Called with each call's record after the call took effect and before its answer is sent.
pub type CallHook = Arc<dyn Fn(&ProxyRecord) + Send + Sync>;

/// Answers a call instead of moto when it returns a response (a test's fixed error, e.g.
/// `AccessDenied` for `CreateRole`); see [`crate::faults::error_response`].
pub type Responder = Arc<dyn Fn(&AwsCall) -> Option<Response<Full<Bytes>>> + Send + Sync>;

#[derive(Default)]
struct Shared {
    log: Vec<ProxyRecord>,
    hook: Option<CallHook>,
    responder: Option<Responder>,
    faults: Option<Arc<FaultInjector>>,
}

struct Inner {
    upstream: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    model: TimingModel,
    shared: Mutex<Shared>,
}

impl Inner {
    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        match self.shared.lock() {
            Ok(shared) => shared,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A running proxy; stops when dropped.
pub struct AwsProxy {
    endpoint: String,
    inner: Arc<Inner>,
    _shutdown: oneshot::Sender<()>,
}

impl std::fmt::Debug for AwsProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProxy")
            .field("endpoint", &self.endpoint)
            .field("settings", self.inner.model.settings())
            .finish()
    }
}

impl AwsProxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream` (`http://host:port`)
    /// applying `model`. Must be called inside a tokio runtime, which then serves the proxy.
    pub async fn start(upstream: &str, model: ModelSettings) -> std::io::Result<AwsProxy> {
        let upstream: Uri = upstream.trim_end_matches('/').parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("upstream {upstream}: {e}"),
            )
        })?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let (shutdown, mut stopped) = oneshot::channel::<()>();
        let inner = Arc::new(Inner {
            upstream,
            client: Client::builder(TokioExecutor::new()).build_http(),
            model: TimingModel::new(model),
            shared: Mutex::new(Shared::default()),
        });
        let serving = Arc::clone(&inner);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { continue };
                let inner = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let inner = Arc::clone(&inner);
                        async move { handle(inner, request).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(AwsProxy {
            endpoint,
            inner,
            _shutdown: shutdown,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The model's settings.
    pub fn settings(&self) -> &ModelSettings {
        self.inner.model.settings()
    }

    /// Injects faults from now on (`None`: no more faults).
    pub fn set_faults(&self, plan: Option<FaultPlan>) {
        self.inner.shared().faults = plan.map(|p| Arc::new(FaultInjector::new(p)));
    }

    /// Calls `hook` for every call from now on (`None`: no hook).
    pub fn set_hook(&self, hook: Option<CallHook>) {
        self.inner.shared().hook = hook;
    }

    /// Lets `responder` answer calls from now on (`None`: no responder).
    pub fn set_responder(&self, responder: Option<Responder>) {
        self.inner.shared().responder = responder;
    }

    /// How many calls the proxy has seen since the last reset.
    pub fn requests(&self) -> usize {
        self.inner.shared().log.len()
    }

    /// Every call since the last reset, in the order they arrived.
    pub fn records(&self) -> Vec<ProxyRecord> {
        self.inner.shared().log.clone()
    }

    /// Injected faults by kind since the last reset.
    pub fn faults_by_kind(&self) -> BTreeMap<FaultKind, usize> {
        let mut counts = BTreeMap::new();
        for fault in self.inner.shared().log.iter().filter_map(|r| r.fault) {
            *counts.entry(fault).or_insert(0) += 1;
        }
        counts
    }

    /// Clears the call log and the model's memory (call after resetting moto).
    pub fn reset(&self) {
        self.inner.shared().log.clear();
        self.inner.model.reset();
    }
}

/// Why a request got no answer: hyper closes the connection when the service fails.
#[derive(Debug)]
struct ConnectionReset;

impl std::fmt::Display for ConnectionReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by the fault injector")
    }
}

impl std::error::Error for ConnectionReset {}

async fn handle(
    inner: Arc<Inner>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ConnectionReset> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Err(ConnectionReset),
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let call = AwsCall::identify(
        parts.method.as_str(),
        parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        header("authorization"),
        header("x-amz-target"),
        &body,
    );
    let (seq, faults, responder) = {
        let mut shared = inner.shared();
        let seq = shared.log.len() + 1;
        shared.log.push(ProxyRecord {
            seq,
            call: call.clone(),
            fault: None,
            refused: None,
            status: 0,
        });
        (seq, shared.faults.clone(), shared.responder.clone())
    };
    let mut record = ProxyRecord {
        seq,
        call: call.clone(),
        fault: None,
        refused: None,
        status: 0,
    };
    tokio::time::sleep(
        inner
            .model
            .settings()
            .latency
            .saturating_sub(started.elapsed()),
    )
    .await;

    let fixed = responder.and_then(|answer| answer(&call));
    let fault = if fixed.is_some() {
        None
    } else {
        faults.as_ref().and_then(|f| f.decide())
    };
    record.fault = fault;
    if fault.is_some() {
        // Logged now: a client that gives up on a stall drops the connection, and with it
        // this handler, before the end.
        if let Some(slot) = inner.shared().log.iter_mut().rev().find(|r| r.seq == seq) {
            slot.fault = fault;
        }
    }
    let outcome = match fault {
        _ if fixed.is_some() => fixed.ok_or(ConnectionReset),
        Some(FaultKind::Throttle) => Ok(throttle_response(&call)),
        Some(FaultKind::ServerError) => Ok(faults
            .as_ref()
            .map_or_else(|| throttle_response(&call), |f| f.server_error(&call))),
        Some(FaultKind::Reset) => Err(ConnectionReset),
        Some(kind @ (FaultKind::LostResponse | FaultKind::Stall)) => {
            if kind == FaultKind::Stall {
                let stall = faults.as_ref().map_or(Duration::ZERO, |f| f.stall());
                tokio::time::sleep(stall).await;
            }
            let answer = forward(&inner, &call, &parts, body, &mut record).await;
            if kind == FaultKind::LostResponse {
                Err(ConnectionReset)
            } else {
                Ok(answer)
            }
        }
        None => Ok(forward(&inner, &call, &parts, body, &mut record).await),
    };
    record.status = outcome.as_ref().map_or(0, |r| r.status().as_u16());
    let hook = {
        let mut shared = inner.shared();
        if let Some(slot) = shared.log.iter_mut().rev().find(|r| r.seq == seq) {
            *slot = record.clone();
        }
        shared.hook.clone()
    };
    if let Some(hook) = hook {
        hook(&record);
    }
    outcome
}

/// The timing model's answer, or moto's (rewritten by the model).
async fn forward(
    inner: &Inner,
    call: &AwsCall,
    parts: &hyper::http::request::Parts,
    body: Bytes,
    record: &mut ProxyRecord,
) -> Response<Full<Bytes>> {
    if let Some((response, why)) = inner.model.refuse(call, &body) {
        record.refused = Some(why);
        return response;
    }
    match relay(&inner.client, &inner.upstream, parts, body.clone()).await {
        Ok(response) => {
            let (mut head, answer) = response.into_parts();
            let rewritten = inner
                .model
                .observe(call, &body, head.status.as_u16(), answer.clone());
            if rewritten != answer {
                head.headers.remove("content-length");
                head.headers.remove("x-amz-crc32");
            }
            Response::from_parts(head, Full::new(rewritten))
        }
        Err(err) => {
            let mut response = Response::new(Full::new(Bytes::from(format!("aws proxy: {err}"))));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    }
}

async fn relay(
    client: &Client<HttpConnector, Full<Bytes>>,
    upstream: &Uri,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Bytes>, Box<dyn std::error::Error + Send + Sync>> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let scheme = upstream.scheme_str().unwrap_or("http");
    let authority = upstream.authority().ok_or("the upstream URL has no host")?;
    let mut request = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{scheme}://{authority}{path}"))
        .version(parts.version);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            request = request.header(name, value);
        }
    }
    let response = client.request(request.body(Full::new(body))?).await?;
    let (mut head, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    for header in HOP_BY_HOP {
        head.headers.remove(header);
    }
    Ok(Response::from_parts(head, body))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// An upstream that answers every request with the request target and a JSON body that
    /// says the function is active.
    async fn echo_upstream() -> String {
        let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = upstream.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = upstream.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let service = service_fn(|request: Request<Incoming>| async move {
                        let target = request.uri().path().to_string();
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                            r#"{{"path":"{target}","State":"Active"}}"#
                        )))))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        format!("http://{addr}")
    }

    async fn send(endpoint: &str, path: &str, service: &str) -> std::io::Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = endpoint.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=k/20261129/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        stream
            .write_all(
                format!(
                    "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        if text.len() < 12 {
            return Err(std::io::Error::other("connection closed without an answer"));
        }
        let status = text[9..12].parse().unwrap_or(0);
        let body = text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        Ok((status, body))
    }

    #[tokio::test]
    async fn every_call_is_identified_and_logged_and_the_hook_sees_it() {
        let proxy = AwsProxy::start(
            &echo_upstream().await,
            ModelSettings::latency_only(Duration::ZERO),
        )
        .await
        .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        proxy.set_hook(Some(Arc::new(move |r: &ProxyRecord| {
            sink.lock().unwrap().push(r.call.operation.clone())
        })));

        let (status, body) = send(proxy.endpoint(), "/v2/apis", "apigateway")
            .await
            .unwrap();

        assert_eq!(status, 200);
        assert!(body.contains("/v2/apis"), "{body}");
        assert_eq!(*seen.lock().unwrap(), ["GetApis"]);
        let records = proxy.records();
        assert_eq!(records.len(), 1);
        assert_eq!((records[0].seq, records[0].status), (1, 200));
    }

    #[tokio::test]
    async fn faults_answer_as_the_service_would_or_reset_the_connection() {
        let proxy = AwsProxy::start(
            &echo_upstream().await,
            ModelSettings::latency_only(Duration::ZERO),
        )
        .await
        .unwrap();
        proxy.set_faults(Some(
            FaultPlan::new(1.0, 1, Duration::ZERO).with_kinds(&[FaultKind::Throttle]),
        ));
        let (status, _) = send(proxy.endpoint(), "/2015-03-31/functions/f", "lambda")
            .await
            .unwrap();
        assert_eq!(status, 429);

        proxy.set_faults(Some(
            FaultPlan::new(1.0, 1, Duration::ZERO).with_kinds(&[FaultKind::LostResponse]),
        ));
        assert!(send(proxy.endpoint(), "/2015-03-31/functions/f", "lambda")
            .await
            .is_err());
        let records = proxy.records();
        assert_eq!(records[1].fault, Some(FaultKind::LostResponse));
        assert_eq!(records[1].status, 0);
        assert_eq!(
            proxy.faults_by_kind(),
            BTreeMap::from([(FaultKind::Throttle, 1), (FaultKind::LostResponse, 1)])
        );
    }

    #[tokio::test]
    async fn the_model_rewrites_what_moto_says_is_ready_at_once() {
        let proxy = AwsProxy::start(
            &echo_upstream().await,
            ModelSettings {
                function_update: Duration::from_secs(60),
                ..ModelSettings::latency_only(Duration::ZERO)
            },
        )
        .await
        .unwrap();
        // An update (PUT .../code) marks the function InProgress for a minute.
        proxy.inner.model.observe(
            &AwsCall {
                service: "lambda".into(),
                operation: "UpdateFunctionCode".into(),
                resource: Some("f".into()),
            },
            b"",
            200,
            Bytes::from("{}"),
        );
        let (_, body) = send(
            proxy.endpoint(),
            "/2015-03-31/functions/f/configuration",
            "lambda",
        )
        .await
        .unwrap();
        assert!(
            body.contains(r#""LastUpdateStatus":"InProgress""#),
            "{body}"
        );
    }
}
