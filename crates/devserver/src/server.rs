//! The HTTP server: accept on 127.0.0.1, route, authorize, build the event, run the handler.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authorizer::{AuthError, Authorizer, AuthorizerConfig, FetchError};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use stack::{AuthorizerSettings, Issuer, Route, RouteAuth, SpecError};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use wishlist::Store;

use crate::event::{build_event, into_http, message, EventContext, RequestParts};
use crate::DevKey;

/// API Gateway refuses request bodies over 10 MB.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// The discovery document the dev server's own issuer serves.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The JWKS the dev server's own issuer serves.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

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

/// Where each request's log line goes.
#[derive(Clone, Default)]
pub enum RequestLog {
    /// `tracing` at INFO, target `devserver::request`.
    #[default]
    Tracing,
    /// Nowhere (benchmarks).
    Off,
    /// A callback (the CLI prints to stderr).
    Custom(Arc<dyn Fn(&RequestRecord) + Send + Sync>),
}

impl fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestLog::Tracing => "Tracing",
            RequestLog::Off => "Off",
            RequestLog::Custom(_) => "Custom",
        })
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
}

impl fmt::Debug for DevServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevServerOptions")
            .field("listen", &self.listen)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("scopes", &self.scopes)
            .field("log", &self.log)
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

/// One request as logged: never the `Authorization` header or the token.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub request_id: String,
    pub method: String,
    pub path: String,
    /// `None` for paths outside the route table.
    pub route_key: Option<String>,
    pub status: u16,
    pub latency_us: u128,
    /// `none` (open route or no route), `allowed` or `denied`.
    pub auth: &'static str,
    /// The token's `sub` when allowed.
    pub sub: Option<String>,
    /// The `error_description` when denied.
    pub reason: Option<String>,
}

impl fmt::Display for RequestRecord {
    /// logfmt: `request_id=... method=POST path=/wish-list-service status=201 ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request_id={} method={} path={} route={} status={} latency_ms={:.3} auth={}",
            self.request_id,
            self.method,
            logfmt_value(&self.path),
            logfmt_value(self.route_key.as_deref().unwrap_or("-")),
            self.status,
            self.latency_us as f64 / 1000.0,
            self.auth
        )?;
        if let Some(sub) = &self.sub {
            write!(f, " sub={}", logfmt_value(sub))?;
        }
        if let Some(reason) = &self.reason {
            write!(f, " reason={}", logfmt_value(reason))?;
        }
        Ok(())
    }
}

fn logfmt_value(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=')
    {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

struct State {
    authorizer: Authorizer,
    settings: AuthorizerSettings,
    self_issued: Option<Arc<DevKey>>,
    store: Arc<dyn Store>,
    log: RequestLog,
    local_port: u16,
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
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(respond(&state, request, peer).await) }
            });
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
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
    match &state.log {
        RequestLog::Off => {}
        RequestLog::Tracing => tracing::info!(target: "devserver::request", "{record}"),
        RequestLog::Custom(log) => log(&record),
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
    if let (Some(key), &Method::GET) = (&state.self_issued, request.method()) {
        match request.uri().path() {
            DISCOVERY_PATH => return json(discovery_document(state.settings.issuer.as_str())),
            JWKS_PATH => return json(key.jwks()),
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
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return message(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request Entity Too Large",
                    request_id,
                );
            }
            return message(StatusCode::BAD_REQUEST, "Bad Request", request_id);
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
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none"],
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
