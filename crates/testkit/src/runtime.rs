//! A Lambda Runtime API emulator, so tests can run the real `bootstrap` binary.
//!
//! It implements the documented interface a custom runtime talks to
//! (`AWS_LAMBDA_RUNTIME_API`): `GET /2018-06-01/runtime/invocation/next` hands out queued events
//! with the `Lambda-Runtime-*` headers, `POST .../invocation/{id}/response` and `.../{id}/error`
//! complete them, `POST /2018-06-01/runtime/init/error` records a failed start.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Notify};

const PREFIX: &str = "/2018-06-01/runtime";
/// The function ARN the emulator reports in `Lambda-Runtime-Invoked-Function-Arn`.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:wishctl-test-api";

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST .../response`: the function's result.
    Response(Value),
    /// `POST .../error`: the error document and the `Lambda-Runtime-Function-Error-Type` header.
    Error {
        body: Value,
        error_type: Option<String>,
    },
}

impl Outcome {
    /// The response document; panics (test support) on an error outcome.
    pub fn response(self) -> Value {
        match self {
            Outcome::Response(value) => value,
            Outcome::Error { body, .. } => panic!("invocation failed: {body}"),
        }
    }
}

#[derive(Debug)]
struct Queued {
    request_id: String,
    event: Value,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<(Value, Option<String>)>>,
    first_next: Mutex<Option<Instant>>,
    next_seen: Notify,
    init_failed: Notify,
}

/// A running emulator on 127.0.0.1.
#[derive(Debug)]
pub struct RuntimeEmulator {
    addr: SocketAddr,
    events: mpsc::UnboundedSender<Queued>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeEmulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeEmulator {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (events, receiver) = mpsc::unbounded_channel::<Queued>();
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let shared = Arc::new(Shared::default());
        let server_shared = Arc::clone(&shared);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&server_shared);
                let receiver = Arc::clone(&receiver);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        route(request, Arc::clone(&shared), Arc::clone(&receiver))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(RuntimeEmulator {
            addr,
            events,
            shared,
            server,
        })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` (host:port).
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `event` and waits for the function to complete it.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Outcome, String> {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.invoke_with_id(&request_id, event, timeout).await
    }

    /// As [`invoke`](Self::invoke), with a chosen request id.
    pub async fn invoke_with_id(
        &self,
        request_id: &str,
        event: Value,
        timeout: Duration,
    ) -> Result<Outcome, String> {
        let (done, outcome) = oneshot::channel();
        lock(&self.shared.pending).insert(request_id.to_string(), done);
        self.events
            .send(Queued {
                request_id: request_id.to_string(),
                event,
            })
            .map_err(|_| "emulator stopped".to_string())?;
        match tokio::time::timeout(timeout, outcome).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(format!("invocation {request_id} was dropped")),
            Err(_) => Err(format!(
                "invocation {request_id} got no response within {timeout:?}"
            )),
        }
    }

    /// When the function first asked for an event (the end of its init phase).
    pub async fn wait_first_next(&self, timeout: Duration) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.next_seen.notified();
            if let Some(at) = *lock(&self.shared.first_next) {
                return Some(at);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return *lock(&self.shared.first_next);
            }
        }
    }

    /// The `/init/error` report, if the function sent one within `timeout`.
    pub async fn wait_init_error(&self, timeout: Duration) -> Option<(Value, Option<String>)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.init_failed.notified();
            if let Some(report) = lock(&self.shared.init_error).clone() {
                return Some(report);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return lock(&self.shared.init_error).clone();
            }
        }
    }

    /// Starts `binary` as a Lambda custom runtime against this emulator, with the environment
    /// Lambda sets plus `extra_env`. stderr/stdout are inherited so test failures show its logs.
    pub fn spawn_function(
        &self,
        binary: &Path,
        extra_env: &[(&str, String)],
    ) -> std::io::Result<tokio::process::Child> {
        self.spawn_with(None, binary, extra_env)
    }

    /// As [`spawn_function`](Self::spawn_function), run through an emulator such as `qemu-aarch64`.
    pub fn spawn_with(
        &self,
        wrapper: Option<&str>,
        binary: &Path,
        extra_env: &[(&str, String)],
    ) -> std::io::Result<tokio::process::Child> {
        let mut command = match wrapper {
            Some(wrapper) => {
                let mut command = tokio::process::Command::new(wrapper);
                command.arg(binary);
                command
            }
            None => tokio::process::Command::new(binary),
        };
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", self.runtime_api())
            .env("AWS_LAMBDA_FUNCTION_NAME", "wishctl-test-api")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/wishctl-test-api")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/25/[$LATEST]test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command.spawn()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Body = Full<Bytes>;

async fn route(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    events: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(reply(StatusCode::NOT_FOUND, "unknown path"));
    };
    let method = request.method().clone();
    if method == Method::GET && rest == "/invocation/next" {
        {
            let mut first = lock(&shared.first_next);
            if first.is_none() {
                *first = Some(Instant::now());
            }
        }
        shared.next_seen.notify_waiters();
        let queued = events.lock().await.recv().await;
        let Some(queued) = queued else {
            return Ok(reply(StatusCode::GONE, "emulator stopped"));
        };
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() + 30_000)
            .unwrap_or_default();
        let response = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", &queued.request_id)
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header("lambda-runtime-invoked-function-arn", FUNCTION_ARN)
            .header(
                "lambda-runtime-trace-id",
                "Root=1-5e1b4151-5ac6c58dc39f4dd7a6b5b7a1;Parent=5e1b41515ac6c58d;Sampled=0",
            )
            .body(Full::new(Bytes::from(queued.event.to_string())));
        return Ok(response.unwrap_or_else(|_| reply(StatusCode::INTERNAL_SERVER_ERROR, "")));
    }
    if method != Method::POST {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"));
    }
    let error_type = request
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, "unreadable body")),
    };
    let document: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if rest == "/init/error" {
        *lock(&shared.init_error) = Some((document, error_type));
        shared.init_failed.notify_waiters();
        return Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#));
    }
    let Some(invocation) = rest.strip_prefix("/invocation/") else {
        return Ok(reply(StatusCode::NOT_FOUND, "unknown path"));
    };
    let (request_id, kind) = match invocation.rsplit_once('/') {
        Some(parts) => parts,
        None => return Ok(reply(StatusCode::NOT_FOUND, "unknown path")),
    };
    let outcome = match kind {
        "response" => Outcome::Response(document),
        "error" => Outcome::Error {
            body: document,
            error_type,
        },
        _ => return Ok(reply(StatusCode::NOT_FOUND, "unknown path")),
    };
    match lock(&shared.pending).remove(request_id) {
        Some(done) => {
            let _ = done.send(outcome);
            Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
        }
        None => Ok(reply(
            StatusCode::BAD_REQUEST,
            r#"{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}"#,
        )),
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
