#!/usr/bin/env bash
# The scheduled sweep: removes, with their data, the stacks named STACK_PREFIX* (default pr-)
# whose TTL has passed (a crashed run, a cancelled teardown). Exit non-zero if one could not go.
#   STACK_PREFIX; DRY_RUN=1 only lists them; WISHCTL (default wishctl)
set -euo pipefail
args=(gc --expired --stack-prefix "${STACK_PREFIX:-pr-}" --delete-data)
[ "${DRY_RUN:-0}" = 0 ] || args+=(--dry-run)
"${WISHCTL:-wishctl}" "${args[@]}"
