#!/usr/bin/env bash
# Throughput and latency of `wishctl dev` (in-memory store, its own issuer) on loopback:
# GET of the list, then authorized POST of an item, each for DURATION seconds with wrk.
#
#   bench/dev/run.sh                 # build release, 10 s per run, 2 wrk threads, 16 connections
#   DURATION=5 CONNECTIONS=4 bench/dev/run.sh
#   WISHCTL=target/release/wishctl SKIP_BUILD=1 bench/dev/run.sh
#   LOG=text bench/dev/run.sh        # with the per-request log line on (to a temp file)
#
# Needs wrk (Debian: apt-get install wrk) and curl. Everything runs on 127.0.0.1 and stops by
# itself; the temporary dev folder and the server are removed/stopped on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
duration="${DURATION:-10}"
threads="${THREADS:-2}"
connections="${CONNECTIONS:-16}"
seed_items="${SEED_ITEMS:-10}"
wishctl="${WISHCTL:-$root/target/release/wishctl}"
log="${LOG:-off}"  # text or json: include the per-request log line (written to a temp file)

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is missing: apt-get install curl" >&2; exit 1; }

if [[ -z "${SKIP_BUILD:-}" ]]; then
  echo "building wishctl (release)..." >&2
  (cd "$root" && cargo build --release --quiet -p deploy --bin wishctl)
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$wishctl" dev --port 0 --dev-dir "$work/dev" --log "$log" >"$work/banner" 2>"$work/stderr" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(grep -o 'http://127.0.0.1:[0-9]*/wish-list-service' "$work/banner" | head -n1 || true)"
  [[ -n "$url" ]] && break
  sleep 0.05
done
[[ -n "$url" ]] || { echo "wishctl dev did not start:" >&2; cat "$work/stderr" >&2; exit 1; }
port="${url#http://127.0.0.1:}"; port="${port%%/*}"

TOKEN="$("$wishctl" token --port "$port" --dev-dir "$work/dev" --expires-in 1h)"
export TOKEN

# The GET answer grows with the list: measure it on a small, fixed list.
for i in $(seq 1 "$seed_items"); do
  curl -fsS -o /dev/null -X POST "$url" -H "Authorization: Bearer $TOKEN" \
    -H "Content-Type: application/json" -d "{\"name\": \"seed $i\"}"
done

echo "wishctl dev on $url (log: $log); wrk -t$threads -c$connections -d${duration}s; GET lists $seed_items items" >&2
wrk -t"$threads" -c"$connections" -d"${duration}s" -s "$root/bench/dev/get.lua" "$url" | grep '^RESULT'
wrk -t"$threads" -c"$connections" -d"${duration}s" -s "$root/bench/dev/post.lua" "$url" | grep '^RESULT'
