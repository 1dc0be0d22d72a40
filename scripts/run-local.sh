#!/usr/bin/env bash
# The wish-list API on this machine: set-up, then `wishctl dev` on
# http://127.0.0.1:3000/wish-list-service with the JWT authorizer enforced (Ctrl-C stops it).
# Extra arguments go to `wishctl dev` (e.g. --port 8080, --issuer/--audience of a real tenant).
# The Lambda zips are not needed for this: `cargo xtask dist` builds them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --quiet -p deploy -- dev "$@"
