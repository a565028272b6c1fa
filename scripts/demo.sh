#!/usr/bin/env bash
# Installs what is missing, builds (release), and runs the gateway on configs/demo.yaml with a
# mock-llm behind it. Prints a curl to paste; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "demo: building (release; the first build takes a few minutes)..."
build_log=$(mktemp)
if ! scripts/build.sh release >"$build_log" 2>&1; then
  tail -n 60 "$build_log" >&2
  echo "demo: the build failed (full log: $build_log)" >&2
  exit 1
fi
rm -f "$build_log"
bin=build/release/src

run=$(mktemp -d)
cleanup() {
  trap - EXIT INT TERM
  set +e
  # The gateway first (it drains and flushes usage), then the backend it drains into.
  for pid in ${gw_pid:-} ${mock_pid:-}; do
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  rm -rf "$run"
  echo "demo: stopped"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# Waits (at most 20 s) for "<what> listening on HOST:PORT" in a log file; prints HOST:PORT.
wait_listening() {
  local log=$1 what=$2 pid=$3
  for _ in $(seq 200); do
    local line
    line=$(grep -m1 "$what listening on " "$log" 2>/dev/null || true)
    if [[ -n $line ]]; then echo "${line##* }"; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "demo: $what did not start; its output:" >&2
  cat "$log" "$log.err" >&2 2>/dev/null || true
  return 1
}

"$bin/mock/mock-llm" --listen 127.0.0.1:0 --models 'llama2-7b,meta-llama/Llama-2-7b-chat-hf' \
  --max-output 64 --ttft 50ms --tokens-per-second 40 >"$run/mock.log" 2>"$run/mock.log.err" &
mock_pid=$!
mock_addr=$(wait_listening "$run/mock.log" mock-llm "$mock_pid")

export MOCK_URL="http://$mock_addr"
export ADMIN_TOKEN=${ADMIN_TOKEN:-demo-admin-token}
"$bin/app/token-rate-limiter" --config configs/demo.yaml >"$run/gateway.log" 2>&1 &
gw_pid=$!
gw_addr=$(wait_listening "$run/gateway.log" "data plane" "$gw_pid")
admin_addr=$(wait_listening "$run/gateway.log" admin "$gw_pid")

cat <<MSG

token-rate-limiter is running on http://$gw_addr (mock-llm behind it on $MOCK_URL).
Demo API key: sk-demo-key   (limits: 20000 tokens/min, 60 requests/min, 8 concurrent)

  curl -s http://$gw_addr/v1/chat/completions \\
    -H 'Authorization: Bearer sk-demo-key' -H 'Content-Type: application/json' \\
    -d '{"model": "llama2-7b", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello!"}]}' -i

Streaming: add "stream": true.  Metrics: curl -s http://$admin_addr/metrics | grep ^trl_
Reload:    curl -s -X POST -H 'Authorization: Bearer $ADMIN_TOKEN' http://$admin_addr/admin/v1/reload
Gateway log: $run/gateway.log      Ctrl-C stops both.
MSG

# Follow the gateway's log until Ctrl-C or until either process exits.
tail -n +1 -f "$run/gateway.log" --pid="$gw_pid" &
wait -n "$gw_pid" "$mock_pid" || true
