# The dump set of scripts/bench.sh (issue 12), sourced by it: one SQL dump streamed into
# each tool the way a database's logical backup reaches it, from a command's stdout:
#   cairn   a command source of an instance (`--command 'cat DUMP' --as dump.sql`), run
#           by the mount daemon: the figures are the daemon's (its peak RSS over the
#           RSS it had before the snapshot);
#   restic  `restic backup --stdin --stdin-filename dump.sql`;
#   borg    `borg create REPO::NAME -`.
# Figures: stream-1x (the dump once: time, MB/s, RSS), stream-again (the same dump again:
# what it adds to the repository), stream-4x (four dumps back to back in one stream: RSS).
# The machine's limit, in the same run: `cat DUMP | zstd -3 -T0 > /dev/null`.

DUMP=""

# Makes (once, kept in DATA) a DB_MIB MiB SQL dump: the SQLite set's database as SQL text.
dump_data() {
  DUMP=$DATA/dump-$DB_MIB.sql
  [ -f "$DUMP" ] && return 0
  log "building a ${DB_MIB} MiB SQL dump (from the SQLite set's database)"
  sqlite3 "$DB/orig.db" .dump | head -c "$((DB_MIB << 20))" > "$DUMP.tmp" || true
  [ "$(stat -c %s "$DUMP.tmp")" = "$((DB_MIB << 20))" ] || die "the SQL dump came out short"
  mv "$DUMP.tmp" "$DUMP"
}

dump_limit() {
  record dump source data data_bytes "$(stat -c %s "$DUMP")"
  measure dump machine zstd-pipe sh -c 'cat "$1" | zstd -q -3 -T0 > /dev/null' sh "$DUMP"
}

# dump_stream TOOL REPO FIGURE COPIES: one stream of COPIES dumps into TOOL's repository.
dump_stream() {
  local tool=$1 repo=$2 figure=$3 copies=$4 files=()
  local i
  for ((i = 0; i < copies; i++)); do files+=("$DUMP"); done
  case $tool in
    restic)
      measure dump restic "$figure" sh -c 'f=$1; shift; cat "$@" | restic backup -q -r "$f" --stdin --stdin-filename dump.sql' \
        sh "$repo" "${files[@]}" ;;
    borg)
      measure dump borg "$figure" sh -c 'f=$1; shift; cat "$@" | borg create "$f::'"$figure"'" -' \
        sh "$repo" "${files[@]}" ;;
  esac
  record_size dump "$tool" "$figure" "$repo"
}

# The cairn side: a mount, an instance per stream length, snapshots through the daemon.
dump_cairn() {
  local repo=$1 mnt=$RUN/mnt-cairn-dump pid
  mkdir -p "$mnt"
  "$CAIRN" mount "$repo" "$mnt" --background --json > "$LOGS/dump-cairn-mount.json" \
    || die "cairn mount failed"
  pid=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])' < "$LOGS/dump-cairn-mount.json")
  DAEMON_PIDS+=("$pid")
  pid=$(fuse_daemon "$mnt" "$pid")
  "$CAIRN" instance add dump --mount "$mnt" --command "cat $DUMP" --as dump.sql > /dev/null \
    || die "cairn instance add failed"
  "$CAIRN" instance add dump4 --mount "$mnt" --command "cat $DUMP $DUMP $DUMP $DUMP" --as dump.sql \
    > /dev/null || die "cairn instance add failed"
  local figure inst
  for figure in stream-1x stream-again stream-4x; do
    inst=dump; [ $figure != stream-4x ] || inst=dump4
    record dump cairn "$figure" daemon_base_mb "$(awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$pid/status")"
    mount_op dump cairn "$figure" "$pid" "$CAIRN" snapshot "$inst" --mount "$mnt"
    record_size dump cairn "$figure" "$repo"
  done
  "$CAIRN" umount "$mnt" > /dev/null || die "cairn umount failed"
  local i
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  DAEMON_PIDS=()
}

run_dump() {  # run_dump TOOL
  local tool=$1 repo=$RUN/repo-$1-dump
  STEP="dump/$tool"
  rm -rf "$repo" "$RUN"/cache-* "$RUN/borg-base"
  tool_cmds "$tool" dump "$repo" "$RUN/restore-dump"
  "${INIT[@]}" > "$LOGS/dump-$tool-init.out" 2>&1 || die "$tool init failed (see $LOGS/dump-$tool-init.out)"
  case $tool in
    cairn) dump_cairn "$repo" ;;
    *)
      dump_stream "$tool" "$repo" stream-1x 1
      dump_stream "$tool" "$repo" stream-again 1
      dump_stream "$tool" "$repo" stream-4x 4 ;;
  esac
  rm -rf "$repo"
  trim_run
}
