//! The function's instruction set: its Lambda name, Rust target and ELF machine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::SpecError;

/// The instruction set the Lambda function runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Architecture {
    /// Graviton: about 20% cheaper per GB-second than x86_64, so the default.
    #[default]
    #[serde(rename = "arm64")]
    Arm64,
    #[serde(rename = "x86_64")]
    X86_64,
}

impl Architecture {
    pub const ALL: [Architecture; 2] = [Architecture::Arm64, Architecture::X86_64];

    /// The name Lambda uses in `Architectures`.
    pub fn lambda_name(self) -> &'static str {
        match self {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        }
    }

    /// The Rust target that produces a static binary for `provided.al2023` on this architecture.
    pub fn rust_target(self) -> &'static str {
        match self {
            Architecture::Arm64 => "aarch64-unknown-linux-musl",
            Architecture::X86_64 => "x86_64-unknown-linux-musl",
        }
    }

    /// The ELF `e_machine` value of binaries for this architecture.
    pub fn elf_machine(self) -> u16 {
        match self {
            Architecture::Arm64 => 183, // EM_AARCH64
            Architecture::X86_64 => 62, // EM_X86_64
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.lambda_name())
    }
}

impl FromStr for Architecture {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "arm64" | "aarch64" => Ok(Architecture::Arm64),
            "x86_64" | "amd64" | "x86-64" => Ok(Architecture::X86_64),
            other => Err(SpecError::Architecture {
                value: other.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lambda_names_and_common_aliases() {
        assert_eq!("arm64".parse(), Ok(Architecture::Arm64));
        assert_eq!("aarch64".parse(), Ok(Architecture::Arm64));
        assert_eq!("x86_64".parse(), Ok(Architecture::X86_64));
        assert!("sparc".parse::<Architecture>().is_err());
    }

    #[test]
    fn default_is_arm64() {
        assert_eq!(Architecture::default(), Architecture::Arm64);
    }
}
