#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_ops (fuzz/corpus/*): small programs in the
fuzzer's input language (see fuzz_ops.c, LLVMFuzzerTestOneInput). Each seed
starts one kind of scenario; libFuzzer mutates from there.
Run from the repository root: python3 fuzz/make_corpus.py"""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

LISTEN, CONNECT, ACCEPT, READ, WRITE, SHUTW, CLOSE, FINAL = 0, 1, 3, 4, 6, 8, 9, 10
BADH, BADARGS, POLL, WAIT, ACCESS, PAIR = 11, 12, 13, 14, 15, 16
EMPTYW, LIFECYCLE, TEMPPORT, DRAIN = 17, 217, 218, 19
CONN_ONLY = 0x20  # selector byte >= 16: pick connections only


def pair(v6=False, port=0):
    return [PAIR, 1 if v6 else 0, port, port]


def write(rec, cls, a=0, b=0):
    return [WRITE, CONN_ONLY, rec, cls, a, b]


def read(rec, cls, a=0, b=0):
    return [READ, CONN_ONLY, rec, cls, a, b]


seeds = {
    # client -> server bytes, server reads, half-close, EOF, close
    "echo": pair() + write(1, 2, 0x40) + read(2, 4, 0xff, 0x0f) + [WAIT, 1] + [SHUTW, CONN_ONLY, 1]
            + read(2, 4, 0xff, 0x0f) + [WAIT, 1, WAIT, 1] + [CLOSE, 1, CLOSE, 2, CLOSE, 0],
    "echo_v6": pair(True) + write(2, 3, 0x10, 0x02) + read(1, 5, 0x00, 0x20) + [WAIT, 1, POLL],
    "both_ways": pair() + write(1, 6, 0x34, 0x12) + write(2, 6, 0x99, 0x01) + read(1, 6, 0, 0x80)
                 + read(2, 6, 0, 0x80) + [WAIT, 1, WAIT, 1, WAIT, 1],
    "big_write_pending": pair() + write(1, 0x87) + write(1, 0x87) + write(1, 2, 5) + [WAIT, 1] + read(2, 6, 0xff, 0xff)
                         + [CLOSE, 1],
    "double_close": pair() + [CLOSE, 1, CLOSE, 1, CLOSE, 0, CLOSE, 0] + read(1, 1) + write(1, 1),
    "close_with_pending": pair() + read(1, 1) + read(1, 2, 3) + write(1, 0x87) + [SHUTW, CONN_ONLY, 1, CLOSE, 1, WAIT, 1],
    "finalizer": pair() + read(2, 1) + write(2, 1) + [FINAL, 2, FINAL, 2] + read(2, 1) + [CLOSE, 2],
    "stale_and_made_up": pair() + [CLOSE, 1, WAIT, 1] + [BADH, 2, 1, 1, BADH, 1, 0, 2, BADH, 0, 0, 0xff, 0xff, 0xff,
                                                          0xff, 0xff, 0xff, 0xff, 0x7f, 4, BADH, 4, 0, 0xff, 0, 0, 0, 7],
    "bad_args": [LISTEN, 0, 0] + sum(
        ([BADARGS, i, 0, 0x10, 0x20, 0x30, 0x40] for i in range(14)), []),
    "refused_connect": [LISTEN, 0, 0, CLOSE, 0, WAIT, 1, CONNECT, 0, 0, 0] + read(1, 1) + write(1, 1, 1) + [WAIT, 1, WAIT, 1],
    "connect_timeout": [LISTEN, 2, 0, 1, CONNECT, 1, 0, 0, 3, CONNECT, 1, 1, 0, 1, ACCEPT, 0, WAIT, 1, WAIT, 1],
    "shutdown_reinit": pair() + read(1, 1) + write(2, 2, 9) + [LIFECYCLE, 2] + read(1, 1) + [LIFECYCLE, 0]
                       + [LISTEN, 0, 0] + [LIFECYCLE, 1, LIFECYCLE, 3] + pair(),
    "temp_port": pair() + [TEMPPORT, 0, 7, 1, TEMPPORT, 0, 3, 0] + [ACCEPT, 0, WAIT, 1, POLL],
    "accessors": pair() + sum(([ACCESS, r, w, 0] for r in range(3) for w in (0, 1, 2, 3, 0x13, 4, 0x14, 5)), []),
    "empty_writes": pair() + [EMPTYW, 1, EMPTYW, 1] + write(1, 0) + [SHUTW, CONN_ONLY, 1, EMPTYW, 1] + write(1, 1, 4),
    "drain_midway": pair() + write(1, 2, 1) + [DRAIN] + pair(True) + read(2, 1) + [DRAIN, POLL],
}

os.makedirs(OUT, exist_ok=True)
for name, program in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes(b & 0xff for b in program))
print(f"{len(seeds)} seeds in {OUT}")
