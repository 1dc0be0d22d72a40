#!/usr/bin/env bash
# wishctl up / down benchmark against AWS's timing model (testkit's AwsProxy in front of moto:
# IAM propagation of roles and of their policies, Pending / InProgress functions, CREATING /
# DELETING tables, API Gateway's rate limit, the model's latency per call) and against moto
# alone, side by side with the walkthrough's steps done one by one with the aws CLI and with
# `cargo lambda deploy` of the same code (role + function), through the same model. Prints
# each operation's wall time, the time its changes are ready by the model, its calls and the
# bound the model forces on it, then what every wait cost in calls, API Gateway's request
# rate, the zip bytes sent again during IAM propagation and when the role's policy took effect.
#
#   bash bench/deploy/run.sh                       # RUNS=3 AWS_RUNS=1 CARGO_LAMBDA_RUNS=1, release build
#   AWS_RUNS=0 CARGO_LAMBDA_RUNS=0 bash bench/deploy/run.sh   # wishctl only (about 25 s a run)
#   bash bench/deploy/run.sh --profile dev         # reuse the test build (no fat-LTO build)
#   LATENCY_MS=100 MODEL_SCALE=0.5 bash bench/deploy/run.sh
#
# Needs the repo's venv with moto[server] (scripts/setup.sh creates it). This script installs
# into it what is missing, at the versions pinned below: awscli, and cargo-lambda from PyPI's
# prebuilt binary wheel (a few seconds; building it from crates.io takes hundreds of crates),
# awscli's version (the aws CLI 1.x prints `aws-cli/1.46.3 ...`) being what the script's waiter
# timings depend on. The moto server
# the benchmark starts loads AWS's managed IAM policies (MOTO_IAM_LOAD_MANAGED_POLICIES), which
# `cargo lambda deploy` attaches to the role it creates.
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO_LAMBDA_VERSION=1.9.2
# The aws CLI the walkthrough script runs (also pinned in scripts/requirements-test.txt).
AWSCLI_VERSION=1.46.3

if [ ! -x .venv/bin/moto_server ]; then
    echo "no .venv with moto: run scripts/setup.sh first" >&2
    exit 1
fi
if ! .venv/bin/aws --version 2>&1 | grep -q "^aws-cli/$AWSCLI_VERSION "; then
    .venv/bin/pip install --quiet "awscli==$AWSCLI_VERSION"
fi
if [ "${CARGO_LAMBDA_RUNS:-1}" != 0 ] &&
    ! .venv/bin/cargo-lambda lambda --version 2>/dev/null | grep -q "^cargo-lambda $CARGO_LAMBDA_VERSION "; then
    .venv/bin/pip install --quiet "cargo-lambda==$CARGO_LAMBDA_VERSION"
fi
export AWS_CLI="$PWD/.venv/bin/aws"
export CARGO_LAMBDA="$PWD/.venv/bin/cargo-lambda"
exec cargo bench -p deploy --bench up_down "$@"
