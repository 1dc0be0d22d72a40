//! `wishctl` as a process, the way users and pipelines run it: against moto, `wishctl dev`, local
//! issuers and servers that misbehave on purpose. One module per command or concern.
//!
//! One test binary on purpose: each integration-test file is a binary of its own that links the
//! AWS SDK crates again, and fourteen of them cost CI minutes of linking. The fault campaign
//! (`tests/faults_campaign.rs`) stays a binary of its own: it is also the benchmark command.
//! Run one module with a filter, e.g. `cargo test -p deploy --test cli drift::`.

#![allow(clippy::unwrap_used)]

mod support;

mod aws_settings;
mod denied;
mod deploy_flags;
mod deploy_issuer;
mod deploy_moto;
mod deploy_regions;
mod dev;
mod drift;
mod lifetimes;
mod logs;
mod output_closed;
mod policy;
mod race;
mod token;
mod verify;
mod verify_install;
