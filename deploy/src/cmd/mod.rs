//! One module per command; each owns its flags (`*Args`) and its `run`.

pub mod aws;
pub mod build;
pub mod dev;
pub mod down;
pub mod gc;
pub mod issuer_check;
pub mod list;
pub mod logs;
pub mod output;
pub mod outputs;
pub mod plan;
pub mod policy;
pub mod token;
pub mod up;
pub mod verify;

use std::time::Duration;

use devserver::LogQueue;

/// How long `wishctl` waits at exit for queued log lines to reach stderr, at most: a reader that
/// has stalled must not keep a stopped `wishctl dev` alive.
const LOG_FLUSH_AT_EXIT: Duration = Duration::from_secs(2);

/// Where wishctl's diagnostics go: its `tracing` events and its own lines (notes, warnings, the
/// final error). Progress and diagnostics go to stderr, so that stdout carries only results
/// (`--output json`); `RUST_LOG` adjusts the level (default: warnings).
///
/// Most commands write to stderr directly. `wishctl dev` is a server that must never wait for
/// whoever reads its stderr, so its lines, the request log included, go through one
/// [`LogQueue`]: bounded, written by a thread of its own, dropping (and counting) the lines a
/// stalled reader cannot take, at any `RUST_LOG` level.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    queue: Option<LogQueue>,
}

impl Diagnostics {
    /// Lines through a [`LogQueue`] on stderr, whose reports of dropped lines are in `report`
    /// format; stderr directly (with a warning) if its thread cannot start.
    pub fn queued(report: devserver::LogFormat) -> Diagnostics {
        match LogQueue::stderr(report) {
            Ok(queue) => Diagnostics { queue: Some(queue) },
            Err(err) => {
                eprintln!(
                    "warning: logging straight to stderr: cannot start the log thread: {err}"
                );
                Diagnostics::default()
            }
        }
    }

    /// The queue, for `wishctl dev`'s request log (`None`: stderr directly).
    pub fn queue(&self) -> Option<&LogQueue> {
        self.queue.as_ref()
    }

    /// Sends `tracing` events (filtered by `RUST_LOG`) where these diagnostics go.
    pub fn init_tracing(&self) {
        // Colours only for a person at a terminal: CI logs and files get plain text.
        let builder = tracing_subscriber::fmt()
            .with_env_filter(log_filter())
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        let _ = match &self.queue {
            Some(queue) => {
                let queue = queue.clone();
                builder.with_writer(move || queue.writer()).try_init()
            }
            None => builder.with_writer(std::io::stderr).try_init(),
        };
    }

    /// One line of wishctl's own (a note, a warning, the final error).
    pub fn line(&self, text: impl Into<String>) {
        match &self.queue {
            Some(queue) => {
                queue.push_line(text.into());
            }
            None => eprintln!("{}", text.into()),
        }
    }

    /// At exit: waits (at most [`LOG_FLUSH_AT_EXIT`]) for queued lines to reach stderr.
    pub fn flush(&self) {
        if let Some(queue) = &self.queue {
            queue.flush(LOG_FLUSH_AT_EXIT);
        }
    }
}

fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
}
