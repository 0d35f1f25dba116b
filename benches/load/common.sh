# Shared by the load scripts (sourced): free ports, the server under test as deployed, the wrk
# script every measurement uses, and waiting out the argon2 queue.

# scratch: a new temporary directory in `work` and an empty `pids`; when the script exits, the
# processes whose PIDs it added to `pids` are stopped, and `work` is removed.
scratch() {
  work=$(mktemp -d)
  pids=()
  trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; rm -rf "$work"' EXIT
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }

# start_server WORK PORT BINARY: the release server in the background, as deployed (2 workers,
# production, SQLite in WORK, 127.0.0.1 a trusted proxy), its banner and log in WORK. Sets
# server_pid.
start_server() {
  local work=$1 port=$2 bin=$3
  (
    cd "$work"
    SECURE_API_BIND="127.0.0.1:$port" SECURE_API_WORKERS=2 SECURE_API_ENV=production \
    SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(48))') \
    DATABASE_URL="sqlite://$work/load.db" SECURE_API_TRUSTED_PROXIES=127.0.0.1 \
    exec "$bin" > banner.txt 2> server.log
  ) &
  server_pid=$!
}

# write_post_lua FILE: one wrk script for every request kind. Method POST, the body and key from
# the environment (BODY, KEY, or KEYS for a key per wrk thread) and, with SPREAD=1, a different client address per request (the
# server trusts 127.0.0.1 to say so), and with USERS=random a different username per request (the
# body's `USER` replaced by a random name), so that neither the per-client nor the per-username
# login limit turns the benchmark into a 429 benchmark: every such login costs one argon2
# verification (of an unknown user, which verifies against a dummy hash). It prints
# "RESULT rps p50_ms p99_ms requests errors".
write_post_lua() {
  cat > "$1" <<'LUA'
wrk.method = "POST"
wrk.body = os.getenv("BODY") or ""
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("KEY")
if key and key ~= "" then wrk.headers["Authorization"] = key end
-- KEYS=k1,k2,...: wrk thread i sends key i instead (a key per thread, as separate clients).
local threads = 0
setup = function(thread)
  local keys = os.getenv("KEYS")
  if keys and keys ~= "" then
    local list = {}
    for k in string.gmatch(keys, "[^,]+") do table.insert(list, k) end
    threads = threads + 1
    thread:set("thread_key", list[(threads - 1) % #list + 1])
  end
end
init = function(args)
  if thread_key then wrk.headers["Authorization"] = thread_key end
end
local spread = os.getenv("SPREAD") == "1"
local random_users = os.getenv("USERS") == "random"
request = function()
  if spread then
    wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
      math.random(0, 255), math.random(0, 255), math.random(1, 254))
  end
  if random_users then
    local name = string.format("u%d_%d", math.random(0, 1e9), math.random(0, 1e9))
    return wrk.format(nil, nil, nil, (string.gsub(wrk.body, "USER", name)))
  end
  return wrk.format()
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, errors))
end
LUA
}

# drain BASE: waits until the server has no password hash queued or running. Logins that wrk
# gave up on are still answered (a closed connection is only noticed when the answer is
# written), and their argon2 work must not spill into the next measurement.
drain() {
  local base=$1
  for _ in $(seq 1 600); do
    local page
    page=$(curl -s "$base/metrics")
    if echo "$page" | grep -q '^secure_api_argon2_queue_depth 0$' &&
      echo "$page" | grep -q '^secure_api_argon2_running 0$'; then
      return 0
    fi
    sleep 0.1
  done
  echo "the server did not drain its argon2 queue" >&2
  return 1
}
