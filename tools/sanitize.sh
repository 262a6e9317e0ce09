#!/usr/bin/env bash
# Builds the engine and the C suite with clang's sanitizers and runs the suite
# against every Linux backend.
#   tools/sanitize.sh address   AddressSanitizer + UBSan + LeakSanitizer
#   tools/sanitize.sh thread    ThreadSanitizer
# Prints each run's output and, last, one `N passed, N failed` line over all runs.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode="${1:?usage: tools/sanitize.sh address|thread}"
out="build/san-$mode"
cc="${SANITIZE_CC:-clang-14}"
case "$mode" in
  address | thread) ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
# build.zig compiles, with that sanitizer, what it compiles for Linux (the
# engine's sources, both backends, and libuv from Debian's source -- sanitized
# too, so TSan sees its atomics) and the suite: `./zigw build sanitize-MODE`
# puts libzig_tcp.so and tcp_suite into build/san-MODE/.
bash tools/fetch-libuv.sh
mkdir -p "$out"
if ! ./zigw build "sanitize-$mode" -Dchecked-cc="$cc" --prefix build; then
  echo "sanitizer build ($mode) failed"
  echo "0 passed, 1 failed"
  exit 1
fi
passed=0 failed=0
for backend in io_uring uv; do
  echo "== $mode sanitizer, backend $backend"
  log="$out/suite-$backend.log"
  ZIG_TCP_BACKEND=$backend \
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
    "$out/tcp_suite" >"$log" 2>&1
  rc=$?
  cat "$log"
  summary="$(grep -a -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)"
  p="$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$summary")"
  f="$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$summary")"
  if [ -z "$summary" ]; then p=0; f=1; fi
  # A sanitizer report after all tests passed still fails the run.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "suite exited $rc under the $mode sanitizer (see report above)"
    f=1
  fi
  passed=$((passed + p)); failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
