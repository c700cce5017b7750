#!/usr/bin/env bash
# InfluxDB 1.8.10 for the integration tests: its /api/v2 compatibility API
# (write and Flux) is what tsdb/influx talks to. Loopback only; stopped by PID.
#
#   influxdb.sh install   build influxd into the cache dir (idempotent, ~75 s cold)
#   influxdb.sh start     start it on 127.0.0.1, create the database, print
#                         `export UPWATCH_TEST_INFLUX_URL=...` lines (also written
#                         to $STATE/env, to be sourced)
#   influxdb.sh stop      stop it by PID (idempotent)
#   influxdb.sh env       print the export lines of a running server
#
# Environment: UPWATCH_CI_CACHE (default ~/.cache/upwatch-ci) keeps the binary
# between runs; UPWATCH_CI_STATE (default ${TMPDIR:-/tmp}/upwatch-ci/influxdb)
# holds data, config, log, pid and env files; INFLUX_PORT (default 18087).
set -euo pipefail

CACHE=${UPWATCH_CI_CACHE:-$HOME/.cache/upwatch-ci}
BIN=$CACHE/bin/influxd
STATE=${UPWATCH_CI_STATE:-${TMPDIR:-/tmp}/upwatch-ci/influxdb}
PORT=${INFLUX_PORT:-18087}
RPC_PORT=${INFLUX_RPC_PORT:-18089}
DB=${INFLUX_DB:-upwatch}
VERSION=v1.8.10

log() { printf '[influxdb %s] %s\n' "$(date +%T)" "$*" >&2; }

install() {
  if [[ -x $BIN ]] && "$BIN" version 2>/dev/null | grep -q "${VERSION#v}"; then
    return 0
  fi
  log "building influxd $VERSION from the Go module proxy into $CACHE/bin (~75 s cold)"
  mkdir -p "$CACHE/bin"
  (cd "${TMPDIR:-/tmp}" && GOBIN=$CACHE/bin GOFLAGS=-mod=mod go install -ldflags="-s -w -X main.version=${VERSION#v}" \
    "github.com/influxdata/influxdb/cmd/influxd@$VERSION")
}

running() { [[ -f $STATE/influxd.pid ]] && kill -0 "$(cat "$STATE/influxd.pid")" 2>/dev/null; }

env_lines() {
  printf 'export UPWATCH_TEST_INFLUX_URL=http://127.0.0.1:%s\n' "$PORT"
  printf 'export UPWATCH_TEST_INFLUX_BUCKET=%s/autogen\n' "$DB"
}

start() {
  [[ -x $BIN ]] || install
  if running; then
    log "already running (pid $(cat "$STATE/influxd.pid"))"
    env_lines | tee "$STATE/env"
    return 0
  fi
  mkdir -p "$STATE"
  cat >"$STATE/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$RPC_PORT"
[meta]
  dir = "$STATE/meta"
[data]
  dir = "$STATE/data"
  wal-dir = "$STATE/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$PORT"
  auth-enabled = false
  log-enabled = false
  flux-enabled = true
  max-body-size = 0
[continuous_queries]
  enabled = false
EOF
  "$BIN" run -config "$STATE/influxdb.conf" >"$STATE/influxd.log" 2>&1 &
  echo $! >"$STATE/influxd.pid"
  local ok=""
  for _ in $(seq 1 300); do   # influxd needs ~3 s before it listens
    if curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; then ok=1; break; fi
    running || break
    sleep 0.1
  done
  if [[ -z $ok ]]; then
    log "influxd did not come up; last log lines:"; tail -20 "$STATE/influxd.log" >&2 || true
    stop; return 1
  fi
  curl -sf -XPOST "http://127.0.0.1:$PORT/query" --data-urlencode "q=CREATE DATABASE $DB" >/dev/null
  log "influxd up on 127.0.0.1:$PORT (pid $(cat "$STATE/influxd.pid")), database $DB"
  env_lines | tee "$STATE/env"
}

stop() {
  [[ -f $STATE/influxd.pid ]] || return 0
  local pid; pid=$(cat "$STATE/influxd.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    log "influxd stopped (pid $pid)"
  fi
  rm -f "$STATE/influxd.pid" "$STATE/env"
}

print_env() { running && env_lines; }

case ${1:-} in
  install | start | stop) "$1" ;;
  env) print_env ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
