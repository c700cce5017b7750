#!/usr/bin/env bash
# Debian's chromium (and a font, so screenshots show readable text) for the
# real-browser tests in web/browsertest, which drive it headless over the
# DevTools protocol (chromedp). Nothing is started here: each test package
# starts its own browser.
#
#   chromium.sh install   apt-get install chromium fonts-dejavu-core (idempotent)
#   chromium.sh check     exit 0 when /usr/bin/chromium runs, print its version
set -euo pipefail

PKGS=(chromium fonts-dejavu-core)
BIN=${UPWATCH_CHROMIUM:-/usr/bin/chromium}

log() { printf '[chromium %s] %s\n' "$(date +%T)" "$*" >&2; }

install() {
  local need=() p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  if ((${#need[@]} == 0)); then
    return 0
  fi
  log "installing from Debian: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  check
}

# Debian's launcher may print "[: ...: unexpected operator" from its
# /etc/chromium.d/dev-shm check; harmless (the tests pass
# --disable-dev-shm-usage anyway).
check() {
  if [[ ! -x $BIN ]]; then
    log "$BIN is missing (run: bash .ci/services/chromium.sh install)"
    return 1
  fi
  "$BIN" --headless --no-sandbox --disable-gpu --version
}

case "${1:-}" in
  install) install ;;
  check) check ;;
  *) echo "usage: $0 install|check" >&2; exit 2 ;;
esac
