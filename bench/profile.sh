#!/usr/bin/env bash
# bench/profile.sh -- why a server costs what it costs: runs one echo workload
# against one server and counts, per request, the server's syscalls (by kind)
# and context switches (perf software events / tracepoints: no hardware
# counters are needed), then samples where its CPU time goes (perf record -e
# cpu-clock) and prints the top symbols.
#
#   bench/profile.sh SERVER [CONNS] [SIZE] [SECONDS] [echo|bulk]
#   (bulk: the server reads and discards SIZE-byte writes; figures per KiB)
#   SERVER: engine-io_uring | engine-uv | engine-io_uring-stream | engine-uv-stream
#           | epoll | io_uring | libuv | node | tokio
#           | dartio-model (a MODEL of dart:io in C, bench/dartio_model_server.c)
#   (-stream: the engine server's stream driver, tcp_read_stream with a 256 KiB
#   window, as ZigSocket's Stream; the others: one tcp_read per message)
#
# Needs the binaries ./run-benchmark builds (.tools/bench-bin) and perf
# (Debian linux-perf). Output goes to stdout and bench/out/profile-SERVER.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bench-bin"
server="${1:?usage: bench/profile.sh SERVER [CONNS] [SIZE] [SECONDS] [echo|bulk]}"
conns="${2:-100}"
size="${3:-64}"
secs="${4:-3}"
mode="${5:-echo}"
case "$mode" in
  echo) smode=echo ;; bulk) smode=sink ;;
  *) echo "profile.sh: mode must be echo or bulk" >&2; exit 2 ;;
esac
port=$((23000 + RANDOM % 2000))
mkdir -p "$root/bench/out"
out="$root/bench/out/profile-$server${5:+-$mode}.txt"
command -v perf >/dev/null || { echo "profile.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }

env_add=()
case "$server" in
  engine-io_uring) cmd=("$bin/engine_server" "$port" "$smode" 65536 1); env_add=(ZIG_TCP_BACKEND=io_uring) ;;
  engine-uv) cmd=("$bin/engine_server" "$port" "$smode" 65536 1); env_add=(ZIG_TCP_BACKEND=uv) ;;
  engine-io_uring-stream)
    cmd=("$bin/engine_server" "$port" "$smode" 65536 1 1 stream 262144); env_add=(ZIG_TCP_BACKEND=io_uring) ;;
  engine-uv-stream) cmd=("$bin/engine_server" "$port" "$smode" 65536 1 1 stream 262144); env_add=(ZIG_TCP_BACKEND=uv) ;;
  epoll) cmd=("$bin/epoll_server" "$port" "$smode" 65536) ;;
  io_uring) cmd=("$bin/uring_server" "$port" "$smode" 65536) ;;
  libuv) cmd=("$bin/uv_server" "$port" "$smode" 65536) ;;
  node) cmd=(node "$root/bench/node_server.js" "$port" "$smode") ;;
  tokio) cmd=("$bin/tokio_server" "$port" "$smode" 65536) ;;
  dartio-model) cmd=("$bin/dartio_model_server" "$port" "$smode" 65536) ;;
  *) echo "profile.sh: unknown server $server" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
env "${env_add[@]}" taskset -c 1 "${cmd[@]}" >"$tmp/ready" 2>"$tmp/server.err" &
spid=$!
for _ in $(seq 100); do grep -q ready "$tmp/ready" 2>/dev/null && break; sleep 0.05; done

events="task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter"
for s in io_uring_enter futex epoll_wait epoll_ctl recvfrom sendto read write readv writev ioctl; do
  events="$events,syscalls:sys_enter_$s"
done
# warm up, then count during the measured window only
taskset -c 0 "$bin/loadclient" --port "$port" --mode "$mode" --conns "$conns" --size "$size" --seconds 0.5 --warmup 0 >/dev/null
perf stat -x, -e "$events" -p "$spid" -o "$tmp/stat" &
ppid=$!
sleep 0.1
taskset -c 0 "$bin/loadclient" --port "$port" --mode "$mode" --conns "$conns" --size "$size" --seconds "$secs" --warmup 0 \
  --server-pid "$spid" >"$tmp/run.json"
kill -INT "$ppid"; wait "$ppid" 2>/dev/null || true
perf record -q -e cpu-clock -F 2999 -g -p "$spid" -o "$tmp/perf.data" >/dev/null 2>&1 &
rpid=$!
sleep 0.1
taskset -c 0 "$bin/loadclient" --port "$port" --mode "$mode" --conns "$conns" --size "$size" --seconds "$secs" --warmup 0 >/dev/null
kill -INT "$rpid"; wait "$rpid" 2>/dev/null || true
kill "$spid"; wait "$spid" 2>/dev/null || true

python3 - "$tmp/run.json" "$tmp/stat" "$server" "$conns" "$size" "$mode" >"$out" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1]))
if sys.argv[6] == "bulk":  # per KiB received
    reqs, per = run["bytes"] / 1024, "per KiB"
    print(f"server {sys.argv[3]}: bulk {sys.argv[4]} conns, {sys.argv[5]} B writes -> {run['mb_per_s']:.0f} MB/s, "
          f"server CPU {run['server_cpu_ns_per_kib']:.0f} ns/KiB (perf counted an overlapping window; "
          f"per-KiB figures divide by the load client's byte count)")
else:
    reqs, per = run["requests"], "per request"
    print(f"server {sys.argv[3]}: echo {sys.argv[4]} conns, {sys.argv[5]} B, depth 1 -> "
          f"{run['req_per_s']:.0f} req/s, p50 {run['rtt_us']['p50']:.1f} us, "
          f"server CPU {run['server_cpu_us_per_req']:.2f} us/req (perf counted an overlapping window; "
          f"per-request figures divide by the load client's count)")
print(f"{'event':40s} {'total':>12s} {per:>12s}")
for line in open(sys.argv[2]):
    parts = line.strip().split(",")
    if len(parts) < 3 or not parts[0] or parts[0].startswith("#"):
        continue
    try:
        v = float(parts[0])
    except ValueError:
        continue
    name = parts[2].replace("syscalls:sys_enter_", "syscall ").replace("raw_syscalls:sys_enter", "ALL syscalls")
    if v == 0:
        continue
    unit = " ms" if name == "task-clock" else ""
    print(f"{name:40s} {v:12.0f} {v / reqs:12.3f}{unit}")
EOF
{
  echo
  echo "top symbols (perf record -e cpu-clock, self time):"
  perf report -i "$tmp/perf.data" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -25 || true
  echo
  echo "where the samples are (perf record, by binary: kernel, the engine, libc, the server itself):"
  perf report -i "$tmp/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -8 || true
  echo
  echo "top call chains into the scheduler / locks (children):"
  perf report -i "$tmp/perf.data" --children --sort sym --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+% +[0-9.]+%' | head -25 || true
  echo
  echo "server stderr:"
  cat "$tmp/server.err"
} >>"$out"
cat "$out"
