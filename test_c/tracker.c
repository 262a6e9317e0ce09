/*
 * tracker.c -- the request tracker (see tracker.h).
 */
#include "tracker.h"

#include <stdlib.h>
#include <string.h>
#if defined(_WIN32)
#include <windows.h>
#endif

#include "runner.h"
#include "tcp.h"

#define ID_BASE ((int64_t)1 << 40)

/* Requests live in fixed blocks so that h_req pointers stay valid while new
 * requests are made. */
#define REQ_BLOCK 1024
static h_req **g_blocks;
static size_t g_nreqs, g_nblocks;
static int64_t *g_fifo; /* request ids in arrival order */
static size_t g_nfifo, g_cap_fifo, g_fifo_head;
static int64_t g_ports[64];
static bool g_port_closed[64];
static size_t g_nports;
static bool g_engine_up;

/* Every socket's port, to register requests on the right one. */
typedef struct sock_port {
  int64_t handle, port;
} sock_port;
static sock_port g_sock_ports[4096];
static size_t g_nsock_ports;

#define REQ(i) (&g_blocks[(size_t)(i) / REQ_BLOCK][(size_t)(i) % REQ_BLOCK])

void h_tracker_reset(void) {
  for (size_t b = 0; b < g_nblocks; b++) {
    for (size_t i = 0; i < REQ_BLOCK; i++) {
      fake_dart_release(&g_blocks[b][i].c);
      free(g_blocks[b][i].stream_bytes);
    }
    free(g_blocks[b]);
  }
  free(g_blocks);
  free(g_fifo);
  g_blocks = NULL;
  g_fifo = NULL;
  g_nreqs = g_nblocks = g_nfifo = g_cap_fifo = g_fifo_head = 0;
  g_nports = 0;
  g_nsock_ports = 0;
}

/* ---- engine lifetime ------------------------------------------------------------- */
void h_engine_shutdown(void) {
  CHECK_EQ(tcp_shutdown(), TCP_OK);
  g_engine_up = false;
}

void h_engine_init(void) {
  CHECK_EQ(tcp_init(fake_dart_api_data()), TCP_OK);
  g_engine_up = true;
}

void h_engine_started(void) { g_engine_up = true; }

/* The engine reads its hooks with getenv on POSIX and GetEnvironmentVariableA
 * on Windows (whose C runtime keeps a copy getenv would not see change). */
static const char *g_fault_env;

static void set_env(const char *name, const char *value) {
#if defined(_WIN32)
  SetEnvironmentVariableA(name, value);
#else
  if (value != NULL) setenv(name, value, 1);
  else unsetenv(name);
#endif
}

static void clear_fault_env(void) { set_env(g_fault_env, NULL); }

void h_engine_restart_with_fault(const char *backend, const char *name, const char *value) {
  const char *running = tcp_backend_name();
  if (running == NULL || strcmp(running, backend) != 0) SKIP("a fault hook of the %s backend (backend is %s)", backend, running);
  h_engine_shutdown();
  g_fault_env = name;
  set_env(name, value);
  h_at_test_end(clear_fault_env);
  h_engine_init();
  CHECK(strcmp(tcp_backend_name(), backend) == 0);
}

void h_engine_shutdown_unchecked(void) {
  if (g_engine_up) {
    tcp_shutdown();
    g_engine_up = false;
  }
}

/* ---- ports and sockets ------------------------------------------------------------- */
int64_t h_port(void) {
  if (g_nports == sizeof g_ports / sizeof g_ports[0]) FAILF("too many ports in one test");
  int64_t p = fake_dart_open_port();
  CHECK(p != 0);
  g_port_closed[g_nports] = false;
  g_ports[g_nports++] = p;
  return p;
}

static bool port_closed(int64_t port) {
  for (size_t i = 0; i < g_nports; i++)
    if (g_ports[i] == port) return g_port_closed[i];
  return false;
}

void h_close_port(int64_t port) {
  for (size_t i = 0; i < g_nports; i++)
    if (g_ports[i] == port) g_port_closed[i] = true;
  fake_dart_close_port(port);
}

void h_remember_port(int64_t handle, int64_t port) {
  for (size_t i = 0; i < g_nsock_ports; i++)
    if (g_sock_ports[i].handle == handle) {
      g_sock_ports[i].port = port;
      return;
    }
  if (g_nsock_ports == sizeof g_sock_ports / sizeof g_sock_ports[0]) {
    /* recycle: tests never need this many live sockets */
    g_nsock_ports = 0;
  }
  g_sock_ports[g_nsock_ports].handle = handle;
  g_sock_ports[g_nsock_ports].port = port;
  g_nsock_ports++;
}

int64_t h_port_of(int64_t handle) {
  for (size_t i = g_nsock_ports; i-- > 0;)
    if (g_sock_ports[i].handle == handle) return g_sock_ports[i].port;
  FAILF("test bug: no port known for handle %lld", (long long)handle);
}

/* ---- requests ------------------------------------------------------------------------ */
int64_t h_new_id(void) {
  if (g_nreqs == g_nblocks * REQ_BLOCK) {
    h_req **nb = (h_req **)realloc(g_blocks, (g_nblocks + 1) * sizeof(h_req *));
    if (nb == NULL) FAILF("out of memory");
    g_blocks = nb;
    g_blocks[g_nblocks] = (h_req *)calloc(REQ_BLOCK, sizeof(h_req));
    if (g_blocks[g_nblocks] == NULL) FAILF("out of memory");
    g_nblocks++;
  }
  return ID_BASE + (int64_t)g_nreqs++;
}

static h_req *lookup(int64_t id) {
  if (id < ID_BASE || id >= ID_BASE + (int64_t)g_nreqs) return NULL;
  size_t i = (size_t)(id - ID_BASE);
  return &g_blocks[i / REQ_BLOCK][i % REQ_BLOCK];
}

h_req *h_get(int64_t id) {
  h_req *r = lookup(id);
  if (r == NULL) FAILF("unknown request id %lld", (long long)id);
  return r;
}

void h_issue(int64_t id, int64_t port, op_kind_t kind, int64_t handle, int64_t user) {
  h_req *r = h_get(id);
  if (r->issued) FAILF("request id %lld issued twice (test bug)", (long long)id);
  r->issued = true;
  r->kind = kind;
  r->port = port;
  r->handle = handle;
  r->user = user;
}

static const char *kind_name(op_kind_t k) {
  switch (k) {
    case K_CONNECT: return "connect";
    case K_ACCEPT: return "accept";
    case K_READ: return "read";
    case K_WRITE: return "write";
    case K_SHUTW: return "shutdown_write";
    case K_CLOSE: return "close";
    case K_STREAM: return "read stream";
  }
  return "?";
}

/* ---- completions ----------------------------------------------------------------------- */
/* The payload of a filed completion has the shape tcp.h COMPLETION MESSAGES
 * gives for its kind and result. */
static void check_payload(const h_req *r) {
  long long id = (long long)r->c.request_id, res = (long long)r->c.result;
  const char *kn = kind_name(r->kind);
  if (res < 0) {
    if (r->c.payload_kind != FD_PAYLOAD_INT || r->c.payload_type != DART_COBJECT_INT64)
      FAILF("%s request %lld failed with %lld (%s) but its payload is not an int64 OS code "
            "(Dart_CObject type %d)",
            kn, id, res, h_code_name(res), (int)r->c.payload_type);
  } else if (r->kind == K_READ && res > 0) {
    /* Small reads travel as typed data the VM copies, large ones as external. */
    bool external = r->c.payload_type == DART_COBJECT_EXTERNAL_TYPED_DATA ||
                    r->c.payload_type == DART_COBJECT_UNMODIFIABLE_EXTERNAL_TYPED_DATA;
    if (res <= TCP_READ_COPY_BYTES_MAX && r->c.payload_type != DART_COBJECT_TYPED_DATA)
      FAILF("read %lld returned %lld bytes (<= %d) but payload is not typed data (type %d)", id, res,
            TCP_READ_COPY_BYTES_MAX, (int)r->c.payload_type);
    if (res > TCP_READ_COPY_BYTES_MAX && !external)
      FAILF("read %lld returned %lld bytes (> %d) but payload is not external typed data (type %d)",
            id, res, TCP_READ_COPY_BYTES_MAX, (int)r->c.payload_type);
    if (r->c.data_type != DART_TYPED_DATA_UINT8)
      FAILF("read %lld payload is typed data of type %d, not Uint8", id, (int)r->c.data_type);
    if ((long long)r->c.len != res)
      FAILF("read %lld: result %lld but payload holds %zu bytes", id, res, r->c.len);
  } else if (r->c.payload_kind != FD_PAYLOAD_NULL) {
    FAILF("%s request %lld succeeded with %lld but payload is not null (type %d)", kn, id, res,
          (int)r->c.payload_type);
  }
  if (r->kind == K_ACCEPT && res == 0)
    FAILF("accept %lld completed with handle 0", id);
}

/* A DATA completion of a stream: checked, its bytes appended, freed. */
static void file_stream_data(h_req *r, fd_completion *c) {
  long long id = (long long)c->request_id;
  if (c->port != r->port) FAILF("stream %lld: data on port %lld, expected %lld", id, (long long)c->port, (long long)r->port);
  bool bytes = c->payload_kind == FD_PAYLOAD_BYTES && c->data_type == DART_TYPED_DATA_UINT8 &&
               c->len == (size_t)c->result;
  bool shape = c->result <= TCP_READ_COPY_BYTES_MAX ? c->payload_type == DART_COBJECT_TYPED_DATA
                                                     : c->payload_type != DART_COBJECT_TYPED_DATA;
  if (!bytes || !shape) FAILF("stream %lld: DATA of %lld bytes with a payload of the wrong shape", id, (long long)c->result);
  if (r->stream_len + c->len > r->stream_cap) {
    size_t cap = r->stream_cap ? r->stream_cap : 4096;
    while (cap < r->stream_len + c->len) cap *= 2;
    uint8_t *grown = realloc(r->stream_bytes, cap);
    if (grown == NULL) FAILF("out of memory");
    r->stream_bytes = grown;
    r->stream_cap = cap;
  }
  memcpy(r->stream_bytes + r->stream_len, c->data, c->len);
  r->stream_len += c->len;
  r->stream_chunks++;
  fake_dart_release(c);
}

/* Checks one arrived completion and files it. The payload is owned by the
 * tracker from here on (freed at the end of the test or by h_release). */
static void file_completion(fd_completion *c) {
  h_req *r = lookup(c->request_id);
  if (r != NULL && r->issued && r->kind == K_STREAM && c->result > 0) {
    if (r->done) {
      fake_dart_release(c);
      FAILF("stream %lld: DATA after its final completion", (long long)r->c.request_id);
    }
    file_stream_data(r, c);
    return;
  }
  if (r == NULL || !r->issued) {
    long long id = (long long)c->request_id, res = (long long)c->result;
    long long port = (long long)c->port;
    fake_dart_release(c);
    FAILF("unexpected completion: request id %lld (result %lld %s) on port %lld", id, res,
          h_code_name(res), port);
  }
  if (r->done) {
    long long id = (long long)c->request_id, res = (long long)c->result;
    fake_dart_release(c);
    FAILF("duplicate completion for %s request %lld: first result %lld (%s), then %lld (%s)",
          kind_name(r->kind), id, (long long)r->c.result, h_code_name(r->c.result), res,
          h_code_name(res));
  }
  r->done = true;
  r->c = *c;
  memset(c, 0, sizeof *c);
  if (g_nfifo == g_cap_fifo) {
    size_t cap = g_cap_fifo ? g_cap_fifo * 2 : 256;
    int64_t *n = (int64_t *)realloc(g_fifo, cap * sizeof(int64_t));
    if (n == NULL) FAILF("out of memory");
    g_fifo = n;
    g_cap_fifo = cap;
  }
  g_fifo[g_nfifo++] = r->c.request_id;

  if (r->c.port != r->port)
    FAILF("%s request %lld completed on port %lld, expected port %lld", kind_name(r->kind),
          (long long)r->c.request_id, (long long)r->c.port, (long long)r->port);
  check_payload(r);
}

/* Takes one completion from port into the tracker. Returns false on timeout. */
static bool pump(int64_t port, int64_t timeout_ms) {
  fd_completion c;
  if (!fake_dart_next(port, timeout_ms, &c)) return false;
  file_completion(&c);
  return true;
}

h_req *h_await(int64_t id) {
  h_req *r = h_get(id);
  if (!r->issued) FAILF("awaiting request %lld that was never issued (test bug)", (long long)id);
  while (!r->done) {
    if (!pump(r->port, h_timeout_ms))
      FAILF("%s request %lld did not complete within %lld ms", kind_name(r->kind), (long long)id,
            (long long)h_timeout_ms);
  }
  r->consumed = true;
  return r;
}

h_req *h_take(int64_t port, size_t *data_bytes) {
  fd_completion c;
  *data_bytes = 0;
  if (!fake_dart_next(port, 0, &c)) return NULL;
  int64_t id = c.request_id;
  h_req *r = lookup(id);
  size_t data = r != NULL && r->issued && r->kind == K_STREAM && c.result > 0 ? (size_t)c.result : 0;
  file_completion(&c); /* fails the test for an unknown id, a duplicate, a wrong port or payload */
  r = lookup(id);
  if (data == 0) r->consumed = true;
  *data_bytes = data;
  return r;
}

h_req *h_next(int64_t port) {
  for (;;) {
    while (g_fifo_head < g_nfifo && lookup(g_fifo[g_fifo_head])->consumed) g_fifo_head++;
    for (size_t i = g_fifo_head; i < g_nfifo; i++) {
      h_req *r = lookup(g_fifo[i]);
      if (!r->consumed && r->port == port) {
        r->consumed = true;
        return r;
      }
    }
    if (!pump(port, h_timeout_ms))
      FAILF("no completion on port %lld within %lld ms", (long long)port, (long long)h_timeout_ms);
  }
}

void h_release(h_req *r) { fake_dart_release(&r->c); }

h_req *h_stream_wait(int64_t id, size_t bytes) {
  h_req *r = h_get(id);
  if (r->kind != K_STREAM) FAILF("request %lld is not a stream (test bug)", (long long)id);
  while (!r->done && r->stream_len < bytes) {
    if (!pump(r->port, h_timeout_ms))
      FAILF("stream %lld: %zu of %zu bytes within %lld ms", (long long)id, r->stream_len, bytes,
            (long long)h_timeout_ms);
  }
  return r;
}

void h_stream_poll(int64_t id) {
  h_req *r = h_get(id);
  while (pump(r->port, 0)) {
  }
}

/* ---- after the test -------------------------------------------------------------------- */
/* Every message a non-empty batch; per-port counts agree with what was filed;
 * triples of one message carry a valid position in it. */
static void check_batches(void) {
  for (size_t i = 0; i < g_nports; i++) {
    fd_port_stats ps;
    if (g_port_closed[i] || !fake_dart_port_stats(g_ports[i], &ps)) continue;
    uint64_t filed = 0;
    for (size_t k = 0; k < g_nreqs; k++) {
      if ((*REQ(k)).done && (*REQ(k)).c.port == g_ports[i]) filed++;
      if ((*REQ(k)).port == g_ports[i]) filed += (*REQ(k)).stream_chunks;
    }
    if (ps.triples != filed)
      FAILF("port %lld: %llu completions posted, %llu filed", (long long)g_ports[i],
            (unsigned long long)ps.triples, (unsigned long long)filed);
    if (ps.messages > ps.triples)
      FAILF("port %lld: more messages (%llu) than completions (%llu)", (long long)g_ports[i],
            (unsigned long long)ps.messages, (unsigned long long)ps.triples);
  }
  for (size_t k = 0; k < g_nreqs; k++) {
    h_req *r = &(*REQ(k));
    if (!r->done) continue;
    if (r->c.triples_in_message == 0 || r->c.index_in_message >= r->c.triples_in_message)
      FAILF("completion %lld: bad batch position %u/%u", (long long)r->c.request_id,
            r->c.index_in_message, r->c.triples_in_message);
  }
}

void h_tracker_finish(void) {
  if (g_engine_up) {
    g_engine_up = false;
    int32_t rc = tcp_shutdown();
    if (rc != TCP_OK) FAILF("tcp_shutdown after the test returned %d (%s)", rc, h_code_name(rc));
  }
  /* tcp_shutdown posts everything before it returns: poll without waiting. */
  for (size_t i = 0; i < g_nports; i++)
    if (!g_port_closed[i])
      while (pump(g_ports[i], 0)) {
      }
  fd_stats st;
  fake_dart_stats(&st);
  if (st.malformed != 0)
    FAILF("%llu malformed message(s); last: %s", (unsigned long long)st.malformed,
          fake_dart_last_malformed());
  for (size_t i = 0; i < g_nreqs; i++) {
    h_req *r = REQ(i);
    if (r->issued && !r->done && !port_closed(r->port))
      FAILF("%s request %lld (handle %lld) never completed, not even at engine shutdown",
            kind_name(r->kind), (long long)(ID_BASE + (int64_t)i), (long long)r->handle);
  }
  check_batches();
  for (size_t k = 0; k < g_nreqs; k++) {
    fake_dart_release(&(*REQ(k)).c);
    free((*REQ(k)).stream_bytes);
    (*REQ(k)).stream_bytes = NULL;
  }
  fake_dart_stats(&st);
  if (st.external_live != 0)
    FAILF("%llu read buffers still owned by the fake VM after the test",
          (unsigned long long)st.external_live);
}
