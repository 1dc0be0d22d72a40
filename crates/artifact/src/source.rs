//! Which zip `wishctl up` / `plan` deploy when asked for none in particular.
//!
//! In order: `--artifact` (always wins); inside a wishctl checkout, `bootstrap` built from it, as
//! a developer expects; otherwise the zip a release build carries ([`crate::carried`]) for its
//! own version. Anything else (no checkout, no carried zip; or inside another Cargo project,
//! which is never built) is an error that says what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use stack::Architecture;

use crate::carried::{self, CarriedZip};
use crate::checkout::{self, Location};
use crate::{build_and_package, inspect_zip, Artifact, ArtifactError, BuildProfile};

/// What [`select`] needs to decide.
#[derive(Debug)]
pub struct CodeRequest<'a> {
    pub arch: Architecture,
    /// `--artifact`.
    pub explicit: Option<&'a Path>,
    /// The folder the command runs in.
    pub cwd: &'a Path,
    /// The zips this binary carries (empty unless built with `WISHCTL_EMBED_DIST`).
    pub carried: &'a [CarriedZip],
    /// The binary's version: the cache folder of its carried zips.
    pub version: &'a str,
    pub cache_dir: &'a Path,
    /// How to build when building from a checkout (`--quick-build`: [`BuildProfile::Quick`]).
    pub build_profile: BuildProfile,
}

/// Where the selected zip came from; its `Display` is the line `up` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSource {
    Explicit,
    Built {
        checkout: PathBuf,
        profile: BuildProfile,
    },
    Carried {
        version: String,
    },
}

/// The zip to deploy and where it came from.
#[derive(Debug, Clone)]
pub struct SelectedCode {
    pub artifact: Artifact,
    pub source: CodeSource,
}

impl fmt::Display for SelectedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.artifact;
        let arch = a.arch.map(|a| a.to_string()).unwrap_or_default();
        match &self.source {
            CodeSource::Explicit => write!(f, "code: --artifact {}", a.path.display())?,
            CodeSource::Built { checkout, profile } => write!(
                f,
                "code: built from the wishctl checkout at {} (cargo profile {}): {}",
                checkout.display(),
                profile.cargo_profile(),
                a.path.display()
            )?,
            CodeSource::Carried { version } => write!(
                f,
                "code: the handler zip carried by wishctl {version}, cached at {}",
                a.path.display()
            )?,
        }
        write!(f, " ({arch}, {} bytes, sha256 {})", a.size, a.sha256_base64)?;
        if let CodeSource::Built {
            profile: BuildProfile::Release,
            ..
        } = &self.source
        {
            // The full build redoes whole-program optimisation after any edit (about 85 s on
            // two cores, BENCHMARKS.md "The edit loop's build").
            write!(
                f,
                "; editing the handler? `--quick-build` rebuilds in seconds instead of a minute or \
                 more (no whole-program optimisation, a zip about 20% larger)"
            )?;
        }
        Ok(())
    }
}

/// Picks the zip (see the module doc). `progress` gets a line before a build starts.
pub fn select(
    request: &CodeRequest<'_>,
    progress: &dyn Fn(&str),
) -> Result<SelectedCode, ArtifactError> {
    if let Some(path) = request.explicit {
        return Ok(SelectedCode {
            artifact: inspect_zip(path)?,
            source: CodeSource::Explicit,
        });
    }
    let location = checkout::locate(request.cwd);
    if let Location::Checkout(root) = &location {
        progress(&format!(
            "building bootstrap for {} from the wishctl checkout at {} (cargo profile {}; minutes the first time)",
            request.arch,
            root.display(),
            request.build_profile.cargo_profile()
        ));
        let artifact = build_and_package(
            &[request.arch],
            root,
            &request.build_profile.dist_dir(root),
            request.build_profile,
        )?
        .remove(0);
        return Ok(SelectedCode {
            artifact,
            source: CodeSource::Built {
                checkout: root.clone(),
                profile: request.build_profile,
            },
        });
    }
    if let Some(zip) = request.carried.iter().find(|z| z.arch == request.arch) {
        let artifact = carried::materialize(zip, request.version, request.cache_dir)?;
        return Ok(SelectedCode {
            artifact,
            source: CodeSource::Carried {
                version: request.version.to_string(),
            },
        });
    }
    let carries = if request.carried.is_empty() {
        format!(
            "this wishctl ({}) carries no handler zip (it was not built with WISHCTL_EMBED_DIST, as release builds are)",
            request.version
        )
    } else {
        let arches: Vec<String> = request.carried.iter().map(|z| z.arch.to_string()).collect();
        format!(
            "this wishctl ({}) carries a handler zip for {} only",
            request.version,
            arches.join(" and ")
        )
    };
    let place = match location {
        Location::OtherProject(manifest) => format!(
            "{} is inside another Cargo project ({}), which wishctl never builds",
            request.cwd.display(),
            manifest.display()
        ),
        _ => format!("{} is not inside a wishctl checkout", request.cwd.display()),
    };
    Err(ArtifactError::NoCode {
        arch: request.arch,
        reason: format!("{place}, and {carries}"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn zip(arch: Architecture) -> CarriedZip {
        let elf = testkit::lambda_zip::fake_elf(arch.elf_machine(), 4160);
        let bytes: &'static [u8] = Box::leak(crate::zip_bytes(&elf).unwrap().into_boxed_slice());
        CarriedZip {
            arch,
            bytes,
            sha256_base64: Box::leak(crate::sha256_base64(bytes).into_boxed_str()),
        }
    }

    fn request<'a>(
        cwd: &'a Path,
        carried: &'a [CarriedZip],
        cache: &'a Path,
        explicit: Option<&'a Path>,
    ) -> CodeRequest<'a> {
        CodeRequest {
            arch: Architecture::Arm64,
            explicit,
            cwd,
            carried,
            version: "9.9.9",
            cache_dir: cache,
            build_profile: crate::BuildProfile::Release,
        }
    }

    fn no_progress(line: &str) {
        panic!("nothing should be built: {line}");
    }

    #[test]
    fn outside_a_checkout_the_carried_zip_of_this_version_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let carried = [zip(Architecture::X86_64), zip(Architecture::Arm64)];
        let selected = select(
            &request(dir.path(), &carried, &dir.path().join("cache"), None),
            &no_progress,
        )
        .unwrap();
        assert_eq!(
            selected.source,
            CodeSource::Carried {
                version: "9.9.9".into()
            }
        );
        assert_eq!(selected.artifact.sha256_base64, carried[1].sha256_base64);
        assert!(selected.to_string().contains("carried by wishctl 9.9.9"));
    }

    #[test]
    fn inside_another_project_the_carried_zip_is_used_and_nothing_is_built() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"handler\"]\n",
        )
        .unwrap();
        let carried = [zip(Architecture::Arm64)];
        let selected = select(
            &request(dir.path(), &carried, &dir.path().join("cache"), None),
            &no_progress,
        )
        .unwrap();
        assert!(matches!(selected.source, CodeSource::Carried { .. }));

        // Without a carried zip: an error naming the project, never a build.
        let err = select(
            &request(dir.path(), &[], &dir.path().join("cache"), None),
            &no_progress,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("another Cargo project"), "{err}");
        assert!(err.contains("--artifact"), "{err}");
    }

    #[test]
    fn the_explicit_artifact_wins_over_a_carried_zip() {
        let dir = tempfile::tempdir().unwrap();
        let explicit = testkit::lambda_zip::fake_bootstrap_zip(dir.path());
        let carried = [zip(Architecture::Arm64)];
        let selected = select(
            &request(
                dir.path(),
                &carried,
                &dir.path().join("cache"),
                Some(&explicit),
            ),
            &no_progress,
        )
        .unwrap();
        assert_eq!(selected.source, CodeSource::Explicit);
        assert_eq!(selected.artifact.path, explicit);
    }

    #[test]
    fn a_carried_zip_for_the_other_architecture_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let carried = [zip(Architecture::X86_64)];
        let err = select(
            &request(dir.path(), &carried, &dir.path().join("cache"), None),
            &no_progress,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("for x86_64 only"), "{err}");
        assert!(err.contains("not inside a wishctl checkout"), "{err}");
    }

    #[test]
    fn the_code_line_of_a_full_build_suggests_the_quick_build_for_the_edit_loop() {
        let built = |profile| SelectedCode {
            artifact: Artifact {
                path: "/src/wishctl/dist/bootstrap-arm64.zip".into(),
                sha256_base64: "abc=".into(),
                size: 2_336_279,
                arch: Some(Architecture::Arm64),
            },
            source: CodeSource::Built {
                checkout: "/src/wishctl".into(),
                profile,
            },
        };
        let full = built(BuildProfile::Release).to_string();
        assert!(
            full.starts_with(
                "code: built from the wishctl checkout at /src/wishctl (cargo profile lambda): "
            ),
            "{full}"
        );
        assert!(
            full.contains("`--quick-build` rebuilds in seconds"),
            "{full}"
        );
        let quick = built(BuildProfile::Quick).to_string();
        assert!(quick.contains("(cargo profile lambda-quick)"), "{quick}");
        assert!(!quick.contains("--quick-build"), "{quick}");
    }
}
