use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use stack::Architecture;

/// Flags of `wishctl build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Architecture to build for: arm64, x86_64, or all. Repeatable.
    #[arg(long, default_value = "arm64", value_parser = parse_arches)]
    arch: Vec<ArchChoice>,
    /// Folder the zips are written to (`bootstrap-<arch>.zip`).
    #[arg(long, default_value = "dist")]
    out_dir: PathBuf,
    /// Print one JSON object per zip (path, size, sha256, arch) on stdout.
    #[arg(long)]
    json: bool,
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
    for arch in arches {
        let artifact = tokio::task::spawn_blocking({
            let (root, out_dir) = (root.clone(), out_dir.clone());
            move || artifact::build_and_package(arch, &root, &out_dir)
        })
        .await
        .context("the build task panicked")?
        .with_context(|| format!("building the {arch} Lambda zip"))?;
        if args.json {
            println!(
                "{}",
                json!({
                    "path": artifact.path,
                    "size": artifact.size,
                    "sha256": artifact.sha256_base64,
                    "arch": arch,
                })
            );
        } else {
            println!(
                "{}  {} bytes  sha256 {}",
                artifact.path.display(),
                artifact.size,
                artifact.sha256_base64
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
