#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine with rustup: set-up, one moto server for the run
# (stopped on exit), then fmt, clippy, docs and the test build beside both Lambda zips (built in
# the background), every test of the workspace, the release packaging check, the CI example's
# step scripts against moto and `wishctl dev`, and a short fuzz run of every fuzz target
# (FUZZ_SECONDS each, default 60; 0 skips it; a long run is `bash scripts/fuzz.sh 600`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's wall time, printed as it ends and again as a summary at the end (the CI log shows
# where the minutes go).
suite_started=$SECONDS
timings=()
timed() {
  local label=$1 started=$SECONDS
  shift
  printf '\n== %s\n' "$label" >&2
  "$@"
  timings+=("$(printf '%5ds  %s' $((SECONDS - started)) "$label")")
  printf '== %s: %ds\n' "$label" $((SECONDS - started)) >&2
}
summary() {
  printf '\ntest.sh step times (total %ds):\n' $((SECONDS - suite_started)) >&2
  printf '  %s\n' "${timings[@]}" >&2
}

timed "set-up" scripts/setup.sh --test

# Tests run the real bootstrap binaries (x86_64 natively, arm64 under qemu-aarch64). Both Lambda
# zips (`cargo xtask dist`) build in the background beside fmt, clippy, docs and the test build:
# cargo locks a target folder per profile and target (target/lambda, target/<musl>/lambda against
# target/debug), and the zips' one-core fat-LTO links leave the other core to those steps. The
# tests wait for them.
cargo build --quiet --locked -p xtask
zips_started=$SECONDS
target/debug/xtask dist >target/zips.log 2>&1 &
zips_pid=$!

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
stop_background() {
  kill "$moto_pid" 2>/dev/null || true
  if [ -n "${zips_pid:-}" ]; then
    pkill -TERM -P "$zips_pid" 2>/dev/null || true
    kill "$zips_pid" 2>/dev/null || true
  fi
  if [ -n "${fuzz_build_pid:-}" ]; then
    pkill -TERM -P "$fuzz_build_pid" 2>/dev/null || true
    kill "$fuzz_build_pid" 2>/dev/null || true
  fi
}
trap 'stop_background; summary' EXIT
python3 - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(300):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("moto did not start; see target/moto.log")
PY
export WISHCTL_MOTO_ENDPOINT="http://127.0.0.1:$port"

# `cargo test --workspace` builds test-issuer (an integration test of testkit runs it); point the
# tests that start it as a process at that build instead of each running a nested cargo build.
export WISHCTL_TEST_ISSUER="$PWD/target/debug/test-issuer"

timed "fmt" cargo fmt --all --check
timed "conventions (rust-version, module docs)" scripts/check-conventions.sh
timed "clippy" cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" timed "docs" cargo doc --no-deps --workspace --quiet
timed "test build" cargo test --workspace --no-run

wait_for_zips() {
  local status=0
  wait "$zips_pid" || status=$?
  zips_pid=
  cat target/zips.log >&2
  if [ "$status" -ne 0 ]; then
    echo "test.sh: building the Lambda zips failed (log above)" >&2
    return 1
  fi
  timings+=("$(printf '%5ds  %s' $((SECONDS - zips_started)) \
    "both Lambda zips, in the background from the start (overlaps the steps above)")")
}
timed "both Lambda zips (the wait for the background build)" wait_for_zips

# The fuzz targets (nightly, their own target folders) build while the tests run: the tests
# mostly wait for moto and for the processes they start, which leaves a core idle.
fuzz_seconds="${FUZZ_SECONDS:-60}"
fuzz_build_pid=
if [ "$fuzz_seconds" -gt 0 ]; then
  bash scripts/fuzz.sh --build-only >target/fuzz-build.log 2>&1 &
  fuzz_build_pid=$!
fi
timed "tests" cargo test --workspace --no-fail-fast

# Release packaging (quick variant: wishctl for this machine, carrying both zips) and the example
# pipeline's step scripts run against what it packaged.
timed "release packaging check" bash scripts/package.sh --check --dist dist
timed "CI example steps" bash examples/ci/test-against-local.sh
if [ -n "$fuzz_build_pid" ]; then
  if ! wait "$fuzz_build_pid"; then
    cat target/fuzz-build.log >&2
    echo "test.sh: building the fuzz targets failed (log above)" >&2
    exit 1
  fi
  timed "fuzz (${fuzz_seconds}s per target)" bash scripts/fuzz.sh "$fuzz_seconds"
fi
