//! A loopback proxy between an AWS client (the SDK in `wishctl`, the aws CLI) and moto, with
//! pluggable behaviour per call:
//!
//! 1. a latency ([`ModelSettings::latency`]);
//! 2. injected faults ([`FaultPlan`]: throttling as each service spells it, 5xx, a reset
//!    connection, a response lost after the call took effect, a call that takes effect but
//!    answers only past the client's attempt timeout);
//! 3. AWS's timing model ([`crate::aws_model`]: IAM propagation, `Pending` / `InProgress`
//!    functions, `CREATING` / `DELETING` tables, API Gateway's rate limit);
//! 4. hooks: one called when a call arrives, before anything happens to it, and one after it
//!    took effect and before its answer goes back (a test uses them to SIGKILL the client at
//!    either point), and a gate that can hold an answer until the test lets it go (to make two
//!    clients' runs overlap for certain);
//! 5. what moto lacks: API Gateway v2's `GetAuthorizers`, which moto answers with a 500, is
//!    answered as AWS answers it ([`crate::authorizer_listing`]).
//!
//! Every call is identified ([`AwsCall`]) and logged with what happened to it and which client
//! (access key) made it ([`ProxyRecord`]). Requests are forwarded as they are (SigV4 signatures
//! stay valid) and served concurrently, as AWS serves them. Listens on 127.0.0.1 only; stops when
//! dropped.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
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

use crate::authorizer_listing::{AuthorizerCall, AuthorizerRegistry};
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
    /// The access key id the call was signed with (empty when unsigned): which client made it,
    /// when several share the proxy with different keys.
    pub client: String,
    /// The injected fault, if any.
    pub fault: Option<FaultKind>,
    /// Why the timing model answered instead of moto, if it did.
    pub refused: Option<&'static str>,
    /// The status of the answer (0 when the connection was reset). For a
    /// [`FaultKind::Stall`], the status of the late answer, which a client that gave up never
    /// reads.
    pub status: u16,
}

/// Called with a call's record: by [`AwsProxy::set_hook`] after the call took effect and before
/// its answer is sent, by [`AwsProxy::set_arrival_hook`] when it arrives.
pub type CallHook = Arc<dyn Fn(&ProxyRecord) + Send + Sync>;

/// A wait before an answer goes back.
pub type Hold = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Called with each call's record after the call took effect (after the [`CallHook`]); when it
/// returns a [`Hold`], the answer waits for it. The test bounds the wait.
pub type AnswerGate = Arc<dyn Fn(&ProxyRecord) -> Option<Hold> + Send + Sync>;

/// Answers a call instead of moto when it returns a response (a test's fixed error, e.g.
/// `AccessDenied` for `CreateRole`); see [`crate::faults::error_response`].
pub type Responder = Arc<dyn Fn(&AwsCall) -> Option<Response<Full<Bytes>>> + Send + Sync>;

#[derive(Default)]
struct Shared {
    log: Vec<ProxyRecord>,
    hook: Option<CallHook>,
    arrival_hook: Option<CallHook>,
    gate: Option<AnswerGate>,
    responder: Option<Responder>,
    faults: Option<Arc<FaultInjector>>,
}

struct Inner {
    upstream: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    model: TimingModel,
    authorizers: AuthorizerRegistry,
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
            authorizers: AuthorizerRegistry::default(),
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

    /// Calls `hook` for every call from now on, once it took effect (or was refused) and before
    /// its answer goes back (`None`: no hook).
    pub fn set_hook(&self, hook: Option<CallHook>) {
        self.inner.shared().hook = hook;
    }

    /// Calls `hook` for every call from now on as it arrives, before the latency, the fault
    /// and moto (`None`: no hook). The record has no fault and status 0 yet.
    pub fn set_arrival_hook(&self, hook: Option<CallHook>) {
        self.inner.shared().arrival_hook = hook;
    }

    /// Lets `gate` hold answers from now on (`None`: no gate).
    pub fn set_gate(&self, gate: Option<AnswerGate>) {
        self.inner.shared().gate = gate;
    }

    /// The page size of the `GetAuthorizers` answers when the request gives no `maxResults`
    /// (`None`: [`crate::authorizer_listing::DEFAULT_PAGE_SIZE`]); a test of a client's paging
    /// makes it small.
    pub fn set_authorizer_page_size(&self, size: Option<usize>) {
        self.inner.authorizers.set_page_size(size);
    }

    /// Every authorizer that a `CreateAuthorizer` through the proxy made and no
    /// `DeleteAuthorizer` or `DeleteApi` through it removed, as (API id, authorizer id), since
    /// the last reset: what `GetAuthorizers` lists (before it checks each with moto).
    pub fn authorizers(&self) -> Vec<(String, String)> {
        self.inner.authorizers.all()
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

    /// Clears the call log, the recorded authorizers and the model's memory (call after
    /// resetting moto).
    pub fn reset(&self) {
        self.inner.shared().log.clear();
        self.inner.authorizers.clear();
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
    let client = header("authorization")
        .and_then(access_key)
        .unwrap_or_default();
    let (mut record, faults, responder, arrival_hook) = {
        let mut shared = inner.shared();
        let record = ProxyRecord {
            seq: shared.log.len() + 1,
            call: call.clone(),
            client,
            fault: None,
            refused: None,
            status: 0,
        };
        shared.log.push(record.clone());
        (
            record,
            shared.faults.clone(),
            shared.responder.clone(),
            shared.arrival_hook.clone(),
        )
    };
    if let Some(hook) = arrival_hook {
        hook(&record);
    }
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
        inner.update(&record);
    }
    let outcome = match fault {
        _ if fixed.is_some() => fixed.ok_or(ConnectionReset),
        Some(FaultKind::Throttle) => Ok(throttle_response(&call)),
        Some(FaultKind::ServerError) => Ok(faults
            .as_ref()
            .map_or_else(|| throttle_response(&call), |f| f.server_error(&call))),
        Some(FaultKind::Reset) => Err(ConnectionReset),
        Some(FaultKind::LostResponse) => {
            forward(&inner, &call, &parts, body, &mut record).await;
            Err(ConnectionReset)
        }
        Some(FaultKind::Stall) => {
            let (stall, effect_after) = faults
                .as_ref()
                .map_or((Duration::ZERO, Duration::ZERO), |f| f.stall_timing());
            return stall_then_answer(inner, call, parts, body, record, stall, effect_after).await;
        }
        None => Ok(forward(&inner, &call, &parts, body, &mut record).await),
    };
    record.status = outcome.as_ref().map_or(0, |r| r.status().as_u16());
    if let Some(hold) = inner.finish(&record) {
        hold.await;
    }
    outcome
}

/// A stalled call: it is forwarded (after `effect_after`) by a task of its own, so it takes
/// effect even when the client gives up waiting and drops the connection (and with it this
/// handler), and its answer goes back only `stall` after the fault was decided, past the
/// client's attempt timeout. A client that retried meanwhile repeats a call that took effect,
/// or whose effect is still to come.
async fn stall_then_answer(
    inner: Arc<Inner>,
    call: AwsCall,
    parts: hyper::http::request::Parts,
    body: Bytes,
    mut record: ProxyRecord,
    stall: Duration,
    effect_after: Duration,
) -> Result<Response<Full<Bytes>>, ConnectionReset> {
    let decided = Instant::now();
    let (answer_tx, answer_rx) = oneshot::channel();
    tokio::spawn(async move {
        tokio::time::sleep(effect_after).await;
        let answer = forward(&inner, &call, &parts, body, &mut record).await;
        record.status = answer.status().as_u16();
        if let Some(hold) = inner.finish(&record) {
            hold.await;
        }
        tokio::time::sleep(stall.saturating_sub(decided.elapsed())).await;
        let _ = answer_tx.send(answer);
    });
    answer_rx.await.map_err(|_| ConnectionReset)
}

impl Inner {
    /// Writes `record` over the log's entry of its call.
    fn update(&self, record: &ProxyRecord) {
        if let Some(slot) = self
            .shared()
            .log
            .iter_mut()
            .rev()
            .find(|r| r.seq == record.seq)
        {
            *slot = record.clone();
        }
    }

    /// Logs the call's final record, calls the hook, and asks the gate whether the answer
    /// waits.
    fn finish(&self, record: &ProxyRecord) -> Option<Hold> {
        self.update(record);
        let (hook, gate) = {
            let shared = self.shared();
            (shared.hook.clone(), shared.gate.clone())
        };
        if let Some(hook) = hook {
            hook(record);
        }
        gate.and_then(|gate| gate(record))
    }
}

/// `AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/lambda/aws4_request, ...` -> `AKID`.
fn access_key(authorization: &str) -> Option<String> {
    let scope = authorization.split("Credential=").nth(1)?;
    scope.split('/').next().map(str::to_string)
}

/// The timing model's answer, or moto's (rewritten by the model), or the authorizer listing
/// moto cannot give.
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
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let authorizer_call = (call.service == "apigateway")
        .then(|| AuthorizerCall::of(parts.method.as_str(), path))
        .flatten();
    if let Some(AuthorizerCall::List {
        api,
        max_results,
        next_token,
    }) = &authorizer_call
    {
        return list_authorizers(
            inner,
            call,
            parts,
            api,
            max_results.as_deref(),
            next_token.as_deref(),
        )
        .await;
    }
    match relay(&inner.client, &inner.upstream, parts, path, body.clone()).await {
        Ok(response) => {
            let (mut head, answer) = response.into_parts();
            if let Some(authorizer_call) = &authorizer_call {
                inner
                    .authorizers
                    .observe(authorizer_call, head.status.as_u16(), &answer);
            }
            let rewritten = inner
                .model
                .observe(call, &body, head.status.as_u16(), answer.clone());
            if rewritten != answer {
                head.headers.remove("content-length");
                head.headers.remove("x-amz-crc32");
            }
            Response::from_parts(head, Full::new(rewritten))
        }
        Err(err) => bad_gateway(&err),
    }
}

fn bad_gateway(err: &dyn std::fmt::Display) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("aws proxy: {err}"))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

/// `GetAuthorizers` as AWS answers it (see [`crate::authorizer_listing`]): the page of the
/// authorizers recorded for `api`, each read from moto with `GetAuthorizer` (signed as the
/// client signed the listing).
async fn list_authorizers(
    inner: &Inner,
    call: &AwsCall,
    parts: &hyper::http::request::Parts,
    api: &str,
    max_results: Option<&str>,
    next_token: Option<&str>,
) -> Response<Full<Bytes>> {
    let encoded = |segment: &str| -> String {
        segment
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let api_path = format!("/v2/apis/{}", encoded(api));
    // An unknown API: moto's own 404 NotFoundException, as AWS answers.
    match relay(
        &inner.client,
        &inner.upstream,
        parts,
        &api_path,
        Bytes::new(),
    )
    .await
    {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => {
            let (head, answer) = response.into_parts();
            return Response::from_parts(head, Full::new(answer));
        }
        Err(err) => return bad_gateway(&err),
    }
    let page = match inner.authorizers.page(api, max_results, next_token) {
        Ok(page) => page,
        Err(bad) => return error_response(call, 400, "BadRequestException", &bad.0),
    };
    let mut items = Vec::with_capacity(page.ids.len());
    for id in &page.ids {
        let path = format!("{api_path}/authorizers/{}", encoded(id));
        match relay(&inner.client, &inner.upstream, parts, &path, Bytes::new()).await {
            Ok(response) if response.status().is_success() => {
                match serde_json::from_slice::<serde_json::Value>(response.body()) {
                    Ok(item) => items.push(item),
                    Err(err) => return bad_gateway(&format!("GetAuthorizer {id}: {err}")),
                }
            }
            // Gone from moto (deleted around the proxy): not listed any more.
            Ok(response) if response.status() == StatusCode::NOT_FOUND => {
                inner.authorizers.forget(api, id);
            }
            Ok(response) => {
                let (head, answer) = response.into_parts();
                return Response::from_parts(head, Full::new(answer));
            }
            Err(err) => return bad_gateway(&err),
        }
    }
    let mut answer = serde_json::json!({ "items": items });
    if let Some(token) = page.next_token {
        answer["nextToken"] = serde_json::Value::from(token);
    }
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        "x-amzn-requestid",
        hyper::header::HeaderValue::from_static("testkit-proxy"),
    );
    response
}

/// Sends the client's request (its method and headers: moto reads the region from the
/// signature's scope) to `path` upstream.
async fn relay(
    client: &Client<HttpConnector, Full<Bytes>>,
    upstream: &Uri,
    parts: &hyper::http::request::Parts,
    path: &str,
    body: Bytes,
) -> Result<Response<Bytes>, Box<dyn std::error::Error + Send + Sync>> {
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
        counting_upstream().await.0
    }

    /// [`echo_upstream`], and how many requests reached it.
    async fn counting_upstream() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = upstream.local_addr().expect("addr");
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&count);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = upstream.accept().await else {
                    return;
                };
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        async move {
                            let target = request.uri().path().to_string();
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                                r#"{{"path":"{target}","State":"Active"}}"#
                            )))))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (format!("http://{addr}"), count)
    }

    async fn send(endpoint: &str, path: &str, service: &str) -> std::io::Result<(u16, String)> {
        send_as(endpoint, "GET", path, service, "").await
    }

    /// One request signed (in form only: moto does not check signatures) for `service`, over a
    /// connection of its own.
    async fn send_as(
        endpoint: &str,
        method: &str,
        path: &str,
        service: &str,
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = endpoint.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=k/20261129/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        stream
            .write_all(
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
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
    #[tokio::test]
    async fn a_stalled_call_takes_effect_even_when_the_client_gives_up_waiting() {
        // GIVEN every call stalls for 30 s, past the client's patience
        let (upstream, reached) = counting_upstream().await;
        let proxy = AwsProxy::start(&upstream, ModelSettings::latency_only(Duration::ZERO))
            .await
            .unwrap();
        proxy.set_faults(Some(
            FaultPlan::new(1.0, 3, Duration::from_secs(30)).with_kinds(&[FaultKind::Stall]),
        ));
        let (took_effect, effect) = tokio::sync::oneshot::channel();
        let took_effect = Mutex::new(Some(took_effect));
        proxy.set_hook(Some(Arc::new(move |r: &ProxyRecord| {
            if let Some(tx) = took_effect.lock().unwrap().take() {
                let _ = tx.send(r.clone());
            }
        })));

        // WHEN the client gives up and drops the connection
        let gave_up = tokio::time::timeout(
            Duration::from_millis(100),
            send(proxy.endpoint(), "/2015-03-31/functions", "lambda"),
        )
        .await;
        assert!(gave_up.is_err(), "the answer came before the stall ended");

        // THEN the call still reached the upstream (bounded wait for the proxy's own task)
        let record = tokio::time::timeout(Duration::from_secs(20), effect)
            .await
            .expect("the stalled call never took effect")
            .unwrap();
        assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(record.fault, Some(FaultKind::Stall));
        assert_eq!(record.status, 200);
        assert_eq!(proxy.records()[0].status, 200);
    }

    #[tokio::test]
    async fn the_gate_holds_an_answer_until_released_and_hooks_see_arrivals() {
        let proxy = AwsProxy::start(
            &echo_upstream().await,
            ModelSettings::latency_only(Duration::ZERO),
        )
        .await
        .unwrap();
        let arrived = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&arrived);
        proxy.set_arrival_hook(Some(Arc::new(move |r: &ProxyRecord| {
            sink.lock()
                .unwrap()
                .push((r.seq, r.client.clone(), r.status))
        })));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Mutex::new(Some(released));
        let (held_tx, held) = tokio::sync::oneshot::channel::<()>();
        let held_tx = Mutex::new(Some(held_tx));
        proxy.set_gate(Some(Arc::new(move |_: &ProxyRecord| {
            let released = released.lock().unwrap().take()?;
            if let Some(tx) = held_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            Some(Box::pin(async move {
                let _ = released.await;
            }) as Hold)
        })));

        // WHEN a call's answer is held
        let endpoint = proxy.endpoint().to_string();
        let client = tokio::spawn(async move { send(&endpoint, "/v2/apis", "apigateway").await });
        held.await.unwrap();

        // THEN the client has no answer until the gate lets it go
        assert!(!client.is_finished());
        release.send(()).unwrap();
        let (status, _) = client.await.unwrap().unwrap();
        assert_eq!(status, 200);
        assert_eq!(*arrived.lock().unwrap(), [(1, "k".to_string(), 0)]);
        assert_eq!(proxy.records()[0].client, "k");
    }

    /// `{"apiId": ...}` and the like from a JSON answer.
    fn field(body: &str, name: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        value[name].as_str().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn get_authorizers_lists_what_took_effect_in_pages_as_aws_answers() {
        // GIVEN an HTTP API in moto with three authorizers created through the proxy (one of
        // them with its answer lost) and one deleted again
        let moto = crate::moto::MotoServer::shared().session().await;
        let proxy = AwsProxy::start(moto.endpoint(), ModelSettings::latency_only(Duration::ZERO))
            .await
            .unwrap();
        let endpoint = proxy.endpoint();
        let (status, api) = send_as(
            endpoint,
            "POST",
            "/v2/apis",
            "apigateway",
            r#"{"name":"listed","protocolType":"HTTP"}"#,
        )
        .await
        .unwrap();
        assert!((200..300).contains(&status), "{status}: {api}");
        let api = field(&api, "apiId");
        let authorizers = format!("/v2/apis/{api}/authorizers");
        let create = |name: &str| {
            format!(
                r#"{{"name":"{name}","authorizerType":"JWT","identitySource":["$request.header.Authorization"],
                    "jwtConfiguration":{{"issuer":"https://issuer.example/","audience":["aud"]}}}}"#
            )
        };
        let mut ids = Vec::new();
        for name in ["first", "second"] {
            let (status, body) =
                send_as(endpoint, "POST", &authorizers, "apigateway", &create(name))
                    .await
                    .unwrap();
            assert!((200..300).contains(&status), "{status}: {body}");
            ids.push(field(&body, "authorizerId"));
        }
        proxy.set_faults(Some(
            FaultPlan::new(1.0, 1, Duration::ZERO).with_kinds(&[FaultKind::LostResponse]),
        ));
        assert!(send_as(
            endpoint,
            "POST",
            &authorizers,
            "apigateway",
            &create("lost")
        )
        .await
        .is_err());
        proxy.set_faults(None);
        let (status, _) = send_as(
            endpoint,
            "DELETE",
            &format!("{authorizers}/{}", ids[0]),
            "apigateway",
            "",
        )
        .await
        .unwrap();
        assert!((200..300).contains(&status), "{status}");

        // WHEN they are listed one per page
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..5 {
            let path = match &token {
                Some(t) => format!("{authorizers}?maxResults=1&nextToken={t}"),
                None => format!("{authorizers}?maxResults=1"),
            };
            let (status, body) = send(endpoint, &path, "apigateway").await.unwrap();
            assert_eq!(status, 200, "{body}");
            let page: serde_json::Value = serde_json::from_str(&body).unwrap();
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            token = page["nextToken"].as_str().map(str::to_string);
            if token.is_none() {
                break;
            }
        }

        // THEN the second and the lost one are listed, oldest first, as GetAuthorizer shows them
        let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
        assert_eq!(names, ["second", "lost"]);
        assert_eq!(items[0]["authorizerId"], ids[1].as_str());
        assert_eq!(items[1]["authorizerType"], "JWT");
        assert_eq!(
            items[1]["identitySource"][0],
            "$request.header.Authorization"
        );
        assert_eq!(
            items[1]["jwtConfiguration"]["issuer"],
            "https://issuer.example/"
        );
        assert_eq!(proxy.authorizers().len(), 2);
        // AND a bad page size or an unknown API are refused as AWS refuses them
        let (status, _) = send(
            endpoint,
            &format!("{authorizers}?maxResults=0"),
            "apigateway",
        )
        .await
        .unwrap();
        assert_eq!(status, 400);
        let (status, _) = send(endpoint, "/v2/apis/nosuchapi/authorizers", "apigateway")
            .await
            .unwrap();
        assert_eq!(status, 404);
        // AND deleting the API forgets its authorizers
        let (status, _) = send_as(
            endpoint,
            "DELETE",
            &format!("/v2/apis/{api}"),
            "apigateway",
            "",
        )
        .await
        .unwrap();
        assert!((200..300).contains(&status), "{status}");
        assert!(proxy.authorizers().is_empty());
    }
}
