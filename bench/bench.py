#!/usr/bin/env python3
"""zig_tcp benchmark runner (called by ./run-benchmark, which builds everything first).

Runs echo / pipelined / bulk workloads of bench/loadclient against every server,
interleaving servers within each repetition; with --memory (and, tiny, in
--smoke) the server memory per idle connection instead (bench/memory.py,
bench/idleclient). Writes:
  bench/out/results.json   every run + medians + machine facts
  bench/out/table.md       the table printed on stdout
  bench/out/benchmark.png  req/s by connections per server, RTT percentiles
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".tools", "bench-bin")
OUT = os.path.join(ROOT, "bench", "out")

SERVER_CPU = "1"
CLIENT_CPU = "0"


# ---------------------------------------------------------------- servers
# The stream driver's window: ZigSocket.readWindowBytes (lib/src/socket.dart).
STREAM_WINDOW_BYTES = 256 * 1024


def engine_servers(binary, suffix, full):
    """The engine's servers for one engine_server binary; suffix "" (the main
    engine) or "@<commit>" (the base engine of an A/B run). The -stream servers
    (main engine only: a base's harness may predate read streams) run the
    stream driver, what ZigSocket's Stream does: one tcp_read_stream per
    connection, each chunk acknowledged after the consumer thread handled it."""
    s = {}
    for backend in ("io_uring", "uv"):
        env = {"ZIG_TCP_BACKEND": backend}
        s[f"engine-{backend}{suffix}"] = (lambda a, m, b: [binary, *a, m, str(b), "1"], env)
        if not suffix:
            s[f"engine-{backend}-stream"] = (
                lambda a, m, b: [binary, *a, m, str(b), "1", "1", "stream", str(STREAM_WINDOW_BYTES)], env)
    if full:  # two "isolates": two ports, two listeners sharing the port
        s["engine-io_uring-2iso" + suffix] = (lambda a, m, b: [binary, *a, m, str(b), "2"],
                                              {"ZIG_TCP_BACKEND": "io_uring"})
    return s


def server_table(engine_lib_ok, have_node, have_tokio, full=False, base_label=None, have_dartio=True):
    """name -> (argv builder(address argv, mode, bufsize), env additions); the
    address argv is [PORT], or ["--unix", PATH] for the servers that
    serves_unix() names.

    With a base engine each engine server is followed by its @<base_label>
    twin, so the table shows old and new next to each other."""
    s = {}
    main = engine_servers(os.path.join(BIN, "engine_server"), "", full) if engine_lib_ok else {}
    base = engine_servers(os.path.join(BIN, "engine_server_base"), "@" + base_label, full) if base_label else {}
    for family in dict.fromkeys(list(main) + [n.split("@")[0] for n in base]):
        if family in main:
            s[family] = main[family]
        if base_label and family + "@" + base_label in base:  # -stream servers have no base twin
            s[family + "@" + base_label] = base[family + "@" + base_label]
    s["epoll"] = (lambda a, m, b: [os.path.join(BIN, "epoll_server"), *a, m, str(b)], {})
    # plain io_uring (liburing), hand-written: the io_uring counterpart of "epoll"
    s["io_uring"] = (lambda a, m, b: [os.path.join(BIN, "uring_server"), *a, m, str(b)], {})
    s["libuv"] = (lambda a, m, b: [os.path.join(BIN, "uv_server"), *a, m, str(b)], {})
    if have_node:
        s["node"] = (lambda a, m, b: ["node", os.path.join(ROOT, "bench", "node_server.js"), *a, m], {})
    if have_tokio:
        s["tokio"] = (lambda a, m, b: [os.path.join(BIN, "tokio_server"), *a, m, str(b)], {})
    if have_dartio:  # a MODEL of dart:io's event handler + isolate, on the fake Dart port (not dart:io)
        s["dartio-model"] = (lambda a, m, b: [os.path.join(BIN, "dartio_model_server"), *a, m, str(b)], {})
    return s


def serves_unix(name):
    """The servers with a Unix-socket listener (--unix PATH): the main engine's
    (a base engine may predate Unix sockets) and plain epoll, the reference."""
    return name == "epoll" or (name.startswith("engine-") and "@" not in name)


def serves(name, wl):
    """Whether server name runs workload wl: every server runs the TCP ones."""
    return not wl.get("unix") or serves_unix(name)


_next_port = [21000 + (os.getpid() % 2000) * 10]


def free_port():
    for _ in range(200):
        _next_port[0] += 1
        if _next_port[0] > 60000:
            _next_port[0] = 21000
        p = _next_port[0]
        with socket.socket() as t:
            try:
                t.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise RuntimeError("no free port")


class Server:
    """One server process, on a free TCP port of 127.0.0.1, or (unix) on a
    socket file in a temporary directory of its own, removed by stop()."""

    def __init__(self, name, spec, mode, bufsize, cpu, unix=False):
        self.name = name
        argv_fn, env_add = spec
        self.port, self.unix_dir, self.unix_path = None, None, None
        if unix:
            self.unix_dir = tempfile.mkdtemp(prefix="zt-bench-")
            self.unix_path = os.path.join(self.unix_dir, "echo.sock")
            addr = ["--unix", self.unix_path]
        else:
            self.port = free_port()
            addr = [str(self.port)]
        env = dict(os.environ)
        env.update(env_add)
        argv = argv_fn(addr, mode, bufsize)
        if cpu is not None:
            argv = ["taskset", "-c", cpu] + argv
        try:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        except BaseException:
            if self.unix_dir:
                shutil.rmtree(self.unix_dir, ignore_errors=True)
            raise
        line = ""
        deadline = time.time() + 20
        # the server prints "ready PORT [backend]" once it listens
        os.set_blocking(self.proc.stdout.fileno(), False)
        while time.time() < deadline:
            chunk = self.proc.stdout.readline()
            if chunk:
                line = chunk.strip()
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        if not line.startswith("ready"):
            err = self.stop()
            raise RuntimeError(f"server {name} did not start: {line!r} {err[-500:]!r}")
        if name.endswith("-stream") and not line.endswith(" stream"):
            self.stop()  # an engine_server without the stream driver would run one-shot reads silently
            raise RuntimeError(f"server {name}: its engine_server has no stream driver ({line!r})")
        self.ready_line = line
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def client_args(self):
        """The load client's options that name this server's address."""
        return ["--unix", self.unix_path] if self.unix_path else ["--port", str(self.port)]

    def stop(self):
        try:
            return self._stop_process()
        finally:
            if self.unix_dir:
                shutil.rmtree(self.unix_dir, ignore_errors=True)

    def _stop_process(self):
        note = ""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                note = "[server did not exit within 5 s of SIGTERM: killed]\n"
        try:
            return note + (self.proc.stderr.read() or "")
        except Exception:  # noqa: BLE001
            return note


# ---------------------------------------------------------------- workloads
def run_client(addr_args, wl, secs, warmup, server_pid, cpu, label):
    argv = [os.path.join(BIN, "loadclient"), *addr_args, "--mode", wl["mode"],
            "--conns", str(wl["conns"]), "--size", str(wl["size"]), "--seconds", str(secs),
            "--warmup", str(warmup), "--server-pid", str(server_pid), "--label", label]
    if wl["mode"] == "echo":
        argv += ["--depth", str(wl["depth"])]
    if wl.get("rate"):
        argv += ["--rate", str(wl["rate"])]
    if cpu is not None:
        argv = ["taskset", "-c", cpu] + argv
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=secs + warmup + 60)
    except subprocess.TimeoutExpired:
        return {"error": "client timed out"}
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip()[-300:] or f"load client exit code {p.returncode}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_iperf(size, secs, cpu_server, cpu_client):
    port = free_port()
    srv = subprocess.Popen((["taskset", "-c", cpu_server] if cpu_server else []) +
                           ["iperf3", "-s", "-1", "-p", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.4)
    try:
        p = subprocess.run((["taskset", "-c", cpu_client] if cpu_client else []) +
                           ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(max(1, round(secs))), "-O", "1",
                            "-l", str(size), "-J"], capture_output=True, text=True, timeout=secs + 20)
        d = json.loads(p.stdout)
        return {"mb_per_s": d["end"]["sum_received"]["bits_per_second"] / 8e6,
                "server_cpu_pct": d["end"]["cpu_utilization_percent"]["remote_total"],
                "client_cpu_pct": d["end"]["cpu_utilization_percent"]["host_total"]}
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)[-300:]}
    finally:
        try:
            srv.wait(5)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


def wl_key(wl):
    if wl["mode"] == "bulk":
        return f"bulk {wl['conns']}c {fmt_size(wl['size'])}{' samecpu' if wl.get('samecpu') else ''}"
    return (f"{'unix ' if wl.get('unix') else ''}echo {wl['conns']}c d{wl['depth']} {fmt_size(wl['size'])}"
            f"{' @' + str(wl['rate'] // 1000) + 'k' if wl.get('rate') else ''}"
            f"{' samecpu' if wl.get('samecpu') else ''}")


def fmt_size(n):
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}K"
    return f"{n}B"


# --ab: what issue 12 asks to compare, old engine against new, with epoll as the reference
AB_SERVERS = ("engine-io_uring", "engine-uv", "epoll")  # and the engines' @base twins


def ab_matrix():
    return [{"mode": "echo", "conns": 100, "depth": 1, "size": 64},
            {"mode": "echo", "conns": 1000, "depth": 1, "size": 64},
            {"mode": "bulk", "conns": 1, "size": 1024},
            {"mode": "bulk", "conns": 1, "size": 16384}]


# Unix stream sockets (AF_UNIX): echo on the servers serves_unix() names, the
# engine against plain epoll on the same socket type.
UNIX_ECHO = [{"mode": "echo", "conns": conns, "depth": 1, "size": 64, "unix": True} for conns in (100, 1000)]


def matrix(full, smoke=False):
    wls = []
    if smoke:
        return [{"mode": "echo", "conns": 1, "depth": 1, "size": 64},
                {"mode": "echo", "conns": 100, "depth": 16, "size": 1024},
                {"mode": "bulk", "conns": 1, "size": 65536},
                UNIX_ECHO[0]]
    if full:
        for conns in (1, 100, 1000):
            for depth in (1, 16):
                for size in (64, 1024, 16384):
                    if conns == 1000 and depth == 16 and size == 16384:
                        continue  # 256 MiB in flight: measures memory, not the engine
                    wls.append({"mode": "echo", "conns": conns, "depth": depth, "size": size})
        wls.insert(6, {"mode": "echo", "conns": 10, "depth": 1, "size": 64})  # for the by-connections curve
        for conns in (1, 100):
            wls.append({"mode": "echo", "conns": conns, "depth": 1, "size": 64, "samecpu": True})
        # offered load below saturation: server CPU per request is the server's own cost
        for conns, rate in ((100, 50000), (100, 100000), (1000, 100000)):
            wls.append({"mode": "echo", "conns": conns, "depth": 1, "size": 64, "rate": rate})
        for size in (1024, 16384, 131072):
            wls.append({"mode": "bulk", "conns": 1, "size": size})
        wls += UNIX_ECHO
    else:
        wls += [
            {"mode": "echo", "conns": 1, "depth": 1, "size": 64},
            {"mode": "echo", "conns": 100, "depth": 1, "size": 64},
            {"mode": "echo", "conns": 1000, "depth": 1, "size": 64},
            {"mode": "echo", "conns": 100, "depth": 16, "size": 1024},
            {"mode": "echo", "conns": 10, "depth": 1, "size": 16384},
            {"mode": "echo", "conns": 100, "depth": 1, "size": 64, "samecpu": True},
            {"mode": "echo", "conns": 100, "depth": 1, "size": 64, "rate": 100000},
            {"mode": "bulk", "conns": 1, "size": 131072},
            *UNIX_ECHO,
        ]
    return wls


# ---------------------------------------------------------------- machine facts
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def machine_facts(engine_info):
    cpu = sh("lscpu | sed -n 's/^Model name: *//p'")
    hyp = sh("lscpu | sed -n 's/^Hypervisor vendor: *//p'")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "cpu": cpu + (f" ({hyp} guest)" if hyp else ""),
        "vcpus": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "io_uring_disabled": sh("cat /proc/sys/kernel/io_uring_disabled"),
        "loopback_mtu": sh("cat /sys/class/net/lo/mtu"),
        "gcc": sh("gcc --version | head -1"),
        "libuv": sh("pkg-config --modversion libuv"),
        "liburing": sh("pkg-config --modversion liburing"),
        "node": sh("node --version"),
        "tokio": sh("grep -A1 'name = \"tokio\"' " + os.path.join(ROOT, "bench/tokio_server/Cargo.lock") +
                    " | sed -n 's/version = //p' | tr -d '\"'"),
        "iperf3": sh("iperf3 --version | head -1"),
        "load_average_at_start": sh("cat /proc/loadavg"),
        "pinning": f"server on CPU {SERVER_CPU}, client on CPU {CLIENT_CPU} (taskset); 'samecpu' rows: both on CPU {SERVER_CPU}",
        **engine_info,
    }


# ---------------------------------------------------------------- summary
def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def summarize(runs, servers, wls):
    summary = []
    for wl in wls:
        k = wl_key(wl)
        for srv in [x for x in servers if serves(x, wl)] + (["iperf3"] if wl["mode"] == "bulk" else []):
            rs = [r for r in runs if r["workload"] == k and r["server"] == srv and "error" not in r["result"]]
            errs = [r for r in runs if r["workload"] == k and r["server"] == srv and "error" in r["result"]]
            row = {"workload": k, "server": srv, "ok": len(rs), "failed": len(errs)}
            if errs:
                row["last_error"] = errs[-1]["result"]["error"]
            res = [r["result"] for r in rs]
            if wl["mode"] == "echo":
                row["req_per_s"] = med([x["req_per_s"] for x in res])
                for p in ("p50", "p99", "p999"):
                    row["rtt_" + p + "_us"] = med([x["rtt_us"][p] for x in res])
                row["server_cpu_us_per_req"] = med([x.get("server_cpu_us_per_req") for x in res])
                row["client_cpu_us_per_req"] = med([x.get("client_cpu_us_per_req") for x in res])
                row["server_ctxsw_per_req"] = med([x.get("server_ctxsw_per_req") for x in res])
            else:
                row["mb_per_s"] = med([x["mb_per_s"] for x in res])
                row["server_cpu_ns_per_kib"] = med([x.get("server_cpu_ns_per_kib") for x in res])
            summary.append(row)
    return summary


def ab_rows(summary, base_label):
    """Each engine server of the main engine against its @base twin in the same
    run: the ratio of medians (new / base) of throughput and of server CPU."""
    out = []
    for r in summary:
        srv = r["server"]
        twin = next((x for x in summary if x["workload"] == r["workload"] and x["server"] == f"{srv}@{base_label}"),
                    None)
        if not srv.startswith("engine-") or "@" in srv or twin is None:
            continue
        bulk = r["workload"].startswith("bulk")
        field, cpu = ("mb_per_s", "server_cpu_ns_per_kib") if bulk else ("req_per_s", "server_cpu_us_per_req")
        row = {"workload": r["workload"], "server": srv, "base_server": twin["server"],
               "unit": "MB/s" if bulk else "req/s", "cpu_unit": "ns/KiB" if bulk else "µs/req"}
        for key, f in (("", field), ("cpu_", cpu)):
            new, old = r.get(f), twin.get(f)
            row[key + "new"] = new["median"] if new else None
            row[key + "base"] = old["median"] if old else None
            row[key + "ratio"] = round(new["median"] / old["median"], 3) if new and old and old["median"] else None
        out.append(row)
    return out


def ab_table(rows, base_label):
    def num(x, digits):
        return "-" if x is None else f"{x:.{digits}f}"

    lines = [f"\n### engine vs base {base_label} (same run; ratio of medians, new / base)\n",
             "| workload | server | unit | base | new | new/base | CPU unit | base CPU | new CPU | new/base |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu_digits = 0 if r["cpu_unit"] == "ns/KiB" else 2
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        cpu_ratio = "-" if r["cpu_ratio"] is None else f"{r['cpu_ratio']:.2f}x"
        lines.append(f"| {r['workload']} | {r['server']} | {r['unit']} | {num(r['base'], 0)} | {num(r['new'], 0)} | "
                     f"{ratio} | {r['cpu_unit']} | {num(r['cpu_base'], cpu_digits)} | "
                     f"{num(r['cpu_new'], cpu_digits)} | {cpu_ratio} |")
    return "\n".join(lines)


def fmt_med(m, digits=0, scale=1.0):
    if not m:
        return "-"
    f = f"{{:.{digits}f}}"
    if m["n"] == 1:
        return f.format(m["median"] * scale)
    return f"{f.format(m['median'] * scale)} ({f.format(m['min'] * scale)}-{f.format(m['max'] * scale)})"


def table(summary, wls):
    lines = []
    for wl in wls:
        k = wl_key(wl)
        rows = [r for r in summary if r["workload"] == k]
        lines.append(f"\n### {k}\n")
        if wl.get("unix"):
            lines.append("Unix stream sockets (AF_UNIX, a socket file in a temporary directory): the servers that have "
                         "them; vs epoll = plain epoll on the same socket type.\n")
        if wl["mode"] == "echo":
            base = next((r for r in rows if r["server"] == "epoll" and r.get("req_per_s")), None)
            lines.append("| server | req/s median (min-max) | vs epoll | RTT p50 µs | p99 µs | p99.9 µs "
                         "| server CPU µs/req | server ctx sw/req | client CPU µs/req |")
            lines.append("|---|---|---|---|---|---|---|---|---|")
            for r in rows:
                if not r.get("req_per_s"):
                    lines.append(f"| {r['server']} | failed: {r.get('last_error', '')[:60]} | | | | | | | |")
                    continue
                ratio = (f"{r['req_per_s']['median'] / base['req_per_s']['median']:.2f}x" if base else "-")
                lines.append(
                    f"| {r['server']} | {fmt_med(r['req_per_s'])} | {ratio} | {fmt_med(r['rtt_p50_us'], 1)} | "
                    f"{fmt_med(r['rtt_p99_us'], 1)} | {fmt_med(r['rtt_p999_us'], 1)} | "
                    f"{fmt_med(r['server_cpu_us_per_req'], 2)} | {fmt_med(r['server_ctxsw_per_req'], 2)} | "
                    f"{fmt_med(r['client_cpu_us_per_req'], 2)} |")
        else:
            base = next((r for r in rows if r["server"] == "iperf3" and r.get("mb_per_s")), None)
            lines.append("| server | MB/s median (min-max) | vs iperf3 | server CPU ns/KiB |")
            lines.append("|---|---|---|---|")
            for r in rows:
                if not r.get("mb_per_s"):
                    lines.append(f"| {r['server']} | failed: {r.get('last_error', '')[:60]} | | |")
                    continue
                ratio = (f"{r['mb_per_s']['median'] / base['mb_per_s']['median']:.2f}x" if base else "-")
                lines.append(f"| {r['server']} | {fmt_med(r['mb_per_s'])} | {ratio} | "
                             f"{fmt_med(r.get('server_cpu_ns_per_kib'), 0)} |")
    return "\n".join(lines)


def unix_vs_tcp(summary):
    """Each server's Unix-socket echo row against its TCP row of the same
    workload in this run: ratios of medians (unix / TCP) of req/s and of server
    CPU per request."""
    out = []
    for r in summary:
        if not r["workload"].startswith("unix ") or not r.get("req_per_s"):
            continue
        tcp = next((x for x in summary if x["workload"] == r["workload"][len("unix "):] and x["server"] == r["server"]
                    and x.get("req_per_s")), None)
        if tcp is None:
            continue
        row = {"workload": r["workload"], "server": r["server"]}
        for key, field in (("req_per_s", "req_per_s"), ("server_cpu_us_per_req", "server_cpu_us_per_req")):
            u, t = r.get(field), tcp.get(field)
            row[key + "_unix"] = u["median"] if u else None
            row[key + "_tcp"] = t["median"] if t else None
            row[key + "_ratio"] = round(u["median"] / t["median"], 3) if u and t and t["median"] else None
        out.append(row)
    return out


def unix_vs_tcp_table(rows):
    def num(x, digits):
        return "-" if x is None else f"{x:.{digits}f}"

    def ratio(x):
        return "-" if x is None else f"{x:.2f}x"

    lines = ["\n### Unix socket vs TCP (same server, same run; ratio of medians, unix / TCP)\n",
             "| workload | server | TCP req/s | unix req/s | unix/TCP "
             "| TCP CPU µs/req | unix CPU µs/req | unix/TCP |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['server']} | {num(r['req_per_s_tcp'], 0)} | "
                     f"{num(r['req_per_s_unix'], 0)} | "
                     f"{ratio(r['req_per_s_ratio'])} | {num(r['server_cpu_us_per_req_tcp'], 2)} | "
                     f"{num(r['server_cpu_us_per_req_unix'], 2)} | {ratio(r['server_cpu_us_per_req_ratio'])} |")
    return "\n".join(lines)


def targets(summary):
    """The issue's targets, evaluated on the engine (io_uring backend)."""
    def get(wk, srv, field):
        r = next((x for x in summary if x["workload"] == wk and x["server"] == srv), None)
        return r[field]["median"] if r and r.get(field) else None

    out = []
    eng = "engine-io_uring"
    for conns in (100, 1000):
        wk = f"echo {conns}c d1 64B"
        e = get(wk, eng, "req_per_s")
        for other, want in (("epoll", 1.0), ("libuv", 1.3), ("node", 1.3), ("dartio-model", 1.0)):
            o = get(wk, other, "req_per_s")
            if e and o:
                out.append({"target": f"echo 64 B, {conns} conns: engine / {other} >= {want}",
                            "ratio": round(e / o, 3), "met": e / o >= want})
    for wk in [x["workload"] for x in summary if x["workload"].startswith("bulk") and x["server"] == "iperf3"]:
        e, o = get(wk, eng, "mb_per_s"), get(wk, "iperf3", "mb_per_s")
        if e and o:
            out.append({"target": f"{wk}: engine / iperf3 >= 0.85", "ratio": round(e / o, 3), "met": e / o >= 0.85})
    e, o = get("echo 1c d1 64B", eng, "rtt_p50_us"), get("echo 1c d1 64B", "epoll", "rtt_p50_us")
    if e and o:
        out.append({"target": "1 conn p50 RTT: engine / epoll <= 1.2", "ratio": round(e / o, 3), "met": e / o <= 1.2})
    return out


def issue13_targets(summary):
    """Issue 13's throughput targets (streaming reads), each a ratio of medians
    in this run; a target whose servers are not all in the run is left out."""
    def get(wk, srv, field):
        r = next((x for x in summary if x["workload"] == wk and x["server"] == srv), None)
        return r[field]["median"] if r and r.get(field) else None

    def ratio(wk, srv, ref, field, want, text):
        e, o = get(wk, srv, field), get(wk, ref, field)
        if e and o:
            out.append({"target": text, "ratio": round(e / o, 3), "met": e / o >= want})

    out = []
    for conns in (100, 1000):
        wk = f"echo {conns}c d1 64B"
        ratio(wk, "engine-io_uring-stream", "io_uring", "req_per_s", 1.0,
              f"echo 64 B, {conns} conns: engine-io_uring-stream / plain io_uring >= 1.0")
        for srv in ("engine-uv", "engine-uv-stream"):
            ratio(wk, srv, "libuv", "req_per_s", 1.0, f"echo 64 B, {conns} conns: {srv} / plain libuv >= 1.0")
    for srv in ("engine-io_uring", "engine-io_uring-stream", "engine-uv", "engine-uv-stream"):
        ratio("bulk 1c 1K", srv, "iperf3", "mb_per_s", 0.85, f"bulk 1 KiB writes: {srv} / iperf3 >= 0.85")
    pat = re.compile(r"^echo (\d+)c d1 64B$")
    for wk in sorted({x["workload"] for x in summary if pat.match(x["workload"])},
                     key=lambda w: int(pat.match(w).group(1))):
        for srv in ("engine-io_uring-stream", "engine-uv-stream"):
            e, o = get(wk, srv, "req_per_s"), get(wk, "dartio-model", "req_per_s")
            if e and o:
                out.append({"target": f"{wk}: {srv} ahead of dartio-model (> 1.0)", "ratio": round(e / o, 3),
                            "met": e / o > 1.0})
    return out


# ---------------------------------------------------------------- plot
def plot(summary, servers, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib missing: no plot)", file=sys.stderr)
        return False
    fig, (a1, a2, a3, a4) = plt.subplots(1, 4, figsize=(22, 5), gridspec_kw={"width_ratios": [4, 4, 3, 3]})
    # an engine and its @base twin share a colour; the base is dashed / hatched
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    families = list(dict.fromkeys(srv.split("@")[0] for srv in servers))
    colour = {srv: cycle[families.index(srv.split("@")[0]) % len(cycle)] for srv in servers}
    is_base = {srv: "@" in srv for srv in servers}
    pat = re.compile(r"^echo (\d+)c d1 64B$")
    for srv in servers:
        pts = []
        for r in summary:
            m = pat.match(r["workload"])
            if m and r["server"] == srv and r.get("req_per_s"):
                pts.append((int(m.group(1)), r["req_per_s"]))
        pts.sort(key=lambda p: p[0])
        if not pts:
            continue
        xs = [p[0] for p in pts]
        ys = [p[1]["median"] / 1000 for p in pts]
        lo = [(p[1]["median"] - p[1]["min"]) / 1000 for p in pts]
        hi = [(p[1]["max"] - p[1]["median"]) / 1000 for p in pts]
        a1.errorbar(xs, ys, yerr=[lo, hi], marker="s" if is_base[srv] else "o", capsize=3, label=srv,
                    color=colour[srv], linestyle="--" if is_base[srv] else "-")
    a1.set_xscale("log")
    a1.set_xlabel("connections (echo, 64 B, depth 1)")
    a1.set_ylabel("k req/s (median, min-max)")
    a1.set_title("Echo throughput by connections")
    a1.grid(True, alpha=0.3)
    if a1.get_legend_handles_labels()[0]:
        a1.legend(fontsize=8)

    wks = [w for w in ("echo 1c d1 64B", "echo 100c d1 64B") if any(r["workload"] == w for r in summary)]
    width = 0.8 / max(1, len(servers))
    labels = []
    for wi, wk in enumerate(wks):
        for pi, p in enumerate(("p50", "p99", "p999")):
            labels.append(f"{wk.split()[1]}\n{p.replace('p999', 'p99.9')}")
    for si, srv in enumerate(servers):
        vals = []
        for wk in wks:
            r = next((x for x in summary if x["workload"] == wk and x["server"] == srv), None)
            for p in ("p50", "p99", "p999"):
                m = r.get(f"rtt_{p}_us") if r else None
                vals.append(m["median"] if m else 0)
        xs = [i + si * width for i in range(len(vals))]
        a2.bar(xs, vals, width=width, label=srv, color=colour[srv], hatch="//" if is_base[srv] else None,
               edgecolor="white" if is_base[srv] else None)
    a2.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))])
    a2.set_xticklabels(labels, fontsize=8)
    a2.set_yscale("log")
    a2.set_ylabel("RTT µs (median of runs, log)")
    a2.set_title("Echo RTT percentiles (64 B, depth 1; c = connections)")
    a2.grid(True, axis="y", alpha=0.3)
    if wks:
        a2.legend(fontsize=8)
    # CPU cost per request: steadier than req/s when the machine is shared
    wk3 = [w for w in ("echo 100c d1 64B @50k", "echo 100c d1 64B @100k", "echo 1000c d1 64B @100k",
                       "echo 100c d1 64B", "echo 1000c d1 64B", "echo 100c d16 1K")
           if any(r["workload"] == w for r in summary)]
    width3 = 0.8 / max(1, len(servers))
    for si, srv in enumerate(servers):
        vals = []
        for wk in wk3:
            r = next((x for x in summary if x["workload"] == wk and x["server"] == srv), None)
            m = r.get("server_cpu_us_per_req") if r else None
            vals.append(m["median"] if m else 0)
        a3.bar([i + si * width3 for i in range(len(vals))], vals, width=width3, label=srv, color=colour[srv],
               hatch="//" if is_base[srv] else None, edgecolor="white" if is_base[srv] else None)
    a3.set_xticks([i + 0.4 - width3 / 2 for i in range(len(wk3))])
    a3.set_xticklabels([w.replace("echo ", "") for w in wk3], fontsize=7, rotation=20)
    a3.set_ylabel("server CPU µs per request (median)")
    a3.set_title("Server CPU per request (lower is better;\n@N k = fixed offered load, below saturation)", fontsize=9)
    a3.grid(True, axis="y", alpha=0.3)
    if wk3:
        a3.legend(fontsize=8)
    plot_bulk(a4, summary, servers, colour, is_base)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_bulk(ax, summary, servers, colour, is_base):
    """MB/s per bulk workload and server, iperf3 (the reference) in grey."""
    wks = list(dict.fromkeys(r["workload"] for r in summary if r["workload"].startswith("bulk")))
    names = servers + ["iperf3"]
    width = 0.8 / len(names)
    for si, srv in enumerate(names):
        vals = []
        for wk in wks:
            r = next((x for x in summary if x["workload"] == wk and x["server"] == srv), None)
            m = r.get("mb_per_s") if r else None
            vals.append(m["median"] if m else 0)
        ax.bar([i + si * width for i in range(len(vals))], vals, width=width, label=srv,
               color=colour.get(srv, "grey"), hatch="//" if is_base.get(srv) else None,
               edgecolor="white" if is_base.get(srv) else None)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(wks))])
    ax.set_xticklabels([w.replace("bulk ", "") for w in wks], fontsize=8)
    ax.set_ylabel("MB/s (median)")
    ax.set_title("Bulk, one connection (c) by write size", fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    if wks:
        ax.legend(fontsize=8)


# ---------------------------------------------------------------- main
def parse_args():
    ap = argparse.ArgumentParser()
    preset = ap.add_mutually_exclusive_group()
    preset.add_argument("--full", action="store_true")
    preset.add_argument("--memory", action="store_true",
                        help="server memory per idle connection, every server: N connections (--memory-conns), "
                             "each after one echoed message of S bytes (--memory-sizes), a read pending")
    preset.add_argument("--ab", action="store_true",
                        help="old engine (--engine-base) against new: echo 64 B at 100 and 1000 connections, bulk "
                             "1 KiB and 16 KiB; engine io_uring and uv, both engines, epoll; 5 reps x 3 s")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds-long check that every server echoes; exit 1 if any run failed")
    ap.add_argument("--memory-conns", metavar="N,N",
                    help=f"connection counts of the memory rows (default {','.join(map(str, memory.DEFAULT_CONNS))}; "
                         f"--smoke: {','.join(map(str, memory.SMOKE_CONNS))}; at most {memory.CONNS_MAX})")
    ap.add_argument("--memory-sizes", metavar="S,S",
                    help="message sizes of the memory rows, bytes or K (default 0,4K,32K; --smoke: 0,4K)")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--servers", help="comma list (default: all available; NAME@base = NAME of the base engine)")
    ap.add_argument("--only", help="regex on workload names")
    ap.add_argument("--engine", action="store_true", help="engine library built (set by run-benchmark)")
    ap.add_argument("--engine-base", metavar="LABEL",
                    help="base engine built as engine_server_base, labelled LABEL (set by run-benchmark)")
    ap.add_argument("--engine-info", default="{}", help="JSON facts about the engine build")
    ap.add_argument("--build-failed", action="append", default=[], metavar="MESSAGE",
                    help="a build that failed (set by run-benchmark): flagged in the output, a failure in --smoke")
    ap.add_argument("--no-node", action="store_true")
    ap.add_argument("--no-tokio", action="store_true")
    ap.add_argument("--no-iperf", action="store_true")
    ap.add_argument("--out", default=OUT)
    return ap.parse_args()


def select_servers(a):
    """The servers of this run, in table order (an engine's @base twin right after it)."""
    have_node = not a.no_node and shutil.which("node") is not None
    have_tokio = not a.no_tokio and os.path.exists(os.path.join(BIN, "tokio_server"))
    have_base = a.engine_base and os.path.exists(os.path.join(BIN, "engine_server_base"))
    spec = server_table(a.engine and os.path.exists(os.path.join(BIN, "engine_server")), have_node, have_tokio,
                        a.full, a.engine_base if have_base else None,
                        os.path.exists(os.path.join(BIN, "dartio_model_server")))
    if a.servers:
        wanted = [n.replace("@base", "@" + a.engine_base) if a.engine_base else n for n in a.servers.split(",")]
        unknown = [n for n in wanted if n not in spec]
        if unknown:
            print("not in this run (unknown or not built): " + ", ".join(unknown), flush=True)
        spec = {k: v for k, v in spec.items() if k in wanted}
    elif a.ab:
        spec = {k: v for k, v in spec.items() if k.split("@")[0] in AB_SERVERS}
    return spec


def run_matrix(spec, wls, reps, secs, warm, iperf):
    """Every server x workload x repetition, servers interleaved within each
    repetition and their order rotated from one to the next. Returns the runs."""
    servers = list(spec)
    width = max([16] + [len(x) for x in servers])
    runs = []
    for rep in range(reps):
        order = servers[rep % len(servers):] + servers[:rep % len(servers)]  # rotate: no fixed order bias
        for srv in order:
            by_cfg = {}
            for wl in [w for w in wls if serves(srv, w)]:
                mode = "sink" if wl["mode"] == "bulk" else "echo"
                # servers read up to 64 KiB (the Dart library's default read size),
                # or the write size when that is larger
                buf = max(wl["size"], 65536)
                by_cfg.setdefault((mode, buf, bool(wl.get("unix"))), []).append(wl)
            for (mode, buf, unix), group in by_cfg.items():
                try:
                    server = Server(srv, spec[srv], mode, buf, SERVER_CPU, unix)
                except RuntimeError as e:
                    for wl in group:
                        runs.append({"rep": rep, "server": srv, "workload": wl_key(wl), "result": {"error": str(e)}})
                    print(f"  [{rep + 1}/{reps}] {srv}: {e}", flush=True)
                    continue
                for wl in group:
                    runs.append(run_one(server, srv, wl, rep, secs, warm))
                    res = runs[-1]["result"]
                    short = (f"{res['req_per_s']:.0f} req/s p50 {res['rtt_us']['p50']:.1f} us"
                             if "req_per_s" in res else f"{res['mb_per_s']:.0f} MB/s" if "mb_per_s" in res
                             else "ERROR " + res["error"][:120])
                    print(f"  [{rep + 1}/{reps}] {srv:{width}s} {wl_key(wl):28s} {short}", flush=True)
                err = server.stop()
                if err.strip():
                    runs[-1].setdefault("server_stderr", err[-500:])
        if iperf:
            for wl in wls:
                if wl["mode"] != "bulk":
                    continue
                same = bool(wl.get("samecpu"))
                res = run_iperf(wl["size"], secs, SERVER_CPU, SERVER_CPU if same else CLIENT_CPU)
                runs.append({"rep": rep, "server": "iperf3", "workload": wl_key(wl), "result": res})
                print(f"  [{rep + 1}/{reps}] {'iperf3':{width}s} {wl_key(wl):28s} "
                      f"{res.get('mb_per_s', 0):.0f} MB/s {res.get('error', '')}", flush=True)
    return runs


def run_one(server, srv, wl, rep, secs, warm):
    same = bool(wl.get("samecpu"))
    if not server.alive():
        res = {"error": "server died: " + server.stop()[-300:]}
    else:
        res = run_client(server.client_args(), wl, secs, warm, server.pid, SERVER_CPU if same else CLIENT_CPU, srv)
    return {"rep": rep, "server": srv, "workload": wl_key(wl), "ready": server.ready_line,
            "loadavg": sh("cut -d' ' -f1 /proc/loadavg"), "result": res}


MODEL_NOTE = "dartio-model is a MODEL of dart:io's architecture in C (bench/dartio_model_server.c), not dart:io"


def report_text(facts, engine_info, build_failed, echo, mem_rows, servers):
    """The whole text report: header, echo/bulk tables (echo: summary, wls,
    reps, secs, warm, ab, base_label), the memory tables."""
    head = [f"zig_tcp benchmark, {facts['date']}",
            f"kernel {facts['kernel']}, {facts['cpu']}, {facts['vcpus']} vCPU; {facts['pinning']}"]
    if echo["wls"]:
        head.append(f"{echo['reps']} reps x {echo['secs']:g} s (+{echo['warm']:g} s warm-up), servers interleaved; "
                    "medians (min-max)")
    if "dartio-model" in servers:
        head.append(MODEL_NOTE)
    head += [f"BUILD FAILED: {m}" for m in build_failed]
    if engine_info:
        head.append("engine: " + ", ".join(f"{k}={v}" for k, v in engine_info.items()))
    txt = "\n".join(head) + "\n"
    if echo["wls"]:
        txt += table(echo["summary"], echo["wls"])
        if echo["ab"]:
            txt += "\n" + ab_table(echo["ab"], echo["base_label"])
        uvt = unix_vs_tcp(echo["summary"])
        if uvt:
            txt += "\n" + unix_vs_tcp_table(uvt)
        tgt = targets(echo["summary"])
        if tgt:
            txt += "\n\n### targets (engine-io_uring)\n\n| target | ratio | met |\n|---|---|---|\n"
            txt += "\n".join(f"| {t['target']} | {t['ratio']} | {'yes' if t['met'] else 'NO'} |" for t in tgt)
        tgt13 = issue13_targets(echo["summary"])
        if tgt13:
            txt += "\n\n### targets of issue 13 (streaming reads; ratios of medians, same run)\n\n"
            txt += "| target | ratio | met |\n|---|---|---|\n"
            txt += "\n".join(f"| {t['target']} | {t['ratio']} | {'yes' if t['met'] else 'NO'} |" for t in tgt13)
    if mem_rows:
        txt += "\n" + memory.table(mem_rows, servers)
    return txt


def memory_plan(a):
    """(connection counts, message sizes) of this run's memory rows, or None:
    --memory runs them alone, --smoke adds tiny ones."""
    if not (a.memory or a.smoke):
        return None
    conns = ([int(x) for x in a.memory_conns.split(",")] if a.memory_conns else
             list(memory.SMOKE_CONNS if a.smoke else memory.DEFAULT_CONNS))
    sizes = (memory.parse_sizes(a.memory_sizes) if a.memory_sizes else
             list(memory.SMOKE_SIZES if a.smoke else memory.DEFAULT_SIZES))
    if any(not 0 < n <= memory.CONNS_MAX for n in conns) or any(not 0 <= n <= 1 << 20 for n in sizes):
        raise SystemExit(f"--memory-conns: 1..{memory.CONNS_MAX} each; --memory-sizes: 0..1M each")
    return conns, sizes


def run_memory(spec, plan, only):
    conns, sizes = plan
    est_s = len(spec) * len(sizes) * sum(3 + n / 2000 for n in conns)
    print(f"memory per idle connection: {len(spec)} servers x N {','.join(map(str, conns))} x S "
          f"{','.join(memory.fmt_size(x) for x in sizes)}, a fresh server each (~{est_s / 60:.1f} min)", flush=True)
    return memory.run(spec, conns, sizes, lambda name, sp: Server(name, sp, "echo", 65536, SERVER_CPU),
                      os.path.join(BIN, "idleclient"), CLIENT_CPU,
                      (lambda k: re.search(only, k)) if only else None)


def smoke_verdict(runs, mem_rows, build_failed):
    failed = [r for r in runs + mem_rows if "error" in r["result"]]
    for r in failed:
        print(f"FAILED: {r['server']} {r['workload']}: {r['result']['error']}")
    for m in build_failed:
        print(f"FAILED: build: {m}")
    print(f"{len(runs) + len(mem_rows) - len(failed)} passed, {len(failed) + len(build_failed)} failed")
    return 1 if failed or build_failed else 0


def main():
    a = parse_args()
    reps = a.reps or (1 if a.smoke else 5 if a.full or a.ab else 2)
    secs = a.seconds or (0.3 if a.smoke else 3.0 if a.full or a.ab else 1.5)
    warm = a.warmup if a.warmup is not None else 0.1 if a.smoke else 0.5
    for m in a.build_failed:
        print(f"BUILD FAILED: {m}", flush=True)
    if a.ab and not a.engine_base:
        print("--ab without a base engine: no old-against-new rows in this run", flush=True)
    spec = select_servers(a)
    servers = list(spec)
    plan = memory_plan(a)
    wls = [] if a.memory else ab_matrix() if a.ab else matrix(a.full, a.smoke)
    if a.only:
        wls = [w for w in wls if re.search(a.only, wl_key(w))]
    wls = [w for w in wls if any(serves(srv, w) for srv in servers)]  # e.g. unix rows without engine or epoll
    if wls and not plan:  # a server that runs none of them (--only unix: all but engine and epoll) is not in the run
        spec = {k: v for k, v in spec.items() if any(serves(k, w) for w in wls)}
        servers = list(spec)
    iperf = not a.no_iperf and shutil.which("iperf3") is not None
    os.makedirs(a.out, exist_ok=True)
    engine_info = json.loads(a.engine_info)
    facts = machine_facts(engine_info)
    if a.build_failed:
        facts["build_failures"] = a.build_failed
    if wls:
        n_runs = reps * (sum(serves(srv, w) for w in wls for srv in servers) +
                         (sum(w["mode"] == "bulk" for w in wls) if iperf else 0))
        print(f"zig_tcp benchmark: {len(servers)} servers x {len(wls)} workloads x {reps} reps "
              f"({secs:g} s + {warm:g} s warm-up each; ~{n_runs * (secs + warm + 0.3) / 60:.1f} min)", flush=True)
    print("servers: " + ", ".join(servers), flush=True)

    t_start = time.time()
    runs = run_matrix(spec, wls, reps, secs, warm, iperf) if wls else []
    mem_rows = run_memory(spec, plan, a.only) if plan else []
    summary = summarize(runs, servers, wls)
    ab = ab_rows(summary, a.engine_base) if a.engine_base else []
    facts["elapsed_s"] = round(time.time() - t_start, 1)
    facts["load_average_at_end"] = sh("cat /proc/loadavg")
    doc = {"machine": facts, "config": {"reps": reps, "seconds": secs, "warmup": warm, "full": a.full, "ab": a.ab,
                                         "memory": a.memory, "base": a.engine_base, "servers": servers,
                                         "workloads": [wl_key(w) for w in wls]},
           "targets": targets(summary), "targets_issue13": issue13_targets(summary), "engine_vs_base": ab,
           "unix_vs_tcp": unix_vs_tcp(summary), "summary": summary, "runs": runs}
    if plan:
        doc["memory"] = {"conns": plan[0], "sizes": plan[1], "client_sources": memory.SOURCES,
                         "method": memory.__doc__.strip(), "targets": memory.targets(mem_rows), "rows": mem_rows}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    echo = {"summary": summary, "wls": wls, "reps": reps, "secs": secs, "warm": warm, "ab": ab,
            "base_label": a.engine_base}
    txt = report_text(facts, engine_info, a.build_failed, echo, mem_rows, servers)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(txt + "\n")
    print("\n" + txt)
    if a.smoke:
        return smoke_verdict(runs, mem_rows, a.build_failed)
    png = os.path.join(a.out, "benchmark.png")
    if wls and plot(summary, servers, png):
        print(f"\nplot: {os.path.relpath(png, ROOT)}; data: {os.path.relpath(os.path.join(a.out, 'results.json'), ROOT)}")
    elif not wls:
        print(f"\ndata: {os.path.relpath(os.path.join(a.out, 'results.json'), ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
