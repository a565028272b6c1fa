#!/usr/bin/env bash
# Builds the gateway and mock-llm images (docker/Dockerfile) with podman and proves them on
# loopback: the gateway serves chat and streaming requests through mock-llm, answers the admin
# API, refuses past a limit (429), drains on SIGTERM (exit code 0), and its usage survives a
# restart on the same volume. Also checks the image is under 120 MB and runs as non-root.
# Then it brings up docker/docker-compose.yml's gateway, Redis and two mock model servers with
# podman-compose and checks that they serve, limit and keep usage in Redis.
#
# No container registry is needed: the base images are made here with debootstrap (Debian's
# mirror) and kept in podman's storage, as are the build layers, so a second run reuses them.
# Usage: scripts/test-container.sh [--rebuild-base | --bases-only]
#   --bases-only: make the base images (when missing) and stop; scripts/test.sh runs this beside
#   the build.
set -euo pipefail
cd "$(dirname "$0")/.."

base=localhost/trl-base:bookworm
slim=localhost/trl-base:bookworm-slim
max_image_mb=120
rebuild_base=0
bases_only=0
case ${1:-} in
  --rebuild-base) rebuild_base=1 ;;
  --bases-only) bases_only=1 ;;
  "") ;;
  *) echo "test-container.sh: unknown argument $1" >&2; exit 2 ;;
esac

log() { echo "test-container: $*"; }
fail() { echo "test-container: FAILED: $*" >&2; exit 1; }

missing=()
for p in podman runc debootstrap curl podman-compose; do
  command -v "$p" >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# runc and cgroupfs: what works on this machine (crun fails on its cgroups); ulimits no higher
# than the machine's own. Set in a containers.conf, so that they hold for every podman call here,
# builds and the containers podman-compose starts included.
CONTAINERS_CONF=$(mktemp)
export CONTAINERS_CONF
cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF

make_base() {
  local root
  root=$(mktemp -d)
  log "making $base with debootstrap (about 2 minutes, once)"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  # Without the packages debootstrap downloaded (as Debian's own images).
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import - "$base" >/dev/null
  # bookworm-slim: the same system without documentation, manuals and locales.
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/*
  tar -C "$root" -c . | podman import - "$slim" >/dev/null
  rm -rf "$root"
}
if ((rebuild_base)) || ! podman image exists "$base" || ! podman image exists "$slim"; then
  make_base
fi
((bases_only)) && { rm -f "$CONTAINERS_CONF"; exit 0; }

start=$SECONDS
build() {  # build TARGET TAG
  # --format docker: the OCI format has no HEALTHCHECK.
  podman build --format docker --network host -f docker/Dockerfile \
    --target "$1" \
    --build-arg BUILD_IMAGE="$base" --build-arg RUNTIME_IMAGE="$slim" \
    --build-arg VERSION=test --build-arg REVISION="$(git rev-parse --short HEAD)" \
    --layers -t "$2" . >/dev/null
}
build gateway localhost/token-rate-limiter:test
build mock-llm localhost/mock-llm:test
log "images built in $((SECONDS - start)) s"

size=$(podman image inspect --format '{{.Size}}' localhost/token-rate-limiter:test)
size_mb=$((size / 1000000))
log "gateway image: ${size_mb} MB"
((size_mb < max_image_mb)) || fail "the image is ${size_mb} MB (limit ${max_image_mb} MB)"
user=$(podman image inspect --format '{{.Config.User}}' localhost/token-rate-limiter:test)
[[ $user == 10001:10001 ]] || fail "the image runs as '$user', not 10001:10001"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mock_port=$(free_port)
port=$(free_port)
admin_port=$(free_port)
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
volume=trl-test-data-$$
containers=()
project=trl-test-$$
compose=(podman-compose -p "$project" -f docker/docker-compose.yml)
cleanup() {
  for c in "${containers[@]}"; do podman rm -f "$c" >/dev/null 2>&1 || true; done
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  "${compose[@]}" down -v >/dev/null 2>&1 || true
  rm -f "$CONTAINERS_CONF" /tmp/trl-chat-$$
}
trap cleanup EXIT

run_mock() {
  containers+=(trl-test-mock-$$)
  podman run -d --name "trl-test-mock-$$" --network host \
    --entrypoint /usr/local/bin/mock-llm localhost/mock-llm:test \
    --listen "127.0.0.1:$mock_port" --models llama2-7b --max-output 8 >/dev/null
}
run_gateway() {  # run_gateway NAME
  containers+=("$1")
  # The health check runs on demand below (its timer would need systemd).
  podman run -d --name "$1" --network host --read-only \
    --health-interval disable \
    -v "$volume:/var/lib/token-rate-limiter" \
    -e ADMIN_TOKEN="$token" -e TRL_PORT="$port" -e TRL_ADMIN_PORT="$admin_port" \
    -e MODEL_URL="http://127.0.0.1:$mock_port" localhost/token-rate-limiter:test >/dev/null
}
wait_ready() {
  for _ in $(seq 1 300); do  # up to 30 s: the compose gateway waits for Redis
    curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  podman logs "$1" >&2 || true
  fail "the gateway never became ready"
}
admin() {  # admin METHOD PATH [BODY]
  curl -sS -X "$1" "http://127.0.0.1:$admin_port$2" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' ${3:+-d "$3"}
}
chat() {  # chat KEY [STREAM [MODEL]]: prints the HTTP status; the body is in /tmp/trl-chat-$$
  curl -sS -o /tmp/trl-chat-$$ -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" \
    -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
    -d "{\"model\":\"${3:-llama2-7b}\",\"max_tokens\":4,\"stream\":${2:-false},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
}
json() {  # json EXPR: EXPR of the JSON document on stdin, read as `d`
  python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

run_mock
run_gateway trl-test-gw1-$$
wait_ready "trl-test-gw1-$$"
uid=$(podman exec "trl-test-gw1-$$" id -u)
[[ $uid == 10001 ]] || fail "the gateway runs as uid $uid"
podman healthcheck run "trl-test-gw1-$$" >/dev/null || fail "the image's HEALTHCHECK fails"

created=$(admin POST /admin/v1/keys '{"name":"container-test","limits":[{"requests":3,"per":"1m"}]}')
key=$(json 'd["key"]' <<<"$created")
[[ $(chat "$key") == 200 ]] || fail "chat: $(cat /tmp/trl-chat-$$)"
grep -q '"usage"' /tmp/trl-chat-$$ || fail "chat answered without usage"
[[ $(chat "$key" true) == 200 ]] || fail "stream: $(cat /tmp/trl-chat-$$)"
grep -q 'data: \[DONE\]' /tmp/trl-chat-$$ || fail "the stream did not end with [DONE]"
[[ $(chat "$key") == 200 ]] || fail "third request"
[[ $(chat "$key") == 429 ]] || fail "the fourth request was not refused: $(cat /tmp/trl-chat-$$)"
grep -q '"rate_limit_exceeded"' /tmp/trl-chat-$$ || fail "the 429 is not OpenAI-shaped"
log "chat, stream, admin and 429: as expected"

podman stop -t 30 "trl-test-gw1-$$" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "trl-test-gw1-$$")
[[ $code == 0 ]] || fail "the gateway exited $code on SIGTERM"

# The same volume: the key and the usage written at shutdown are there.
run_gateway trl-test-gw2-$$
wait_ready "trl-test-gw2-$$"
usage=$(admin GET '/admin/v1/usage?key=container-test&granularity=day')
requests=$(json 'd["total"]["requests"]' <<<"$usage")
[[ $requests == 3 ]] || fail "usage after a restart holds $requests requests, not 3: $usage"
log "SIGTERM exit 0; usage kept across a restart"
for c in "${containers[@]}"; do podman rm -f "$c" >/dev/null; done
containers=()

# The compose stack: gateway on Redis, two mock model servers. Redis's image is made here from
# Debian's package, as the bases are; the stack's own images are the ones just built.
podman build --network host --layers -t localhost/trl-redis:test -f - . \
  >/dev/null <<DOCKERFILE
FROM $slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      redis-server redis-tools && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir /data && chown redis:redis /data
USER redis
DOCKERFILE
export TRL_IMAGE=localhost/token-rate-limiter:test MOCK_IMAGE=localhost/mock-llm:test \
  REDIS_IMAGE=localhost/trl-redis:test ADMIN_TOKEN="$token" TRL_PORT="$port" \
  TRL_ADMIN_PORT="$admin_port" REDIS_PASSWORD
REDIS_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
stack=(redis gateway mock-llama2-7b mock-llama2-13b)
"${compose[@]}" up -d "${stack[@]}" >/dev/null 2>&1 || fail "podman-compose up failed"
wait_ready "${project}_gateway_1"
created=$(admin POST /admin/v1/keys '{"name":"compose-test","limits":[{"requests":3,"per":"1m"}]}')
key=$(json 'd["key"]' <<<"$created")
[[ $(chat "$key" false llama2-7b) == 200 ]] || fail "compose, llama2-7b: $(cat /tmp/trl-chat-$$)"
[[ $(chat "$key" true llama2-13b) == 200 ]] || fail "compose, llama2-13b: $(cat /tmp/trl-chat-$$)"
grep -q 'data: \[DONE\]' /tmp/trl-chat-$$ || fail "compose: the stream did not end with [DONE]"
[[ $(chat "$key") == 200 ]] || fail "compose: third request"
[[ $(chat "$key") == 429 ]] || fail "compose: the fourth request was not refused"
# The usage rows are in Redis: a fresh gateway on the same Redis (and a new data volume) sees them.
"${compose[@]}" stop gateway >/dev/null 2>&1
code=$(podman inspect --format '{{.State.ExitCode}}' "${project}_gateway_1")
[[ $code == 0 ]] || fail "the compose gateway exited $code on SIGTERM"
podman rm -f "${project}_gateway_1" >/dev/null
podman volume rm -f "${project}_gateway-data" >/dev/null
"${compose[@]}" up -d gateway >/dev/null 2>&1 || fail "podman-compose up gateway failed"
wait_ready "${project}_gateway_1"
usage=$(admin GET '/admin/v1/usage?key=compose-test&group_by=model&granularity=day')
models=$(json '",".join(sorted(r["model"]+"="+str(r["requests"]) for r in d["data"]))' <<<"$usage")
[[ $models == llama2-13b=1,llama2-7b=2 ]] || fail "compose usage in Redis: $models ($usage)"
log "compose stack (gateway, Redis, two mocks): served, limited, usage kept in Redis"
log "passed in $((SECONDS - start)) s"
