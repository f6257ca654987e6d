# The mobility set (issue 15) of scripts/bench.sh, sourced by it, on the linux set's data
# (--quick: its slice). One cairn repository A with one point of the tree, then:
#   check       `cairn check mobility latest --against SRC` (checksums on), page cache warm,
#               against the machine's `find SRC -type f -print0 | xargs -0 b3sum`, warm too;
#   export      `cairn export mobility latest > /dev/null`, cold, against `restic dump` of
#               the same tree from a restic repository, cold;
#   copy        `cairn copy mobility --from A --to B` into `cairn init B --like A`, cold,
#               against the fresh backup that made A (cold too);
#   ecc5/ecc10  the same backup and restore into `cairn init --ecc 5` / `--ecc 10`: size and
#               speed against A (no parity).
# Every figure is checked: check must find no difference, the export and the dump must
# list as many files as the source has, B must verify, restores must match the source.

MOB=mobility

run_mobility() {
  local src=$RUN/src/$MOB a=$RUN/repo-cairn-$MOB b=$RUN/repo-cairn-$MOB-copy
  local r=$RUN/repo-restic-$MOB restore=$RUN/restore-cairn-$MOB files
  STEP="$MOB/setup"
  rm -rf "$a" "$b" "$r" "$restore" "$RUN"/cache-*
  reset_src "$MOB"
  files=$(find "$src" -type f | wc -l)
  export CAIRN_CACHE_DIR=$RUN/cache-cairn RESTIC_CACHE_DIR=$RUN/cache-restic

  if has "$TOOLS" cairn; then
    STEP="$MOB/cairn"
    "$CAIRN" init "$a" > "$LOGS/$MOB-cairn-init.out" 2>&1 || die "cairn init failed"
    measure "$MOB" cairn backup "$CAIRN" snapshot "$MOB" --repo "$a" --path "$src"
    record_size "$MOB" cairn backup "$a"
    measure "$MOB" cairn restore "$CAIRN" restore "$MOB" latest --repo "$a" --target "$restore"
    check_restore "$MOB" cairn "$restore"
    rm -rf "$restore"

    # check against itself, warm: the source is read once first (untimed), and b3sum over
    # the same files just before is the machine's figure.
    warm_tree "$src"
    measure "$MOB" machine b3sum --warm sh -c 'find "$1" -type f -print0 | xargs -0 b3sum > /dev/null' sh "$src"
    measure "$MOB" cairn check --warm "$CAIRN" check "$MOB" latest --repo "$a" --against "$src"

    measure "$MOB" cairn export sh -c '"$1" export "$2" latest --repo "$3" > /dev/null' sh "$CAIRN" "$MOB" "$a"
    local listed
    listed=$("$CAIRN" export "$MOB" latest --repo "$a" | tar tvf - | grep -c '^-') || true
    [ "$listed" = "$files" ] || die "cairn export listed $listed regular files, the source has $files"

    "$CAIRN" init "$b" --like "$a" > "$LOGS/$MOB-cairn-init-like.out" 2>&1 || die "cairn init --like failed"
    measure "$MOB" cairn copy "$CAIRN" copy "$MOB" --from "$a" --to "$b"
    record_size "$MOB" cairn copy "$b"
    "$CAIRN" verify --repo "$b" > "$LOGS/$MOB-cairn-copy-verify.out" 2>&1 || die "the copy does not verify"
    rm -rf "$b"

    local pct e
    for pct in 5 10; do
      e=$RUN/repo-cairn-$MOB-ecc$pct
      rm -rf "$e" "$RUN"/cache-*
      "$CAIRN" init "$e" --ecc "$pct" > "$LOGS/$MOB-cairn-init-ecc$pct.out" 2>&1 || die "cairn init --ecc $pct failed"
      measure "$MOB" cairn "ecc$pct-backup" "$CAIRN" snapshot "$MOB" --repo "$e" --path "$src"
      record_size "$MOB" cairn "ecc$pct-backup" "$e"
      measure "$MOB" cairn "ecc$pct-restore" "$CAIRN" restore "$MOB" latest --repo "$e" --target "$restore"
      check_restore "$MOB" cairn "$restore"
      rm -rf "$restore" "$e"
    done
    rm -rf "$a"
  fi

  if has "$TOOLS" restic; then
    STEP="$MOB/restic"
    restic init -q -r "$r" > "$LOGS/$MOB-restic-init.out" 2>&1 || die "restic init failed"
    restic backup -q -r "$r" "$src" > "$LOGS/$MOB-restic-backup.out" 2>&1 || die "restic backup failed"
    record_size "$MOB" restic backup "$r"
    measure "$MOB" restic export sh -c 'restic dump -q -r "$1" latest "$2" > /dev/null' sh "$r" "$src"
    local listed
    listed=$(restic dump -q -r "$r" latest "$src" | tar tvf - | grep -c '^-') || true
    [ "$listed" = "$files" ] || die "restic dump listed $listed regular files, the source has $files"
    rm -rf "$r"
  fi
  rm -rf "$src" "$RUN"/cache-*
  trim_run
}
