//! `test-issuer [PORT]`: the local OIDC issuer of `testkit::issuer` as a process of its own, for
//! tests and benchmarks that need an issuer outside the process under test.
//!
//! Prints `issuer=<URL>` on the first line of stdout once it listens, then serves until stdin
//! closes or the process is killed. Drive it over HTTP: `POST /control/mint` with the claims as
//! the body answers `{"token": ...}`; `/control/rotate`, `/control/hang`, `/control/unhang`,
//! `GET /control/stats`.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        None => 0,
        Some(Ok(port)) => port,
        Some(Err(err)) => {
            eprintln!("error: the port must be a number from 0 to 65535: {err}");
            return ExitCode::FAILURE;
        }
    };
    let issuer = match testkit::issuer::TestIssuer::start_on(port).await {
        Ok(issuer) => issuer,
        Err(err) => {
            eprintln!("error: cannot start the issuer on 127.0.0.1:{port}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "issuer={}", issuer.issuer())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // Run until the parent closes our stdin (or kills us): a test that dies leaves no orphan.
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 256];
        while let Ok(1..) = stdin.read(&mut buf) {}
    });
    let _ = stdin_closed.await;
    drop(issuer);
    ExitCode::SUCCESS
}
