#!/usr/bin/env bash
# CI helper for the PostgreSQL registry store tests (registry/postgres_test.go):
# installs PostgreSQL 15 from Debian (idempotently), starts a private cluster
# on 127.0.0.1:15432 with its own data directory, and stops it.
#   install  apt-get install postgresql-15 if it is missing
#   start    initdb (once, as user postgres, trust auth, loopback only),
#            pg_ctl start, create database upwatch_test, then print
#              export UPWATCH_TEST_POSTGRES_URL=...
#            so that `eval "$(.ci/services/postgres.sh start)"` sets it
#   stop     pg_ctl stop (fast)
# State lives in ${UPWATCH_CI_STATE:-${TMPDIR:-/tmp}/upwatch-ci}/postgres.
# Usage: .ci/services/postgres.sh install | start | stop
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
PORT=15432
DB=upwatch_test
STATE=${UPWATCH_CI_STATE:-${TMPDIR:-/tmp}/upwatch-ci}/postgres
DATA=$STATE/data

log() { printf '[postgres.sh %s] %s\n' "$(date +%T)" "$*" >&2; }

install() {
  if ! dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q 'install ok installed'; then
    log "apt installing: postgresql-15"
    apt-get update -qq
    # The package's own cluster service does not auto-start on these
    # machines; start runs a private cluster instead.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
  fi
}

as_postgres() { # initdb and postgres refuse to run as root
  if [[ $(id -un) == postgres ]]; then "$@"; else runuser -u postgres -- "$@"; fi
}

running() { [[ -f $DATA/postmaster.pid ]] && as_postgres "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  [[ -x $PGBIN/initdb ]] || { log "PostgreSQL 15 is not installed; run: $0 install"; exit 1; }
  mkdir -p "$STATE"
  chown postgres:postgres "$STATE"
  if [[ ! -f $DATA/PG_VERSION ]]; then
    log "initdb $DATA"
    as_postgres "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$STATE/initdb.log"
  fi
  if running; then
    log "already running"
  else
    log "starting on 127.0.0.1:$PORT"
    as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$STATE/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $STATE -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null
  fi
  if ! as_postgres psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    as_postgres psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE $DB" >/dev/null
  fi
  echo "export UPWATCH_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PORT/$DB?sslmode=disable"
}

stop() {
  if running; then
    as_postgres "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
    log "stopped"
  fi
}

case ${1:-} in
  install | start | stop) "$1" ;;
  *) echo "usage: $0 install | start | stop" >&2; exit 2 ;;
esac
