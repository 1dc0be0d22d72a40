//! Builds the `bootstrap` binary for Lambda's `provided.al2023` runtime and packages it.
//!
//! [`build_bootstrap`] cross-compiles the `handler` crate into a static musl ELF for arm64 or
//! x86_64; [`package`] writes it as a zip with a single entry `bootstrap` (mode 0755). The zip is
//! reproducible: fixed timestamps, fixed compression, no extra fields, so the same binary always
//! gives the same bytes and an unchanged redeploy is detected by comparing SHA-256 with Lambda's
//! `CodeSha256`. [`inspect_zip`] checks a zip someone hands us (`wishctl up --artifact`).
//! [`checkout`] tells a wishctl checkout (where building is allowed) from any other folder, and
//! [`carried`] writes out the zips a release build of `wishctl` carries.
//!
//! This crate knows nothing of AWS; it only runs `cargo` and writes files.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use stack::Architecture;
use thiserror::Error;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

pub mod carried;
pub mod checkout;
pub mod source;

/// The one entry a `provided.al2023` deployment package needs.
pub const ENTRY_NAME: &str = "bootstrap";
/// Lambda's limit for a zip uploaded directly (not through S3).
pub const MAX_DIRECT_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;
const MODE: u32 = 0o755;
/// The cargo profile `bootstrap` is built with (size-optimised release, see the root Cargo.toml).
pub const PROFILE: &str = "lambda";

/// How `bootstrap` is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildProfile {
    /// [`PROFILE`]: what releases ship (fat LTO, one codegen unit, smallest zip).
    #[default]
    Release,
    /// `lambda-quick`: the same code without fat LTO, incremental; for the edit loop
    /// (`wishctl up --quick-build`). Its zips go to `dist/quick/`.
    Quick,
}

impl BuildProfile {
    /// The cargo profile's name.
    pub fn cargo_profile(self) -> &'static str {
        match self {
            BuildProfile::Release => PROFILE,
            BuildProfile::Quick => "lambda-quick",
        }
    }

    /// Where the zips of this profile go under a checkout's `dist/`.
    pub fn dist_dir(self, workspace_root: &Path) -> PathBuf {
        match self {
            BuildProfile::Release => workspace_root.join("dist"),
            BuildProfile::Quick => workspace_root.join("dist").join("quick"),
        }
    }
}

/// A packaged deployment zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub path: PathBuf,
    /// SHA-256 of the zip, base64: the format of Lambda's `CodeSha256`.
    pub sha256_base64: String,
    pub size: u64,
    /// The architecture of the `bootstrap` inside, read from its ELF header.
    pub arch: Option<Architecture>,
}

#[derive(Debug, Error)]
pub enum ArtifactError {
    #[error("{tool} is not installed; it is needed to build bootstrap for {arch}: {hint}")]
    MissingTool {
        tool: &'static str,
        arch: Architecture,
        hint: &'static str,
    },
    #[error(
        "cargo build of bootstrap for {targets} failed with {status}; see the cargo output above"
    )]
    BuildFailed {
        /// The architectures and their Rust targets, e.g. `arm64 (aarch64-unknown-linux-musl)`.
        targets: String,
        status: String,
    },
    #[error("running cargo: {0}")]
    Cargo(#[source] std::io::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a Lambda deployment zip: {reason}")]
    InvalidZip { path: PathBuf, reason: String },
    #[error(
        "no handler zip to deploy for {arch}: {reason}. Pass --artifact ZIP (bootstrap-{arch}.zip \
         of a wishctl release, or `wishctl build` in a checkout), run wishctl inside a wishctl \
         checkout to build it, or install a release build of wishctl, which carries its zips"
    )]
    NoCode { arch: Architecture, reason: String },
    #[error("{path} is not an executable for {expected}: {reason}")]
    WrongBinary {
        path: PathBuf,
        expected: Architecture,
        reason: String,
    },
}

impl ArtifactError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
        move |source| ArtifactError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where cargo puts the release `bootstrap` for `arch`.
pub fn bootstrap_path(arch: Architecture, workspace_root: &Path) -> PathBuf {
    bootstrap_path_for(arch, workspace_root, BuildProfile::Release)
}

/// Where cargo puts `bootstrap` for `arch` built with `profile`.
pub fn bootstrap_path_for(
    arch: Architecture,
    workspace_root: &Path,
    profile: BuildProfile,
) -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root.join("target"));
    target_dir
        .join(arch.rust_target())
        .join(profile.cargo_profile())
        .join(ENTRY_NAME)
}

/// Cross-compiles `bootstrap` (the `handler` crate) with the `lambda` profile for `arch`. Incremental:
/// when nothing changed, cargo returns at once. The C compilers come from the workspace's
/// `.cargo/config.toml` (musl-gcc for x86_64, aarch64-linux-gnu-gcc for arm64).
pub fn build_bootstrap(
    arch: Architecture,
    workspace_root: &Path,
) -> Result<PathBuf, ArtifactError> {
    let mut built = build_bootstraps(&[arch], workspace_root, BuildProfile::Release)?;
    Ok(built.remove(0))
}

/// Builds `bootstrap` with `profile` for several architectures in one `cargo build` with one
/// `--target` per architecture; the binaries in the order of `arches`. (Measured on two cores,
/// one run is no faster than one build after the other; see BENCHMARKS.md, "The test suite's own
/// time".)
pub fn build_bootstraps(
    arches: &[Architecture],
    workspace_root: &Path,
    profile: BuildProfile,
) -> Result<Vec<PathBuf>, ArtifactError> {
    for &arch in arches {
        let (compiler, hint) = match arch {
            Architecture::X86_64 => ("musl-gcc", "apt-get install musl-tools"),
            Architecture::Arm64 => (
                "aarch64-linux-gnu-gcc",
                "apt-get install gcc-aarch64-linux-gnu",
            ),
        };
        if !on_path(compiler) {
            return Err(ArtifactError::MissingTool {
                tool: compiler,
                arch,
                hint,
            });
        }
    }
    if arches.is_empty() {
        return Ok(Vec::new());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root)
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            path_independent_rustflags(workspace_root),
        )
        .args([
            "build",
            "--profile",
            profile.cargo_profile(),
            "-p",
            "handler",
            "--bin",
            ENTRY_NAME,
        ]);
    for arch in arches {
        command.args(["--target", arch.rust_target()]);
    }
    let status = command.status().map_err(ArtifactError::Cargo)?;
    if !status.success() {
        let targets = arches
            .iter()
            .map(|arch| format!("{arch} ({})", arch.rust_target()))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ArtifactError::BuildFailed {
            targets,
            status: status.to_string(),
        });
    }
    Ok(arches
        .iter()
        .map(|&arch| bootstrap_path_for(arch, workspace_root, profile))
        .collect())
}

/// Rust flags that keep the checkout's and the cargo home's absolute paths out of the binary
/// (panic locations embed source paths), so two checkouts in different folders, such as two CI
/// runners, build byte-identical zips and a redeploy from either uploads nothing. Separated by
/// 0x1f, as `CARGO_ENCODED_RUSTFLAGS` wants; any flags the user set in `RUSTFLAGS` come first.
fn path_independent_rustflags(workspace_root: &Path) -> String {
    let mut flags: Vec<String> = std::env::var("RUSTFLAGS")
        .map(|f| f.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    flags.push(format!(
        "--remap-path-prefix={}=/wishctl",
        workspace_root.display()
    ));
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    if let Some(cargo_home) = cargo_home {
        flags.push(format!(
            "--remap-path-prefix={}=/cargo",
            cargo_home.display()
        ));
    }
    flags.join("\u{1f}")
}

/// Builds `bootstrap` with `profile` for each of `arches` ([`build_bootstraps`], one cargo run)
/// and packages each as `out_dir/bootstrap-<arch>.zip`; the zips in the order of `arches`.
pub fn build_and_package(
    arches: &[Architecture],
    workspace_root: &Path,
    out_dir: &Path,
    profile: BuildProfile,
) -> Result<Vec<Artifact>, ArtifactError> {
    let binaries = build_bootstraps(arches, workspace_root, profile)?;
    fs::create_dir_all(out_dir).map_err(ArtifactError::io(out_dir))?;
    arches
        .iter()
        .zip(binaries)
        .map(|(&arch, binary)| package(&binary, arch, &zip_path(out_dir, arch)))
        .collect()
}

/// `out_dir/bootstrap-<arch>.zip`
pub fn zip_path(out_dir: &Path, arch: Architecture) -> PathBuf {
    out_dir.join(format!("{ENTRY_NAME}-{arch}.zip"))
}

/// Writes `binary` as the single entry `bootstrap` (0755) of a reproducible zip at `zip_path`,
/// after checking it is an ELF executable for `arch`. The file is replaced atomically.
pub fn package(
    binary: &Path,
    arch: Architecture,
    zip_path: &Path,
) -> Result<Artifact, ArtifactError> {
    let bytes = fs::read(binary).map_err(ArtifactError::io(binary))?;
    match elf_architecture(&bytes) {
        Some(found) if found == arch => {}
        Some(found) => {
            return Err(ArtifactError::WrongBinary {
                path: binary.to_path_buf(),
                expected: arch,
                reason: format!("it is built for {found}"),
            })
        }
        None => {
            return Err(ArtifactError::WrongBinary {
                path: binary.to_path_buf(),
                expected: arch,
                reason: "it is not a 64-bit little-endian ELF for arm64 or x86_64".into(),
            })
        }
    }
    let zip = zip_bytes(&bytes).map_err(|e| ArtifactError::InvalidZip {
        path: zip_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let partial = zip_path.with_extension("zip.partial");
    fs::write(&partial, &zip).map_err(ArtifactError::io(&partial))?;
    fs::rename(&partial, zip_path).map_err(ArtifactError::io(zip_path))?;
    Ok(Artifact {
        path: zip_path.to_path_buf(),
        sha256_base64: sha256_base64(&zip),
        size: zip.len() as u64,
        arch: Some(arch),
    })
}

/// The zip bytes for one `bootstrap` entry. Deterministic: timestamp 1980-01-01 00:00, deflate
/// level 9, Unix mode 0755, no extended timestamps.
pub fn zip_bytes(binary: &[u8]) -> zip::result::ZipResult<Vec<u8>> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(DateTime::default())
        .unix_permissions(MODE);
    let mut writer = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer.start_file(ENTRY_NAME, options)?;
    writer.write_all(binary)?;
    Ok(writer.finish()?.into_inner())
}

/// Checks that `path` is a zip Lambda can run with handler `bootstrap`: a regular, executable
/// entry named `bootstrap` holding an ELF for arm64 or x86_64, within the direct-upload limit.
pub fn inspect_zip(path: &Path) -> Result<Artifact, ArtifactError> {
    let invalid = |reason: String| ArtifactError::InvalidZip {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = fs::read(path).map_err(ArtifactError::io(path))?;
    if bytes.len() as u64 > MAX_DIRECT_UPLOAD_BYTES {
        return Err(invalid(format!(
            "it is {} bytes; Lambda takes at most {MAX_DIRECT_UPLOAD_BYTES} bytes directly",
            bytes.len()
        )));
    }
    let mut archive = ZipArchive::new(std::io::Cursor::new(&bytes))
        .map_err(|e| invalid(format!("it cannot be read as a zip ({e})")))?;
    let mut entry = archive
        .by_name(ENTRY_NAME)
        .map_err(|_| invalid("it has no entry named bootstrap at its root".into()))?;
    if entry.is_dir() {
        return Err(invalid("bootstrap is a directory".into()));
    }
    if let Some(mode) = entry.unix_mode() {
        if mode & 0o111 == 0 {
            return Err(invalid(format!(
                "bootstrap has mode {:o}, which Lambda cannot execute",
                mode & 0o777
            )));
        }
    }
    let mut header = [0u8; 20];
    let read = entry
        .read(&mut header)
        .map_err(|e| invalid(format!("bootstrap cannot be decompressed ({e})")))?;
    let arch = elf_architecture(&header[..read]);
    if arch.is_none() {
        return Err(invalid(
            "bootstrap is not a Linux ELF executable for arm64 or x86_64".into(),
        ));
    }
    Ok(Artifact {
        path: path.to_path_buf(),
        sha256_base64: sha256_base64(&bytes),
        size: bytes.len() as u64,
        arch,
    })
}

/// The architecture of a 64-bit little-endian ELF, from its header's `e_machine`.
pub fn elf_architecture(bytes: &[u8]) -> Option<Architecture> {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    Architecture::ALL
        .into_iter()
        .find(|arch| arch.elf_machine() == machine)
}

/// SHA-256, base64 (standard alphabet, padded), as Lambda reports `CodeSha256`.
pub fn sha256_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

/// The wishctl checkout the current directory is in (see [`checkout`]), the only place
/// `bootstrap` is built from. Another Cargo project, or a folder that merely has a `handler/`,
/// is not one.
pub fn find_workspace_root() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    match checkout::locate(&cwd) {
        checkout::Location::Checkout(root) => Some(root),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF header for `machine`; enough for the checks, not a runnable program.
    fn fake_elf(machine: u16) -> Vec<u8> {
        testkit::lambda_zip::fake_elf(machine, 4160)
    }

    #[test]
    fn the_same_binary_gives_a_byte_identical_zip() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("bootstrap");
        fs::write(&binary, fake_elf(183)).unwrap();
        let first = package(&binary, Architecture::Arm64, &dir.path().join("a.zip")).unwrap();
        // Touch the binary: a new mtime must not change the zip.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&binary, fake_elf(183)).unwrap();
        let second = package(&binary, Architecture::Arm64, &dir.path().join("b.zip")).unwrap();
        assert_eq!(first.sha256_base64, second.sha256_base64);
        assert_eq!(
            fs::read(&first.path).unwrap(),
            fs::read(&second.path).unwrap()
        );
    }

    #[test]
    fn the_zip_holds_one_executable_bootstrap_entry() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("bin");
        fs::write(&binary, fake_elf(62)).unwrap();
        let artifact = package(&binary, Architecture::X86_64, &dir.path().join("x.zip")).unwrap();
        let mut archive = ZipArchive::new(fs::File::open(&artifact.path).unwrap()).unwrap();
        assert_eq!(archive.len(), 1);
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        drop(entry);
        let inspected = inspect_zip(&artifact.path).unwrap();
        assert_eq!(inspected.arch, Some(Architecture::X86_64));
        assert_eq!(inspected.sha256_base64, artifact.sha256_base64);
    }

    #[test]
    fn packaging_refuses_a_binary_for_the_other_architecture() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("bootstrap");
        fs::write(&binary, fake_elf(62)).unwrap();
        let err = package(&binary, Architecture::Arm64, &dir.path().join("a.zip")).unwrap_err();
        assert!(err.to_string().contains("built for x86_64"), "{err}");
        fs::write(&binary, b"#!/bin/sh\necho hi\n").unwrap();
        assert!(package(&binary, Architecture::Arm64, &dir.path().join("a.zip")).is_err());
    }

    #[test]
    fn inspect_refuses_files_that_lambda_could_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let not_zip = dir.path().join("not.zip");
        fs::write(&not_zip, b"hello").unwrap();
        assert!(inspect_zip(&not_zip)
            .unwrap_err()
            .to_string()
            .contains("cannot be read as a zip"));

        let wrong_name = dir.path().join("wrong.zip");
        let mut writer = ZipWriter::new(fs::File::create(&wrong_name).unwrap());
        writer
            .start_file("main", SimpleFileOptions::default())
            .unwrap();
        writer.write_all(&fake_elf(62)).unwrap();
        writer.finish().unwrap();
        assert!(inspect_zip(&wrong_name)
            .unwrap_err()
            .to_string()
            .contains("no entry named bootstrap"));

        let not_exec = dir.path().join("noexec.zip");
        let mut writer = ZipWriter::new(fs::File::create(&not_exec).unwrap());
        writer
            .start_file(
                "bootstrap",
                SimpleFileOptions::default().unix_permissions(0o644),
            )
            .unwrap();
        writer.write_all(&fake_elf(62)).unwrap();
        writer.finish().unwrap();
        assert!(inspect_zip(&not_exec)
            .unwrap_err()
            .to_string()
            .contains("cannot execute"));

        let script = dir.path().join("script.zip");
        fs::write(&script, zip_bytes(b"#!/bin/sh\n").unwrap()).unwrap();
        assert!(inspect_zip(&script)
            .unwrap_err()
            .to_string()
            .contains("not a Linux ELF"));

        assert!(matches!(
            inspect_zip(&dir.path().join("missing.zip")),
            Err(ArtifactError::Io { .. })
        ));
    }

    #[test]
    fn builds_remap_the_checkout_path_out_of_the_binary() {
        let flags = path_independent_rustflags(Path::new("/home/ci/runner-7/wishctl"));
        let flags: Vec<&str> = flags.split('\u{1f}').collect();
        assert!(
            flags.contains(&"--remap-path-prefix=/home/ci/runner-7/wishctl=/wishctl"),
            "{flags:?}"
        );
        assert!(flags.iter().all(|f| !f.is_empty()), "{flags:?}");
    }

    #[test]
    fn quick_builds_have_their_own_profile_binary_and_dist_folder() {
        let root = Path::new("/checkout");
        // The profile named must exist in the workspace's Cargo.toml.
        let manifest = include_str!("../../../Cargo.toml");
        for profile in [BuildProfile::Release, BuildProfile::Quick] {
            let header = format!("[profile.{}]", profile.cargo_profile());
            assert!(manifest.contains(&header), "{header} missing");
        }
        assert_eq!(BuildProfile::Release.dist_dir(root), root.join("dist"));
        assert_eq!(
            BuildProfile::Quick.dist_dir(root),
            root.join("dist").join("quick")
        );
        if std::env::var_os("CARGO_TARGET_DIR").is_none() {
            assert!(
                bootstrap_path_for(Architecture::Arm64, root, BuildProfile::Quick)
                    .ends_with("target/aarch64-unknown-linux-musl/lambda-quick/bootstrap")
            );
        }
        assert_eq!(
            bootstrap_path(Architecture::X86_64, root),
            bootstrap_path_for(Architecture::X86_64, root, BuildProfile::Release)
        );
    }

    #[test]
    fn elf_architecture_reads_e_machine() {
        assert_eq!(elf_architecture(&fake_elf(183)), Some(Architecture::Arm64));
        assert_eq!(elf_architecture(&fake_elf(62)), Some(Architecture::X86_64));
        assert_eq!(elf_architecture(&fake_elf(40)), None);
        assert_eq!(elf_architecture(b"\x7fELF"), None);
    }
}
