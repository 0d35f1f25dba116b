#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: within a fraction of a percent for
# the same binary and inputs on every run, whatever else the machine is doing (wrk's requests/s on
# two shared cores vary by a fifth between runs). User space only; the kernel's share is not
# counted.
#
#   bash benches/load/instructions.sh [REQUESTS] [BINARY]  # default 2000, target/release/secure-api
#
# Runs the release server (1 worker, production, SQLite) and the bare baseline under callgrind,
# sends each 300 warm-up requests and then REQUESTS `POST /get-current-time` on one keep-alive
# connection (the server's with an API key), and prints the instructions per request of each:
# callgrind's counters are zeroed after the warm-up and dumped after the last answer.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/load/common.sh
source benches/load/common.sh
requests=${1:-2000}
binary=${2:-$PWD/target/release/secure-api}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
cargo build --release --locked -p secure-api -p secure-api-load >&2

scratch

# send PORT KEY COUNT: COUNT calls on one connection, each checked for a 200.
send() {
  python3 - "$@" <<'PY'
import http.client, sys
port, key, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
connection = http.client.HTTPConnection("127.0.0.1", port)
headers = {"Content-Type": "application/json"}
if key:
    headers["Authorization"] = key
for _ in range(count):
    connection.request("POST", "/get-current-time", body="", headers=headers)
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 200, answer.status
PY
}

# count NAME PORT KEY PID: warm up, zero, measure, dump; prints "NAME: N instructions/request".
count() {
  local name=$1 port=$2 key=$3 pid=$4
  for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
  send "$port" "$key" 300
  callgrind_control -z "$pid" >/dev/null
  send "$port" "$key" "$requests"
  callgrind_control -d "$pid" >/dev/null
  sleep 1
  local total
  total=$(callgrind_annotate "$(ls -t "$work/$name".cg* | head -1)" 2>/dev/null |
    awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "$name: $((total / requests)) instructions/request"
}

port=$(free_port)
secret=$(python3 -c 'import secrets; print(secrets.token_hex(48))')
serve() {
  (cd "$work" && SECURE_API_BIND="127.0.0.1:$port" SECURE_API_WORKERS=1 SECURE_API_ENV=production \
    SECRET_KEY=$secret DATABASE_URL="sqlite://$work/load.db" exec "$@" > "$work/banner.txt" 2> "$work/server.log") &
}
# First a plain start, to create the database, its admin token and a key.
serve "$binary"
pids+=($!)
wait_up "http://127.0.0.1:$port/healthz"
admin=$(sed -n 's/^Admin token (for \/admin\/keys): *//p' "$work/banner.txt")
key=$(curl -sf -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d '{"service": "load", "daily_quota": 1000000000}' "http://127.0.0.1:$port/admin/keys" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
pids=()

serve valgrind --tool=callgrind --callgrind-out-file="$work/server.cg" "$binary"
pids+=($!)
count server "$port" "$key" "$!"

baseline_port=$(free_port)
valgrind --tool=callgrind --callgrind-out-file="$work/baseline.cg" \
  target/release/baseline "127.0.0.1:$baseline_port" 1 2>/dev/null &
pids+=($!)
count baseline "$baseline_port" "" "$!"
