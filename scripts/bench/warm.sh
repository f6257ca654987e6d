# The warm figures (issue 16) of scripts/bench.sh, sourced by it, on the linux and small
# sets: the page cache holds the source (and the repository a backup just wrote), so that
# only the code counts. In the same run:
#   the machine   `tar cf - SRC | zstd -3 -T0 > /dev/null` (tar-zstd: what a backup cannot
#                 skip, reading and compressing every file on all cores) and `tar xf` of
#                 the source's tar + `sync` (tar-x-sync: what a restore cannot skip);
#   every tool    first-backup-warm, nochange-backup-warm, restore-warm (+ sync) into a
#                 fresh repository of its own;
#   cairn         the same three through the mount daemon (`cairn snapshot` and `cairn
#                 restore` with CAIRN_MOUNT, into another fresh repository), against
#                 the same work with --repo.

# warm_tree DIR: reads every file of DIR once (untimed), so that it is in the page cache
# (through a pipe: GNU tar writing to /dev/null itself reads no file content).
warm_tree() { tar cf - -C "$1" . | cat > /dev/null; }

# pipeline_limits SET: the machine's backup and restore limits on SET's files, warm.
pipeline_limits() {
  local set=$1 src=$RUN/src/$1 tarball=$RUN/limit-$1.tar out=$RUN/limit-$1-x
  STEP="$set/limits"
  reset_src "$set"
  warm_tree "$src"
  measure "$set" machine tar-zstd --warm sh -c 'tar cf - -C "$1" . | zstd -q -3 -T0 > /dev/null' sh "$src"
  tar cf "$tarball" -C "$src" .
  rm -rf "$out"; sync
  measure "$set" machine tar-x-sync --warm sh -c 'mkdir -p "$2" && tar xf "$1" -C "$2" && sync' sh "$tarball" "$out"
  rm -rf "$tarball" "$out" "$src"
  trim_run
}

# warm_restore SET TOOL FIGURE RESTORE CMD...: CMD then `sync`, timed warm, checked.
warm_restore() {
  local set=$1 tool=$2 figure=$3 restore=$4; shift 4
  rm -rf "$restore"; sync
  measure "$set" "$tool" "$figure" --warm sh -c '"$@" && sync' sh "$@"
  local want got
  want=$(tree_stats "$RUN/src/$set"); got=$(tree_stats "$restore")
  [ "$got" = "$want" ] || die "$tool $figure restored $got (files bytes) of $set, the source has $want"
  rm -rf "$restore"
}

run_warm() {  # run_warm SET TOOL
  local set=$1 tool=$2 repo=$RUN/repo-$2-$1-warm restore=$RUN/restore-$2-$1-warm src=$RUN/src/$1
  STEP="$set/$tool/warm"
  rm -rf "$repo" "$restore" "$RUN"/cache-* "$RUN/borg-base"
  reset_src "$set"
  tool_cmds "$tool" "$set" "$repo" "$restore"
  "${INIT[@]}" > "$LOGS/$set-$tool-init-warm.out" 2>&1 || die "$tool init failed"
  warm_tree "$src"; sync
  measure "$set" "$tool" first-backup-warm --warm "${BACKUP[@]}"
  measure "$set" "$tool" nochange-backup-warm --warm "${BACKUP[@]}"
  [ "$tool" != borg ] || RESTORE_CMD[-1]=$(borg_latest "$repo")
  warm_restore "$set" "$tool" restore-warm "$restore" "${RESTORE_CMD[@]}"
  rm -rf "$repo"
  [ "$tool" != cairn ] || daemon_warm "$set"
  rm -rf "$src"
  trim_run
}

# daemon_warm SET: cairn's warm figures through the mount daemon, into a fresh repository.
daemon_warm() {
  local set=$1 repo=$RUN/repo-cairn-$1-daemon mnt=$RUN/mnt-daemon-$1 restore=$RUN/restore-cairn-$1-daemon
  STEP="$set/cairn/daemon"
  rm -rf "$repo" "$RUN"/cache-*
  "$CAIRN" init "$repo" > "$LOGS/$set-cairn-init-daemon.out" 2>&1 || die "cairn init failed"
  mkdir -p "$mnt"
  "$CAIRN" mount "$repo" "$mnt" --background > "$LOGS/$set-cairn-mount-daemon.out" 2>&1 \
    || die "cairn mount failed"
  CAIRN_MOUNT=$mnt "$CAIRN" instance add "$set" --path "$RUN/src/$set" > "$LOGS/$set-cairn-instance-daemon.out" 2>&1 \
    || die "cairn instance add failed"
  warm_tree "$RUN/src/$set"; sync
  measure "$set" cairn daemon-first-backup-warm --warm env CAIRN_MOUNT="$mnt" "$CAIRN" snapshot "$set"
  measure "$set" cairn daemon-nochange-backup-warm --warm env CAIRN_MOUNT="$mnt" "$CAIRN" snapshot "$set"
  warm_restore "$set" cairn daemon-restore-warm "$restore" \
    env CAIRN_MOUNT="$mnt" "$CAIRN" restore "$set" latest --target "$restore"
  "$CAIRN" umount "$mnt" > "$LOGS/$set-cairn-umount-daemon.out" 2>&1 || die "cairn umount failed"
  rm -rf "$repo" "$mnt"
}
