#!/usr/bin/env bash
# The edit loop against AWS's timing model: in a copy of this checkout, edit the handler
# (crates/wishlist/src/lib.rs), run `wishctl up` (the default build, then --quick-build) through
# testkit's AwsProxy in front of moto with ModelSettings::default(), and time the edit until the
# new code serves (CodeSha256 and LastUpdateStatus Successful), split into build, reads, upload
# and the InProgress wait, with the calls each `up` made.
#
#   bash bench/deploy/edit-loop.sh                  # RUNS=2 edits per build
#   BUILDS=quick bash bench/deploy/edit-loop.sh     # --quick-build only (no fat-LTO build)
#   EDIT_LOOP_DIR=/tmp/other bash bench/deploy/edit-loop.sh --profile dev
#
# The copy and its cargo target folder stay in EDIT_LOOP_DIR ($TMPDIR/wishctl-edit-loop): the
# first run builds the handler's dependencies for both cargo profiles (several minutes), later
# runs only what an edit changes. Needs the repo's venv with moto[server] (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv/bin/moto_server ] && [ -z "${WISHCTL_MOTO_ENDPOINT:-}" ]; then
    echo "no .venv with moto: run scripts/setup.sh first" >&2
    exit 1
fi
exec cargo bench -p deploy --bench edit_loop "$@"
