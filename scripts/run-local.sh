#!/usr/bin/env bash
# The wish-list API on this machine: set-up, the Lambda zips, then `wishctl dev` on
# http://127.0.0.1:3000/wish-list-service with the JWT authorizer enforced (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo xtask dist
exec cargo run --release --quiet -p deploy -- dev "$@"
