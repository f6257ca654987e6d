# The big-directory set (issue 14) of scripts/bench.sh, sourced by it: one directory of
# 100,000 small files (gen.py bigdir, fixed seed) backed up by each tool, then `ls -f` of
# it through a fresh mount, page cache dropped, against the same `ls -f` of its input on
# ext4 cold in the same run.

run_bigdir() {  # run_bigdir TOOL
  local tool=$1 set=bigdir repo=$RUN/repo-$1-bigdir
  STEP="bigdir/$tool"
  rm -rf "$repo" "$RUN"/cache-* "$RUN/borg-base"
  reset_src "$set"
  tool_cmds "$tool" "$set" "$repo" "$RUN/restore-$tool-$set"
  "${INIT[@]}" > "$LOGS/$set-$tool-init.out" 2>&1 || die "$tool init failed (see $LOGS/$set-$tool-init.out)"
  measure "$set" "$tool" first-backup "${BACKUP[@]}"
  record_size "$set" "$tool" first-backup "$repo"
  disk_baseline "$set" mount-ls "$LS_ALL" "$(set_orig "$set")/big"
  mount_up "$set" "$tool" "$repo"
  mount_op "$set" "$tool" mount-ls "$MNT_PID" bash -c "$LS_ALL" bash "$MNT_DIR/big"
  record_entries "$set" "$tool" mount-ls
  mount_down "$tool"
  rm -rf "$repo" "$RUN/src/$set"
  trim_run
}
