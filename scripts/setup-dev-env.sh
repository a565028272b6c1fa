#!/usr/bin/env bash
# Sets up a developer's machine (Debian bookworm) or the dev container (docker/Dockerfile.dev):
# what scripts/setup.sh installs, a Release build configured file by file (TRL_UNITY=OFF: a
# changed file recompiles alone) and built, and a git pre-commit hook that refuses C++ files
# clang-format would change. Safe to run again.
# Usage: scripts/setup-dev-env.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
[[ ${1:-} == --no-build ]] && build=0

scripts/setup.sh
cmake --preset release -DTRL_UNITY=OFF >/dev/null
echo "setup-dev-env: build/release configured file by file (TRL_UNITY=OFF)"
if ((build)); then
  cmake --build --preset release
fi

hook=$(git rev-parse --git-path hooks)/pre-commit
if [[ ! -e $hook ]]; then
  cat >"$hook" <<'HOOK'
#!/usr/bin/env bash
# Installed by scripts/setup-dev-env.sh: the staged C++ files must be clang-format clean.
mapfile -t files < <(git diff --cached --name-only --diff-filter=ACM -- '*.cc' '*.h')
((${#files[@]} == 0)) || clang-format --dry-run -Werror "${files[@]}"
HOOK
  chmod +x "$hook"
  echo "setup-dev-env: installed $hook (clang-format on staged C++ files)"
fi
cat <<'NEXT'
setup-dev-env: ready.
  scripts/demo.sh                  the gateway with mock-llm behind it
  scripts/test.sh --quick          the Release suite
  scripts/test.sh                  everything CI runs
  ctest --test-dir build/release -R <name>   one test
NEXT
