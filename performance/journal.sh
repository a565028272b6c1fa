#!/usr/bin/env bash
# The journal's throughput cost and loss window per store.journal policy (docs/performance.md,
# "Journal"): builds Release unless --no-build, then runs performance/lib/journal.mjs.
#   performance/journal.sh            2 rounds of 8 s per policy, 5 SIGKILLs per policy (~4 min)
#   performance/journal.sh --quick    1 round of 3 s, 2 SIGKILLs (~1 min)
#   other options: --rounds N --seconds S --kills N --policies off,everysec --out FILE
# Everything listens on 127.0.0.1 only; every load is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
args=()
for a in "$@"; do
  if [[ $a == --no-build ]]; then build=0; else args+=("$a"); fi
done
if ((build)); then
  cmake --preset release >/dev/null
  cmake --build --preset release --target token-rate-limiter mock-llm >/dev/null
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node performance/lib/journal.mjs "${args[@]}"
