#!/usr/bin/env bash
# Runs every fuzz target of every crates/*/fuzz crate for SECONDS each (default 60), then prints
# the executions per target. Installs what it needs: a dated nightly toolchain (rustup) and
# cargo-fuzz (crates.io). Inputs are capped in size (-max_len) and memory (-rss_limit_mb / -malloc_limit_mb,
# so an unbounded allocation is a failure). New corpus entries go to a scratch folder; the seed
# corpus committed under crates/*/fuzz/corpus/TARGET is only read. A crash leaves its input in
# crates/*/fuzz/artifacts/TARGET/ and makes the script exit 1.
#
# Usage: bash scripts/fuzz.sh [SECONDS]
#        bash scripts/fuzz.sh --build-only   (install and build; scripts/test.sh builds the
#                                             targets this way while the tests run)
# Environment: FUZZ_MAX_LEN (bytes, default 65536), FUZZ_RSS_MB (default 1024),
#              FUZZ_TOOLCHAIN (default nightly-2026-05-20), FUZZ_PARALLEL (targets fuzzed at
#              once, default the number of cores: each libFuzzer run uses one), CARGO_FUZZ_VERSION (the
#              cargo-fuzz installed when none is, default 0.13.2).
set -euo pipefail

build_only=false
if [ "${1:-}" = --build-only ]; then
  build_only=true
  shift
fi
seconds="${1:-60}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]  (a whole number of seconds per target)" >&2; exit 2 ;;
esac
max_len="${FUZZ_MAX_LEN:-65536}"
rss_mb="${FUZZ_RSS_MB:-1024}"
# A dated nightly, so that CI fuzzes with the same compiler from one run to the next (a new
# nightly can break cargo-fuzz or the sanitizer build on any day); FUZZ_TOOLCHAIN=nightly for
# the newest.
toolchain="${FUZZ_TOOLCHAIN:-nightly-2026-05-20}"
parallel="${FUZZ_PARALLEL:-$(nproc 2>/dev/null || echo 1)}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v rustup >/dev/null; then
  echo "fuzz.sh: rustup is required (https://rustup.rs)" >&2
  exit 1
fi
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing the $toolchain toolchain" >&2
  rustup toolchain install "$toolchain" --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --version "${CARGO_FUZZ_VERSION:-0.13.2}"
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

shopt -s nullglob
fuzz_dirs=(crates/*/fuzz)
if [ ${#fuzz_dirs[@]} -eq 0 ]; then
  echo "fuzz.sh: no crates/*/fuzz crate found" >&2
  exit 1
fi

# Build every fuzz crate first, then run the targets FUZZ_PARALLEL at a time.
runs=()
for dir in "${fuzz_dirs[@]}"; do
  crate="$(basename "$(dirname "$dir")")"
  echo "== $dir: building" >&2
  (cd "$dir" && cargo "+$toolchain" fuzz build --release --debug-assertions) >&2
  mapfile -t targets < <(cd "$dir" && cargo "+$toolchain" fuzz list)
  for target in "${targets[@]}"; do
    [ -n "$target" ] && runs+=("$dir $crate $target")
  done
done

if $build_only; then
  echo "fuzz.sh: built ${#runs[@]} targets" >&2
  exit 0
fi

# One target's run; its exit status goes to $scratch/<crate>-<target>.status.
fuzz_one() {
  local dir=$1 crate=$2 target=$3
  local corpus="$scratch/$crate/$target" log="$scratch/$crate-$target.log" seeds=() status=0
  mkdir -p "$corpus" "$dir/artifacts/$target"
  [ -d "$dir/corpus/$target" ] && seeds=("$root/$dir/corpus/$target")
  (cd "$dir" && cargo "+$toolchain" fuzz run --release --debug-assertions "$target" \
      "$corpus" "${seeds[@]}" -- \
      -max_total_time="$seconds" -max_len="$max_len" \
      -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
      -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$root/$dir/artifacts/$target/") >"$log" 2>&1 || status=$?
  echo "$status" >"$scratch/$crate-$target.status"
}

for run in "${runs[@]}"; do
  read -r dir crate target <<<"$run"
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  echo "== $crate/$target: ${seconds}s, max_len $max_len, rss ${rss_mb} MB" >&2
  fuzz_one "$dir" "$crate" "$target" &
done
wait

summary=()
failed=0
for run in "${runs[@]}"; do
  read -r dir crate target <<<"$run"
  log="$scratch/$crate-$target.log"
  status="$(cat "$scratch/$crate-$target.status" 2>/dev/null || echo 1)"
  executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  executions="${executions:-?}"
  corpus_size="$(find "$scratch/$crate/$target" -type f | wc -l)"
  if [ "$status" -eq 0 ]; then
    result="ok"
  else
    result="FAILED (exit $status, log above)"
    failed=1
    echo "== $crate/$target failed; the end of its log:" >&2
    tail -n 60 "$log" >&2
  fi
  summary+=("$(printf '%-12s %-22s %12s executions %6s new corpus entries  %s' \
    "$crate" "$target" "$executions" "$corpus_size" "$result")")
done

echo
echo "fuzz summary (${seconds}s per target, $parallel at a time):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
