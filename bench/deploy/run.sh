#!/usr/bin/env bash
# wishctl up / down benchmark against AWS's timing model (testkit's AwsProxy in front of moto:
# IAM propagation, Pending / InProgress functions, CREATING / DELETING tables, API Gateway's
# rate limit, 50 ms per call) and against moto alone, side by side with the walkthrough's
# steps done one by one with the aws CLI through the same model. Prints each operation's wall
# time, calls and the bound the model forces on it.
#
#   bash bench/deploy/run.sh                       # RUNS=3 AWS_RUNS=1, release build
#   AWS_RUNS=0 bash bench/deploy/run.sh            # without the aws CLI (about 40 s a run)
#   bash bench/deploy/run.sh --profile dev         # reuse the test build (no fat-LTO build)
#   LATENCY_MS=100 MODEL_SCALE=0.5 bash bench/deploy/run.sh
#
# Needs the repo's venv with moto[server] and awscli (scripts/setup.sh creates it; this script
# installs awscli into it if it is missing).
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
