#!/usr/bin/env bash
# The load benchmark: secure-api (release) against a bare actix-web baseline, side by side, in
# one run. Needs wrk (installed from Debian's packages if missing).
#
#   bash benches/load/run.sh [SECONDS] [BINARY]  # default 10 s, target/release/secure-api
#
# Prints a Markdown table: requests/s, p50 and p99 at 32 and 256 connections, and the ratio of
# each to the baseline's requests/s at the same connection count. Only loopback is used.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/load/common.sh
source benches/load/common.sh
duration=${1:-10}
binary=${2:-$PWD/target/release/secure-api}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --locked -p secure-api -p secure-api-load >&2

scratch

baseline_port=$(free_port)
target/release/baseline "127.0.0.1:$baseline_port" 2 &
pids+=($!)
server_port=$(free_port)
start_server "$work" "$server_port" "$binary"
pids+=("$server_pid")
wait_up "http://127.0.0.1:$baseline_port/"
wait_up "http://127.0.0.1:$server_port/healthz"
base="http://127.0.0.1:$server_port"
admin=$(sed -n 's/^Admin token (for \/admin\/keys): *//p' "$work/banner.txt")
new_key() {
  curl -sf -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d "{\"service\": \"$1\", \"daily_quota\": 1000000000}" "$base/admin/keys" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
key=$(new_key load)
# The same call with every per-key policy on: one scope, a rate limit, a monthly quota and
# credits, none of them binding (#18: within 10% of the key without them).
limits_key=$(curl -sf -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d '{"service": "limits", "daily_quota": 1000000000, "scopes": ["time:read"],
       "rate_limit": {"limit": 1000000, "per": "second"}, "monthly_quota": 1000000000000,
       "credits": {"remaining": 1000000000000, "refill": {"amount": 1000000000000, "interval": "month"}}}' \
  "$base/admin/keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
# A second client: a key holds at most half the prime threads (docs/api.md).
key2=$(new_key load2)
# Logins of a new unknown user each time, from a new address each time: each costs one argon2
# verification, and neither login limit refuses it (a 401, as a credential-stuffing flood gets).
flood='{"username": "USER", "password": "a long enough password for load"}'

prime_1024=$(grep -v '^#' crates/primality/tests/data/primes-1024.txt | head -1 | tr -d '[:space:]')

write_post_lua "$work/post.lua"

# measure NAME URL CONNECTIONS [KEY] [BODY] [SPREAD] -> "rps p50_ms p99_ms requests errors"
# (SPREAD=1 also gives each request a username of its own: see write_post_lua)
measure() {
  drain "$base"
  local out
  out=$(KEY="${4:-}" KEYS="${KEYS:-}" BODY="${5:-}" SPREAD="${6:-0}" USERS=$([ "${6:-0}" = 1 ] && echo random) \
    wrk -t2 -c"$3" -d"${duration}s" --timeout 10s -s "$work/post.lua" "$2" | grep '^RESULT')
  echo "${out#RESULT }"
}

results="$work/results.txt"
for c in 32 256; do
  echo "baseline $c $(measure baseline "http://127.0.0.1:$baseline_port/get-current-time" "$c")" >> "$results"
  echo "time $c $(measure time "$base/get-current-time" "$c" "$key")" >> "$results"
  echo "time_limits $c $(measure time "$base/get-current-time" "$c" "$limits_key")" >> "$results"
  echo "prime_u64 $c $(measure prime "$base/check-prime" "$c" "$key" '{"number": 18446744073709551557}')" >> "$results"
  echo "login $c $(measure login "$base/login" "$c" "" "$flood" 1)" >> "$results"
done
# A 1024-bit prime: two clients, each with its own key on one connection, so that together
# they may use both prime threads.
echo "prime_1024 2 $(KEYS="$key,$key2" measure prime "$base/check-prime" 2 "" "{\"number\": $prime_1024}")" >> "$results"

# /get-current-time at 32 connections with one wrk thread, alone and then while another wrk
# thread floods /login with 32 connections.
one_thread() {
  KEY="$2" BODY="$3" SPREAD="$4" USERS=$([ "$4" = 1 ] && echo random) wrk -t1 -c32 -d"$5s" --timeout 10s -s "$work/post.lua" "$1" |
    grep '^RESULT' | sed 's/^RESULT //'
}
drain "$base"
echo "time_alone_1_thread 32 $(one_thread "$base/get-current-time" "$key" "" 0 "$duration")" >> "$results"
drain "$base"
flood_log="$work/flood.txt"
one_thread "$base/login" "" "$flood" 1 "$((duration + 4))" > "$flood_log" &
flood=$!
sleep 2
echo "time_under_login_flood 32 $(one_thread "$base/get-current-time" "$key" "" 0 "$duration")" >> "$results"
wait "$flood"
echo "login_flood 32 $(cat "$flood_log")" >> "$results"

status_check=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: $key" "$base/get-current-time")
python3 - "$results" "$duration" "$status_check" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
base = {r[1]: float(r[2]) for r in rows if r[0] == "baseline"}
labels = {
    "baseline": "baseline (bare actix-web, same JSON)",
    "time": "`POST /get-current-time` (key + quota)",
    "time_limits": "the same, key with a scope, rate limit, monthly quota and credits",
    "prime_u64": "`POST /check-prime`, u64 prime",
    "prime_1024": "`POST /check-prime`, 1024-bit prime, default rounds, two keys",
    "login": "`POST /login` (argon2id, a new unknown user each time: 401)",
    "time_alone_1_thread": "`POST /get-current-time`, 1 wrk thread",
    "time_under_login_flood": "`POST /get-current-time` during a `/login` flood, 1 wrk thread",
    "login_flood": "the `/login` flood itself (1 wrk thread)",
}
print(f"{sys.argv[2]} s per measurement; wrk -t2; server and baseline with 2 workers each.")
print()
print("| endpoint | connections | requests/s | p50 | p99 | ratio to baseline | errors |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, c, rps, p50, p99, total, errors in rows:
    ratio = f"{float(rps) / base[c]:.2f}" if c in base else "(no baseline)"
    print(f"| {labels[name]} | {c} | {float(rps):,.0f} | {float(p50):.2f} ms | {float(p99):.2f} ms | "
          f"{ratio} | {errors} |")
for c in base:
    plain = next(float(r[2]) for r in rows if r[0] == "time" and r[1] == c)
    limited = next(float(r[2]) for r in rows if r[0] == "time_limits" and r[1] == c)
    print()
    print(f"Every per-key policy on, {c} connections: {limited / plain:.2f} of the requests/s of the "
          f"key without them.", end="")
print()
alone = next(float(r[4]) for r in rows if r[0] == "time_alone_1_thread")
flood = next(float(r[4]) for r in rows if r[0] == "time_under_login_flood")
print()
print(f"p99 of /get-current-time at 32 connections (1 wrk thread): {alone:.2f} ms alone, {flood:.2f} ms during the "
      f"login flood ({flood / alone:.2f}x). Last status after the run: {sys.argv[3]}.")
PY
