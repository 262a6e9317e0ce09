#!/usr/bin/env bash
# Operation-sequence fuzzer of the engine (fuzz/: fuzz_ops.c and the parts
# fuzz/fuzz.h lists; libFuzzer + ASan + UBSan + LeakSanitizer), one run per
# backend.
#
#   tools/fuzz.sh [SECONDS] [BACKEND...]      short run: 60 s per backend (CI)
#   tools/fuzz.sh --long [SECONDS] [BACKEND...]  long run: 3600 s per backend
#   tools/fuzz.sh --runs N [BACKEND...]       stop after N executions per backend
#
# Backends: io_uring uv (default: both). FUZZ_MAX_LEN sets the largest program
# in bytes (default 192, about 40 engine calls). Each run starts from the seeds in
# fuzz/corpus plus what earlier runs found (build/fuzz/corpus-BACKEND, not
# committed). A finding is written to build/fuzz/artifacts-BACKEND/; replay it
# with  ZIG_TCP_BACKEND=B FUZZ_TRACE=1 build/fuzz/fuzz_ops FILE  (inside
# `unshare -n`, see below) to see the program and every request, refusal and
# completion.
#
# The fuzzer runs inside a private network namespace (unshare -n, its own
# loopback), so its connections and TIME_WAIT sockets never touch the host's
# port space; without root it falls back to the host loopback.
# Leaks: libFuzzer's per-input leak check is off (-detect_leaks=0): it runs
# LeakSanitizer while the engine's I/O thread is mid-flush and then reports the
# flush's transient buffers (seen on both backends, never reproducible on
# replay). LeakSanitizer still runs at exit, after tcp_shutdown has joined the
# I/O thread, and fails the run on any leak.
# Prints, per backend, executions and coverage, and last `N passed, N failed`
# (one per backend: passed = no crash, no finding).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

seconds=60 runs=0
case "${1:-}" in
  --long) seconds=3600; shift
          if [[ "${1:-}" =~ ^[0-9]+$ ]]; then seconds="$1"; shift; fi ;;
  --runs) runs="${2:?--runs N}"; seconds=0; shift 2 ;;
  *) if [[ "${1:-}" =~ ^[0-9]+$ ]]; then seconds="$1"; shift; fi ;;
esac
backends=("$@")
[ ${#backends[@]} -eq 0 ] && backends=(io_uring uv)

out=build/fuzz
mkdir -p "$out"
cc="${FUZZ_CC:-clang-14}"
uv_archive=/usr/lib/x86_64-linux-gnu/libuv_a.a
if ! command -v "$cc" >/dev/null || [ ! -f "$uv_archive" ]; then
  echo "fuzz: needs $cc (with libclang-rt-14-dev) and $uv_archive (libuv1-dev)"
  echo "0 passed, 1 failed"
  exit 1
fi
# build.zig builds the fuzzer straight from the engine's sources (its one
# list), so they carry coverage and sanitizer instrumentation (libuv itself is
# Debian's archive): `./zigw build fuzz` puts it into build/fuzz/fuzz_ops (by a
# rename: running fuzzers keep their binary).
# FUZZ_SRC_REV=REV builds the engine (src/, include/) of that commit instead of
# the work tree's, with this tree's fuzzer (a stable target for a long run
# while the engine is being edited).
engine_root=()
if [ -n "${FUZZ_SRC_REV:-}" ]; then
  src_root="$out/src-$(git rev-parse --short "$FUZZ_SRC_REV")"
  rm -rf "$src_root" && mkdir -p "$src_root" &&
    git archive "$FUZZ_SRC_REV" src include | tar -x -C "$src_root" || { echo "0 passed, 1 failed"; exit 1; }
  echo "fuzz: engine of commit $(git rev-parse --short "$FUZZ_SRC_REV")"
  engine_root=(-Dengine-root="$src_root")
fi
if ! ./zigw build fuzz -Dchecked-cc="$cc" "${engine_root[@]}" --prefix build; then
  echo "fuzz: build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# A private network namespace with only loopback, if we may make one.
netns=()
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null &&
   unshare -n true 2>/dev/null; then
  netns=(unshare -n sh -c 'ip link set lo up && exec "$@"' fuzz)
else
  echo "fuzz: no private network namespace (needs root + unshare): using the host loopback"
fi

passed=0 failed=0
for backend in "${backends[@]}"; do
  corpus="$out/corpus-$backend" artifacts="$out/artifacts-$backend"
  mkdir -p "$corpus" "$artifacts"
  log="$out/fuzz-$backend.log"
  limit=(-max_total_time="$seconds")
  [ "$runs" -gt 0 ] && limit=(-runs="$runs")
  echo "== fuzz_ops, backend $backend: ${limit[*]}"
  start=$(date +%s)
  ZIG_TCP_BACKEND="$backend" ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "${netns[@]}" "$out/fuzz_ops" "${limit[@]}" -max_len="${FUZZ_MAX_LEN:-192}" -timeout=60 -rss_limit_mb=4096 \
      -detect_leaks=0 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" fuzz/corpus >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs="$(grep -E '^stat::number_of_executed_units:' "$log" | tail -n1 | awk '{print $2}')"
  cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1)"
  echo "backend $backend: exit $rc, ${execs:-?} executions in ${took} s, ${cov:-cov: ?}"
  if [ "$rc" -eq 0 ] && ! grep -qE '^==[0-9]+==ERROR|invariant violated|SUMMARY: ' "$log"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    grep -E -A3 'invariant violated|==ERROR|SUMMARY:' "$log" | head -n 20
    echo "finding(s): $(ls "$artifacts" | tr '\n' ' ') (log: $log)"
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
