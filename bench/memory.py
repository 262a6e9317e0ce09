"""Memory per idle connection: `./run-benchmark --memory` (bench/bench.py --memory).

For each server, number of connections N and message size S, on a fresh server:

  1. the server's memory before the first connection (once it is quiet: its CPU
     time and RSS did not move over one sampling window);
  2. bench/idleclient (a separate process: 20,000 descriptors per process here)
     opens N connections from several 127.0.0.x sources, never more than 256
     that the server has not echoed or accepted yet, echoes ONE message of S
     bytes on each (S = 0: none) and checks every byte, then reports "idle";
  3. the server is measured once it holds all N connections (its socket
     descriptors in /proc/PID/fd) and is quiet again; the client meanwhile
     fails the run if the server sends or closes anything;
  4. the client resets all N, the server stops.

Bytes per idle connection = (after - before) / N, for VmRSS (/proc/PID/status)
and for Pss and Private_Clean + Private_Dirty (/proc/PID/smaps_rollup). The
servers that take a read size get 64 KiB (the engine server keeps a 64 KiB
tcp_read pending, as the Dart layer does); Node sizes its own reads, the dart:io
model reads what FIONREAD reports. No timing is judged: memory is not
timing-sensitive.
"""
import json
import os
import subprocess
import time

DEFAULT_CONNS = (1000, 10000)
DEFAULT_SIZES = (0, 4096, 32768)
SMOKE_CONNS = (16,)
SMOKE_SIZES = (0, 4096)
CONNS_MAX = 15000  # the client holds N + a few descriptors of its 20,000
SOURCES = 8        # client source addresses 127.0.0.2 .. 127.0.0.9
QUIET_WINDOW_S = 0.2
# Idle means idle for a while: the engine hands the memory a busy time freed
# back to the OS after 1 s with nothing to do (src/loop.c, IDLE_TRIM_MS), as
# any server sitting idle would see. Every server gets the same wait.
IDLE_HOLD_S = 2.0
STALL_S = 10.0          # settling gives up after this long without progress
SETTLE_LIMIT_S = 120.0  # ... or after this long in all
CLIENT_TIMEOUT_S = 120

# the target: <= 1 KiB per idle connection after 32 KiB, 10,000 connections
TARGET_SERVERS = ("engine-io_uring", "engine-uv")
TARGET_CONNS, TARGET_SIZE, TARGET_BYTES = 10000, 32768, 1024


def key(conns, size):
    return f"idle {conns}c {fmt_size(size)}"


def fmt_size(n):
    return f"{n // 1024}K" if n >= 1024 and n % 1024 == 0 else f"{n}B"


def parse_sizes(text):
    """'0,4K,32K' -> [0, 4096, 32768]"""
    out = []
    for part in text.split(","):
        part = part.strip().upper()
        mult = 1024 if part.endswith("K") else 1
        out.append(int(part.rstrip("K")) * mult)
    return out


# ---------------------------------------------------------------- /proc
def _kib_fields(path, names):
    """The 'Name:  123 kB' fields of a /proc file, in bytes."""
    out = {}
    with open(path) as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in names:
                out[name] = int(rest.split()[0]) * 1024
    return out


def proc_memory(pid):
    """Resident memory of pid in bytes: rss (VmRSS), rss_anon, pss, private."""
    st = _kib_fields(f"/proc/{pid}/status", ("VmRSS", "RssAnon"))
    mem = {"rss": st["VmRSS"], "rss_anon": st.get("RssAnon")}
    try:
        ro = _kib_fields(f"/proc/{pid}/smaps_rollup", ("Pss", "Private_Clean", "Private_Dirty"))
        mem["pss"] = ro["Pss"]
        mem["private"] = ro["Private_Clean"] + ro["Private_Dirty"]
    except (OSError, KeyError):  # smaps_rollup needs Linux 4.14
        mem["pss"] = mem["private"] = None
    return mem


def proc_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def count_sockets(pid):
    n = 0
    fd_dir = f"/proc/{pid}/fd"
    for name in os.listdir(fd_dir):
        try:
            n += os.readlink(os.path.join(fd_dir, name)).startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return n


def wait_quiet(pid, sockets_min):
    """Samples the server until it holds sockets_min sockets and neither its CPU
    time nor its RSS moved over one window (it has handled everything it was
    sent). This is a benchmark's settling check, not a test's synchronisation:
    the echoes the client confirmed and the socket count are the facts; quiet
    means the last read was re-armed. A server still accepting (the client's
    connects complete in the kernel's backlog before the server accepts) makes
    progress: more sockets or a moving RSS. Gives up after STALL_S without
    progress or SETTLE_LIMIT_S in all. Returns what it saw."""
    t0 = last_progress = time.time()
    prev, prev_sockets = None, 0
    while True:
        cpu, rss, sockets = proc_cpu_ticks(pid), proc_memory(pid)["rss"], count_sockets(pid)
        now = time.time()
        if prev is not None and prev == (cpu, rss) and sockets >= sockets_min:
            time.sleep(IDLE_HOLD_S)
            if (proc_cpu_ticks(pid), proc_memory(pid)["rss"]) == (cpu, rss) or now - t0 > SETTLE_LIMIT_S:
                return {"settled": True, "waited_s": round(time.time() - t0, 2), "sockets": sockets}
            cpu, rss = proc_cpu_ticks(pid), proc_memory(pid)["rss"]
            last_progress = now = time.time()
        if prev is None or rss != prev[1] or sockets > prev_sockets:
            last_progress = now
        if now - last_progress > STALL_S or now - t0 > SETTLE_LIMIT_S:
            return {"settled": False, "waited_s": round(now - t0, 2), "sockets": sockets}
        prev, prev_sockets = (cpu, rss), sockets
        time.sleep(QUIET_WINDOW_S)


# ---------------------------------------------------------------- one measurement
def _client(binary, server, conns, size, cpu):
    # --server-pid: the client keeps at most 256 connections the server has not
    # accepted yet, so no server's listen backlog overflows (tokio's is 1024)
    argv = [binary, "--port", str(server.port), "--conns", str(conns), "--size", str(size), "--sources", str(SOURCES),
            "--timeout", str(CLIENT_TIMEOUT_S), "--server-pid", str(server.pid)]
    if cpu is not None:
        argv = ["taskset", "-c", cpu] + argv
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish_client(client):
    """Tells the client to close everything; returns an error text or None."""
    try:
        out, err = client.communicate(input="close\n", timeout=60)
    except subprocess.TimeoutExpired:
        client.kill()
        out, err = client.communicate()
    if client.returncode != 0:
        return (err or out).strip()[-300:] or f"idle client exit code {client.returncode}"
    return None


def measure(server, conns, size, client_binary, client_cpu):
    """One server (fresh, listening), N connections, message size S. Returns the
    row's result: memory before / idle, bytes per connection, or an error."""
    quiet0 = wait_quiet(server.pid, 0)
    before = proc_memory(server.pid)
    sockets0 = quiet0["sockets"]
    client = _client(client_binary, server, conns, size, client_cpu)
    line = client.stdout.readline()  # the client gives up by itself after CLIENT_TIMEOUT_S
    if not line.startswith('{"idle"'):
        return {"error": "idle client: " + (_finish_client(client) or line.strip() or "no output")}
    idle_info = json.loads(line)
    quiet = wait_quiet(server.pid, sockets0 + conns)
    alive = server.alive()
    idle = proc_memory(server.pid) if alive else None
    client_error = _finish_client(client)
    if not alive:
        return {"error": "server died: " + server.stop()[-300:]}
    if client_error:
        return {"error": "idle client: " + client_error}
    if quiet["sockets"] < sockets0 + conns:
        return {"error": f"server holds {quiet['sockets'] - sockets0} of {conns} connections "
                         f"after {quiet['waited_s']} s"}
    per_conn = {k: (None if before[k] is None or idle[k] is None else round((idle[k] - before[k]) / conns, 1))
                for k in before}
    return {"before": before, "idle": idle, "per_conn": per_conn, "settled": quiet["settled"],
            "quiet_before": quiet0, "quiet_idle": quiet, "connect_and_echo_s": idle_info["connect_and_echo_s"],
            "sources": idle_info["sources"]}


def run(spec, conns_list, sizes, make_server, client_binary, client_cpu, only=None):
    """Every server x N x S, a fresh server each time. make_server(name, spec)
    starts one (raises RuntimeError). Returns the rows."""
    rows = []
    width = max([16] + [len(s) for s in spec])
    for conns in conns_list:
        assert 0 < conns <= CONNS_MAX
        for size in sizes:
            k = key(conns, size)
            if only and not only(k):
                continue
            for name in spec:
                rows.append(_run_one(name, spec[name], conns, size, make_server, client_binary, client_cpu))
                res = rows[-1]["result"]
                short = (f"{res['per_conn']['rss']:9.0f} B/conn RSS" +
                         ("" if res["settled"] else " (not settled)") if "per_conn" in res
                         else "ERROR " + res["error"][:120])
                print(f"  {name:{width}s} {k:20s} {short}", flush=True)
    return rows


def _run_one(name, spec, conns, size, make_server, client_binary, client_cpu):
    row = {"server": name, "workload": key(conns, size), "conns": conns, "size": size}
    try:
        server = make_server(name, spec)
    except RuntimeError as e:
        row["result"] = {"error": str(e)}
        return row
    row["ready"] = server.ready_line
    try:
        row["result"] = measure(server, conns, size, client_binary, client_cpu)
    except (OSError, ValueError) as e:  # the server vanished under /proc, or garbled client output
        row["result"] = {"error": f"{type(e).__name__}: {e}"}
    finally:
        err = server.stop()
        if err.strip():
            row["server_stderr"] = err[-500:]
    return row


# ---------------------------------------------------------------- output
def targets(rows):
    out = []
    for r in rows:
        pc = r["result"].get("per_conn")
        if r["server"] in TARGET_SERVERS and r["conns"] == TARGET_CONNS and r["size"] == TARGET_SIZE and pc:
            out.append({"target": f"{r['server']}: resident memory per idle connection after {fmt_size(TARGET_SIZE)}, "
                                  f"{TARGET_CONNS} connections <= {TARGET_BYTES} B",
                        "bytes": pc["rss"], "met": pc["rss"] <= TARGET_BYTES})
    return out


def _num(x):
    return "-" if x is None else f"{x:,.0f}"


def table(rows, servers):
    """Markdown: a summary (RSS bytes per connection by server and size, one
    block per N), the detail rows, the targets."""
    lines = ["\n### memory per idle connection: server RSS after N idle connections (each after one echoed "
             "message of S bytes, a read pending) minus before the first, / N; bytes",
             "\n(dartio-model is a MODEL of dart:io's architecture in C, bench/dartio_model_server.c, not dart:io)"]
    sizes = list(dict.fromkeys(r["size"] for r in rows))
    for conns in dict.fromkeys(r["conns"] for r in rows):
        lines += [f"\n#### {conns} connections, RSS bytes per connection\n",
                  "| server | " + " | ".join(f"S = {fmt_size(s)}" for s in sizes) + " |",
                  "|---|" + "---|" * len(sizes)]
        for srv in servers:
            cells = []
            for s in sizes:
                r = next((x for x in rows if x["server"] == srv and x["conns"] == conns and x["size"] == s), None)
                res = r["result"] if r else {}
                cells.append("-" if not r else "failed" if "error" in res else
                             _num(res["per_conn"]["rss"]) + ("" if res["settled"] else " *"))
            lines.append(f"| {srv} | " + " | ".join(cells) + " |")
    lines += ["\n#### every measurement (KiB before / idle; bytes per connection)\n",
              "| server | N | S | RSS before KiB | RSS idle KiB | RSS B/conn | Pss B/conn | Private B/conn | "
              "RssAnon B/conn | settled |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        res = r["result"]
        if "error" in res:
            lines.append(f"| {r['server']} | {r['conns']} | {fmt_size(r['size'])} | failed: {res['error'][:80]} "
                         "| | | | | | |")
            continue
        pc = res["per_conn"]
        lines.append(f"| {r['server']} | {r['conns']} | {fmt_size(r['size'])} | {res['before']['rss'] // 1024:,} | "
                     f"{res['idle']['rss'] // 1024:,} | {_num(pc['rss'])} | {_num(pc['pss'])} | "
                     f"{_num(pc['private'])} | {_num(pc['rss_anon'])} | {'yes' if res['settled'] else 'NO'} |")
    lines.append(f"\n`*` / settled NO: the server's CPU time or RSS still moved when settling gave up "
                 f"({STALL_S:g} s without progress, or {SETTLE_LIMIT_S:g} s)")
    tgt = targets(rows)
    if tgt:
        lines += ["\n#### targets\n", "| target | bytes | met |", "|---|---|---|"]
        lines += [f"| {t['target']} | {_num(t['bytes'])} | {'yes' if t['met'] else 'NO'} |" for t in tgt]
    return "\n".join(lines)
