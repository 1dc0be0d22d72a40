#!/usr/bin/env bash
# Smoke-tests the deployed stack with a machine token (OAuth 2.0 client credentials): the
# walkthrough's "Test it out" as `wishctl verify` runs it; exits non-zero naming the failed check.
#   STACK                 the stack whose URL to verify (from its outputs), or VERIFY_URL instead
#   ISSUER, AUDIENCE      the token issuer (its token endpoint) and the API identifier; with STACK
#                         optional (wishctl reads them from the stack's JWT authorizer)
#   CLIENT_ID             the machine-to-machine application's client id
#   CLIENT_SECRET_ENV     name of the variable holding its secret (default AUTH0_CI_CLIENT_SECRET);
#                         the secret never appears on a command line
#   WISHCTL (default wishctl), CI_OUT (default ./wishctl-ci): the table goes to $CI_OUT/verify.txt
set -euo pipefail
: "${CLIENT_ID:?set CLIENT_ID}"
secret_env=${CLIENT_SECRET_ENV:-AUTH0_CI_CLIENT_SECRET}
[ -n "${!secret_env:-}" ] || { echo "verify.sh: the client secret variable $secret_env is empty" >&2; exit 1; }
out=${CI_OUT:-$PWD/wishctl-ci}
mkdir -p "$out"

if [ -n "${VERIFY_URL:-}" ]; then
  # Only a stack's authorizer can say which issuer a bare URL trusts.
  : "${ISSUER:?set ISSUER (and AUDIENCE) with VERIFY_URL}"
  target=(--url "$VERIFY_URL")
else
  target=(--stack "${STACK:?set STACK or VERIFY_URL}")
fi
auth=()
[ -z "${ISSUER:-}" ] || auth+=(--issuer "$ISSUER")
[ -z "${AUDIENCE:-}" ] || auth+=(--audience "$AUDIENCE")
"${WISHCTL:-wishctl}" verify "${target[@]}" \
  --client-id "$CLIENT_ID" --client-secret-env "$secret_env" \
  "${auth[@]}" | tee "$out/verify.txt"
