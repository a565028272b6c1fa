#!/usr/bin/env bash
# Builds the gateway and mock-llm images (docker/Dockerfile) with podman and proves them on
# loopback: the gateway serves chat and streaming requests through mock-llm, answers the admin
# API, refuses past a limit (429), drains on SIGTERM (exit code 0), and its usage survives a
# restart on the same volume. Also checks the image is under 120 MB and runs as non-root.
#
# No container registry is needed: the base images are made here with debootstrap (Debian's
# mirror) and kept in podman's storage, as are the build layers, so a second run reuses them.
# Usage: scripts/test-container.sh [--rebuild-base]
set -euo pipefail
cd "$(dirname "$0")/.."

base=localhost/trl-base:bookworm
slim=localhost/trl-base:bookworm-slim
max_image_mb=120
rebuild_base=0
[[ ${1:-} == --rebuild-base ]] && rebuild_base=1

log() { echo "test-container: $*"; }
fail() { echo "test-container: FAILED: $*" >&2; exit 1; }

missing=()
for p in podman runc debootstrap curl; do
  command -v "$p" >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# runc, cgroupfs and host networking: what works on this machine (crun fails on its cgroups);
# ulimits no higher than the machine's own.
pod=(podman --runtime runc --cgroup-manager cgroupfs)
limits=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)

make_base() {
  local root
  root=$(mktemp -d)
  log "making $base with debootstrap (about 2 minutes, once)"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  # Without the packages debootstrap downloaded (as Debian's own images).
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | "${pod[@]}" import - "$base" >/dev/null
  # bookworm-slim: the same system without documentation, manuals and locales.
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/*
  tar -C "$root" -c . | "${pod[@]}" import - "$slim" >/dev/null
  rm -rf "$root"
}
if ((rebuild_base)) || ! "${pod[@]}" image exists "$base" || ! "${pod[@]}" image exists "$slim"; then
  make_base
fi

start=$SECONDS
build() {  # build TARGET TAG
  # --format docker: the OCI format has no HEALTHCHECK.
  "${pod[@]}" build --format docker --network host "${limits[@]}" -f docker/Dockerfile \
    --target "$1" \
    --build-arg BUILD_IMAGE="$base" --build-arg RUNTIME_IMAGE="$slim" \
    --build-arg VERSION=test --build-arg REVISION="$(git rev-parse --short HEAD)" \
    --layers -t "$2" . >/dev/null
}
build gateway localhost/token-rate-limiter:test
build mock-llm localhost/mock-llm:test
log "images built in $((SECONDS - start)) s"

size=$("${pod[@]}" image inspect --format '{{.Size}}' localhost/token-rate-limiter:test)
size_mb=$((size / 1000000))
log "gateway image: ${size_mb} MB"
((size_mb < max_image_mb)) || fail "the image is ${size_mb} MB (limit ${max_image_mb} MB)"
user=$("${pod[@]}" image inspect --format '{{.Config.User}}' localhost/token-rate-limiter:test)
[[ $user == 10001:10001 ]] || fail "the image runs as '$user', not 10001:10001"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mock_port=$(free_port)
port=$(free_port)
admin_port=$(free_port)
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
volume=trl-test-data-$$
containers=()
cleanup() {
  for c in "${containers[@]}"; do "${pod[@]}" rm -f "$c" >/dev/null 2>&1 || true; done
  "${pod[@]}" volume rm -f "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT

run_mock() {
  containers+=(trl-test-mock-$$)
  "${pod[@]}" run -d --name "trl-test-mock-$$" --network host "${limits[@]}" \
    --entrypoint /usr/local/bin/mock-llm localhost/mock-llm:test \
    --listen "127.0.0.1:$mock_port" --models llama2-7b --max-output 8 >/dev/null
}
run_gateway() {  # run_gateway NAME
  containers+=("$1")
  # The health check runs on demand below (its timer would need systemd).
  "${pod[@]}" run -d --name "$1" --network host --read-only "${limits[@]}" \
    --health-interval disable \
    -v "$volume:/var/lib/token-rate-limiter" \
    -e ADMIN_TOKEN="$token" -e TRL_PORT="$port" -e TRL_ADMIN_PORT="$admin_port" \
    -e MODEL_URL="http://127.0.0.1:$mock_port" localhost/token-rate-limiter:test >/dev/null
}
wait_ready() {
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "${pod[@]}" logs "$1" >&2 || true
  fail "the gateway never became ready"
}
admin() {  # admin METHOD PATH [BODY]
  curl -sS -X "$1" "http://127.0.0.1:$admin_port$2" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' ${3:+-d "$3"}
}
chat() {  # chat KEY [STREAM]: prints the HTTP status and the body
  curl -sS -o /tmp/trl-chat-$$ -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" \
    -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
    -d "{\"model\":\"llama2-7b\",\"max_tokens\":4,\"stream\":${2:-false},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
}

run_mock
run_gateway trl-test-gw1-$$
wait_ready "trl-test-gw1-$$"
uid=$("${pod[@]}" exec "trl-test-gw1-$$" id -u)
[[ $uid == 10001 ]] || fail "the gateway runs as uid $uid"
"${pod[@]}" healthcheck run "trl-test-gw1-$$" >/dev/null || fail "the image's HEALTHCHECK fails"

created=$(admin POST /admin/v1/keys '{"name":"container-test","limits":[{"requests":3,"per":"1m"}]}')
key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' <<<"$created")
[[ $(chat "$key") == 200 ]] || fail "chat: $(cat /tmp/trl-chat-$$)"
grep -q '"usage"' /tmp/trl-chat-$$ || fail "chat answered without usage"
[[ $(chat "$key" true) == 200 ]] || fail "stream: $(cat /tmp/trl-chat-$$)"
grep -q 'data: \[DONE\]' /tmp/trl-chat-$$ || fail "the stream did not end with [DONE]"
[[ $(chat "$key") == 200 ]] || fail "third request"
[[ $(chat "$key") == 429 ]] || fail "the fourth request was not refused: $(cat /tmp/trl-chat-$$)"
grep -q '"rate_limit_exceeded"' /tmp/trl-chat-$$ || fail "the 429 is not OpenAI-shaped"
log "chat, stream, admin and 429: as expected"

"${pod[@]}" stop -t 30 "trl-test-gw1-$$" >/dev/null
code=$("${pod[@]}" inspect --format '{{.State.ExitCode}}' "trl-test-gw1-$$")
[[ $code == 0 ]] || fail "the gateway exited $code on SIGTERM"

# The same volume: the key and the usage written at shutdown are there.
run_gateway trl-test-gw2-$$
wait_ready "trl-test-gw2-$$"
usage=$(admin GET '/admin/v1/usage?key=container-test&granularity=day')
requests=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["requests"])' <<<"$usage")
[[ $requests == 3 ]] || fail "usage after a restart holds $requests requests, not 3: $usage"
log "SIGTERM exit 0; usage kept across a restart; passed in $((SECONDS - start)) s"
rm -f /tmp/trl-chat-$$
