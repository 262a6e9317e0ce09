#!/usr/bin/env bash
# Soak: 10,000 concurrent connections echoing checksummed data through the
# engine, client and server in separate processes (reliability/soak.c).
#
#   tools/soak.sh [SECONDS] [BACKEND...]         short run: 10 s after warm-up (CI)
#   tools/soak.sh --long [SECONDS] [BACKEND...]  long run: 60 s
#   SOAK_CONNS=N                                  connections (default 10000)
#   SOAK_SRC_REV=REV                              build the engine of that commit
#
# Backends: io_uring uv (default: both). Runs inside a private network
# namespace (its own loopback, somaxconn raised there only) when it can make
# one (root + unshare); otherwise on the host loopback. Each process raises its
# fd limit to the hard limit (20000 here), so 10,000 connections need client
# and server apart. Prints each side's figures (round trips, bytes, RSS after
# warm-up, at the end of the run and after teardown) and last
# `N passed, N failed` (one per backend: no error, no corrupted or lost byte,
# every op completed).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

seconds=10
case "${1:-}" in
  --long) seconds=60; shift
          if [[ "${1:-}" =~ ^[0-9]+$ ]]; then seconds="$1"; shift; fi ;;
  *) if [[ "${1:-}" =~ ^[0-9]+$ ]]; then seconds="$1"; shift; fi ;;
esac
backends=("$@")
[ ${#backends[@]} -eq 0 ] && backends=(io_uring uv)
conns="${SOAK_CONNS:-10000}"

out=build/reliability
source "$root/tools/reliability-build.sh"
reliability_build soak "${SOAK_CC:-clang-14}" "${SOAK_SRC_REV:-}"

netns=()
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null &&
   unshare -n true 2>/dev/null; then
  netns=(unshare -n)
else
  echo "soak: no private network namespace (needs root + unshare): using the host loopback"
fi

echo "soak: $conns connections, ${seconds} s after warm-up, fd limit $(ulimit -Hn) (hard) per process"
passed=0 failed=0
for backend in "${backends[@]}"; do
  log="$out/soak-$backend.log"
  portfile="$out/soak-$backend.port"
  rm -f "$portfile"
  : >"$log"
  echo "== soak, backend $backend"
  # Inside the namespace: loopback up, a listen backlog that holds a burst
  # of connects, then the server in the background and the client.
  ZIG_TCP_BACKEND="$backend" timeout $((seconds + 300)) "${netns[@]}" bash -c '
    set -u
    if [ -n "$1" ]; then ip link set lo up; sysctl -qw net.core.somaxconn=16384 net.ipv4.tcp_max_syn_backlog=16384; fi
    mkfifo "$3"
    "$2" server "$3" "$4" &
    server=$!
    # The server writes its port into the fifo once it listens: reading it
    # waits exactly until the server is ready (or has died: then it is empty).
    read -r port <"$3" || port=
    [ -n "$port" ] || { echo "soak: server did not start"; kill $server 2>/dev/null; exit 1; }
    "$2" client "$port" "$4" "$5"
    client_rc=$?
    wait $server
    server_rc=$?
    echo "soak: client exit $client_rc, server exit $server_rc"
    [ $client_rc -eq 0 ] && [ $server_rc -eq 0 ]
  ' soak "${netns[*]:+ns}" "$out/soak" "$portfile" "$conns" "$seconds" >>"$log" 2>&1  # append: two writers
  rc=$?
  cat "$log"
  if [ "$rc" -eq 0 ] && grep -q 'soak-client: errors=0 unexpected=0 corrupted=0 lost=0' "$log" &&
     grep -q 'soak-server: errors=0 unexpected=0' "$log"; then
    passed=$((passed + 1))
  else
    echo "soak: backend $backend FAILED (exit $rc, log $log)"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
