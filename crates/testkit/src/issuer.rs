//! A local OIDC issuer for tests: discovery and a JWKS on 127.0.0.1, RSA keys that can be added,
//! published and rotated, a switch that makes discovery hang (to test fetch timeouts), and a
//! token minter that signs whatever header and claims a test asks for, including tokens no real
//! issuer would sign (`alg: none`, HS256 keyed with the public key, ES256).
//!
//! It signs with aws-lc-rs directly, never with the code under test, so that a bug in the
//! authorizer's JWT handling cannot hide itself in the tokens the tests feed it.
//!
//! It can also misbehave on purpose, as hostile or broken issuers do ([`JwksMode`],
//! [`DiscoveryMode`]): a JWKS that is huge (with or without `content-length`), slow, trickling,
//! endless, malformed or different on every fetch; a discovery document replaced by any JSON (one
//! that points elsewhere), redirected, or huge.
//!
//! And it serves the OAuth 2.0 client-credentials grant at `POST /oauth/token` (named in its
//! discovery document) for clients registered with [`TestIssuer::register_client`], answering as
//! Auth0 does: machine tokens with `sub = ID@clients`, `azp`, `gty`; 401 `access_denied`
//! "Unauthorized" for a wrong secret, 403 `access_denied` "Service not found: AUD" for an
//! audience the client has no grant for.
//!
//! Routes: `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json`,
//! `POST /oauth/token`, and for driving it from another process (`test-issuer` binary):
//! `POST /control/rotate`, `POST /control/hang`, `POST /control/unhang`, `POST /control/mint`
//! (body: claims JSON; answers the token), `POST /control/client` (body: `{"client_id",
//! "client_secret", "audiences"}`), `POST /control/jwks-mode` (body: a [`JwksMode`] as JSON, e.g.
//! `{"mode": "huge", "bytes": 200000}`) and `GET /control/stats`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a minted token is signed.
#[derive(Debug, Clone)]
pub enum Signing {
    /// With the RSA key `kid` of this issuer and `alg` (RS256/384/512, PS256/384/512).
    Rsa { kid: String, alg: String },
    /// HMAC-SHA256 keyed with `secret` (e.g. the public key, for the key-confusion attack).
    Hs256 { secret: Vec<u8> },
    /// ECDSA P-256 with a throwaway key.
    Es256,
    /// No signature at all: `header.payload.` (as `alg: none` tokens are).
    Unsigned,
}

/// How the JWKS endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum JwksMode {
    /// The published keys.
    Normal,
    /// The published keys padded to `bytes` bytes, with a `content-length`.
    Huge { bytes: usize },
    /// The same, streamed in 8 KiB chunks without a `content-length`.
    HugeChunked { bytes: usize },
    /// The published keys, after `delay_ms`.
    Slow { delay_ms: u64 },
    /// The published keys, one byte every `interval_ms`.
    Trickle { interval_ms: u64 },
    /// `{"keys": [` and then whitespace that never ends, 8 KiB at a time.
    Endless,
    /// Not JSON.
    Malformed,
    /// The published keys under new `kid`s on every fetch.
    Changing,
    /// This JSON instead of the published keys (e.g. keys no token can be verified with).
    Document { body: Value },
}

/// How the discovery endpoint answers (besides the hang switch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryMode {
    /// The issuer's own document.
    Normal,
    /// This JSON instead (e.g. a `jwks_uri` pointing elsewhere).
    Document(Value),
    /// `302 Found` to this location.
    Redirect(String),
    /// The issuer's own document padded to this many bytes.
    Huge(usize),
}

/// A client of the client-credentials grant.
#[derive(Debug, Clone)]
struct GrantClient {
    id: String,
    secret: String,
    audiences: Vec<String>,
}

struct IssuerKey {
    kid: String,
    pair: signature::RsaKeyPair,
    published: bool,
}

struct State {
    issuer: String,
    jwks_url: String,
    keys: Mutex<Vec<IssuerKey>>,
    current: Mutex<String>,
    hang: watch::Sender<bool>,
    discovery_requests: AtomicUsize,
    jwks_requests: AtomicUsize,
    token_requests: AtomicUsize,
    next_kid: AtomicUsize,
    jwks_mode: Mutex<JwksMode>,
    discovery_mode: Mutex<DiscoveryMode>,
    clients: Mutex<Vec<GrantClient>>,
}

/// A running issuer; stops when dropped.
pub struct TestIssuer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.state.issuer)
            .finish_non_exhaustive()
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type ServerError = Box<dyn std::error::Error + Send + Sync>;

impl TestIssuer {
    /// Starts on an ephemeral port of 127.0.0.1, with one published key. The issuer URL ends
    /// with `/`, as Auth0's do.
    pub async fn start() -> Result<Self, ServerError> {
        Self::start_on(0).await
    }

    /// Starts on `port` of 127.0.0.1 (0: any free port).
    pub async fn start_on(port: u16) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let issuer = format!("http://{addr}/");
        let (hang, _) = watch::channel(false);
        let state = Arc::new(State {
            jwks_url: format!("{issuer}.well-known/jwks.json"),
            issuer,
            keys: Mutex::new(Vec::new()),
            current: Mutex::new(String::new()),
            hang,
            discovery_requests: AtomicUsize::new(0),
            jwks_requests: AtomicUsize::new(0),
            token_requests: AtomicUsize::new(0),
            next_kid: AtomicUsize::new(1),
            jwks_mode: Mutex::new(JwksMode::Normal),
            discovery_mode: Mutex::new(DiscoveryMode::Normal),
            clients: Mutex::new(Vec::new()),
        });
        let issuer = TestIssuer {
            addr,
            state: Arc::clone(&state),
            task: tokio::spawn(serve(listener, state)),
        };
        issuer.rotate()?;
        Ok(issuer)
    }

    /// The issuer URL, e.g. `http://127.0.0.1:41234/`: the `iss` of minted tokens.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn discovery_url(&self) -> String {
        format!("{}.well-known/openid-configuration", self.state.issuer)
    }

    pub fn jwks_url(&self) -> &str {
        &self.state.jwks_url
    }

    /// The `kid` that [`TestIssuer::mint`] signs with.
    pub fn current_kid(&self) -> String {
        lock(&self.state.current).clone()
    }

    /// A new RSA key that signs from now on and is published in the JWKS at once.
    pub fn rotate(&self) -> Result<String, ServerError> {
        let kid = self.add_key(true)?;
        *lock(&self.state.current) = kid.clone();
        Ok(kid)
    }

    /// A new RSA key; unpublished keys can sign (see [`Signing::Rsa`]) but are not in the JWKS
    /// until [`TestIssuer::publish`].
    pub fn add_key(&self, published: bool) -> Result<String, ServerError> {
        add_key(&self.state, published)
    }

    /// Puts key `kid` into the JWKS.
    pub fn publish(&self, kid: &str) {
        for key in lock(&self.state.keys).iter_mut() {
            if key.kid == kid {
                key.published = true;
            }
        }
    }

    /// Takes key `kid` out of the JWKS (it can still sign).
    pub fn unpublish(&self, kid: &str) {
        for key in lock(&self.state.keys).iter_mut() {
            if key.kid == kid {
                key.published = false;
            }
        }
    }

    /// While on, discovery requests get no answer (until switched off).
    pub fn hang_discovery(&self, on: bool) {
        self.state.hang.send_replace(on);
    }

    pub fn discovery_requests(&self) -> usize {
        self.state.discovery_requests.load(Ordering::SeqCst)
    }

    /// How the JWKS endpoint answers from now on.
    pub fn set_jwks_mode(&self, mode: JwksMode) {
        *lock(&self.state.jwks_mode) = mode;
    }

    /// How the discovery endpoint answers from now on.
    pub fn set_discovery_mode(&self, mode: DiscoveryMode) {
        *lock(&self.state.discovery_mode) = mode;
    }

    /// The token endpoint of the client-credentials grant.
    pub fn token_endpoint(&self) -> String {
        format!("{}oauth/token", self.state.issuer)
    }

    /// A client of the client-credentials grant, allowed to ask for tokens for `audiences`.
    pub fn register_client(&self, id: &str, secret: &str, audiences: &[&str]) {
        register_client(
            &self.state,
            GrantClient {
                id: id.into(),
                secret: secret.into(),
                audiences: audiences.iter().map(|a| a.to_string()).collect(),
            },
        );
    }

    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// The public key `kid` as PEM (`BEGIN PUBLIC KEY`), the text a key-confusion attacker
    /// would use as an HMAC secret.
    pub fn public_key_pem(&self, kid: &str) -> Option<String> {
        let keys = lock(&self.state.keys);
        let key = keys.iter().find(|k| k.kid == kid)?;
        let der = key.pair.public_key().as_der().ok()?;
        let body = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        Some(pem)
    }

    /// Claims a valid token of this issuer carries: `iss`, `sub`, `aud`, `iat` now, `exp` in an
    /// hour. Tests modify the result to break one rule at a time.
    pub fn claims(&self, sub: &str, aud: &str) -> Value {
        let now = unix_now();
        json!({"iss": self.state.issuer, "sub": sub, "aud": aud, "iat": now, "exp": now + 3600})
    }

    /// An RS256 token over `claims` with the current key.
    pub fn mint(&self, claims: &Value) -> String {
        let kid = self.current_kid();
        self.mint_with(
            &json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            claims,
            &Signing::Rsa {
                kid,
                alg: "RS256".into(),
            },
        )
    }

    /// A token with exactly this header and these claims, signed as `signing` says. The header
    /// is not adjusted to the signing: tests may lie in it on purpose.
    pub fn mint_with(&self, header: &Value, claims: &Value, signing: &Signing) -> String {
        mint_with(&self.state, header, claims, signing)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn register_client(state: &State, client: GrantClient) {
    let mut clients = lock(&state.clients);
    clients.retain(|c| c.id != client.id);
    clients.push(client);
}

fn add_key(state: &State, published: bool) -> Result<String, ServerError> {
    let pair = signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| "generating an RSA key failed")?;
    let kid = format!("test-key-{}", state.next_kid.fetch_add(1, Ordering::SeqCst));
    lock(&state.keys).push(IssuerKey {
        kid: kid.clone(),
        pair,
        published,
    });
    Ok(kid)
}

fn mint_with(state: &State, header: &Value, claims: &Value, signing: &Signing) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(state, signing_input.as_bytes(), signing);
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn sign(state: &State, message: &[u8], signing: &Signing) -> Vec<u8> {
    let rng = SystemRandom::new();
    match signing {
        Signing::Unsigned => Vec::new(),
        Signing::Hs256 { secret } => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
            aws_lc_rs::hmac::sign(&key, message).as_ref().to_vec()
        }
        Signing::Es256 => {
            let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rng,
            );
            let pair = pkcs8.ok().and_then(|der| {
                signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der.as_ref(),
                )
                .ok()
            });
            pair.and_then(|pair| pair.sign(&rng, message).ok())
                .map(|sig| sig.as_ref().to_vec())
                .unwrap_or_default()
        }
        Signing::Rsa { kid, alg } => {
            let encoding: &'static dyn signature::RsaEncoding = match alg.as_str() {
                "RS384" => &signature::RSA_PKCS1_SHA384,
                "RS512" => &signature::RSA_PKCS1_SHA512,
                "PS256" => &signature::RSA_PSS_SHA256,
                "PS384" => &signature::RSA_PSS_SHA384,
                "PS512" => &signature::RSA_PSS_SHA512,
                _ => &signature::RSA_PKCS1_SHA256,
            };
            let keys = lock(&state.keys);
            let Some(key) = keys.iter().find(|k| &k.kid == kid) else {
                return Vec::new();
            };
            let mut out = vec![0; key.pair.public_modulus_len()];
            match key.pair.sign(encoding, &rng, message, &mut out) {
                Ok(()) => out,
                Err(_) => Vec::new(),
            }
        }
    }
}

fn jwks(state: &State) -> Value {
    jwks_renamed(state, None)
}

/// The published keys; with `generation`, each `kid` gets that suffix (a JWKS that changes).
fn jwks_renamed(state: &State, generation: Option<usize>) -> Value {
    let keys = lock(&state.keys);
    let keys: Vec<Value> = keys
        .iter()
        .filter(|k| k.published)
        .map(|k| {
            let public = k.pair.public_key();
            let kid = match generation {
                Some(n) => format!("{}-gen{n}", k.kid),
                None => k.kid.clone(),
            };
            json!({
                "kty": "RSA",
                "use": "sig",
                "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            })
        })
        .collect();
    json!({ "keys": keys })
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(route(&state, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    UnsyncBoxBody::new(Full::new(bytes.into()))
}

/// A body sent in pieces: `prefix`, then `chunk` every `interval` (`count` times, or forever).
struct Drip {
    prefix: Option<Bytes>,
    chunk: Bytes,
    remaining: Option<usize>,
    interval: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for Drip {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        if self.remaining == Some(0) {
            return Poll::Ready(None);
        }
        if !self.interval.is_zero() {
            let interval = self.interval;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        if let Some(n) = self.remaining.as_mut() {
            *n -= 1;
        }
        Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
    }
}

use std::future::Future as _;

fn drip(prefix: Bytes, chunk: Bytes, count: Option<usize>, interval: Duration) -> Body {
    UnsyncBoxBody::new(Drip {
        prefix: Some(prefix),
        chunk,
        remaining: count,
        interval,
        sleep: None,
    })
}

/// `document` padded with trailing whitespace to `bytes` bytes (still valid JSON).
fn padded(document: &Value, bytes: usize) -> Vec<u8> {
    let mut text = document.to_string().into_bytes();
    if text.len() < bytes {
        text.resize(bytes, b' ');
    }
    text
}

fn json_bytes_response(status: StatusCode, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn route(state: &State, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    match (request.method().clone(), path.as_str()) {
        (Method::GET, "/.well-known/openid-configuration") => {
            state.discovery_requests.fetch_add(1, Ordering::SeqCst);
            let mut hang = state.hang.subscribe();
            // Hold the request open while hanging; give up after a minute so nothing leaks.
            let _ = tokio::time::timeout(Duration::from_secs(60), hang.wait_for(|on| !on)).await;
            let own = json!({
                "issuer": state.issuer,
                "jwks_uri": state.jwks_url,
                "token_endpoint": format!("{}oauth/token", state.issuer),
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["token"],
                "subject_types_supported": ["public"],
            });
            let mode = lock(&state.discovery_mode).clone();
            match mode {
                DiscoveryMode::Normal => json_response(StatusCode::OK, &own),
                DiscoveryMode::Document(document) => json_response(StatusCode::OK, &document),
                DiscoveryMode::Huge(bytes) => {
                    json_bytes_response(StatusCode::OK, full(padded(&own, bytes)))
                }
                DiscoveryMode::Redirect(location) => {
                    let mut response = Response::new(full(Bytes::new()));
                    *response.status_mut() = StatusCode::FOUND;
                    if let Ok(value) = hyper::header::HeaderValue::from_str(&location) {
                        response
                            .headers_mut()
                            .insert(hyper::header::LOCATION, value);
                    }
                    response
                }
            }
        }
        (Method::GET, "/.well-known/jwks.json") => {
            let n = state.jwks_requests.fetch_add(1, Ordering::SeqCst);
            let mode = lock(&state.jwks_mode).clone();
            let keys = jwks(state);
            match mode {
                JwksMode::Normal => json_response(StatusCode::OK, &keys),
                JwksMode::Huge { bytes } => {
                    json_bytes_response(StatusCode::OK, full(padded(&keys, bytes)))
                }
                JwksMode::HugeChunked { bytes } => {
                    let text = keys.to_string();
                    let chunks = bytes.saturating_sub(text.len()).div_ceil(8192);
                    json_bytes_response(
                        StatusCode::OK,
                        drip(
                            Bytes::from(text),
                            Bytes::from(vec![b' '; 8192]),
                            Some(chunks),
                            Duration::ZERO,
                        ),
                    )
                }
                JwksMode::Slow { delay_ms } => {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    json_response(StatusCode::OK, &keys)
                }
                JwksMode::Trickle { interval_ms } => {
                    let text = keys.to_string().into_bytes();
                    json_bytes_response(
                        StatusCode::OK,
                        drip(
                            Bytes::copy_from_slice(&text[..1]),
                            Bytes::from_static(b" "),
                            Some(text.len() * 100),
                            Duration::from_millis(interval_ms),
                        ),
                    )
                }
                JwksMode::Endless => json_bytes_response(
                    StatusCode::OK,
                    drip(
                        Bytes::from_static(br#"{"keys": ["#),
                        Bytes::from(vec![b' '; 8192]),
                        None,
                        Duration::from_millis(1),
                    ),
                ),
                JwksMode::Malformed => json_bytes_response(
                    StatusCode::OK,
                    full(Bytes::from_static(br#"{"keys": [{"kty": "RSA", "kid": "#)),
                ),
                JwksMode::Changing => json_response(StatusCode::OK, &jwks_renamed(state, Some(n))),
                JwksMode::Document { body } => json_response(StatusCode::OK, &body),
            }
        }
        (Method::POST, "/oauth/token") => {
            state.token_requests.fetch_add(1, Ordering::SeqCst);
            client_credentials_grant(state, request).await
        }
        (Method::POST, "/control/client") => {
            let body = request.into_body().collect().await.map(|b| b.to_bytes());
            let spec: Option<Value> = body.ok().and_then(|b| serde_json::from_slice(&b).ok());
            let client = spec.as_ref().and_then(|spec| {
                Some(GrantClient {
                    id: spec["client_id"].as_str()?.to_string(),
                    secret: spec["client_secret"].as_str()?.to_string(),
                    audiences: spec["audiences"]
                        .as_array()?
                        .iter()
                        .filter_map(|a| a.as_str().map(String::from))
                        .collect(),
                })
            });
            match client {
                Some(client) => {
                    register_client(state, client);
                    json_response(StatusCode::OK, &json!({"registered": true}))
                }
                None => json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"message": "the body must be {client_id, client_secret, audiences}"}),
                ),
            }
        }
        (Method::POST, "/control/jwks-mode") => {
            let body = request.into_body().collect().await.map(|b| b.to_bytes());
            match body
                .ok()
                .and_then(|b| serde_json::from_slice::<JwksMode>(&b).ok())
            {
                Some(mode) => {
                    *lock(&state.jwks_mode) = mode;
                    json_response(StatusCode::OK, &json!({"set": true}))
                }
                None => json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"message": "the body must be a JwksMode, e.g. {\"mode\": \"endless\"}"}),
                ),
            }
        }
        (Method::POST, "/control/rotate") => {
            let kid = add_key(state, true).inspect(|kid| {
                *lock(&state.current) = kid.clone();
            });
            match kid {
                Ok(kid) => json_response(StatusCode::OK, &json!({ "kid": kid })),
                Err(err) => json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({ "message": err.to_string() }),
                ),
            }
        }
        (Method::POST, "/control/hang") => {
            state.hang.send_replace(true);
            json_response(StatusCode::OK, &json!({ "hanging": true }))
        }
        (Method::POST, "/control/unhang") => {
            state.hang.send_replace(false);
            json_response(StatusCode::OK, &json!({ "hanging": false }))
        }
        (Method::POST, "/control/mint") => {
            let body = request.into_body().collect().await.map(|b| b.to_bytes());
            let claims: Option<Value> = body.ok().and_then(|b| serde_json::from_slice(&b).ok());
            match claims {
                Some(claims) => {
                    let kid = lock(&state.current).clone();
                    let token = mint_with(
                        state,
                        &json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
                        &claims,
                        &Signing::Rsa {
                            kid: kid.clone(),
                            alg: "RS256".into(),
                        },
                    );
                    json_response(StatusCode::OK, &json!({ "token": token, "kid": kid }))
                }
                None => json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({ "message": "the body must be the claims as JSON" }),
                ),
            }
        }
        (Method::GET, "/control/stats") => json_response(
            StatusCode::OK,
            &json!({
                "issuer": state.issuer,
                "discovery_requests": state.discovery_requests.load(Ordering::SeqCst),
                "jwks_requests": state.jwks_requests.load(Ordering::SeqCst),
                "token_requests": state.token_requests.load(Ordering::SeqCst),
                "current_kid": *lock(&state.current),
            }),
        ),
        _ => json_response(StatusCode::NOT_FOUND, &json!({ "message": "Not Found" })),
    }
}

/// `POST /oauth/token`: the client-credentials grant, answered as Auth0 answers it.
async fn client_credentials_grant(state: &State, request: Request<Incoming>) -> Response<Body> {
    let error = |status: StatusCode, error: &str, description: &str| {
        json_response(
            status,
            &json!({"error": error, "error_description": description}),
        )
    };
    let basic = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            Some((url_decode(id), url_decode(secret)))
        });
    let is_json = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let Ok(body) = http_body_util::Limited::new(request.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable body",
        );
    };
    let fields: std::collections::HashMap<String, String> = if is_json {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
                .collect(),
            _ => return error(StatusCode::BAD_REQUEST, "invalid_request", "bad JSON body"),
        }
    } else {
        String::from_utf8_lossy(&body)
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (url_decode(k), url_decode(v)))
            .collect()
    };
    if fields.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        );
    }
    let (id, secret) = basic.unwrap_or_else(|| {
        (
            fields.get("client_id").cloned().unwrap_or_default(),
            fields.get("client_secret").cloned().unwrap_or_default(),
        )
    });
    let client = lock(&state.clients)
        .iter()
        .find(|c| c.id == id && c.secret == secret)
        .cloned();
    let Some(client) = client else {
        return error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
    };
    let audience =
        match fields.get("audience") {
            Some(audience) => audience.clone(),
            None => return error(
                StatusCode::FORBIDDEN,
                "access_denied",
                "No audience parameter was provided, and no default audience has been configured",
            ),
        };
    if !client.audiences.contains(&audience) {
        return error(
            StatusCode::FORBIDDEN,
            "access_denied",
            &format!("Service not found: {audience}"),
        );
    }
    let now = unix_now();
    let mut claims = json!({
        "iss": state.issuer,
        "sub": format!("{id}@clients"),
        "aud": audience,
        "iat": now,
        "exp": now + 86400,
        "azp": id,
        "gty": "client-credentials",
    });
    if let Some(scope) = fields.get("scope") {
        claims["scope"] = Value::String(scope.clone());
    }
    let kid = lock(&state.current).clone();
    let token = mint_with(
        state,
        &json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        &claims,
        &Signing::Rsa {
            kid: kid.clone(),
            alg: "RS256".into(),
        },
    );
    let mut answer = json!({"access_token": token, "token_type": "Bearer", "expires_in": 86400});
    if let Some(scope) = fields.get("scope") {
        answer["scope"] = Value::String(scope.clone());
    }
    json_response(StatusCode::OK, &answer)
}

/// `application/x-www-form-urlencoded` decoding of one value.
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `test-issuer` binary running as a process of its own, driven over HTTP; killed on drop.
///
/// The binary is built on first use (`cargo build -p testkit --bin test-issuer`, same profile as
/// the calling test) when it is not already next to the test's target folder.
#[derive(Debug)]
pub struct IssuerProcess {
    child: std::process::Child,
    issuer: String,
}

impl Drop for IssuerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl IssuerProcess {
    /// Starts `test-issuer` on a free port and waits for its `issuer=` line (at most 10 s).
    pub fn spawn() -> Result<Self, ServerError> {
        Self::spawn_binary(test_issuer_binary()?)
    }

    /// As [`spawn`](Self::spawn), with a given `test-issuer` binary.
    pub fn spawn_binary(binary: impl AsRef<std::path::Path>) -> Result<Self, ServerError> {
        use std::io::BufRead as _;
        let binary = binary.as_ref();
        let mut child = std::process::Command::new(binary)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .map_err(|err| format!("starting {}: {err}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("test-issuer has no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                return Err("test-issuer printed no issuer= line within 10 s".into());
            }
        };
        let Some(issuer) = line.trim().strip_prefix("issuer=") else {
            let _ = child.kill();
            return Err(format!("unexpected first line from test-issuer: {line:?}").into());
        };
        Ok(IssuerProcess {
            issuer: issuer.to_string(),
            child,
        })
    }

    /// The issuer URL (`http://127.0.0.1:PORT/`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The operating system's id of the process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `POST /control/mint` with `claims`: an RS256 token with the current key.
    pub async fn mint(&self, claims: &Value) -> Result<String, ServerError> {
        let answer = self.control("POST", "mint", Some(claims)).await?;
        answer["token"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| format!("no token in {answer}").into())
    }

    /// `POST /control/hang` or `/control/unhang`.
    pub async fn hang_discovery(&self, on: bool) -> Result<(), ServerError> {
        let path = if on { "hang" } else { "unhang" };
        self.control("POST", path, None).await.map(|_| ())
    }

    /// `POST /control/client`: a client of the client-credentials grant.
    pub async fn register_client(
        &self,
        id: &str,
        secret: &str,
        audiences: &[&str],
    ) -> Result<(), ServerError> {
        let spec = json!({"client_id": id, "client_secret": secret, "audiences": audiences});
        self.control("POST", "client", Some(&spec))
            .await
            .map(|_| ())
    }

    /// `POST /control/jwks-mode`.
    pub async fn set_jwks_mode(&self, mode: &JwksMode) -> Result<(), ServerError> {
        let body = serde_json::to_value(mode)?;
        self.control("POST", "jwks-mode", Some(&body))
            .await
            .map(|_| ())
    }

    /// `GET /control/stats`: request counts and the current kid.
    pub async fn stats(&self) -> Result<Value, ServerError> {
        self.control("GET", "stats", None).await
    }

    async fn control(
        &self,
        method: &str,
        name: &str,
        body: Option<&Value>,
    ) -> Result<Value, ServerError> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let authority = self
            .issuer
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = tokio::net::TcpStream::connect(&authority).await?;
        let request = format!(
            "{method} /control/{name} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await??;
        let response = String::from_utf8_lossy(&response);
        let (head, payload) = response
            .split_once("\r\n\r\n")
            .ok_or("test-issuer sent no HTTP response")?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("test-issuer answered {head}").into());
        }
        Ok(serde_json::from_str(payload)?)
    }
}

/// `<target>/<profile>/test-issuer`, brought up to date once per test process (a no-op build
/// when it is fresh), so that a test never runs a stale issuer. Tests run from
/// `<target>/<profile>/deps`. `$WISHCTL_TEST_ISSUER` names a binary to use instead.
fn test_issuer_binary() -> Result<std::path::PathBuf, ServerError> {
    static BUILT: std::sync::OnceLock<Result<std::path::PathBuf, String>> =
        std::sync::OnceLock::new();
    if let Ok(path) = std::env::var("WISHCTL_TEST_ISSUER") {
        return Ok(path.into());
    }
    BUILT
        .get_or_init(|| build_test_issuer().map_err(|err| err.to_string()))
        .clone()
        .map_err(Into::into)
}

fn build_test_issuer() -> Result<std::path::PathBuf, ServerError> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .ok_or("cannot locate the target folder from the test executable")?;
    let binary = profile_dir.join(format!("test-issuer{}", std::env::consts::EXE_SUFFIX));
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "testkit",
            "--bin",
            "test-issuer",
            "--profile",
            &profile,
        ])
        .current_dir(crate::workspace_root())
        .status()?;
    if !status.success() || !binary.exists() {
        return Err(format!(
            "building test-issuer failed ({status}); expected {}",
            binary.display()
        )
        .into());
    }
    Ok(binary)
}
