# Shell helpers shared by scripts/test.sh and scripts/bench.sh (sourced, not run).
# The sourcing script defines `log` first.

# Lazily unmount every mount point under $1 (deepest first).
unmount_under() {
    local root=$1 mp
    [[ -n "$root" && -d "$root" ]] || return 0
    # /proc/self/mounts escapes spaces etc. as octal (\040); printf %b decodes them.
    while read -r mp; do
        mp=$(printf '%b' "$mp")
        log "unmounting $mp"
        fusermount3 -uz "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "could not unmount $mp"
    done < <(awk -v r="$root" 'index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r)
}

# stop_pid PID NAME: stop a server this script started (SIGTERM, then SIGKILL after 10 s).
stop_pid() {
    local pid=$1 what=$2 i
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$what (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# Whether something listens on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_weed_at PID PORT: stop a SeaweedFS this script started on PORT, and remove the
# sockets weed leaves in /tmp (whatever $TMPDIR says).
stop_weed_at() {
    stop_pid "$1" weed
    [[ -n "$1" ]] || return 0
    rm -f "/tmp/seaweedfs-s3-$2.sock" "/tmp/seaweedfs-s3-grpc-$(($2 + 10000)).sock"
}

# run_cleanup_on_exit FUNCTION: FUNCTION runs on every way out (it sees the exit status in
# $?); an interrupt exits 130, a TERM 143, so that FUNCTION still runs.
run_cleanup_on_exit() {
    # shellcheck disable=SC2064
    trap "$1" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
