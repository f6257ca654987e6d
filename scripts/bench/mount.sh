# The mounts of scripts/bench.sh, sourced by it: each tool's FUSE mount of a set's latest
# point, the daemon serving it found and watched (peak and current RSS, CPU, bytes served,
# and cairn's own counts from `.cairn/stats`), and the operations timed over it.

# The process serving the FUSE mount at $1: it holds /dev/fuse open and names $1 on its
# command line. $2 is the PID the tool gave (or the one we started); it must be it.
fuse_daemon() {
  local mnt=$1 hint=$2 p pid cands=()
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    { tr '\0' '\n' < "$p/cmdline"; } 2>/dev/null | grep -qxF -- "$mnt" || continue
    [ "$(readlink "$p/exe" 2>/dev/null)" != /usr/bin/fusermount3 ] || continue
    if find "$p/fd" -maxdepth 1 -lname /dev/fuse 2>/dev/null | grep -q .; then
      cands+=("$pid")
    fi
  done
  for p in "${cands[@]}"; do
    if [ "$p" = "$hint" ]; then echo "$p"; return 0; fi
  done
  if [ ${#cands[@]} = 1 ]; then echo "${cands[0]}"; return 0; fi
  die "cannot tell which process serves $mnt (tool said $hint; /dev/fuse holders: ${cands[*]:-none})"
}

daemon_hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
daemon_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
daemon_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
daemon_wchar() { awk '/^wchar:/ { print $2 }' "/proc/$1/io"; }

# cairn_fuse MNT: prints "KEY VALUE" lines of the "fuse" object of MNT/.cairn/stats
# (inodes, listings, open_handles, requests_total, req_KIND), nothing if it has none.
cairn_fuse() {
  "$PY" -c '
import json, sys
try:
    f = json.load(open(sys.argv[1])).get("fuse")
except (OSError, ValueError):
    f = None
if isinstance(f, dict):
    for k, v in f.items():
        if k == "requests" and isinstance(v, dict):
            for kind, n in v.items():
                print("req_" + kind, n)
        elif isinstance(v, (int, float)):
            print(k, v)
' "$1/.cairn/stats"
}

# fuse_record SET FIGURE MNT PREFIX [BEFORE]: records cairn's fuse counts as PREFIXKEY;
# with BEFORE (an earlier cairn_fuse output), the request counts' growth since then.
fuse_record() {
  local set=$1 figure=$2 mnt=$3 prefix=$4 before=${5:-} key val old
  while read -r key val; do
    if [[ -n "$before" && $key == req* ]]; then
      old=$(awk -v k="$key" '$1 == k { print $2 }' <<< "$before")
      val=$((val - ${old:-0}))
    fi
    record "$set" cairn "$figure" "$prefix$key" "$val"
  done < <(cairn_fuse "$mnt")
}

# mount_op SET TOOL FIGURE PID CMD...: measure, plus the daemon's peak RSS (VmHWM, reset
# before the operation through clear_refs), CPU seconds and MB written (its replies to the
# kernel: file data it served, not the page cache) during it, and on the S3-latency set
# the requests it made.
DAEMON_PEAK=0
mount_op() {
  local set=$1 tool=$2 figure=$3 pid=$4; shift 4
  echo 5 > "/proc/$pid/clear_refs"
  local t0 t1 w0 w1 hwm
  t0=$(daemon_ticks "$pid"); w0=$(daemon_wchar "$pid")
  [ "$set" != s3lat ] || s3_reset
  measure "$set" "$tool" "$figure" "$@"
  [ "$set" != s3lat ] || s3_counts "$set" "$tool" "$figure"
  kill -0 "$pid" 2>/dev/null || die "the $tool mount daemon (pid $pid) died during $figure"
  t1=$(daemon_ticks "$pid"); w1=$(daemon_wchar "$pid"); hwm=$(daemon_hwm_kb "$pid")
  record "$set" "$tool" "$figure" daemon_out_mb "$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", (b - a) / 1048576 }')"
  record "$set" "$tool" "$figure" daemon_rss_mb "$((hwm / 1024))"
  record "$set" "$tool" "$figure" daemon_cpu_s "$(awk -v a="$t0" -v b="$t1" -v h="$CLK_TCK" 'BEGIN { print (b - a) / h }')"
  ((hwm > DAEMON_PEAK)) && DAEMON_PEAK=$hwm
  return 0
}

# What is run over the mounted point (any error of find, ls or tar fails the figure).
# shellcheck disable=SC2016 # expanded by the inner shell
FIND_ALL='set -o pipefail; find "$1/" | wc -l'
# shellcheck disable=SC2016
TAR_ALL='set -o pipefail; cd "$1" && tar cf - . | wc -c'
# shellcheck disable=SC2016
LS_ALL='set -o pipefail; ls -f "$1" | wc -l'
declare -A SRC_TAR=() BIGGEST=() DISK_DONE=()

# record_entries SET TOOL FIGURE: the count the figure's `find` or `ls` printed.
record_entries() {
  record "$1" "$2" "$3" entries "$(tail -n 1 "$LOGS/$1-$2-$3.out")"
}

# mount_up SET TOOL REPO: mounts the latest point of REPO at RUN/mnt-TOOL-SET and waits
# until the point's directory shows; sets MNT, MNT_DIR (the point), MNT_HINT (the PID the
# tool gave) and MNT_PID (the daemon serving it).
mount_up() {
  local set=$1 tool=$2 repo=$3 src=$RUN/src/$1
  MNT=$RUN/mnt-$2-$1
  mkdir -p "$MNT"
  case $tool in
    cairn)
      "$CAIRN" mount "$repo" "$MNT" --background --json > "$LOGS/$set-$tool-mount.json" \
        || die "cairn mount failed"
      MNT_HINT=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])' < "$LOGS/$set-$tool-mount.json")
      MNT_DIR=$MNT/$set/latest ;;
    restic)
      restic mount -r "$repo" "$MNT" > "$LOGS/$set-$tool-mount.log" 2>&1 &
      MNT_HINT=$!
      MNT_DIR=$MNT/snapshots/latest$src ;;
    borg)
      borg mount -f "$(borg_latest "$repo")" "$MNT" > "$LOGS/$set-$tool-mount.log" 2>&1 &
      MNT_HINT=$!
      MNT_DIR=$MNT$src ;;
  esac
  DAEMON_PIDS+=("$MNT_HINT")
  local waited=0
  until [ -d "$MNT_DIR" ]; do
    kill -0 "$MNT_HINT" 2>/dev/null || die "the $tool mount exited (see $LOGS/$set-$tool-mount.*)"
    sleep 0.05; waited=$((waited + 1))
    [ $waited -lt 1200 ] || die "$tool's mount never showed $MNT_DIR"
  done
  MNT_PID=$(fuse_daemon "$MNT" "$MNT_HINT")
  DAEMON_PEAK=$(daemon_hwm_kb "$MNT_PID")
}

# mount_down TOOL: unmounts what mount_up mounted and waits for its daemon to end.
mount_down() {
  local tool=$1 i
  case $tool in
    cairn) "$CAIRN" umount "$MNT" > /dev/null || die "cairn umount failed" ;;
    *) fusermount3 -u "$MNT" 2>/dev/null || { sleep 1; fusermount3 -u "$MNT"; } || die "cannot unmount $MNT" ;;
  esac
  for ((i = 0; i < 150; i++)); do kill -0 "$MNT_PID" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$MNT_PID" 2>/dev/null && die "the $tool mount daemon (pid $MNT_PID) is still running 30 s after unmounting"
  [ "$tool" = cairn ] || wait "$MNT_HINT" 2>/dev/null || true
  DAEMON_PIDS=()
}

# disk_baseline SET FIGURE SCRIPT DIR: the same operation, cold, on the set's input in
# WORK/data, on the disk's own ext4 (the run's loop-mounted ext4 reads scattered metadata
# 4-20x slower), once per set and round (tool "ext4"). It has the point's entries; its
# files lack the change's appended lines.
disk_baseline() {
  [ -z "${DISK_DONE[$1/$2/$ROUND]:-}" ] || return 0
  measure "$1" ext4 "$2" bash -c "$3" bash "$4"
  [ "$2" = mount-read-cold ] || record_entries "$1" ext4 "$2"
  DISK_DONE[$1/$2/$ROUND]=1
}

# memory_after_find SET TOOL: the daemon's RSS now, then after the kernel drops its caches
# (and with them what the daemon's inodes hold), and cairn's inode counts around it.
memory_after_find() {
  local set=$1 tool=$2
  record "$set" "$tool" mount-find daemon_vmrss_mb "$(($(daemon_rss_kb "$MNT_PID") / 1024))"
  [ "$tool" != cairn ] || fuse_record "$set" mount-find "$MNT" fuse_
  drop_caches; sleep 2
  record "$set" "$tool" drop-caches daemon_vmrss_mb "$(($(daemon_rss_kb "$MNT_PID") / 1024))"
  [ "$tool" != cairn ] || fuse_record "$set" drop-caches "$MNT" fuse_
}

bench_mount() {
  local set=$1 tool=$2 repo=$3 src=$RUN/src/$1
  if [ "$set" != sqlite ]; then  # (its input is a file, not a directory)
    disk_baseline "$set" mount-find "$FIND_ALL" "$(set_orig "$set")"
    disk_baseline "$set" mount-read-cold "$TAR_ALL" "$(set_orig "$set")"
  fi
  mount_up "$set" "$tool" "$repo"
  local pid=$MNT_PID dir=$MNT_DIR before=""
  record "$set" "$tool" mount-idle daemon_vmrss_mb "$(($(daemon_rss_kb "$pid") / 1024))"
  [ -n "${BIGGEST[$set]:-}" ] \
    || BIGGEST[$set]=$(cd "$src" && find . -type f -printf '%s %P\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
  mount_op "$set" "$tool" mount-first-byte "$pid" head -c 1 "$dir/${BIGGEST[$set]}"
  mount_op "$set" "$tool" mount-find "$pid" bash -c "$FIND_ALL" bash "$dir"
  record_entries "$set" "$tool" mount-find
  memory_after_find "$set" "$tool"
  [ "$tool" != cairn ] || before=$(cairn_fuse "$MNT")
  mount_op "$set" "$tool" mount-read-cold "$pid" bash -c "$TAR_ALL" bash "$dir"
  [ -z "$before" ] || fuse_record "$set" mount-read-cold "$MNT" fuse_ "$before"
  local bytes; bytes=$(tail -n 1 "$LOGS/$set-$tool-mount-read-cold.out")
  record "$set" "$tool" mount-read-cold tar_bytes "$bytes"
  # The size of the same tar of the source (the same for every tool: once per set; GNU tar
  # writing to /dev/null counts the bytes without reading the files).
  [ -n "${SRC_TAR[$set]:-}" ] || SRC_TAR[$set]=$(cd "$src" && tar --totals -cf /dev/null . 2>&1 \
    | awk '/^Total bytes written:/ { print $4 }')
  [ "$bytes" = "${SRC_TAR[$set]}" ] \
    || log "WARNING: $tool's mount gave a $bytes-byte tar of $set, the source ${SRC_TAR[$set]}"
  if [ "$set" != small1x ]; then
    mount_op "$set" "$tool" mount-read-warm "$pid" --warm bash -c "$TAR_ALL" bash "$dir"
  fi
  record "$set" "$tool" mount-daemon daemon_rss_mb "$((DAEMON_PEAK / 1024))"
  mount_down "$tool"
}
