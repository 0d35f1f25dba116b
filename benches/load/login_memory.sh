#!/usr/bin/env bash
# Resident memory of the release server around a login flood: argon2 needs 19 MiB per hash, and
# what the process keeps afterwards depends on how that memory is managed. Needs wrk.
#
#   bash benches/load/login_memory.sh [SECONDS] [BINARY]   # default 15 s, target/release/secure-api
#
# Prints VmRSS after start-up and one registration, right after a flood of /login on 32
# connections (each request from another client address, so the login limit does not answer
# them), after the argon2 queue drained, and the peak (VmHWM). Only loopback is used.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-15}
bin=${2:-target/release/secure-api}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ -z "${2:-}" ]; then cargo build --release --locked -p secure-api >&2; fi
bin=$(realpath "$bin")

work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(
  cd "$work"
  SECURE_API_BIND="127.0.0.1:$port" SECURE_API_WORKERS=2 SECURE_API_ENV=production \
  SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(48))') \
  DATABASE_URL="sqlite://$work/load.db" SECURE_API_TRUSTED_PROXIES=127.0.0.1 \
  exec "$bin" > banner.txt 2> server.log
) &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -s -o /dev/null "$base/healthz" && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {printf "%.0f MB", $2 / 1024}' "/proc/$server/status"; }
credentials='{"username": "load_user", "password": "a long enough password for load"}'
curl -sf -X POST -H 'Content-Type: application/json' -d "$credentials" "$base/register" >/dev/null
echo "after start-up and one registration: $(rss)"

cat > "$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
request = function()
  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
    math.random(0, 255), math.random(0, 255), math.random(1, 254))
  return wrk.format()
end
LUA
BODY="$credentials" wrk -t2 -c32 -d"${duration}s" --timeout 10s -s "$work/login.lua" "$base/login" |
  grep -E 'requests in|Requests/sec'
echo "right after the flood: $(rss)"
for _ in $(seq 1 600); do
  page=$(curl -s "$base/metrics")
  if echo "$page" | grep -q '^secure_api_argon2_queue_depth 0$' &&
    echo "$page" | grep -q '^secure_api_argon2_running 0$'; then
    break
  fi
  sleep 0.1
done
echo "after the argon2 queue drained: $(rss)"
awk '/^VmHWM/ {printf "peak: %.0f MB\n", $2 / 1024}' "/proc/$server/status"
