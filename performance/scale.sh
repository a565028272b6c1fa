#!/usr/bin/env bash
# Scale runs (issue 6; docs/performance.md), the gateway next to nginx:
#   2000 concurrent slow streams (10 tokens/s each): memory per stream, CPU per token;
#   10,000 idle keep-alive connections: memory per connection, and the p99 of normal requests
#   (1000/s, open loop) next to them against the same load without them.
#
#   performance/scale.sh            about 3 minutes
#   performance/scale.sh --quick    500 streams, 2000 idle connections: about 1 minute
#   other options: --streams N --idle N --settle S --window S --rate R --threads N --only streams|idle
#                  --targets nginx,gateway-memory --no-build --nice N
# Builds like run.sh; raises the open-file limit to the hard limit (each side of 10,000
# connections needs 10,000 descriptors; the hard limit must allow that).
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
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) args+=("$a") ;;
  esac
  shift
done
if ((build)); then
  echo "scale.sh: building Release (token-rate-limiter, mock-llm) and trl-loadgen" >&2
  cmake --preset release >/dev/null
  cmake --build --preset release --target token-rate-limiter mock-llm >/dev/null
  cmake -S performance/loadgen -B build/perf-loadgen -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/perf-loadgen >/dev/null
fi
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < 12000)); then
  echo "scale.sh: the open-file limit is $(ulimit -n); 10,000 connections need more (raise the hard limit, or pass --idle N)" >&2
fi
exec "${prio[@]}" node performance/lib/scale.mjs "${args[@]}"
