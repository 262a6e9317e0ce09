/*
 * sim_model.c -- what the simulation test expects of the engine (see
 * sim_model.h).
 */
#include "sim_model.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "byte_stream.h"
#include "fake_dart.h"
#include "runner.h"
#include "tcp.h"
#include "tracked_calls.h"

static struct {
  uint64_t run_seed;
  m_sock **socks;
  size_t nsocks, cap_socks;
  m_op **ops;
  size_t nops, cap_ops;
  model_stats stats;
} M;

static void *grow(void *array, size_t *cap, size_t elem) {
  size_t n = *cap ? *cap * 2 : 64;
  void *grown = realloc(array, n * elem);
  if (grown == NULL) FAILF("out of memory");
  *cap = n;
  return grown;
}

void model_reset(uint64_t run_seed) {
  for (size_t i = 0; i < M.nsocks; i++) {
    free(M.socks[i]->writes);
    free(M.socks[i]);
  }
  for (size_t i = 0; i < M.nops; i++) free(M.ops[i]);
  free(M.socks);
  free(M.ops);
  memset(&M, 0, sizeof M);
  M.run_seed = run_seed;
}

size_t model_socks(void) { return M.nsocks; }
m_sock *model_sock(size_t index) { return M.socks[index]; }
model_stats model_stats_get(void) { return M.stats; }

m_sock *model_find(int64_t handle) {
  for (size_t i = M.nsocks; i-- > 0;)
    if (M.socks[i]->handle == handle) return M.socks[i];
  return NULL;
}

m_sock *model_add(int64_t handle, int64_t port, m_kind kind) {
  if (model_find(handle) != NULL)
    FAILF("handle %lld issued twice (a handle value must never come back)", (long long)handle);
  if (M.nsocks == M.cap_socks) M.socks = grow(M.socks, &M.cap_socks, sizeof(*M.socks));
  m_sock *s = calloc(1, sizeof(*s));
  if (s == NULL) FAILF("out of memory");
  s->handle = handle;
  s->port = port;
  s->kind = kind;
  s->connect = MC_ACCEPTED;
  s->profile = sim_profile_of(M.run_seed, handle);
  M.socks[M.nsocks++] = s;
  h_remember_port(handle, port);
  return s;
}

static int32_t index_of(const m_sock *s) {
  for (size_t i = 0; i < M.nsocks; i++)
    if (M.socks[i] == s) return (int32_t)i;
  FAILF("test bug: socket not in the model");
}

/* ---- calls ------------------------------------------------------------------------------ */

int64_t model_expect_call(int64_t handle, op_kind_t op) {
  const m_sock *s = model_find(handle);
  if (s == NULL) return TCP_ERR_BAD_HANDLE;
  if (s->closed) return TCP_ERR_CLOSED;
  if (op == K_CLOSE) return TCP_OK;
  if (op == K_ACCEPT) return s->kind == M_LISTENER ? TCP_OK : TCP_ERR_BAD_HANDLE;
  if (s->kind != M_CONN) return TCP_ERR_BAD_HANDLE;
  if (op != 0 && s->connect == MC_FAILED) return TCP_ERR_NOT_CONNECTED;
  if (op == K_READ && s->stream != NULL && !s->stream_stopping) return TCP_ERR_BUSY;
  return TCP_OK;
}

/* ---- read streams ------------------------------------------------------------------------- */

static int64_t stream_room(const m_sock *s) { return s->stream_acked + s->stream_window - s->stream_posted; }

int64_t model_expect_stream(int64_t handle, int64_t window_bytes) {
  if (window_bytes <= 0 || window_bytes > TCP_READ_BYTES_MAX) return TCP_ERR_INVALID_ARGUMENT;
  int64_t rc = model_expect_call(handle, K_STREAM);
  if (rc != TCP_OK) return rc;
  return model_find(handle)->stream != NULL ? TCP_ERR_BUSY : TCP_OK;
}

/* ack and stop look the socket up as a connection, not as one for I/O. */
static const m_sock *stream_of(int64_t handle, int64_t *rc) {
  *rc = model_expect_call(handle, 0);
  const m_sock *s = *rc == TCP_OK ? model_find(handle) : NULL;
  if (s != NULL && (s->stream == NULL || s->stream_stopping)) *rc = TCP_ERR_INVALID_ARGUMENT;
  return *rc == TCP_OK ? s : NULL;
}

int64_t model_expect_ack(int64_t handle, int64_t bytes) {
  int64_t rc;
  const m_sock *s = stream_of(handle, &rc);
  if (s != NULL && (bytes <= 0 || bytes > s->stream_posted - s->stream_acked)) rc = TCP_ERR_INVALID_ARGUMENT;
  return rc;
}

int64_t model_expect_stop(int64_t handle) {
  int64_t rc;
  (void)stream_of(handle, &rc);
  return rc;
}

void model_stream_started(m_sock *s, m_op *stream, int64_t window_bytes) {
  s->stream = stream;
  s->stream_stopping = false;
  s->stream_window = window_bytes;
  s->stream_posted = s->stream_acked = 0;
}

void model_stream_acked(m_sock *s, int64_t bytes) { s->stream_acked += bytes; }

/* With no receive queued or in flight, the stop ends the stream inside the
 * call: when the window is full (no receive is asked for), or when the
 * receive waits, not started, at the head of the reads for a connect. */
void model_stream_stopped(m_sock *s) {
  m_op *stream = s->stream;
  bool head_unstarted = s->connect == MC_PENDING && s->reads_in_core == 1; /* nothing ahead of it */
  s->stream_stopping = true;
  if (stream_room(s) > 0 && !head_unstarted) return;
  stream->ended_at_once = true;
  stream->at_once_result = TCP_ERR_STOPPED;
  s->reads_in_core--;
  s->stream = NULL; /* the core's stream is over: a new one may start */
  s->stream_stopping = false;
}

m_op *model_issue(int64_t request_id, m_sock *s, op_kind_t kind) {
  if (M.nops == M.cap_ops) M.ops = grow(M.ops, &M.cap_ops, sizeof(*M.ops));
  m_op *op = calloc(1, sizeof(*op));
  if (op == NULL) FAILF("out of memory");
  op->id = request_id;
  op->kind = kind;
  op->sock = index_of(s);
  if (kind == K_READ || kind == K_STREAM) {
    op->seq = s->reads_issued++;
    s->reads_in_core++;
  }
  if (kind == K_WRITE || kind == K_SHUTW) {
    if (s->writes_issued == s->cap_writes) s->writes = grow(s->writes, &s->cap_writes, sizeof(*s->writes));
    s->writes[s->writes_issued] = op;
    op->seq = s->writes_issued++;
  }
  if (kind == K_ACCEPT) s->accepts_out++;
  s->requests_out++;
  h_issue(request_id, s->port, kind, s->handle, (int64_t)M.nops);
  M.ops[M.nops++] = op;
  return op;
}

/* ---- completions ----------------------------------------------------------------------- */

#define EXPECT(cond, ...)              \
  do {                                 \
    if (!(cond)) FAILF(__VA_ARGS__);   \
  } while (0)

/* The OS code in the payload of an error completion. */
static void expect_os(const h_req *r, int64_t os_error) {
  EXPECT(r->c.payload_int == os_error, "request %lld: result %lld (%s) with OS code %lld, expected %lld",
         (long long)r->c.request_id, (long long)r->c.result, h_code_name(r->c.result),
         (long long)r->c.payload_int, (long long)os_error);
}

/* NOT_CONNECTED: the connect failed, or fails in this very pass (the requests
 * queued behind it end before the connect's own completion is posted). */
static void expect_not_connected(m_sock *s, const h_req *r) {
  EXPECT(s->connect == MC_PENDING || s->connect == MC_FAILED,
         "request %lld on handle %lld ended NOT_CONNECTED, but its connect %s", (long long)r->c.request_id,
         (long long)s->handle, s->connect == MC_OK ? "succeeded" : "is not that kind");
  if (s->connect == MC_PENDING) s->saw_not_connected = true;
}

static void check_connect(m_sock *s, const h_req *r) {
  int64_t res = r->c.result;
  long long id = (long long)r->c.request_id;
  EXPECT(s->connect == MC_PENDING, "connect %lld completed twice", id);
  if (res == 0) {
    EXPECT(s->profile.connect == SIM_CONNECT_OK, "connect %lld succeeded, but the peer %s", id,
           s->profile.connect == SIM_CONNECT_REFUSED ? "refuses" : "never answers");
    EXPECT(!s->saw_not_connected, "connect %lld succeeded after its queued requests ended NOT_CONNECTED", id);
    s->connect = MC_OK;
    return;
  }
  s->connect = MC_FAILED;
  if (res == TCP_ERR_TIMED_OUT) {
    EXPECT(s->connect_timeout_ms > 0, "connect %lld without a timeout timed out", id);
    EXPECT(sim_now_ms() >= s->connect_deadline_ms, "connect %lld timed out at %lld ms, before its deadline %lld ms",
           id, (long long)sim_now_ms(), (long long)s->connect_deadline_ms);
    expect_os(r, ETIMEDOUT);
    return;
  }
  EXPECT(res == TCP_ERR_CONNECTION_REFUSED && s->profile.connect == SIM_CONNECT_REFUSED,
         "connect %lld ended with %lld (%s); the peer's profile is %d", id, (long long)res, h_code_name(res),
         (int)s->profile.connect);
  expect_os(r, ECONNREFUSED);
}

static void check_accept(m_sock *listener, const h_req *r) {
  int64_t res = r->c.result;
  if (res > 0) {
    m_sock *c = model_add(res, listener->port, M_CONN);
    c->connect = MC_ACCEPTED;
    return;
  }
  EXPECT(res == TCP_ERR_TOO_MANY_FILES, "accept %lld ended with %lld (%s)", (long long)r->c.request_id,
         (long long)res, h_code_name(res));
  expect_os(r, EMFILE);
}

/* The read's data must be the connection's stream at the model's offset, and
 * the stream may end only where the profile ends it. */
static void check_read(m_sock *s, const m_op *op, const h_req *r) {
  int64_t res = r->c.result;
  long long id = (long long)r->c.request_id;
  const sim_profile *p = &s->profile;
  if (res == TCP_ERR_NOT_CONNECTED) return expect_not_connected(s, r);
  EXPECT(s->connect == MC_OK || s->connect == MC_ACCEPTED, "read %lld completed (%lld) before its connect", id,
         (long long)res);
  bool at_end = p->read_end != SIM_READ_ENDLESS && s->read_offset == p->read_end_offset;
  EXPECT(!at_end || p->read_end != SIM_READ_SILENT, "read %lld ended (%lld) where the peer went silent", id,
         (long long)res);
  if (res > 0) {
    EXPECT(res <= op->bytes_max, "read %lld of at most %lld bytes returned %lld", id, (long long)op->bytes_max,
           (long long)res);
    EXPECT(p->read_end == SIM_READ_ENDLESS || s->read_offset + (uint64_t)res <= p->read_end_offset,
           "read %lld returned bytes past the end of the stream (offset %llu)", id,
           (unsigned long long)s->read_offset);
    size_t wrong = byte_stream_first_diff(p->read_seed, s->read_offset, r->c.data, (size_t)res);
    EXPECT(wrong == (size_t)res, "read %lld: byte %zu (stream offset %llu) is not the stream's", id, wrong,
           (unsigned long long)(s->read_offset + wrong));
    s->read_offset += (uint64_t)res;
    M.stats.bytes_read += (uint64_t)res;
  } else if (res == 0) {
    EXPECT(at_end && p->read_end == SIM_READ_EOF, "read %lld: end of stream at offset %llu, not the stream's end",
           id, (unsigned long long)s->read_offset);
  } else {
    EXPECT(res == TCP_ERR_CONNECTION_RESET && at_end && p->read_end == SIM_READ_RESET,
           "read %lld ended with %lld (%s) at offset %llu", id, (long long)res, h_code_name(res),
           (unsigned long long)s->read_offset);
    expect_os(r, ECONNRESET);
  }
}

/* A DATA completion of s's stream: the stream's turn on the read side, the
 * bytes of the peer's stream at the offset, within the window. */
static void check_stream_data(m_sock *s, const m_op *op, const h_req *r, size_t n) {
  long long id = (long long)op->id;
  const sim_profile *p = &s->profile;
  EXPECT(!s->close_done && !s->closed, "stream %lld: DATA after its socket's close", id);
  EXPECT(s->stream == op, "stream %lld: DATA after its final completion", id);
  EXPECT(op->seq == s->reads_done, "stream %lld: DATA before read #%llu of its socket", id,
         (unsigned long long)s->reads_done);
  EXPECT(s->stream_posted + (int64_t)n - s->stream_acked <= s->stream_window,
         "stream %lld: %zu bytes past its window (%lld posted, %lld acked, window %lld)", id, n,
         (long long)s->stream_posted, (long long)s->stream_acked, (long long)s->stream_window);
  EXPECT(p->read_end == SIM_READ_ENDLESS || s->read_offset + n <= p->read_end_offset,
         "stream %lld: bytes past the end of the peer's stream (offset %llu)", id, (unsigned long long)s->read_offset);
  size_t wrong = byte_stream_first_diff(p->read_seed, s->read_offset, r->stream_bytes + r->stream_len - n, n);
  EXPECT(wrong == n, "stream %lld: byte %zu of a DATA (stream offset %llu) is not the stream's", id, wrong,
         (unsigned long long)(s->read_offset + wrong));
  s->read_offset += n;
  s->stream_posted += (int64_t)n;
  M.stats.bytes_read += n;
  M.stats.outcomes[MO_STREAM_DATA]++;
}

/* A stream's final completion: where the peer's stream ends, the stop, or
 * the failed connect it waited for. */
static void check_stream_final(m_sock *s, const m_op *op, const h_req *r) {
  int64_t res = r->c.result;
  long long id = (long long)r->c.request_id;
  const sim_profile *p = &s->profile;
  bool stopping = s->stream_stopping;
  EXPECT(s->stream == op, "test bug: stream %lld ended but is not its socket's stream", id);
  s->stream = NULL;
  s->stream_stopping = false;
  if (res == TCP_ERR_NOT_CONNECTED) return expect_not_connected(s, r);
  EXPECT(s->connect == MC_OK || s->connect == MC_ACCEPTED, "stream %lld ended (%lld) before its connect", id,
         (long long)res);
  bool at_end = p->read_end != SIM_READ_ENDLESS && p->read_end != SIM_READ_SILENT &&
                s->read_offset == p->read_end_offset;
  if (res == TCP_ERR_STOPPED && stopping) return expect_os(r, 0);
  EXPECT(at_end && ((res == 0 && p->read_end == SIM_READ_EOF) ||
                    (res == TCP_ERR_CONNECTION_RESET && p->read_end == SIM_READ_RESET)),
         "stream %lld ended with %lld (%s) at offset %llu%s", id, (long long)res, h_code_name(res),
         (unsigned long long)s->read_offset, stopping ? " while stopping" : ", never stopped");
  if (res < 0) expect_os(r, ECONNRESET);
}

/* The peer takes writes in order until its write limit, then resets; after
 * that, or after shutdown_write, writes fail with a broken pipe. */
static void check_write(m_sock *s, const m_op *op, const h_req *r) {
  int64_t res = r->c.result;
  long long id = (long long)r->c.request_id;
  if (res == TCP_ERR_NOT_CONNECTED) return expect_not_connected(s, r);
  EXPECT(s->connect == MC_OK || s->connect == MC_ACCEPTED, "write %lld completed (%lld) before its connect", id,
         (long long)res);
  if (op->kind == K_SHUTW) {
    EXPECT(res == 0, "shutdown_write %lld ended with %lld (%s)", id, (long long)res, h_code_name(res));
    if (s->write_state == MW_OK) s->write_state = MW_SHUT;
    return;
  }
  if (op->write_len == 0) {
    EXPECT(res == 0, "zero-length write %lld ended with %lld (%s)", id, (long long)res, h_code_name(res));
    return;
  }
  if (s->write_state != MW_OK) {
    EXPECT(res == TCP_ERR_BROKEN_PIPE, "write %lld after a reset or shutdown_write ended with %lld (%s)", id,
           (long long)res, h_code_name(res));
    return expect_os(r, EPIPE);
  }
  EXPECT(op->write_offset == s->written_ok, "test bug: write %lld at offset %llu after %llu written", id,
         (unsigned long long)op->write_offset, (unsigned long long)s->written_ok);
  uint64_t end = op->write_offset + op->write_len;
  EXPECT(s->profile.write_limit == SIM_NO_LIMIT || end <= s->profile.write_limit ||
             s->profile.write_end != SIM_WRITE_STALL,
         "write %lld ended (%lld) though the peer stopped reading before its end", id, (long long)res);
  if (s->profile.write_limit == SIM_NO_LIMIT || end <= s->profile.write_limit) {
    EXPECT(res == (int64_t)op->write_len, "write %lld of %llu bytes ended with %lld (%s)", id,
           (unsigned long long)op->write_len, (long long)res, h_code_name(res));
    s->written_ok = end;
    M.stats.bytes_written += op->write_len;
    return;
  }
  EXPECT(res == TCP_ERR_CONNECTION_RESET, "write %lld past the peer's limit ended with %lld (%s)", id,
         (long long)res, h_code_name(res));
  expect_os(r, ECONNRESET);
  s->write_state = MW_BROKEN;
}

static void check_close(m_sock *s, const h_req *r) {
  EXPECT(r->c.result == 0, "close %lld ended with %lld (%s)", (long long)r->c.request_id, (long long)r->c.result,
         h_code_name(r->c.result));
  EXPECT(s->requests_out == 0, "close %lld of handle %lld completed before %u of its requests",
         (long long)r->c.request_id, (long long)s->handle, s->requests_out);
  s->close_done = true;
}

/* The order rules, then the result. */
static void check_completion(const h_req *r) {
  m_op *op = M.ops[r->user];
  m_sock *s = M.socks[op->sock];
  long long id = (long long)r->c.request_id;
  EXPECT(!s->close_done, "request %lld of handle %lld completed after its close", id, (long long)s->handle);
  s->requests_out--;
  if (op->kind == K_READ || op->kind == K_STREAM) {
    EXPECT(op->seq == s->reads_done, "read %lld (#%llu) completed before read #%llu of its socket", id,
           (unsigned long long)op->seq, (unsigned long long)s->reads_done);
    s->reads_done++;
    if (!op->ended_at_once) s->reads_in_core--;
  } else if (op->kind == K_WRITE || op->kind == K_SHUTW) {
    if (!op->ended_at_once) s->writes_in_core--;
    EXPECT(op->seq == s->writes_done, "write %lld (#%llu) completed before write #%llu of its socket", id,
           (unsigned long long)op->seq, (unsigned long long)s->writes_done);
    s->writes_done++;
  } else if (op->kind == K_ACCEPT) {
    s->accepts_out--;
  }
  if (op->kind == K_CLOSE) return check_close(s, r);
  if (op->ended_at_once) {
    EXPECT(r->c.result == op->at_once_result, "request %lld, ended by its call, completed with %lld (%s), not %lld",
           id, (long long)r->c.result, h_code_name(r->c.result), (long long)op->at_once_result);
    return;
  }
  if (op->kind == K_STREAM && s->stream == op && s->closed) s->stream = NULL;
  if (s->closed) {
    EXPECT(r->c.result == s->close_reason, "request %lld pending at the close of handle %lld ended with %lld (%s)",
           id, (long long)s->handle, (long long)r->c.result, h_code_name(r->c.result));
    expect_os(r, 0); /* the close's reason, not an OS error */
    if (op->kind == K_CONNECT) s->connect = MC_FAILED;
    return;
  }
  switch (op->kind) {
    case K_CONNECT: return check_connect(s, r);
    case K_ACCEPT: return check_accept(s, r);
    case K_READ: return check_read(s, op, r);
    case K_STREAM: return check_stream_final(s, op, r);
    default: return check_write(s, op, r);
  }
}

const char *const m_outcome_names[MO_COUNT] = {
    "read data", "EOF", "reset", "written", "connected", "accepted", "refused",
    "timed out", "not connected", "broken pipe", "closed", "shutdown", "shutdown_write", "close",
    "stream data", "stopped",
    "other (too many files)",
};

static m_outcome outcome_of(const m_op *op, int64_t res) {
  switch (res) {
    case TCP_ERR_CONNECTION_RESET: return MO_RESET;
    case TCP_ERR_CONNECTION_REFUSED: return MO_REFUSED;
    case TCP_ERR_TIMED_OUT: return MO_TIMED_OUT;
    case TCP_ERR_NOT_CONNECTED: return MO_NOT_CONNECTED;
    case TCP_ERR_BROKEN_PIPE: return MO_BROKEN_PIPE;
    case TCP_ERR_CLOSED: return MO_CLOSED;
    case TCP_ERR_SHUTDOWN: return MO_SHUTDOWN;
    case TCP_ERR_STOPPED: return MO_STOPPED;
    default: break;
  }
  if (res < 0) return MO_OTHER; /* TCP_ERR_TOO_MANY_FILES: check_accept allows no other */
  switch (op->kind) {
    case K_READ:
    case K_STREAM: return res > 0 ? MO_READ_DATA : MO_READ_EOF;
    case K_WRITE: return MO_WRITTEN;
    case K_CONNECT: return MO_CONNECTED;
    case K_ACCEPT: return MO_ACCEPTED;
    case K_SHUTW: return MO_SHUT_WRITE;
    default: return MO_CLOSE;
  }
}

void model_drain(const int64_t *ports, size_t nports) {
  for (size_t i = 0; i < nports; i++) {
    h_req *r;
    size_t data;
    while ((r = h_take(ports[i], &data)) != NULL) {
      M.stats.completions++;
      m_op *op = M.ops[r->user];
      if (data > 0) {
        sim_trace("data: stream %lld: %zu bytes", (long long)op->id, data);
        check_stream_data(M.socks[op->sock], op, r, data);
        continue;
      }
      sim_trace("done: request %lld: %lld %s (payload %lld)", (long long)r->c.request_id, (long long)r->c.result,
                h_code_name(r->c.result), (long long)r->c.payload_int);
      check_completion(r);
      M.stats.outcomes[outcome_of(op, r->c.result)]++;
      h_release(r);
    }
  }
}

void model_shutdown(void) {
  for (size_t i = 0; i < M.nsocks; i++) {
    m_sock *s = M.socks[i];
    if (s->closed) continue;
    s->closed = true;
    s->close_reason = TCP_ERR_SHUTDOWN;
  }
}

/* ---- liveness ----------------------------------------------------------------------------- */

/* Requests of an open socket that may wait for ever, for only a close or
 * tcp_shutdown ends them: everything behind a connect the peer never answers
 * and that has no deadline; reads once the peer went silent, and a running
 * stream of a peer that never ends; writes from the first one a stalled peer
 * will not take in full. */
static uint32_t may_wait_forever(const m_sock *s) {
  if (s->closed) return 0;
  if (s->connect == MC_PENDING && s->profile.connect == SIM_CONNECT_SILENT && s->connect_timeout_ms <= 0)
    return s->requests_out;
  uint32_t n = 0;
  const sim_profile *p = &s->profile;
  if (p->read_end == SIM_READ_SILENT && s->read_offset == p->read_end_offset)
    n += (uint32_t)(s->reads_issued - s->reads_done);
  else if (s->stream != NULL && !s->stream_stopping && p->read_end == SIM_READ_ENDLESS)
    n += 1; /* a running stream of an endless peer (the liveness phase acks all it gets) */
  if (s->writes_done < s->writes_issued && s->write_state == MW_OK && p->write_end == SIM_WRITE_STALL &&
      p->write_limit != SIM_NO_LIMIT) {
    const m_op *head = s->writes[s->writes_done];
    if (head->kind == K_WRITE && head->write_offset + head->write_len > p->write_limit)
      n += (uint32_t)(s->writes_issued - s->writes_done);
  }
  return n;
}

size_t model_must_complete(const m_op **first, const m_sock **first_sock) {
  size_t n = 0;
  *first = NULL;
  *first_sock = NULL;
  for (size_t i = 0; i < M.nsocks; i++) {
    const m_sock *s = M.socks[i];
    uint32_t waiting = may_wait_forever(s);
    if (s->requests_out <= waiting) continue;
    n += s->requests_out - waiting;
    if (*first_sock == NULL) *first_sock = s;
  }
  if (*first_sock == NULL) return 0;
  for (size_t i = 0; i < M.nops && *first == NULL; i++) {
    const m_op *op = M.ops[i];
    if (M.socks[op->sock] == *first_sock && !h_get(op->id)->done) *first = op; /* its oldest */
  }
  return n;
}

uint32_t model_accepts_waiting(const m_sock *s) {
  return s->kind == M_LISTENER && !s->closed ? s->accepts_out : 0;
}
