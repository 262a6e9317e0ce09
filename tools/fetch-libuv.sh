#!/usr/bin/env bash
# Fetches libuv's source as Debian ships it (source package "libuv1", version
# pinned in tools/versions.env: the same code as Debian's libuv runtime, with
# Debian's patches applied) into .tools/libuv-src. build.zig compiles it into
# the engine: Debian's own static archive is built as PIE and cannot go into a
# shared library. Uses a private apt list folder, so the system's apt
# configuration is not touched. Does nothing if the source is already there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/versions.env"
dest="$root/.tools/libuv-src"
marker="$dest/.zig_tcp-$LIBUV_DEBIAN_VERSION"
[ -f "$marker" ] && exit 0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial"
cat >"$work/src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_opts=(-o "Dir::Etc::SourceList=$work/src.sources" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$work/lists" -o Debug::NoLocking=1 -qq)
echo "fetch-libuv: Debian source libuv1=$LIBUV_DEBIAN_VERSION" >&2
apt-get "${apt_opts[@]}" update >&2
(cd "$work" && apt-get "${apt_opts[@]}" source --download-only "libuv1=$LIBUV_DEBIAN_VERSION" >&2) 2>&1 |
  grep -v 'unsandboxed' >&2 || true
upstream="${LIBUV_DEBIAN_VERSION%%-*}"
tar -xzf "$work"/libuv1_"$upstream".orig.tar.gz -C "$work"
tar -xJf "$work"/libuv1_"$LIBUV_DEBIAN_VERSION".debian.tar.xz -C "$work/libuv1-$upstream"
src="$work/libuv1-$upstream"
# Debian's patch series (lines starting with # are disabled there too).
while read -r patch_name; do
  case "$patch_name" in ""|\#*) continue ;; esac
  patch -s -p1 -d "$src" <"$src/debian/patches/$patch_name" >&2
done <"$src/debian/patches/series"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$src" "$dest"
touch "$marker"
echo "fetch-libuv: source in $dest" >&2
