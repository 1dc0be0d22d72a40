#!/usr/bin/env bash
# Conventions that no compiler checks, checked by the suite (scripts/test.sh):
# - `rust-version` in Cargo.toml is the toolchain rust-toolchain.toml pins: the only one CI
#   builds with, so the only one the claim is ever checked against;
# - every Rust file of the repository starts its documentation with a `//!` module doc.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
pinned=$(sed -n 's/^channel = "\([0-9]*\.[0-9]*\).*"/\1/p' rust-toolchain.toml)
declared=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if [ -z "$pinned" ] || [ "$pinned" != "$declared" ]; then
  echo "check-conventions: Cargo.toml says rust-version = \"$declared\" but rust-toolchain.toml" \
    "pins ${pinned:-no numbered toolchain}: make them the same minor version" >&2
  status=1
fi

missing=$(git ls-files '*.rs' | while read -r file; do
  grep -q '^//!' "$file" || echo "  $file"
done)
if [ -n "$missing" ]; then
  printf 'check-conventions: these Rust files have no //! module doc (say what the module is for):\n%s\n' \
    "$missing" >&2
  status=1
fi
exit "$status"
