#!/usr/bin/env bash
# The side-by-side benchmark (issue 6; docs/performance.md): builds Release, starts an instant
# mock-llm backend, nginx (proxy_pass with upstream keep-alive), the gateway on the embedded
# store and, when the build has it, on Redis (and Portkey with --portkey), measures them in
# alternating rounds on loopback, prints one table and writes performance/results/<date>.json.
#
#   performance/run.sh                  3 rounds, about 5 minutes
#   performance/run.sh --quick          1 round, short loads: about 1 minute (a smoke test)
#   performance/run.sh --portkey        also Portkey from npm (skipped if it cannot be installed)
#   performance/run.sh --wait-quiet 1   first wait (at most 5 min) for the load average to drop
#   other options: --rounds N --seconds S --latency-seconds S --rates 1000,5000 --threads N
#                  --nice N (run every benchmark process at niceness N, e.g. -10 on a busy machine)
#                  --mock-threads N --no-redis --only nginx,gateway-memory --out FILE
#                  --no-build (use what build/release has)
#                  --spend (also gateway-spend: the embedded store with priced models and a
#                  spend limit beside the three token and request limits)
#                  --baseline DIR (another build dir, e.g. of the commit before a change: its
#                  gateway runs as gateway-baseline, embedded store, in the same rounds)
#                  --access-log OUT (the gateways' access_log.output; default /dev/null: the
#                  log's whole cost without a disk; "off" for none; the baseline's is left out)
# Everything listens on 127.0.0.1 only; every load is bounded in time and the whole run is
# bounded by a watchdog (--max-seconds, default 1200) that stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
prio=()
args=()
while (($#)); do
  a=$1
  case $a in
    --no-build) build=0 ;;
    # Runs every process of the benchmark at this niceness (e.g. -10, as root): on a machine
    # shared with other work, the loads and the systems under test then get the CPU first.
    --nice) prio=(nice -n "$2"); shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) args+=("$a") ;;
  esac
  shift
done

missing=()
for tool in wrk:wrk nginx:nginx redis-server:redis-server node:nodejs curl:curl cmake:cmake ninja:ninja-build; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
  echo "run.sh: installing ${missing[*]}" >&2
  apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
fi

if ((build)); then
  echo "run.sh: building Release (token-rate-limiter, mock-llm) and trl-loadgen" >&2
  cmake --preset release >/dev/null
  cmake --build --preset release --target token-rate-limiter mock-llm >/dev/null
  cmake -S performance/loadgen -B build/perf-loadgen -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/perf-loadgen >/dev/null
fi

# Room for every connection the loads open (64 by wrk, 32 by trl-loadgen, the proxies' own).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "${prio[@]}" node performance/lib/bench.mjs "${args[@]}"
