//! Repository tasks, run as `cargo xtask <task>`.
//!
//! `cargo xtask dist [--arch arm64|x86_64] [--out-dir dist]` builds `bootstrap` for both
//! architectures (or one) and writes `dist/bootstrap-arm64.zip` and `dist/bootstrap-x86_64.zip`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use stack::Architecture;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> anyhow::Result<()> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("dist") => dist(args),
        Some("help") | Some("--help") | None => {
            println!("usage: cargo xtask dist [--arch arm64|x86_64] [--out-dir DIR]");
            Ok(())
        }
        Some(other) => bail!("unknown task {other:?}; try `cargo xtask help`"),
    }
}

fn dist(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    // xtask is part of the workspace it works on: its own manifest folder is crates/xtask.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .filter(|root| artifact::checkout::is_wishctl_root(root))
        .map(std::path::Path::to_path_buf)
        .context("cannot find the wishctl workspace around crates/xtask")?;
    let mut arches = Architecture::ALL.to_vec();
    let mut out_dir = root.join("dist");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--arch" => {
                let value = args.next().context("--arch needs a value")?;
                arches = vec![value.parse()?];
            }
            "--out-dir" => out_dir = PathBuf::from(args.next().context("--out-dir needs a value")?),
            other => bail!("unknown flag {other:?}"),
        }
    }
    // One cargo run for all architectures: their builds overlap.
    let built =
        artifact::build_and_package(&arches, &root, &out_dir, artifact::BuildProfile::Release)
            .context("building the Lambda zips")?;
    for artifact in built {
        println!(
            "{}  {:>9} bytes  sha256 {}",
            artifact.path.display(),
            artifact.size,
            artifact.sha256_base64
        );
    }
    Ok(())
}
