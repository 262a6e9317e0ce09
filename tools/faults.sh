#!/usr/bin/env bash
# Fault injection against the engine (reliability/faults.c), per backend.
#
#   tools/faults.sh [BACKEND...]        default: io_uring uv
#   FAULTS_SRC_REV=REV                  build the engine of that commit
#
# Local faults (a private network namespace with only loopback, or the host
# loopback without root): peer RST during a pending read and a pending write,
# EMFILE on accept and connect with recovery, a burst of 70,000 cancelled
# accepts -- each over TCP and again over Unix domain sockets (where the
# "reset" is a peer closing with data unread); on io_uring also all of them
# again on a 2-entry ring
# (ZIG_TCP_URING_ENTRIES=2: SQ-full backlog and CQ overflow).
#
# Network faults (need root, ip, nft): two namespaces joined by a veth pair,
# 10.77.0.1 (client) and 10.77.0.2 (server), made and removed by this script;
# no traffic leaves them. An engine echo server runs in the server namespace;
# the engine client streams checksummed data through:
#   loss      nftables drops 10% of TCP packets both ways (numgen random)
#   delay     every packet to the server waits 20 ms in an NFQUEUE program
#             (reliability/nfq_delay.c; needs libnetfilter-queue-dev and
#             iptables, installed here on first use)
#   reset     mid-transfer, `reject with tcp reset` on the server side
#   link-cut  mid-transfer the veth goes down for 3 s, then up: data resumes
#   cut-close mid-transfer the veth goes down, the client closes: every
#             pending op completes with TCP_ERR_CLOSED
#   connect   SYNs dropped: a connect with a timeout reports TCP_ERR_TIMED_OUT,
#             a close during the connect completes it
# Every stream is verified byte by byte (0 corrupted), every pending op must
# complete within a bound. Prints one PASS/FAIL line per check and last
# `N passed, N failed`; network faults are skipped, with a message, where
# namespaces are impossible.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
backends=("$@")
[ ${#backends[@]} -eq 0 ] && backends=(io_uring uv)

out=build/reliability
source "$root/tools/reliability-build.sh"
cc="${FAULTS_CC:-clang-14}"
command -v "$cc" >/dev/null || cc=cc
reliability_build faults "$cc" "${FAULTS_SRC_REV:-}"
faults="$root/$out/faults"

passed=0 failed=0 skipped=0
results="$out/faults-results.txt"
: >"$results"
# Counts the PASS/FAIL lines of a check's output; a check that printed
# neither (it crashed or hung) is one failure.
tally() {
  local name="$1" log="$2" rc="$3"
  cat "$log"
  local p f
  p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: no result (exit $rc)"; f=1
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exit $rc"; f=1
  fi
  passed=$((passed + p)); failed=$((failed + f))
  echo "$name $p $f" >>"$results"
}

can_netns=true
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! unshare -n true 2>/dev/null; then
  can_netns=false
fi

# ---- local faults ------------------------------------------------------------
for backend in "${backends[@]}"; do
  echo "== local faults, backend $backend"
  for check in rst-peer emfile "overflow 70000" "rst-peer unix" "emfile unix" "overflow 70000 unix"; do
    tag="${check%% *}"; [ "${check##* }" = unix ] && tag="$tag-unix"
    log="$out/faults-$backend-$tag.log"
    if $can_netns; then
      ZIG_TCP_BACKEND=$backend timeout 300 unshare -n sh -c 'ip link set lo up && exec "$@"' faults "$faults" $check \
        >"$log" 2>&1
    else
      ZIG_TCP_BACKEND=$backend timeout 300 "$faults" $check >"$log" 2>&1
    fi
    tally "$backend/$tag" "$log" $?
  done
done
# io_uring on a 2-entry SQ / 4-entry CQ (ZIG_TCP_URING_ENTRIES): the same
# faults through the SQ-full backlog and CQ overflow (NODROP) paths.
for backend in "${backends[@]}"; do
  [ "$backend" = io_uring ] || continue
  echo "== local faults, backend io_uring, ZIG_TCP_URING_ENTRIES=2"
  for check in rst-peer emfile "overflow 5000" "rst-peer unix" "emfile unix" "overflow 5000 unix"; do
    tag="${check%% *}"; [ "${check##* }" = unix ] && tag="$tag-unix"
    log="$out/faults-tiny-ring-$tag.log"
    if $can_netns; then
      ZIG_TCP_URING_ENTRIES=2 ZIG_TCP_BACKEND=io_uring timeout 300 unshare -n sh -c 'ip link set lo up && exec "$@"' \
        faults "$faults" $check >"$log" 2>&1
    else
      ZIG_TCP_URING_ENTRIES=2 ZIG_TCP_BACKEND=io_uring timeout 300 "$faults" $check >"$log" 2>&1
    fi
    sed -i 's/^\(PASS\|FAIL\) io_uring\//\1 io_uring-ring2\//' "$log"
    tally "io_uring-ring2/$tag" "$log" $?
  done
done

# ---- network faults ------------------------------------------------------------
if ! $can_netns || ! command -v nft >/dev/null; then
  echo "faults: SKIPPED the network faults: they need root, iproute2 and nftables (network namespaces)"
  skipped=1
else
  nfq_ok=false
  if [ ! -f /usr/include/libnetfilter_queue/libnetfilter_queue.h ] || ! command -v iptables >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnetfilter-queue-dev iptables >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnetfilter-queue-dev iptables >/dev/null 2>&1; }
  fi
  if [ -f /usr/include/libnetfilter_queue/libnetfilter_queue.h ] &&
     ./zigw build nfq_delay -Dchecked-cc="$cc" --prefix build >"$out/nfq_delay.build.log" 2>&1; then
    nfq_ok=true
  fi
  tag="zr$$"
  ns_c="$tag-c" ns_s="$tag-s"
  ip_c=10.77.0.1 ip_s=10.77.0.2
  server_pid= nfq_pid=
  cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$nfq_pid" ] && kill "$nfq_pid" 2>/dev/null && wait "$nfq_pid" 2>/dev/null
    ip netns del "$ns_c" 2>/dev/null
    ip netns del "$ns_s" 2>/dev/null
    rm -f "$out/$tag".fifo*
  }
  trap cleanup EXIT
  ip netns add "$ns_c" && ip netns add "$ns_s" &&
    ip link add "${tag}c" netns "$ns_c" type veth peer name "${tag}s" netns "$ns_s" &&
    ip -n "$ns_c" addr add "$ip_c/24" dev "${tag}c" && ip -n "$ns_s" addr add "$ip_s/24" dev "${tag}s" &&
    ip -n "$ns_c" link set "${tag}c" up && ip -n "$ns_s" link set "${tag}s" up &&
    ip -n "$ns_c" link set lo up && ip -n "$ns_s" link set lo up
  if [ $? -ne 0 ]; then
    echo "faults: SKIPPED the network faults: could not make the namespaces and the veth pair here"
    skipped=$((skipped + 1))
  else
    in_c() { ip netns exec "$ns_c" "$@"; }
    in_s() { ip netns exec "$ns_s" "$@"; }
    nft_s() { ip netns exec "$ns_s" nft "$@"; }
    # stream NAME MODE CONNS BYTES BOUND [on-progress command...]: runs the
    # client; when it prints "progress", runs the command (the fault).
    stream() {
      local name="$1" mode="$2" conns="$3" bytes="$4" bound="$5"; shift 5
      local fifo="$out/$tag.fifo.client" log="$out/faults-$backend-$name.log"
      rm -f "$fifo"; mkfifo "$fifo"
      ZIG_TCP_BACKEND=$backend timeout $((bound + 60)) ip netns exec "$ns_c" \
        "$faults" stream "$ip_s" "$port" "$conns" "$bytes" "$bound" "$backend/$name" "$mode" >"$fifo" 2>&1 &
      local pid=$!
      local line
      : >"$log"
      while IFS= read -r line; do
        echo "$line" >>"$log"
        if [ "$line" = progress ] && [ $# -gt 0 ]; then CLIENT_PID=$pid "$@"; fi
      done <"$fifo"
      wait $pid
      local rc=$?
      tally "$backend/$name" "$log" $rc
    }
    cut_and_restore() { ip -n "$ns_c" link set "${tag}c" down; sleep 3; ip -n "$ns_c" link set "${tag}c" up; }
    # The client runs under timeout(1): the signal goes to its child, the client.
    cut_and_close() { ip -n "$ns_c" link set "${tag}c" down; kill -USR1 "$(pgrep -P "$CLIENT_PID")"; }
    add_reset() { nft_s add rule inet zr in tcp dport "$port" reject with tcp reset; }

    for backend in "${backends[@]}"; do
      echo "== network faults, backend $backend (client $ip_c in $ns_c, server $ip_s in $ns_s)"
      fifo="$out/$tag.fifo.port"
      rm -f "$fifo"; mkfifo "$fifo"
      ZIG_TCP_BACKEND=$backend ip netns exec "$ns_s" "$faults" echo-server "$ip_s" "$fifo" \
        >"$out/faults-$backend-server.log" 2>&1 &
      server_pid=$!
      read -r port <"$fifo" || port=
      if [ -z "$port" ]; then
        echo "FAIL $backend/echo-server: did not start"; cat "$out/faults-$backend-server.log"
        failed=$((failed + 1)); continue
      fi
      nft_s add table inet zr && nft_s add chain inet zr in '{ type filter hook input priority 0; }' &&
        nft_s add chain inet zr out '{ type filter hook output priority 0; }'

      stream baseline clean 4 2000000 60

      nft_s add rule inet zr in meta l4proto tcp numgen random mod 100 '<' 10 counter drop
      nft_s add rule inet zr out meta l4proto tcp numgen random mod 100 '<' 10 counter drop
      stream loss-10pct clean 4 1000000 180
      # The rule must really have dropped packets, or the check proved nothing.
      dropped=$( (nft_s list chain inet zr in; nft_s list chain inet zr out) |
                 sed -nE 's/.*counter packets ([0-9]+).*/\1/p' | awk '{s += $1} END {print s + 0}')
      if [ "$dropped" -gt 0 ]; then
        echo "PASS $backend/loss-applied: nftables dropped $dropped packets"; passed=$((passed + 1))
      else
        echo "FAIL $backend/loss-applied: the drop rule dropped nothing"; failed=$((failed + 1))
      fi
      nft_s flush chain inet zr in; nft_s flush chain inet zr out

      # This kernel has no nft "queue" expression (CONFIG_NFT_QUEUE unset) but
      # has the xtables NFQUEUE target: iptables (nft-compat) reaches it.
      if $nfq_ok && command -v iptables >/dev/null; then
        ip netns exec "$ns_s" "$root/$out/nfq_delay" 7 20 >"$out/faults-$backend-nfq.log" 2>&1 &
        nfq_pid=$!
        if in_s iptables -A INPUT -p tcp --dport "$port" -j NFQUEUE --queue-num 7; then
          stream delay-20ms clean 4 1000000 180
          in_s iptables -D INPUT -p tcp --dport "$port" -j NFQUEUE --queue-num 7
          kill "$nfq_pid" 2>/dev/null; wait "$nfq_pid" 2>/dev/null; nfq_pid=
          delayed="$(sed -nE 's/^nfq_delay: ([0-9]+) packets delayed.*/\1/p' "$out/faults-$backend-nfq.log")"
          echo "nfq_delay: ${delayed:-0} packets delayed by 20 ms"
          if [ "${delayed:-0}" -gt 0 ]; then
            echo "PASS $backend/delay-queue: the delay really applied (${delayed} packets held)"; passed=$((passed + 1))
          else
            echo "FAIL $backend/delay-queue: no packet went through the queue"; failed=$((failed + 1))
          fi
        else
          kill "$nfq_pid" 2>/dev/null; wait "$nfq_pid" 2>/dev/null; nfq_pid=
          echo "faults: delay SKIPPED: iptables -j NFQUEUE refused in the namespace"
          skipped=$((skipped + 1))
        fi
      else
        echo "faults: delay SKIPPED: reliability/nfq_delay.c did not build (libnetfilter-queue-dev) or no iptables"
        skipped=$((skipped + 1))
      fi

      stream reset-midway error 1 1000000000 60 add_reset
      nft_s flush chain inet zr in

      stream link-cut-3s clean 2 16000000 180 cut_and_restore

      stream link-cut-close close 1 1000000000 60 cut_and_close
      ip -n "$ns_c" link set "${tag}c" up

      nft_s add rule inet zr in tcp dport "$port" tcp flags syn drop
      log="$out/faults-$backend-connect.log"
      ZIG_TCP_BACKEND=$backend timeout 120 ip netns exec "$ns_c" "$faults" connect-timeout "$ip_s" "$port" >"$log" 2>&1
      tally "$backend/connect" "$log" $?
      nft_s delete table inet zr

      kill "$server_pid"; wait "$server_pid"; server_pid=
      grep -h 'echo-server:' "$out/faults-$backend-server.log"
    done
  fi
fi
echo "faults: $passed checks passed, $failed failed${skipped:+, $skipped group(s) skipped}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
