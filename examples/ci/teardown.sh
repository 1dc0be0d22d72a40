#!/usr/bin/env bash
# Removes the pull request's stack with its data: the job that always runs, and the one that runs
# when the pull request closes. A stack already gone counts as done (exit 0).
#   STACK; WISHCTL (default wishctl)
set -euo pipefail
: "${STACK:?set STACK}"
"${WISHCTL:-wishctl}" down --stack "$STACK" --delete-data
