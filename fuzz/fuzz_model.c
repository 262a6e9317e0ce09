/*
 * fuzz_model.c -- the fuzzer's model of one input: its sockets (recs), its
 * accepted requests (reqs), the byte stream of each direction, who is whose
 * peer; and the checks every completion goes through (see fuzz_ops.c for the
 * list of invariants). Stream completions go on to fuzz_stream.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"

rec recs[MAX_RECS];
int nrecs;
req reqs[MAX_REQS];
int nreqs, outstanding;
int64_t port_a, port_b;
bool engine_up, draining;
bool input_used_temp_port, input_used_finalizer;
int huge_reads;
uint32_t g_shutdowns;
unsigned long long g_input_no;
const char *g_backend = "?";
bool g_trace, g_profile;
int64_t prof_us[4];
const uint8_t LO4[4] = {127, 0, 0, 1};
const uint8_t LO6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "\n*** zig_tcp fuzz invariant violated (backend %s, input #%llu): ", g_backend, g_input_no);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

const char *kind_name(int k) {
  static const char *n[] = {"?", "connect", "accept", "read", "write", "shutdown_write", "close", "read_stream"};
  return k >= 1 && k <= 7 ? n[k] : "?";
}

uint8_t stream_byte(uint64_t seed, uint64_t off) {
  if (off < STREAM_HEADER_LEN) return (uint8_t)(seed >> (8 * off));
  return byte_stream_byte(seed, off - STREAM_HEADER_LEN);
}

void stream_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t n) {
  size_t i = 0;
  for (; i < n && off + i < STREAM_HEADER_LEN; i++) buf[i] = stream_byte(seed, off + i);
  if (i < n) byte_stream_fill(seed, off + i - STREAM_HEADER_LEN, buf + i, n - i);
}

int64_t now_ms(void) { return now_us() / 1000; }
int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Request ids: unique across the whole run, and above 2^32 so that 64 bits
 * must survive the trip. */
#define ID_TAG 0x5a00000000000000ll
int64_t id_of(int idx) { return ID_TAG | ((int64_t)(g_input_no & 0xffffffffffull) << 16) | idx; }
int64_t spare_id(void) { return id_of(MAX_REQS + 1 + (nreqs & 0x3fff)); }

bool is_error_code(int64_t c) { return (c <= -1 && c >= -9) || (c <= -20 && c >= -32) || c == -99; }

int new_rec(bool listener, int64_t handle, int64_t port, int family) {
  REQUIRE(nrecs < MAX_RECS, "rec table full");
  for (int i = 0; i < nrecs; i++)
    if (recs[i].used && (recs[i].state == R_LIVE) && recs[i].handle == handle)
      fail("handle %lld issued twice (rec %d still live)", (long long)handle, i);
  int i = nrecs++;
  rec *r = &recs[i];
  memset(r, 0, sizeof *r);
  r->used = true;
  r->listener = listener;
  r->state = R_LIVE;
  r->handle = handle;
  r->port = port;
  r->family = family;
  r->writer = -1;
  r->reader = -1;
  r->close_req = -1;
  r->stream = -1;
  r->last_nodelay = r->last_keepalive = -1;
  r->out_seed = byte_stream_mix64(((uint64_t)g_input_no << 8) ^ (uint64_t)i ^ 0x7cafe0000ull) | 1;
  return i;
}

int add_req(kind k, int ri, int64_t port, int64_t len) {
  REQUIRE(nreqs < MAX_REQS, "request table full");
  int idx = nreqs++;
  if (g_trace)
    fprintf(stderr, "[trace] req %d: %s on rec %d (handle %llx) len %lld\n", idx, kind_name(k), ri,
            ri < nrecs ? (long long)recs[ri].handle : 0ll, (long long)len);
  req *q = &reqs[idx];
  memset(q, 0, sizeof *q);
  q->kind = (uint8_t)k;
  q->rec = ri;
  q->port = port;
  q->len = len;
  outstanding++;
  return idx;
}

void drop_req(int32_t rc) {
  nreqs--;
  outstanding--;
  if (g_trace) fprintf(stderr, "[trace] req %d refused: %d (%s)\n", nreqs, rc, tcp_strerror(rc));
}

/* ---- peers ------------------------------------------------------------------------ */
/* The other end of connection ri, -1 when unknown: the writer its stream
 * header named, or else the one connection of the other side with the same
 * listener and client port (an accepted socket whose accept completion was
 * cancelled by a close is nobody's: its peer stays unknown). */
static int peer_of(int ri) {
  const rec *r = &recs[ri];
  if (r->writer >= 0) return r->writer;
  if (r->pair_port <= 0) return -1;
  int found = -1;
  for (int j = 0; j < nrecs; j++) {
    const rec *p = &recs[j];
    if (j == ri || !p->used || p->listener || p->accepted == r->accepted) continue;
    if (p->pair_port != r->pair_port || p->tcp_port != r->tcp_port || p->family != r->family) continue;
    if (found >= 0) return -1; /* a client port used twice: no telling */
    found = j;
  }
  return found;
}

static bool engine_stopping; /* tcp_shutdown closes every socket, in its own order */

bool peer_may_have_ended(int ri) {
  if (engine_stopping) return true;
  int p = peer_of(ri);
  return p < 0 || recs[p].shutw_issued || recs[p].state != R_LIVE;
}

/* ---- completions ------------------------------------------------------------------ */
/* The stream header names the writer: the first 8 bytes a reader gets. */
static void learn_writer(int ri) {
  rec *r = &recs[ri];
  uint64_t seed = 0;
  for (int b = 0; b < STREAM_HEADER_LEN; b++) seed |= (uint64_t)r->in_hdr[b] << (8 * b);
  int w = -1;
  for (int j = 0; j < nrecs; j++)
    if (recs[j].used && !recs[j].listener && recs[j].out_seed == seed) w = j;
  REQUIRE(w >= 0, "rec %d: stream header %016llx names no writer of this input", ri, (unsigned long long)seed);
  REQUIRE(recs[w].reader < 0 || recs[w].reader == ri, "stream of rec %d reached two readers (%d and %d)", w,
          recs[w].reader, ri);
  REQUIRE(w != ri, "rec %d reads its own stream", ri);
  recs[w].reader = ri;
  r->writer = w;
  r->in_seed = seed;
}

/* Bytes that reached rec ri, in the order the engine delivered them (one-shot
 * reads and stream DATA alike): each must be its writer's byte at that offset. */
void on_read_data(int ri, const uint8_t *data, size_t n) {
  rec *r = &recs[ri];
  REQUIRE(!r->eof, "rec %d: %zu bytes read after end of stream", ri, n);
  size_t i = 0;
  while (r->in_off < STREAM_HEADER_LEN && i < n) r->in_hdr[r->in_off++] = data[i++];
  if (r->writer < 0 && r->in_off >= STREAM_HEADER_LEN) learn_writer(ri);
  if (i < n) {
    size_t bad = byte_stream_first_diff(r->in_seed, r->in_off - STREAM_HEADER_LEN, data + i, n - i);
    REQUIRE(bad == n - i, "rec %d: byte %llu of the stream is %02x, expected %02x", ri,
            (unsigned long long)(r->in_off + bad), data[i + bad], stream_byte(r->in_seed, r->in_off + bad));
    r->in_off += n - i;
  }
  if (r->writer >= 0)
    REQUIRE(r->in_off <= recs[r->writer].out_queued, "rec %d received %llu bytes but its writer %d only queued %llu",
            ri, (unsigned long long)r->in_off, r->writer, (unsigned long long)recs[r->writer].out_queued);
}

/* Reads and streams of one socket complete in call order (tcp.h ORDERING):
 * when request idx (a read, or any completion of a stream) arrives, every
 * read and stream issued before it on that socket has completed. */
void require_reads_before_done(int idx) {
  const req *q = &reqs[idx];
  for (int j = 0; j < idx; j++) {
    const req *e = &reqs[j];
    if (e->rec != q->rec || e->done || (e->kind != K_READ && e->kind != K_STREAM)) continue;
    fail("rec %d: a completion of %s request %d came before the end of the earlier %s request %d", q->rec,
         kind_name(q->kind), idx, kind_name(e->kind), j);
  }
}

static void on_connect(int idx, fd_completion *c) {
  rec *r = &recs[reqs[idx].rec];
  REQUIRE(c->result <= 0, "connect result %lld", (long long)c->result);
  REQUIRE(c->result < 0 || c->payload_kind == FD_PAYLOAD_NULL, "connect: payload on success");
  if (c->result == 0 && r->state == R_LIVE && engine_up) {
    int32_t p = tcp_local_port(r->handle);
    if (p > 0) r->pair_port = p;
  }
}

void close_rec(int ri);

static void on_accept(int idx, fd_completion *c) {
  int64_t res = c->result;
  REQUIRE(res != 0, "accept result 0");
  if (res < 0) return;
  REQUIRE(c->payload_kind == FD_PAYLOAD_NULL, "accept: payload on success");
  const rec *l = &recs[reqs[idx].rec];
  int ni = new_rec(false, res, l->port, l->family);
  recs[ni].accepted = true;
  recs[ni].tcp_port = l->tcp_port;
  memcpy(recs[ni].path, l->path, sizeof l->path); /* a Unix connection's local path: its listener's */
  recs[ni].path_len = l->path_len;
  int32_t p = tcp_remote_port(res);
  if (p > 0) recs[ni].pair_port = p;
  if (draining) close_rec(ni);
}

static void on_read(int idx, fd_completion *c) {
  const req *q = &reqs[idx];
  rec *r = &recs[q->rec];
  int64_t res = c->result;
  require_reads_before_done(idx);
  if (res > 0) {
    REQUIRE(res <= q->len, "read of max %lld returned %lld", (long long)q->len, (long long)res);
    REQUIRE(c->payload_kind == FD_PAYLOAD_BYTES && c->len == (size_t)res,
            "read result %lld with a payload of kind %d, %zu bytes", (long long)res, (int)c->payload_kind, c->len);
    on_read_data(q->rec, c->data, c->len);
  } else if (res == 0) {
    REQUIRE(c->payload_kind == FD_PAYLOAD_NULL, "read EOF with a payload");
    REQUIRE(peer_may_have_ended(q->rec), "rec %d: end of stream, but its peer %d neither shut down nor closed",
            q->rec, peer_of(q->rec));
    r->eof = true;
  } else {
    r->in_error = true;
  }
}

static void on_write(int idx, fd_completion *c) {
  const req *q = &reqs[idx];
  rec *r = &recs[q->rec];
  int64_t res = c->result;
  REQUIRE(res < 0 || res == q->len, "write of %lld bytes completed with %lld", (long long)q->len, (long long)res);
  REQUIRE(c->payload_kind != FD_PAYLOAD_BYTES, "write with a bytes payload");
  /* Writes are served in call order: a write that succeeded comes after
   * every earlier write on its socket, and all of those succeeded too.
   * (When a close cancels them, queued writes may report before the one
   * in flight: only failures can come out of order.) */
  /* (A zero-length write touches no byte: the core completes it with 0
   * even after a failed write or a shutdown_write; it is exempt.) */
  if (res > 0)
    for (int j = 0; j < idx; j++)
      if (reqs[j].rec == q->rec && reqs[j].kind == K_WRITE && reqs[j].len > 0)
        REQUIRE(reqs[j].done && reqs[j].result >= 0, "rec %d: write #%u succeeded, but the earlier write #%u %s",
                q->rec, q->write_seq, reqs[j].write_seq, reqs[j].done ? "failed" : "had not completed");
  r->writes_completed++;
  if (res > 0) r->out_ok += (uint64_t)res;
}

static void on_close(int idx, fd_completion *c) {
  const req *q = &reqs[idx];
  REQUIRE(c->result == 0, "close completed with %lld", (long long)c->result);
  REQUIRE(c->payload_kind == FD_PAYLOAD_NULL, "close with a payload");
  for (int j = 0; j < idx; j++)
    if (reqs[j].rec == q->rec && reqs[j].kind != K_CLOSE && !reqs[j].done && !recs[q->rec].temp_port)
      fail("rec %d: close completed before its earlier %s (request %d)", q->rec, kind_name(reqs[j].kind), j);
}

/* The request a completion names (its id must be one of this input's). */
static int req_of(const fd_completion *c) {
  int64_t id = c->request_id;
  REQUIRE((id & ~0xffffll) == id_of(0) && (id & 0xffff) < nreqs,
          "completion for unknown request id %llx on port %lld (result %lld)", (long long)id, (long long)c->port,
          (long long)c->result);
  int idx = (int)(id & 0xffff);
  const req *q = &reqs[idx];
  if (g_trace)
    fprintf(stderr, "[trace] completion of req %d (%s): result %lld payload %lld\n", idx, kind_name(q->kind),
            (long long)c->result, c->payload_kind == FD_PAYLOAD_INT ? (long long)c->payload_int : (long long)c->len);
  REQUIRE(c->port == q->port, "request %d (%s) completed on port %lld, issued on port %lld", idx, kind_name(q->kind),
          (long long)c->port, (long long)q->port);
  if (c->result < 0) {
    REQUIRE(is_error_code(c->result) || (q->kind == K_STREAM && c->result == TCP_ERR_STOPPED),
            "request %d (%s): result %lld is no TCP_ERR code it may have", idx, kind_name(q->kind),
            (long long)c->result);
    REQUIRE(c->payload_kind == FD_PAYLOAD_INT, "request %d (%s): error without an OS code payload", idx,
            kind_name(q->kind));
  }
  return idx;
}

static void on_completion(fd_completion *c) {
  int idx = req_of(c);
  req *q = &reqs[idx];
  if (q->kind == K_STREAM) {
    on_stream_completion(idx, c); /* many per request: DATA, then one final */
    fake_dart_release(c);
    return;
  }
  REQUIRE(!q->done, "request %d (%s) completed twice", idx, kind_name(q->kind));
  q->done = true;
  q->result = c->result;
  outstanding--;
  switch (q->kind) {
    case K_CONNECT: on_connect(idx, c); break;
    case K_ACCEPT: on_accept(idx, c); break;
    case K_READ: on_read(idx, c); break;
    case K_WRITE: on_write(idx, c); break;
    case K_SHUTW: REQUIRE(c->result <= 0, "shutdown_write result %lld", (long long)c->result); break;
    case K_CLOSE: on_close(idx, c); break;
  }
  fake_dart_release(c);
}

/* Takes every completion already queued on both ports. */
void poll_now(void) {
  fd_completion c[32];
  for (int p = 0; p < 2; p++) {
    int64_t port = p ? port_b : port_a;
    size_t n;
    while ((n = fake_dart_next_batch(port, 0, c, 32)) > 0)
      for (size_t i = 0; i < n; i++) on_completion(&c[i]);
  }
}

/* Takes what tcp_shutdown posted: every socket closed in the engine's order,
 * so an end of stream may come from any peer. */
void poll_after_shutdown(void) {
  engine_stopping = true;
  poll_now();
  engine_stopping = false;
}

/* Waits up to timeout_ms for one completion on the port of the oldest
 * outstanding request, then takes whatever is queued. Progress only: nothing
 * is asserted about how long it took. */
void wait_some(int64_t timeout_ms) {
  int64_t port = port_a;
  for (int i = 0; i < nreqs; i++)
    if (!reqs[i].done && !recs[reqs[i].rec].temp_port) {
      port = reqs[i].port;
      break;
    }
  wait_on(port, timeout_ms);
}

/* Waits up to timeout_ms for one completion on port, then takes whatever is
 * queued on both. */
void wait_on(int64_t port, int64_t timeout_ms) {
  fd_completion c;
  int64_t t0 = g_profile ? now_us() : 0;
  if (fake_dart_next(port, timeout_ms, &c)) on_completion(&c);
  if (g_profile) prof_us[0] += now_us() - t0;
  poll_now();
}
