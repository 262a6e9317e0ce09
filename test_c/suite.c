/*
 * suite.c -- the backend-agnostic C test suite of zig_tcp.
 *
 *   tcp_suite                 run every test
 *   tcp_suite WORD...         run the tests whose name contains any WORD
 *   tcp_suite --list          list the tests
 *
 * Prints "backend: NAME" first, one line per test, and "N passed, N failed"
 * (", N skipped") last; exits 1 if any test failed.
 * ZIG_TCP_BACKEND picks the backend on Linux (io_uring | uv);
 * TCP_SUITE_TIMEOUT_MS bounds every wait for a completion (default 20000);
 * TCP_SUITE_NO_NETNS=1 makes the connect-timeout tests use a listener with a
 * full backlog instead of a network namespace that drops SYNs.
 *
 * The harness (runner + request tracker, see harness.h) comes first, then the
 * tests, then main.
 */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
typedef SOCKET raw_sock;
#define RAW_INVALID INVALID_SOCKET
#define raw_closesocket closesocket
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
typedef int raw_sock;
#define RAW_INVALID (-1)
#define raw_closesocket close
static int h_getpid(void) { return (int)getpid(); }
#endif

/* ======================================================================== */
/* runner                                                                    */
/* ======================================================================== */
enum { R_PASS, R_FAIL, R_SKIP };

static jmp_buf g_jmp;
static int g_outcome;
static char g_msg[1024];
static bool g_in_test;
int64_t h_timeout_ms = 20000;

void h_fail_at(const char *file, int line, const char *fmt, ...) {
  char buf[800];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (g_outcome != R_FAIL) { /* keep the first failure */
    snprintf(g_msg, sizeof g_msg, "%s (%s:%d)", buf, file, line);
    g_outcome = R_FAIL;
  }
  longjmp(g_jmp, 1);
}

void h_skip(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_msg, sizeof g_msg, fmt, ap);
  va_end(ap);
  g_outcome = R_SKIP;
  longjmp(g_jmp, 1);
}

const char *h_code_name(long long code) {
  switch (code) {
#define N(c) \
  case c: return #c;
    N(TCP_ERR_INVALID_ARGUMENT)
    N(TCP_ERR_BAD_HANDLE)
    N(TCP_ERR_CLOSED)
    N(TCP_ERR_NOT_INITIALIZED)
    N(TCP_ERR_SHUTDOWN)
    N(TCP_ERR_NO_MEMORY)
    N(TCP_ERR_UNSUPPORTED)
    N(TCP_ERR_DART_API)
    N(TCP_ERR_ADDRESS_IN_USE)
    N(TCP_ERR_ADDRESS_NOT_AVAILABLE)
    N(TCP_ERR_CONNECTION_REFUSED)
    N(TCP_ERR_CONNECTION_RESET)
    N(TCP_ERR_CONNECTION_ABORTED)
    N(TCP_ERR_TIMED_OUT)
    N(TCP_ERR_NETWORK_UNREACHABLE)
    N(TCP_ERR_HOST_UNREACHABLE)
    N(TCP_ERR_BROKEN_PIPE)
    N(TCP_ERR_ACCESS_DENIED)
    N(TCP_ERR_TOO_MANY_FILES)
    N(TCP_ERR_NOT_CONNECTED)
    N(TCP_ERR_ADDRESS_FAMILY)
    N(TCP_ERR_OS)
#undef N
    default: return code < 0 ? "?" : "";
  }
}

/* ======================================================================== */
/* tracker                                                                   */
/* ======================================================================== */
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

static void tracker_reset(void) {
  for (size_t b = 0; b < g_nblocks; b++) {
    for (size_t i = 0; i < REQ_BLOCK; i++) fake_dart_release(&g_blocks[b][i].c);
    free(g_blocks[b]);
  }
  free(g_blocks);
  free(g_fifo);
  g_blocks = NULL;
  g_fifo = NULL;
  g_nreqs = g_nblocks = g_nfifo = g_cap_fifo = g_fifo_head = 0;
  g_nports = 0;
}

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

#define REQ(i) (&g_blocks[(size_t)(i) / REQ_BLOCK][(size_t)(i) % REQ_BLOCK])

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
  }
  return "?";
}

/* Checks one arrived completion and files it. The payload is owned by the
 * tracker from here on (freed at the end of the test or by h_release). */
static void file_completion(fd_completion *c) {
  h_req *r = lookup(c->request_id);
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

  long long id = (long long)r->c.request_id, res = (long long)r->c.result;
  const char *kn = kind_name(r->kind);
  if (r->c.port != r->port)
    FAILF("%s request %lld completed on port %lld, expected port %lld", kn, id,
          (long long)r->c.port, (long long)r->port);
  /* payload shape (tcp.h COMPLETION MESSAGES) */
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

void h_engine_shutdown(void) {
  CHECK_EQ(tcp_shutdown(), TCP_OK);
  g_engine_up = false;
}

void h_engine_init(void) {
  CHECK_EQ(tcp_init(fake_dart_api_data()), TCP_OK);
  g_engine_up = true;
}

/* After the test body: shut the engine down, take every completion left and
 * check that every tracked request completed exactly once. */
static void finish_test(void) {
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
  /* every message a non-empty batch; counts agree with what was filed */
  for (size_t i = 0; i < g_nports; i++) {
    fd_port_stats ps;
    if (g_port_closed[i] || !fake_dart_port_stats(g_ports[i], &ps)) continue;
    uint64_t filed = 0;
    for (size_t k = 0; k < g_nreqs; k++)
      if ((*REQ(k)).done && (*REQ(k)).c.port == g_ports[i]) filed++;
    if (ps.triples != filed)
      FAILF("port %lld: %llu completions posted, %llu filed", (long long)g_ports[i],
            (unsigned long long)ps.triples, (unsigned long long)filed);
    if (ps.messages > ps.triples)
      FAILF("port %lld: more messages (%llu) than completions (%llu)", (long long)g_ports[i],
            (unsigned long long)ps.messages, (unsigned long long)ps.triples);
  }
  /* triples of one message are consecutive in arrival order */
  for (size_t k = 0; k < g_nreqs; k++) {
    h_req *r = &(*REQ(k));
    if (!r->done) continue;
    if (r->c.triples_in_message == 0 || r->c.index_in_message >= r->c.triples_in_message)
      FAILF("completion %lld: bad batch position %u/%u", (long long)r->c.request_id,
            r->c.index_in_message, r->c.triples_in_message);
  }
  for (size_t k = 0; k < g_nreqs; k++) fake_dart_release(&(*REQ(k)).c);
  fake_dart_stats(&st);
  if (st.external_live != 0)
    FAILF("%llu read buffers still owned by the fake VM after the test",
          (unsigned long long)st.external_live);
}

/* ======================================================================== */
/* engine call wrappers                                                      */
/* ======================================================================== */
const uint8_t H_LOOPBACK4[4] = {127, 0, 0, 1};
const uint8_t H_LOOPBACK6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static void remember_port(int64_t handle, int64_t port);
static int64_t port_of(int64_t handle);

int64_t h_listen(int64_t port, const uint8_t *addr, int32_t addr_len, int32_t backlog) {
  int64_t l = tcp_listen(port, addr, addr_len, 0, backlog, 1, 0);
  if (l <= 0) FAILF("tcp_listen returned %lld (%s), os error %d", (long long)l, h_code_name(l),
                    (int)tcp_last_os_error());
  remember_port(l, port);
  return l;
}

int64_t h_connect(int64_t port, const uint8_t *addr, int32_t addr_len, int32_t tcp_port,
                  int64_t timeout_ms, int64_t *handle) {
  int64_t id = h_new_id();
  int64_t h = tcp_connect(port, id, addr, addr_len, tcp_port, NULL, 0, 0, timeout_ms);
  if (h <= 0) FAILF("tcp_connect returned %lld (%s)", (long long)h, h_code_name(h));
  h_issue(id, port, K_CONNECT, h, 0);
  remember_port(h, port);
  if (handle) *handle = h;
  return id;
}

/* Every socket's port, to register requests on the right one. */
typedef struct sock_port {
  int64_t handle, port;
} sock_port;
static sock_port g_sock_ports[4096];
static size_t g_nsock_ports;

static void remember_port(int64_t handle, int64_t port) {
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

static int64_t port_of(int64_t handle) {
  for (size_t i = g_nsock_ports; i-- > 0;)
    if (g_sock_ports[i].handle == handle) return g_sock_ports[i].port;
  FAILF("test bug: no port known for handle %lld", (long long)handle);
}

int64_t h_accept(int64_t listener) {
  int64_t id = h_new_id();
  CHECK_EQ(tcp_accept(listener, id), TCP_OK);
  h_issue(id, port_of(listener), K_ACCEPT, listener, 0);
  return id;
}

/* Awaits an accept and records the new connection's port. */
int64_t h_accepted(int64_t accept_id) {
  h_req *r = h_await(accept_id);
  if (r->c.result <= 0)
    FAILF("accept %lld failed: %lld (%s)", (long long)accept_id, (long long)r->c.result,
          h_code_name(r->c.result));
  remember_port(r->c.result, r->port);
  return r->c.result;
}

int64_t h_read(int64_t conn, int64_t max) {
  int64_t id = h_new_id();
  CHECK_EQ(tcp_read(conn, id, max), TCP_OK);
  h_issue(id, port_of(conn), K_READ, conn, 0);
  return id;
}

int64_t h_write(int64_t conn, const void *bytes, int64_t len) {
  int64_t id = h_new_id();
  CHECK_EQ(tcp_write(conn, id, (const uint8_t *)bytes, len), TCP_OK);
  h_issue(id, port_of(conn), K_WRITE, conn, 0);
  h_get(id)->len = len;
  return id;
}

int64_t h_shutw(int64_t conn) {
  int64_t id = h_new_id();
  CHECK_EQ(tcp_shutdown_write(conn, id), TCP_OK);
  h_issue(id, port_of(conn), K_SHUTW, conn, 0);
  return id;
}

int64_t h_close(int64_t handle) {
  int64_t id = h_new_id();
  int64_t port = port_of(handle);
  CHECK_EQ(tcp_close(handle, id), TCP_OK);
  h_issue(id, port, K_CLOSE, handle, 0);
  return id;
}

int64_t h_result(int64_t id) { return h_await(id)->c.result; }

int64_t h_pair(int64_t listen_port, int64_t client_port, const uint8_t *addr, int32_t addr_len,
               int64_t *client, int64_t *server) {
  int64_t l = h_listen(listen_port, addr, addr_len, 0);
  int32_t p = tcp_local_port(l);
  if (p <= 0) FAILF("tcp_local_port(listener) = %d (%s)", (int)p, h_code_name(p));
  int64_t a = h_accept(l);
  int64_t c = h_connect(client_port, addr, addr_len, p, 0, client);
  CHECK_EQ(h_result(c), 0);
  *server = h_accepted(a);
  return l;
}

void h_read_exact(int64_t conn, uint8_t *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    int64_t id = h_read(conn, (int64_t)(n - got));
    h_req *r = h_await(id);
    if (r->c.result <= 0)
      FAILF("read after %zu of %zu bytes returned %lld (%s)", got, n, (long long)r->c.result,
            h_code_name(r->c.result));
    if ((size_t)r->c.result > n - got)
      FAILF("read of at most %zu bytes returned %lld", n - got, (long long)r->c.result);
    memcpy(buf + got, r->c.data, (size_t)r->c.result);
    got += (size_t)r->c.result;
    h_release(r);
  }
}

void h_write_all(int64_t conn, const void *bytes, size_t n) {
  int64_t id = h_write(conn, bytes, (int64_t)n);
  CHECK_EQ(h_result(id), (int64_t)n);
}

void h_close_wait(int64_t handle) { CHECK_EQ(h_result(h_close(handle)), 0); }

static void expect_eof(int64_t conn) { CHECK_EQ(h_result(h_read(conn, 4096)), 0); }

uint64_t h_fnv1a(uint64_t h, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void h_fill(uint8_t *buf, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (uint8_t)(x >> 24);
  }
}

/* ---- raw OS sockets (peers the engine does not own) ------------------------ */
static raw_sock raw_connect4(int32_t port) {
  raw_sock s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (s == RAW_INVALID) FAILF("socket() failed");
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  memcpy(&sa.sin_addr, H_LOOPBACK4, 4);
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
    raw_closesocket(s);
    FAILF("raw connect to 127.0.0.1:%d failed", (int)port);
  }
  return s;
}

/* ---- helpers for the environment ------------------------------------------ */
static bool have_ipv6(void) {
  int64_t p = fake_dart_open_port();
  int64_t l = tcp_listen(p, H_LOOPBACK6, 16, 0, 0, 1, 0);
  if (l > 0) {
    /* close without a tracked request: wait for its completion directly */
    int64_t id = -77;
    if (tcp_close(l, id) == TCP_OK) {
      fd_completion c;
      if (fake_dart_next(p, h_timeout_ms, &c)) fake_dart_release(&c);
    }
  }
  fake_dart_close_port(p);
  return l > 0;
}

#if !defined(_WIN32)
static int run_cmd(const char *fmt, ...) {
  char cmd[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char full[600];
  snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
  return system(full);
}
#endif

/* A destination whose SYNs vanish: a veth peer inside a network namespace
 * this test creates, with an nftables rule dropping all its input. */
#if !defined(_WIN32)
static bool g_netns_up;
static char g_netns[32], g_veth[16], g_veth_peer[16];
#endif

static void netns_down(void) {
#if !defined(_WIN32)
  if (!g_netns_up) return;
  run_cmd("ip netns del %s", g_netns);
  run_cmd("ip link del %s", g_veth);
  g_netns_up = false;
#endif
}

/* Sets up the black hole; returns NULL, or why it cannot be had here. */
static const char *netns_blackhole(uint8_t addr[4]) {
  if (getenv("TCP_SUITE_NO_NETNS") != NULL) return "TCP_SUITE_NO_NETNS is set";
#if defined(_WIN32)
  (void)addr;
  return "network namespaces are Linux-only";
#else
  if (geteuid() != 0) return "network namespaces need root";
  if (run_cmd("ip -V") != 0) return "no 'ip' command (iproute2)";
  if (run_cmd("nft --version") != 0) return "no 'nft' command (nftables)";
  int pid = h_getpid();
  snprintf(g_netns, sizeof g_netns, "zigtcp_%d", pid);
  snprintf(g_veth, sizeof g_veth, "zt%d", pid % 1000000);
  snprintf(g_veth_peer, sizeof g_veth_peer, "ztp%d", pid % 1000000);
  /* a /30 of 10.213.0.0/16 chosen from the pid, only ever routed to our veth */
  int b3 = (pid / 64) % 250, b4 = (pid % 64) * 4;
  addr[0] = 10;
  addr[1] = 213;
  addr[2] = (uint8_t)b3;
  addr[3] = (uint8_t)(b4 + 2);
  g_netns_up = true;
  if (run_cmd("ip netns add %s", g_netns) != 0 ||
      run_cmd("ip link add %s type veth peer name %s", g_veth, g_veth_peer) != 0 ||
      run_cmd("ip link set %s netns %s", g_veth_peer, g_netns) != 0 ||
      run_cmd("ip addr add 10.213.%d.%d/30 dev %s", b3, b4 + 1, g_veth) != 0 ||
      run_cmd("ip link set %s up", g_veth) != 0 ||
      run_cmd("ip -n %s addr add 10.213.%d.%d/30 dev %s", g_netns, b3, b4 + 2, g_veth_peer) != 0 ||
      run_cmd("ip -n %s link set %s up", g_netns, g_veth_peer) != 0 ||
      run_cmd("ip netns exec %s nft add table inet zt", g_netns) != 0 ||
      run_cmd("ip netns exec %s nft 'add chain inet zt in { type filter hook input priority 0; "
              "policy drop; }'",
              g_netns) != 0) {
    netns_down();
    return "could not set up a network namespace with a drop rule";
  }
  return NULL;
#endif
}

/* Fallback: a loopback listener whose accept queue is full, so the kernel
 * drops further SYNs (Linux does; Windows answers with a reset instead, and
 * then the test is skipped). Fills the queue by connecting until a connect
 * times out -- a loopback connect to a listener with room never takes 2 s. */
static void full_backlog(int64_t port, uint8_t addr[4], int32_t *tcp_port, const char *why_not_netns) {
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 1);
  int32_t p = tcp_local_port(l);
  for (int i = 0; i < 64; i++) {
    int64_t h;
    int64_t r = h_result(h_connect(port, H_LOOPBACK4, 4, p, 2000, &h));
    if (r == 0) continue; /* queued; stays open until the engine shuts down */
    h_close_wait(h);
    if (r == TCP_ERR_TIMED_OUT) {
      memcpy(addr, H_LOOPBACK4, 4);
      *tcp_port = p;
      return;
    }
    SKIP("%s; and a listener with a full backlog answers a connect with %s", why_not_netns,
         h_code_name(r));
  }
  SKIP("%s; and a listener's backlog did not fill up", why_not_netns);
}

/* A destination whose SYNs are never answered: the network-namespace black
 * hole where it can be had, else a listener with a full backlog. */
static void hanging_destination(int64_t port, uint8_t addr[4], int32_t *tcp_port) {
  const char *why = netns_blackhole(addr);
  if (why == NULL) {
    *tcp_port = 9;
    return;
  }
  full_backlog(port, addr, tcp_port, why);
}

/* ======================================================================== */
/* tests                                                                     */
/* ======================================================================== */
/* ---- engine lifetime and the DL API table --------------------------------- */
static void test_lifecycle(void) {
  const char *name = tcp_backend_name();
  CHECK(name != NULL);
  CHECK(strcmp(name, "io_uring") == 0 || strcmp(name, "uv") == 0 || strcmp(name, "iocp") == 0);
  CHECK_EQ(tcp_init(fake_dart_api_data()), TCP_OK); /* idempotent while running */
  h_engine_shutdown();
  CHECK(tcp_backend_name() == NULL);
  CHECK_EQ(tcp_shutdown(), TCP_ERR_NOT_INITIALIZED);
  int64_t port = h_port();
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, 0, 0, 1, 0), TCP_ERR_NOT_INITIALIZED);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, 9, NULL, 0, 0, 0), TCP_ERR_NOT_INITIALIZED);
  CHECK_EQ(tcp_read(1, h_new_id(), 10), TCP_ERR_NOT_INITIALIZED);

  /* DL API data the engine must refuse */
  CHECK_EQ(tcp_init(NULL), TCP_ERR_DART_API);
  static const dart_api_dl_entry only_other[] = {{"Dart_PostInteger", NULL}, {NULL, NULL}};
  static const dart_api_dl_entry good[] = {
      {"Dart_PostInteger", NULL},
      {DART_POST_COBJECT_NAME, (void (*)(void))fake_dart_post_cobject},
      {NULL, NULL}};
  dart_api_dl_data wrong_major = {DART_DL_MAJOR_VERSION + 1, 0, good};
  CHECK_EQ(tcp_init(&wrong_major), TCP_ERR_DART_API);
  dart_api_dl_data missing = {DART_DL_MAJOR_VERSION, 3, only_other};
  CHECK_EQ(tcp_init(&missing), TCP_ERR_DART_API);
  dart_api_dl_data no_table = {DART_DL_MAJOR_VERSION, 0, NULL};
  CHECK_EQ(tcp_init(&no_table), TCP_ERR_DART_API);
  CHECK(tcp_backend_name() == NULL);

  /* a table with other entries first and a newer minor version is fine */
  dart_api_dl_data newer = {DART_DL_MAJOR_VERSION, 7, good};
  CHECK_EQ(tcp_init(&newer), TCP_OK);
  g_engine_up = true;
  CHECK(tcp_backend_name() != NULL);
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  h_write_all(c, "ping", 4);
  uint8_t buf[4];
  h_read_exact(s, buf, 4);
  CHECK(memcmp(buf, "ping", 4) == 0);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

static void test_strerror(void) {
  static const int64_t codes[] = {
      TCP_OK, TCP_ERR_INVALID_ARGUMENT, TCP_ERR_BAD_HANDLE, TCP_ERR_CLOSED, TCP_ERR_NOT_INITIALIZED,
      TCP_ERR_SHUTDOWN, TCP_ERR_NO_MEMORY, TCP_ERR_UNSUPPORTED, TCP_ERR_DART_API,
      TCP_ERR_ADDRESS_IN_USE, TCP_ERR_ADDRESS_NOT_AVAILABLE, TCP_ERR_CONNECTION_REFUSED,
      TCP_ERR_CONNECTION_RESET, TCP_ERR_CONNECTION_ABORTED, TCP_ERR_TIMED_OUT,
      TCP_ERR_NETWORK_UNREACHABLE, TCP_ERR_HOST_UNREACHABLE, TCP_ERR_BROKEN_PIPE,
      TCP_ERR_ACCESS_DENIED, TCP_ERR_TOO_MANY_FILES, TCP_ERR_NOT_CONNECTED, TCP_ERR_ADDRESS_FAMILY,
      TCP_ERR_OS};
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    const char *s = tcp_strerror(codes[i]);
    if (s == NULL || s[0] == '\0') FAILF("tcp_strerror(%lld) is empty", (long long)codes[i]);
    for (size_t k = 0; k < i; k++)
      if (strcmp(s, tcp_strerror(codes[k])) == 0)
        FAILF("tcp_strerror(%lld) == tcp_strerror(%lld) == \"%s\"", (long long)codes[i],
              (long long)codes[k], s);
  }
  CHECK(tcp_strerror(-12345) != NULL);
  CHECK(tcp_strerror(INT64_MIN) != NULL);
  CHECK(tcp_strerror(77) != NULL);
}

/* ---- connect / accept / echo ---------------------------------------------------- */
static void echo_test(const uint8_t *addr, int32_t addr_len) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, addr, addr_len, &c, &s);
  int32_t lport = tcp_local_port(l);
  uint8_t a[16];
  CHECK_EQ(tcp_local_address(l, a), addr_len);
  CHECK(memcmp(a, addr, (size_t)addr_len) == 0);
  CHECK_EQ(tcp_local_address(c, a), addr_len);
  CHECK(memcmp(a, addr, (size_t)addr_len) == 0);
  CHECK_EQ(tcp_remote_address(c, a), addr_len);
  CHECK(memcmp(a, addr, (size_t)addr_len) == 0);
  CHECK_EQ(tcp_remote_address(s, a), addr_len);
  CHECK(memcmp(a, addr, (size_t)addr_len) == 0);
  CHECK_EQ(tcp_remote_port(c), lport);
  CHECK_EQ(tcp_local_port(s), lport);
  int32_t cport = tcp_local_port(c);
  CHECK(cport > 0 && cport != lport);
  CHECK_EQ(tcp_remote_port(s), cport);

  static const char hello[] = "hello from the client";
  static const char world[] = "and hello from the server, a bit longer";
  uint8_t buf[64];
  h_write_all(c, hello, sizeof hello);
  h_read_exact(s, buf, sizeof hello);
  CHECK(memcmp(buf, hello, sizeof hello) == 0);
  h_write_all(s, world, sizeof world);
  h_read_exact(c, buf, sizeof world);
  CHECK(memcmp(buf, world, sizeof world) == 0);
  /* and once more each way: the sockets stay usable */
  h_write_all(s, "x", 1);
  h_read_exact(c, buf, 1);
  CHECK_EQ(buf[0], 'x');
  h_write_all(c, "y", 1);
  h_read_exact(s, buf, 1);
  CHECK_EQ(buf[0], 'y');
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

static void test_echo_ipv4(void) { echo_test(H_LOOPBACK4, 4); }

static void test_echo_ipv6(void) {
  if (!have_ipv6()) SKIP("::1 is not available");
  echo_test(H_LOOPBACK6, 16);
}

static void test_accept_several_pending(void) {
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int32_t p = tcp_local_port(l);
  int64_t acc[3], con[3], ch[3], sh[3];
  for (int i = 0; i < 3; i++) acc[i] = h_accept(l);
  for (int i = 0; i < 3; i++) con[i] = h_connect(port, H_LOOPBACK4, 4, p, 0, &ch[i]);
  for (int i = 0; i < 3; i++) CHECK_EQ(h_result(con[i]), 0);
  for (int i = 0; i < 3; i++) sh[i] = h_accepted(acc[i]);
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < i; k++) {
      CHECK(sh[i] != sh[k]);
      CHECK(ch[i] != ch[k]);
    }
  /* pair them up by port numbers and talk over each */
  for (int i = 0; i < 3; i++) {
    int found = -1;
    for (int k = 0; k < 3; k++)
      if (tcp_remote_port(sh[k]) == tcp_local_port(ch[i])) found = k;
    CHECK(found >= 0);
    uint8_t b = (uint8_t)('a' + i), got = 0;
    h_write_all(ch[i], &b, 1);
    h_read_exact(sh[found], &got, 1);
    CHECK_EQ(got, b);
  }
  for (int i = 0; i < 3; i++) {
    h_close_wait(ch[i]);
    h_close_wait(sh[i]);
  }
  h_close_wait(l);
}

/* ---- bulk transfer ------------------------------------------------------------- */
static void test_transfer_16mib_both_ways(void) {
  const size_t n = (size_t)16 << 20, chunk = 64 * 1024, rmax = 256 * 1024;
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  uint8_t *up = (uint8_t *)malloc(n), *down = (uint8_t *)malloc(n);
  CHECK(up != NULL && down != NULL);
  h_fill(up, n, 11);
  h_fill(down, n, 22);
  uint64_t up_sum = h_fnv1a(H_FNV_INIT, up, n), down_sum = h_fnv1a(H_FNV_INIT, down, n);
  /* client -> server: one 16 MiB write; server -> client: 256 writes of 64 KiB */
  int64_t big = h_write(c, up, (int64_t)n);
  size_t nchunks = n / chunk;
  int64_t first_chunk = 0;
  for (size_t i = 0; i < nchunks; i++) {
    int64_t id = h_write(s, down + i * chunk, (int64_t)chunk);
    if (i == 0) first_chunk = id;
  }
  /* the engine copied the bytes: the buffers may go at once */
  memset(up, 0xA5, n);
  memset(down, 0x5A, n);
  free(up);
  free(down);

  h_read(c, (int64_t)rmax);
  h_read(s, (int64_t)rmax);
  size_t got_c = 0, got_s = 0, writes = 0;
  uint64_t sum_c = H_FNV_INIT, sum_s = H_FNV_INIT;
  int64_t next_chunk = first_chunk;
  while (got_c < n || got_s < n || writes < nchunks + 1) {
    h_req *r = h_next(port);
    if (r->kind == K_READ) {
      if (r->c.result <= 0)
        FAILF("read on %s after %zu bytes returned %lld (%s)", r->handle == c ? "client" : "server",
              r->handle == c ? got_c : got_s, (long long)r->c.result, h_code_name(r->c.result));
      CHECK(r->c.result <= (int64_t)rmax);
      if (r->handle == c) {
        sum_c = h_fnv1a(sum_c, r->c.data, r->c.len);
        got_c += r->c.len;
        CHECK(got_c <= n);
        if (got_c < n) h_read(c, (int64_t)rmax);
      } else {
        sum_s = h_fnv1a(sum_s, r->c.data, r->c.len);
        got_s += r->c.len;
        CHECK(got_s <= n);
        if (got_s < n) h_read(s, (int64_t)rmax);
      }
      h_release(r);
    } else if (r->kind == K_WRITE) {
      CHECK_EQ(r->c.result, r->len);
      if (r->handle == s) { /* writes on one socket complete in call order */
        CHECK_EQ(r->c.request_id, next_chunk);
        next_chunk++;
      } else {
        CHECK_EQ(r->c.request_id, big);
      }
      writes++;
    } else {
      FAILF("unexpected %d completion", (int)r->kind);
    }
  }
  CHECK_EQ(got_s, n);
  CHECK_EQ(got_c, n);
  if (sum_s != up_sum) FAILF("client->server checksum %016llx, sent %016llx",
                             (unsigned long long)sum_s, (unsigned long long)up_sum);
  if (sum_c != down_sum) FAILF("server->client checksum %016llx, sent %016llx",
                               (unsigned long long)sum_c, (unsigned long long)down_sum);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* ---- many connections ---------------------------------------------------------- */
#define NCONN 500
#define MSG_LEN 40

static void test_many_connections(void) {
#if !defined(_WIN32)
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  rlim_t need = 2 * NCONN + 256;
  if (rl.rlim_cur < need) {
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
      SKIP("RLIMIT_NOFILE hard limit %llu < %llu", (unsigned long long)rl.rlim_max,
           (unsigned long long)need);
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) SKIP("cannot raise RLIMIT_NOFILE to %llu",
                                                  (unsigned long long)need);
  }
#endif
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 1024);
  int32_t p = tcp_local_port(l);
  static int64_t ch[NCONN];
  static uint8_t want[NCONN][MSG_LEN], got[NCONN][MSG_LEN];
  static size_t have[NCONN];
  memset(have, 0, sizeof have);
  for (int i = 0; i < NCONN; i++) h_get(h_accept(l))->user = -1;
  for (int i = 0; i < NCONN; i++) {
    snprintf((char *)want[i], MSG_LEN, "connection %d of %d says hello", i, NCONN);
    h_get(h_connect(port, H_LOOPBACK4, 4, p, 0, &ch[i]))->user = i + 1;
  }
  int clients_closed = 0, servers_closed = 0, verified = 0, accepted = 0;
  while (clients_closed < NCONN || servers_closed < NCONN) {
    h_req *r = h_next(port);
    int64_t u = r->user;
    switch (r->kind) {
      case K_CONNECT:
        if (r->c.result != 0)
          FAILF("connect %lld failed: %lld (%s)", (long long)u - 1, (long long)r->c.result,
                h_code_name(r->c.result));
        h_write(ch[u - 1], want[u - 1], MSG_LEN);
        h_get(h_read(ch[u - 1], MSG_LEN))->user = u;
        break;
      case K_ACCEPT: {
        if (r->c.result <= 0) FAILF("accept failed: %lld (%s)", (long long)r->c.result,
                                    h_code_name(r->c.result));
        accepted++;
        remember_port(r->c.result, port);
        h_get(h_read(r->c.result, 4096))->user = -1;
        break;
      }
      case K_READ:
        if (u > 0) { /* client: collect the echo */
          int i = (int)u - 1;
          if (r->c.result <= 0) FAILF("client %d read returned %lld (%s)", i,
                                      (long long)r->c.result, h_code_name(r->c.result));
          CHECK(have[i] + r->c.len <= MSG_LEN);
          memcpy(got[i] + have[i], r->c.data, r->c.len);
          have[i] += r->c.len;
          h_release(r);
          if (have[i] < MSG_LEN) {
            h_get(h_read(ch[i], (int64_t)(MSG_LEN - have[i])))->user = u;
          } else {
            if (memcmp(got[i], want[i], MSG_LEN) != 0) FAILF("client %d got a wrong echo", i);
            verified++;
            h_get(h_close(ch[i]))->user = u;
          }
        } else { /* server: echo until EOF, then close */
          if (r->c.result < 0) FAILF("server read returned %lld (%s)", (long long)r->c.result,
                                     h_code_name(r->c.result));
          if (r->c.result == 0) {
            h_get(h_close(r->handle))->user = -1;
          } else {
            h_get(h_write(r->handle, r->c.data, (int64_t)r->c.len))->user = -1;
            h_release(r);
            h_get(h_read(r->handle, 4096))->user = -1;
          }
        }
        break;
      case K_WRITE:
        CHECK_EQ(r->c.result, r->len);
        break;
      case K_CLOSE:
        CHECK_EQ(r->c.result, 0);
        if (u > 0) clients_closed++; else servers_closed++;
        break;
      default: FAILF("unexpected completion kind %d", (int)r->kind);
    }
  }
  CHECK_EQ(verified, NCONN);
  CHECK_EQ(accepted, NCONN);
  h_close_wait(l);
}
/* ---- end of stream, half close --------------------------------------------------- */
static void test_eof_after_peer_close(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  h_write_all(c, "bye", 3);
  h_close_wait(c);
  uint8_t buf[3];
  h_read_exact(s, buf, 3);
  CHECK(memcmp(buf, "bye", 3) == 0);
  expect_eof(s);
  h_close_wait(s);
  h_close_wait(l);
}

static void test_read_after_eof(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  CHECK_EQ(h_result(h_shutw(c)), 0);
  expect_eof(s);
  expect_eof(s);
  /* two reads queued after EOF: both 0, in call order */
  int64_t r1 = h_read(s, 10), r2 = h_read(s, 10);
  h_req *a = h_await(r1), *b = h_await(r2);
  CHECK_EQ(a->c.result, 0);
  CHECK_EQ(b->c.result, 0);
  CHECK(a->c.seq < b->c.seq);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

static void test_shutdown_write_half_close(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  int64_t w = h_write(c, "abc", 3);
  int64_t sw = h_shutw(c);
  h_req *wr = h_await(w), *swr = h_await(sw);
  CHECK_EQ(wr->c.result, 3);
  CHECK_EQ(swr->c.result, 0);
  CHECK(wr->c.seq < swr->c.seq); /* shutdown_write waits for earlier writes */
  uint8_t buf[3];
  h_read_exact(s, buf, 3);
  CHECK(memcmp(buf, "abc", 3) == 0);
  expect_eof(s);
  /* the other direction still works */
  h_write_all(s, "xyz", 3);
  h_read_exact(c, buf, 3);
  CHECK(memcmp(buf, "xyz", 3) == 0);
  /* writing on the shut side fails with BROKEN_PIPE, now or in the completion */
  int64_t id = h_new_id();
  int32_t rc = tcp_write(c, id, (const uint8_t *)"q", 1);
  if (rc == TCP_OK) {
    h_issue(id, port, K_WRITE, c, 0);
    CHECK_EQ(h_result(id), TCP_ERR_BROKEN_PIPE);
  } else {
    CHECK_EQ(rc, TCP_ERR_BROKEN_PIPE);
  }
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* ---- connect / listen errors ------------------------------------------------------ */
static void test_connection_refused(void) {
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int32_t p = tcp_local_port(l);
  h_close_wait(l); /* the port is free again and nobody listens */
  int64_t h;
  int64_t id = h_connect(port, H_LOOPBACK4, 4, p, 0, &h);
  h_req *r = h_await(id);
  CHECK_EQ(r->c.result, TCP_ERR_CONNECTION_REFUSED);
  CHECK(r->c.payload_int != 0); /* the OS code */
  /* a failed connection still has to be closed; I/O on it fails */
  int64_t rid = h_new_id();
  int32_t rc = tcp_read(h, rid, 10);
  if (rc == TCP_OK) {
    h_issue(rid, port, K_READ, h, 0);
    CHECK(h_result(rid) < 0);
  } else {
    CHECK(rc < 0);
  }
  h_close_wait(h);
}

static void test_address_in_use(void) {
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int32_t p = tcp_local_port(l);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, p, 0, 1, 0), TCP_ERR_ADDRESS_IN_USE);
  CHECK(tcp_last_os_error() != 0);
  /* asking for sharing does not steal a port held without it (a backend
   * without shared listeners refuses the request altogether) */
  int64_t rc = tcp_listen(port, H_LOOPBACK4, 4, p, 0, 1, 1);
  if (rc != TCP_ERR_UNSUPPORTED) CHECK_EQ(rc, TCP_ERR_ADDRESS_IN_USE);
  h_close_wait(l);
}

static void test_listen_shared(void) {
  int64_t port = h_port();
  int64_t l1 = tcp_listen(port, H_LOOPBACK4, 4, 0, 0, 1, 1);
  if (l1 == TCP_ERR_UNSUPPORTED) SKIP("the %s backend has no shared listeners", tcp_backend_name());
  if (l1 <= 0) FAILF("shared listener: %lld (%s)", (long long)l1, h_code_name(l1));
  int32_t p = tcp_local_port(l1);
  CHECK(p > 0);
  int64_t l2 = tcp_listen(port, H_LOOPBACK4, 4, p, 0, 1, 1);
  if (l2 <= 0) FAILF("second shared listener on port %d: %lld (%s)", (int)p, (long long)l2,
                     h_code_name(l2));
  CHECK_EQ(tcp_local_port(l2), p);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, p, 0, 1, 0), TCP_ERR_ADDRESS_IN_USE);
  /* track them for closing */
  int64_t c1 = h_new_id(), c2 = h_new_id();
  CHECK_EQ(tcp_close(l1, c1), TCP_OK);
  h_issue(c1, port, K_CLOSE, l1, 0);
  CHECK_EQ(tcp_close(l2, c2), TCP_OK);
  h_issue(c2, port, K_CLOSE, l2, 0);
  CHECK_EQ(h_result(c1), 0);
  CHECK_EQ(h_result(c2), 0);
}

static void test_connect_timeout(void) {
  int64_t port = h_port();
  uint8_t bh[4];
  int32_t bp;
  hanging_destination(port, bh, &bp);
  /* a connect that succeeds at once must not time out later: its timer is
   * still armed when the black-hole connect below times out */
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int64_t a = h_accept(l);
  int64_t ok_h;
  int64_t ok = h_connect(port, H_LOOPBACK4, 4, tcp_local_port(l), 250, &ok_h);
  CHECK_EQ(h_result(ok), 0);
  int64_t s = h_accepted(a);

  int64_t h;
  int64_t id = h_connect(port, bh, 4, bp, 300, &h);
  CHECK_EQ(h_result(id), TCP_ERR_TIMED_OUT);
  h_close_wait(h);
  /* the early connection is still fine */
  uint8_t b = 0;
  h_write_all(ok_h, "k", 1);
  h_read_exact(s, &b, 1);
  CHECK_EQ(b, 'k');
  h_close_wait(ok_h);
  h_close_wait(s);
  h_close_wait(l);
}

/* ---- close with operations pending --------------------------------------------- */
/* Two reads pending on c, then close c: both complete with TCP_ERR_CLOSED in
 * call order, then the close with 0, and the peer s sees end of stream. */
static void close_with_two_reads_pending(int64_t c, int64_t s, int64_t l) {
  int64_t r1 = h_read(c, 100), r2 = h_read(c, 100);
  int64_t cl = h_close(c);
  h_req *a = h_await(r1), *b = h_await(r2), *z = h_await(cl);
  CHECK_EQ(a->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(b->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(z->c.result, 0);
  CHECK(a->c.seq < z->c.seq && b->c.seq < z->c.seq);
  CHECK(a->c.seq < b->c.seq); /* call order, also when cancelled */
  /* the OS socket is really closed: the peer sees end of stream */
  expect_eof(s);
  h_close_wait(s);
  h_close_wait(l);
}

static void test_close_while_read_pending(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  close_with_two_reads_pending(c, s, l);
}

/* A read that follows one which emptied the socket (request/response traffic)
 * may be held back by the backend before it reaches the OS (io_uring submits
 * it one pass later). Closing then must still complete it, and the read queued
 * behind it, exactly once, in call order, before the close. */
static void test_close_while_next_read_pending(void) {
  for (int round = 0; round < 10; round++) {
    int64_t port = h_port();
    int64_t c, s;
    int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
    h_write_all(s, "ping", 4);
    h_req *first = h_await(h_read(c, 100));
    CHECK_EQ(first->c.result, 4); /* fewer than asked: the socket is now empty */
    close_with_two_reads_pending(c, s, l);
  }
}

static void test_close_while_accept_pending(void) {
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int32_t p = tcp_local_port(l);
  int64_t a1 = h_accept(l), a2 = h_accept(l);
  int64_t cl = h_close(l);
  h_req *x = h_await(a1), *y = h_await(a2), *z = h_await(cl);
  CHECK_EQ(x->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(y->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(z->c.result, 0);
  CHECK(x->c.seq < z->c.seq && y->c.seq < z->c.seq);
  /* nobody listens on the port any more */
  int64_t h;
  CHECK_EQ(h_result(h_connect(port, H_LOOPBACK4, 4, p, 0, &h)), TCP_ERR_CONNECTION_REFUSED);
  h_close_wait(h);
}

static void test_close_while_connect_pending(void) {
  int64_t port = h_port();
  uint8_t bh[4];
  int32_t bp;
  hanging_destination(port, bh, &bp);
  int64_t h;
  int64_t id = h_connect(port, bh, 4, bp, 0, &h);
  int64_t cl = h_close(h);
  h_req *x = h_await(id), *z = h_await(cl);
  CHECK_EQ(x->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(z->c.result, 0);
  CHECK(x->c.seq < z->c.seq);
}

static void test_close_while_write_pending(void) {
  /* 64 MiB is more than loopback socket buffers hold while the peer does not read */
  const size_t n = (size_t)64 << 20;
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  uint8_t *big = (uint8_t *)calloc(1, n);
  CHECK(big != NULL);
  int64_t w1 = h_write(c, big, (int64_t)n);
  free(big);
  int64_t w2 = h_write(c, "x", 1);
  int64_t sw = h_shutw(c);
  int64_t cl = h_close(c);
  h_req *a = h_await(w1), *b = h_await(w2), *d = h_await(sw), *z = h_await(cl);
  CHECK_EQ(a->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(b->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(d->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(z->c.result, 0);
  CHECK(a->c.seq < z->c.seq && b->c.seq < z->c.seq && d->c.seq < z->c.seq);
  /* Writes complete in call order also when a close cancels them (tcp.h ORDERING):
   * the queued ones after the one in flight. */
  CHECK(a->c.seq < b->c.seq && b->c.seq < d->c.seq);
  h_close_wait(s);
  h_close_wait(l);
}

/* ---- handles ---------------------------------------------------------------------- */
static void test_stale_and_bad_handles(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  uint8_t a[16];
  /* wrong kind */
  CHECK_EQ(tcp_read(l, h_new_id(), 10), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_write(l, h_new_id(), (const uint8_t *)"x", 1), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_shutdown_write(l, h_new_id()), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_accept(s, h_new_id()), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_remote_port(l), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_remote_address(l, a), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_get_no_delay(l), TCP_ERR_BAD_HANDLE);
  /* made up */
  const int64_t made_up[] = {0, -1, INT64_MIN, ((int64_t)0x1234 << 32) | 0x00fffff0, INT64_MAX};
  for (size_t i = 0; i < sizeof made_up / sizeof made_up[0]; i++) {
    int64_t h = made_up[i];
    CHECK_EQ(tcp_read(h, h_new_id(), 10), TCP_ERR_BAD_HANDLE);
    CHECK_EQ(tcp_close(h, h_new_id()), TCP_ERR_BAD_HANDLE);
    CHECK_EQ(tcp_accept(h, h_new_id()), TCP_ERR_BAD_HANDLE);
    CHECK_EQ(tcp_local_port(h), TCP_ERR_BAD_HANDLE);
    CHECK_EQ(tcp_set_no_delay(h, 1), TCP_ERR_BAD_HANDLE);
    tcp_close_finalizer((void *)(intptr_t)h); /* must do nothing */
  }
  /* closed */
  h_close_wait(c);
  CHECK_EQ(tcp_read(c, h_new_id(), 10), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_write(c, h_new_id(), (const uint8_t *)"x", 1), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_shutdown_write(c, h_new_id()), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_close(c, h_new_id()), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_local_port(c), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_remote_port(c), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_local_address(c, a), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_get_keep_alive(c), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_set_no_delay(c, 1), TCP_ERR_CLOSED);
  /* double close: the handle is invalid as soon as the first close returns */
  int64_t cl = h_close(s);
  CHECK_EQ(tcp_close(s, h_new_id()), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_read(s, h_new_id(), 1), TCP_ERR_CLOSED);
  CHECK_EQ(h_result(cl), 0);
  /* new sockets (which may reuse the slots) never answer to the old handles */
  int64_t c2, s2;
  h_close_wait(l);
  int64_t l2 = h_pair(port, port, H_LOOPBACK4, 4, &c2, &s2);
  CHECK(c2 != c && c2 != s && s2 != c && s2 != s && l2 != l);
  CHECK_EQ(tcp_local_port(c), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_local_port(l), TCP_ERR_CLOSED);
  tcp_close_finalizer((void *)(intptr_t)c);
  tcp_close_finalizer((void *)(intptr_t)s);
  tcp_close_finalizer((void *)(intptr_t)l);
  uint8_t b = 0;
  h_write_all(c2, "n", 1);
  h_read_exact(s2, &b, 1);
  CHECK_EQ(b, 'n');
  h_close_wait(c2);
  h_close_wait(s2);
  h_close_wait(l2);
}

static void test_close_finalizer(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  int64_t r = h_read(c, 10);
  tcp_close_finalizer((void *)(intptr_t)c);
  /* the pending read completes; the close itself posts nothing (the tracker
   * fails the test on any completion it does not expect) */
  CHECK_EQ(h_result(r), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_read(c, h_new_id(), 10), TCP_ERR_CLOSED);
  expect_eof(s);
  tcp_close_finalizer((void *)(intptr_t)c); /* twice: nothing */
  h_close_wait(s);
  h_close_wait(l);
}

/* ---- writes ------------------------------------------------------------------------ */
static void test_zero_length_write(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  int64_t w1 = h_write(c, "ab", 2);
  int64_t w0 = h_write(c, NULL, 0);
  uint8_t empty = 0;
  int64_t w0b = h_write(c, &empty, 0);
  int64_t w2 = h_write(c, "cd", 2);
  h_req *a = h_await(w1), *b = h_await(w0), *b2 = h_await(w0b), *d = h_await(w2);
  CHECK_EQ(a->c.result, 2);
  CHECK_EQ(b->c.result, 0);
  CHECK_EQ(b2->c.result, 0);
  CHECK_EQ(d->c.result, 2);
  CHECK(a->c.seq < b->c.seq && b->c.seq < b2->c.seq && b2->c.seq < d->c.seq);
  uint8_t buf[4];
  h_read_exact(s, buf, 4);
  CHECK(memcmp(buf, "abcd", 4) == 0);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

static void test_many_small_writes_batched(void) {
  /* structural checks on batching: the tracker already checks every message
   * (non-empty, 3*N, ids known and unique); here: many completions at once,
   * writes complete in call order, bytes arrive in order */
  enum { NW = 400 };
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  static int64_t ids[NW];
  uint8_t buf[NW];
  for (int i = 0; i < NW; i++) {
    uint8_t b = (uint8_t)(i * 7 + 3);
    ids[i] = h_write(c, &b, 1);
  }
  h_read_exact(s, buf, NW);
  for (int i = 0; i < NW; i++) CHECK_EQ(buf[i], (uint8_t)(i * 7 + 3));
  uint64_t prev = 0;
  for (int i = 0; i < NW; i++) {
    h_req *r = h_await(ids[i]);
    CHECK_EQ(r->c.result, 1);
    CHECK(r->c.seq > prev);
    prev = r->c.seq;
  }
  fd_port_stats ps;
  CHECK(fake_dart_port_stats(port, &ps));
  CHECK(ps.messages >= 1 && ps.messages <= ps.triples);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* ---- ports ---------------------------------------------------------------------------- */
static void test_port_gone(void) {
  int64_t pa = h_port(), pb = h_port();
  int64_t l = h_listen(pa, H_LOOPBACK4, 4, 0);
  int64_t a = h_accept(l);
  int64_t c;
  CHECK_EQ(h_result(h_connect(pb, H_LOOPBACK4, 4, tcp_local_port(l), 0, &c)), 0);
  int64_t s = h_accepted(a);
  /* More than TCP_READ_COPY_BYTES_MAX: the refused read would have handed its
   * buffer over as external typed data, so the engine must free it itself. */
  static uint8_t payload[3 * TCP_READ_COPY_BYTES_MAX];
  memset(payload, 'p', sizeof payload);
  h_write_all(s, payload, sizeof payload);
  fd_stats st0, st1;
  fake_dart_stats(&st0);
  h_close_port(pb); /* the "isolate" of the client goes away */
  h_read(c, 65536); /* completes with data: the post is refused, the engine frees it */
  if (!fake_dart_wait_refused(st0.posts_refused + 1, h_timeout_ms))
    FAILF("the read's completion was never posted (refused count stayed %llu)",
          (unsigned long long)st0.posts_refused);
  fake_dart_stats(&st1);
  CHECK_EQ(st1.finalizers_run, st0.finalizers_run);
  CHECK_EQ(st1.external_live, st0.external_live);
  h_close(c);
  if (!fake_dart_wait_refused(st0.posts_refused + 2, h_timeout_ms))
    FAILF("the close's completion was never posted");
  fake_dart_stats(&st1);
  CHECK_EQ(st1.finalizers_run, st0.finalizers_run);
  /* the other side lives on */
  expect_eof(s);
  h_close_wait(s);
  h_close_wait(l);
}

static void test_two_isolates(void) {
  int64_t pa = h_port(), pb = h_port();
  int64_t la = h_listen(pa, H_LOOPBACK4, 4, 0), lb = h_listen(pb, H_LOOPBACK4, 4, 0);
  int64_t aa = h_accept(la), ab = h_accept(lb);
  int64_t cb, ca; /* cb: client on port B to A's listener; ca: vice versa */
  int64_t k1 = h_connect(pb, H_LOOPBACK4, 4, tcp_local_port(la), 0, &cb);
  int64_t k2 = h_connect(pa, H_LOOPBACK4, 4, tcp_local_port(lb), 0, &ca);
  CHECK_EQ(h_result(k1), 0);
  CHECK_EQ(h_result(k2), 0);
  int64_t sa = h_accepted(aa), sb = h_accepted(ab); /* sa on port A, sb on port B */
  uint8_t buf[8];
  h_write_all(cb, "to-A", 4);
  h_read_exact(sa, buf, 4);
  CHECK(memcmp(buf, "to-A", 4) == 0);
  h_write_all(ca, "to-B", 4);
  h_read_exact(sb, buf, 4);
  CHECK(memcmp(buf, "to-B", 4) == 0);
  h_close_wait(cb);
  h_close_wait(ca);
  h_close_wait(sa);
  h_close_wait(sb);
  h_close_wait(la);
  h_close_wait(lb);
  /* every completion was checked for its port on arrival; count them too */
  fd_port_stats a, b;
  CHECK(fake_dart_port_stats(pa, &a) && fake_dart_port_stats(pb, &b));
  CHECK(a.triples > 0 && b.triples > 0);
}

/* ---- engine shutdown with work pending ------------------------------------------------- */
static void test_shutdown_with_pending(void) {
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int64_t l2 = h_listen(port, H_LOOPBACK4, 4, 0);
  int32_t p = tcp_local_port(l);
  /* a peer the engine does not own, so nothing but the shutdown can end the
   * pending operations */
  raw_sock raw = raw_connect4(p);
  int64_t s = h_accepted(h_accept(l));
  int64_t a2 = h_accept(l);
  int64_t r = h_read(s, 4096);
  const size_t n = (size_t)64 << 20;
  uint8_t *big = (uint8_t *)calloc(1, n);
  CHECK(big != NULL);
  int64_t w = h_write(s, big, (int64_t)n);
  free(big);
  int64_t w2 = h_write(s, "tail", 4);
  int64_t cl2 = h_close(l2);
  h_engine_shutdown();
  CHECK_EQ(h_result(a2), TCP_ERR_SHUTDOWN);
  CHECK_EQ(h_result(r), TCP_ERR_SHUTDOWN);
  CHECK_EQ(h_result(w), TCP_ERR_SHUTDOWN);
  CHECK_EQ(h_result(w2), TCP_ERR_SHUTDOWN);
  CHECK_EQ(h_result(cl2), 0);
  raw_closesocket(raw);
  /* down: everything says so */
  CHECK_EQ(tcp_read(s, h_new_id(), 10), TCP_ERR_NOT_INITIALIZED);
  CHECK_EQ(tcp_close(l, h_new_id()), TCP_ERR_NOT_INITIALIZED);
  /* up again: the old handles stay dead */
  h_engine_init();
  int32_t rc = tcp_read(s, h_new_id(), 10);
  CHECK(rc == TCP_ERR_CLOSED || rc == TCP_ERR_BAD_HANDLE);
  rc = tcp_close(l, h_new_id());
  CHECK(rc == TCP_ERR_CLOSED || rc == TCP_ERR_BAD_HANDLE);
  rc = tcp_local_port(l);
  CHECK(rc == TCP_ERR_CLOSED || rc == TCP_ERR_BAD_HANDLE);
  /* and the new engine works */
  int64_t c3, s3;
  int64_t l3 = h_pair(port, port, H_LOOPBACK4, 4, &c3, &s3);
  CHECK(c3 != s && s3 != s && l3 != l);
  uint8_t b = 0;
  h_write_all(c3, "z", 1);
  h_read_exact(s3, &b, 1);
  CHECK_EQ(b, 'z');
  h_close_wait(c3);
  h_close_wait(s3);
  h_close_wait(l3);
}

/* ---- options ---------------------------------------------------------------------------- */
static void test_keepalive_nodelay(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  int64_t hs[2] = {c, s};
  for (int i = 0; i < 2; i++) {
    int64_t h = hs[i];
    int32_t v = tcp_get_keep_alive(h);
    CHECK(v == 0 || v == 1);
    CHECK_EQ(tcp_set_keep_alive(h, 1), TCP_OK);
    CHECK_EQ(tcp_get_keep_alive(h), 1);
    CHECK_EQ(tcp_set_keep_alive(h, 0), TCP_OK);
    CHECK_EQ(tcp_get_keep_alive(h), 0);
    CHECK_EQ(tcp_set_keep_alive(h, 5), TCP_OK); /* any non-zero is on */
    CHECK_EQ(tcp_get_keep_alive(h), 1);
    v = tcp_get_no_delay(h);
    CHECK(v == 0 || v == 1);
    CHECK_EQ(tcp_set_no_delay(h, 1), TCP_OK);
    CHECK_EQ(tcp_get_no_delay(h), 1);
    CHECK_EQ(tcp_set_no_delay(h, 0), TCP_OK);
    CHECK_EQ(tcp_get_no_delay(h), 0);
    CHECK_EQ(tcp_set_no_delay(h, -1), TCP_OK);
    CHECK_EQ(tcp_get_no_delay(h), 1);
  }
  /* the options do not disturb traffic */
  uint8_t b = 0;
  h_write_all(c, "o", 1);
  h_read_exact(s, &b, 1);
  CHECK_EQ(b, 'o');
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* ---- bad input ------------------------------------------------------------------------- */
static void test_bad_input(void) {
  int64_t port = h_port();
  const int32_t INV = TCP_ERR_INVALID_ARGUMENT;
  CHECK_EQ(tcp_listen(port, NULL, 4, 0, 0, 1, 0), INV);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 5, 0, 0, 1, 0), INV);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 0, 0, 0, 1, 0), INV);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, -4, 0, 0, 1, 0), INV);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, -1, 0, 1, 0), INV);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, 65536, 0, 1, 0), INV);
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  int32_t p = tcp_local_port(l);
  uint8_t buf[16];
  CHECK_EQ(tcp_connect(port, h_new_id(), NULL, 4, p, NULL, 0, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 3, p, NULL, 0, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, -1, NULL, 0, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, 65536, NULL, 0, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, p, H_LOOPBACK4, 5, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, p, NULL, 4, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, p, H_LOOPBACK4, 4, 70000, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, p, H_LOOPBACK4, 4, -2, 0), INV);
  CHECK_EQ(tcp_read(c, h_new_id(), 0), INV);
  CHECK_EQ(tcp_read(c, h_new_id(), -1), INV);
  CHECK_EQ(tcp_read(c, h_new_id(), (int64_t)TCP_READ_BYTES_MAX + 1), INV);
  CHECK_EQ(tcp_write(c, h_new_id(), NULL, 5), INV);
  CHECK_EQ(tcp_write(c, h_new_id(), buf, -1), INV);
  /* an oversized length is refused before a byte is read (buf is 16 bytes) */
  CHECK_EQ(tcp_write(c, h_new_id(), buf, (int64_t)TCP_WRITE_BYTES_MAX + 1), INV);
  CHECK_EQ(tcp_write(c, h_new_id(), buf, INT64_MAX), INV);
  CHECK_EQ(tcp_local_address(c, NULL), INV);
  CHECK_EQ(tcp_remote_address(c, NULL), INV);
  CHECK_EQ(tcp_local_address(l, NULL), INV);
  /* none of that disturbed the connection */
  h_write_all(c, "fine", 4);
  h_read_exact(s, buf, 4);
  CHECK(memcmp(buf, "fine", 4) == 0);
  /* the largest read is accepted */
  int64_t r = h_read(s, TCP_READ_BYTES_MAX);
  h_write_all(c, "max", 3);
  h_req *rr = h_await(r);
  CHECK(rr->c.result >= 1 && rr->c.result <= 3);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* a connect with a source address and port */
static void test_connect_source_address(void) {
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int64_t a = h_accept(l);
  /* pick a free source port by listening on one and closing it */
  int64_t tmp = h_listen(port, H_LOOPBACK4, 4, 0);
  int32_t sp = tcp_local_port(tmp);
  h_close_wait(tmp);
  int64_t id = h_new_id();
  int64_t c = tcp_connect(port, id, H_LOOPBACK4, 4, tcp_local_port(l), H_LOOPBACK4, 4, sp, 0);
  CHECK(c > 0);
  h_issue(id, port, K_CONNECT, c, 0);
  remember_port(c, port);
  CHECK_EQ(h_result(id), 0);
  int64_t s = h_accepted(a);
  CHECK_EQ(tcp_local_port(c), sp);
  CHECK_EQ(tcp_remote_port(s), sp);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* ---- reads smaller than what is there; reset by the peer ------------------------ */
static void test_read_in_chunks(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  static const char msg[] = "0123456789";
  h_write_all(c, msg, 10);
  uint8_t got[10];
  size_t have = 0;
  while (have < 10) {
    h_req *r = h_await(h_read(s, 3));
    CHECK(r->c.result >= 1 && r->c.result <= 3);
    memcpy(got + have, r->c.data, r->c.len);
    have += r->c.len;
    h_release(r);
  }
  CHECK(memcmp(got, msg, 10) == 0);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

static void test_reset_by_peer(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  h_write_all(c, "abcdef", 6);
  /* take one byte, so the rest is certainly in s's receive buffer */
  h_req *one = h_await(h_read(s, 1));
  CHECK_EQ(one->c.result, 1);
  /* closing with unread data resets the connection */
  int64_t r = h_read(c, 100);
  h_close_wait(s);
  CHECK_EQ(h_result(r), TCP_ERR_CONNECTION_RESET);
  h_close_wait(c);
  h_close_wait(l);
}

/* ---- several caller threads at once ("isolates" on their own threads) ------------- */
#if defined(_WIN32)
typedef HANDLE h_thread;
typedef DWORD(WINAPI *h_thread_fn)(LPVOID);
#define THREAD_FN(name) static DWORD WINAPI name(LPVOID arg)
#define THREAD_RETURN return 0
static bool thread_start(h_thread *t, h_thread_fn fn, void *arg) {
  *t = CreateThread(NULL, 0, fn, arg, 0, NULL);
  return *t != NULL;
}
static void thread_join(h_thread t) {
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
}
#else
#include <pthread.h>
typedef pthread_t h_thread;
typedef void *(*h_thread_fn)(void *);
#define THREAD_FN(name) static void *name(void *arg)
#define THREAD_RETURN return NULL
static bool thread_start(h_thread *t, h_thread_fn fn, void *arg) {
  return pthread_create(t, NULL, fn, arg) == 0;
}
static void thread_join(h_thread t) { pthread_join(t, NULL); }
#endif

#define W_OPS 2048
#define W_ROUNDS 150

typedef struct worker {
  int index;
  int64_t port;
  int64_t base, next;       /* request ids: base .. next-1 */
  bool done[W_OPS];
  int64_t result[W_OPS];
  fd_completion comp[W_OPS];
  char error[256];
} worker;

/* Waits for id on the worker's port; checks every arrival. */
static bool w_await(worker *w, int64_t id, int64_t *result, fd_completion *out) {
  while (!w->done[id - w->base]) {
    fd_completion c;
    if (!fake_dart_next(w->port, h_timeout_ms, &c)) {
      snprintf(w->error, sizeof w->error, "worker %d: request %lld did not complete", w->index,
               (long long)id);
      return false;
    }
    int64_t k = c.request_id - w->base;
    if (k < 0 || c.request_id >= w->next || w->done[k]) {
      snprintf(w->error, sizeof w->error, "worker %d: %s completion for id %lld", w->index,
               (k >= 0 && c.request_id < w->next) ? "duplicate" : "foreign", (long long)c.request_id);
      fake_dart_release(&c);
      return false;
    }
    w->done[k] = true;
    w->result[k] = c.result;
    w->comp[k] = c;
  }
  *result = w->result[id - w->base];
  if (out) {
    *out = w->comp[id - w->base];
    memset(&w->comp[id - w->base], 0, sizeof(fd_completion));
  } else {
    fake_dart_release(&w->comp[id - w->base]);
  }
  return true;
}

static int64_t w_id(worker *w) { return w->next < w->base + W_OPS ? w->next++ : -1; }

#define W_CHECK(cond, ...)                                  \
  do {                                                      \
    if (!(cond)) {                                          \
      if (w->error[0] == '\0') {                            \
        int n_ = snprintf(w->error, sizeof w->error, "worker %d: ", w->index); \
        snprintf(w->error + n_, sizeof w->error - (size_t)n_, __VA_ARGS__); \
      }                                                     \
      THREAD_RETURN;                                        \
    }                                                       \
  } while (0)

THREAD_FN(worker_main) {
  worker *w = (worker *)arg;
  int64_t res, id;
  fd_completion c;
  int64_t l = tcp_listen(w->port, H_LOOPBACK4, 4, 0, 0, 1, 0);
  W_CHECK(l > 0, "listen: %lld", (long long)l);
  int64_t acc = w_id(w);
  W_CHECK(tcp_accept(l, acc) == 0, "accept refused");
  int64_t con = w_id(w);
  int64_t ch = tcp_connect(w->port, con, H_LOOPBACK4, 4, tcp_local_port(l), NULL, 0, 0, 0);
  W_CHECK(ch > 0, "connect: %lld", (long long)ch);
  W_CHECK(w_await(w, con, &res, NULL) && res == 0, "connect result %lld", (long long)res);
  W_CHECK(w_await(w, acc, &res, NULL) && res > 0, "accept result %lld", (long long)res);
  int64_t sh = res;
  for (int round = 0; round < W_ROUNDS; round++) {
    uint8_t msg[48], back[48];
    h_fill(msg, sizeof msg, (uint64_t)(w->index * 100000 + round));
    int64_t wr = w_id(w);
    W_CHECK(wr > 0 && tcp_write(ch, wr, msg, sizeof msg) == 0, "write refused");
    /* server: read it all, echo it */
    size_t have = 0;
    while (have < sizeof msg) {
      id = w_id(w);
      W_CHECK(id > 0 && tcp_read(sh, id, (int64_t)(sizeof msg - have)) == 0, "read refused");
      W_CHECK(w_await(w, id, &res, &c), "%s", w->error);
      W_CHECK(res > 0, "server read %lld", (long long)res);
      memcpy(back + have, c.data, c.len);
      have += c.len;
      fake_dart_release(&c);
    }
    W_CHECK(w_await(w, wr, &res, NULL) && res == (int64_t)sizeof msg, "write result %lld",
            (long long)res);
    id = w_id(w);
    W_CHECK(id > 0 && tcp_write(sh, id, back, sizeof back) == 0, "echo refused");
    W_CHECK(w_await(w, id, &res, NULL) && res == (int64_t)sizeof back, "echo result");
    have = 0;
    memset(back, 0, sizeof back);
    while (have < sizeof msg) {
      id = w_id(w);
      W_CHECK(id > 0 && tcp_read(ch, id, (int64_t)(sizeof msg - have)) == 0, "read refused");
      W_CHECK(w_await(w, id, &res, &c), "%s", w->error);
      W_CHECK(res > 0, "client read %lld", (long long)res);
      memcpy(back + have, c.data, c.len);
      have += c.len;
      fake_dart_release(&c);
    }
    W_CHECK(memcmp(back, msg, sizeof msg) == 0, "round %d: echo differs", round);
  }
  int64_t hs[3] = {ch, sh, l};
  for (int i = 0; i < 3; i++) {
    id = w_id(w);
    W_CHECK(id > 0 && tcp_close(hs[i], id) == 0, "close refused");
    W_CHECK(w_await(w, id, &res, NULL) && res == 0, "close result %lld", (long long)res);
  }
  /* nothing else may arrive for this worker */
  W_CHECK(!fake_dart_next(w->port, 0, &c), "stray completion id %lld", (long long)c.request_id);
  THREAD_RETURN;
}

static void test_threads_as_isolates(void) {
  enum { NT = 3 };
  static worker ws[NT];
  h_thread th[NT];
  memset(ws, 0, sizeof ws);
  for (int i = 0; i < NT; i++) {
    ws[i].index = i;
    ws[i].port = fake_dart_open_port(); /* checked by the worker, not the tracker */
    ws[i].base = ((int64_t)(i + 1) << 50);
    ws[i].next = ws[i].base;
  }
  int started = 0;
  for (; started < NT; started++)
    if (!thread_start(&th[started], worker_main, &ws[started])) break;
  for (int i = 0; i < started; i++) thread_join(th[i]);
  for (int i = 0; i < NT; i++)
    for (int k = 0; k < W_OPS; k++) fake_dart_release(&ws[i].comp[k]);
  CHECK_EQ(started, NT);
  for (int i = 0; i < NT; i++)
    if (ws[i].error[0] != '\0') FAILF("%s", ws[i].error);
}

/* ---- request ids of any value; reads served in call order; concurrent init ------- */
static void test_request_ids_full_range(void) {
  /* untracked port: these ids are outside the tracker's range on purpose */
  int64_t p = fake_dart_open_port();
  int64_t l = tcp_listen(p, H_LOOPBACK4, 4, 0, 0, 1, 0);
  CHECK(l > 0);
  const int64_t ids[] = {INT64_MIN, -1, 0, INT64_MAX};
  for (int i = 0; i < 3; i++) CHECK_EQ(tcp_accept(l, ids[i]), TCP_OK);
  CHECK_EQ(tcp_close(l, ids[3]), TCP_OK);
  bool seen[3] = {false, false, false};
  for (int i = 0; i < 4; i++) {
    fd_completion c;
    if (!fake_dart_next(p, h_timeout_ms, &c)) FAILF("completion %d of 4 missing", i + 1);
    int64_t id = c.request_id, res = c.result;
    fake_dart_release(&c);
    if (i < 3) { /* the cancelled accepts (in any order), then the close */
      int k = id == ids[0] ? 0 : id == ids[1] ? 1 : id == ids[2] ? 2 : -1;
      if (k < 0 || seen[k]) FAILF("accept completion with id %lld", (long long)id);
      seen[k] = true;
      CHECK_EQ(res, TCP_ERR_CLOSED);
    } else {
      CHECK_EQ(id, INT64_MAX);
      CHECK_EQ(res, 0);
    }
  }
  fd_completion extra;
  CHECK(!fake_dart_next(p, 0, &extra));
  fake_dart_close_port(p);
}

static void test_reads_in_call_order(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  int64_t r[3];
  for (int i = 0; i < 3; i++) r[i] = h_read(s, 1);
  h_write_all(c, "abc", 3);
  uint64_t prev = 0;
  for (int i = 0; i < 3; i++) {
    h_req *q = h_await(r[i]);
    CHECK_EQ(q->c.result, 1);
    CHECK_EQ(q->c.data[0], "abc"[i]);
    CHECK(q->c.seq > prev);
    prev = q->c.seq;
  }
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

static int32_t g_init_rc[4];
THREAD_FN(init_main) {
  int i = (int)(intptr_t)arg;
  g_init_rc[i] = tcp_init(fake_dart_api_data());
  THREAD_RETURN;
}

static void test_concurrent_init(void) {
  h_engine_shutdown();
  h_thread th[4];
  int started = 0;
  for (; started < 4; started++)
    if (!thread_start(&th[started], init_main, (void *)(intptr_t)started)) break;
  for (int i = 0; i < started; i++) thread_join(th[i]);
  g_engine_up = true; /* whatever happened, the runner shuts it down */
  CHECK_EQ(started, 4);
  for (int i = 0; i < 4; i++) CHECK_EQ(g_init_rc[i], TCP_OK);
  CHECK(tcp_backend_name() != NULL);
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  uint8_t b = 0;
  h_write_all(c, "i", 1);
  h_read_exact(s, &b, 1);
  CHECK_EQ(b, 'i');
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
  h_engine_shutdown();
  CHECK_EQ(tcp_shutdown(), TCP_ERR_NOT_INITIALIZED); /* exactly one engine ran */
}

static const struct {
  const char *name;
  test_fn fn;
} g_tests[] = {
#define T(x) {#x, test_##x}
    T(lifecycle),
    T(strerror),
    T(concurrent_init),
    T(request_ids_full_range),
    T(echo_ipv4),
    T(echo_ipv6),
    T(accept_several_pending),
    T(connect_source_address),
    T(transfer_16mib_both_ways),
    T(many_connections),
    T(eof_after_peer_close),
    T(read_after_eof),
    T(shutdown_write_half_close),
    T(connection_refused),
    T(address_in_use),
    T(listen_shared),
    T(connect_timeout),
    T(close_while_read_pending),
    T(close_while_next_read_pending),
    T(close_while_accept_pending),
    T(close_while_connect_pending),
    T(close_while_write_pending),
    T(stale_and_bad_handles),
    T(close_finalizer),
    T(zero_length_write),
    T(read_in_chunks),
    T(reads_in_call_order),
    T(reset_by_peer),
    T(many_small_writes_batched),
    T(port_gone),
    T(two_isolates),
    T(threads_as_isolates),
    T(shutdown_with_pending),
    T(keepalive_nodelay),
    T(bad_input),
#undef T
};

/* ======================================================================== */
/* main                                                                      */
/* ======================================================================== */
static bool selected(const char *name, int argc, char **argv) {
  bool any = false;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') continue;
    any = true;
    if (strstr(name, argv[i]) != NULL) return true;
  }
  return !any;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  const char *t = getenv("TCP_SUITE_TIMEOUT_MS");
  if (t != NULL && atoll(t) > 0) h_timeout_ms = atoll(t);
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--list") == 0) {
      for (size_t k = 0; k < sizeof g_tests / sizeof g_tests[0]; k++) printf("%s\n", g_tests[k].name);
      return 0;
    }
#if defined(_WIN32)
  WSADATA wsa;
  WSAStartup(MAKEWORD(2, 2), &wsa);
#endif

  int32_t rc = tcp_init(fake_dart_api_data());
  const char *name = tcp_backend_name();
  printf("backend: %s\n", rc == TCP_OK && name ? name : "(none)");
  if (rc == TCP_OK) tcp_shutdown();

  int passed = 0, failed = 0, skipped = 0;
  for (size_t k = 0; k < sizeof g_tests / sizeof g_tests[0]; k++) {
    if (!selected(g_tests[k].name, argc, argv)) continue;
    fake_dart_reset();
    g_outcome = R_PASS;
    g_msg[0] = '\0';
    g_nsock_ports = 0;
    g_in_test = true;
    if (setjmp(g_jmp) == 0) {
      int32_t irc = tcp_init(fake_dart_api_data());
      if (irc != TCP_OK) FAILF("tcp_init returned %d (%s)", (int)irc, h_code_name(irc));
      g_engine_up = true;
      g_tests[k].fn();
    }
    /* teardown (also after a failure or a skip) */
    int outcome = g_outcome;
    char saved[sizeof g_msg];
    memcpy(saved, g_msg, sizeof saved);
    g_outcome = R_PASS;
    if (setjmp(g_jmp) == 0) finish_test();
    if (outcome == R_PASS && g_outcome == R_FAIL) {
      outcome = R_FAIL;
    } else {
      memcpy(g_msg, saved, sizeof saved);
    }
    if (g_engine_up) { /* finish_test failed before shutting down */
      tcp_shutdown();
      g_engine_up = false;
    }
    netns_down();
    tracker_reset();
    fake_dart_reset();
    g_in_test = false;
    switch (outcome) {
      case R_PASS:
        passed++;
        printf("PASS %s\n", g_tests[k].name);
        break;
      case R_SKIP:
        skipped++;
        printf("SKIP %s: %s\n", g_tests[k].name, g_msg);
        break;
      default:
        failed++;
        printf("FAIL %s: %s\n", g_tests[k].name, g_msg);
        break;
    }
  }
  if (skipped)
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  else
    printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
