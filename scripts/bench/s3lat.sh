# The S3-latency set (issue 14) of scripts/bench.sh, sourced by it: cairn and restic on
# S3 behind a proxy that adds a round trip (--s3-rtt-ms, default 20 ms) to every request.
# First and no-change backup and a restore with the machine's own cache, then the point
# mounted as if on another machine (a fresh, empty cache directory): the mount until the
# point shows, `find` of it and a cold `tar`. Time and requests by kind for each figure,
# the stored size after each backup.

run_s3lat() {  # run_s3lat TOOL
  local tool=$1 set=s3lat prefix=$S3_PREFIX/lat-$1-r$ROUND fig
  s3_start "$set" "$tool" "$prefix" "$PROXY_LAT"
  for fig in first-backup nochange-backup; do
    s3_step "$set" "$tool" "$fig" "$prefix" "${BACKUP[@]}"
  done
  s3_step "$set" "$tool" restore "" "${RESTORE_CMD[@]}"
  check_restore "$set" "$tool" "$RUN/restore-$tool-$set"
  rm -rf "$RUN/restore-$tool-$set"

  # Another machine: nothing of this machine's cache.
  STEP="s3lat/$tool/mount"
  export CAIRN_CACHE_DIR=$RUN/cache-fresh-cairn RESTIC_CACHE_DIR=$RUN/cache-fresh-restic
  rm -rf "$CAIRN_CACHE_DIR" "$RESTIC_CACHE_DIR"
  mkdir -p "$CAIRN_CACHE_DIR" "$RESTIC_CACHE_DIR"
  drop_caches
  s3_reset
  local t0=$EPOCHREALTIME secs
  mount_up "$set" "$tool" "$S3_REPO"
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
