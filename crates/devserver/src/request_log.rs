//! The request log: one record per request, never the `Authorization` header, a token or a
//! client secret. Writing it never holds up a request: [`LineLog`] hands each record, as a line,
//! to a [`LogQueue`] (a bounded queue in front of a thread of its own), and when that queue is
//! full (whoever reads stderr has stalled) the line is dropped and counted instead of waited
//! for; the writer reports how many were dropped once it can write again.

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use serde::Serialize;

use crate::log_queue::{LogQueue, LOG_QUEUE_CAPACITY};

/// One request as logged: never the `Authorization` header or the token.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// When the request ended (RFC 3339, UTC).
    pub time: String,
    pub request_id: String,
    pub method: String,
    pub path: String,
    /// `None` for paths outside the route table.
    pub route_key: Option<String>,
    pub status: u16,
    pub latency_us: u128,
    /// `none` (open route or no route), `allowed` or `denied`.
    pub auth: &'static str,
    /// The token's `sub` when allowed (or the client id a token was issued to).
    pub sub: Option<String>,
    /// The `error_description` when denied.
    pub reason: Option<String>,
}

impl fmt::Display for RequestRecord {
    /// logfmt: `request_id=... method=POST path=/wish-list-service status=201 ...` (without the
    /// time, which writers put first).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request_id={} method={} path={} route={} status={} latency_ms={:.3} auth={}",
            self.request_id,
            logfmt_value(&self.method),
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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `time=... key=value` pairs.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where each request's log record goes.
#[derive(Clone, Default)]
pub enum RequestLog {
    /// `tracing` at INFO, target `devserver::request`.
    #[default]
    Tracing,
    /// Nowhere (benchmarks).
    Off,
    /// A callback, called on the request's task: it must not block.
    Custom(Arc<dyn Fn(&RequestRecord) + Send + Sync>),
    /// Lines written by a thread of their own; never blocks a request (see [`LineLog`]).
    Lines(LineLog),
}

impl fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestLog::Tracing => f.write_str("Tracing"),
            RequestLog::Off => f.write_str("Off"),
            RequestLog::Custom(_) => f.write_str("Custom"),
            RequestLog::Lines(lines) => f
                .debug_struct("Lines")
                .field("dropped", &lines.dropped())
                .finish(),
        }
    }
}

impl RequestLog {
    /// Lines on stderr in `format`, written by a queue and thread of their own.
    pub fn stderr(format: LogFormat) -> std::io::Result<RequestLog> {
        LineLog::spawn(format, Box::new(std::io::stderr()), LOG_QUEUE_CAPACITY)
            .map(RequestLog::Lines)
    }

    /// Lines in `format` on `queue`, shared with whatever else writes there.
    pub fn lines(queue: LogQueue, format: LogFormat) -> RequestLog {
        RequestLog::Lines(LineLog::new(queue, format))
    }

    pub(crate) fn record(&self, record: &RequestRecord) {
        match self {
            RequestLog::Off => {}
            RequestLog::Tracing => tracing::info!(target: "devserver::request", "{record}"),
            RequestLog::Custom(log) => log(record),
            RequestLog::Lines(lines) => lines.push(record),
        }
    }

    /// Records dropped so far because the writer could not keep up (0 for other logs).
    pub fn dropped(&self) -> u64 {
        match self {
            RequestLog::Lines(lines) => lines.dropped(),
            _ => 0,
        }
    }
}

/// Request records as lines of a [`LogQueue`]: formatted on the request's task (a few hundred
/// bytes, microseconds) and written by the queue's thread.
#[derive(Clone)]
pub struct LineLog {
    queue: LogQueue,
    format: LogFormat,
}

impl fmt::Debug for LineLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineLog")
            .field("format", &self.format)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl LineLog {
    /// Records in `format` on `queue`, which other lines may share (`wishctl dev` puts its
    /// diagnostics there too).
    pub fn new(queue: LogQueue, format: LogFormat) -> LineLog {
        LineLog { queue, format }
    }

    /// A queue of its own for `out`, with room for `capacity` waiting records.
    pub fn spawn(
        format: LogFormat,
        out: Box<dyn Write + Send>,
        capacity: usize,
    ) -> std::io::Result<LineLog> {
        LogQueue::spawn(out, capacity, format).map(|queue| LineLog::new(queue, format))
    }

    /// Queues `record`, or drops and counts it when the queue is full. Never blocks.
    pub fn push(&self, record: &RequestRecord) {
        let line = match self.format {
            LogFormat::Json => match serde_json::to_string(record) {
                Ok(line) => line,
                Err(_) => return,
            },
            LogFormat::Text => format!("time={} {record}", record.time),
        };
        self.queue.push_line(line);
    }

    /// Lines dropped so far by the queue (its other lines included).
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_queue::gated_output::{gate, Gated};

    fn record(n: usize) -> RequestRecord {
        RequestRecord {
            time: "2026-01-01T00:00:00Z".into(),
            request_id: format!("r{n}"),
            method: "GET".into(),
            path: "/wish-list-service".into(),
            route_key: Some("GET /wish-list-service".into()),
            status: 200,
            latency_us: 1500,
            auth: "none",
            sub: None,
            reason: None,
        }
    }

    #[test]
    fn a_stalled_writer_never_blocks_and_the_dropped_lines_are_counted_and_reported() {
        // GIVEN a log whose output is stalled and a queue of 4
        let (
            output,
            Gated {
                open,
                busy: writer_busy,
                written,
            },
        ) = gate();
        let log = LineLog::spawn(LogFormat::Text, Box::new(output), 4).unwrap();
        log.push(&record(0));
        writer_busy
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the writer thread writes");
        // WHEN 100 more records arrive while it is stuck (this would hang if push waited)
        for n in 1..=100 {
            log.push(&record(n));
        }
        // THEN all but the queue's 4 are dropped and counted
        assert_eq!(log.dropped(), 96);
        // AND once the output moves again, the loss is reported in the log itself
        for _ in 0..1000 {
            let _ = open.send(());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            // The queue drains once the output moves; until then a push may still be dropped.
            log.push(&record(1000));
            let text = String::from_utf8_lossy(&written.lock().unwrap()).to_string();
            if text.contains("request_id=r1000") {
                assert!(text.contains("dropped_log_lines=9"), "{text}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{text}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn text_lines_quote_values_that_need_it() {
        let mut r = record(1);
        r.reason = Some("the token has expired".into());
        r.path = "/a b".into();
        let line = r.to_string();
        assert!(line.contains(r#"path="/a b""#), "{line}");
        assert!(line.contains(r#"reason="the token has expired""#), "{line}");
    }
}
