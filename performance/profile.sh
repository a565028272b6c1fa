#!/usr/bin/env bash
# Profiles the gateway under the benchmark's saturation load (docs/performance.md, "Profiling").
#
#   performance/profile.sh [chat|stream] [seconds] [memory|redis]     default: chat 8 memory
#   performance/profile.sh instructions [requests] [memory|redis|nginx]  default: 1000 memory
#
# With `redis`, the gateway runs on a private redis-server (no persistence), and the Redis
# commands per request (INFO commandstats: EVALSHA calls, so the admission batch size) are
# printed too.
#
# Builds the gateway into build/perf-prof (Release flags plus -g -fno-omit-frame-pointer, so
# perf can walk the stacks), starts an instant mock-llm and the gateway (embedded store, the
# benchmark's key and limits), drives it with wrk (64 connections), and records:
#   - perf record -g (frame pointers) of the gateway: build/perf-prof/perf-<load>.data, with the
#     top symbols by self time and the gateway's own functions by inclusive time printed;
#   - strace -c over a fixed number of requests (trl-loadgen, 2000 at 1000/s): syscalls per
#     request, the figure to compare with nginx (about 4-6 per proxied request).
#
# `instructions` counts instead of sampling: the gateway runs under valgrind's callgrind
# (built into build/perf-ir without -march=native, since valgrind does not run AVX-512), gets
# the requests at 200/s over 8 connections after a warm-up, and the user-space instructions per
# request are printed with the 30 functions that have the most of their own. Machine noise does
# not move this figure: two builds compare in one run of each (GATEWAY=<binary> runs another
# build's gateway, built the same way, with this build's mock-llm). With `nginx`, the same is
# counted for Debian's nginx as run.sh configures it (proxy_pass with upstream keep-alive), in
# one process (master_process off): the user space a plain proxy needs per request.
# Needs perf (Debian: linux-perf) and strace; runs everything on 127.0.0.1, bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
load=${1:-chat}
store=${3:-memory}
if [[ $load == instructions ]]; then
  requests=${2:-1000}
  out=build/perf-ir
  tools=(valgrind:valgrind)
  flags=(-DTRL_NATIVE=OFF)
else
  seconds=${2:-8}
  out=build/perf-prof
  tools=(perf:linux-perf strace:strace wrk:wrk)
  flags=(-DCMAKE_CXX_FLAGS="-g -fno-omit-frame-pointer")
fi

for tool in "${tools[@]}"; do
  command -v "${tool%%:*}" >/dev/null || apt-get install -y "${tool#*:}" >/dev/null
done
cmake -S . -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release "${flags[@]}" -DTRL_BUILD_TESTS=OFF \
  -DTRL_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$out" --target token-rate-limiter mock-llm >/dev/null
cmake -S performance/loadgen -B build/perf-loadgen -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/perf-loadgen >/dev/null

tmp=$(mktemp -d /tmp/trl-profile.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

wait_line() {  # file regex -> first capture group of the first matching line, within 30 s
  for _ in $(seq 600); do
    if m=$(grep -oP "$2" "$1" 2>/dev/null | head -1) && [[ -n $m ]]; then echo "$m"; return; fi
    sleep 0.05
  done
  echo "profile.sh: no line matching $2 in $1" >&2; cat "$1" >&2; exit 1
}

"$out/src/mock/mock-llm" --listen 127.0.0.1:0 --models m --ttft 0ms --tokens-per-second 0 \
  --max-output 200 --threads 2 >"$tmp/mock.log" 2>&1 &
pids+=($!)
mock_port=$(wait_line "$tmp/mock.log" 'listening on \S+:\K\d+')
store_yaml="{backend: memory, data_dir: $tmp/data}"
if [[ $store == redis ]]; then
  redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
  pids+=($!)
  wait_line "$tmp/redis.log" 'Ready to accept connections()' >/dev/null
  store_yaml="{backend: redis, redis: {url: \"redis://127.0.0.1:$redis_port/0\"}}"
fi
cat >"$tmp/gw.yaml" <<EOF
listen: 127.0.0.1:0
server: {threads: 2}
store: $store_yaml
models:
  - {name: m, backends: ["http://127.0.0.1:$mock_port"], max_output_tokens: 200}
api_keys:
  - name: bench
    key: sk-bench
    limits:
      - {tokens: 1000000000, per: 1m}
      - {requests: 1000000000, per: 1m}
      - {tokens: 1000000000000, per: 1d, reset: calendar}
EOF
gateway=("${GATEWAY:-$out/src/app/token-rate-limiter}" --config "$tmp/gw.yaml")
if [[ $store == nginx ]]; then  # as performance/lib/systems.mjs configures it, in one process
  [[ $load == instructions ]] || { echo "profile.sh: nginx is for instructions only" >&2; exit 2; }
  command -v nginx >/dev/null || apt-get install -y nginx >/dev/null
  gw_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$tmp/nginx/logs"
  cat >"$tmp/nginx/nginx.conf" <<EOF
$( ((EUID == 0)) && echo 'user root root;')
daemon off;
master_process off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$mock_port; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$gw_port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
EOF
  gateway=(nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf")
fi
[[ $load == instructions ]] &&
  gateway=(valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out" "${gateway[@]}")
"${gateway[@]}" >"$tmp/gw.log" 2>&1 &
gw=$!
pids+=($gw)
if [[ $store == nginx ]]; then
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$gw_port") 2>/dev/null && break
    sleep 0.05
  done
else
  gw_port=$(wait_line "$tmp/gw.log" 'data plane listening on \S+:\K\d+')
fi

body='{"model":"m","messages":[{"role":"user","content":"Say hello to the benchmark!"}],"max_tokens":16}'
[[ $load == stream ]] &&
  body='{"model":"m","messages":[{"role":"user","content":"Say hello to the benchmark!"}],"max_tokens":200,"stream":true}'
printf '%s' "$body" >"$tmp/body.json"

if [[ $load == instructions ]]; then
  send() {  # seconds at 200 requests/s
    build/perf-loadgen/trl-loadgen --port "$gw_port" --body-file "$tmp/body.json" \
      --header 'Authorization: Bearer sk-bench' --rate 200 --duration "$1" --connections 8 \
      --timeout 10 >"$tmp/loadgen.out"
  }
  send 2                                  # warm-up: connections, caches, first-use paths
  callgrind_control -z "$gw" >/dev/null 2>&1  # count from here
  send $(((requests + 199) / 200))
  callgrind_control -d "$gw" >/dev/null 2>&1
  dump=""
  for _ in $(seq 100); do
    dump=$(ls "$tmp"/callgrind.out.* 2>/dev/null | tail -1) || true
    [[ -n $dump ]] && grep -q '^totals:' "$dump" && break
    sleep 0.1
  done
  sent=$(grep -oP '"completed":\K\d+' "$tmp/loadgen.out")
  failed=$(($(grep -oP '"non2xx":\K\d+' "$tmp/loadgen.out") + $(grep -oP '"errors":\K\d+' "$tmp/loadgen.out")))
  if ((failed > 0 || sent == 0)); then
    echo "profile.sh: $failed requests failed, $sent completed" >&2; cat "$tmp/loadgen.out" >&2; exit 1
  fi
  total=$(grep -oP '^totals: \K\d+' "$dump")
  what="store $store"
  [[ $store == nginx ]] && what="nginx, not the gateway"
  echo "instructions_per_request=$((total / sent)) ($what, $sent requests)"
  echo "== instructions per request by function (self)"
  set +o pipefail
  # (callgrind charges the threads' entry points with everything under them: left out)
  callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null |
    grep -E '^\s*[0-9,]+ \(' | grep -vE 'PROGRAM TOTALS|\( ?(9[0-9]|100)\.[0-9]+%\)' |
    head -30 | awk -v n="$sent" '{ v = $1; gsub(",", "", v); $1 = $2 = $3 = ""; printf "%7d %s\n", v / n, $0 }' |
    cut -c1-160
  exit 0
fi

export BODY_FILE=$tmp/body.json WRK_KEY=sk-bench
wrk -t2 -c64 -d2s -s performance/wrk/chat.lua "http://127.0.0.1:$gw_port" >/dev/null  # warm-up
wrk -t2 -c64 -d$((seconds + 2))s -s performance/wrk/chat.lua "http://127.0.0.1:$gw_port" \
  >"$tmp/wrk.out" &
wrk_pid=$!
sleep 1
[[ $store == redis ]] && redis-cli -p "$redis_port" config resetstat >/dev/null
perf record -F 999 -g -p "$gw" -o "$out/perf-$load.data" -- sleep "$seconds" 2>/dev/null >/dev/null
wait "$wrk_pid"
grep -oP 'WRKJSON \K.*' "$tmp/wrk.out" | sed 's/^/wrk: /'
if [[ $store == redis ]]; then
  echo "== Redis commands during the profile (INFO commandstats)"
  redis-cli -p "$redis_port" info commandstats | grep -E 'evalsha|eval:' | cut -d, -f1-3
fi
set +o pipefail  # `| head` closes the reports' pipes early: not a failure

echo "== self time by shared object"
perf report -i "$out/perf-$load.data" --no-children --sort dso --stdio -g none 2>/dev/null |
  grep -E '^\s+[0-9]' | head -8
echo "== top 30 symbols by self time"
perf report -i "$out/perf-$load.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
  grep -E '^\s+[0-9]' | sed -E 's/\s{3,}/ /g' | cut -c1-150 | head -30
echo "== the gateway's functions by inclusive time"
perf report -i "$out/perf-$load.data" --children --sort symbol --stdio -g none 2>/dev/null |
  grep -E '^\s+[0-9]' | grep 'trl::' | sed -E 's/\s{3,}/ /g' | cut -c1-150 | head -25

echo "== syscalls over 2000 requests at 1000/s (strace -c)"
strace -c -f -p "$gw" -o "$tmp/strace.out" &
strace_pid=$!
sleep 1
build/perf-loadgen/trl-loadgen --port "$gw_port" --body-file "$tmp/body.json" \
  --header 'Authorization: Bearer sk-bench' --rate 1000 --duration 2 --connections 8 >/dev/null
kill -INT "$strace_pid"
wait "$strace_pid" 2>/dev/null || true
awk 'NR > 2 && $4 ~ /^[0-9]+$/ { printf "%-16s %8.2f per request\n", $NF, $4 / 2000 }' "$tmp/strace.out" |
  sort -k2 -nr | head -10
echo "perf data: $out/perf-$load.data (perf report -i ... --children)"
