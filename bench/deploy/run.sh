#!/usr/bin/env bash
# wishctl up / down benchmark: wall time and AWS API call counts for a fresh `up`, a no-op `up`
# and `down`, against moto directly and through a proxy adding DELAY_MS (default 50) to every
# call, side by side with the walkthrough's steps done one by one with the aws CLI.
#
#   bash bench/deploy/run.sh            # RUNS=5 DELAY_MS=50 by default
#
# Needs the repo's venv with moto[server] and awscli (scripts/setup.sh creates it; this script
# installs awscli into it if it is missing). Builds wishctl with the release profile.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x .venv/bin/moto_server ]; then
    echo "no .venv with moto: run scripts/setup.sh first" >&2
    exit 1
fi
if [ ! -x .venv/bin/aws ]; then
    .venv/bin/pip install --quiet awscli
fi
export AWS_CLI="$PWD/.venv/bin/aws"
exec cargo bench -p deploy --bench up_down "$@"
