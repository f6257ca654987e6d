# The S3 set of scripts/bench.sh, sourced by it: a SeaweedFS to back up to (the one the
# CAIRN_TEST_S3_* variables name if it answers, else a private `weed mini` stopped at exit),
# counting proxies in front of it (one as is, one adding a round trip, for s3lat.sh), and
# each tool's backups to and restore from it, with the requests and the stored size per
# figure.

S3_KEY=${CAIRN_TEST_S3_KEY:-}
S3_SECRET=${CAIRN_TEST_S3_SECRET:-}
S3_ENDPOINT=${CAIRN_TEST_S3_ENDPOINT:-}
S3_BUCKET=${CAIRN_TEST_S3_BUCKET:-cairn-bench}
WEED_FIXED_PORTS=(9333 19333 9340 19340 8888 18888 8181 9101 23646 33646)

s3_probe() {
  AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET \
    "$PY" "$HERE/s3.py" probe --endpoint "$1" --bucket "$S3_BUCKET"
}

# s3_proxy VAR DELAY_MS: starts a counting proxy in front of the server that adds DELAY_MS
# to every request (stopped at exit) and sets VAR to its URL.
s3_proxy() {
  local var=$1 delay=$2 port=$RUN/proxy-$1.port i
  "$PY" "$HERE/s3.py" proxy --upstream "$S3_ENDPOINT" --port-file "$port" --delay-ms "$delay" \
    2> "$LOGS/s3-proxy-$1.err" &
  PROXY_PIDS+=("$!")
  for ((i = 0; i < 100; i++)); do [ -s "$port" ] && break; sleep 0.1; done
  [ -s "$port" ] || die "the S3 counting proxy did not start (see $LOGS/s3-proxy-$1.err)"
  printf -v "$var" 'http://127.0.0.1:%s' "$(cat "$port")"
  s3_probe "${!var}" || die "S3 through the counting proxy does not work (see $LOGS/s3-proxy-$1.err)"
}

# Uses the server CAIRN_TEST_S3_* names if it answers, else starts a private `weed mini`
# (stopped at exit); then a counting proxy in front of it for each S3 set.
s3_setup() {
  STEP=s3-server
  if [[ -n "$S3_ENDPOINT" && -n "$S3_KEY" ]] && s3_probe "$S3_ENDPOINT"; then
    S3_SHARED=1
    log "S3: using the server at $S3_ENDPOINT (bucket $S3_BUCKET)"
  else
    local busy=() p i
    for p in "${WEED_FIXED_PORTS[@]}"; do
      if port_busy "$p"; then busy+=("$p"); fi
    done
    ((${#busy[@]} == 0)) || die "no S3 server answers (CAIRN_TEST_S3_ENDPOINT unset or down) and the ports 'weed mini' needs are taken (${busy[*]}): name that server with CAIRN_TEST_S3_ENDPOINT/_BUCKET/_KEY/_SECRET, or leave s3 out (--only)"
    WEED_PORT=""
    for ((i = 0; i < 200; i++)); do
      p=$((20000 + RANDOM % 10000))
      for f in "${WEED_FIXED_PORTS[@]}"; do
        if ((p == f || p + 10000 == f)); then continue 2; fi
      done
      if ! port_busy "$p" && ! port_busy $((p + 10000)); then WEED_PORT=$p; break; fi
    done
    [[ -n "$WEED_PORT" ]] || die "found no free port for S3"
    S3_KEY=bench S3_SECRET=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
    S3_BUCKET=cairn-bench S3_ENDPOINT=http://127.0.0.1:$WEED_PORT
    mkdir -p "$RUN/weed/data"
    printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
      "$S3_KEY" "$S3_SECRET" > "$RUN/weed/s3.json"
    log "S3: starting a private SeaweedFS on 127.0.0.1:$WEED_PORT"
    "$WEED" -logdir="$RUN/weed" mini -dir="$RUN/weed/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -s3.port="$WEED_PORT" -s3.config="$RUN/weed/s3.json" -bucket="$S3_BUCKET" \
      -admin.ui=false -webdav=false > "$RUN/weed/weed.log" 2>&1 < /dev/null &
    WEED_PID=$!
    local deadline=$((SECONDS + 60))
    until s3_probe "$S3_ENDPOINT"; do
      kill -0 "$WEED_PID" 2>/dev/null || { tail -n 30 "$RUN/weed/weed.log" >&2; WEED_PID=""; die "SeaweedFS exited during startup"; }
      ((SECONDS < deadline)) || { tail -n 30 "$RUN/weed/weed.log" >&2; die "SeaweedFS not ready within 60 s"; }
      sleep 0.3
    done
  fi
  S3_PREFIX=cairn-bench-$(date +%s)-$$
  export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  PROXY="" PROXY_LAT=""
  ! has "$SETS" s3 || s3_proxy PROXY 0
  ! has "$SETS" s3lat || s3_proxy PROXY_LAT "$S3_RTT_MS"
}

# The proxy the current set goes through (s3_use URL), whose tally s3_counts records.
S3_VIA=""
s3_use() {
  S3_VIA=$1
  export AWS_ENDPOINT_URL=$1
}

s3_reset() { "$PY" "$HERE/s3.py" counts --proxy "$S3_VIA" --reset > /dev/null; }

s3_counts() {  # s3_counts SET TOOL FIGURE: records the proxy's tally since the last call
  local kind val
  while read -r kind val; do
    record "$1" "$2" "$3" "req_$kind" "$val"
  done < <("$PY" "$HERE/s3.py" counts --proxy "$S3_VIA" --reset \
    | "$PY" -c 'import json,sys; [print(k, v) for k, v in json.load(sys.stdin).items()]')
}

s3_size() {  # s3_size SET TOOL FIGURE PREFIX
  local bytes
  bytes=$("$PY" "$HERE/s3.py" size --endpoint "$S3_ENDPOINT" --bucket "$S3_BUCKET" --prefix "$4/")
  record "$1" "$2" "$3" size_mb "$((bytes / 1048576))"
}

# s3_start SET TOOL PREFIX PROXY: a fresh repository of TOOL under PREFIX, reached through
# PROXY (counts zeroed), and the set's source; sets S3_REPO, INIT, BACKUP, RESTORE_CMD.
s3_start() {
  local set=$1 tool=$2 prefix=$3
  STEP="$set/$tool"
  s3_use "$4"
  case $tool in
    cairn) S3_REPO=s3://$S3_BUCKET/$prefix ;;
    restic) S3_REPO=s3:$4/$S3_BUCKET/$prefix ;;
  esac
  rm -rf "$RUN/restore-$tool-$set" "$RUN"/cache-*
  reset_src "$set"
  tool_cmds "$tool" "$set" "$S3_REPO" "$RUN/restore-$tool-$set"
  "${INIT[@]}" > "$LOGS/$set-$tool-init.out" 2>&1 || die "$tool init on S3 failed (see $LOGS/$set-$tool-init.out)"
  s3_reset
}

# s3_step SET TOOL FIGURE PREFIX CMD...: measure CMD, its requests, and with a PREFIX the
# size stored under it after.
s3_step() {
  local set=$1 tool=$2 fig=$3 prefix=$4; shift 4
  measure "$set" "$tool" "$fig" "$@"
  s3_counts "$set" "$tool" "$fig"
  [ -z "$prefix" ] || s3_size "$set" "$tool" "$fig" "$prefix"
}

run_s3() {  # run_s3 TOOL: backups to and a restore from S3, requests counted
  local tool=$1 set=s3 prefix=$S3_PREFIX/$1-r$ROUND fig
  s3_start "$set" "$tool" "$prefix" "$PROXY"
  for fig in first-backup nochange-backup changed-backup; do
    [ "$fig" != changed-backup ] || change_src "$set"
    s3_step "$set" "$tool" "$fig" "$prefix" "${BACKUP[@]}"
  done
  s3_step "$set" "$tool" restore "" "${RESTORE_CMD[@]}"
  check_restore "$set" "$tool" "$RUN/restore-$tool-$set"
  rm -rf "$RUN/restore-$tool-$set" "$RUN/src/$set"
  trim_run
  "$PY" "$HERE/s3.py" delete --endpoint "$S3_ENDPOINT" --bucket "$S3_BUCKET" --prefix "$prefix/" > /dev/null
}
