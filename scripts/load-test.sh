#!/usr/bin/env bash
# Runs a load scenario against a gateway and prints a summary (docs/performance.md, "Load tests a
# user can run").
#
#   scripts/load-test.sh SCENARIO [options]        SCENARIO: load | stress | spike
#     --tool k6|jmeter|harness   default: k6 if installed, else jmeter, else the harness's own
#                                load generator (performance/loadgen, built if missing)
#     --url URL                  the gateway's data plane (default http://127.0.0.1:8080)
#     --key KEY --model M        default sk-demo-key, llama2-7b (configs/demo.yaml)
#     --duration S               seconds of load (default 60)
#     --rate R                   requests/s: k6's plateau (stress: its first step), the harness's
#                                rate (stress: doubled 3 times; spike: ×10 in the middle third),
#                                JMeter's pacing of load and the spike's baseline (default 10)
#     --threads N                JMeter threads (spike: of the burst; default 10)
#     --loops N                  JMeter passes per thread (default: until --duration)
#     --stream                   harness: streamed requests instead of short ones
#     --local                    start mock-llm and a gateway on configs/demo.yaml (as
#                                scripts/demo.sh does) for the run, and stop them after
#     --out DIR                  keep the tool's raw results there (default: a temp dir, removed)
# Summary: requests, 2xx, 429, other, p50/p95/p99 latency (ms), req/s; from JMeter's CSV .jtl,
# k6's --summary-export, or the load generator's JSON. Exit status 0 unless the tool failed to
# run (thresholds and refusals are reported, not turned into a failure here).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { sed -n '2,23p' "$0"; exit "${1:-0}"; }
[[ $# -ge 1 ]] || usage 2
scenario=$1
shift
case $scenario in load|stress|spike) ;; -h|--help) usage 0 ;; *) echo "load-test.sh: unknown scenario $scenario" >&2; usage 2 ;; esac

tool='' url=http://127.0.0.1:8080 key=sk-demo-key model=llama2-7b duration=60 rate=10 threads=10
loops=-1 stream=0 local=0 out=''
while (($#)); do
  case $1 in
    --tool) tool=$2; shift ;;
    --url) url=${2%/}; shift ;;
    --key) key=$2; shift ;;
    --model) model=$2; shift ;;
    --duration) duration=$2; shift ;;
    --rate) rate=$2; shift ;;
    --threads) threads=$2; shift ;;
    --loops) loops=$2; shift ;;
    --stream) stream=1 ;;
    --local) local=1 ;;
    --out) out=$2; shift ;;
    -h|--help) usage 0 ;;
    *) echo "load-test.sh: unknown option $1" >&2; usage 2 ;;
  esac
  shift
done
if [[ -z $tool ]]; then
  if command -v k6 >/dev/null; then tool=k6
  elif command -v jmeter >/dev/null; then tool=jmeter
  else tool=harness
  fi
fi
case $tool in k6|jmeter|harness) ;; *) echo "load-test.sh: unknown tool $tool" >&2; exit 2 ;; esac

work=$(mktemp -d)
cleanup() {
  set +e
  # The gateway first (it drains and flushes usage), then the backend it drains into.
  for pid in ${gw_pid:-} ${mock_pid:-}; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
[[ -n $out ]] || out=$work/results
mkdir -p "$out"

# "<what> listening on HOST:PORT" in a log file, waited for (at most 20 s); prints HOST:PORT.
listening_on() {
  local log=$1 what=$2 pid=$3 line
  for _ in $(seq 200); do
    line=$(grep -m1 "$what listening on " "$log" 2>/dev/null || true)
    [[ -z $line ]] || { echo "${line##* }"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "load-test.sh: $what did not start:" >&2
  cat "$log" >&2
  return 1
}

if ((local)); then
  bin=build/release/src
  if [[ ! -x $bin/app/token-rate-limiter || ! -x $bin/mock/mock-llm ]]; then
    echo "load-test.sh: building (release)..." >&2
    scripts/build.sh release >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; exit 1; }
  fi
  "$bin/mock/mock-llm" --listen 127.0.0.1:0 --models 'llama2-7b,meta-llama/Llama-2-7b-chat-hf' \
    --max-output 64 --ttft 50ms --tokens-per-second 200 >"$work/mock.log" 2>&1 &
  mock_pid=$!
  mock_addr=$(listening_on "$work/mock.log" mock-llm "$mock_pid")
  mkdir -p "$work/gateway"
  (cd "$work/gateway" && MOCK_URL="http://$mock_addr" TRL_LISTEN=127.0.0.1:0 \
    TRL_ADMIN_LISTEN=127.0.0.1:0 exec "$root/$bin/app/token-rate-limiter" \
    --config "$root/configs/demo.yaml" >"$work/gateway.log" 2>&1) &
  gw_pid=$!
  url=http://$(listening_on "$work/gateway.log" "data plane" "$gw_pid")
  echo "load-test.sh: gateway on $url (configs/demo.yaml), mock-llm on $mock_addr" >&2
fi

hostport=${url#*://}
hostport=${hostport%%/*}
host=${hostport%:*}
port=${hostport##*:}
[[ $host != "$hostport" ]] || port=80
summarize=(node "$root/scripts/load-test-summary.mjs")

echo "load-test.sh: $scenario with $tool against $url for ${duration}s" >&2
case $tool in
  k6)
    script=performance/k6/$scenario-test.js
    [[ $scenario != spike ]] || { echo "load-test.sh: k6 has load and stress; spike is JMeter's or the harness's" >&2; exit 2; }
    k6_env=(-e "BASE_URL=$url" -e "API_KEY=$key" -e "MODEL=$model" -e "RATE=$rate")
    if [[ $scenario == load ]]; then k6_env+=(-e "DURATION=${duration}s")
    else k6_env+=(-e "STEP=$((duration / 6 > 0 ? duration / 6 : 1))s"); fi
    k6 run --quiet "${k6_env[@]}" --summary-export "$out/summary.json" "$script" >&2 || true
    "${summarize[@]}" k6 "$out/summary.json"
    ;;
  jmeter)
    props=(-Jhost="$host" -Jport="$port" -Jkey="$key" -Jmodel="$model" -Jduration="$duration"
           -Jloops="$loops" -Jthreads="$threads" -Jrate="$((rate * 60))"
           -Jbase_rate="$((rate * 60))" -Jspike_threads="$threads" -Jrampup=1
           -Jspike_delay="$((duration / 3))" -Jspike_duration="$((duration / 3 > 0 ? duration / 3 : 1))"
           -Jjmeter.save.saveservice.output_format=csv
           -Jjmeter.save.saveservice.print_field_names=true -Jjmeterengine.nongui.port=0)
    [[ $url != https://* ]] || props+=(-Jprotocol=https)
    performance/jmeter/jmeter.sh -n -t "performance/jmeter/$scenario-test.jmx" -l "$out/results.jtl" \
      -j "$out/jmeter.log" "${props[@]}" >&2
    "${summarize[@]}" jtl "$out/results.jtl"
    ;;
  harness)
    loadgen=${TRL_LOADGEN:-build/perf-loadgen/trl-loadgen}
    if [[ -z ${TRL_LOADGEN:-} ]]; then
      # Configured once like performance/run.sh does; afterwards a no-op when up to date.
      [[ -f build/perf-loadgen/build.ninja ]] ||
        cmake -S performance/loadgen -B build/perf-loadgen -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
      cmake --build build/perf-loadgen >/dev/null
    fi
    if ((stream)); then mode=stream; body='"stream": true, "stream_options": {"include_usage": true}, '
    else mode=rate; body=; fi
    printf '{"model": "%s", "max_tokens": 64, %s"messages": [{"role": "user", "content": "Write one sentence about rate limits."}]}' \
      "$model" "$body" >"$work/body.json"
    # Phases of (rate, seconds): one for load; stress doubles the rate three times; spike puts a
    # burst of ten times the rate between two thirds at the base rate.
    case $scenario in
      load) phases=("$rate $duration") ;;
      stress) q=$(awk -v d="$duration" 'BEGIN { print d / 4 }')
              phases=("$rate $q" "$((rate * 2)) $q" "$((rate * 4)) $q" "$((rate * 8)) $q") ;;
      spike) t=$(awk -v d="$duration" 'BEGIN { print d / 3 }')
             phases=("$rate $t" "$((rate * 10)) $t" "$rate $t") ;;
    esac
    i=0
    for phase in "${phases[@]}"; do
      read -r r s <<<"$phase"
      "$loadgen" --host "$host" --port "$port" --body-file "$work/body.json" --mode "$mode" \
        --header "Authorization: Bearer $key" --rate "$r" --duration "$s" \
        --connections 32 >"$out/phase-$i.json"
      i=$((i + 1))
    done
    "${summarize[@]}" loadgen "$out"/phase-*.json
    ;;
esac
