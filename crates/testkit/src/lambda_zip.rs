//! Lambda deployment zips for tests: moto stores the code and never runs it, and wishctl only
//! checks that `bootstrap` is an ELF for the right architecture, so a header is enough.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// ELF `e_machine` of arm64.
pub const ARM64: u16 = 183;
/// ELF `e_machine` of x86_64.
pub const X86_64: u16 = 62;

/// A 64-bit little-endian ELF header for `machine`, padded with zeros to `len` bytes (at least
/// 64): passes wishctl's checks, but is not a runnable program.
pub fn fake_elf(machine: u16, len: usize) -> Vec<u8> {
    let mut bytes = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    bytes.resize(18, 0);
    bytes.extend_from_slice(&machine.to_le_bytes());
    bytes.resize(len.max(64), 0);
    bytes
}

/// Writes a zip at `path` holding one entry `entry` (mode 0755, stored) with `content`.
pub fn write_zip(path: &Path, entry: &str, content: &[u8]) -> PathBuf {
    let file = std::fs::File::create(path).expect("creating the test zip");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    zip.start_file(entry, options).expect("zip entry");
    zip.write_all(content).expect("zip write");
    zip.finish().expect("zip finish");
    path.to_path_buf()
}

/// `dir/bootstrap.zip`: a `bootstrap` with an arm64 ELF header, as `wishctl up --artifact` takes.
pub fn fake_bootstrap_zip(dir: &Path) -> PathBuf {
    write_zip(
        &dir.join("bootstrap.zip"),
        "bootstrap",
        &fake_elf(ARM64, 4096),
    )
}
