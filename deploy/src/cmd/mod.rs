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

/// Progress and diagnostics go to stderr, so that stdout carries only results (`--output json`).
/// `RUST_LOG` adjusts the level (default: warnings).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
