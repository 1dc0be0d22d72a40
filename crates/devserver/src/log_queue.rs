//! [`LogQueue`]: log lines written to stderr (or any output) by a thread of their own, behind a
//! bounded queue, so that whoever reads the output can never hold up the program writing them.
//!
//! `wishctl dev` sends every line it logs through one queue: the request log ([`crate::LineLog`]),
//! its `tracing` diagnostics at any `RUST_LOG` level ([`LogQueue::writer`] is what the
//! subscriber writes to) and its own messages. When the queue is full (the reader has stalled)
//! or holds too many bytes, a new line is dropped and counted instead of waited for, and the
//! writer puts the count in the output as soon as it can write again. Nothing here blocks except
//! [`LogQueue::flush`], whose wait is bounded by its caller.
//!
//! Not here: what a request record says ([`crate::RequestRecord`]) or which lines are logged.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::request_log::LogFormat;

/// Lines waiting for the writer before new ones are dropped.
pub const LOG_QUEUE_CAPACITY: usize = 4096;

/// Bytes waiting for the writer before new lines are dropped: the queue's memory stays bounded
/// whatever the lines hold.
pub const LOG_QUEUE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// A bounded queue of lines in front of a writer thread; clones share the queue and the thread,
/// which ends once every clone is gone and the queue is written out.
#[derive(Clone)]
pub struct LogQueue {
    lines: SyncSender<Vec<u8>>,
    shared: Arc<Shared>,
}

/// What the queue's handles and its thread share (never the sender: the thread ends when the
/// last handle is gone).
struct Shared {
    /// Lines dropped because the queue was full (or the writer gone).
    dropped: AtomicU64,
    /// Bytes of the lines in the queue.
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    /// Lines accepted into the queue.
    queued: AtomicU64,
    /// Lines taken off the queue and handed to the output (or discarded once it failed).
    done: Mutex<u64>,
    progress: Condvar,
}

impl fmt::Debug for LogQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogQueue")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl LogQueue {
    /// Starts the writer thread for `out`, with room for `capacity` lines (and at most
    /// [`LOG_QUEUE_MAX_BYTES`]). Reports of dropped lines are written in `report` format.
    pub fn spawn(
        out: Box<dyn Write + Send>,
        capacity: usize,
        report: LogFormat,
    ) -> std::io::Result<LogQueue> {
        Self::spawn_with_max_bytes(out, capacity, LOG_QUEUE_MAX_BYTES, report)
    }

    /// [`LogQueue::spawn`] with a byte budget of its own (tests).
    pub fn spawn_with_max_bytes(
        out: Box<dyn Write + Send>,
        capacity: usize,
        max_bytes: usize,
        report: LogFormat,
    ) -> std::io::Result<LogQueue> {
        let (lines, receiver) = sync_channel::<Vec<u8>>(capacity.max(1));
        let shared = Arc::new(Shared {
            dropped: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            max_bytes,
            queued: AtomicU64::new(0),
            done: Mutex::new(0),
            progress: Condvar::new(),
        });
        let counters = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(out, &receiver, &counters, report))?;
        Ok(LogQueue { lines, shared })
    }

    /// A queue in front of stderr with [`LOG_QUEUE_CAPACITY`] lines.
    pub fn stderr(report: LogFormat) -> std::io::Result<LogQueue> {
        Self::spawn(Box::new(std::io::stderr()), LOG_QUEUE_CAPACITY, report)
    }

    /// Queues `line` (a newline is added when it has none), or drops and counts it when the
    /// queue is full. Never blocks. Returns whether the line was queued.
    pub fn push_line(&self, line: impl Into<Vec<u8>>) -> bool {
        let mut line = line.into();
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        let shared = &self.shared;
        let size = line.len();
        let reserved = shared
            .queued_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                queued
                    .checked_add(size)
                    .filter(|total| *total <= shared.max_bytes)
            })
            .is_ok();
        if !reserved {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match self.lines.try_send(line) {
            Ok(()) => {
                shared.queued.fetch_add(1, Ordering::AcqRel);
                true
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                shared.queued_bytes.fetch_sub(size, Ordering::AcqRel);
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// An [`std::io::Write`] whose bytes become one line of this queue when it is dropped: what
    /// a `tracing_subscriber` writer factory returns for each event (`move || queue.writer()`).
    pub fn writer(&self) -> QueuedLine {
        QueuedLine {
            queue: self.clone(),
            line: Vec::new(),
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waits, at most `within`, until every line queued before the call has been handed to the
    /// output; whether they all were. For the end of a program, whose last lines would
    /// otherwise be lost with the thread.
    pub fn flush(&self, within: Duration) -> bool {
        let target = self.shared.queued.load(Ordering::Acquire);
        let deadline = Instant::now() + within;
        let mut done = lock(&self.shared.done);
        while *done < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            done = self
                .shared
                .progress
                .wait_timeout(done, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        true
    }
}

/// One line being written (see [`LogQueue::writer`]); queued when dropped. Writing never fails
/// and never blocks; a line the queue cannot take is dropped and counted.
pub struct QueuedLine {
    queue: LogQueue,
    line: Vec<u8>,
}

impl fmt::Debug for QueuedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuedLine")
            .field("bytes", &self.line.len())
            .finish_non_exhaustive()
    }
}

impl Write for QueuedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Past the queue's byte budget the line is dropped anyway: stop growing it.
        if self.line.len() <= self.queue.shared.max_bytes {
            self.line.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for QueuedLine {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.queue.push_line(std::mem::take(&mut self.line));
        }
    }
}

fn lock(mutex: &Mutex<u64>) -> MutexGuard<'_, u64> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The writer thread: takes what is queued, says how many lines were dropped before the next
/// one it writes, and flushes whenever the queue is empty. Once the output fails (stderr
/// closed) it keeps emptying the queue without writing, so that no one waits for it.
fn write_lines(
    out: Box<dyn Write + Send>,
    lines: &Receiver<Vec<u8>>,
    shared: &Shared,
    report: LogFormat,
) {
    let mut out = std::io::BufWriter::new(out);
    let mut reported = 0;
    let mut failed = false;
    while let Ok(first) = lines.recv() {
        let mut taken = 0u64;
        let mut next = Some(first);
        while let Some(line) = next.take() {
            shared.queued_bytes.fetch_sub(line.len(), Ordering::AcqRel);
            taken += 1;
            if !failed {
                let dropped = shared.dropped.load(Ordering::Relaxed);
                if dropped > reported {
                    failed |= write_report(&mut out, dropped - reported, report).is_err();
                    reported = dropped;
                }
                failed |= out.write_all(&line).is_err();
            }
            // Count in batches, but never hold more than a queue's worth uncounted.
            if taken < 1024 {
                next = lines.try_recv().ok();
            }
        }
        if !failed {
            failed |= out.flush().is_err();
        }
        *lock(&shared.done) += taken;
        shared.progress.notify_all();
    }
}

fn write_report(out: &mut impl Write, lost: u64, format: LogFormat) -> std::io::Result<()> {
    let time = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    match format {
        LogFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"time": time, "dropped_log_lines": lost})
        ),
        LogFormat::Text => writeln!(
            out,
            "time={time} dropped_log_lines={lost} (the log was not read fast enough)"
        ),
    }
}

/// An output that blocks in every write until the test lets it through, for this module's tests
/// and the request log's.
#[cfg(test)]
pub(crate) mod gated_output {
    use std::io::Write;
    use std::sync::{mpsc, Arc, Mutex};
    use std::time::Duration;

    /// Blocks in each write until `Gated::open` sends (at most 10 s), then keeps what it got.
    pub(crate) struct Gate {
        entered: mpsc::Sender<()>,
        open: Mutex<mpsc::Receiver<()>>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.entered.send(());
            let _ = self
                .open
                .lock()
                .map(|open| open.recv_timeout(Duration::from_secs(10)));
            if let Ok(mut written) = self.written.lock() {
                written.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The handles a test keeps on its [`Gate`].
    pub(crate) struct Gated {
        /// One send lets one write through (dropped: every write goes through).
        pub open: mpsc::Sender<()>,
        /// Receives one message as each write starts.
        pub busy: mpsc::Receiver<()>,
        /// What was written so far.
        pub written: Arc<Mutex<Vec<u8>>>,
    }

    pub(crate) fn gate() -> (Gate, Gated) {
        let (open, gate) = mpsc::channel();
        let (entered, busy) = mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        (
            Gate {
                entered,
                open: Mutex::new(gate),
                written: Arc::clone(&written),
            },
            Gated {
                open,
                busy,
                written,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::gated_output::{gate, Gated};
    use super::*;

    struct Stalled {
        queue: LogQueue,
        open: mpsc::Sender<()>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    /// A queue of `capacity` lines and `max_bytes`, whose output is stuck in a write of its
    /// first line.
    fn stalled(capacity: usize, max_bytes: usize) -> Stalled {
        let (
            output,
            Gated {
                open,
                busy,
                written,
            },
        ) = gate();
        let queue =
            LogQueue::spawn_with_max_bytes(Box::new(output), capacity, max_bytes, LogFormat::Text)
                .expect("writer thread");
        assert!(queue.push_line("first"));
        busy.recv_timeout(Duration::from_secs(10))
            .expect("the writer thread writes");
        Stalled {
            queue,
            open,
            written,
        }
    }

    fn text(written: &Mutex<Vec<u8>>) -> String {
        String::from_utf8_lossy(&lock_bytes(written)).into_owned()
    }

    fn lock_bytes(written: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
        written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[test]
    fn a_stalled_output_never_blocks_a_writer_and_the_queue_holds_at_most_its_capacity() {
        // GIVEN a queue of 4 lines whose output is stuck
        let s = stalled(4, LOG_QUEUE_MAX_BYTES);
        // WHEN 100 lines arrive through tracing-style writers (this would hang if they waited)
        for n in 0..100 {
            let mut line = s.queue.writer();
            writeln!(line, "line {n}").expect("write");
        }
        // THEN 4 are queued and 96 dropped and counted
        assert_eq!(s.queue.dropped(), 96);
        // AND a flush with a bound returns when it runs out, not when the output moves
        assert!(!s.queue.flush(Duration::from_millis(50)));
        // AND once the output moves again, the 4 lines are written with the loss before them
        for _ in 0..100 {
            let _ = s.open.send(());
        }
        assert!(s.queue.flush(Duration::from_secs(10)));
        assert!(s.queue.push_line("after"));
        for _ in 0..100 {
            let _ = s.open.send(());
        }
        assert!(s.queue.flush(Duration::from_secs(10)));
        let out = text(&s.written);
        assert!(out.contains("line 3\n"), "{out}");
        assert!(!out.contains("line 4\n"), "{out}");
        let report = out
            .find("dropped_log_lines=96")
            .expect("a report of the loss");
        assert!(report < out.find("after").unwrap_or(0), "{out}");
    }

    #[test]
    fn the_queue_holds_at_most_its_byte_budget_whatever_the_line_count() {
        // GIVEN a queue of 1000 lines but 1 KiB, whose output is stuck
        let s = stalled(1000, 1024);
        // WHEN 100 lines of 100 bytes arrive, and one line over the whole budget
        let line = "x".repeat(99);
        let queued = (0..100)
            .filter(|_| s.queue.push_line(line.as_str()))
            .count();
        let mut huge = s.queue.writer();
        huge.write_all(&vec![b'y'; 4096]).expect("write");
        drop(huge);
        // THEN no more than 1 KiB is queued; the rest is dropped and counted
        assert_eq!(queued, 10);
        assert_eq!(s.queue.dropped(), 91);
        drop(s.open);
    }

    #[test]
    fn lines_get_one_newline_each() {
        let (output, Gated { open, written, .. }) = gate();
        drop(open);
        let queue = LogQueue::spawn(Box::new(output), 16, LogFormat::Json).expect("writer thread");
        queue.push_line("a");
        queue.push_line("b\n");
        assert!(queue.flush(Duration::from_secs(10)));
        assert_eq!(text(&written), "a\nb\n");
    }
}
