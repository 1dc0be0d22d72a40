//! The reconciler against moto's server mode (reset before each test), and against the SDK's
//! test doubles for what moto cannot show (IAM propagation, Pending / InProgress, throttling).
//! One test binary: `cargo test -p provision --test provision`.

#![allow(clippy::unwrap_used)]

mod authorizer_listing;
mod down;
mod endpoint_guards;
mod faults;
mod support;
mod up;
