#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_ops (fuzz/corpus/*): small programs in the
fuzzer's input language (see fuzz_ops.c, run_step, and the op_* functions in
fuzz_calls.c and fuzz_stream.c). Each seed starts one kind of scenario;
libFuzzer mutates from there.
Run from the repository root: python3 fuzz/make_corpus.py"""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

LISTEN, CONNECT, ACCEPT, READ, WRITE, SHUTW, CLOSE, FINAL = 0, 1, 3, 4, 6, 8, 9, 10
BADH, BADARGS, POLL, WAIT, ACCESS, PAIR = 11, 12, 13, 14, 15, 16
EMPTYW, LIFECYCLE, TEMPPORT, DRAIN = 17, 225, 226, 19
STREAM, ACK, STOP, FILL, PROBE = 20, 21, 23, 24, 25
CONN_ONLY = 0x20  # selector byte >= 16: pick connections only
# pick_stream_rec: an even byte picks the (byte >> 2)-th socket with a stream
# that has not ended; an odd one the (byte >> 2)-th rec (a connection unless
# byte & 2).
FIRST_STREAM = 0
# window classes (window_of_class): tiny 1..16, one byte, 4096, the maximum
W_TINY = lambda n: [((n - 1) % 16) << 3]
W_BYTE = lambda n: [2, (n - 1) & 0xff]
W_4K, W_MAX = [0x07], [0x87]
# ack kinds (ack_amount): how & 7, 0x40 = no poll first, 0x20 with A_OVER = INT64_MAX
A_ALL, A_PART, A_ZERO, A_NEG, A_OVER, A_AHEAD = 0, 1, 2, 3, 4, 5


def pair(v6=False, port=0):
    return [PAIR, 1 if v6 else 0, port, port]


def write(rec, cls, a=0, b=0):
    return [WRITE, CONN_ONLY, rec, cls, a, b]


def read(rec, cls, a=0, b=0):
    return [READ, CONN_ONLY, rec, cls, a, b]


def write_big(rec):  # 256 KiB, no size bytes
    return [WRITE, CONN_ONLY, rec, 0x87]


def stream(rec, window):
    return [STREAM, CONN_ONLY, rec] + window


def ack(how, args=(), which=FIRST_STREAM):  # args: A_PART, A_NEG, A_OVER 16 bits; A_AHEAD 8
    return [ACK, which, how] + list(args)


def fill(rounds, then_ack):
    return [FILL, FIRST_STREAM, (rounds - 1) | (0x80 if then_ack else 0)]


def probe(what, args=()):  # 0: one-shot read (16-bit size), 1: a second stream (window), 2: close
    return [PROBE, FIRST_STREAM, what] + list(args)


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
        ([BADARGS, i, 0, 0x10, 0x20, 0x30, 0x40] for i in range(17)), []),
    "refused_connect": [LISTEN, 0, 0, CLOSE, 0, WAIT, 1, CONNECT, 0, 0, 0] + read(1, 1) + write(1, 1, 1) + [WAIT, 1, WAIT, 1],
    "connect_timeout": [LISTEN, 2, 0, 1, CONNECT, 1, 0, 0, 3, CONNECT, 1, 1, 0, 1, ACCEPT, 0, WAIT, 1, WAIT, 1],
    "shutdown_reinit": pair() + read(1, 1) + write(2, 2, 9) + [LIFECYCLE, 2] + read(1, 1) + [LIFECYCLE, 0]
                       + [LISTEN, 0, 0] + [LIFECYCLE, 1, LIFECYCLE, 3] + pair(),
    "temp_port": pair() + [TEMPPORT, 0, 7, 1, TEMPPORT, 0, 3, 0] + [ACCEPT, 0, WAIT, 1, POLL],
    "accessors": pair() + sum(([ACCESS, r, w, 0] for r in range(3) for w in (0, 1, 2, 3, 0x13, 4, 0x14, 5)), []),
    "empty_writes": pair() + [EMPTYW, 1, EMPTYW, 1] + write(1, 0) + [SHUTW, CONN_ONLY, 1, EMPTYW, 1] + write(1, 1, 4),
    "drain_midway": pair() + write(1, 2, 1) + [DRAIN] + pair(True) + read(2, 1) + [DRAIN, POLL],
    # ---- read streams (fuzz_stream.c)
    "stream_echo": pair() + write(1, 4, 0x40, 0x10) + stream(2, W_4K) + fill(4, True) + [SHUTW, CONN_ONLY, 1]
                   + fill(4, True) + [WAIT] + ack(A_ALL) + [WAIT, WAIT],
    "stream_window_hit": pair() + write_big(1) + stream(2, W_TINY(3)) + fill(8, False) + ack(A_PART, [1, 0])
                         + fill(8, True) + fill(8, False) + ack(A_ALL) + stream(2, W_BYTE(200)) + fill(16, True)
                         + fill(16, True),
    "stream_bad_acks": pair() + write(1, 3, 0x30) + stream(2, W_BYTE(64)) + fill(4, False) + ack(A_ZERO)
                       + ack(A_NEG, [5, 0]) + ack(A_OVER, [1, 0]) + ack(A_OVER | 0x20) + ack(A_AHEAD, [3]) + ack(A_ALL)
                       + ack(A_ALL | 0x40) + [ACK, 1 | (1 << 2), A_ALL] + [ACK, 3, A_PART, 1, 0],
    "stream_busy": pair() + stream(2, W_4K) + read(2, 2, 9) + probe(0, [8, 0]) + probe(1, W_TINY(1)) + stream(2, W_TINY(1))
                   + [STOP, FIRST_STREAM, STOP, 1 | (2 << 2)] + read(2, 2, 9) + write(1, 2, 0x20) + [WAIT, WAIT],
    "stream_stop_then_read": pair() + write(1, 4, 0xff, 0x3f) + stream(2, W_BYTE(255)) + fill(4, True)
                             + [STOP, FIRST_STREAM] + read(2, 2, 0x80) + read(2, 4, 0xff) + [WAIT] + stream(2, W_4K)
                             + [WAIT] + fill(4, True) + [STOP, FIRST_STREAM] + read(2, 6, 0xff, 0xff) + [WAIT, WAIT],
    "stream_reads_before": pair() + write(1, 2, 0x40) + read(2, 1) + read(2, 1, 0x20) + stream(2, W_4K)
                           + fill(2, True) + [WAIT],
    "stream_close": pair() + write(1, 2, 0x40) + stream(2, W_TINY(8)) + fill(2, False) + probe(2)
                    + stream(1, W_4K) + [CLOSE, 1, WAIT, WAIT],
    "stream_peer_close": pair() + stream(1, W_4K) + write(2, 2, 0x10) + [CLOSE, 2] + fill(8, True) + [WAIT]
                         + read(1, 1),
    "stream_eof_then_stream": pair() + stream(2, W_MAX) + write(1, 6, 0x00, 0x40) + [SHUTW, CONN_ONLY, 1]
                              + fill(8, True) + [WAIT] + stream(2, W_4K) + [WAIT] + read(2, 1),
    "stream_shutdown": pair() + stream(2, W_4K) + stream(1, W_TINY(2)) + write(1, 2, 0x40) + write_big(2)
                       + fill(2, False) + [LIFECYCLE, 2] + stream(1, W_4K) + pair() + stream(4, W_4K)
                       + [LIFECYCLE, 0, LIFECYCLE, 1],
    "stream_finalizer": pair() + stream(2, W_4K) + write(1, 2, 0x40) + [FINAL, 2] + stream(2, W_4K) + [WAIT],
    "stream_connecting": [LISTEN, 0, 0, CONNECT, 0, 0, 0] + stream(1, W_4K) + [ACCEPT, 0, WAIT, WAIT]
                         + write(2, 2, 0x20) + fill(4, True),
    "stream_refused_connect": [LISTEN, 0, 0, CLOSE, 0, WAIT, CONNECT, 0, 0, 0] + stream(1, W_4K) + [WAIT, WAIT]
                              + ack(A_ALL) + [STOP, FIRST_STREAM] + read(1, 1),
    "stream_bad_handles": pair() + [BADH, 2, 1, 9, 0, BADH, 4, 0, 0, 0, 0, 10, 3, BADH, 1, 0, 11]
                          + [STOP, 3, ACK, 3, A_ALL] + [STOP, 1 | (1 << 2), STREAM, 0, 0] + W_4K
                          + [BADARGS, 13, 1, BADARGS, 14, 1, 0, 0, 0, 0, BADARGS, 15, 1, 0, 0, 0, 0],
    "stream_temp_port": pair() + [TEMPPORT, 0, 0x87, 1, TEMPPORT, 0, 0x80, 0] + [ACCEPT, 0, WAIT, POLL],
}

os.makedirs(OUT, exist_ok=True)
for name, program in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes(b & 0xff for b in program))
print(f"{len(seeds)} seeds in {OUT}")
