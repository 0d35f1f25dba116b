#!/usr/bin/env bash
# Where a call's CPU goes, server and client apart: the bare baseline, the baseline sending our
# header fields (`baseline ADDR 2 same-headers`) and each BINARY, in alternating rounds of
# `wrk -t2 -c32 -d10s` on `POST /get-current-time` (one round is every server in turn, so that
# the machine's drift over the day falls on all of them alike). For each: requests/s, the
# server's CPU time (user and system, from /proc/PID/stat) and wrk's (from getrusage) divided by
# the calls answered, and the server's context switches per 100 calls, summed over its threads
# (from /proc/PID/task/*/status): voluntary (a thread waited) and involuntary (it was preempted,
# mostly by a wrk thread that an answer woke).
#
#   bash benches/load/cpu_split.sh [ROUNDS] [BINARY...]  # default 6, target/release/secure-api
#
# Prints every round, then a Markdown table of medians and ranges, and the per-round ratios of
# the last BINARY to both baselines. Only loopback is used.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/load/common.sh
source benches/load/common.sh
rounds=${1:-6}
shift || true
binaries=()
# Absolute: each server runs in a directory of its own.
for binary in "$@"; do binaries+=("$(realpath "$binary")"); done
[ ${#binaries[@]} -gt 0 ] || binaries=("$PWD/target/release/secure-api")
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --locked -p secure-api -p secure-api-load >&2

scratch
write_post_lua "$work/post.lua"

names=() ports=() server_pids=() keys=()
add() { names+=("$1"); ports+=("$2"); server_pids+=("$3"); keys+=("$4"); }

for mode in baseline same-headers; do
  port=$(free_port)
  # shellcheck disable=SC2046 # the bare baseline takes no third argument
  target/release/baseline "127.0.0.1:$port" 2 $([ "$mode" = same-headers ] && echo same-headers) &
  pid=$!
  pids+=("$pid")
  wait_up "http://127.0.0.1:$port/"
  add "$mode" "$port" "$pid" ""
done

for i in "${!binaries[@]}"; do
  mkdir "$work/$i"
  port=$(free_port)
  start_server "$work/$i" "$port" "${binaries[$i]}"
  pids+=("$server_pid")
  wait_up "http://127.0.0.1:$port/healthz"
  admin=$(sed -n 's/^Admin token (for \/admin\/keys): *//p' "$work/$i/banner.txt")
  key=$(curl -sf -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d '{"service": "load", "daily_quota": 1000000000}' "http://127.0.0.1:$port/admin/keys" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
  add "$(basename "${binaries[$i]}")#$i" "$port" "$server_pid" "$key"
done
# The same-headers baseline gets the key too, so that its requests are the servers' bytes.
keys[1]=${keys[2]}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# switches PID: "voluntary involuntary", summed over the process's threads.
switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2} END {print v, n}'
}
# measure INDEX SECONDS: "rps server_ticks wrk_seconds calls voluntary involuntary".
measure() {
  local i=$1 before after out voluntary involuntary voluntary_after involuntary_after
  read -r voluntary involuntary <<< "$(switches "${server_pids[$i]}")"
  before=$(cpu_ticks "${server_pids[$i]}")
  out=$(KEY="${keys[$i]}" python3 - "$2" "${ports[$i]}" "$work/post.lua" <<'PY'
import resource, subprocess, sys
seconds, port, script = sys.argv[1:]
out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--timeout", "10s", "-s", script,
                      f"http://127.0.0.1:{port}/get-current-time"],
                     capture_output=True, text=True, check=True).stdout
result = next(line.split() for line in out.splitlines() if line.startswith("RESULT"))
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(result[1], usage.ru_utime + usage.ru_stime, result[4])
PY
)
  after=$(cpu_ticks "${server_pids[$i]}")
  read -r voluntary_after involuntary_after <<< "$(switches "${server_pids[$i]}")"
  read -r rps wrk_seconds calls <<< "$out"
  echo "$rps $((after - before)) $wrk_seconds $calls $((voluntary_after - voluntary)) $((involuntary_after - involuntary))"
}

for i in "${!names[@]}"; do measure "$i" 2 > /dev/null; done  # warm-up
results="$work/results.txt"
for round in $(seq 1 "$rounds"); do
  for i in "${!names[@]}"; do
    echo "$round ${names[$i]} $(measure "$i" 10)" | tee -a "$results" >&2
  done
done

python3 - "$results" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
ticks = float(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    rnd, name, rps, server_ticks, wrk_seconds, calls, voluntary, involuntary = line.split()
    calls = int(calls)
    rows.setdefault(name, []).append((float(rps), int(server_ticks) / ticks / calls * 1e6,
                                      float(wrk_seconds) / calls * 1e6,
                                      int(voluntary) / calls * 100, int(involuntary) / calls * 100))
def cell(values, fmt):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))} to {fmt.format(max(values))})"
print(f"{len(next(iter(rows.values())))} alternating rounds of wrk -t2 -c32 -d10s, POST /get-current-time.")
print()
print("| server | requests/s, median (range) | server CPU a call | wrk CPU a call "
      "| server's voluntary switches per 100 calls | involuntary |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for name, values in rows.items():
    rps, server, client, voluntary, involuntary = zip(*values)
    print(f"| {name} | {cell(rps, '{:,.0f}')} | {cell(server, '{:.2f} µs')} | {cell(client, '{:.2f} µs')} "
          f"| {cell(voluntary, '{:.1f}')} | {cell(involuntary, '{:.1f}')} |")
names = list(rows)
last = names[-1]
for base in names[:2]:
    ratios = [a[0] / b[0] for a, b in zip(rows[last], rows[base])]
    print()
    print(f"{last} against {base}, per round: " + ", ".join(f"{r:.2f}" for r in ratios) +
          f" (median {statistics.median(ratios):.2f}).", end="")
ratios = [a[0] / b[0] for a, b in zip(rows[names[1]], rows[names[0]])]
print()
print(f"same-headers against baseline, per round: " + ", ".join(f"{r:.2f}" for r in ratios) +
      f" (median {statistics.median(ratios):.2f}).")
PY
