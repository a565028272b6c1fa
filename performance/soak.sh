#!/usr/bin/env bash
# The soak under faults (issue 26; docs/performance.md, "Soak under faults"): two gateway
# instances on one redis-server and two mock-llm backends, a modest mix of traffic (streams read
# to the end and abandoned, 429s, backend resets and hangs, admin key writes) while Redis is
# paused, killed and restarted, SCRIPT FLUSHed and has its clients killed at random (seeded)
# moments. Then checks that every reservation was settled, that usage equals what the clients
# received, that no connection leaked, and prints the gateways' RSS curve; writes
# performance/results/soak-<date>.json. Exit code 1 when a check fails. Not run in CI.
#
#   performance/soak.sh                 10 minutes of traffic (~11 minutes in all)
#   performance/soak.sh --quick         2 minutes
#   other options: --minutes N --seed N --on-store-error allow|deny
#                  --redis-persistence aof|off (aof, the default: appendfsync always, so a
#                  SIGKILLed Redis comes back with its data; off: a restart is a flush)
#                  --threads N (per gateway, default 2) --no-key-label (metrics.key_label:
#                  false) --out FILE --max-seconds N
#                  --no-build (use what build/release has)
# Everything listens on 127.0.0.1 only; every request has a deadline and the whole run is
# bounded by a watchdog (--max-seconds, default the traffic time plus 7 minutes) that stops
# every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
args=()
for a in "$@"; do
  case $a in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) args+=("$a") ;;
  esac
done

missing=()
for tool in redis-server:redis-server redis-cli:redis-tools node:nodejs ss:iproute2; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
  echo "soak.sh: installing ${missing[*]}" >&2
  apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
fi

if ((build)); then
  echo "soak.sh: building Release (token-rate-limiter, mock-llm)" >&2
  cmake --preset release >/dev/null
  cmake --build --preset release --target token-rate-limiter mock-llm >/dev/null
fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node performance/lib/soak.mjs "${args[@]}"
