# The pitr set of scripts/bench.sh (issue 13), sourced by it: log archiving and
# point-in-time restore, cairn alone (restic and borg archive no logs and cannot restore
# to a second). Two repositories, each served by a mount of its own:
#   logs     RPO (a line written to a log that an instance archives every second, then
#            `cairn points X --json` polled until its restorable range covers that
#            write's second), idle passes (the daemon's CPU and the objects written while
#            it passes over files that do not change), and a pass with 1 MiB new;
#   restore  a base point (the SQLite set's database) plus as many bytes of logs (the dump
#            set's SQL dump appended to a log in 4 passes): `cairn restore --at` a second
#            after the last write, against a plain restore of the same bytes as one point
#            in the same run; then `cat` of the base file under the mount's `@TIME/`
#            against the same file under `latest/`.
# Figures go to RESULTS as set `pitr`, tool `cairn`; report.py's pitr_report prints them.

PITR_RPO_SAMPLES=10
PITR_PID=""

# pitr_mount REPO MNT: mounts REPO at MNT in the background; PITR_PID is the daemon.
pitr_mount() {
  local repo=$1 mnt=$2 name pid
  name=$(basename "$mnt")
  mkdir -p "$mnt"
  "$CAIRN" mount "$repo" "$mnt" --background --json > "$LOGS/$name.json" || die "cairn mount failed"
  pid=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])' < "$LOGS/$name.json")
  DAEMON_PIDS+=("$pid")
  PITR_PID=$(fuse_daemon "$mnt" "$pid")
}

pitr_umount() {  # pitr_umount MNT
  "$CAIRN" umount "$1" > /dev/null || die "cairn umount failed"
  local i
  for ((i = 0; i < 150; i++)); do kill -0 "$PITR_PID" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$PITR_PID" 2>/dev/null && die "the pitr mount daemon (pid $PITR_PID) still runs 30 s after unmounting"
  DAEMON_PIDS=()
}

# pitr_latest INSTANCE MNT: the latest restorable second of INSTANCE (epoch seconds; -1
# while it has no range).
pitr_latest() {
  local t
  t=$("$CAIRN" points "$1" --mount "$2" --json | grep -o '"latest":"[^"]*"' | cut -d'"' -f4) || true
  if [ -n "$t" ]; then date -ud "$t" +%s; else echo -1; fi
}

# CPU ns of PID's threads (their schedstat: exact, but a thread that exited is not counted;
# utime+stime of /proc/PID/stat count it, in whole clock ticks).
daemon_task_ns() {
  cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'
}

thread_ns() {  # thread_ns PID NAME: CPU ns of PID's threads named NAME (their comm)
  local t
  for t in "/proc/$1"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" != "$2" ] || cat "$t/schedstat" 2>/dev/null
  done | awk '{ s += $1 } END { printf "%d", s }'
}

objects_since() {  # objects_since DIR MARKER: files under DIR written after MARKER
  find "$1" -type f -newer "$2" 2>/dev/null | wc -l
}

# Delay from a write to its second being restorable, PITR_RPO_SAMPLES times.
pitr_rpo() {
  local mnt=$1 src=$RUN/src/pitr-rpo i t0 t1 s waited delays=()
  mkdir -p "$src"; echo "start" > "$src/app.log"
  "$CAIRN" instance add rpo --mount "$mnt" --path "$src" --log "$src/app.log" --log-every 1 > /dev/null \
    || die "cairn instance add rpo failed"
  "$CAIRN" snapshot rpo --mount "$mnt" > "$LOGS/pitr-rpo-snapshot.out" || die "cairn snapshot rpo failed"
  for ((i = 1; i <= PITR_RPO_SAMPLES; i++)); do
    sleep "0.$(printf %03d $((RANDOM % 1000)))"  # writes at every phase of the daemon's second
    t0=$EPOCHREALTIME
    echo "$t0 write $i" >> "$src/app.log"
    s=${t0%.*}
    waited=0
    until (($(pitr_latest rpo "$mnt") >= s)); do
      sleep 0.02; waited=$((waited + 1))
      ((waited < 1500)) || die "the write at $t0 was not restorable after 30 s"
    done
    t1=$EPOCHREALTIME
    delays+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
  done
  log "pitr: RPO delays ${delays[*]} s"
  printf '%s\n' "${delays[@]}" | sort -n | awk '{ d[NR] = $1 } END {
    m = NR % 2 ? d[(NR + 1) / 2] : (d[NR / 2] + d[NR / 2 + 1]) / 2
    printf "%.3f %.3f\n", m, d[NR] }' | {
    read -r median max
    record pitr cairn rpo delay_median_s "$median"
    record pitr cairn rpo delay_max_s "$max"
    record pitr cairn rpo samples "$PITR_RPO_SAMPLES"
  }
}

# Idle passes over 4 unchanging files, then a pass with 1 MiB new.
pitr_idle() {
  local repo=$1 mnt=$2 src=$RUN/src/pitr-idle secs=$3 f marker=$RUN/pitr-marker c0 c1 ns0 ns1 a0 a1 l0 l1 n0 waited passes
  mkdir -p "$src"
  for f in a b c d; do head -c 65536 /dev/urandom > "$src/$f.log"; done
  "$CAIRN" instance add idle --mount "$mnt" --path "$src" --log "$src/*.log" --log-every 1 > /dev/null \
    || die "cairn instance add idle failed"
  "$CAIRN" log archive idle --mount "$mnt" > "$LOGS/pitr-idle-first.out" || die "cairn log archive idle failed"
  # A point, so that the restorable range's latest second tells that the passes ran.
  "$CAIRN" snapshot idle --mount "$mnt" > "$LOGS/pitr-idle-snapshot.out" || die "cairn snapshot idle failed"
  sleep 2
  touch "$marker"
  l0=$(pitr_latest idle "$mnt")
  c0=$(daemon_ticks "$PITR_PID"); ns0=$(daemon_task_ns "$PITR_PID"); a0=$(thread_ns "$PITR_PID" cairn-logs)
  sleep "$secs"
  c1=$(daemon_ticks "$PITR_PID"); ns1=$(daemon_task_ns "$PITR_PID"); a1=$(thread_ns "$PITR_PID" cairn-logs)
  l1=$(pitr_latest idle "$mnt")
  # One pass a second: the seconds the latest restorable second moved by.
  passes=$((l1 - l0))
  ((passes > 0)) || die "no archive pass of the idle instance ran in $secs s"
  record pitr cairn idle-passes seconds "$secs"
  record pitr cairn idle-passes passes "$passes"
  record pitr cairn idle-passes cpu_ticks "$((c1 - c0))"
  record pitr cairn idle-passes cpu_s "$(awk -v a="$c0" -v b="$c1" -v h="$CLK_TCK" 'BEGIN { print (b - a) / h }')"
  # utime+stime count whole ticks: the figure and one tick's worth, per 1,000 passes.
  record pitr cairn idle-passes cpu_per_1000_s \
    "$(awk -v a="$c0" -v b="$c1" -v h="$CLK_TCK" -v n="$passes" 'BEGIN { printf "%.3f", (b - a) / h / n * 1000 }')"
  record pitr cairn idle-passes threads_cpu_per_1000_s \
    "$(awk -v a="$ns0" -v b="$ns1" -v n="$passes" 'BEGIN { printf "%.3f", (b - a) / 1e9 / n * 1000 }')"
  record pitr cairn idle-passes archiver_cpu_per_1000_s \
    "$(awk -v a="$a0" -v b="$a1" -v n="$passes" 'BEGIN { printf "%.3f", (b - a) / 1e9 / n * 1000 }')"
  record pitr cairn idle-passes tick_per_1000_s \
    "$(awk -v h="$CLK_TCK" -v n="$passes" 'BEGIN { printf "%.3f", 1 / h / n * 1000 }')"
  record pitr cairn idle-passes log_objects "$(objects_since "$repo/logs" "$marker")"
  record pitr cairn idle-passes repo_objects "$(objects_since "$repo" "$marker")"
  find "$repo" -type f -newer "$marker" > "$LOGS/pitr-idle-written.txt"
  # One write of 1 MiB (random: it does not compress), archived by the daemon's next pass.
  touch "$marker"
  n0=$(find "$repo/logs" -type f | wc -l)
  dd if=/dev/urandom of="$src/a.log" bs=1M count=1 iflag=fullblock oflag=append conv=notrunc status=none
  waited=0
  until (($(find "$repo/logs" -type f | wc -l) > n0)); do
    sleep 0.1; waited=$((waited + 1))
    ((waited < 100)) || die "no pass stored the 1 MiB appended to $src/a.log within 10 s"
  done
  sleep 3  # the passes after it find nothing new
  record pitr cairn mib-pass repo_objects "$(objects_since "$repo" "$marker")"
  record pitr cairn mib-pass log_objects "$(objects_since "$repo/logs" "$marker")"
  find "$repo" -type f -newer "$marker" > "$LOGS/pitr-mib-written.txt"
}

# A base point plus its size again in logs: restore at a time vs a plain restore.
pitr_restore() {
  local mnt=$1 src=$RUN/src/pitr q i tw at want got
  rm -rf "$src"; mkdir -p "$src"
  cp "$DB/orig.db" "$src/base.db"; : > "$src/wal.log"
  record pitr source data base_bytes "$(stat -c %s "$src/base.db")"
  record pitr source data log_bytes "$(stat -c %s "$DUMP")"
  # A period the daemon never reaches in the run: every pass is the `log archive` below.
  "$CAIRN" instance add pitr --mount "$mnt" --path "$src" --log "$src/wal.log" --log-every 86400 > /dev/null \
    || die "cairn instance add pitr failed"
  measure pitr cairn base-backup "$CAIRN" snapshot pitr --mount "$mnt"
  q=$((DB_MIB / 4))
  for ((i = 0; i < 4; i++)); do
    dd if="$DUMP" of="$src/wal.log" bs=1M skip=$((i * q)) count=$q oflag=append conv=notrunc status=none
    tw=$EPOCHREALTIME
    measure pitr cairn log-pass --warm "$CAIRN" log archive pitr --mount "$mnt"
  done
  record pitr cairn log-pass pass_bytes "$((q << 20))"
  at=$((${tw%.*} + 1))
  until (($(pitr_latest pitr "$mnt") >= at)); do
    sleep 0.3
    "$CAIRN" log archive pitr --mount "$mnt" > /dev/null || die "cairn log archive pitr failed"
  done
  PITR_AT=$(date -ud "@$at" +%Y-%m-%dT%H:%M:%SZ)
  PITR_AT_DIR=@$(date -ud "@$at" +%Y-%m-%dT%H%M%SZ)
  want=$(tree_stats "$src")
  measure pitr cairn restore-at "$CAIRN" restore pitr --at "$PITR_AT" --target "$RUN/restore-pitr" --mount "$mnt"
  got=$(tree_stats "$RUN/restore-pitr")
  [ "$got" = "$want" ] || die "the restore at $PITR_AT gave $got (files bytes), the source has $want"
  cmp -s "$src/wal.log" "$RUN/restore-pitr/wal.log" || die "the restore at $PITR_AT has another wal.log"
  rm -rf "$RUN/restore-pitr"
  "$CAIRN" instance add whole --mount "$mnt" --path "$src" > /dev/null || die "cairn instance add whole failed"
  measure pitr cairn whole-backup "$CAIRN" snapshot whole --mount "$mnt"
  measure pitr cairn restore-plain "$CAIRN" restore whole latest --target "$RUN/restore-pitr" --mount "$mnt"
  got=$(tree_stats "$RUN/restore-pitr")
  [ "$got" = "$want" ] || die "the plain restore gave $got (files bytes), the source has $want"
  rm -rf "$RUN/restore-pitr"
}

# `cat` of the base file under @TIME/ (first: any cache of the daemon favours latest/).
pitr_cat() {
  local mnt=$1 at=$mnt/pitr/$PITR_AT_DIR t0
  drop_caches
  t0=$EPOCHREALTIME
  if ! stat "$at" > "$LOGS/pitr-at-stat.out" 2> "$LOGS/pitr-at-stat.err"; then
    log "pitr: $at is not there ($(head -c 200 "$LOGS/pitr-at-stat.err")): @TIME not measured"
    record pitr cairn cat-at unavailable 1
    return 0
  fi
  record pitr cairn at-lookup time_s "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')"
  # shellcheck disable=SC2016 # expanded by the inner shell
  mount_op pitr cairn cat-at "$PITR_PID" sh -c 'cat "$1" > /dev/null' sh "$at/base.db"
  # shellcheck disable=SC2016
  mount_op pitr cairn cat-latest "$PITR_PID" sh -c 'cat "$1" > /dev/null' sh "$mnt/pitr/latest/base.db"
}

run_pitr() {
  local repo=$RUN/repo-cairn-pitr mnt=$RUN/mnt-cairn-pitr idle=60
  [ $QUICK = 0 ] || idle=10
  rm -rf "$repo" "$RUN"/cache-*
  tool_cmds cairn pitr "$repo" "$RUN/restore-pitr"
  STEP=pitr/logs
  "${INIT[@]}" > "$LOGS/pitr-init.out" 2>&1 || die "cairn init failed (see $LOGS/pitr-init.out)"
  pitr_mount "$repo" "$mnt"
  pitr_idle "$repo" "$mnt" "$idle"
  pitr_rpo "$mnt"
  pitr_umount "$mnt"
  rm -rf "$repo" "$RUN"/cache-* "$RUN"/src/pitr-*
  STEP=pitr/restore
  "${INIT[@]}" > "$LOGS/pitr-init.out" 2>&1 || die "cairn init failed (see $LOGS/pitr-init.out)"
  pitr_mount "$repo" "$mnt"
  pitr_restore "$mnt"
  STEP=pitr/cat
  pitr_cat "$mnt"
  pitr_umount "$mnt"
  rm -rf "$repo" "$RUN/src/pitr"
  trim_run
}
