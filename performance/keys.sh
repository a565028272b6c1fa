#!/usr/bin/env bash
# Key-scale run (issue 26 point 11; docs/performance.md): a gateway whose store holds 100,000
# keys made through the admin API, on the embedded store and on Redis: start-up time, RSS per
# key, keys made per second through POST /admin/v1/keys, and (Redis) how soon a second instance
# admits a key made on the first. Writes performance/results/keys-<date>.json.
#
#   performance/keys.sh                       about 2 minutes on this code
#   options: --keys N (100000) --seconds S (5, of creations)
#            --probes N (20) --starts N (2) --stores memory,redis --build-dir DIR (another build,
#            e.g. of an older commit) --label TEXT --no-build
# Everything listens on 127.0.0.1 only; needs sqlite3, redis-server and redis-cli.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
args=()
while (($#)); do
  case $1 in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) args+=("$1") ;;
  esac
  shift
done
if ((build)); then
  echo "keys.sh: building Release (token-rate-limiter, mock-llm)" >&2
  cmake --preset release >/dev/null
  cmake --build --preset release --target token-rate-limiter mock-llm >/dev/null
fi
exec node performance/lib/keys.mjs "${args[@]}"
