#!/usr/bin/env bash
# Side-by-side benchmark: cairn, restic and borg on the same data, the same machine, the
# same run. Prints medians per figure and the ratio cairn / faster peer.
#
#   scripts/bench.sh [--quick] [--rounds N] [--work DIR]
#
# Caches: before every timed step the page cache is dropped (sync; echo 3 >
# /proc/sys/vm/drop_caches), for every tool alike. Each tool keeps its own local metadata
# cache between its backups of one round (restic's cache, borg's chunks cache, cairn's
# catalog), as a user's machine would; every round starts from fresh repositories and
# fresh caches.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
ROUNDS=3
WORK=${BENCH_WORK:-/var/tmp/cairn-bench}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; ROUNDS=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --work) WORK=$2; shift ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

need_apt=()
command -v restic >/dev/null || need_apt+=(restic)
command -v borg >/dev/null || need_apt+=(borgbackup)
[ -x /usr/bin/time ] || need_apt+=(time)
[ -f /usr/src/linux-source-6.1.tar.xz ] || need_apt+=(linux-source-6.1)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "building cairn (release)" >&2
(cd "$ROOT" && cargo build --release -q -p cairn-cli)
CAIRN=${CARGO_TARGET_DIR:-$ROOT/target}/release/cairn

mkdir -p "$WORK"
DATA=$WORK/linux
if [ ! -d "$DATA/linux-source-6.1" ]; then
  echo "extracting linux-source-6.1" >&2
  mkdir -p "$DATA" && tar xf /usr/src/linux-source-6.1.tar.xz -C "$DATA"
fi
SRC_ORIG=$DATA/linux-source-6.1
if [ $QUICK = 1 ]; then
  # A quarter of the tree keeps --quick under 5 minutes.
  SRC_ORIG=$WORK/linux-quick
  if [ ! -d "$SRC_ORIG" ]; then
    mkdir -p "$SRC_ORIG"
    for d in drivers/net fs kernel mm net/ipv4 include/linux; do
      mkdir -p "$SRC_ORIG/$(dirname $d)"
      cp -a "$DATA/linux-source-6.1/$d" "$SRC_ORIG/$d"
    done
  fi
fi
SRC=$WORK/src
RESULTS=$WORK/results.tsv
: > "$RESULTS"

export CAIRN_PASSWORD=bench-password RESTIC_PASSWORD=bench-password BORG_PASSPHRASE=
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

# measure TOOL FIGURE CMD...: runs CMD with caches dropped, records seconds and peak RSS.
measure() {
  local tool=$1 figure=$2; shift 2
  drop_caches
  local out
  out=$(mktemp)
  if ! /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null 2>"$WORK/last.err"; then
    echo "FAILED: $tool $figure: $*" >&2; cat "$WORK/last.err" >&2; exit 1
  fi
  read -r secs rss < "$out"; rm -f "$out"
  printf '%s\t%s\ttime_s\t%s\n' "$tool" "$figure" "$secs" >> "$RESULTS"
  printf '%s\t%s\trss_mb\t%s\n' "$tool" "$figure" "$((rss / 1024))" >> "$RESULTS"
  printf '  %-7s %-16s %8ss %6s MiB\n' "$tool" "$figure" "$secs" "$((rss / 1024))" >&2
}

record_size() {
  local tool=$1 figure=$2 dir=$3
  printf '%s\t%s\tsize_mb\t%s\n' "$tool" "$figure" "$(du -sm "$dir" | cut -f1)" >> "$RESULTS"
}

# Deterministically change ~2% of the files: every 50th file (sorted) gets bytes appended.
change_two_percent() {
  (cd "$SRC" && find . -type f | LC_ALL=C sort | awk 'NR % 50 == 0' | while read -r f; do
    printf 'cairn-bench change %s\n' "$f" >> "$f"; done)
}

reset_src() { rm -rf "$SRC"; cp -a "$SRC_ORIG" "$SRC"; }

run_tool() {
  local tool=$1 repo=$WORK/repo-$1 restore=$WORK/restore-$1
  rm -rf "$repo" "$restore" "$WORK/cache-$tool"
  reset_src
  case $tool in
    cairn)
      export CAIRN_CACHE_DIR=$WORK/cache-cairn
      "$CAIRN" init "$repo" >/dev/null
      local backup=("$CAIRN" snapshot bench --repo "$repo" --path "$SRC")
      local restore_cmd=("$CAIRN" restore bench latest --repo "$repo" --target "$restore") ;;
    restic)
      export RESTIC_CACHE_DIR=$WORK/cache-restic
      restic init -q -r "$repo" >/dev/null
      local backup=(restic backup -q -r "$repo" "$SRC")
      local restore_cmd=(restic restore -q -r "$repo" latest --target "$restore") ;;
    borg)
      export BORG_CACHE_DIR=$WORK/cache-borg BORG_BASE_DIR=$WORK/borg-base
      borg init -e none "$repo" >/dev/null
      local backup=(borg create "$repo::{now:%Y-%m-%dT%H:%M:%S.%f}" "$SRC")
      # shellcheck disable=SC2016 # expanded by the inner shell
      local restore_cmd=(sh -c 'mkdir -p "$1" && cd "$1" && borg extract "$2::$(borg list --last 1 --short "$2")"' sh "$restore" "$repo") ;;
  esac
  measure "$tool" first-backup "${backup[@]}"
  record_size "$tool" first-backup "$repo"
  measure "$tool" nochange-backup "${backup[@]}"
  record_size "$tool" nochange-backup "$repo"
  change_two_percent
  measure "$tool" changed-backup "${backup[@]}"
  record_size "$tool" changed-backup "$repo"
  measure "$tool" restore "${restore_cmd[@]}"
  rm -rf "$restore"
  bench_mount "$tool" "$repo"
}

# The mount: find over the point, reading every file (cold, then warm from the kernel's
# page cache), first byte of the largest file. Each tool's own FUSE mount, same data.
bench_mount() {
  local tool=$1 repo=$2 mnt=$WORK/mnt-$1 pid="" dir
  mkdir -p "$mnt"
  case $tool in
    cairn)
      "$CAIRN" mount "$repo" "$mnt" --background >/dev/null
      dir=$mnt/bench/latest ;;
    restic)
      restic mount -q -r "$repo" "$mnt" >/dev/null 2>&1 &
      pid=$!
      dir=$mnt/snapshots/latest$SRC ;;
    borg)
      borg mount "$repo::$(borg list --last 1 --short "$repo")" "$mnt"
      dir=$mnt${SRC} ;;
  esac
  local waited=0
  until [ -d "$dir" ]; do
    sleep 0.5; waited=$((waited + 1))
    [ $waited -lt 120 ] || { echo "FAILED: $tool mount never showed $dir" >&2; exit 1; }
  done
  measure "$tool" mount-find sh -c "find '$dir/' | wc -l"
  measure "$tool" mount-read-cold sh -c "cd '$dir' && tar cf - . | wc -c"
  measure_warm "$tool" mount-read-warm sh -c "cd '$dir' && tar cf - . | wc -c"
  measure "$tool" mount-first-byte head -c1 "$dir/$BIGGEST"
  case $tool in
    cairn) "$CAIRN" umount "$mnt" ;;
    *) fusermount3 -u "$mnt" || fusermount3 -uz "$mnt" ;;
  esac
  [ -z "$pid" ] || wait "$pid" 2>/dev/null || true
}

measure_warm() {
  local tool=$1 figure=$2; shift 2
  local out; out=$(mktemp)
  /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }
  read -r secs rss < "$out"; rm -f "$out"
  printf '%s\t%s\ttime_s\t%s\n' "$tool" "$figure" "$secs" >> "$RESULTS"
  printf '  %-7s %-16s %8ss\n' "$tool" "$figure" "$secs" >&2
}

BIGGEST=$(cd "$SRC_ORIG" && find . -type f -printf '%s %P\n' | sort -n | tail -1 | cut -d' ' -f2-)
echo "data: $SRC_ORIG ($(find "$SRC_ORIG" -type f | wc -l) files, $(du -sm "$SRC_ORIG" | cut -f1) MiB); rounds: $ROUNDS" >&2
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" >&2
  for tool in cairn restic borg; do run_tool "$tool"; done
done

python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, fig, metric, val = line.rstrip("\n").split("\t")
    rows[(fig, metric, tool)].append(float(val))
figs = ["first-backup", "nochange-backup", "changed-backup", "restore",
        "mount-find", "mount-read-cold", "mount-read-warm", "mount-first-byte"]
print(f"{'figure':<17}{'metric':<9}{'cairn':>10}{'restic':>10}{'borg':>10}{'cairn/best peer':>17}")
for fig in figs:
    for metric in ["time_s", "rss_mb", "size_mb"]:
        vals = {t: statistics.median(rows[(fig, metric, t)]) for t in ["cairn", "restic", "borg"] if rows.get((fig, metric, t))}
        if len(vals) < 3:
            continue
        best = min(vals["restic"], vals["borg"])
        ratio = vals["cairn"] / best if best else float("nan")
        print(f"{fig:<17}{metric:<9}{vals['cairn']:>10.2f}{vals['restic']:>10.2f}{vals['borg']:>10.2f}{ratio:>16.2f}x")
PY
rm -rf "$WORK/src" "$WORK"/repo-* "$WORK"/restore-* "$WORK"/cache-* "$WORK/borg-base" "$WORK"/mnt-*
