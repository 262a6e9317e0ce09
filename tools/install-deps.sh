#!/usr/bin/env bash
# Installs what zig_tcp's tests and benchmarks need on a fresh Debian machine:
# the pinned Zig (through ./zigw), the Debian packages listed in
# tools/versions.env and libuv's source. Does nothing for what is already there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/versions.env"
"$root/zigw" version >/dev/null
missing=()
for pkg in $DEBIAN_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# libuv's source, compiled into the engine (build.zig would fetch it on first
# use; fetched here, before run-tests starts parts side by side, so no two
# builds fetch it at once).
bash "$root/tools/fetch-libuv.sh" || echo "install-deps: fetching libuv's source failed (tools/fetch-libuv.sh)" >&2
