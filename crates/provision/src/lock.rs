//! A lease lock per stack, so that two runs of one stack never both create what has no unique
//! name (the HTTP API, its authorizer, integration and routes), and `down` never interleaves
//! with an `up`.
//!
//! # Design, and why
//!
//! The lock is a CloudWatch Logs stream named `wishctl-lock-GENERATION-HOLDER` in the stack's own
//! log group. `CreateLogStream` is an atomic create-if-absent in AWS (a second create of the same
//! name fails with `ResourceAlreadyExistsException`), it is regional like the stack, needs no
//! extra resource (the log group is the stack's and `down` removes it, locks included), and it
//! is cheap. Taking the lock:
//!
//! 1. list the lock streams; while another holder is live, wait (polling, bounded);
//! 2. create the stream of the next generation (one past the highest seen): of two runs that saw
//!    the same highest generation only one create succeeds;
//! 3. list again: if any other live lock stream exists (a run that listed before a release and
//!    so picked an old generation number), back off, delete ours and retry after a random pause.
//!    Of any two runs that both created a stream, the later lister sees the other's stream, so
//!    at most one proceeds (create-then-check; both may back off, and the random pause breaks
//!    the tie).
//!
//! Releasing creates the marker stream `wishctl-lock-GENERATION-released` and deletes the
//! holder's stream, so generations only grow: `up` lists the lock streams *before* it observes
//! the stack, and when it then takes exactly the next generation, no other run took the lock in
//! between and its observation is still true; otherwise it observes and plans again under the
//! lock. The next holder deletes the streams of older generations.
//!
//! A holder proves it is alive by writing a heartbeat event every few seconds, which moves the
//! stream's `lastIngestionTime`. A stream whose timestamps do not move for the lease period
//! (default 30 s, `WISHCTL_LOCK_STALE_SECS` overrides it), measured on the waiter's own clock
//! (no clock skew between machines matters), is stale: its holder crashed or was killed. A holder
//! on the same machine whose process is gone is stale at once (the stream name carries host, boot
//! id, PID namespace and pid), so a killed local run delays the next one by nothing. Waiting is
//! bounded ([`LockSettings::max_wait`]); the error then says who holds the lock and since when.
//!
//! `up` takes the lock only when its plan creates something (updates of named resources cannot
//! duplicate anything, and a code-only update stays as short as it is), so a no-op `up` stays
//! read-only and two `up`s end with one API and one authorizer. `down` takes it for the whole teardown and deletes
//! the log group last, which releases it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;

use crate::context::{Ctx, SdkResultExt};
use crate::pages::Pages;
use crate::ResourceKind;

/// Every lock stream's name starts with this.
pub(crate) const LOCK_PREFIX: &str = "wishctl-lock-";
/// The holder part of a release marker's name.
const RELEASED: &str = "released";

/// Bounds of the lock.
#[derive(Debug, Clone)]
pub(crate) struct LockSettings {
    /// A lock whose heartbeat did not move for this long is stale.
    pub stale_after: Duration,
    /// How often the holder writes its heartbeat.
    pub heartbeat: Duration,
    /// How long to wait for another holder before giving up.
    pub max_wait: Duration,
    /// How often a waiter looks again.
    pub poll: Duration,
}

impl LockSettings {
    /// 30 s lease, heartbeat every 5 s, wait at most 15 minutes (longer than any `up` runs
    /// with every bounded wait of [`crate::Settings`]); `WISHCTL_LOCK_STALE_SECS` overrides the
    /// lease (fault campaigns shorten it).
    pub fn from_env() -> Self {
        let stale_after = std::env::var("WISHCTL_LOCK_STALE_SECS")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|s| (1..=3600).contains(s))
            .map_or(Duration::from_secs(30), Duration::from_secs);
        LockSettings {
            stale_after,
            heartbeat: (stale_after / 6).max(Duration::from_millis(500)),
            max_wait: Duration::from_secs(15 * 60),
            poll: Duration::from_millis(1000).min(stale_after / 2),
        }
    }
}

/// The lock, held. Release it with [`Lease::release`]; dropping it only stops the heartbeat (the
/// stream then goes stale).
#[derive(Debug)]
pub(crate) struct Lease {
    group: String,
    stream: String,
    /// The generation this lease holds.
    pub generation: u64,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
        held_here().remove(&self.stream);
    }
}

/// The lock streams that leases of this process hold right now. A stream named for this process
/// that is not in here is left over from an earlier lease of this process whose release did not
/// reach AWS (a fault on the marker and on the delete): nobody holds it, and `up` resuming after a
/// lost answer must not wait for it to go stale.
fn held_here() -> std::sync::MutexGuard<'static, std::collections::HashSet<String>> {
    static HELD: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let held = HELD.get_or_init(Default::default);
    match held.lock() {
        Ok(held) => held,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Lease {
    /// Stops the heartbeat, marks the generation released and deletes the holder's stream (best
    /// effort: a stream left behind goes stale).
    pub async fn release(self, ctx: &Ctx) {
        self.heartbeat.abort();
        let marker = format!("{LOCK_PREFIX}{:010}-{RELEASED}", self.generation);
        let marked = ctx
            .clients
            .logs
            .create_log_stream()
            .log_group_name(&self.group)
            .log_stream_name(&marker)
            .send()
            .await;
        if let Err(err) = marked {
            tracing::debug!(stream = %marker, error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "marking the lock released");
        }
        let deleted = ctx
            .clients
            .logs
            .delete_log_stream()
            .log_group_name(&self.group)
            .log_stream_name(&self.stream)
            .send()
            .await;
        if let Err(err) = deleted {
            tracing::debug!(stream = %self.stream, error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "releasing the lock");
        }
    }

    /// Forgets the lease without a call: the log group that held it is gone.
    pub fn gone(self) {
        self.heartbeat.abort();
    }
}

/// A lock stream's (creation time, last ingestion time): moves with every heartbeat.
type Marker = (Option<i64>, Option<i64>);

/// One lock stream as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LockStream {
    name: String,
    generation: u64,
    /// `place.pid` of the run that created it (see [`this_place`]).
    holder: String,
    marker: Marker,
}

fn parse_stream(name: &str, creation: Option<i64>, ingestion: Option<i64>) -> Option<LockStream> {
    let rest = name.strip_prefix(LOCK_PREFIX)?;
    let (generation, holder) = rest.split_once('-')?;
    Some(LockStream {
        name: name.to_string(),
        generation: generation.parse().ok()?,
        holder: holder.to_string(),
        marker: (creation, ingestion),
    })
}

/// `place.pid` of this process ([`this_place`]): a lock stream names its holder, so that a
/// waiter in the same place sees at once that a killed holder is gone.
fn this_holder() -> String {
    format!("{}.{}", this_place(), std::process::id())
}

/// Where a pid means one process: the host name, the kernel's boot id (two machines with the
/// same host name differ in it) and the PID namespace (two containers of one machine that share
/// a host name, each with a pid 1 of its own, differ in it), as `host.boot.ns`. A holder whose
/// place is not this one is never judged by this machine's `/proc`: it counts as alive until
/// its heartbeat stops. Without `/proc` (not Linux) the place is the host name alone, and no
/// holder is ever judged dead by its pid.
fn this_place() -> String {
    let boot: String = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    // `pid:[4026531836]`: the namespace's inode number.
    let namespace: String = std::fs::read_link("/proc/self/ns/pid")
        .map(|link| link.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .take(20)
        .collect();
    if boot.is_empty() || namespace.is_empty() {
        return host_name();
    }
    format!("{}.{boot}.{namespace}", host_name())
}

fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .take(64)
        .collect();
    if clean.is_empty() {
        "host".to_string()
    } else {
        clean
    }
}

/// Whether nobody holds `stream` any more, as far as this machine can tell: its holder is a
/// process of this machine that no longer runs, or this very process without a lease on it.
fn abandoned(stream: &LockStream) -> bool {
    if stream.holder == this_holder() {
        return !held_here().contains(&stream.name);
    }
    holder_is_dead_here(&stream.holder)
}

/// Whether `holder` names a process of this place ([`this_place`]) that no longer runs. A
/// holder written by an older wishctl (`host.pid`, no boot id or namespace) is never judged
/// here: it may be another container's.
fn holder_is_dead_here(holder: &str) -> bool {
    let Some((place, pid)) = holder.rsplit_once('.') else {
        return false;
    };
    let here = this_place();
    if place != here || here == host_name() || !std::path::Path::new("/proc/self").exists() {
        return false;
    }
    match pid.parse::<u32>() {
        Ok(pid) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => false,
    }
}

/// Whether `stream` is a holder's (not a release marker) whose generation was not released.
fn unreleased(stream: &LockStream, all: &[LockStream]) -> bool {
    stream.holder != RELEASED
        && !all
            .iter()
            .any(|s| s.holder == RELEASED && s.generation == stream.generation)
}

/// The lock as seen before observing the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peek {
    /// The highest generation taken so far (0: never, or no log group).
    pub generation: u64,
    /// Whether some run may hold the lock right now.
    pub busy: bool,
}

/// Lists the lock once: what [`acquire`] later compares with to know whether its observation
/// is still true.
pub(crate) async fn peek(ctx: &Ctx, group: &str) -> anyhow::Result<Peek> {
    let Some(streams) = list(ctx, group).await? else {
        return Ok(Peek {
            generation: 0,
            busy: false,
        });
    };
    Ok(Peek {
        generation: streams.iter().map(|s| s.generation).max().unwrap_or(0),
        busy: streams
            .iter()
            .any(|s| unreleased(s, &streams) && !abandoned(s)),
    })
}

/// What the waiter has seen of each stream: its marker and since when it has not moved.
#[derive(Debug, Default)]
struct Watch {
    seen: HashMap<String, (Marker, Instant)>,
}

impl Watch {
    /// Whether `stream` still belongs to a live holder.
    fn live(&mut self, stream: &LockStream, stale_after: Duration) -> bool {
        if abandoned(stream) {
            return false;
        }
        let now = Instant::now();
        let entry = self
            .seen
            .entry(stream.name.clone())
            .or_insert((stream.marker, now));
        if entry.0 != stream.marker {
            *entry = (stream.marker, now);
        }
        now.duration_since(entry.1) < stale_after
    }
}

/// The lock streams of `group`; `None` when the log group does not exist.
async fn list(ctx: &Ctx, group: &str) -> anyhow::Result<Option<Vec<LockStream>>> {
    let mut streams = Vec::new();
    let mut next = None;
    // A handful of streams at most (stale ones are removed by the next holder); the guard stops
    // an endpoint that keeps answering with a next token (a cut-off listing could hide a holder).
    let mut pages = Pages::new(|| format!("listing the lock streams of log group {group}"));
    loop {
        let page = ctx
            .clients
            .logs
            .describe_log_streams()
            .log_group_name(group)
            .log_stream_name_prefix(LOCK_PREFIX)
            .set_next_token(next)
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(err) => {
                return Err(err).doing(|| format!("listing the lock streams of log group {group}"))
            }
        };
        streams.extend(page.log_streams().iter().filter_map(|s| {
            parse_stream(
                s.log_stream_name()?,
                s.creation_time(),
                s.last_ingestion_time(),
            )
        }));
        next = pages.next(page.next_token())?;
        if next.is_none() {
            return Ok(Some(streams));
        }
    }
}

/// What [`acquire`] found.
#[derive(Debug)]
pub(crate) enum Acquired {
    Held(Lease),
    /// The log group does not exist (any more): there is nothing to lock in.
    NoLogGroup,
}

/// Takes the stack's lock in `group`, waiting (bounded) while another run holds it.
pub(crate) async fn acquire(
    ctx: &Ctx,
    group: &str,
    settings: &LockSettings,
) -> anyhow::Result<Acquired> {
    let logs = &ctx.clients.logs;
    let holder = this_holder();
    let started = Instant::now();
    let mut watch = Watch::default();
    let mut said_waiting = false;
    loop {
        let Some(streams) = list(ctx, group).await? else {
            return Ok(Acquired::NoLogGroup);
        };
        let mut live: Vec<&LockStream> = Vec::new();
        for stream in &streams {
            if unreleased(stream, &streams) && watch.live(stream, settings.stale_after) {
                live.push(stream);
            }
        }
        if let Some(other) = live.first() {
            if started.elapsed() >= settings.max_wait {
                anyhow::bail!(
                    "another wishctl run ({}) is changing this stack: it holds lock {} in log group {group}. \
                     Waited {}s; retry when it has finished (a crashed run's lock expires {}s after its last heartbeat)",
                    other.holder,
                    other.name,
                    settings.max_wait.as_secs(),
                    settings.stale_after.as_secs()
                );
            }
            if !said_waiting {
                ctx.progress.report(
                    ResourceKind::LogGroup,
                    group,
                    format!(
                        "waiting for another wishctl run ({}) to finish with this stack",
                        other.holder
                    ),
                );
                said_waiting = true;
            }
            tokio::time::sleep(settings.poll).await;
            continue;
        }
        let generation = streams.iter().map(|s| s.generation).max().unwrap_or(0) + 1;
        let name = format!("{LOCK_PREFIX}{generation:010}-{holder}");
        let created = logs
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(&name)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_already_exists_exception()) =>
            {
                // Another run took this generation first.
                continue;
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(Acquired::NoLogGroup);
            }
            Err(err) => {
                return Err(err)
                    .doing(|| format!("creating lock stream {name} in log group {group}"))
            }
        }
        // Create-then-check: any other live lock means a run that may have proceeded.
        let Some(after) = list(ctx, group).await? else {
            return Ok(Acquired::NoLogGroup);
        };
        let contended = after
            .iter()
            .filter(|s| s.name != name)
            .any(|s| unreleased(s, &after) && watch.live(s, settings.stale_after));
        if contended {
            let _ = logs
                .delete_log_stream()
                .log_group_name(group)
                .log_stream_name(&name)
                .send()
                .await;
            tokio::time::sleep(jitter(settings.poll)).await;
            continue;
        }
        // Ours. Older generations (released markers, stale streams of crashed runs) are cleared
        // by the holder's background task, off the caller's path (best effort: a stream left
        // behind is cleared by the next holder); ours is now the highest, so generations keep
        // growing.
        let older: Vec<String> = after
            .iter()
            .filter(|s| s.generation < generation)
            .map(|s| s.name.clone())
            .collect();
        held_here().insert(name.clone());
        let heartbeat = tokio::spawn(hold(
            logs.clone(),
            group.to_string(),
            name.clone(),
            older,
            settings.heartbeat,
        ));
        return Ok(Acquired::Held(Lease {
            group: group.to_string(),
            stream: name,
            generation,
            heartbeat,
        }));
    }
}

/// A pause between a fifth and the whole of `poll`, from the clock's low bits (no RNG crate).
fn jitter(poll: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let share = 0.2 + 0.8 * f64::from(nanos % 1000) / 1000.0;
    poll.mul_f64(share)
}

/// The holder's background task, until aborted: deletes the `older` lock streams (all at once)
/// beside the heartbeat.
async fn hold(
    logs: aws_sdk_cloudwatchlogs::Client,
    group: String,
    stream: String,
    older: Vec<String>,
    every: Duration,
) {
    let clear = older.iter().map(|old| {
        logs.delete_log_stream()
            .log_group_name(&group)
            .log_stream_name(old)
            .send()
    });
    tokio::join!(
        futures::future::join_all(clear),
        heartbeat(&logs, &group, &stream, every)
    );
}

/// Writes one event every `every` until aborted, which moves the stream's `lastIngestionTime`.
async fn heartbeat(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let Ok(event) = InputLogEvent::builder()
            .timestamp(now)
            .message("wishctl lock heartbeat")
            .build()
        else {
            return;
        };
        let sent = logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .log_events(event)
            .send()
            .await;
        if let Err(err) = sent {
            tracing::debug!(%stream, error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "lock heartbeat");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_stream_names_carry_generation_and_holder() {
        let stream = parse_stream("wishctl-lock-0000000007-ci.box.4242", Some(1), None).unwrap();
        assert_eq!(stream.generation, 7);
        assert_eq!(stream.holder, "ci.box.4242");
        assert!(parse_stream("2026/11/29/[$LATEST]abc", None, None).is_none());
        assert!(parse_stream("wishctl-lock-x-y", None, None).is_none());
    }

    #[test]
    fn a_holder_is_stale_when_its_heartbeat_stops_or_its_local_process_is_gone() {
        let mut watch = Watch::default();
        let alive = LockStream {
            name: "a".into(),
            generation: 1,
            holder: "some-other-host.1".into(),
            marker: (Some(1), Some(2)),
        };
        assert!(watch.live(&alive, Duration::from_secs(30)));
        assert!(!watch.live(&alive, Duration::ZERO));
        let dead = LockStream {
            holder: format!("{}.{}", this_place(), u32::MAX),
            ..alive.clone()
        };
        assert!(!Watch::default().live(&dead, Duration::from_secs(30)));
    }

    #[test]
    fn a_holder_of_another_pid_namespace_or_machine_is_never_judged_by_this_proc() {
        // The same host name and a pid that does not run here, but another place: another
        // container's pid namespace (or another boot of a machine with this name), or a holder
        // written before the place carried them. Only its heartbeat can say it is gone.
        let place = this_place();
        assert!(
            place.starts_with(&host_name()) && place.len() > host_name().len(),
            "{place}: a Linux machine has a boot id and a PID namespace"
        );
        for holder in [
            format!("{}.0.4026531836.{}", host_name(), u32::MAX),
            format!("{}.{}", host_name(), u32::MAX),
        ] {
            assert!(!holder_is_dead_here(&holder), "{holder}");
            let other = LockStream {
                name: "b".into(),
                generation: 1,
                holder,
                marker: (Some(1), Some(2)),
            };
            assert!(Watch::default().live(&other, Duration::from_secs(30)));
        }
        assert!(holder_is_dead_here(&format!("{place}.{}", u32::MAX)));
    }

    #[test]
    fn a_stream_of_this_process_is_live_only_while_a_lease_of_it_holds_it() {
        let ours = LockStream {
            name: "wishctl-lock-0000000003-this-process-test".into(),
            generation: 3,
            holder: this_holder(),
            marker: (Some(1), Some(2)),
        };
        // A lease of this process whose release never reached AWS: nobody holds it.
        assert!(!Watch::default().live(&ours, Duration::from_secs(30)));
        held_here().insert(ours.name.clone());
        assert!(Watch::default().live(&ours, Duration::from_secs(30)));
        held_here().remove(&ours.name);
        assert!(!Watch::default().live(&ours, Duration::from_secs(30)));
    }
}
