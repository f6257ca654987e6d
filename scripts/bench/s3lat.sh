# The S3-latency set (issue 14) of scripts/bench.sh, sourced by it: cairn and restic on
# S3 behind a proxy that adds a round trip (--s3-rtt-ms, default 20 ms) to every request.
# First and no-change backup and a restore with the machine's own cache, then the point
# mounted as if on another machine (a fresh, empty cache directory): the mount until the
# point shows, `find` of it and a cold `tar`. Time and requests by kind for each figure,
# the stored size after each backup.

run_s3lat() {  # run_s3lat TOOL
  local tool=$1 set=s3lat prefix=$S3_PREFIX/lat-$1-r$ROUND restore=$RUN/restore-$1-s3lat repo
  STEP="s3lat/$tool"
  s3_use "$PROXY_LAT"
  case $tool in
    cairn) repo=s3://$S3_BUCKET/$prefix ;;
    restic) repo=s3:$PROXY_LAT/$S3_BUCKET/$prefix ;;
  esac
  rm -rf "$restore" "$RUN"/cache-*
  reset_src "$set"
  tool_cmds "$tool" "$set" "$repo" "$restore"
  "${INIT[@]}" > "$LOGS/$set-$tool-init.out" 2>&1 || die "$tool init on S3 failed (see $LOGS/$set-$tool-init.out)"
  s3_reset
  local fig
  for fig in first-backup nochange-backup; do
    measure "$set" "$tool" "$fig" "${BACKUP[@]}"
    s3_counts "$set" "$tool" "$fig"
    s3_size "$set" "$tool" "$fig" "$prefix"
  done
  measure "$set" "$tool" restore "${RESTORE_CMD[@]}"
  s3_counts "$set" "$tool" restore
  check_restore "$set" "$tool" "$restore"
  rm -rf "$restore"

  # Another machine: nothing of this machine's cache.
  STEP="s3lat/$tool/mount"
  export CAIRN_CACHE_DIR=$RUN/cache-fresh-cairn RESTIC_CACHE_DIR=$RUN/cache-fresh-restic
  rm -rf "$CAIRN_CACHE_DIR" "$RESTIC_CACHE_DIR"
  mkdir -p "$CAIRN_CACHE_DIR" "$RESTIC_CACHE_DIR"
  drop_caches
  s3_reset
  local t0=$EPOCHREALTIME secs
  mount_up "$set" "$tool" "$repo"
  secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
  record "$set" "$tool" mount time_s "$secs"
  s3_counts "$set" "$tool" mount
  record "$set" "$tool" mount daemon_rss_mb "$(($(daemon_hwm_kb "$MNT_PID") / 1024))"
  printf '  [%5ss] %-7s %-7s %-16s %8ss\n' "$((SECONDS - START))" "$set" "$tool" mount "$secs" >&2
  mount_op "$set" "$tool" mount-find "$MNT_PID" bash -c "$FIND_ALL" bash "$MNT_DIR"
  record_entries "$set" "$tool" mount-find
  mount_op "$set" "$tool" mount-read-cold "$MNT_PID" bash -c "$TAR_ALL" bash "$MNT_DIR"
  record "$set" "$tool" mount-read-cold tar_bytes "$(tail -n 1 "$LOGS/$set-$tool-mount-read-cold.out")"
  mount_down "$tool"
  rm -rf "$RUN/src/$set" "$RUN"/cache-fresh-*
  trim_run
  "$PY" "$HERE/s3.py" delete --endpoint "$S3_ENDPOINT" --bucket "$S3_BUCKET" --prefix "$prefix/" > /dev/null
}
