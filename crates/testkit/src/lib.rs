//! Test support shared by every crate: a moto server launcher, a Lambda Runtime API emulator, a latency proxy, a local OIDC issuer.
