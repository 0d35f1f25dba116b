#!/usr/bin/env bash
# 21,000 connections from one address, each sending the head of an authenticated POST whose body
# never comes, while another address asks /healthz: the release server against its connection
# limits.
#
#   bash benches/load/slow_bodies.sh [BINARY] [CONNECTIONS]   # target/release/secure-api, 21000
#
# The attack comes from 127.0.0.1 in two processes (each process may open only as many files as
# the hard limit allows), the probe from 127.0.0.2; the server trusts no proxy, so 127.0.0.1 is
# one client. Prints what the attack's connections were answered and the probe's latencies.
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=${1:-$PWD/target/release/secure-api}
connections=${2:-21000}
[ -x "$binary" ] || cargo build --release --locked -p secure-api >&2
ulimit -n "$(ulimit -Hn)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
port=$(free_port)
(
  cd "$work"
  SECURE_API_BIND="127.0.0.1:$port" SECURE_API_WORKERS=2 SECURE_API_ENV=production \
  SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(48))') \
  DATABASE_URL="sqlite://$work/slow.db" exec "$binary" > banner.txt 2> server.log
) &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
admin=$(sed -n 's/^Admin token (for \/admin\/keys): *//p' "$work/banner.txt")
key=$(curl -sf -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d '{"service": "slow", "daily_quota": 1000000000}' "http://127.0.0.1:$port/admin/keys" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
script=benches/load/slow_bodies.py
echo "open-file limit: $(ulimit -n); server: $binary"
python3 "$script" probe 127.0.0.1 "$port" 5 | sed 's/^/before the attack: /'
half=$((connections / 2))
python3 "$script" attack 127.0.0.1 "$port" "$key" "$half" 40 &
a1=$!
python3 "$script" attack 127.0.0.1 "$port" "$key" "$((connections - half))" 40 &
a2=$!
sleep 15
python3 "$script" probe 127.0.0.1 "$port" 20 | sed 's/^/during the attack: /'
wait $a1 $a2
grep -c 'connections' "$work/server.log" >/dev/null || true
