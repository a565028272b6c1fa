#!/usr/bin/env bash
# Installs what is missing, checks the shell scripts (shellcheck), builds, and runs the whole suite
# (unit + black-box) through ctest: first the Release build, then the same suite under ASan+UBSan.
# Usage: scripts/test.sh [--quick | --asan | --tsan | --preset NAME] [extra ctest args, e.g. -L blackbox]
#   --quick: the Release build only.  --asan/--tsan/--preset: that build only.
set -euo pipefail
cd "$(dirname "$0")/.."
presets=(release asan)
args=()
while (($#)); do
  case $1 in
    --quick) presets=(release) ;;
    --asan) presets=(asan) ;;
    --tsan) presets=(tsan) ;;
    --preset) presets=("$2"); shift ;;
    *) args+=("$1") ;;
  esac
  shift
done

scripts/setup.sh
# Redis-backed unit tests skip when redis-server cannot start; here (and so in CI, .ci/run) they
# fail instead (tests/fakes/redis_server.h): a run that did not test Redis is not green.
export TRL_REQUIRE_REDIS=1
status=0
for preset in "${presets[@]}"; do
  scripts/build.sh "$preset"
  start=$SECONDS
  ctest --test-dir "build/$preset" --output-on-failure -j2 "${args[@]}" || status=$?
  echo "test.sh: ctest ($preset) took $((SECONDS - start)) s"
done
# Style (shellcheck, clang-format, clang-tidy; each bounded in time), on the first build's
# compile commands. A finding fails the run after the tests, which still ran.
scripts/lint.sh --preset "${presets[0]}" || status=$?
exit $status
