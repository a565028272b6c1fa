#!/usr/bin/env bash
# Backup and restore of the Redis that token-rate-limiter shares (store.backend: redis): the
# Redis cases of scripts/backup.sh under one name, plus a restore into a running Redis.
# See docs/usage.md ("Backup and restore").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

usage() {
  cat <<'EOF'
Usage:
  scripts/backup-redis.sh backup  --redis-url redis://HOST:PORT --out DEST_DIR
      BGSAVE, then the RDB copied to DEST_DIR/dump.rdb (run it where the RDB is readable: the
      Redis host). Everything: API-made keys, usage, budgets.
  scripts/backup-redis.sh restore --from SRC_DIR --redis-url redis://HOST:PORT
      Into a running Redis that holds no API-made key and no usage yet (a new or a managed one),
      with no gateway using it: the API-made keys and the usage rows of the last 400 days, through
      `token-rate-limiter copy-store` (the binary in $TRL_BIN, on the PATH, or build/release).
      Budgets start full.
  scripts/backup-redis.sh restore --from SRC_DIR --redis-rdb PATH
      Into a STOPPED Redis: SRC_DIR/dump.rdb copied to PATH (its dir/dbfilename), loaded when it
      starts. Everything, budgets included.

Options:
  --timeout SECONDS   how long the BGSAVE may take (default 300)
  -h, --help          this text
EOF
}

die() {
  echo "backup-redis.sh: $*" >&2
  exit 1
}

# Writes a gateway config naming the Redis of URL $2 into file $1: all copy-store reads of it.
target_config() {
  local url=$2
  case "$url" in
    redis://* | rediss://*) ;;
    *) die "--redis-url must start with redis:// or rediss://" ;;
  esac
  # The URL may hold a password: the file is the user's alone, and quoted as YAML.
  (umask 077 && cat >"$1" <<EOF
listen: 127.0.0.1:0
models: [{name: restore, backends: ['http://127.0.0.1:9']}]
store: {backend: redis, redis: {url: '${url//\'/\'\'}'}}
usage: {retention: 400d}
EOF
  )
}

main() {
  local command=${1:-}
  case "$command" in
    -h | --help) usage; exit 0 ;;
    "") usage >&2; exit 2 ;;
    backup | restore) shift ;;
    *) usage >&2; die "unknown command: $command" ;;
  esac
  local out="" from="" url="" rdb="" timeout=300
  while (($# > 0)); do
    case "$1" in
      --out | --from | --redis-url | --redis-rdb | --timeout)
        (($# >= 2)) || die "$1 needs a value"
        case "$1" in
          --out) out=$2 ;;
          --from) from=$2 ;;
          --redis-url) url=$2 ;;
          --redis-rdb) rdb=$2 ;;
          --timeout) timeout=$2 ;;
        esac
        shift 2
        ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option: $1 (see --help)" ;;
    esac
  done
  if [[ "$command" == backup ]]; then
    [[ -n "$url" && -n "$out" && -z "$from$rdb" ]] || die "backup needs --redis-url URL --out DEST_DIR"
    exec "$here/backup.sh" backup --redis-url "$url" --out "$out" --timeout "$timeout"
  fi
  [[ -n "$from" ]] || die "restore needs --from SRC_DIR"
  [[ -f "$from/dump.rdb" ]] || die "no dump.rdb in $from (is it a backup made by backup-redis.sh?)"
  [[ -z "$out" ]] || die "--out is for backup"
  if [[ -n "$rdb" && -z "$url" ]]; then
    exec "$here/backup.sh" restore --from "$from" --redis-rdb "$rdb"
  elif [[ -n "$url" && -z "$rdb" ]]; then
    local dir status=0
    dir=$(mktemp -d)
    target_config "$dir/target.yaml" "$url"
    "$here/backup.sh" restore --from "$from" --config "$dir/target.yaml" || status=$?
    rm -rf "$dir"
    exit "$status"
  else
    die "restore needs exactly one of --redis-url and --redis-rdb"
  fi
}

main "$@"
