//! Release builds of `wishctl` carry the Lambda zips of their own version.
//!
//! With `WISHCTL_EMBED_DIST=DIR` set at build time (scripts/package.sh sets it), every
//! `DIR/bootstrap-<arch>.zip` present is embedded with the SHA-256 computed here, and an installed
//! `wishctl up` run outside a checkout deploys it (see `artifact::carried`). Without it, nothing is
//! embedded: a development build deploys what it builds from its checkout, or `--artifact`.

use std::path::PathBuf;

use base64::Engine as _;
use sha2::{Digest, Sha256};

const ARCHES: [(&str, &str); 2] = [("arm64", "Arm64"), ("x86_64", "X86_64")];

fn main() {
    println!("cargo:rerun-if-env-changed=WISHCTL_EMBED_DIST");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut code = String::from("&[\n");
    if let Some(dist) = std::env::var_os("WISHCTL_EMBED_DIST").filter(|d| !d.is_empty()) {
        let dist = std::fs::canonicalize(PathBuf::from(&dist)).unwrap_or_else(|e| {
            panic!("WISHCTL_EMBED_DIST={}: {e}", PathBuf::from(&dist).display())
        });
        let mut embedded = 0;
        for (arch, variant) in ARCHES {
            let zip = dist.join(format!("bootstrap-{arch}.zip"));
            println!("cargo:rerun-if-changed={}", zip.display());
            let Ok(bytes) = std::fs::read(&zip) else {
                println!(
                    "cargo:warning=WISHCTL_EMBED_DIST: no {} (wishctl will carry no {arch} zip)",
                    zip.display()
                );
                continue;
            };
            let sha = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
            code.push_str(&format!(
                "    artifact::carried::CarriedZip {{ arch: stack::Architecture::{variant}, bytes: include_bytes!({path:?}), sha256_base64: {sha:?} }},\n",
                path = zip.display().to_string(),
            ));
            embedded += 1;
        }
        assert!(
            embedded > 0,
            "WISHCTL_EMBED_DIST={}: holds neither bootstrap-arm64.zip nor bootstrap-x86_64.zip (cargo xtask dist builds them)",
            dist.display()
        );
    }
    code.push(']');
    std::fs::write(out_dir.join("carried_zips.rs"), code).expect("writing carried_zips.rs");
}
