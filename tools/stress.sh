#!/usr/bin/env bash
# Builds test_c/stress_cancel_backlog.c (closes racing completing reads, queued
# writes and accepts; issue 16, item 1) and runs it many times.
#
#   tools/stress.sh [MODE] [RUNS]     MODE: normal (default) | address | thread; RUNS: default 10
#
#   normal   ./zigw build: zig-out/bin/stress_cancel_backlog against the shipped libzig_tcp.so (if build.zig
#            does not build the program, it is compiled with cc against zig-out/lib/libzig_tcp.so)
#   address  clang-14 AddressSanitizer + UBSan (as tools/sanitize.sh builds the engine and the suite),
#            engine and program in build/stress-asan/
#   thread   clang-14 ThreadSanitizer, in build/stress-tsan/
#
# Each configuration of STRESS_CONFIGS (default "tiny-ring io_uring uv") runs RUNS times:
#   tiny-ring  ZIG_TCP_BACKEND=io_uring ZIG_TCP_URING_ENTRIES=2 (the SQ is full most of the time)
#   io_uring   ZIG_TCP_BACKEND=io_uring
#   uv         ZIG_TCP_BACKEND=uv
# Run k uses STRESS_SEED=$((STRESS_SEED_BASE + k)) (base 1), printed with every failure, so a failed run
# is replayed with the same operation program (thread timing still varies). Every other STRESS_*
# variable (see the program's header) is passed through. The log of each failed run is kept in the
# build folder. Prints one line per failed run and last `N passed, N failed` (N = runs).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode="${1:-normal}"
runs="${2:-10}"
configs="${STRESS_CONFIGS:-tiny-ring io_uring uv}"
seed_base="${STRESS_SEED_BASE:-1}"
cc="${SANITIZE_CC:-clang-14}"

build_failed() {
  echo "stress: build ($mode) failed"
  echo "0 passed, 1 failed"
  exit 1
}

# The engine's Linux sources: every src/*.c but the IOCP backend (the core and
# the io_uring and uv backends, however the core is split into files).
engine_sources() {
  local f
  for f in src/*.c; do [ "$f" = src/backend_iocp.c ] || echo "$f"; done
}

# The sanitizer flags of tools/sanitize.sh, engine and libuv sanitized too, plus the stress program.
build_sanitized() {
  local out="$1"; shift
  local flags=("$@") engine_sources
  mapfile -t engine_sources < <(engine_sources)
  mkdir -p "$out"
  bash tools/fetch-libuv.sh >&2 || return 1
  local uv_dir=.tools/libuv-src source uv_sources
  mapfile -t uv_sources < <(awk -v dir="$uv_dir" '$1=="common"||$1=="unix"||$1=="linux"{print dir "/" $2}' \
                              tools/libuv-sources.txt)
  local common=(-g -O1 "${flags[@]}")
  rm -f "$out"/uv-*.o
  for source in "${uv_sources[@]}"; do
    "$cc" "${common[@]}" -std=gnu11 -fPIC -w -D_GNU_SOURCE -D_POSIX_C_SOURCE=200112 -I"$uv_dir/include" \
      -I"$uv_dir/src" -c "$source" -o "$out/uv-$(basename "${source%.c}").o" || return 1
  done
  "$cc" "${common[@]}" -std=c11 -D_GNU_SOURCE -Wall -Iinclude -Isrc -I"$uv_dir/include" -fPIC -shared \
    -DZIG_TCP_HAVE_IO_URING=1 -Wl,--version-script=src/exports.map "${engine_sources[@]}" "$out"/uv-*.o \
    -lpthread -ldl -lrt -o "$out/libzig_tcp.so" || return 1
  "$cc" "${common[@]}" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Iinclude -Isrc -Itest_c \
    test_c/stress_cancel_backlog.c test_c/fake_dart.c -L"$out" -lzig_tcp -Wl,-rpath,"$root/$out" -lpthread \
    -o "$out/stress_cancel_backlog"
}

case "$mode" in
  normal)
    out=build/stress
    mkdir -p "$out"
    ./zigw build >&2 || build_failed
    program=zig-out/bin/stress_cancel_backlog
    if [ ! -x "$program" ] || [ "$program" -ot test_c/stress_cancel_backlog.c ]; then
      # build.zig does not build it (yet): link it to the library build.zig made.
      program="$out/stress_cancel_backlog"
      cc -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Iinclude -Isrc -Itest_c test_c/stress_cancel_backlog.c \
        test_c/fake_dart.c -Lzig-out/lib -lzig_tcp -Wl,-rpath,"$root/zig-out/lib" -lpthread -o "$program" ||
        build_failed
    fi ;;
  address)
    out=build/stress-asan
    build_sanitized "$out" -fsanitize=address,undefined -fno-sanitize-recover=undefined \
      -fno-omit-frame-pointer || build_failed
    program="$out/stress_cancel_backlog" ;;
  thread)
    out=build/stress-tsan
    build_sanitized "$out" -fsanitize=thread || build_failed
    program="$out/stress_cancel_backlog" ;;
  *) echo "usage: tools/stress.sh [normal|address|thread] [RUNS]" >&2; exit 2 ;;
esac

# One run: its log in $out, "ok" or the first failure line on stdout.
run_once() {
  local config="$1" seed="$2" log="$out/run-$1-seed$2.log"
  local env=(STRESS_SEED="$seed")
  case "$config" in
    tiny-ring) env+=(ZIG_TCP_BACKEND=io_uring ZIG_TCP_URING_ENTRIES=2) ;;
    io_uring) env+=(ZIG_TCP_BACKEND=io_uring) ;;
    uv) env+=(ZIG_TCP_BACKEND=uv) ;;
    *) echo "unknown configuration $config (tiny-ring io_uring uv)"; return ;;
  esac
  # The program bounds every wait itself; the outer timeout is a last resort.
  env "${env[@]}" ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
    timeout -k 10 "${STRESS_RUN_SECONDS_MAX:-900}" "$program" >"$log" 2>&1
  local rc=$?
  if [ "$rc" -eq 0 ] && grep -aqE '^[0-9]+ passed, 0 failed$' "$log"; then
    rm -f "$log"
    echo ok
    return
  fi
  local why
  why="$(grep -a -m1 -E 'ERROR: (Address|Thread|Leak)Sanitizer|runtime error|panic:|FAIL' "$log")"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then why="killed by the outer timeout; ${why}"
  elif [ "$rc" -gt 128 ]; then why="killed by signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))); ${why}"
  fi
  echo "exit $rc: ${why:-no failure line (see the log)} [log: $log]"
}

passed=0 failed=0
for config in $configs; do
  config_passed=0 config_failed=0
  for ((k = 0; k < runs; k++)); do
    seed=$((seed_base + k))
    result="$(run_once "$config" "$seed")"
    if [ "$result" = ok ]; then
      config_passed=$((config_passed + 1))
    else
      config_failed=$((config_failed + 1))
      echo "FAIL $mode $config STRESS_SEED=$seed: $result"
    fi
  done
  echo "$mode $config: $config_passed passed, $config_failed failed"
  passed=$((passed + config_passed)); failed=$((failed + config_failed))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
