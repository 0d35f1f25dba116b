#!/usr/bin/env bash
# The load benchmark: secure-api (release) against a bare actix-web baseline, side by side, in
# one run. Needs wrk (installed from Debian's packages if missing).
#
#   bash benches/load/run.sh [SECONDS] [BINARY]  # default 10 s, target/release/secure-api
#   RATE=10000 bash benches/load/run.sh           # the probe's fixed rate (default 5,000/s)
#
# Prints a Markdown table: requests/s, p50 and p99 at 32 and 256 connections, and the ratio of
# each to the baseline's requests/s at the same connection count, and to a second baseline that
# sends the header fields secure-api's answer carries (same names, values of the same length), as
# computed constants: what is left of that ratio is what computing the answer costs, apart from
# carrying its bytes. Then the p99 of /get-current-time alone and during a /login flood. Only
# loopback is used.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/load/common.sh
source benches/load/common.sh
duration=${1:-10}
rate=${RATE:-5000}
binary=${2:-$PWD/target/release/secure-api}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --locked -p secure-api -p secure-api-load >&2

scratch

baseline_port=$(free_port)
target/release/baseline "127.0.0.1:$baseline_port" 2 &
pids+=($!)
headers_port=$(free_port)
target/release/baseline "127.0.0.1:$headers_port" 2 same-headers &
pids+=($!)
server_port=$(free_port)
start_server "$work" "$server_port" "$binary"
pids+=("$server_pid")
wait_up "http://127.0.0.1:$baseline_port/"
wait_up "http://127.0.0.1:$headers_port/"
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

# The second baseline must send the fields the server sends: compare their names (a field's
# length varies with its value, by a few bytes at most).
field_names() {
  curl -si -X POST -H "Authorization: $key" "$1/get-current-time" |
    tr -d '\r' | sed -n '2,/^$/p' | cut -d: -f1 | tr 'A-Z' 'a-z' | sort | tr '\n' ' '
}
server_fields=$(field_names "$base")
baseline_fields=$(field_names "http://127.0.0.1:$headers_port")
[ "$server_fields" = "$baseline_fields" ] || {
  echo "the same-headers baseline is out of date (benches/load/src/main.rs, SAME_HEADERS):" >&2
  echo "  server:   $server_fields" >&2
  echo "  baseline: $baseline_fields" >&2
  exit 1
}

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
# row NAME CONNECTIONS RESULT: appends a row, or stops the run when a measurement gave no result.
row() {
  [ "$(wc -w <<< "$3")" = 5 ] || { echo "no result for $1 at $2 connections: '$3'" >&2; exit 1; }
  echo "$1 $2 $3" >> "$results"
}
for c in 32 256; do
  row baseline "$c" "$(measure baseline "http://127.0.0.1:$baseline_port/get-current-time" "$c")"
  row baseline_headers "$c" "$(measure baseline "http://127.0.0.1:$headers_port/get-current-time" "$c" "$key")"
  row time "$c" "$(measure time "$base/get-current-time" "$c" "$key")"
  row time_limits "$c" "$(measure time "$base/get-current-time" "$c" "$limits_key")"
  row prime_u64 "$c" "$(measure prime "$base/check-prime" "$c" "$key" '{"number": 18446744073709551557}')"
  row login "$c" "$(measure login "$base/login" "$c" "" "$flood" 1)"
done
# A 1024-bit prime: two clients, each with its own key on one connection, so that together
# they may use both prime threads.
row prime_1024 2 "$(KEYS="$key,$key2" measure prime "$base/check-prime" 2 "" "{\"number\": $prime_1024}")"

# /get-current-time alone and then while one wrk thread floods /login with 32 connections, measured
# two ways: at a fixed rate (RATE, 5,000 calls a second) on 16 connections, with the probe, which
# counts latency from when each call was due, as traffic from many clients sees it (the baseline
# at the same rate shows the probe's own floor); and by one wrk thread on 32 connections, which
# sends the next call when an answer comes and so keeps a core busy.
one_thread() {
  KEY="$2" BODY="$3" SPREAD="$4" USERS=$([ "$4" = 1 ] && echo random) wrk -t1 -c32 -d"$5s" --timeout 10s -s "$work/post.lua" "$1" |
    grep '^RESULT' | sed 's/^RESULT //'
}
# fixed_rate [PORT]: the probe against the server, or the baseline on PORT.
fixed_rate() {
  KEY="$key" target/release/probe "127.0.0.1:${1:-$server_port}" /get-current-time "$rate" \
    "$duration" 16 | sed 's/^RESULT //'
}
# during_login_flood COMMAND...: runs COMMAND while /login is flooded; prints COMMAND's output and
# then the flood's.
during_login_flood() {
  one_thread "$base/login" "" "$flood" 1 "$((duration + 4))" > "$work/flood.txt" &
  local flooding=$!
  pids+=("$flooding")
  sleep 2
  "$@"
  wait "$flooding"
  cat "$work/flood.txt"
}
row fixed_baseline 16 "$(fixed_rate "$baseline_port")"
drain "$base"
row fixed_alone 16 "$(fixed_rate)"
drain "$base"
during_login_flood fixed_rate > "$work/both.txt"
row fixed_under_login_flood 16 "$(head -1 "$work/both.txt")"
row login_flood 32 "$(tail -1 "$work/both.txt")"
drain "$base"
row time_alone_1_thread 32 "$(one_thread "$base/get-current-time" "$key" "" 0 "$duration")"
drain "$base"
during_login_flood one_thread "$base/get-current-time" "$key" "" 0 "$duration" > "$work/both.txt"
row time_under_login_flood 32 "$(head -1 "$work/both.txt")"

status_check=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: $key" "$base/get-current-time")
python3 - "$results" "$duration" "$status_check" "$rate" <<'PY'
import sys
rate = f"{float(sys.argv[4]):,g}"
rows = [line.split() for line in open(sys.argv[1])]
base = {r[1]: float(r[2]) for r in rows if r[0] == "baseline"}
headers_base = {r[1]: float(r[2]) for r in rows if r[0] == "baseline_headers"}
labels = {
    "baseline": "baseline (bare actix-web, same JSON)",
    "baseline_headers": "baseline sending our header fields (constants; the key sent too)",
    "time": "`POST /get-current-time` (key + quota)",
    "time_limits": "the same, key with a scope, rate limit, monthly quota and credits",
    "prime_u64": "`POST /check-prime`, u64 prime",
    "prime_1024": "`POST /check-prime`, 1024-bit prime, default rounds, two keys",
    "login": "`POST /login` (argon2id, a new unknown user each time: 401)",
    "fixed_baseline": f"baseline at a fixed {rate}/s (probe)",
    "fixed_alone": f"`POST /get-current-time` at a fixed {rate}/s (probe)",
    "fixed_under_login_flood": f"`POST /get-current-time` at a fixed {rate}/s during a `/login` flood",
    "time_alone_1_thread": "`POST /get-current-time`, 1 wrk thread",
    "time_under_login_flood": "`POST /get-current-time` during a `/login` flood, 1 wrk thread",
    "login_flood": "the `/login` flood itself (1 wrk thread)",
}
print(f"{sys.argv[2]} s per measurement; wrk -t2; server and baseline with 2 workers each.")
print()
print("| endpoint | connections | requests/s | p50 | p99 | ratio to baseline "
      "| ratio to baseline with our header fields | errors |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, c, rps, p50, p99, total, errors in rows:
    # Only the wrk -t2 rows are measured as the baselines are; the header fields are those of
    # the calls that count against a key's quota.
    compared = name in ("baseline", "baseline_headers", "time", "time_limits", "prime_u64", "login") and c in base
    ratio = f"{float(rps) / base[c]:.2f}" if compared else "(no baseline)"
    same_fields = name in ("baseline_headers", "time", "time_limits", "prime_u64") and c in headers_base
    to_headers = f"{float(rps) / headers_base[c]:.2f}" if same_fields else ""
    print(f"| {labels[name]} | {c} | {float(rps):,.0f} | {float(p50):.2f} ms | {float(p99):.2f} ms | "
          f"{ratio} | {to_headers} | {errors} |")
for c in base:
    plain = next(float(r[2]) for r in rows if r[0] == "time" and r[1] == c)
    limited = next(float(r[2]) for r in rows if r[0] == "time_limits" and r[1] == c)
    print()
    print(f"Every per-key policy on, {c} connections: {limited / plain:.2f} of the requests/s of the "
          f"key without them.", end="")
print()
def p99(name):
    return next(float(r[4]) for r in rows if r[0] == name)
print()
for label, alone, flood in [(f"at a fixed {rate}/s (probe)", "fixed_alone", "fixed_under_login_flood"),
                            ("by 1 wrk thread, 32 connections", "time_alone_1_thread", "time_under_login_flood")]:
    ratio = f"{p99(flood) / p99(alone):.2f}x" if p99(alone) > 0 else "no answer alone"
    print(f"p99 of /get-current-time {label}: {p99(alone):.2f} ms alone, {p99(flood):.2f} ms during the "
          f"login flood ({ratio}).")
print(f"Last status after the run: {sys.argv[3]}.")
PY
