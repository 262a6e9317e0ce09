#!/usr/bin/env bash
# Soak: 10,000 concurrent connections echoing checksummed data through the
# engine, client and servers in separate processes (reliability/soak.c).
#
#   tools/soak.sh [SECONDS] [BACKEND...]         short run: 10 s after warm-up (CI)
#   tools/soak.sh --long [SECONDS] [BACKEND...]  long run: 60 s
#   SOAK_CONNS=N                                  connections (default 10000)
#   SOAK_MODES="oneshot stream"                   how the servers read (default both)
#   SOAK_SRC_REV=REV                              build the engine of that commit
#
# Backends: io_uring uv (default: both). Per backend one run: one server per
# mode in SOAK_MODES, side by side, the client's connections split evenly
# among them (connection i to server i % N): "oneshot" reads with a tcp_read
# per message, "stream" with one read stream per connection, acknowledging
# each echo once its write completed. So both modes run for the full SECONDS
# and CI takes no longer than with one. Runs inside a private network
# namespace (its own loopback, somaxconn raised there only) when it can make
# one (root + unshare); otherwise on the host loopback. Each process raises its
# fd limit to the hard limit (20000 here), so 10,000 connections need client
# and servers apart. Prints each side's figures (round trips, bytes, RSS after
# warm-up, at the end of the run and after teardown), per server mode the
# resident memory per connection (server RSS after warm-up minus RSS at
# start, divided by its connections), and last `N passed, N failed` (one per
# backend: no error, no corrupted or lost byte, every op completed).
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
read -r -a modes <<<"${SOAK_MODES:-oneshot stream}"
for m in "${modes[@]}"; do
  [[ "$m" == oneshot || "$m" == stream ]] || { echo "soak: unknown mode $m"; echo "0 passed, 1 failed"; exit 1; }
done

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

echo "soak: $conns connections, ${seconds} s after warm-up, servers: ${modes[*]}, fd limit $(ulimit -Hn) (hard) per process"
passed=0 failed=0
for backend in "${backends[@]}"; do
  log="$out/soak-$backend.log"
  : >"$log"
  echo "== soak, backend $backend"
  # Inside the namespace: loopback up, a listen backlog that holds a burst
  # of connects, then the servers in the background and the client.
  ZIG_TCP_BACKEND="$backend" timeout $((seconds + 300)) "${netns[@]}" bash -c '
    set -u
    ns=$1 soak=$2 dir=$3 conns=$4 seconds=$5; shift 5
    if [ -n "$ns" ]; then ip link set lo up; sysctl -qw net.core.somaxconn=16384 net.ipv4.tcp_max_syn_backlog=16384; fi
    n=$# i=0 pids=() ports=
    for mode in "$@"; do
      # Server i gets the connections i, i + n, i + 2n, ... of the client.
      fifo="$dir/soak-$mode.port"
      rm -f "$fifo" && mkfifo "$fifo"
      "$soak" server "$fifo" $(( conns / n + (i < conns % n ? 1 : 0) )) "$mode" &
      pids+=($!)
      # A server writes its port into its fifo once it listens: reading it
      # waits exactly until the server is ready (or has died: then it is empty).
      read -r port <"$fifo" || port=
      [ -n "$port" ] || { echo "soak: server ($mode) did not start"; kill "${pids[@]}" 2>/dev/null; exit 1; }
      ports="${ports:+$ports,}$port" i=$((i + 1))
    done
    "$soak" client "$ports" "$conns" "$seconds"
    client_rc=$?
    servers_rc=0
    for pid in "${pids[@]}"; do wait "$pid" || servers_rc=1; done
    echo "soak: client exit $client_rc, servers exit $servers_rc"
    [ $client_rc -eq 0 ] && [ $servers_rc -eq 0 ]
  ' soak "${netns[*]:+ns}" "$out/soak" "$out" "$conns" "$seconds" "${modes[@]}" >>"$log" 2>&1  # append: several writers
  rc=$?
  cat "$log"
  for mode in "${modes[@]}"; do
    per="$(grep -oE "mode=$mode connections=[0-9]+ .*memory_per_connection_bytes=-?[0-9]+" "$log" | tail -n1)"
    echo "soak: backend $backend, $mode server: resident memory per connection ${per##*=} bytes (${per%% rss_start*})"
  done
  servers_ok=$(grep -c 'soak-server: errors=0 unexpected=0' "$log")
  if [ "$rc" -eq 0 ] && grep -q 'soak-client: errors=0 unexpected=0 corrupted=0 lost=0' "$log" &&
     [ "$servers_ok" -eq "${#modes[@]}" ]; then
    passed=$((passed + 1))
  else
    echo "soak: backend $backend FAILED (exit $rc, log $log)"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
