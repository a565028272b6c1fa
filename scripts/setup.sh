#!/usr/bin/env bash
# Installs what building and testing token-rate-limiter needs on Debian bookworm, and only what
# is missing: safe to run again and again (the second run changes nothing and takes a second).
# Usage: scripts/setup.sh [--system-only]
#   --system-only: Debian's packages and Node.js only, not the tests' npm packages (for an image
#   built without the source tree: docker/Dockerfile.dev).
set -euo pipefail
cd "$(dirname "$0")/.."
system_only=0
[[ ${1:-} == --system-only ]] && system_only=1
sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi

packages=(
  build-essential cmake ninja-build ccache g++ pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libhiredis-dev libsimdjson-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libsqlite3-dev libssl-dev
  libmimalloc-dev zlib1g-dev libpcre2-dev unicode-data
  libgtest-dev libgmock-dev libbenchmark-dev
  redis-server redis-tools sqlite3 curl ca-certificates
  shellcheck clang-format clang-tidy
  clang libclang-rt-dev
  prometheus prometheus-alertmanager
  jmeter jmeter-http yamllint
)
# Node 20 is what the machines ship; Debian's nodejs/npm only when there is no node at all.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: system packages already installed"
fi

# Debian bookworm's own Node.js is 18; the black-box tests need 20, which the npm registry
# publishes as the `node` package.
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
  echo "setup: Node.js $(node --version) is older than 20; installing node@20 from npm"
  "${sudo[@]}" npm install -g --no-audit --no-fund --loglevel=error node@20
  hash -r
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  ((node_major >= 20)) || { echo "setup: Node.js >= 20 is needed (found $(node --version))" >&2; exit 1; }
fi
((system_only)) && exit 0

# The tests' npm dependencies, pinned by each directory's lock file: tests/blackbox (the official
# openai client), tests/deploy (kubernetes-models, yaml), tests/api (@redocly/cli, newman, ajv),
# tests/tokenizers (the reference tokenizers, whose packages also ship the tokenizer files).
for dir in tests/blackbox tests/deploy tests/api tests/tokenizers; do
  if [[ ! -f $dir/node_modules/.package-lock.json ]] ||
    [[ $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
    echo "setup: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "setup: $dir/node_modules up to date"
  fi
done
