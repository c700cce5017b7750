#!/usr/bin/env bash
# CI helper for the grafana/ and deploy/ tests: installs (idempotently) what
# they run for real. The tests start their own Prometheus on a free loopback
# port and stop it by PID, so there is nothing to start or stop here.
#   prometheus      the server for grafana's end-to-end dashboard test, and
#                   promtool (check config, check rules, test rules)
#   docker-compose  `docker-compose config -q` validates docker-compose.yml
#                   without a Docker engine
#   prometheus-alertmanager  amtool check-config / routes test for
#                   deploy/alertmanager/alertmanager.yml
# Usage: .ci/services/prometheus.sh install | check
set -euo pipefail

PKGS=(prometheus docker-compose prometheus-alertmanager)

log() { printf '[prometheus.sh %s] %s\n' "$(date +%T)" "$*" >&2; }

install() {
  local missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "apt installing: ${missing[*]}"
    apt-get update -qq
    # --no-install-recommends: no node exporter etc.; the packages' services
    # do not auto-start on these machines, and the tests start their own.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  check
}

check() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v docker-compose >/dev/null && command -v amtool >/dev/null || {
    log "missing: prometheus, promtool, docker-compose or amtool"; return 1; }
  log "$(prometheus --version 2>&1 | head -1); $(docker-compose version --short 2>/dev/null || docker-compose version | head -1)"
}

"${1:-install}"
