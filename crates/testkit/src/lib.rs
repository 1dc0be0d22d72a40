//! Test support for the whole workspace, never shipped: a moto server launcher ([`moto`]), a Lambda
//! Runtime API emulator ([`runtime`]), a proxy that adds latency to every call
//! ([`latency_proxy`]) and a local OIDC issuer ([`issuer`]). Tests use these instead of copying
//! their own.
//!
//! Every server here listens on 127.0.0.1 only.

pub mod issuer;
pub mod lambda_zip;
pub mod latency_proxy;
pub mod moto;
pub mod runtime;

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}
