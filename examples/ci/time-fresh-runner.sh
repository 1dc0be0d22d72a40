#!/usr/bin/env bash
# Times "from a fresh runner to a verified stack" with the pipeline's own step scripts:
#   release  install-wishctl.sh from scripts/package.sh's assets (served on 127.0.0.1, so the
#            download itself costs nothing here: add size / bandwidth), up.sh against moto, then
#            `wishctl verify` against `wishctl dev` (moto's invoke URL serves nothing);
#   cold     (COLD=1, tens of minutes) what a runner without a release does: install-wishctl.sh
#            with WISHCTL_VERSION=source (both handler zips, then `cargo install --locked --path
#            deploy` carrying them) into an empty target folder, then the same up.sh and verify.
# The issuer here is not reachable: up skips its discovery check unless WISHCTL_UP_FLAGS says
# otherwise. Prints one line per step with its wall time. Needs scripts/package.sh run first and moto
# (WISHCTL_MOTO_ENDPOINT or .venv/bin/moto_server).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

ms() { date +%s%3N; }
report() { printf '%-44s %8d ms\n' "$1" "$2"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
assets=${PACKAGE_ASSETS:-$root/target/package/assets}
[ -f "$assets/SHA256SUMS" ] || { echo "run scripts/package.sh first" >&2; exit 1; }
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

mkdir -p "$work/releases/v$version"
cp "$assets"/* "$work/releases/v$version/"
port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$work/releases" "$port" >/dev/null 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$port/"
endpoint=${WISHCTL_MOTO_ENDPOINT:-}
if [ -z "$endpoint" ]; then
  moto_port=$(free_port)
  .venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 &
  pids+=($!)
  endpoint="http://127.0.0.1:$moto_port"
  wait_http "$endpoint/moto-api/"
fi
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true XDG_CACHE_HOME="$work/cache" \
  CI_OUT="$work/out" WISHCTL_HOME="$work/home" WISHCTL_VERSION=$version \
  WISHCTL_RELEASES="http://127.0.0.1:$port"
unset AWS_PROFILE

total=0
t=$(ms); bash examples/ci/install-wishctl.sh >/dev/null 2>&1; d=$(( $(ms) - t )); total=$((total + d))
report "release: install-wishctl.sh (local download)" "$d"
size=$(stat -c %s "$assets/wishctl-$version-x86_64-linux.tar.gz")
echo "  (tarball $size bytes: add its download time at the runner's bandwidth)"
export PATH="$WISHCTL_HOME/bin:$PATH"
t=$(ms)
STACK=pr-time ISSUER=https://tenant.example.com/ AUDIENCE=https://wishlist.example.com TTL=2h \
  WISHCTL_UP_FLAGS="${WISHCTL_UP_FLAGS:---skip-issuer-check}" bash examples/ci/up.sh >/dev/null 2>&1
d=$(( $(ms) - t )); total=$((total + d))
report "release: up.sh (fresh stack, carried zip, moto)" "$d"
dev_port=$(free_port)
wishctl dev --port "$dev_port" --dev-dir "$work/dev" --log off >/dev/null 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$dev_port/wish-list-service"
t=$(ms)
WISHCTL_TOKEN=$(wishctl token --port "$dev_port" --dev-dir "$work/dev") \
  wishctl verify --url "http://127.0.0.1:$dev_port" >/dev/null
d=$(( $(ms) - t )); total=$((total + d))
report "release: token + verify (wishctl dev)" "$d"
report "release: total" "$total"
(cd "$work" && wishctl down --stack pr-time --delete-data >/dev/null 2>&1) || true

if [ "${COLD:-0}" = 1 ]; then
  # The workflow's source mode, as a runner without a release (or a cache) runs it: the handler
  # zips and wishctl carrying them, built by install-wishctl.sh into an empty target folder.
  t=$(ms)
  CARGO_TARGET_DIR="$work/cold-target" WISHCTL_VERSION=source WISHCTL_HOME="$work/cold" \
    GITHUB_PATH= bash examples/ci/install-wishctl.sh >"$work/cold-install.log" 2>&1 \
    || { tail -20 "$work/cold-install.log" >&2; echo "cold install failed" >&2; exit 1; }
  d=$(( $(ms) - t )); cold_total=$d
  report "cold: install-wishctl.sh WISHCTL_VERSION=source" "$d"
  [ "$("$work/cold/bin/wishctl" --version)" = "wishctl $version" ] || { echo "cold: wrong wishctl" >&2; exit 1; }
  t=$(ms)
  STACK=pr-cold ISSUER=https://tenant.example.com/ AUDIENCE=https://wishlist.example.com TTL=2h \
    WISHCTL="$work/cold/bin/wishctl" WISHCTL_UP_FLAGS="${WISHCTL_UP_FLAGS:---skip-issuer-check}" \
    bash examples/ci/up.sh >"$work/cold-up.log" 2>&1 || { cat "$work/cold-up.log" >&2; exit 1; }
  grep -q "code: the handler zip carried by wishctl $version" "$work/cold-up.log" \
    || { cat "$work/cold-up.log" >&2; echo "cold: up did not deploy the zip it carries" >&2; exit 1; }
  d=$(( $(ms) - t )); cold_total=$((cold_total + d))
  report "cold: up.sh (fresh stack, carried zip, moto)" "$d"
  t=$(ms)
  WISHCTL_TOKEN=$("$work/cold/bin/wishctl" token --port "$dev_port" --dev-dir "$work/dev") \
    "$work/cold/bin/wishctl" verify --url "http://127.0.0.1:$dev_port" >/dev/null
  d=$(( $(ms) - t )); cold_total=$((cold_total + d))
  report "cold: token + verify (wishctl dev)" "$d"
  report "cold: total" "$cold_total"
  (cd "$work" && "$work/cold/bin/wishctl" down --stack pr-cold --delete-data >/dev/null 2>&1) || true
fi
