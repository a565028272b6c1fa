#!/usr/bin/env bash
# Builds the fuzz targets (the `fuzz` preset: clang, libFuzzer, ASan+UBSan; fuzz/CMakeLists.txt)
# and runs each for a bounded time from its seeds (fuzz/corpus/<name>/), two at a time (one core
# each), then prints what each reached: executions, and libFuzzer's final coverage (cov: edges,
# ft: features). Exits nonzero when a target crashed, leaked, hung or ran out of memory; the
# input is kept as build/fuzz/artifacts/<name>/crash-<sha1> (docs/fuzzing.md: reproducing a
# crash).
# Usage: scripts/fuzz.sh [seconds-per-target (default 15)] [target names, default all]
#   What a run finds beyond the seeds is kept in build/fuzz/corpus/<name>/, so the next local run
#   goes on from there; the seeds in the repo are never written to.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(request_fields sse resp cluster_slots config usage_query admin_body url transcription_fields tokenizer)
fi

start=$SECONDS
scripts/build.sh fuzz --target "${targets[@]/%/_fuzz}"
echo "fuzz.sh: build took $((SECONDS - start)) s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# run_target NAME: runs one target for `seconds` and writes its summary line (ending in FAILED
# when it crashed, leaked, hung or ran out of memory) to build/fuzz/logs/NAME.summary.
run_target() {
  local name=$1
  local work=build/fuzz/corpus/$name artifacts=build/fuzz/artifacts/$name
  local log=build/fuzz/logs/$name.log
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  local options=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=16384
                 -print_final_stats=1 -artifact_prefix="$artifacts/")
  if [[ -f fuzz/$name.dict ]]; then options+=(-dict="fuzz/$name.dict"); fi
  # New inputs go to the first directory (the build's), the seeds are only read.
  local rc=0
  "build/fuzz/fuzz/${name}_fuzz" "${options[@]}" "$work" "fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
  # libFuzzer's last status line: "#123456 DONE cov: 812 ft: 3021 corp: 150/9Kb ...".
  local last runs cov ft corpus line
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  runs=$(grep -oP 'stat::number_of_executed_units: \K[0-9]+' "$log" || echo "?")
  cov=$(grep -oP 'cov: \K[0-9]+' <<<"$last" || echo "?")
  ft=$(grep -oP 'ft: \K[0-9]+' <<<"$last" || echo "?")
  corpus=$(grep -oP 'corp: \K[0-9]+' <<<"$last" || echo "?")
  line=$(printf '%-20s %10s runs  cov %5s  ft %6s  corpus %5s' "$name" "$runs" "$cov" "$ft" "$corpus")
  if ((rc != 0)); then line+="  FAILED (exit $rc, $log)"; fi
  echo "$line" >"build/fuzz/logs/$name.summary"
}

# Each target is one process on one core: two at a time on the two cores.
running=0
for name in "${targets[@]}"; do
  run_target "$name" &
  if ((++running >= 2)); then
    wait -n
    ((running--))
  fi
done
wait
status=0
for name in "${targets[@]}"; do
  line=$(cat "build/fuzz/logs/$name.summary")
  echo "fuzz.sh: $line"
  if [[ $line == *FAILED* ]]; then
    status=1
    echo "fuzz.sh: $name failed; the end of build/fuzz/logs/$name.log:" >&2
    tail -n 40 "build/fuzz/logs/$name.log" >&2
  fi
done
echo "fuzz.sh: ${#targets[@]} targets, ${seconds} s each, two at a time, took $((SECONDS - start)) s in all"
exit $status
