#!/usr/bin/env bash
# VictoriaMetrics (Debian's victoria-metrics) for the integration tests of
# tsdb/victoria: it takes line protocol on /api/v2/write and serves
# /api/v1/export. Loopback only; stopped by PID.
#
#   victoria.sh install   apt-get install victoria-metrics (idempotent)
#   victoria.sh start     start it on 127.0.0.1 and print
#                         `export UPWATCH_TEST_VM_URL=...` (also written to $STATE/env)
#   victoria.sh stop      stop it by PID (idempotent)
#   victoria.sh env       print the export line of a running server
#
# Environment: UPWATCH_CI_STATE (default ${TMPDIR:-/tmp}/upwatch-ci); this
# script keeps data, log, pid and env files in $UPWATCH_CI_STATE/victoria.
# VM_PORT (default 18428).
set -euo pipefail

STATE=${UPWATCH_CI_STATE:-${TMPDIR:-/tmp}/upwatch-ci}/victoria
PORT=${VM_PORT:-18428}
BIN=${VM_BIN:-victoria-metrics}

log() { printf '[victoria %s] %s\n' "$(date +%T)" "$*" >&2; }

install() {
  if dpkg-query -W -f='${Status}' victoria-metrics 2>/dev/null | grep -q 'install ok installed'; then
    return 0
  fi
  log "installing victoria-metrics from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends victoria-metrics >/dev/null
}

running() { [[ -f $STATE/victoria.pid ]] && kill -0 "$(cat "$STATE/victoria.pid")" 2>/dev/null; }

env_lines() { printf 'export UPWATCH_TEST_VM_URL=http://127.0.0.1:%s\n' "$PORT"; }

start() {
  command -v "$BIN" >/dev/null || install
  if running; then
    log "already running (pid $(cat "$STATE/victoria.pid"))"
    env_lines | tee "$STATE/env"
    return 0
  fi
  mkdir -p "$STATE/data"
  "$BIN" -storageDataPath="$STATE/data" -httpListenAddr="127.0.0.1:$PORT" \
    -retentionPeriod=1 -search.latencyOffset=0s -loggerLevel=WARN >"$STATE/victoria.log" 2>&1 &
  echo $! >"$STATE/victoria.pid"
  local ok=""
  for _ in $(seq 1 300); do
    if curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; then ok=1; break; fi
    running || break
    sleep 0.1
  done
  if [[ -z $ok ]]; then
    log "victoria-metrics did not come up; last log lines:"; tail -20 "$STATE/victoria.log" >&2 || true
    stop; return 1
  fi
  log "victoria-metrics up on 127.0.0.1:$PORT (pid $(cat "$STATE/victoria.pid"))"
  env_lines | tee "$STATE/env"
}

stop() {
  [[ -f $STATE/victoria.pid ]] || return 0
  local pid; pid=$(cat "$STATE/victoria.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    log "victoria-metrics stopped (pid $pid)"
  fi
  rm -f "$STATE/victoria.pid" "$STATE/env"
}

print_env() { running && env_lines; }

case ${1:-} in
  install | start | stop) "$1" ;;
  env) print_env ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
