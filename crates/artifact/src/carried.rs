//! The Lambda zips a release build of `wishctl` carries, so that an installed `wishctl` deploys
//! the handler of its own version without a checkout or a Rust toolchain.
//!
//! `deploy`'s build script embeds `bootstrap-<arch>.zip` from the folder named by
//! `WISHCTL_EMBED_DIST` together with the SHA-256 it computed at build time. At run time
//! [`materialize`] writes the zip to a per-version cache folder (the SDK uploads from a file) and
//! checks both the embedded bytes and the cached file against that SHA-256, so a cache file
//! changed by anyone else is replaced, never deployed.

use std::fs;
use std::path::{Path, PathBuf};

use stack::Architecture;

use crate::{inspect_zip, sha256_base64, Artifact, ArtifactError};

/// One zip embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct CarriedZip {
    pub arch: Architecture,
    pub bytes: &'static [u8],
    /// SHA-256 (base64, as Lambda's `CodeSha256`) computed when the binary was built.
    pub sha256_base64: &'static str,
}

/// Writes `zip` to `cache_dir/<version>/bootstrap-<arch>.zip` unless a file with the right
/// SHA-256 is already there, and returns it, inspected.
pub fn materialize(
    zip: &CarriedZip,
    version: &str,
    cache_dir: &Path,
) -> Result<Artifact, ArtifactError> {
    let invalid = |path: &Path, reason: String| ArtifactError::InvalidZip {
        path: path.to_path_buf(),
        reason,
    };
    let dir = cache_dir.join(version);
    let path = crate::zip_path(&dir, zip.arch);
    let embedded = sha256_base64(zip.bytes);
    if embedded != zip.sha256_base64 {
        return Err(invalid(
            &path,
            format!(
                "the zip carried by this wishctl has SHA-256 {embedded}, not the {} recorded when it was built; reinstall wishctl",
                zip.sha256_base64
            ),
        ));
    }
    let cached = fs::read(&path).ok().map(|bytes| sha256_base64(&bytes));
    if cached.as_deref() != Some(zip.sha256_base64) {
        fs::create_dir_all(&dir).map_err(ArtifactError::io(&dir))?;
        let partial = dir.join(format!(
            ".bootstrap-{}.zip.{}.partial",
            zip.arch,
            std::process::id()
        ));
        fs::write(&partial, zip.bytes).map_err(ArtifactError::io(&partial))?;
        fs::rename(&partial, &path).map_err(ArtifactError::io(&path))?;
    }
    let artifact = inspect_zip(&path)?;
    if artifact.sha256_base64 != zip.sha256_base64 {
        return Err(invalid(
            &path,
            format!(
                "it changed while being written (SHA-256 {}, expected {})",
                artifact.sha256_base64, zip.sha256_base64
            ),
        ));
    }
    if artifact.arch != Some(zip.arch) {
        return Err(invalid(
            &path,
            format!(
                "it holds a bootstrap for {:?}, not {}",
                artifact.arch, zip.arch
            ),
        ));
    }
    Ok(artifact)
}

/// Where carried zips are written: `$XDG_CACHE_HOME/wishctl`, else `~/.cache/wishctl`, else a
/// `wishctl-cache` folder in the system's temporary folder.
pub fn default_cache_dir() -> PathBuf {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(cache) = from_env("XDG_CACHE_HOME") {
        return cache.join("wishctl");
    }
    if let Some(home) = from_env("HOME") {
        return home.join(".cache").join("wishctl");
    }
    std::env::temp_dir().join("wishctl-cache")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn carried(bytes: &'static [u8]) -> CarriedZip {
        CarriedZip {
            arch: Architecture::Arm64,
            bytes,
            sha256_base64: Box::leak(sha256_base64(bytes).into_boxed_str()),
        }
    }

    fn zip_bytes() -> &'static [u8] {
        let elf = testkit::lambda_zip::fake_elf(Architecture::Arm64.elf_machine(), 4160);
        Box::leak(crate::zip_bytes(&elf).unwrap().into_boxed_slice())
    }

    #[test]
    fn the_carried_zip_is_written_once_and_reused() {
        let cache = tempfile::tempdir().unwrap();
        let zip = carried(zip_bytes());
        let first = materialize(&zip, "0.1.0", cache.path()).unwrap();
        assert_eq!(first.path, cache.path().join("0.1.0/bootstrap-arm64.zip"));
        assert_eq!(first.sha256_base64, zip.sha256_base64);
        assert_eq!(first.arch, Some(Architecture::Arm64));
        let written = fs::metadata(&first.path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = materialize(&zip, "0.1.0", cache.path()).unwrap();
        assert_eq!(second, first);
        assert_eq!(
            fs::metadata(&second.path).unwrap().modified().unwrap(),
            written
        );
    }

    #[test]
    fn a_cached_file_that_changed_is_replaced_not_deployed() {
        let cache = tempfile::tempdir().unwrap();
        let zip = carried(zip_bytes());
        let path = materialize(&zip, "0.1.0", cache.path()).unwrap().path;
        fs::write(&path, b"someone else's zip").unwrap();
        let again = materialize(&zip, "0.1.0", cache.path()).unwrap();
        assert_eq!(again.sha256_base64, zip.sha256_base64);
        assert_eq!(fs::read(&path).unwrap(), zip.bytes);
    }

    #[test]
    fn embedded_bytes_that_do_not_match_their_recorded_sha256_are_refused() {
        let cache = tempfile::tempdir().unwrap();
        let mut zip = carried(zip_bytes());
        zip.sha256_base64 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let err = materialize(&zip, "0.1.0", cache.path()).unwrap_err();
        assert!(err.to_string().contains("reinstall wishctl"), "{err}");
        assert!(!cache.path().join("0.1.0/bootstrap-arm64.zip").exists());
    }

    #[test]
    fn a_carried_zip_for_the_other_architecture_is_refused() {
        let cache = tempfile::tempdir().unwrap();
        let mut zip = carried(zip_bytes());
        zip.arch = Architecture::X86_64;
        let err = materialize(&zip, "0.1.0", cache.path()).unwrap_err();
        assert!(err.to_string().contains("not x86_64"), "{err}");
    }
}
