//! The HTTP server: accept on 127.0.0.1, route, authorize, build the event, run the handler.
//!
//! It is written to survive hostile clients (see [`ServerLimits`]): at most `max_connections`
//! connections at once (one more is answered 503 and closed; the refusals themselves are bounded
//! too, see [`MAX_LINGERING_REFUSALS`]), request headers must arrive within
//! `header_read_timeout` (which also closes idle keep-alive connections), a body must arrive
//! within `body_read_timeout` (else 408) and within 10 MB (else 413, refused unread when its
//! `content-length` says so), GET and HEAD bodies are never read, and the request log never
//! blocks a request (see `request_log`).

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authorizer::{AuthError, Authorizer, AuthorizerConfig, FetchError};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use stack::{AuthorizerSettings, Issuer, Route, RouteAuth, SpecError};
use thiserror::Error;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use wishlist::Store;

use crate::event::{build_event, into_http, message, EventContext, RequestParts};
use crate::request_log::{RequestLog, RequestRecord};
use crate::token_endpoint::{self, TOKEN_PATH};
use crate::DevKey;

/// API Gateway refuses request bodies over 10 MB.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// The discovery document the dev server's own issuer serves.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The JWKS the dev server's own issuer serves.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Refused connections (over `max_connections`) kept open at once, for at most a second each,
/// to read what their client sends so that closing does not reset the connection before the
/// client has read its 503. A flood past this many is answered 503 and closed at once, on the
/// accept loop, without a task: a refusal never costs more than this many tasks.
pub const MAX_LINGERING_REFUSALS: usize = 32;

/// The answer to a connection over the cap.
const REFUSAL: &str = concat!(
    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n",
    "content-length: 33\r\nconnection: close\r\nretry-after: 1\r\n\r\n",
    r#"{"message":"Service Unavailable"}"#
);

/// The issuer URL of the dev server's own issuer on `port`: `http://127.0.0.1:{port}/`.
pub fn self_issuer_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/")
}

/// Who issues the tokens the dev server accepts.
#[derive(Debug, Clone)]
pub enum TokenIssuer {
    /// The dev server itself, with the dev folder's key: it serves discovery and the JWKS at
    /// [`self_issuer_url`] and `wishctl token` mints tokens for it.
    SelfIssued(Arc<DevKey>),
    /// An OIDC issuer elsewhere (an Auth0 tenant, a local test issuer).
    External(Issuer),
}

/// How much a client may hold of the server, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Time for a request's headers to arrive, counted from the connection (or the previous
    /// response): slowloris clients and idle keep-alive connections are closed after it.
    pub header_read_timeout: Duration,
    /// Time for a request's body to arrive once its headers have (else 408).
    pub body_read_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything the dev server needs.
#[derive(Clone)]
pub struct DevServerOptions {
    /// Normally 127.0.0.1:3000; port 0 picks a free port.
    pub listen: SocketAddr,
    pub issuer: TokenIssuer,
    /// `aud` (or `client_id`) must name one of these.
    pub audiences: Vec<String>,
    /// The authorization scopes of the JWT routes; empty: any valid token.
    pub scopes: Vec<String>,
    pub store: Arc<dyn Store>,
    pub log: RequestLog,
    /// The authorizer's unknown-`kid` / failure refetch limit (tests shorten it).
    pub min_refetch_interval: Duration,
    /// Connection and timing limits.
    pub limits: ServerLimits,
}

impl fmt::Debug for DevServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevServerOptions")
            .field("listen", &self.listen)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("scopes", &self.scopes)
            .field("log", &self.log)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl DevServerOptions {
    /// 127.0.0.1:3000, the given issuer, the default audience, no scopes.
    pub fn new(issuer: TokenIssuer, store: Arc<dyn Store>) -> Self {
        DevServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            issuer,
            audiences: vec![crate::DEFAULT_AUDIENCE.to_string()],
            scopes: Vec::new(),
            store,
            log: RequestLog::Tracing,
            min_refetch_interval: authorizer::MIN_REFETCH_INTERVAL,
            limits: ServerLimits::default(),
        }
    }
}

#[derive(Debug, Error)]
pub enum DevServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Settings(#[from] SpecError),
    #[error(transparent)]
    Authorizer(#[from] authorizer::ConfigError),
}

/// What the server has refused or dropped so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerStats {
    /// Connections being served now.
    pub open_connections: usize,
    /// Connections answered 503 because `max_connections` were open.
    pub refused_connections: u64,
    /// Refused connections still held open now (at most [`MAX_LINGERING_REFUSALS`]).
    pub lingering_refusals: usize,
    /// Log lines dropped because the log's reader was too slow: request records, and the other
    /// lines of a queue the request log shares (`wishctl dev`'s diagnostics).
    pub dropped_log_lines: u64,
}

struct State {
    authorizer: Authorizer,
    settings: AuthorizerSettings,
    self_issued: Option<Arc<DevKey>>,
    store: Arc<dyn Store>,
    log: RequestLog,
    local_port: u16,
    limits: ServerLimits,
    connections: Arc<Semaphore>,
    refused: AtomicU64,
    /// One permit per refused connection still open (see [`MAX_LINGERING_REFUSALS`]).
    lingering: Arc<Semaphore>,
}

/// A running dev server. Dropping it (or [`DevServer::shutdown`]) stops it.
pub struct DevServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
    keys: Result<usize, FetchError>,
}

impl fmt::Debug for DevServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevServer")
            .field("addr", &self.addr)
            .field("settings", &self.state.settings)
            .finish_non_exhaustive()
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl DevServer {
    /// Binds, starts serving, and fetches the issuer's keys once (so that the first request does
    /// not wait and an unreachable issuer shows at once; see [`DevServer::key_status`]).
    pub async fn start(options: DevServerOptions) -> Result<DevServer, DevServerError> {
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| DevServerError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DevServerError::Bind {
                addr: options.listen,
                source,
            })?;
        let (issuer, self_issued) = match options.issuer {
            TokenIssuer::SelfIssued(key) => (
                Issuer::parse_local(&self_issuer_url(addr.port()))?,
                Some(key),
            ),
            TokenIssuer::External(issuer) => (issuer, None),
        };
        let settings = AuthorizerSettings::new(issuer, options.audiences, options.scopes)?;
        let mut config = AuthorizerConfig::from_settings(&settings);
        config.min_refetch_interval = options.min_refetch_interval;
        let authorizer = Authorizer::new(config)?;
        let state = Arc::new(State {
            authorizer,
            settings,
            self_issued,
            store: options.store,
            log: options.log,
            local_port: addr.port(),
            limits: options.limits,
            connections: Arc::new(Semaphore::new(options.limits.max_connections.max(1))),
            refused: AtomicU64::new(0),
            lingering: Arc::new(Semaphore::new(MAX_LINGERING_REFUSALS)),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        let keys = state.authorizer.prefetch().await;
        Ok(DevServer {
            addr,
            state,
            accept,
            keys,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/wish-list-service`
    pub fn service_url(&self) -> String {
        format!("{}{}", self.base_url(), stack::SERVICE_PATH)
    }

    /// The issuer, audiences and route scopes in force.
    pub fn settings(&self) -> &AuthorizerSettings {
        &self.state.settings
    }

    /// Whether the dev server is its own issuer.
    pub fn is_self_issued(&self) -> bool {
        self.state.self_issued.is_some()
    }

    /// Connections open and refused, log lines dropped.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            open_connections: self.state.limits.max_connections.max(1)
                - self.state.connections.available_permits(),
            refused_connections: self.state.refused.load(Ordering::Relaxed),
            lingering_refusals: MAX_LINGERING_REFUSALS - self.state.lingering.available_permits(),
            dropped_log_lines: self.state.log.dropped(),
        }
    }

    /// The token endpoint of the self-issued server (`None` with an external issuer).
    pub fn token_endpoint(&self) -> Option<String> {
        self.state
            .self_issued
            .as_ref()
            .map(|_| format!("{}{TOKEN_PATH}", self.base_url()))
    }

    /// The outcome of the key fetch at startup: the number of usable keys, or why it failed.
    pub fn key_status(&self) -> &Result<usize, FetchError> {
        &self.keys
    }

    /// Serves until the accept loop ends (it does not by itself: use with a shutdown signal).
    pub async fn wait(mut self) {
        let _ = (&mut self.accept).await;
    }

    /// Stops accepting and releases the port before returning; connections in flight end with
    /// their current request.
    pub async fn shutdown(mut self) {
        self.accept.abort();
        let _ = (&mut self.accept).await;
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = Arc::clone(&state.connections).try_acquire_owned() else {
            state.refused.fetch_add(1, Ordering::Relaxed);
            match Arc::clone(&state.lingering).try_acquire_owned() {
                Ok(lingering) => {
                    tokio::spawn(async move {
                        refuse_connection(stream).await;
                        drop(lingering);
                    });
                }
                Err(_) => refuse_at_once(stream),
            }
            continue;
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service_state = Arc::clone(&state);
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&service_state);
                async move { Ok::<_, Infallible>(respond(&state, request, peer).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(state.limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(err) = served {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// The answer to one connection too many: 503 and close. What the client sends meanwhile is
/// read and discarded (up to 64 KiB, for at most a second) so that closing does not reset the
/// connection before the client has read the answer.
async fn refuse_connection(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        if stream.write_all(REFUSAL.as_bytes()).await.is_err() {
            return;
        }
        let _ = stream.shutdown().await;
        let mut discard = [0u8; 4096];
        let mut total = 0;
        while let Ok(n @ 1..) = stream.read(&mut discard).await {
            total += n;
            if total > 64 * 1024 {
                break;
            }
        }
    })
    .await;
}

/// The answer to a connection over the cap when [`MAX_LINGERING_REFUSALS`] are already held:
/// 503 written without waiting (it fits in a new socket's empty send buffer; if not, the client
/// just sees the connection close), then closed. A client that had already sent a request may
/// see a reset instead of the 503; under such a flood that is the price of not holding it.
fn refuse_at_once(stream: TcpStream) {
    use std::io::Write as _;
    // As a plain socket (still non-blocking): tokio's own `try_write` would wait for a
    // readiness event the reactor has not seen yet on a socket accepted a moment ago.
    if let Ok(stream) = stream.into_std() {
        let _ = (&stream).write(REFUSAL.as_bytes());
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
}

async fn respond(
    state: &State,
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> hyper::Response<Full<Bytes>> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let mut record = RequestRecord {
        time: String::new(),
        request_id: request_id.clone(),
        method,
        path,
        route_key: None,
        status: 0,
        latency_us: 0,
        auth: "none",
        sub: None,
        reason: None,
    };
    let response = route(state, request, peer, &request_id, &mut record).await;
    record.status = response.status().as_u16();
    record.latency_us = started.elapsed().as_micros();
    if !matches!(state.log, RequestLog::Off) {
        record.time = now_rfc3339();
        state.log.record(&record);
    }
    response.map(Full::new)
}

async fn route(
    state: &State,
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    request_id: &str,
    record: &mut RequestRecord,
) -> http::Response<Bytes> {
    if let Some(key) = &state.self_issued {
        match (request.method(), request.uri().path()) {
            (&Method::GET, DISCOVERY_PATH) => {
                return json(discovery_document(state.settings.issuer.as_str()))
            }
            (&Method::GET, JWKS_PATH) => return json(key.jwks()),
            (&Method::POST, TOKEN_PATH) => {
                return token_endpoint::issue(
                    key,
                    &state.settings,
                    request,
                    state.limits.body_read_timeout,
                    record,
                )
                .await
            }
            _ => {}
        }
    }
    let Some(route) = Route::find(request.method().as_str(), request.uri().path()) else {
        return message(StatusCode::NOT_FOUND, "Not Found", request_id);
    };
    let route_key = route.key();
    record.route_key = Some(route_key.clone());

    let authorization = match route.auth {
        RouteAuth::None => None,
        RouteAuth::Jwt => {
            let header = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
            match state
                .authorizer
                .authorize(header.as_deref(), &state.settings.scopes)
                .await
            {
                Ok(authorization) => {
                    record.auth = "allowed";
                    record.sub = authorization.subject().map(String::from);
                    Some(authorization)
                }
                Err(err) => {
                    record.auth = "denied";
                    record.reason = Some(err.to_string());
                    return denied(&err, &state.settings.scopes, request_id);
                }
            }
        }
    };

    let (parts, body) = request.into_parts();
    let body = match read_body(&parts, body, state.limits.body_read_timeout).await {
        Ok(body) => body,
        Err((status, text)) => {
            let mut response = message(status, text, request_id);
            // The rest of the body is not read: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let event = build_event(
        &RequestParts {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            version: parts.version,
            headers: &parts.headers,
        },
        &body,
        &EventContext {
            route_key: &route_key,
            request_id,
            time_epoch_ms: now_ms,
            source: peer,
            local_port: state.local_port,
            jwt: authorization.as_ref(),
        },
    );
    let response = wishlist::event::handle_event(state.store.as_ref(), &event).await;
    into_http(response, request_id)
}

/// The request body, within the size and time limits; GET and HEAD bodies are not read at all.
async fn read_body(
    parts: &http::request::Parts,
    body: Incoming,
    timeout: Duration,
) -> Result<Bytes, (StatusCode, &'static str)> {
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return Ok(Bytes::new());
    }
    let too_large = (StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return Err(too_large);
    }
    match tokio::time::timeout(timeout, Limited::new(body, MAX_REQUEST_BYTES).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err))
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large)
        }
        Ok(Err(_)) => Err((StatusCode::BAD_REQUEST, "Bad Request")),
        Err(_) => Err((StatusCode::REQUEST_TIMEOUT, "Request Timeout")),
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn denied(err: &AuthError, route_scopes: &[String], request_id: &str) -> http::Response<Bytes> {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let text = if status == StatusCode::FORBIDDEN {
        "Forbidden"
    } else {
        "Unauthorized"
    };
    let mut response = message(status, text, request_id);
    if let Ok(value) = HeaderValue::from_str(&err.www_authenticate(route_scopes)) {
        response
            .headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, value);
    }
    response
}

fn discovery_document(issuer: &str) -> serde_json::Value {
    serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{}{}", issuer.trim_end_matches('/'), JWKS_PATH),
        "token_endpoint": format!("{}{}", issuer.trim_end_matches('/'), TOKEN_PATH),
        "grant_types_supported": ["client_credentials"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "scopes_supported": ["openid"],
    })
}

fn json(body: serde_json::Value) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body.to_string()));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
