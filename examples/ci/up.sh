#!/usr/bin/env bash
# Creates or updates the pull request's stack and records its outputs.
#   STACK, ISSUER, AUDIENCE   required (ISSUER exactly as the tokens' iss: Auth0's ends with /)
#   TTL                       lifetime recorded on the stack (default 2h): `gc --expired` removes
#                             it even when every teardown of the pipeline failed
#   SCOPE, PR_NUMBER          optional: the POST route's scope; a `pr=N` tag
#   WISHCTL_ARTIFACT          optional: deploy this zip instead of the one wishctl carries
#   WISHCTL_UP_FLAGS          optional: more flags for `up`, e.g. --skip-issuer-check
#   WISHCTL (default wishctl), CI_OUT (default ./wishctl-ci)
# Writes $CI_OUT/outputs.json and exports WISHCTL_URL (GITHUB_ENV) and url (GITHUB_OUTPUT).
# wishctl runs from an empty folder, so it deploys the handler zip it carries (the version
# install-wishctl.sh installed) and never builds the checkout the job runs in.
set -euo pipefail
: "${STACK:?set STACK, e.g. pr-42}" "${ISSUER:?set ISSUER}" "${AUDIENCE:?set AUDIENCE}"
wishctl=$(command -v "${WISHCTL:-wishctl}") || { echo "up.sh: ${WISHCTL:-wishctl} is not on the PATH (install-wishctl.sh)" >&2; exit 1; }
out=${CI_OUT:-$PWD/wishctl-ci}
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ -z "${WISHCTL_ARTIFACT:-}" ] || WISHCTL_ARTIFACT=$(cd "$(dirname "$WISHCTL_ARTIFACT")" && pwd)/$(basename "$WISHCTL_ARTIFACT")

args=(up --stack "$STACK" --issuer "$ISSUER" --audience "$AUDIENCE" --ttl "${TTL:-2h}" --output json)
[ -z "${SCOPE:-}" ] || args+=(--scope "$SCOPE")
[ -z "${PR_NUMBER:-}" ] || args+=(--tag "pr=$PR_NUMBER")
[ -z "${WISHCTL_ARTIFACT:-}" ] || args+=(--artifact "$WISHCTL_ARTIFACT")
read -r -a extra <<<"${WISHCTL_UP_FLAGS:-}"
args+=("${extra[@]}")

neutral=$(mktemp -d)
trap 'rm -rf "$neutral"' EXIT
(cd "$neutral" && "$wishctl" "${args[@]}") >"$out/outputs.json"
url=$(jq -er .url "$out/outputs.json")
echo "up.sh: stack $STACK is up at $url" >&2
if [ -n "${GITHUB_ENV:-}" ]; then echo "WISHCTL_URL=$url" >>"$GITHUB_ENV"; fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "url=$url" >>"$GITHUB_OUTPUT"; fi
