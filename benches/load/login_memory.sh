#!/usr/bin/env bash
# Resident memory of the release server around a login flood: argon2 needs 19 MiB per hash, and
# what the process keeps afterwards depends on how that memory is managed. Needs wrk.
#
#   bash benches/load/login_memory.sh [SECONDS] [BINARY]   # default 15 s, target/release/secure-api
#
# Prints VmRSS after start-up and one registration, right after a flood of /login on 32
# connections (each request from another client address for another unknown user, so that
# neither login limit answers them), after the argon2 queue drained, and the peak (VmHWM). Only loopback is used.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/load/common.sh
source benches/load/common.sh
duration=${1:-15}
bin=${2:-target/release/secure-api}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ -z "${2:-}" ]; then cargo build --release --locked -p secure-api >&2; fi
bin=$(realpath "$bin")

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$(free_port)
start_server "$work" "$port" "$bin"
base="http://127.0.0.1:$port"
wait_up "$base/healthz"
rss() { awk '/^VmRSS/ {printf "%.0f MB", $2 / 1024}' "/proc/$server_pid/status"; }
credentials='{"username": "load_user", "password": "a long enough password for load"}'
# The server trusts 127.0.0.1 as a proxy: it names the client.
curl -sf -X POST -H 'Content-Type: application/json' -H 'X-Forwarded-For: 10.0.0.1' \
  -d "$credentials" "$base/register" >/dev/null
echo "after start-up and one registration: $(rss)"

write_post_lua "$work/post.lua"
# A new unknown user each time, from a new address each time: neither login limit refuses them,
# and each costs one argon2 verification (401).
flood='{"username": "USER", "password": "a long enough password for load"}'
result=$(BODY="$flood" SPREAD=1 USERS=random wrk -t2 -c32 -d"${duration}s" --timeout 10s \
  -s "$work/post.lua" "$base/login" | grep '^RESULT')
read -r rps _ _ requests errors <<< "${result#RESULT }"
echo "logins in ${duration} s: $requests ($rps/s, $errors not 2xx: each a 401)"
echo "right after the flood: $(rss)"
drain "$base"
echo "after the argon2 queue drained: $(rss)"
awk '/^VmHWM/ {printf "peak: %.0f MB\n", $2 / 1024}' "/proc/$server_pid/status"
