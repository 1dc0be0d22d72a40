//! moto's server mode as a local AWS for tests.
//!
//! One moto process per test binary, started on first use on a free loopback port and killed when
//! the test process exits (a watchdog shell ends it when its parent is gone, since Rust never runs
//! destructors of statics). Tests that share it take a [`MotoSession`], which serialises them and
//! resets moto, so each test starts from an empty account.
//!
//! The server binary is found in this order: `$WISHCTL_MOTO_SERVER`, `<workspace>/.venv/bin/moto_server`,
//! `moto_server` on `PATH`. `$WISHCTL_MOTO_ENDPOINT` points the tests at a server started elsewhere.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The region every test uses.
pub const REGION: &str = "us-east-1";
/// moto's default account id.
pub const ACCOUNT_ID: &str = "123456789012";

static SERVER: OnceLock<MotoServer> = OnceLock::new();
static SESSION_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running moto server.
#[derive(Debug)]
pub struct MotoServer {
    endpoint: String,
    addr: SocketAddr,
    _child: Option<Mutex<Child>>,
}

impl MotoServer {
    /// The moto server of this test process, started on first use.
    ///
    /// Panics (this is test support) with a message saying how to install moto when it cannot start.
    pub fn shared() -> &'static MotoServer {
        SERVER.get_or_init(|| match std::env::var("WISHCTL_MOTO_ENDPOINT") {
            Ok(endpoint) => MotoServer::external(endpoint),
            Err(_) => MotoServer::start(),
        })
    }

    fn external(endpoint: String) -> MotoServer {
        let authority = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let addr = authority.parse().unwrap_or_else(|_| {
            panic!("WISHCTL_MOTO_ENDPOINT must be http://IP:PORT, got {endpoint}")
        });
        MotoServer {
            endpoint,
            addr,
            _child: None,
        }
    }

    fn start() -> MotoServer {
        let binary = moto_binary();
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // The watchdog keeps moto alive exactly as long as this test process.
        let script = format!(
            "\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & moto=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 0.2; done; \
             kill $moto 2>/dev/null",
            parent = std::process::id()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&binary)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let server = MotoServer {
            endpoint: format!("http://{addr}"),
            addr,
            _child: Some(Mutex::new(child)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http_request(addr, "GET", "/moto-api/").is_ok() {
                return server;
            }
            if Instant::now() > deadline {
                panic!(
                    "moto_server ({}) did not answer on {addr} within 30 s; install it with \
                     `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'`",
                    binary.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Waits for the other tests of this process to finish with moto, then resets it.
    pub async fn session(&'static self) -> MotoSession {
        let guard = SESSION_LOCK.lock().await;
        self.reset();
        MotoSession {
            server: self,
            _guard: guard,
        }
    }

    /// Clears every resource in every service (`POST /moto-api/reset`).
    pub fn reset(&self) {
        let response = http_request(self.addr, "POST", "/moto-api/reset")
            .unwrap_or_else(|e| panic!("resetting moto at {}: {e}", self.endpoint));
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "moto reset failed: {response}"
        );
    }
}

/// Exclusive use of the shared moto server by one test, which starts from an empty account.
#[derive(Debug)]
pub struct MotoSession {
    server: &'static MotoServer,
    _guard: tokio::sync::MutexGuard<'static, ()>,
}

impl MotoSession {
    pub fn endpoint(&self) -> &str {
        self.server.endpoint()
    }

    /// An SDK configuration pointing every client at moto, with static test credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_for(self.endpoint()).await
    }
}

/// An SDK configuration for any local endpoint (moto, or a proxy in front of it), with the
/// suite's first-attempt timeout ([`SUITE_ATTEMPT_TIMEOUT_SECS`]).
pub async fn sdk_config_for(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_secs(
                    SUITE_ATTEMPT_TIMEOUT_SECS,
                ))
                .build(),
        )
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "testkit",
        ))
        .load()
        .await
}

/// The first-attempt timeout (`WISHCTL_ATTEMPT_TIMEOUT`, seconds) of the `wishctl` processes and
/// provisioners of the suite: 10 s instead of the 3 s wishctl ships with. One moto serves every
/// test of a suite run on two cores, beside builds and fuzzing; a call it answers late there is
/// load, not the stall the short first attempt is for, and a test of something else must not
/// depend on moto answering within 3 s. The shipped timeouts are exercised where they are the
/// subject: the slow-endpoint test (deploy's `aws_settings`), the unit tests of
/// `provision::timeouts` and the fault campaign with `WISHCTL_CAMPAIGN_TIMEOUTS=shipped`.
pub const SUITE_ATTEMPT_TIMEOUT_SECS: u64 = 10;

/// Environment variables that point an AWS SDK process (`wishctl`, `bootstrap`) at `endpoint`,
/// with the suite's attempt timeout ([`SUITE_ATTEMPT_TIMEOUT_SECS`]).
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        (
            "WISHCTL_ATTEMPT_TIMEOUT",
            SUITE_ATTEMPT_TIMEOUT_SECS.to_string(),
        ),
    ]
}

fn moto_binary() -> PathBuf {
    if let Ok(path) = std::env::var("WISHCTL_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let venv = crate::workspace_root().join(".venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("moto_server")
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// A minimal blocking HTTP/1.1 request, enough for moto's control API.
fn http_request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}
