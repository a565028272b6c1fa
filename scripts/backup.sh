#!/usr/bin/env bash
# Backs up and restores what token-rate-limiter keeps: the SQLite files of embedded mode
# (usage.db, keys.db, limits.db in data_dir) or the RDB snapshot of the Redis it shares.
# See docs/usage.md ("Backup and restore").
set -euo pipefail

usage() {
  cat <<'EOF'
Usage:
  scripts/backup.sh backup  --data-dir DIR           --out DEST_DIR
      Embedded mode: an online backup (sqlite3 .backup) of every *.db in DIR into DEST_DIR.
      Consistent while the gateway runs.
  scripts/backup.sh backup  --redis-url redis://HOST:PORT --out DEST_DIR
      Redis: BGSAVE, wait for it to finish, copy the RDB (CONFIG GET dir/dbfilename) to
      DEST_DIR/dump.rdb. The RDB must be readable from this machine (run it on the Redis host).
  scripts/backup.sh restore --from SRC_DIR --data-dir DIR
      Embedded mode, with the gateway STOPPED: puts SRC_DIR's *.db files in DIR and removes
      their stale -wal/-shm files.
  scripts/backup.sh restore --from SRC_DIR --redis-rdb PATH
      Redis, with Redis STOPPED: copies SRC_DIR/dump.rdb to PATH (the server's dir/dbfilename);
      Redis loads it when it starts (with appendonly off, or the AOF wins).
  scripts/backup.sh restore --from SRC_DIR --config FILE
      Either kind of backup into the store the gateway config FILE names, embedded or Redis
      (so across stores), with no gateway using it: the keys made through the admin API and the
      usage rows of the last 400 days, through `token-rate-limiter copy-store` (the binary in
      $TRL_BIN, on the PATH, or in build/release). Budgets are not restored: they start full.
      The target must hold no API-made key and no usage yet. A Redis backup is read through a
      temporary redis-server on 127.0.0.1.

Options:
  --timeout SECONDS   how long a Redis BGSAVE may take (default 300)
  -h, --help          this text
DEST_DIR must not exist or be empty; it is created.
EOF
}

die() {
  echo "backup.sh: $*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (Debian: apt-get install $2)"
}

# sqlite3's dot-commands take the path in quotes: refuse paths that would break out of them.
check_quotable() {
  case "$1" in
    *\'* | *\"* | *$'\n'*) die "unsupported character (quote or newline) in path: $1" ;;
  esac
}

# An empty or missing directory, made (and canonicalised) for the backup.
prepare_out() {
  local out=$1
  if [[ -e "$out" ]]; then
    [[ -d "$out" ]] || die "--out $out exists and is not a directory"
    [[ -z "$(ls -A "$out")" ]] || die "--out $out is not empty (refusing to overwrite a backup)"
  fi
  mkdir -p "$out" || die "cannot create $out"
}

write_manifest() {
  local out=$1 source=$2
  {
    echo "token-rate-limiter backup"
    echo "created: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "source: $source"
    find "$out" -maxdepth 1 -type f ! -name MANIFEST -printf '%f %s bytes\n' | sort
  } >"$out/MANIFEST"
}

# Sets DBS to the *.db files of directory $2 (named by option $1 in errors); $3 says what the
# directory should be when it has none.
find_databases() {
  need sqlite3 sqlite3
  [[ -d "$2" ]] || die "$1 $2 is not a directory"
  shopt -s nullglob
  DBS=("$2"/*.db)
  shopt -u nullglob
  ((${#DBS[@]} > 0)) || die "no *.db file in $2 (is it $3?)"
}

backup_embedded() {
  local dir=$1 out=$2
  find_databases --data-dir "$dir" "the gateway's data_dir"
  local dbs=("${DBS[@]}")
  prepare_out "$out"
  check_quotable "$out"
  local db name
  for db in "${dbs[@]}"; do
    name=$(basename "$db")
    # .backup copies page by page under SQLite's locking: a consistent snapshot even while the
    # gateway writes (WAL), without stopping it. The busy timeout rides out a write in progress.
    sqlite3 "$db" ".timeout 10000" ".backup '$out/$name.part'" ||
      die "backing up $db failed"
    [[ "$(sqlite3 "$out/$name.part" 'PRAGMA integrity_check')" == ok ]] ||
      die "the backup of $db does not pass PRAGMA integrity_check"
    mv "$out/$name.part" "$out/$name"
    echo "backed up $db -> $out/$name"
  done
  write_manifest "$out" "data_dir $(cd "$dir" && pwd)"
}

# redis-cli on --redis-url (set by backup_redis); the URL may hold a password: no warning about it.
rcli() {
  redis-cli --no-auth-warning -u "$REDIS_URL" "$@"
}

# A field of INFO persistence ("rdb_bgsave_in_progress"), without the trailing CR.
info_field() {
  rcli INFO persistence | tr -d '\r' | sed -n "s/^$1://p"
}

# `CONFIG GET name` answers the name, then the value.
config_get() {
  local reply
  reply=$(rcli CONFIG GET "$1") || return 1
  [[ $(printf '%s\n' "$reply" | wc -l) -ge 2 ]] || return 1
  printf '%s\n' "$reply" | sed -n 2p
}

backup_redis() {
  REDIS_URL=$1
  local out=$2 timeout=$3
  need redis-cli redis-tools
  local pong
  pong=$(rcli PING 2>&1) || die "cannot reach Redis at the given --redis-url"
  [[ "$pong" == PONG ]] || die "Redis did not answer PING: $pong"
  local dir file
  dir=$(config_get dir) || die "CONFIG GET dir failed (CONFIG disabled or renamed?)"
  file=$(config_get dbfilename) || die "CONFIG GET dbfilename failed"
  [[ -n "$dir" && -n "$file" ]] || die "Redis did not say where its RDB is (dir/dbfilename)"
  local rdb="$dir/$file"
  prepare_out "$out"

  # LASTSAVE has a resolution of one second: start the save in a later second than the last
  # one, so that its completion always changes LASTSAVE.
  local before now
  before=$(rcli LASTSAVE)
  now=$(rcli TIME | head -1)
  [[ "$now" -gt "$before" ]] || sleep 1
  local reply waited=0
  reply=$(rcli BGSAVE 2>&1)
  while [[ "$reply" == *"in progress"* ]]; do
    # Someone else's save (or a rewrite) is running: ours starts after it.
    ((waited < timeout * 5)) || die "a background save in progress did not end within ${timeout}s"
    sleep 0.2
    waited=$((waited + 1))
    reply=$(rcli BGSAVE 2>&1)
  done
  [[ "$reply" == *"started"* ]] || die "BGSAVE refused: $reply"
  while [[ "$(rcli LASTSAVE)" == "$before" ]]; do
    ((waited < timeout * 5)) || die "BGSAVE did not finish within ${timeout}s (see --timeout)"
    sleep 0.2
    waited=$((waited + 1))
  done
  [[ "$(info_field rdb_last_bgsave_status)" == ok ]] ||
    die "BGSAVE failed (INFO persistence: rdb_last_bgsave_status is not ok; see the Redis log)"
  [[ -r "$rdb" ]] ||
    die "the RDB $rdb is not readable here: run this on the Redis host (or as a user who can read it)"
  cp "$rdb" "$out/dump.rdb.part"
  if command -v redis-check-rdb >/dev/null 2>&1; then
    redis-check-rdb "$out/dump.rdb.part" >/dev/null 2>&1 || die "the copied RDB does not check out"
  fi
  mv "$out/dump.rdb.part" "$out/dump.rdb"
  echo "backed up $rdb -> $out/dump.rdb"
  # The URL may carry a password: the manifest names the file, not the URL.
  write_manifest "$out" "redis rdb $rdb"
}

# Fails when a process this user can see has one of DIR's databases open: a running gateway
# would keep writing to the files being replaced (and to -wal files that no longer match).
refuse_if_open() {
  local dir fd target
  dir=$(cd "$1" && pwd -P)
  for fd in /proc/[0-9]*/fd/*; do
    target=$(readlink "$fd" 2>/dev/null) || continue
    case "$target" in
      "$dir"/*.db | "$dir"/*.db-wal | "$dir"/*.db-shm)
        local pid=${fd#/proc/}
        die "process ${pid%%/*} has $target open: stop the gateway before restoring"
        ;;
    esac
  done
}

restore_embedded() {
  local from=$1 dir=$2
  find_databases --from "$from" "a backup made by this script"
  local dbs=("${DBS[@]}")
  local db name
  for db in "${dbs[@]}"; do
    [[ "$(sqlite3 "$db" 'PRAGMA integrity_check' 2>&1)" == ok ]] ||
      die "$db does not pass PRAGMA integrity_check: nothing restored"
  done
  mkdir -p "$dir" || die "cannot create $dir"
  refuse_if_open "$dir"
  for db in "${dbs[@]}"; do
    name=$(basename "$db")
    cp "$db" "$dir/$name.part"
    # The old -wal/-shm belong to the old file: left beside the new one, SQLite would apply
    # the old WAL to it.
    rm -f "$dir/$name-wal" "$dir/$name-shm"
    mv "$dir/$name.part" "$dir/$name"
    echo "restored $db -> $dir/$name"
  done
}

restore_redis() {
  local from=$1 rdb=$2
  [[ -f "$from/dump.rdb" ]] || die "no dump.rdb in $from (is it a Redis backup made by this script?)"
  if command -v redis-check-rdb >/dev/null 2>&1; then
    redis-check-rdb "$from/dump.rdb" >/dev/null 2>&1 || die "$from/dump.rdb does not check out"
  fi
  local parent
  parent=$(dirname "$rdb")
  [[ -d "$parent" ]] || die "$parent (the directory of --redis-rdb) does not exist"
  cp "$from/dump.rdb" "$rdb.part"
  mv "$rdb.part" "$rdb"
  echo "restored $from/dump.rdb -> $rdb"
  echo "start Redis now (it must have been stopped: a running one overwrites the file at its next save)"
}

# The gateway binary for copy-store: $TRL_BIN, on the PATH, or this checkout's Release build.
gateway_bin() {
  local bin=${TRL_BIN:-}
  [[ -n "$bin" ]] || bin=$(command -v token-rate-limiter || true)
  [[ -n "$bin" ]] || bin="$(cd "$(dirname "$0")/.." && pwd)/build/release/src/app/token-rate-limiter"
  [[ -x "$bin" ]] || die "token-rate-limiter not found (set TRL_BIN to the gateway binary)"
  echo "$bin"
}

# Starts redis-server on a free loopback port over the RDB in directory $1, waits until it has
# loaded it, and prints the port.
serve_rdb() {
  local dir=$1 port _
  need redis-server redis-server
  for port in $(shuf -i 20000-60000 -n 20); do
    rm -f "$dir/redis.pid"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --dbfilename dump.rdb --save '' \
      --appendonly no --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
    for _ in $(seq 100); do
      # "loading:0" once the dataset is in (PONG alone comes before that).
      if redis-cli -p "$port" INFO persistence 2>/dev/null | tr -d '\r' | grep -qx 'loading:0'; then
        echo "$port"
        return 0
      fi
      sleep 0.1
    done
    [[ -f "$dir/redis.pid" ]] && kill "$(cat "$dir/redis.pid")" 2>/dev/null
  done
  die "could not start redis-server over $dir/dump.rdb (see $dir/redis.log)"
}

restore_through_config() {
  local from=$1 config=$2 bin store port
  [[ -f "$config" ]] || die "--config $config is not a file"
  bin=$(gateway_bin)
  WORK=$(mktemp -d)
  trap 'if [[ -f "$WORK/redis.pid" ]]; then kill "$(cat "$WORK/redis.pid")" 2>/dev/null; fi; rm -rf "$WORK"' EXIT
  if [[ -f "$from/dump.rdb" ]]; then
    cp "$from/dump.rdb" "$WORK/dump.rdb"
    port=$(serve_rdb "$WORK")
    store="{backend: redis, redis: {url: 'redis://127.0.0.1:$port/0'}}"
  else
    find_databases --from "$from" "a backup made by this script"
    mkdir "$WORK/data"
    cp "${DBS[@]}" "$WORK/data/"
    store="{backend: memory, data_dir: '$WORK/data'}"
  fi
  cat >"$WORK/from.yaml" <<EOF
listen: 127.0.0.1:0
models: [{name: restore, backends: ['http://127.0.0.1:9']}]
store: $store
usage: {retention: 400d}
EOF
  "$bin" copy-store --from "$WORK/from.yaml" --to "$config" ||
    die "copy-store failed: nothing more restored"
}

main() {
  local command=${1:-}
  [[ -n "$command" ]] || {
    usage >&2
    exit 2
  }
  shift
  case "$command" in
    -h | --help)
      usage
      exit 0
      ;;
    backup | restore) ;;
    *)
      usage >&2
      die "unknown command: $command"
      ;;
  esac
  local data_dir="" out="" redis_url="" from="" redis_rdb="" config="" timeout=300
  while (($# > 0)); do
    case "$1" in
      --data-dir | --out | --redis-url | --from | --redis-rdb | --config | --timeout)
        (($# >= 2)) || die "$1 needs a value"
        case "$1" in
          --data-dir) data_dir=$2 ;;
          --out) out=$2 ;;
          --redis-url) redis_url=$2 ;;
          --from) from=$2 ;;
          --redis-rdb) redis_rdb=$2 ;;
          --config) config=$2 ;;
          --timeout) timeout=$2 ;;
        esac
        shift 2
        ;;
      -h | --help)
        usage
        exit 0
        ;;
      *) die "unknown option: $1 (see --help)" ;;
    esac
  done
  [[ "$timeout" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a whole number of seconds"

  if [[ "$command" == backup ]]; then
    [[ -n "$out" ]] || die "backup needs --out DEST_DIR"
    [[ -z "$from$redis_rdb$config" ]] || die "--from, --redis-rdb and --config are for restore"
    if [[ -n "$data_dir" && -z "$redis_url" ]]; then
      backup_embedded "$data_dir" "$out"
    elif [[ -n "$redis_url" && -z "$data_dir" ]]; then
      backup_redis "$redis_url" "$out" "$timeout"
    else
      die "backup needs exactly one of --data-dir and --redis-url"
    fi
  else
    [[ -n "$from" ]] || die "restore needs --from SRC_DIR"
    [[ -z "$out$redis_url" ]] || die "--out and --redis-url are for backup"
    if [[ -n "$data_dir" && -z "$redis_rdb$config" ]]; then
      restore_embedded "$from" "$data_dir"
    elif [[ -n "$redis_rdb" && -z "$data_dir$config" ]]; then
      restore_redis "$from" "$redis_rdb"
    elif [[ -n "$config" && -z "$data_dir$redis_rdb" ]]; then
      restore_through_config "$from" "$config"
    else
      die "restore needs exactly one of --data-dir, --redis-rdb and --config"
    fi
  fi
}

main "$@"
