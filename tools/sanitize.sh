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
mkdir -p "$out"
cc="${SANITIZE_CC:-clang-14}"
case "$mode" in
  address) flags=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer) ;;
  thread) flags=(-fsanitize=thread) ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
# The same sources build.zig compiles for Linux: the core, both backends, and
# libuv from Debian's source (sanitized too, so TSan sees its atomics).
engine_sources=(src/engine.c src/sockets.c src/errors.c src/dart_post.c src/backend_io_uring.c src/backend_uv.c)
suite_sources=(test_c/suite.c test_c/runner.c test_c/tracker.c test_c/tracked_calls.c test_c/raw_socket.c
  test_c/hanging_destination.c test_c/fake_dart.c test_c/byte_stream.c test_c/test_lifecycle.c test_c/test_data.c test_c/test_close_cancel.c
  test_c/test_errors.c test_c/test_options.c test_c/test_isolates.c)
bash tools/fetch-libuv.sh
uv_dir=.tools/libuv-src
mapfile -t uv_sources < <(awk -v dir="$uv_dir" '$1=="common"||$1=="unix"||$1=="linux"{print dir "/" $2}' tools/libuv-sources.txt)
common=(-g -O1 "${flags[@]}")
build_ok=true
rm -f "$out"/uv-*.o
for source in "${uv_sources[@]}"; do
  "$cc" "${common[@]}" -std=gnu11 -fPIC -w -D_GNU_SOURCE -D_POSIX_C_SOURCE=200112 -I"$uv_dir/include" \
    -I"$uv_dir/src" -c "$source" -o "$out/uv-$(basename "${source%.c}").o" || build_ok=false
done
if ! $build_ok ||
   ! "$cc" "${common[@]}" -std=c11 -D_GNU_SOURCE -Wall -Iinclude -Isrc -I"$uv_dir/include" -fPIC -shared \
      -DZIG_TCP_HAVE_IO_URING=1 -Wl,--version-script=src/exports.map "${engine_sources[@]}" "$out"/uv-*.o \
      -lpthread -ldl -lrt -o "$out/libzig_tcp.so" ||
   ! "$cc" "${common[@]}" -std=c11 -D_GNU_SOURCE -Wall -Iinclude -Isrc -Itest_c "${suite_sources[@]}" \
      -L"$out" -lzig_tcp -Wl,-rpath,"$root/$out" -lpthread -o "$out/tcp_suite"; then
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
