#!/usr/bin/env bash
# Runs the pipeline's step scripts (examples/ci/*.sh) the way the example workflows do, against
# moto (the AWS of up, logs, gc and teardown) and `wishctl dev` (the URL verify checks and the
# issuer of the client-credentials grant), and checks what each step did:
#   install-wishctl.sh  from a local "release" (scripts/package.sh's assets served over HTTP on
#                       127.0.0.1): the sum is checked, the packaged binary installed; a release
#                       whose sums do not match is refused;
#   up.sh               from the checkout, yet deploys the zip the packaged wishctl carries; the
#                       outputs and GITHUB_ENV / GITHUB_OUTPUT lines; the stack has an expiry;
#   verify.sh           with a client id and secret of `wishctl dev`; a wrong secret fails it;
#                       with STACK (as the workflow runs it) the URL is pr-42's, from its outputs;
#   logs.sh             a line in the function's log group reaches logs.txt;
#   gc.sh               DRY_RUN changes nothing; then only the expired stack goes;
#   teardown.sh         the stack is gone; a second run is fine.
# Needs: scripts/package.sh --check run first (or PACKAGE_ASSETS=DIR), and moto
# (WISHCTL_MOTO_ENDPOINT, else .venv/bin/moto_server from scripts/setup.sh --test).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

fail() { echo "test-against-local: FAILED: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
case "$(uname -m)" in x86_64) arch=x86_64 ;; aarch64) arch=arm64 ;; *) fail "unsupported machine $(uname -m)" ;; esac
assets=${PACKAGE_ASSETS:-$root/target/package/assets}
tarball="$assets/wishctl-$version-$arch-linux.tar.gz"
[ -f "$assets/SHA256SUMS" ] && [ -f "$tarball" ] \
  || fail "no packaged wishctl in $assets: run scripts/package.sh --check first"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step "install-wishctl.sh from a local release"
mkdir -p "$work/releases/v$version" "$work/releases/v0.0.0"
cp "$assets"/* "$work/releases/v$version/"
# A tampered release: the tarball differs from what its SHA256SUMS says.
cp "$assets/SHA256SUMS" "$work/releases/v0.0.0/SHA256SUMS"
sed -i "s/wishctl-$version-/wishctl-0.0.0-/" "$work/releases/v0.0.0/SHA256SUMS"
{ cat "$tarball"; echo tampered; } >"$work/releases/v0.0.0/wishctl-0.0.0-$arch-linux.tar.gz"
http_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$work/releases" "$http_port" >"$work/http.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$http_port/" || fail "the local release server did not start"
export WISHCTL_RELEASES="http://127.0.0.1:$http_port"

if WISHCTL_VERSION=0.0.0 WISHCTL_HOME="$work/tampered" bash examples/ci/install-wishctl.sh 2>"$work/tampered.err"; then
  fail "install-wishctl.sh installed a tarball that does not match SHA256SUMS"
fi
grep -q "does not match the SHA256SUMS" "$work/tampered.err" || fail "unexpected error: $(cat "$work/tampered.err")"
[ ! -e "$work/tampered/bin/wishctl" ] || fail "the tampered wishctl was installed"

export WISHCTL_VERSION=$version WISHCTL_HOME="$work/home" GITHUB_PATH="$work/github_path"
bash examples/ci/install-wishctl.sh
[ "$(cat "$GITHUB_PATH")" = "$WISHCTL_HOME/bin" ] || fail "GITHUB_PATH does not name $WISHCTL_HOME/bin"
cmp -s <(tar -xzOf "$tarball" wishctl) "$WISHCTL_HOME/bin/wishctl" || fail "the installed wishctl is not the packaged one"
export PATH="$WISHCTL_HOME/bin:$PATH"
[ "$(command -v wishctl)" = "$WISHCTL_HOME/bin/wishctl" ] || fail "wishctl on the PATH is not the installed one"

step "moto"
endpoint=${WISHCTL_MOTO_ENDPOINT:-}
if [ -z "$endpoint" ]; then
  [ -x .venv/bin/moto_server ] || fail "no moto: run scripts/setup.sh --test or set WISHCTL_MOTO_ENDPOINT"
  moto_port=$(free_port)
  .venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
  pids+=($!)
  endpoint="http://127.0.0.1:$moto_port"
  wait_http "$endpoint/moto-api/" || fail "moto did not start"
fi
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true XDG_CACHE_HOME="$work/cache"
unset AWS_PROFILE WISHCTL_TOKEN
export CI_OUT="$work/out" GITHUB_ENV="$work/github_env" GITHUB_OUTPUT="$work/github_output"
: >"$GITHUB_ENV"
: >"$GITHUB_OUTPUT"
# up runs against moto, whose issuer is not reachable from here: no discovery check.
export ISSUER=https://tenant.example.com/ AUDIENCE=https://wishlist.example.com
export WISHCTL_UP_FLAGS=--skip-issuer-check

step "up.sh (run from the checkout: must deploy the carried zip, not build)"
STACK=pr-42 PR_NUMBER=42 bash examples/ci/up.sh
jq -e '.stack == "pr-42" and (.url | startswith("https://"))' "$CI_OUT/outputs.json" >/dev/null \
  || fail "outputs.json: $(cat "$CI_OUT/outputs.json")"
url=$(jq -r .url "$CI_OUT/outputs.json")
grep -qx "WISHCTL_URL=$url" "$GITHUB_ENV" || fail "GITHUB_ENV: $(cat "$GITHUB_ENV")"
grep -qx "url=$url" "$GITHUB_OUTPUT" || fail "GITHUB_OUTPUT: $(cat "$GITHUB_OUTPUT")"
# plan against the zip the packaged wishctl carries: nothing to change means that zip is deployed.
wishctl plan --stack pr-42 --issuer "$ISSUER" --audience "$AUDIENCE" --tag pr=42 \
  --artifact "$(dirname "$assets")/dist/bootstrap-arm64.zip" $WISHCTL_UP_FLAGS --detailed-exitcode >"$work/plan.txt" \
  || fail "pr-42 does not run the carried arm64 zip: $(cat "$work/plan.txt")"
wishctl list --output json >"$work/list.json" || fail "wishctl list failed"
jq -e '[.. | objects | select(.stack? == "pr-42" or .name? == "pr-42")] | length == 1' "$work/list.json" >/dev/null \
  || fail "list does not show pr-42 once: $(cat "$work/list.json")"
# up.sh deployed with --ttl 2h: pr-42's expiresAt is a time one to two hours ahead (not null, absent,
# "never", past or another TTL's; the `expired` flag beside it is false either way, so proves nothing).
has_ttl='[.stacks[] | select(.stack == "pr-42") | .expiresAt] as $e | ($e | length) == 1
  and ($e[0] | type) == "string" and (($e[0] | try fromdateiso8601 catch null) as $t
  | $t != null and $t > $now + 3600 and $t <= $now + 7200 + 60)'
jq -e --argjson now "$(date +%s)" "$has_ttl" "$work/list.json" >/dev/null \
  || fail "pr-42 has no expiry about 2h ahead in list (up.sh passes --ttl 2h): $(cat "$work/list.json")"

step "verify.sh against wishctl dev, with client credentials"
dev_port=$(free_port)
wishctl dev --port "$dev_port" --dev-dir "$work/dev" --log off >"$work/dev.out" 2>"$work/dev.err" &
pids+=($!)
wait_http "http://127.0.0.1:$dev_port/wish-list-service" || fail "wishctl dev did not start: $(cat "$work/dev.err")"
for _ in $(seq 50); do grep -q "^Stop with Ctrl-C" "$work/dev.out" && break; sleep 0.1; done
client_id=$(sed -n 's/^  client  *\([^ ]*\) .*/\1/p' "$work/dev.out" | head -1)
secret=$(sed -n "s/^  export WISHCTL_CLIENT_SECRET=//p" "$work/dev.out" | head -1)
secret=${secret#\'}
secret=${secret%\'}
[ -n "$client_id" ] && [ -n "$secret" ] || fail "no client id and secret in the banner of wishctl dev: $(cat "$work/dev.out")"
dev_issuer="http://127.0.0.1:$dev_port/"
VERIFY_URL="http://127.0.0.1:$dev_port/wish-list-service" ISSUER=$dev_issuer AUDIENCE=wishctl-dev \
  CLIENT_ID=$client_id CLIENT_SECRET_ENV=DEV_SECRET DEV_SECRET=$secret bash examples/ci/verify.sh
grep -q "all 5 checks passed" "$CI_OUT/verify.txt" || fail "verify.txt: $(cat "$CI_OUT/verify.txt")"
items=$(curl -fsS "http://127.0.0.1:$dev_port/wish-list-service" | jq '[.Items[] | select(.name | startswith("wishctl verify "))] | length')
[ "$items" = 1 ] || fail "verify wrote $items items, expected exactly 1"
if VERIFY_URL="http://127.0.0.1:$dev_port/wish-list-service" ISSUER=$dev_issuer AUDIENCE=wishctl-dev \
  CLIENT_ID=$client_id CLIENT_SECRET_ENV=DEV_SECRET DEV_SECRET=wrong-secret \
  bash examples/ci/verify.sh >"$work/verify-wrong.txt" 2>&1; then
  fail "verify.sh passed with a wrong client secret"
fi

step "verify.sh with STACK (the workflow's way): the URL comes from the stack's outputs"
# moto's invoke URL serves nothing, so the checks fail there: what is checked is that verify.sh
# asked for pr-42's URL, and that a failed verify fails the step.
if STACK=pr-42 ISSUER=$dev_issuer AUDIENCE=wishctl-dev CLIENT_ID=$client_id \
  CLIENT_SECRET_ENV=DEV_SECRET DEV_SECRET=$secret \
  bash examples/ci/verify.sh >"$work/verify-stack.txt" 2>"$work/verify-stack.err"; then
  fail "verify.sh passed against moto's invoke URL, which serves nothing"
fi
grep -qF "verifying $url" "$work/verify-stack.err" \
  || fail "verify.sh with STACK=pr-42 did not verify pr-42's URL ($url): $(cat "$work/verify-stack.err")"

step "verify.sh with STACK and no ISSUER / AUDIENCE: both come from the stack's authorizer"
# pr-42 trusts $ISSUER, which is not reachable here: the grant fails, after verify said whose
# issuer and audience it used.
if (unset ISSUER AUDIENCE; STACK=pr-42 CLIENT_ID=$client_id CLIENT_SECRET_ENV=DEV_SECRET \
  DEV_SECRET=$secret bash examples/ci/verify.sh >"$work/verify-own.txt" 2>"$work/verify-own.err"); then
  fail "verify.sh passed with pr-42's unreachable issuer"
fi
grep -qF "using the issuer $ISSUER and audience $AUDIENCE of stack pr-42" "$work/verify-own.err" \
  || fail "verify.sh with STACK alone did not take pr-42's issuer and audience: $(cat "$work/verify-own.err")"

step "logs.sh: the function's log lines"
# A line as the handler writes it, in the function's log group (moto runs no function).
log_group=$(jq -r .logGroup "$CI_OUT/outputs.json")
marker="ci-log-check-$RANDOM$RANDOM"
.venv/bin/python - "$log_group" "$marker" <<'PY'
import json, os, sys, time, boto3
group, marker = sys.argv[1], sys.argv[2]
logs = boto3.client("logs", region_name=os.environ["AWS_REGION"], endpoint_url=os.environ["AWS_ENDPOINT_URL"])
stream = "2026/01/01/[$LATEST]ci"
try:
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
except logs.exceptions.ResourceAlreadyExistsException:
    pass
line = json.dumps({"level": "INFO", "message": "request", "method": "GET", "status": 200, "marker": marker})
logs.put_log_events(logGroupName=group, logStreamName=stream,
                    logEvents=[{"timestamp": int(time.time() * 1000), "message": line}])
PY
STACK=pr-42 bash examples/ci/logs.sh >/dev/null || fail "logs.sh failed"
[ -f "$CI_OUT/logs.txt" ] || fail "logs.sh wrote no $CI_OUT/logs.txt"
grep -qF "$marker" "$CI_OUT/logs.txt" || fail "logs.txt lacks the function's log line: $(cat "$CI_OUT/logs.txt")"

step "gc.sh: only the expired stack goes"
STACK=pr-43 PR_NUMBER=43 TTL=1s bash examples/ci/up.sh
# A stack of the same prefix without an expiry: never swept.
(cd "$work" && wishctl up --stack pr-44 --issuer "$ISSUER" --audience "$AUDIENCE" $WISHCTL_UP_FLAGS >/dev/null) \
  || fail "up of pr-44 failed"
sleep 2
DRY_RUN=1 bash examples/ci/gc.sh >"$work/gc-dry.txt" || fail "gc.sh with DRY_RUN failed: $(cat "$work/gc-dry.txt")"
grep -q "pr-43" "$work/gc-dry.txt" || fail "the dry run does not name pr-43: $(cat "$work/gc-dry.txt")"
wishctl outputs --stack pr-43 >/dev/null 2>&1 || fail "the dry run removed pr-43"
bash examples/ci/gc.sh >"$work/gc.txt" || fail "gc.sh failed: $(cat "$work/gc.txt")"
if wishctl outputs --stack pr-43 >/dev/null 2>&1; then fail "gc.sh left the expired pr-43"; fi
wishctl outputs --stack pr-42 >/dev/null || fail "gc.sh removed pr-42, which has not expired"
wishctl outputs --stack pr-44 >/dev/null || fail "gc.sh removed pr-44, which has no expiry"

step "teardown.sh"
STACK=pr-42 bash examples/ci/teardown.sh
if wishctl outputs --stack pr-42 >/dev/null 2>&1; then fail "teardown.sh left pr-42"; fi
STACK=pr-42 bash examples/ci/teardown.sh || fail "a second teardown of pr-42 failed"
(cd "$work" && wishctl down --stack pr-44 --delete-data >/dev/null 2>&1) || true

echo "test-against-local: OK (install, up, verify, logs, gc, teardown)" >&2
