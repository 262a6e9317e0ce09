#!/usr/bin/env bash
# Runs the C suite on Linux arm64 under qemu-user: cross-builds the engine and
# tcp_suite for aarch64-linux-gnu into build/arm64 (the native zig-out/ stays as
# it is) and runs the suite with qemu-aarch64-static against Debian's arm64
# glibc (libc6-arm64-cross, in /usr/aarch64-linux-gnu). The plain target needs no
# glibc suffix: Zig links against its own glibc stubs (the binaries ask for
# GLIBC_2.27 at most), which Debian's 2.36 satisfies.
#
#   tools/arm64_suite.sh [suite arguments...]   (e.g. test names, as tcp_suite takes)
#   tools/arm64_suite.sh --build-only           only the cross build (run-tests starts it early,
#                                               beside other parts); prints "1 passed, 0 failed"
#
# qemu-user (7.2 in bookworm) implements no io_uring syscall (io_uring_setup
# fails with ENOSYS), so what runs here is the libuv backend, reached two ways:
#   1. no ZIG_TCP_BACKEND: the engine must fall back from io_uring to uv by
#      itself; the suite's "backend:" line must say uv (a check of its own);
#   2. ZIG_TCP_BACKEND=uv.
#   3. a check that ZIG_TCP_BACKEND=io_uring is refused with
#      TCP_ERR_UNSUPPORTED (-7) rather than crashing or hanging.
# io_uring itself is never run on arm64 here. tcp_fallback_test is not run:
# its cases install a seccomp filter, which qemu-user refuses (prctl
# PR_SET_SECCOMP gives EINVAL in the guest, seccomp(2) ENOSYS), and its last
# case needs io_uring.
#
# Prints each run's output, then "N passed, N failed" summed over the runs and
# the checks. Installs qemu-user-static and libc6-arm64-cross through
# tools/install-deps.sh when they are missing. Each run is stopped after
# ARM64_SUITE_TIMEOUT seconds (default 900); exit code 0 only when all passed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { echo "arm64_suite: $*" >&2; }

target=aarch64-linux-gnu
sysroot=/usr/aarch64-linux-gnu # Debian's libc6-arm64-cross
prefix="$root/build/arm64"
timeout_s="${ARM64_SUITE_TIMEOUT:-900}"

# ---- qemu + arm64 glibc -----------------------------------------------------------
have_qemu() {
  command -v qemu-aarch64-static >/dev/null 2>&1 && [ -e "$sysroot/lib/ld-linux-aarch64.so.1" ]
}
if ! have_qemu; then
  log "qemu-aarch64-static or $sysroot is missing: installing through tools/install-deps.sh"
  bash "$root/tools/install-deps.sh" >&2
  have_qemu || { log "still missing after tools/install-deps.sh (qemu-user-static, libc6-arm64-cross)"; exit 1; }
fi

# ---- build ----------------------------------------------------------------------
log "building for $target into build/arm64"
./zigw build suite -Dtarget="$target" --prefix "$prefix" >&2
suite="$prefix/bin/tcp_suite"
[ -x "$suite" ] || { log "missing $suite"; exit 1; }
if [ "${1:-}" = --build-only ]; then
  echo "PASS cross build for $target"
  echo "1 passed, 0 failed"
  exit 0
fi

# ---- run ------------------------------------------------------------------------
passed=0 failed=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

# run_suite BACKEND [suite args...]: runs the suite into $out and returns its
# exit code; BACKEND "" leaves ZIG_TCP_BACKEND unset.
# LD_LIBRARY_PATH points the guest's loader at the library just installed in
# build/arm64/lib (the binary's own RUNPATH is a path into .zig-cache).
run_suite() {
  local backend="$1"; shift
  local env_cmd=(env -u ZIG_TCP_BACKEND)
  [ -n "$backend" ] && env_cmd=(env ZIG_TCP_BACKEND="$backend")
  set +e
  "${env_cmd[@]}" timeout --kill-after=10 "$timeout_s" \
    qemu-aarch64-static -L "$sysroot" -E LD_LIBRARY_PATH="$prefix/lib" "$suite" "$@" >"$out" 2>&1
  local rc=$?
  set -e
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "FAIL the suite ran past $timeout_s s" >>"$out"; fi
  return "$rc"
}

# add_summary RC: adds the last "N passed, N failed" of $out (one failure if
# there is none, or if the suite failed without counting a failure).
add_summary() {
  local rc="$1" line p f
  line="$(grep -a -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1 || true)"
  if [ -z "$line" ]; then
    p=0 f=1
  else
    p="$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")"
    f="$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")"
    [ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
  fi
  passed=$((passed + p)) failed=$((failed + f))
}

# check NAME CONDITION-RC: one PASS/FAIL line that counts like a test.
check() {
  if [ "$2" = 0 ]; then echo "PASS $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi
}

echo "=== arm64 (qemu-user): tcp_suite, ZIG_TCP_BACKEND unset (io_uring fails under qemu -> uv)"
rc=0; run_suite "" "$@" || rc=$?
cat "$out"
add_summary "$rc"
grep -q -x 'backend: uv' "$out" && on_uv=0 || on_uv=1
check "arm64: with ZIG_TCP_BACKEND unset the engine fell back to uv ($(grep -a -m1 '^backend:' "$out" || echo 'no backend line'))" "$on_uv"

echo "=== arm64 (qemu-user): tcp_suite, ZIG_TCP_BACKEND=uv"
rc=0; run_suite uv "$@" || rc=$?
cat "$out"
add_summary "$rc"

echo "=== arm64 (qemu-user): ZIG_TCP_BACKEND=io_uring must be refused (no io_uring under qemu-user)"
rc=0; run_suite io_uring lifecycle || rc=$?
sed 's/^/    | /' "$out" # indented: this run's own FAIL and counts are the expected outcome
grep -q -x 'backend: (none)' "$out" && grep -q 'tcp_init returned -7 (TCP_ERR_UNSUPPORTED)' "$out" \
  && [ "$rc" != 124 ] && [ "$rc" != 137 ] && [ "$rc" -lt 128 ] && refused=0 || refused=1
check "arm64: ZIG_TCP_BACKEND=io_uring -> tcp_init gives TCP_ERR_UNSUPPORTED, exits cleanly (exit $rc)" "$refused"

# No "arm64:" prefix: ./run-tests reads a summary's optional prefix as letters only.
echo "=== arm64 (qemu-user): total over the two suite runs and the two checks"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
