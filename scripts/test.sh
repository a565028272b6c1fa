#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole suite (unit + black-box + deploy checks)
# through ctest under ASan+UBSan; then the concurrency-heavy unit tests under ThreadSanitizer,
# every fuzz target for a bounded time (scripts/fuzz.sh, docs/fuzzing.md), the container images
# as shipped (scripts/test-container.sh: the Release build in the image, serving through
# podman), and the style checks (scripts/lint.sh).
# Usage: scripts/test.sh [--quick | --asan | --tsan | --preset NAME] [extra ctest args, e.g. -L blackbox]
#   --quick: the Release build's suite only.  --asan/--tsan/--preset: that build's suite only
#   (--tsan: all of it).
#   TRL_FUZZ_SECONDS: seconds per fuzz target (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
presets=(asan)
full=1
args=()
while (($#)); do
  case $1 in
    --quick) presets=(release); full=0 ;;
    --asan) presets=(asan); full=0 ;;
    --tsan) presets=(tsan); full=0 ;;
    --preset) presets=("$2"); full=0; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done

scripts/setup.sh
if ((full)); then
  # The container test's base images come from Debian's mirror (debootstrap): mostly waiting on
  # the network, so it runs beside the build.
  mkdir -p build
  scripts/test-container.sh --bases-only >build/container-bases.log 2>&1 &
  bases=$!
fi
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
if ((full)); then
  # The unit tests whose code runs on several threads (I/O threads, the scheduler's, the store's
  # callers), under ThreadSanitizer: these binaries only, not the whole build. trl_app_test
  # (the whole gateway in-process) would double the TSan build, past CI's time budget; its
  # threads meet in the components tested here (server, stores, journal, usage, Redis client).
  tsan_tests=(trl_http_test trl_limits_test trl_redis_test trl_redis_store_test trl_usage_test)
  start=$SECONDS
  scripts/build.sh tsan --target "${tsan_tests[@]}"
  # ctest runs the tests of the binaries built (a fresh build/tsan: these); each unbuilt one has
  # a *_NOT_BUILT placeholder, skipped. The layering probe is no concurrency test.
  ctest --test-dir build/tsan --output-on-failure -j2 -L unit -E '_NOT_BUILT|layering' \
    || status=$?
  echo "test.sh: tsan build and ctest took $((SECONDS - start)) s"
  scripts/fuzz.sh "${TRL_FUZZ_SECONDS:-10}" || status=$?
  start=$SECONDS
  if wait "$bases"; then
    scripts/test-container.sh || status=$?
  else
    cat build/container-bases.log >&2
    status=1
  fi
  echo "test.sh: container images and their test took $((SECONDS - start)) s"
fi
# Style (shellcheck, clang-format, clang-tidy; each bounded in time). A finding fails the run
# after the tests, which still ran.
scripts/lint.sh || status=$?
exit $status
