//! Test support for the whole workspace, never shipped: a moto server launcher ([`moto`]), a Lambda
//! Runtime API emulator ([`runtime`]), a proxy in front of moto that adds latency, AWS's timing
//! model and injected faults to every call ([`aws_proxy`], with [`aws_model`] and [`faults`], and
//! [`authorizer_listing`] for the API Gateway listing moto cannot answer; [`latency_proxy`] is
//! its latency-only form) and a local OIDC issuer ([`issuer`]). Tests use these instead of
//! copying their own.
//!
//! Every server here listens on 127.0.0.1 only.

pub mod authorizer_listing;
pub mod aws_call;
pub mod aws_model;
pub mod aws_proxy;
pub mod faults;
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
