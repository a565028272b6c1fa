#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole suite (unit + black-box) through ctest.
# Usage: scripts/test.sh [--asan | --preset NAME] [extra ctest args, e.g. -L blackbox]
set -euo pipefail
cd "$(dirname "$0")/.."
preset=release
args=()
while (($#)); do
  case $1 in
    --asan) preset=asan ;;
    --tsan) preset=tsan ;;
    --preset) preset=$2; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done

scripts/setup.sh
scripts/build.sh "$preset"
start=$SECONDS
status=0
ctest --test-dir "build/$preset" --output-on-failure -j2 "${args[@]}" || status=$?
echo "test.sh: ctest ($preset) took $((SECONDS - start)) s"
exit $status
