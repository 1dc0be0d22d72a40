#!/usr/bin/env bash
# Installs everything wishctl needs on a fresh Debian machine that has rustup:
#   - Debian packages: musl-tools (x86_64 static builds), gcc-aarch64-linux-gnu (arm64 C code),
#     qemu-user (runs the arm64 bootstrap in tests), wrk (load generator of the benchmarks);
#   - the Rust toolchain and musl targets pinned in rust-toolchain.toml;
#   - with --test: a Python venv in .venv with moto's server mode (the offline AWS of the tests).
# Idempotent: what is already there is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

want_venv=false
for arg in "$@"; do
  case "$arg" in
    --test) want_venv=true ;;
    *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
  esac
done

packages=(musl-tools gcc-aarch64-linux-gnu qemu-user wrk)
# Debian's own python3 needs python3-venv for `python3 -m venv`.
if $want_venv && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  packages+=(python3-venv)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# rustup installs the pinned channel, components and targets from rust-toolchain.toml.
channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain install "$channel" --profile minimal \
  --component rustfmt,clippy \
  --target x86_64-unknown-linux-musl,aarch64-unknown-linux-musl >/dev/null 2>&1 \
  || rustup toolchain install "$channel" --profile minimal --component rustfmt,clippy \
       --target x86_64-unknown-linux-musl,aarch64-unknown-linux-musl

if $want_venv; then
  if [ ! -x .venv/bin/moto_server ]; then
    echo "setup: creating .venv with moto" >&2
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
  fi
fi
