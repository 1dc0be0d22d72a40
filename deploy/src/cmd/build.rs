//! `wishctl build`: the Lambda zip (`bootstrap` for arm64 and/or x86_64), built reproducibly.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use stack::Architecture;

use super::output::{print_json, OutputFormat};

/// Flags of `wishctl build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Architecture to build for: arm64, x86_64, or all. Repeatable.
    #[arg(long, default_value = "arm64", value_parser = parse_arches)]
    arch: Vec<ArchChoice>,
    /// Folder the zips are written to (`bootstrap-<arch>.zip`).
    #[arg(long, default_value = "dist")]
    out_dir: PathBuf,
    /// Result format on stdout: `text` (one line per zip) or `json` (one object with an
    /// `artifacts` array of {path, size, sha256, arch}).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    output: OutputFormat,
    /// The same as `--output json` (kept for scripts written before `--output`).
    #[arg(long, hide = true)]
    json: bool,
}

/// One built zip, as `--output json` lists it.
#[derive(Debug, Serialize)]
struct BuiltZip {
    path: PathBuf,
    size: u64,
    /// Base64 of the SHA-256 digest, as Lambda's `CodeSha256`.
    sha256: String,
    arch: Architecture,
}

/// `wishctl build --output json`.
#[derive(Debug, Serialize)]
struct BuildJson {
    artifacts: Vec<BuiltZip>,
}

/// One `--arch` value: one architecture, or both.
#[derive(Debug, Clone)]
struct ArchChoice(Vec<Architecture>);

fn parse_arches(value: &str) -> Result<ArchChoice, String> {
    if value == "all" {
        return Ok(ArchChoice(Architecture::ALL.to_vec()));
    }
    value
        .parse::<Architecture>()
        .map(|arch| ArchChoice(vec![arch]))
        .map_err(|e| e.to_string())
}

pub async fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let root = artifact::find_workspace_root().context(
        "cannot find the wishctl sources (a folder with handler/Cargo.toml); run from the repository",
    )?;
    let out_dir = if args.out_dir.is_absolute() {
        args.out_dir.clone()
    } else {
        std::env::current_dir()
            .context("reading the current directory")?
            .join(&args.out_dir)
    };
    let mut arches: Vec<Architecture> = Vec::new();
    for arch in args.arch.into_iter().flat_map(|choice| choice.0) {
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    let json = args.json || args.output == OutputFormat::Json;
    let mut built = Vec::new();
    // One cargo run for all architectures: their builds overlap.
    let artifacts = tokio::task::spawn_blocking({
        let (root, out_dir, arches) = (root.clone(), out_dir.clone(), arches.clone());
        move || {
            artifact::build_and_package(&arches, &root, &out_dir, artifact::BuildProfile::Release)
        }
    })
    .await
    .context("the build task panicked")?
    .context("building the Lambda zips")?;
    for (arch, artifact) in arches.into_iter().zip(artifacts) {
        if json {
            built.push(BuiltZip {
                path: artifact.path,
                size: artifact.size,
                sha256: artifact.sha256_base64,
                arch,
            });
        } else {
            println!(
                "{}  {} bytes  sha256 {}",
                artifact.path.display(),
                artifact.size,
                artifact.sha256_base64
            );
        }
    }
    if json {
        print_json(&BuildJson { artifacts: built })?;
    }
    Ok(ExitCode::SUCCESS)
}
