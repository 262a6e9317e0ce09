#!/usr/bin/env bash
# Cross-builds the engine for macOS (Apple silicon and Intel) with the pinned
# Zig and prints one PASS/FAIL line per target, then "N passed, N failed".
# Nothing is run: a macOS binary cannot execute here. A target passes when
# `zig build -Dtarget=...` succeeds and leaves a Mach-O libzig_tcp.dylib of the
# right architecture (checked with `file` and llvm-objdump when present).
#
#   tools/cross_build.sh                    both macOS targets
#   CROSS_TARGETS="x86_64-freebsd" tools/cross_build.sh
#
# Output goes to zig-out/cross/<target>/ so the native zig-out/ stays as is.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

read -r -a targets <<<"${CROSS_TARGETS:-aarch64-macos x86_64-macos}"

# libuv is compiled into the engine from its source (build.zig); the build
# fetches that source by itself only for Linux targets.
if [ -f tools/fetch-libuv.sh ]; then
  bash tools/fetch-libuv.sh || echo "cross_build: fetching libuv's source failed; builds will use a system libuv" >&2
fi

objdump_tool=""
for t in llvm-objdump llvm-objdump-14; do
  if command -v "$t" >/dev/null 2>&1; then objdump_tool="$t"; break; fi
done

passed=0
failed=0
for target in "${targets[@]}"; do
  prefix="$root/zig-out/cross/$target"
  log="$(mktemp)"
  if ! ./zigw build -Dtarget="$target" --prefix "$prefix" >"$log" 2>&1; then
    echo "FAIL $target: zig build failed"
    grep -E "error" "$log" | grep -v "^/.*zig build-" | sort -u | head -20 | sed 's/^/    /'
    failed=$((failed + 1))
    rm -f "$log"
    continue
  fi
  rm -f "$log"
  case "$target" in
    *-macos*) lib="$prefix/lib/libzig_tcp.dylib" ;;
    *-windows*) lib="$prefix/bin/zig_tcp.dll" ;;
    *) lib="$prefix/lib/libzig_tcp.so" ;;
  esac
  if [ ! -f "$lib" ]; then
    echo "FAIL $target: build succeeded but $lib is missing"
    failed=$((failed + 1))
    continue
  fi
  detail="$(du -k "$lib" | cut -f1) KiB"
  if command -v file >/dev/null 2>&1; then
    kind="$(file -b "$lib")"
    want=""
    case "$target" in
      aarch64-macos*) want="Mach-O 64-bit arm64" ;;
      x86_64-macos*) want="Mach-O 64-bit x86_64" ;;
    esac
    if [ -n "$want" ] && [[ "$kind" != *"$want"* ]]; then
      echo "FAIL $target: $lib is \"$kind\", expected $want"
      failed=$((failed + 1))
      continue
    fi
  fi
  if [ -n "$objdump_tool" ] && [[ "$target" == *-macos* ]]; then
    # Which dylibs it needs: only libSystem when libuv is compiled in.
    deps="$("$objdump_tool" --macho --dylibs-used "$lib" 2>/dev/null | tail -n +3 | awk '{print $1}' | tr '\n' ' ')"
    detail="$detail; needs: ${deps:-?}"
  fi
  echo "PASS $target: ${lib#"$root/"} ($detail)"
  passed=$((passed + 1))
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
