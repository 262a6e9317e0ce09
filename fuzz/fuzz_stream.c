/*
 * fuzz_stream.c -- streaming reads in the fuzzer (tcp.h "streaming reads"):
 * start a stream with a random window (tiny ones too), acknowledge valid and
 * invalid amounts, stop, hit the window, one-shot reads and a second stream
 * while one runs; and the checks of every stream completion:
 *   - DATA (result > 0, exactly result bytes) only before the final, each
 *     after every earlier read of the socket, its bytes the peer's stream at
 *     the right offset (the same check as one-shot reads, which carry on
 *     after a stop), never more than the window past the acknowledged bytes;
 *   - exactly one final (result <= 0), after all DATA, with a result tcp.h
 *     allows for what happened: 0 only after the peer shut down its write side
 *     or closed, TCP_ERR_STOPPED only after a stop, TCP_ERR_CLOSED only after
 *     a close, TCP_ERR_SHUTDOWN only at engine shutdown, TCP_ERR_NOT_CONNECTED
 *     only on a connecting socket; every acknowledged byte was posted.
 *
 * The fuzzer sees the engine's state only through completions taken so far,
 * so a stream it believes running may already have ended on its own (end of
 * stream, an error) with the final still on its way. An answer that only an
 * ended stream can give (a read accepted, a valid ack refused, ...) is then
 * allowed, and marks the stream: its final must be one of those endings.
 */
#include <stdio.h>

#include "fuzz.h"

stream_phase stream_phase_of(int ri) {
  int s = recs[ri].stream;
  if (s < 0 || reqs[s].done) return S_NONE;
  return reqs[s].stop_called ? S_STOPPING : S_RUNNING;
}

int32_t read_side_busy(int ri) { return stream_phase_of(ri) == S_RUNNING ? TCP_ERR_BUSY : 0; }

/* The stream of ri, believed running, answered as one that has ended. */
static void mark_ended(int ri, const char *why) {
  int s = recs[ri].stream;
  reqs[s].must_have_ended = true;
  if (g_trace) fprintf(stderr, "[trace] stream req %d of rec %d must have ended: %s\n", s, ri, why);
}

void note_read_accepted(int idx) {
  int ri = reqs[idx].rec;
  if (stream_phase_of(ri) == S_RUNNING) mark_ended(ri, "a one-shot read was accepted");
}

/* ---- completions ---------------------------------------------------------------- */
static void on_stream_data(int idx, fd_completion *c) {
  req *q = &reqs[idx];
  int64_t res = c->result;
  REQUIRE(c->payload_kind == FD_PAYLOAD_BYTES && c->len == (size_t)res,
          "stream %d: DATA %lld with a payload of kind %d, %zu bytes", idx, (long long)res, (int)c->payload_kind,
          c->len);
  require_reads_before_done(idx);
  q->posted += res;
  q->chunks++;
  REQUIRE(q->posted - q->acked <= q->len,
          "stream %d on rec %d: %lld bytes posted, %lld acknowledged: more than the window of %lld", idx, q->rec,
          (long long)q->posted, (long long)q->acked, (long long)q->len);
  on_read_data(q->rec, c->data, c->len);
}

/* Is the final result one the contract allows for what this input did? */
static void check_final_result(int idx, int64_t res) {
  const req *q = &reqs[idx];
  const rec *r = &recs[q->rec];
  switch (res) {
    case 0:
      REQUIRE(peer_may_have_ended(q->rec), "stream %d on rec %d: end of stream, but its peer neither shut down nor closed",
              idx, q->rec);
      break;
    case TCP_ERR_STOPPED: REQUIRE(q->stop_called, "stream %d: TCP_ERR_STOPPED without a stop", idx); break;
    case TCP_ERR_CLOSED:
      REQUIRE(r->state == R_CLOSED || r->state == R_FINALIZED, "stream %d: TCP_ERR_CLOSED on rec %d, never closed", idx,
              q->rec);
      break;
    case TCP_ERR_SHUTDOWN:
      REQUIRE(g_shutdowns > q->shutdowns_before, "stream %d: TCP_ERR_SHUTDOWN with no tcp_shutdown", idx);
      break;
    case TCP_ERR_NOT_CONNECTED:
      REQUIRE(!r->accepted, "stream %d: TCP_ERR_NOT_CONNECTED on an accepted socket", idx);
      break;
    default: break; /* the connection failed: is_error_code was checked */
  }
  if (q->must_have_ended)
    REQUIRE(res != TCP_ERR_STOPPED && res != TCP_ERR_CLOSED && res != TCP_ERR_SHUTDOWN,
            "stream %d: the engine answered as if it had ended on its own, but its final is %lld (%s)", idx,
            (long long)res, tcp_strerror(res));
}

static void on_stream_final(int idx, fd_completion *c) {
  req *q = &reqs[idx];
  int64_t res = c->result;
  REQUIRE(res < 0 || c->payload_kind == FD_PAYLOAD_NULL, "stream %d: final 0 with a payload", idx);
  require_reads_before_done(idx);
  check_final_result(idx, res);
  REQUIRE(q->posted >= q->acked, "stream %d ended with %lld bytes acknowledged but only %lld posted", idx,
          (long long)q->acked, (long long)q->posted);
  if (res == 0) recs[q->rec].eof = true;
  q->done = true;
  q->result = res;
  outstanding--;
}

void on_stream_completion(int idx, fd_completion *c) {
  const req *q = &reqs[idx];
  REQUIRE(!q->done, "stream %d: a completion (result %lld) after its final (%lld)", idx, (long long)c->result,
          (long long)q->result);
  if (c->result > 0) on_stream_data(idx, c);
  else on_stream_final(idx, c);
}

/* ---- operations ------------------------------------------------------------------- */
static int64_t window_of_class(reader *in) {
  uint8_t c = rd8(in);
  switch (c & 7) {
    case 0: case 1: return 1 + (c >> 3) % 16; /* tiny: the window is hit at once */
    case 2: return 1 + rd8(in);
    case 3: case 4: return 1 + rd16(in) % 8192;
    case 5: return 1 + rd16(in);
    case 6: return 1 + rd32(in) % (1 << 20);
    default: return (c & 0x80) ? TCP_READ_BYTES_MAX : 4096;
  }
}

/* A rec for a stream call, by one byte b: with b even, the (b >> 2)-th of
 * those with a stream that has not ended; else (or when there is none) the
 * (b >> 2)-th rec, a connection unless b & 2 (then the call is mostly
 * refused). */
static int pick_stream_rec(reader *in) {
  uint8_t b = rd8(in);
  int n = 0;
  for (int i = 0; i < nrecs; i++) n += stream_phase_of(i) != S_NONE;
  if (!(b & 1) && n > 0) {
    int k = (b >> 2) % n;
    for (int i = 0; i < nrecs; i++)
      if (stream_phase_of(i) != S_NONE && k-- == 0) return i;
  }
  for (int k = 0; k < nrecs; k++) {
    int i = ((b >> 2) + k) % nrecs;
    if ((b & 2) || !recs[i].listener) return i;
  }
  return -1;
}

static void stream_start_on(int ri, int64_t window) {
  rec *r = &recs[ri];
  stream_phase before = stream_phase_of(ri);
  int idx = add_req(K_STREAM, ri, r->port, window);
  reqs[idx].shutdowns_before = g_shutdowns;
  int32_t rc = tcp_read_stream(r->handle, id_of(idx), window);
  if (rc != 0) drop_req(rc);
  if (rc == TCP_ERR_BUSY) {
    REQUIRE(before != S_NONE && expected_refusal(ri) == 0, "read_stream on rec %d: TCP_ERR_BUSY with no stream", ri);
    return;
  }
  check_io_refusal(ri, rc, "read_stream");
  if (rc != 0) return;
  /* The earlier stream's final must come first: require_reads_before_done. */
  if (before == S_RUNNING) mark_ended(ri, "a second stream was accepted");
  r->stream = idx;
}

void op_stream_start(reader *in) {
  int ri = pick_rec(in, rd8(in) < 16 ? -1 : 0);
  if (ri < 0) return;
  stream_start_on(ri, window_of_class(in));
}

/* What an acknowledgement of `amount` on ri must get, given what arrived. */
static void check_ack_answer(int ri, int64_t amount, int32_t rc) {
  const rec *r = &recs[ri];
  if (g_trace) fprintf(stderr, "[trace] ack %lld on rec %d: %d\n", (long long)amount, ri, rc);
  int32_t want = expected_refusal(ri);
  if (want == 0 && r->listener) want = TCP_ERR_BAD_HANDLE;
  if (want != 0) {
    REQUIRE(rc == want, "ack on rec %d: got %d, expected %d", ri, rc, want);
    return;
  }
  req *q = stream_phase_of(ri) == S_RUNNING ? &reqs[r->stream] : NULL;
  /* The engine never has more than a window unacknowledged. */
  if (q == NULL || amount <= 0 || amount > q->len) {
    REQUIRE(rc == TCP_ERR_INVALID_ARGUMENT, "ack of %lld on rec %d (%s): got %d (%s)", (long long)amount, ri,
            q == NULL ? "no running stream" : "never valid", rc, tcp_strerror(rc));
    return;
  }
  bool arrived = amount <= q->posted - q->acked;
  if (rc == TCP_OK) {
    q->acked += amount; /* beyond what arrived: the bytes must be on their way (checked at the final) */
    return;
  }
  REQUIRE(rc == TCP_ERR_INVALID_ARGUMENT, "ack of %lld on rec %d: got %d (%s)", (long long)amount, ri, rc,
          tcp_strerror(rc));
  if (arrived) mark_ended(ri, "a valid ack was refused");
}

static int64_t ack_amount(int ri, uint8_t how, reader *in) {
  int s = recs[ri].stream;
  int64_t unacked = s >= 0 ? reqs[s].posted - reqs[s].acked : 0;
  int64_t window = s >= 0 ? reqs[s].len : 1;
  switch (how & 7) {
    case 0: return unacked > 0 ? unacked : 1;                  /* everything that arrived */
    case 1: return 1 + rd16(in) % (unacked > 0 ? unacked : 1); /* part of it */
    case 2: return 0;
    case 3: return -1 - (int64_t)rd16(in);
    case 4: return (how & 0x20) ? INT64_MAX : window + 1 + rd16(in); /* more than a window */
    default: return (unacked > 0 ? unacked : 0) + 1 + rd8(in) % 64; /* more than arrived */
  }
}

void op_stream_ack(reader *in) {
  int ri = pick_stream_rec(in);
  if (ri < 0) return;
  uint8_t how = rd8(in);
  if (!(how & 0x40)) poll_now(); /* mostly: acknowledge what is there */
  int64_t amount = ack_amount(ri, how, in);
  check_ack_answer(ri, amount, tcp_read_stream_ack(recs[ri].handle, amount));
}

void op_stream_stop(reader *in) {
  int ri = pick_stream_rec(in);
  if (ri < 0) return;
  stream_phase phase = stream_phase_of(ri);
  int32_t rc = tcp_read_stream_stop(recs[ri].handle);
  if (g_trace) fprintf(stderr, "[trace] stop on rec %d: %d\n", ri, rc);
  int32_t want = expected_refusal(ri);
  if (want == 0 && recs[ri].listener) want = TCP_ERR_BAD_HANDLE;
  if (want == 0 && phase != S_RUNNING) want = TCP_ERR_INVALID_ARGUMENT; /* none, or already stopping */
  if (want != 0) {
    REQUIRE(rc == want, "stop on rec %d: got %d, expected %d", ri, rc, want);
    return;
  }
  REQUIRE(rc == TCP_OK || rc == TCP_ERR_INVALID_ARGUMENT, "stop on rec %d: got %d (%s)", ri, rc, tcp_strerror(rc));
  if (rc == TCP_OK) reqs[recs[ri].stream].stop_called = true;
  else mark_ended(ri, "stop refused");
}

/* The window hit: no ack for a while (the window invariant is checked on
 * every DATA), then, if the input says so, everything acknowledged at once. */
void op_stream_fill(reader *in) {
  int ri = pick_stream_rec(in);
  if (ri < 0 || stream_phase_of(ri) != S_RUNNING) return;
  const req *q = &reqs[recs[ri].stream];
  uint8_t how = rd8(in);
  int rounds = 1 + how % 16;
  for (int k = 0; k < rounds && !q->done && q->posted - q->acked < q->len; k++) wait_on(q->port, 5);
  bool full = !q->done && q->posted - q->acked == q->len;
  if (g_trace) fprintf(stderr, "[trace] stream on rec %d: window %s\n", ri, full ? "full" : "not full");
  if (full) wait_on(q->port, 2); /* nothing more may come */
  if ((how & 0x80) && stream_phase_of(ri) == S_RUNNING && q->posted > q->acked) {
    int64_t amount = q->posted - q->acked;
    check_ack_answer(ri, amount, tcp_read_stream_ack(recs[ri].handle, amount));
  }
}

/* A call beside a running stream: a one-shot read or a second stream (both
 * TCP_ERR_BUSY), or a close (its final comes before the close's completion). */
void op_stream_probe(reader *in) {
  int ri = pick_stream_rec(in);
  if (ri < 0) return;
  uint8_t what = rd8(in);
  switch (what % 3) {
    case 0: read_on(ri, 1 + rd16(in)); break;
    case 1: stream_start_on(ri, window_of_class(in)); break;
    default: close_rec(ri); break;
  }
}
