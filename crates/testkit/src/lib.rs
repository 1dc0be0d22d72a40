//! Test support for the whole workspace, never shipped: a moto server launcher ([`moto`]), a Lambda
//! Runtime API emulator ([`runtime`]), a proxy that adds latency to every call
//! ([`latency_proxy`]) and a local OIDC issuer ([`issuer`]). Tests use these instead of copying
//! their own.
//!
//! Every server here listens on 127.0.0.1 only.

pub mod issuer;
pub mod latency_proxy;
pub mod moto;
pub mod runtime;
