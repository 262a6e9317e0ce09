#!/usr/bin/env bash
# Runs the C suite against the IOCP backend: cross-builds zig_tcp.dll and
# tcp_suite.exe for x86_64-windows-gnu and runs the suite under Wine (64-bit,
# headless: no X, no Mono/Gecko prompts), passing its output through.
#
#   tools/wine_suite.sh [suite arguments...]
#   tools/wine_suite.sh --build-only   only the Wine prefix and the cross build (run-tests
#                                      starts it early, beside other parts); prints "1 passed, 0 failed"
#
# Installs Debian's wine + wine64 if they are missing (apt-get, as root or via
# sudo). The Wine prefix lives in build/wineprefix (made on first use, ~5 s).
# Exit code: the suite's (124 if it ran past WINE_SUITE_TIMEOUT seconds,
# default 900).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=tools/versions.env
source "$root/tools/versions.env"

log() { echo "wine_suite: $*" >&2; }

# ---- Wine ---------------------------------------------------------------------
find_wine() {
  if command -v wine64 >/dev/null 2>&1; then command -v wine64; return; fi
  if [ -x /usr/lib/wine/wine64 ]; then echo /usr/lib/wine/wine64; return; fi
  return 1
}

if ! wine_bin="$(find_wine)"; then
  # Only the Wine part of the pinned Debian package list.
  pkgs=()
  for p in $DEBIAN_PACKAGES; do
    case "$p" in wine | wine64) pkgs+=("$p") ;; esac
  done
  [ ${#pkgs[@]} -gt 0 ] || pkgs=(wine wine64)
  sudo_cmd=()
  if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi
  log "installing ${pkgs[*]} (Debian)"
  "${sudo_cmd[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
    "${pkgs[@]}" >&2
  wine_bin="$(find_wine)" || { log "wine64 not found after install"; exit 1; }
fi
wineserver_bin="$(command -v wineserver 2>/dev/null || echo /usr/lib/wine/wineserver64)"

export WINEPREFIX="$root/build/wineprefix"
export WINEARCH=win64
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml=" # no Mono / Gecko install dialogs
unset DISPLAY WAYLAND_DISPLAY

if [ ! -f "$WINEPREFIX/system.reg" ]; then
  log "creating the Wine prefix in build/wineprefix"
  mkdir -p "$WINEPREFIX"
  "$wine_bin" wineboot -i >/dev/null 2>&1 || true
  "$wineserver_bin" -w || true
fi

# ---- build ----------------------------------------------------------------------
log "building for x86_64-windows-gnu into build/windows"
./zigw build suite -Dtarget=x86_64-windows-gnu --prefix build/windows >&2

suite="$root/build/windows/bin/tcp_suite.exe"
[ -f "$suite" ] || { log "missing $suite"; exit 1; }
if [ "${1:-}" = --build-only ]; then
  echo "PASS Wine prefix and cross build for x86_64-windows-gnu"
  echo "1 passed, 0 failed"
  exit 0
fi

# ---- run ------------------------------------------------------------------------
set +e
timeout --kill-after=10 "${WINE_SUITE_TIMEOUT:-900}" "$wine_bin" "$suite" "$@"
rc=$?
set -e
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  log "the suite ran past ${WINE_SUITE_TIMEOUT:-900} s; stopping this prefix's Wine processes"
  "$wineserver_bin" -k >/dev/null 2>&1 || true
fi
# Let this prefix's wineserver go away before we return (it lingers ~3 s).
timeout 30 "$wineserver_bin" -w >/dev/null 2>&1 || true
exit "$rc"
