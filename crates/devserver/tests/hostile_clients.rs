//! The dev server against clients that misbehave on purpose, over raw TCP: slowloris headers, a
//! body that never ends, a GET with a body it never sends, more idle connections than allowed
//! (and a flood of them), and a request log whose reader has stalled. In each case the server keeps serving others.

use std::io::Write as _;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use devserver::{
    self_issuer_url, DevKey, DevServer, DevServerOptions, LineLog, LogFormat, RequestLog,
    ServerLimits, TokenIssuer, TokenRequest, DEFAULT_AUDIENCE, MAX_LINGERING_REFUSALS,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use wishlist::MemoryStore;

/// How long a test waits for something the server must do by itself, at most.
const PATIENCE: Duration = Duration::from_secs(10);

struct Fixture {
    server: DevServer,
    key: Arc<DevKey>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn token(&self) -> String {
        self.key
            .mint(&TokenRequest {
                issuer: self_issuer_url(self.server.local_addr().port()),
                subject: "auth0|hostile".into(),
                audience: DEFAULT_AUDIENCE.into(),
                scopes: vec![],
                expires_in: Duration::from_secs(600),
            })
            .expect("mint")
            .token
    }
}

async fn start(limits: ServerLimits, log: RequestLog) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, _) = DevKey::load_or_create(dir.path()).expect("dev key");
    let key = Arc::new(key);
    let mut options = DevServerOptions::new(
        TokenIssuer::SelfIssued(Arc::clone(&key)),
        Arc::new(MemoryStore::new()),
    );
    options.listen = "127.0.0.1:0".parse().expect("addr");
    options.log = log;
    options.limits = limits;
    let server = DevServer::start(options).await.expect("dev server starts");
    Fixture {
        server,
        key,
        _dir: dir,
    }
}

fn limits(max_connections: usize, header_ms: u64, body_ms: u64) -> ServerLimits {
    ServerLimits {
        max_connections,
        header_read_timeout: Duration::from_millis(header_ms),
        body_read_timeout: Duration::from_millis(body_ms),
    }
}

/// A GET from a well-behaved client: its status.
async fn get_status(server: &DevServer) -> u16 {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .expect("client")
        .get(server.service_url())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Waits (bounded) until the server holds no connection: the startup key fetch of a self-issued
/// server connects to itself.
async fn wait_for_no_connections(server: &DevServer) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while server.stats().open_connections > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.stats().open_connections, 0);
}

async fn connect(server: &DevServer) -> TcpStream {
    TcpStream::connect(server.local_addr())
        .await
        .expect("connect")
}

/// Everything the server sends until it closes the connection (bounded by [`PATIENCE`]);
/// `None` if it is still open then.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let done = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    done.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_and_others_are_served_meanwhile() {
    // GIVEN a server that gives headers 500 ms
    let fx = start(limits(64, 500, 5_000), RequestLog::Off).await;
    // WHEN a client sends its headers one byte at a time, slower than that
    let mut slow = connect(&fx.server).await;
    slow.write_all(b"GET /wish-list-service HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let trickle = tokio::spawn(async move {
        for _ in 0..200 {
            if slow.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow
    });
    // THEN others are served meanwhile
    assert_eq!(get_status(&fx.server).await, 200);
    // AND the slow client's connection is closed by the server, without an answer to its request
    let mut slow = trickle.await.expect("trickle task");
    let answer = read_until_closed(&mut slow).await;
    let answer = answer.expect("the server closes the slowloris connection");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert_eq!(get_status(&fx.server).await, 200);
}

#[tokio::test]
async fn a_body_that_never_ends_gets_408_and_others_are_served_meanwhile() {
    // GIVEN a server that gives bodies 500 ms, and an authorized POST
    let fx = start(limits(64, 5_000, 500), RequestLog::Off).await;
    let mut stalled = connect(&fx.server).await;
    let head = format!(
        "POST /wish-list-service HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"name\": ",
        fx.token()
    );
    // WHEN its body stops after a few bytes
    stalled.write_all(head.as_bytes()).await.expect("write");
    // THEN others are served meanwhile
    assert_eq!(get_status(&fx.server).await, 200);
    // AND the stalled request is answered 408 and its connection closed
    let answer = read_until_closed(&mut stalled)
        .await
        .expect("the server closes the connection");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#"{"message":"Request Timeout"}"#),
        "{answer}"
    );
}

#[tokio::test]
async fn a_get_with_a_body_is_answered_without_reading_the_body() {
    // GIVEN a server with a long body time limit
    let fx = start(limits(64, 5_000, 60_000), RequestLog::Off).await;
    // WHEN a GET announces a 5 MB body and never sends it
    let mut stream = connect(&fx.server).await;
    stream
        .write_all(b"GET /wish-list-service HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
        .await
        .expect("write");
    // THEN it is answered at once (long before the body limit): the body was never waited for
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
        .await
        .expect("answered without waiting for the body")
        .expect("read");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_announced_over_10_mb_is_refused_unread() {
    let fx = start(limits(64, 5_000, 60_000), RequestLog::Off).await;
    let mut stream = connect(&fx.server).await;
    let head = format!(
        "POST /wish-list-service HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 20000000\r\n\r\n",
        fx.token()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let answer = read_until_closed(&mut stream)
        .await
        .expect("answered and closed without the body");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_service_resumes_when_they_go() {
    // GIVEN a server that serves 16 connections at once, with a long header limit
    let fx = start(limits(16, 30_000, 5_000), RequestLog::Off).await;
    wait_for_no_connections(&fx.server).await;
    // WHEN 16 idle connections hold every slot
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(connect(&fx.server).await);
    }
    // (the server has taken them all)
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while fx.server.stats().open_connections < 16 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fx.server.stats().open_connections, 16);
    // THEN one more connection is answered 503 at once, not left hanging
    let mut extra = connect(&fx.server).await;
    extra
        .write_all(b"GET /wish-list-service HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = read_until_closed(&mut extra).await.expect("closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(fx.server.stats().refused_connections >= 1);
    // AND once some idle clients go, others are served again
    idle.truncate(8);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while fx.server.stats().open_connections > 8 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(get_status(&fx.server).await, 200);
}

#[tokio::test]
async fn a_flood_over_the_cap_holds_a_bounded_number_of_refusals_and_each_gets_503() {
    // GIVEN a server with 2 slots, both held by idle clients
    let fx = start(limits(2, 30_000, 5_000), RequestLog::Off).await;
    wait_for_no_connections(&fx.server).await;
    let idle = vec![connect(&fx.server).await, connect(&fx.server).await];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while fx.server.stats().open_connections < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fx.server.stats().open_connections, 2);
    // WHEN 200 more clients connect and keep their connections open, sending nothing
    const FLOOD: usize = 200;
    let mut flood = Vec::new();
    let mut most_lingering = 0;
    for _ in 0..FLOOD {
        flood.push(connect(&fx.server).await);
        most_lingering = most_lingering.max(fx.server.stats().lingering_refusals);
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while fx.server.stats().refused_connections < FLOOD as u64
        && tokio::time::Instant::now() < deadline
    {
        most_lingering = most_lingering.max(fx.server.stats().lingering_refusals);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // THEN every one is refused, and the server never holds more than its bound of them
    assert_eq!(fx.server.stats().refused_connections, FLOOD as u64);
    assert!(
        most_lingering <= MAX_LINGERING_REFUSALS,
        "{most_lingering} refused connections held at once"
    );
    // AND each gets a whole 503 and its connection is closed by the server
    for stream in &mut flood {
        let answer = read_until_closed(stream)
            .await
            .expect("the server closes a refused connection");
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            answer.ends_with(r#"{"message":"Service Unavailable"}"#),
            "{answer}"
        );
    }
    // AND once the idle clients go, others are served again
    drop(idle);
    wait_for_no_connections(&fx.server).await;
    assert_eq!(get_status(&fx.server).await, 200);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_header_limit_and_free_their_slots() {
    // GIVEN a server with 8 slots and a 300 ms header limit, all slots taken by idle clients
    let fx = start(limits(8, 300, 5_000), RequestLog::Off).await;
    wait_for_no_connections(&fx.server).await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(connect(&fx.server).await);
    }
    // WHEN they stay silent
    // THEN the server closes every one of them by itself
    for stream in &mut idle {
        assert!(read_until_closed(stream).await.is_some());
    }
    // AND the slots are free for others (each is released just after its socket closes)
    wait_for_no_connections(&fx.server).await;
    assert_eq!(get_status(&fx.server).await, 200);
    assert_eq!(fx.server.stats().refused_connections, 0);
}

#[tokio::test]
async fn many_idle_connections_under_the_cap_do_not_slow_others_down() {
    // GIVEN 200 idle connections on a server with 512 slots
    let fx = start(ServerLimits::default(), RequestLog::Off).await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(connect(&fx.server).await);
    }
    // THEN 20 requests of other clients are all served
    for _ in 0..20 {
        assert_eq!(get_status(&fx.server).await, 200);
    }
    assert_eq!(fx.server.stats().refused_connections, 0);
    drop(idle);
}

/// An output that never accepts a byte until the test ends: a stderr nobody reads.
struct StalledOutput {
    release: Mutex<mpsc::Receiver<()>>,
}

impl std::io::Write for StalledOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self
            .release
            .lock()
            .map(|r| r.recv_timeout(Duration::from_secs(60)));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.write(b"").map(|_| ())
    }
}

#[tokio::test]
async fn a_stalled_request_log_never_holds_up_requests() {
    // GIVEN a request log whose output has stalled, with room for 8 lines
    let (release, stalled) = mpsc::channel::<()>();
    let log = LineLog::spawn(
        LogFormat::Text,
        Box::new(StalledOutput {
            release: Mutex::new(stalled),
        }),
        8,
    )
    .expect("log thread");
    let fx = start(limits(64, 5_000, 5_000), RequestLog::Lines(log)).await;
    // WHEN 300 requests are made
    for _ in 0..300 {
        // THEN every one is answered
        assert_eq!(get_status(&fx.server).await, 200);
    }
    // AND the lines that could not be written were dropped and counted, not waited for
    assert!(
        fx.server.stats().dropped_log_lines >= 250,
        "{:?}",
        fx.server.stats()
    );
    drop(release);
    let _ = std::io::stderr().flush();
}
