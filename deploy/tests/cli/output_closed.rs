//! `wishctl ... | head -1`: when the reader of stdout is gone before wishctl writes, the command
//! ends quietly with 141 (what a shell reports for a process ended by SIGPIPE), never with a
//! panic and a backtrace.

#![allow(clippy::unwrap_used)]

use crate::support as cli;

use std::process::{Output, Stdio};

use cli::{command, moto, stderr};

/// Runs wishctl with `args` and a stdout whose reading end is already closed.
fn with_stdout_closed(endpoint: &str, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command(endpoint, args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_the_command_quietly_instead_of_a_panic() {
    // GIVEN commands that print to stdout, whose reader has gone away
    let session = moto().await;
    for args in [
        &["policy"][..],
        &["policy", "--output", "json"][..],
        &["list"][..],
    ] {
        // WHEN each runs
        let output = with_stdout_closed(session.endpoint(), args);

        // THEN it ends with 141 and no panic or backtrace on stderr
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("backtrace"), "{args:?}: {stderr}");
    }
}
