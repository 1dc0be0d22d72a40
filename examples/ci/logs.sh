#!/usr/bin/env bash
# The function's log lines of the last SINCE (default 30m): what to read when a step failed.
#   STACK; WISHCTL (default wishctl), CI_OUT (default ./wishctl-ci): a copy in $CI_OUT/logs.txt
set -euo pipefail
: "${STACK:?set STACK}"
out=${CI_OUT:-$PWD/wishctl-ci}
mkdir -p "$out"
"${WISHCTL:-wishctl}" logs --stack "$STACK" --since "${SINCE:-30m}" | tee "$out/logs.txt"
