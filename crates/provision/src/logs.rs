//! The function's log lines (`wishctl logs`): `FilterLogEvents` on the stack's log group over a
//! time range, and `--follow` by polling it.
//!
//! `StartLiveTail` would stream, but it is an event stream that emulators such as moto do not
//! serve, and it needs its own IAM action; polling every few seconds is well inside
//! `FilterLogEvents`' rate limit and works the same everywhere. Each poll reads from a little
//! before the newest event seen (CloudWatch may ingest an event after a later one), and events
//! already printed are recognised by their event id, so nothing is printed twice and nothing
//! late is lost.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use stack::StackName;

use crate::calls::CallReport;
use crate::context::{Ctx, SdkResultExt};
use crate::{ProvisionError, Provisioner};

/// How far before the newest event seen each poll starts reading again, to catch events that
/// CloudWatch ingested late.
pub const FOLLOW_LOOKBACK: Duration = Duration::from_secs(30);

/// The shortest pause between two polls of `--follow`.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    pub event_id: String,
    /// Milliseconds since the Unix epoch, as CloudWatch records it.
    pub timestamp: i64,
    pub log_stream: String,
    /// The line without its trailing newline.
    pub message: String,
}

impl LogEvent {
    /// The time as RFC 3339 UTC with milliseconds.
    pub fn time(&self) -> String {
        let secs = stack::UtcTime::from_unix_millis(self.timestamp).to_string();
        format!(
            "{}.{:03}Z",
            secs.trim_end_matches('Z'),
            self.timestamp.rem_euclid(1000)
        )
    }
}

/// What to read of a log group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogQuery {
    /// The start of the window.
    pub since: SystemTime,
    /// Events per `FilterLogEvents` page (its `limit`, 1 to 10,000); `None` leaves it to the
    /// service (up to 10,000 events or 1 MB a page). Tests make many small pages with it.
    pub page_size: Option<i32>,
}

impl LogQuery {
    /// The window from `since` on, pages as the service makes them.
    pub fn since(since: SystemTime) -> Self {
        LogQuery {
            since,
            page_size: None,
        }
    }
}

/// The result of [`Provisioner::log_events`].
#[derive(Debug, Clone, Serialize)]
pub struct LogsReport {
    pub log_group: String,
    /// How many events were passed on.
    pub events: usize,
    /// How many `FilterLogEvents` pages were read.
    pub pages: usize,
    pub calls: CallReport,
}

/// The result of [`Provisioner::follow_logs`].
#[derive(Debug, Clone, Serialize)]
pub struct FollowReport {
    pub log_group: String,
    /// How many events were passed on.
    pub events: usize,
    pub polls: usize,
    pub calls: CallReport,
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Passes every event of `log_group` from `start_ms` on to `on_event`, page by page as the pages
/// arrive (nothing waits for the last page), oldest first: `interleaved` asks for the streams'
/// events merged in time order (AWS always does that and ignores the flag; moto needs it), and
/// each page is sorted by time on its own. Returns the number of events passed on and of pages.
/// Stops with [`ProvisionError::LogWindowTooLarge`] after [`crate::pages::MAX_PAGES`] pages, and
/// with `on_event`'s error (stdout closed) at once.
async fn read_from(
    ctx: &Ctx,
    log_group: &str,
    start_ms: i64,
    page_size: Option<i32>,
    on_event: &mut (impl FnMut(&LogEvent) -> anyhow::Result<()> + Send),
) -> anyhow::Result<(usize, usize)> {
    let logs = &ctx.clients.logs;
    let mut next = None;
    let mut passed = 0;
    let mut pages = crate::pages::Pages::new(|| format!("reading log group {log_group}"));
    let mut read = 0;
    loop {
        #[allow(deprecated)] // see above: ignored by AWS, honoured by emulators
        let request = logs
            .filter_log_events()
            .log_group_name(log_group)
            .start_time(start_ms)
            .interleaved(true)
            .set_limit(page_size)
            .set_next_token(next);
        let page = request
            .customize()
            .config_override(
                aws_sdk_cloudwatchlogs::config::Builder::default()
                    .timeout_config(crate::timeouts::log_search_timeout_config()),
            )
            .send()
            .await;
        let page = match page {
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                let region = crate::observe::region(ctx)?;
                anyhow::bail!(
                    "log group {log_group} does not exist in {region}: is the stack deployed \
                     there? (`wishctl list` shows the stacks of a region; --region picks another)"
                )
            }
            other => other.doing(|| format!("reading log group {log_group}"))?,
        };
        read += 1;
        // The stack lock's streams (`wishctl-lock-*`, see `lock`) share the log group; their
        // heartbeats are wishctl's bookkeeping, not the function's lines.
        let mut events: Vec<LogEvent> = page
            .events()
            .iter()
            .filter(|e| {
                !e.log_stream_name()
                    .is_some_and(|s| s.starts_with(crate::lock::LOCK_PREFIX))
            })
            .map(|e| LogEvent {
                event_id: e.event_id().unwrap_or_default().to_string(),
                timestamp: e.timestamp().unwrap_or_default(),
                log_stream: e.log_stream_name().unwrap_or_default().to_string(),
                message: e
                    .message()
                    .unwrap_or_default()
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            })
            .collect();
        events.sort_by(|a, b| (a.timestamp, &a.event_id).cmp(&(b.timestamp, &b.event_id)));
        for event in &events {
            on_event(event)?;
            passed += 1;
        }
        next = match pages.next(page.next_token()) {
            Err(crate::pages::PagesError::Limit { pages, .. }) => {
                return Err(ProvisionError::LogWindowTooLarge {
                    log_group: log_group.to_string(),
                    since: stack::UtcTime::from_unix_millis(start_ms).to_string(),
                    pages,
                    events: passed,
                }
                .into())
            }
            other => other?,
        };
        if next.is_none() {
            return Ok((passed, read));
        }
    }
}

/// What `--follow` has already passed on: event ids by timestamp, forgotten once they fall out
/// of the lookback window.
#[derive(Debug, Default)]
struct Seen {
    by_time: BTreeMap<i64, HashSet<String>>,
}

impl Seen {
    /// Whether the event is new (and remembers it).
    fn first_time(&mut self, event: &LogEvent) -> bool {
        self.by_time
            .entry(event.timestamp)
            .or_default()
            .insert(event.event_id.clone())
    }

    fn newest(&self) -> Option<i64> {
        self.by_time.keys().next_back().copied()
    }

    fn forget_before(&mut self, ms: i64) {
        self.by_time = self.by_time.split_off(&ms);
    }
}

impl Provisioner {
    /// The name of `stack`'s log group in this region.
    pub fn log_group(&self, stack: &StackName) -> anyhow::Result<String> {
        Ok(stack
            .resources(&crate::observe::region(&self.ctx)?)
            .log_group)
    }

    /// Passes the log lines of `stack`'s function in the window of `query` to `on_event`, oldest
    /// first, each page's lines as soon as that page is read. An error from `on_event` stops the
    /// reading and is returned.
    pub async fn log_events(
        &self,
        stack: &StackName,
        query: LogQuery,
        mut on_event: impl FnMut(&LogEvent) -> anyhow::Result<()> + Send,
    ) -> anyhow::Result<LogsReport> {
        let log_group = self.log_group(stack)?;
        let read = read_from(
            &self.ctx,
            &log_group,
            millis(query.since),
            query.page_size,
            &mut on_event,
        );
        let ((events, pages), calls) = self.counted(read).await?;
        Ok(LogsReport {
            log_group,
            events,
            pages,
            calls,
        })
    }

    /// Passes every log line of `stack`'s function in the window of `query` to `on_event`, then
    /// polls every `interval` for new ones until `until` (forever when `None`; the caller stops
    /// it on Ctrl-C by dropping the future). Each line is passed on once.
    pub async fn follow_logs(
        &self,
        stack: &StackName,
        query: LogQuery,
        until: Option<tokio::time::Instant>,
        interval: Duration,
        mut on_event: impl FnMut(&LogEvent) -> anyhow::Result<()> + Send,
    ) -> anyhow::Result<FollowReport> {
        let log_group = self.log_group(stack)?;
        let interval = interval.max(MIN_POLL_INTERVAL);
        let start = millis(query.since);
        let lookback = i64::try_from(FOLLOW_LOOKBACK.as_millis()).unwrap_or(i64::MAX);
        let follow = async {
            let mut seen = Seen::default();
            let mut passed = 0;
            let mut polls = 0;
            loop {
                let last =
                    matches!(until, Some(deadline) if tokio::time::Instant::now() >= deadline);
                let from = seen
                    .newest()
                    .map_or(start, |newest| newest.saturating_sub(lookback).max(start));
                seen.forget_before(from);
                let mut pass_new = |event: &LogEvent| {
                    if seen.first_time(event) {
                        passed += 1;
                        on_event(event)?;
                    }
                    Ok(())
                };
                read_from(&self.ctx, &log_group, from, query.page_size, &mut pass_new).await?;
                polls += 1;
                if last {
                    return anyhow::Ok((passed, polls));
                }
                let next_poll = tokio::time::Instant::now() + interval;
                match until {
                    // One last read at the deadline, so lines written just before it show.
                    Some(deadline) if next_poll >= deadline => {
                        tokio::time::sleep_until(deadline).await;
                    }
                    _ => tokio::time::sleep_until(next_poll).await,
                }
            }
        };
        let ((events, polls), calls) = self.counted(follow).await?;
        Ok(FollowReport {
            log_group,
            events,
            polls,
            calls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, timestamp: i64) -> LogEvent {
        LogEvent {
            event_id: id.to_string(),
            timestamp,
            log_stream: "s".to_string(),
            message: "m".to_string(),
        }
    }

    #[test]
    fn events_are_passed_on_once_even_when_polls_overlap() {
        let mut seen = Seen::default();
        assert!(seen.first_time(&event("a", 10)));
        assert!(seen.first_time(&event("b", 10)));
        assert!(!seen.first_time(&event("a", 10)));
        assert_eq!(seen.newest(), Some(10));
        seen.forget_before(10);
        assert!(
            !seen.first_time(&event("b", 10)),
            "kept at the window's edge"
        );
        seen.forget_before(11);
        assert_eq!(seen.newest(), None);
    }

    #[test]
    fn times_print_with_milliseconds_in_utc() {
        assert_eq!(
            event("a", 1_795_959_000_123).time(),
            "2026-11-29T13:30:00.123Z"
        );
        assert_eq!(event("a", 5).time(), "1970-01-01T00:00:00.005Z");
    }
}
