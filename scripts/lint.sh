#!/usr/bin/env bash
# The style checks CI runs: shellcheck on the scripts, clang-format on every C++ file, and
# clang-tidy (.clang-tidy, which also holds functions to 80 lines) on the gateway's own sources,
# tests excepted. clang-tidy reads the compile commands of build/lint, the release preset
# configured file by file (without the unity build's batches); configuring takes seconds and
# nothing is built.
# Usage: scripts/lint.sh [--full]
#   --full: clang-tidy with its static analyzer too (clang-analyzer-*: minutes more; not in CI).
# Each tool is bounded in time; the exit status is non-zero when any of them finds something.
set -euo pipefail
cd "$(dirname "$0")/.."
analyzer=(--checks=-clang-analyzer-*)
while (($#)); do
  case $1 in
    --full) analyzer=() ;;
    *) echo "lint.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

status=0
step() {  # step NAME SECONDS COMMAND...: runs COMMAND within SECONDS and reports its time
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  if ! timeout "$limit" "$@"; then
    echo "lint.sh: $name found problems (or ran out of its ${limit} s)" >&2
    status=1
  fi
  echo "lint.sh: $name took $((SECONDS - start)) s"
}

mapfile -t cpp < <(git ls-files '*.cc' '*.h')
mapfile -t sources < <(git ls-files 'src/*.cc' | grep -v '_test\.cc$')
step shellcheck 60 shellcheck scripts/*.sh .ci/run
step clang-format 60 clang-format --dry-run -Werror "${cpp[@]}"
cmake --preset release -B build/lint -DTRL_UNITY=OFF >/dev/null
step clang-tidy 600 xargs -P2 -n4 clang-tidy -p build/lint --quiet --warnings-as-errors='*' \
  "${analyzer[@]}" <<<"$(printf '%s\n' "${sources[@]}")"
exit $status
