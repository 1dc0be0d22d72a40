//! Which code an installed `wishctl up` deploys, depending on where it runs: `wishctl` as a
//! process against moto, its working folder set to an empty folder, to a look-alike project, and
//! to the wishctl repository. (The zips a release build carries are exercised on the packaged
//! binary by `scripts/package.sh`, which builds one; here `wishctl` is a development build that
//! carries none.)

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::moto::{MotoServer, MotoSession};

use crate::support::stderr;

const ISSUER: &str = "https://tenant.eu.auth0.com/";

fn up(endpoint: &str, cwd: &Path, stack: &str, extra: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wishctl"));
    command
        .current_dir(cwd)
        .args([
            "up",
            "--stack",
            stack,
            "--issuer",
            ISSUER,
            "--audience",
            "aud",
        ])
        .args(extra)
        .env_remove("AWS_PROFILE")
        // A cache of its own: nothing a carried zip could have left in the user's cache matters.
        .env("XDG_CACHE_HOME", cwd.join(".test-cache"));
    for (key, value) in testkit::moto::aws_env(endpoint) {
        command.env(key, value);
    }
    command.output().unwrap()
}

async fn code_sha256(session: &MotoSession, stack: &str) -> Option<String> {
    let lambda = aws_sdk_lambda::Client::new(&session.sdk_config().await);
    lambda
        .get_function()
        .function_name(format!("wishctl-{stack}-api"))
        .send()
        .await
        .ok()
        .and_then(|f| f.configuration)
        .and_then(|c| c.code_sha256)
}

/// A project that looks like wishctl from afar: a Cargo workspace with a `handler` member (whose
/// build would fail loudly) but no `deploy` package.
fn look_alike(dir: &Path) -> PathBuf {
    let root = dir.join("their-app");
    std::fs::create_dir_all(root.join("handler/src")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"handler\"]\n",
    )
    .unwrap();
    std::fs::write(
        root.join("handler/Cargo.toml"),
        "[package]\nname = \"handler\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[[bin]]\nname = \"bootstrap\"\npath = \"src/main.rs\"\n",
    )
    .unwrap();
    std::fs::write(
        root.join("handler/src/main.rs"),
        "compile_error!(\"wishctl must never build this project\");\n",
    )
    .unwrap();
    root
}

fn assert_nothing_built(dir: &Path) {
    for built in ["target", "dist", "handler/target"] {
        assert!(
            !dir.join(built).exists(),
            "{} was created",
            dir.join(built).display()
        );
    }
}

#[tokio::test]
async fn outside_any_checkout_a_build_without_carried_zips_refuses_and_says_what_to_do() {
    let session = MotoServer::shared().session().await;
    let dir = tempfile::tempdir().unwrap();

    let output = up(session.endpoint(), dir.path(), "inst-empty", &[]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("no handler zip to deploy for arm64"), "{err}");
    assert!(err.contains("is not inside a wishctl checkout"), "{err}");
    assert!(err.contains("carries no handler zip"), "{err}");
    assert!(err.contains("--artifact ZIP"), "{err}");
    assert!(!err.contains("building bootstrap"), "{err}");
    assert_nothing_built(dir.path());
    assert_eq!(code_sha256(&session, "inst-empty").await, None);
}

#[tokio::test]
async fn inside_a_look_alike_project_nothing_is_built_or_deployed() {
    let session = MotoServer::shared().session().await;
    let dir = tempfile::tempdir().unwrap();
    let project = look_alike(dir.path());

    for cwd in [project.clone(), project.join("handler/src")] {
        let output = up(session.endpoint(), &cwd, "inst-look", &[]);

        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let err = stderr(&output);
        assert!(err.contains("inside another Cargo project"), "{err}");
        assert!(err.contains("which wishctl never builds"), "{err}");
        assert!(!err.contains("building bootstrap"), "{err}");
        assert!(!err.contains("compile_error"), "{err}");
    }
    assert_nothing_built(&project);
    assert_eq!(code_sha256(&session, "inst-look").await, None);
}

#[tokio::test]
async fn the_artifact_flag_wins_in_an_empty_folder_a_look_alike_and_the_repository() {
    let session = MotoServer::shared().session().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = testkit::lambda_zip::fake_bootstrap_zip(dir.path());
    let sha = artifact::inspect_zip(&zip).unwrap().sha256_base64;
    let zip_arg = zip.display().to_string();
    let project = look_alike(dir.path());
    let repo = testkit::workspace_root();

    for (stack, cwd) in [
        ("inst-a1", dir.path().to_path_buf()),
        ("inst-a2", project.clone()),
        ("inst-a3", repo.clone()),
    ] {
        let output = up(session.endpoint(), &cwd, stack, &["--artifact", &zip_arg]);
        let err = stderr(&output);
        assert!(output.status.success(), "{}: {err}", cwd.display());
        assert!(
            err.contains(&format!("code: --artifact {zip_arg}")),
            "{err}"
        );
        assert!(!err.contains("building bootstrap"), "{err}");
        assert_eq!(
            code_sha256(&session, stack).await.as_deref(),
            Some(sha.as_str())
        );
    }
    assert_nothing_built(&project);
}

#[tokio::test]
async fn inside_the_repository_up_builds_the_handler_from_the_checkout() {
    // GIVEN a folder inside the wishctl checkout (not its root)
    let session = MotoServer::shared().session().await;
    let repo = testkit::workspace_root();
    let cwd = repo.join("examples");

    // WHEN up runs without --artifact
    let output = up(session.endpoint(), &cwd, "inst-repo", &["--arch", "x86_64"]);

    // THEN it builds bootstrap from the checkout and deploys that zip
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "building bootstrap for x86_64 from the wishctl checkout at {}",
            repo.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("code: built from the wishctl checkout"),
        "{err}"
    );
    // AND, since that was the full build, the line points at the quick one for the edit loop
    assert!(err.contains("`--quick-build` rebuilds in seconds"), "{err}");
    let built = artifact::inspect_zip(&repo.join("dist/bootstrap-x86_64.zip")).unwrap();
    assert_eq!(
        code_sha256(&session, "inst-repo").await.as_deref(),
        Some(built.sha256_base64.as_str())
    );
}

#[test]
fn build_reports_each_zip_in_json_as_written() {
    // GIVEN the wishctl checkout and an empty output folder
    let repo = testkit::workspace_root();
    let out = tempfile::tempdir().unwrap();

    // WHEN `wishctl build --output json` builds the x86_64 zip into it
    let output = Command::new(env!("CARGO_BIN_EXE_wishctl"))
        .current_dir(repo.join("examples"))
        .args(["build", "--arch", "x86_64", "--output", "json", "--out-dir"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));

    // THEN stdout is one JSON object whose artifact is the zip on disk: path, size, arch and
    // the SHA-256 Lambda will report as CodeSha256
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stderr(&output)));
    let artifacts = report["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 1, "{report:#}");
    let zip = out.path().join("bootstrap-x86_64.zip");
    assert_eq!(artifacts[0]["path"], zip.to_str().unwrap(), "{report:#}");
    assert_eq!(artifacts[0]["arch"], "x86_64", "{report:#}");
    assert_eq!(
        artifacts[0]["size"].as_u64(),
        Some(std::fs::metadata(&zip).unwrap().len())
    );
    let inspected = artifact::inspect_zip(&zip).unwrap();
    assert_eq!(artifacts[0]["sha256"], inspected.sha256_base64.as_str());
}
