#!/usr/bin/env bash
# Configures and builds one CMake preset (release, debug, asan, tsan) into build/<preset>.
# Usage: scripts/build.sh [preset] [extra cmake --build args, e.g. --target mock-llm]
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
shift || true
cmake --preset "$preset" >/dev/null
# Two cores shared with everything else: ninja's default (cores + 2) is right.
cmake --build --preset "$preset" "$@"
