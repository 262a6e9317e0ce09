/*
 * faults.c -- fault-injection programs for the zig_tcp engine, driven by
 * tools/faults.sh (which makes the network namespaces, veth pair and
 * nftables rules). Every mode prints "PASS <name>" or "FAIL <name>: why" lines.
 *
 *   faults echo-server ADDR FIFO          engine echo server on ADDR (port to
 *                                         FIFO); runs until SIGTERM
 *   faults stream ADDR PORT CONNS BYTES BOUND_S NAME [clean|error|close]
 *                                         CONNS connections each send BYTES of
 *                                         a checksummed stream and check the
 *                                         echo. Prints "progress" once half is
 *                                         back (at most 4 MiB). clean: all must arrive intact;
 *                                         error: the connection is reset under
 *                                         it: every pending op must complete
 *                                         with an error; close: on SIGUSR1 the
 *                                         client closes everything: pending ops
 *                                         complete with TCP_ERR_CLOSED. In all
 *                                         modes every op completes within
 *                                         BOUND_S and no byte is corrupted.
 *   faults connect-timeout ADDR PORT      connects into a black hole: timeout
 *                                         and close-while-connecting
 *   faults rst-peer                       peer resets (SO_LINGER 0) during a
 *                                         pending read and a pending write
 *   faults emfile                         EMFILE on accept and connect, no
 *                                         busy loop, recovery
 *   faults overflow N                     N accepts in flight, then the close
 *                                         cancels them all at once (N beyond
 *                                         the io_uring CQ size overflows it)
 * rst-peer, emfile and overflow take a last argument "unix": the same faults
 * on Unix domain sockets (a path in /tmp). There a peer "resets" by closing
 * with data unread (the kernel then marks the connection ECONNRESET; tcp.h).
 * Check names get a "-unix" suffix.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "common.h"

enum { K_CONNECT = 1, K_ACCEPT, K_READ, K_WRITE, K_SHUTW, K_CLOSE };

/* ---------------------------------------------------- the local transport */
/* rst-peer, emfile, overflow: TCP on 127.0.0.1, or Unix sockets ("unix"). */
static bool g_unix;
static unsigned g_paths;

/* A check's name on this transport (two live at a time at most). */
static const char *tname(const char *base) {
  static char bufs[2][96];
  static int next;
  if (!g_unix) return base;
  char *b = bufs[next++ & 1];
  snprintf(b, sizeof bufs[0], "%s-unix", base);
  return b;
}

/* Where a local listener listens: a port, or a fresh path. */
typedef struct local_ep {
  int32_t port;
  struct sockaddr_un un;
} local_ep;

static void fresh_path(local_ep *ep) {
  memset(&ep->un, 0, sizeof ep->un);
  ep->un.sun_family = AF_UNIX;
  snprintf(ep->un.sun_path, sizeof ep->un.sun_path, "/tmp/zt-faults-%d-%u", (int)getpid(), ++g_paths);
}

static int64_t listen_local(int64_t port, int32_t backlog, local_ep *ep) {
  if (!g_unix) {
    static const uint8_t lo[4] = {127, 0, 0, 1};
    int64_t l = tcp_listen(port, lo, 4, 0, backlog, 0, 0);
    ep->port = l > 0 ? tcp_local_port(l) : 0;
    return l;
  }
  fresh_path(ep);
  const char *path = ep->un.sun_path;
  return tcp_listen_unix(port, (const uint8_t *)path, (int32_t)strlen(path), backlog, 0);
}

static int64_t connect_local(int64_t port, int64_t id, const local_ep *ep, int64_t timeout_ms) {
  if (!g_unix) {
    static const uint8_t lo[4] = {127, 0, 0, 1};
    return tcp_connect(port, id, lo, 4, ep->port, NULL, 0, 0, timeout_ms);
  }
  const char *path = ep->un.sun_path;
  return tcp_connect_unix(port, id, (const uint8_t *)path, (int32_t)strlen(path), timeout_ms);
}

/* A plain (not the engine's) socket connected to ep, or -1. */
static int plain_connect(const local_ep *ep) {
  if (g_unix) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)&ep->un, sizeof ep->un) == 0) return fd;
    if (fd >= 0) close(fd);
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ep->port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}
static int64_t make_id(uint64_t idx, int kind) { return (int64_t)((idx << 3) | (uint64_t)kind); }
static int kind_of(int64_t id) { return (int)(id & 7); }
static uint64_t idx_of(int64_t id) { return (uint64_t)id >> 3; }

static int g_fail;
static const char *g_backend = "?"; /* prefixes the check names */
static void failf(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(const char *name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL %s%s%s: ", strchr(name, '/') ? "" : g_backend, strchr(name, '/') ? "" : "/", name);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
  g_fail++;
}
static void pass(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pass(const char *name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("PASS %s%s%s: ", strchr(name, '/') ? "" : g_backend, strchr(name, '/') ? "" : "/", name);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

static int parse_addr(const char *s, uint8_t out[16]) {
  if (inet_pton(AF_INET, s, out) == 1) return 4;
  if (inet_pton(AF_INET6, s, out) == 1) return 16;
  return 0;
}

static volatile sig_atomic_t g_signal;
static void on_signal(int sig) { g_signal = sig; }

static bool is_reset_like(int64_t r) {
  return r == TCP_ERR_CONNECTION_RESET || r == TCP_ERR_BROKEN_PIPE || r == TCP_ERR_CONNECTION_ABORTED ||
         r == TCP_ERR_NOT_CONNECTED;
}

/* ------------------------------------------------------------ echo server */
typedef struct econn {
  int64_t h;
  bool live;
  uint32_t pending; /* ops in flight */
} econn;

static int run_echo_server(const char *addr_s, const char *fifo) {
  uint8_t addr[16];
  int alen = parse_addr(addr_s, addr);
  int64_t port = fake_dart_open_port();
  int64_t l = tcp_listen(port, addr, alen, 0, 1024, 0, 0);
  if (l <= 0) {
    fprintf(stderr, "echo-server: listen on %s: %s (os %d)\n", addr_s, tcp_strerror(l), tcp_last_os_error());
    return 1;
  }
  FILE *f = fopen(fifo, "w");
  if (f == NULL) return 1;
  fprintf(f, "%d\n", tcp_local_port(l));
  fclose(f);
  signal(SIGTERM, on_signal);
  size_t cap = 64, n = 0;
  econn *c = calloc(cap, sizeof *c);
  int accepts = 0;
  uint64_t accept_seq = 0, errors = 0, echoed = 0;
  fd_completion b[256];
  while (!g_signal) {
    while (accepts < 16) {
      if (tcp_accept(l, make_id(accept_seq++, K_ACCEPT)) != 0) break;
      accepts++;
    }
    size_t got = fake_dart_next_batch(port, 200, b, 256);
    for (size_t i = 0; i < got; i++) {
      fd_completion *fc = &b[i];
      int k = kind_of(fc->request_id);
      uint64_t x = idx_of(fc->request_id);
      int64_t r = fc->result;
      if (k == K_ACCEPT) {
        accepts--;
        if (r > 0) {
          if (n == cap) {
            cap *= 2;
            c = realloc(c, cap * sizeof *c);
          }
          c[n].h = r;
          c[n].live = true;
          c[n].pending = 0;
          if (tcp_read(r, make_id(n, K_READ), 65536) == 0) c[n].pending++;
          n++;
        }
      } else if (x < n) {
        econn *e = &c[x];
        if (e->pending > 0) e->pending--;
        if (k == K_READ && r > 0 && e->live) {
          if (tcp_write(e->h, make_id(x, K_WRITE), fc->data, r) == 0) e->pending++;
          echoed += (uint64_t)r;
          if (tcp_read(e->h, make_id(x, K_READ), 65536) == 0) e->pending++;
        } else if (k == K_READ && r == 0 && e->live) {
          if (tcp_shutdown_write(e->h, make_id(x, K_SHUTW)) == 0) e->pending++;
        } else if ((k == K_SHUTW || (k == K_READ && r < 0) || (k == K_WRITE && r < 0)) && e->live) {
          if (r < 0) errors++;
          e->live = false;
          if (tcp_close(e->h, make_id(x, K_CLOSE)) == 0) e->pending++;
        }
      }
      fake_dart_release(fc);
    }
  }
  fprintf(stderr, "echo-server: %zu connections, %" PRIu64 " bytes echoed, %" PRIu64 " connection errors\n", n,
          echoed, errors);
  free(c);
  return 0;
}

/* -------------------------------------------------------------- stream client */
#define CHUNK 65536
#define WINDOW 4

typedef struct sconn {
  int64_t h;
  bool connected, shut, eof, closing, closed, failed;
  uint32_t writes_out, reads_out, other_out;
  uint64_t seed, queued, written, recvd;
  int64_t first_error;
} sconn;

static void stream_pump(sconn *s, uint64_t i, uint64_t bytes) {
  if (!s->connected || s->closing || s->failed) return;
  uint8_t buf[CHUNK];
  while (s->writes_out < WINDOW && s->queued < bytes) {
    size_t len = bytes - s->queued < CHUNK ? (size_t)(bytes - s->queued) : CHUNK;
    byte_stream_fill(s->seed, s->queued, buf, len);
    if (tcp_write(s->h, make_id(i, K_WRITE), buf, (int64_t)len) != 0) {
      s->failed = true;
      return;
    }
    s->writes_out++;
    s->queued += len;
  }
  if (s->queued == bytes && !s->shut) {
    if (tcp_shutdown_write(s->h, make_id(i, K_SHUTW)) == 0) s->other_out++;
    s->shut = true;
  }
  if (s->reads_out == 0 && !s->eof) {
    if (tcp_read(s->h, make_id(i, K_READ), CHUNK) == 0) s->reads_out++;
  }
}

static void stream_close(sconn *s, uint64_t i) {
  if (s->closing) return;
  s->closing = true;
  if (tcp_close(s->h, make_id(i, K_CLOSE)) == 0) s->other_out++;
}

static int run_stream(const char *addr_s, int32_t tport, long conns, uint64_t bytes, long bound_s,
                      const char *name, const char *expect) {
  uint8_t addr[16];
  int alen = parse_addr(addr_s, addr);
  bool want_error = strcmp(expect, "error") == 0, want_close = strcmp(expect, "close") == 0;
  signal(SIGUSR1, on_signal);
  int64_t port = fake_dart_open_port();
  sconn *s = calloc((size_t)conns, sizeof *s);
  for (long i = 0; i < conns; i++) {
    s[i].seed = byte_stream_mix64(0xfa017ull + (uint64_t)i);
    s[i].h = tcp_connect(port, make_id((uint64_t)i, K_CONNECT), addr, alen, tport, NULL, 0, 0, 10000);
    if (s[i].h <= 0) {
      failf(name, "connect refused: %s", tcp_strerror(s[i].h));
      return 1;
    }
    s[i].other_out++;
  }
  uint64_t corrupted = 0, total_recvd = 0, completions = 0;
  long closed = 0;
  bool progress_said = false, closing_all = false;
  int64_t start = rel_now_ms(), deadline = start + bound_s * 1000;
  fd_completion b[256];
  while (closed < conns && rel_now_ms() < deadline) {
    if (want_close && g_signal == SIGUSR1 && !closing_all) {
      closing_all = true; /* the link is cut: close under the pending ops */
      for (long i = 0; i < conns; i++) stream_close(&s[i], (uint64_t)i);
    }
    size_t got = fake_dart_next_batch(port, 100, b, 256);
    for (size_t k = 0; k < got; k++) {
      fd_completion *fc = &b[k];
      uint64_t i = idx_of(fc->request_id);
      int kind = kind_of(fc->request_id);
      int64_t r = fc->result;
      completions++;
      if (i >= (uint64_t)conns) {
        failf(name, "completion with unknown id %" PRId64, fc->request_id);
        fake_dart_release(fc);
        continue;
      }
      sconn *c = &s[i];
      if (r < 0 && c->first_error == 0) c->first_error = r;
      switch (kind) {
        case K_CONNECT:
          c->other_out--;
          if (r == 0) c->connected = true;
          else c->failed = true;
          break;
        case K_WRITE:
          c->writes_out--;
          if (r > 0) c->written += (uint64_t)r;
          else c->failed = true;
          break;
        case K_SHUTW:
          c->other_out--;
          if (r != 0) c->failed = true;
          break;
        case K_READ:
          c->reads_out--;
          if (r > 0) {
            size_t good = byte_stream_first_diff(c->seed, c->recvd, fc->data, fc->len);
            if (good < fc->len) {
              corrupted += fc->len - good; /* from the first wrong byte to the end of the read */
              failf(name, "connection %" PRIu64 ": stream byte %" PRIu64 " differs from what was sent", i,
                    c->recvd + good);
            }
            c->recvd += (uint64_t)r;
            total_recvd += (uint64_t)r;
          } else if (r == 0) {
            c->eof = true;
          } else {
            c->failed = true;
          }
          break;
        case K_CLOSE:
          c->other_out--;
          if (r != 0) failf(name, "close completed with %" PRId64, r);
          c->closed = true;
          closed++;
          break;
      }
      fake_dart_release(fc);
      if (!c->closed) {
        if (c->failed || c->eof) {
          if (c->writes_out + c->reads_out + c->other_out == 0 || c->failed) stream_close(c, i);
        } else {
          stream_pump(c, i, bytes);
        }
      }
    }
    uint64_t half = (uint64_t)conns * bytes / 2;
    if (!progress_said && total_recvd >= (half < (4u << 20) ? half : (4u << 20))) {
      progress_said = true;
      printf("progress\n"); /* tools/faults.sh injects its fault now */
      fflush(stdout);
    }
  }
  int64_t took = rel_now_ms() - start;
  long pending = 0;
  for (long i = 0; i < conns; i++) pending += s[i].writes_out + s[i].reads_out + s[i].other_out;
  uint64_t lost = 0, failed = 0;
  for (long i = 0; i < conns; i++) {
    if (s[i].failed) failed++;
    if (s[i].eof) lost += bytes - s[i].recvd;
  }
  if (closed < conns) {
    failf(name, "%ld of %ld connections not closed after %ld s, %ld ops still pending", conns - closed, conns,
          bound_s, pending);
  } else if (corrupted) {
    failf(name, "%" PRIu64 " corrupted bytes (from the first wrong one of each read on)", corrupted);
  } else if (want_error) {
    /* Reset under load: every pending op came back with an error. */
    bool all_reset = true;
    for (long i = 0; i < conns; i++)
      if (!s[i].failed || !is_reset_like(s[i].first_error)) all_reset = false;
    if (!all_reset) failf(name, "expected every connection to fail with a reset (first error %s)",
                          tcp_strerror(s[0].first_error));
    else pass(name, "%ld connection(s) reset after %" PRIu64 " intact bytes; first error %s; all ops completed in %" PRId64 " ms",
              conns, total_recvd, tcp_strerror(s[0].first_error), took);
  } else if (want_close) {
    bool all_closed_err = true;
    for (long i = 0; i < conns; i++)
      if (s[i].first_error != TCP_ERR_CLOSED) all_closed_err = false;
    if (!closing_all) failf(name, "the transfer ended before the link was cut (no SIGUSR1)");
    else if (!all_closed_err) failf(name, "pending ops after the close: first error %s, expected TCP_ERR_CLOSED",
                                    tcp_strerror(s[0].first_error));
    else pass(name, "link down, close: every pending op completed with TCP_ERR_CLOSED, %" PRIu64 " intact bytes before",
              total_recvd);
  } else if (failed || lost || total_recvd != (uint64_t)conns * bytes) {
    failf(name, "%" PRIu64 " connections failed (first error %s), %" PRIu64 " bytes lost", failed,
          tcp_strerror(s[0].first_error), (uint64_t)conns * bytes - total_recvd);
  } else {
    pass(name, "%ld connections x %" PRIu64 " bytes echoed intact (0 corrupted, 0 lost) in %" PRId64 " ms", conns, bytes,
         took);
  }
  free(s);
  return g_fail ? 1 : 0;
}

/* -------------------------------------------------------------- connect timeout */
static bool await_one(int64_t port, int64_t ms, fd_completion *out) { return fake_dart_next(port, ms, out); }

static int run_connect_timeout(const char *addr_s, int32_t tport) {
  const char *name = "connect-timeout";
  uint8_t addr[16];
  int alen = parse_addr(addr_s, addr);
  int64_t port = fake_dart_open_port();
  int64_t t0 = rel_now_ms();
  int64_t h = tcp_connect(port, 1, addr, alen, tport, NULL, 0, 0, 300);
  fd_completion c;
  if (h <= 0) failf(name, "connect refused: %s", tcp_strerror(h));
  else if (!await_one(port, 10000, &c)) failf(name, "a connect with a 300 ms timeout had no completion after 10 s");
  else if (c.result != TCP_ERR_TIMED_OUT) failf(name, "completed with %s, expected TCP_ERR_TIMED_OUT", tcp_strerror(c.result));
  else {
    int64_t took = rel_now_ms() - t0;
    if (tcp_close(h, 2) != 0 || !await_one(port, 10000, &c) || c.result != 0) failf(name, "close after a timed-out connect");
    else pass(name, "dropped SYNs: TCP_ERR_TIMED_OUT after %" PRId64 " ms (timeout 300 ms), then close 0", took);
  }
  /* No timeout, then close while the SYN is unanswered. */
  name = "connect-close-pending";
  h = tcp_connect(port, 3, addr, alen, tport, NULL, 0, 0, 0);
  if (h <= 0) {
    failf(name, "connect refused: %s", tcp_strerror(h));
  } else if (await_one(port, 0, &c)) {
    failf(name, "connect into a black hole completed at once (%s)", tcp_strerror(c.result));
  } else if (tcp_close(h, 4) != 0) {
    failf(name, "close refused");
  } else {
    fd_completion a, z;
    if (!await_one(port, 10000, &a) || !await_one(port, 10000, &z)) failf(name, "connect/close did not both complete within 10 s");
    else if (a.request_id != 3 || a.result != TCP_ERR_CLOSED || z.request_id != 4 || z.result != 0)
      failf(name, "got (%" PRId64 ": %s) then (%" PRId64 ": %s), expected connect CLOSED then close 0", a.request_id,
            tcp_strerror(a.result), z.request_id, tcp_strerror(z.result));
    else pass(name, "close during an unanswered connect: connect TCP_ERR_CLOSED, then close 0");
  }
  return g_fail ? 1 : 0;
}

/* -------------------------------------------------------------- peer RST */
static int plain_listener(local_ep *ep) {
  if (g_unix) {
    fresh_path(ep);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ep->un, sizeof ep->un) != 0 || listen(fd, 16) != 0) return -1;
    return fd;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0)
    return -1;
  ep->port = ntohs(a.sin_port);
  return fd;
}

/* TCP: an RST (SO_LINGER 0). Unix: a close with data unread does the same. */
static void reset_close(int fd) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  if (!g_unix) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

static int run_rst_peer(void) {
  int64_t port = fake_dart_open_port();
  local_ep ep;
  int lfd = plain_listener(&ep);
  if (lfd < 0) {
    failf(tname("rst-peer"), "plain listener");
    return 1;
  }
  fd_completion c;
  for (int variant = 0; variant < 2; variant++) {
    const char *name = tname(variant == 0 ? "rst-during-read" : "rst-during-write");
    int64_t h = connect_local(port, 10, &ep, 5000);
    if (h <= 0 || !await_one(port, 10000, &c) || c.result != 0) {
      failf(name, "connect to the plain peer");
      continue;
    }
    int peer = accept(lfd, NULL, NULL);
    int64_t pending_id;
    if (variant == 0 && g_unix) {
      /* The peer must hold unread data when it closes: that is its reset. */
      tcp_write(h, 17, (const uint8_t *)"unread", 6);
      if (!await_one(port, 10000, &c) || c.request_id != 17 || c.result != 6) failf(name, "the unread write");
    }
    if (variant == 0) {
      pending_id = 11;
      tcp_read(h, pending_id, 4096);
    } else {
      /* 64 MiB: far more than both socket buffers hold, and the peer never
       * reads, so this write stays in flight until the reset. */
      size_t big = 64u << 20;
      uint8_t *buf = malloc(big);
      memset(buf, 0x5a, big);
      pending_id = 12;
      tcp_write(h, pending_id, buf, (int64_t)big);
      free(buf);
    }
    if (await_one(port, 0, &c)) {
      failf(name, "the op completed before the reset (%s)", tcp_strerror(c.result));
      reset_close(peer);
      tcp_close(h, 13);
      while (await_one(port, 2000, &c)) fake_dart_release(&c);
      continue;
    }
    reset_close(peer);
    if (!await_one(port, 10000, &c)) {
      failf(name, "the pending op had no completion 10 s after the peer's reset");
    } else if (c.request_id != pending_id || !is_reset_like(c.result)) {
      failf(name, "completion %" PRId64 " with %s (os %" PRId64 "), expected a reset error", c.request_id,
            tcp_strerror(c.result), c.payload_int);
    } else {
      int64_t os = c.payload_int;
      int64_t r = c.result;
      /* The next op on the dead connection fails too, and close still works. */
      tcp_read(h, 14, 100);
      fd_completion d;
      bool next_ok = await_one(port, 10000, &d) && d.request_id == 14 && (d.result < 0 || d.result == 0);
      bool close_ok = tcp_close(h, 15) == 0 && await_one(port, 10000, &d) && d.request_id == 15 && d.result == 0;
      if (!next_ok || !close_ok) failf(name, "after the reset: next read %s, close %s", next_ok ? "ok" : "BAD", close_ok ? "ok" : "BAD");
      else pass(name, "pending %s completed with %s (os %" PRId64 "); next read fails, close 0",
                variant == 0 ? "read" : "64 MiB write", tcp_strerror(r), os);
      continue;
    }
    tcp_close(h, 16);
    while (await_one(port, 2000, &c)) fake_dart_release(&c);
  }
  close(lfd);
  if (g_unix) unlink(ep.un.sun_path); /* the plain listener's file: ours to remove */
  return g_fail ? 1 : 0;
}

/* -------------------------------------------------------------- EMFILE */
static int open_fds(void) {
  int n = 0;
  for (int fd = 0; fd < 4096; fd++)
    if (fcntl(fd, F_GETFD) != -1) n++;
  return n;
}

static int run_emfile(void) {
  int64_t port = fake_dart_open_port();
  local_ep ep;
  int64_t l = listen_local(port, 16, &ep);
  if (l <= 0) {
    failf(tname("emfile"), "listen: %s", tcp_strerror(l));
    return 1;
  }
  /* Two peers queue on the listener before the fds run out (plain sockets). */
  int peers[2];
  for (int i = 0; i < 2; i++) {
    peers[i] = plain_connect(&ep);
    if (peers[i] < 0) {
      failf(tname("emfile"), "peer connect: %s", strerror(errno));
      return 1;
    }
  }
  /* Lower the limit a little above what is open, then use up the rest. */
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  struct rlimit low = rl;
  low.rlim_cur = (rlim_t)open_fds() + 16;
  setrlimit(RLIMIT_NOFILE, &low);
  int fillers[64], nfill = 0;
  for (;;) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    fillers[nfill++] = fd;
    if (nfill == 64) break;
  }
  /* connect: refused in the call, with the OS code. */
  const char *name = tname("emfile-connect");
  int64_t h = connect_local(port, 1, &ep, 0);
  if (h == TCP_ERR_TOO_MANY_FILES && tcp_last_os_error() == EMFILE)
    pass(name, "tcp_connect returns TCP_ERR_TOO_MANY_FILES (os EMFILE) at once, no completion");
  else failf(name, "tcp_connect returned %" PRId64 " (os %d)", h, tcp_last_os_error());
  /* accept: each accept completes exactly once with the error; nothing else
   * arrives while the listener stays readable (no busy loop of completions). */
  name = tname("emfile-accept");
  const int n_accepts = 3;
  for (int i = 0; i < n_accepts; i++) tcp_accept(l, 100 + i);
  int errors = 0, other = 0;
  fd_completion c;
  for (int i = 0; i < n_accepts; i++) {
    if (!await_one(port, 10000, &c)) break;
    if (c.result == TCP_ERR_TOO_MANY_FILES && c.payload_int == EMFILE) errors++;
    else other++;
    if (c.result > 0) tcp_close(c.result, 900 + i); /* cannot happen without fds; keep it clean */
  }
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  /* Nothing may follow: all three were answered. (A port that receives more
   * would be a duplicate completion.) */
  bool extra = await_one(port, 500, &c);
  getrusage(RUSAGE_SELF, &ru1);
  double cpu_ms = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000.0 +
                  (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1000.0;
  if (errors == n_accepts && other == 0 && !extra)
    pass(name, "%d accepts -> %d completions, each TCP_ERR_TOO_MANY_FILES (os EMFILE), none after (CPU %.1f ms in the quiet 500 ms)",
         n_accepts, errors, cpu_ms);
  else failf(name, "%d accepts -> %d EMFILE, %d other, extra completion: %s", n_accepts, errors, other, extra ? "yes" : "no");
  /* Recovery: give the fds back; the queued peers are accepted, data flows. */
  name = tname("emfile-recovery");
  for (int i = 0; i < nfill; i++) close(fillers[i]);
  setrlimit(RLIMIT_NOFILE, &rl);
  tcp_accept(l, 200);
  if (!await_one(port, 10000, &c) || c.request_id != 200 || c.result <= 0) {
    failf(name, "accept after the fds came back: %s", tcp_strerror(c.result));
    return 1;
  }
  int64_t s = c.result;
  const char msg[] = "after EMFILE";
  send(peers[0], msg, sizeof msg, MSG_NOSIGNAL);
  tcp_read(s, 201, 100);
  bool read_ok = await_one(port, 10000, &c) && c.request_id == 201 && c.result == (int64_t)sizeof msg &&
                 memcmp(c.data, msg, sizeof msg) == 0;
  fake_dart_release(&c);
  int64_t h2 = connect_local(port, 202, &ep, 0);
  bool connect_ok = h2 > 0 && await_one(port, 10000, &c) && c.request_id == 202 && c.result == 0;
  if (read_ok && connect_ok) pass(name, "after the fds came back: the queued connection is accepted and reads, connect works");
  else failf(name, "read %s, connect %s", read_ok ? "ok" : "BAD", connect_ok ? "ok" : "BAD");
  tcp_close(s, 203);
  if (h2 > 0) tcp_close(h2, 204);
  tcp_close(l, 205);
  for (int i = 0; i < 2; i++) close(peers[i]);
  return g_fail ? 1 : 0;
}

/* -------------------------------------------------------------- overflow */
static int run_overflow(long n) {
  const char *name = tname("overflow-cancel-burst");
  int64_t port = fake_dart_open_port();
  local_ep ep;
  int64_t l = listen_local(port, 16, &ep);
  for (long i = 0; i < n; i++)
    if (tcp_accept(l, make_id((uint64_t)i, K_ACCEPT)) != 0) {
      failf(name, "accept %ld refused", i);
      return 1;
    }
  /* All n in flight; the close cancels them in one go: n completions (plus
   * as many cancel CQEs inside io_uring) arrive at once. */
  int64_t t0 = rel_now_ms();
  if (tcp_close(l, make_id(0, K_CLOSE)) != 0) {
    failf(name, "close refused");
    return 1;
  }
  uint8_t *seen = calloc((size_t)n, 1);
  long got = 0, bad = 0, dup = 0;
  bool closed = false, order_ok = true;
  fd_completion b[512];
  while (!closed) {
    size_t k = fake_dart_next_batch(port, 30000, b, 512);
    if (k == 0) break;
    for (size_t i = 0; i < k; i++) {
      if (kind_of(b[i].request_id) == K_CLOSE) {
        closed = true;
        if (got != n) order_ok = false;
        if (b[i].result != 0) bad++;
        continue;
      }
      uint64_t x = idx_of(b[i].request_id);
      if (x >= (uint64_t)n || seen[x]) dup++;
      else seen[x] = 1;
      if (b[i].result != TCP_ERR_CLOSED) bad++;
      got++;
    }
  }
  int64_t took = rel_now_ms() - t0;
  free(seen);
  if (closed && got == n && !bad && !dup && order_ok)
    pass(name, "%ld accepts in flight, close: %ld x TCP_ERR_CLOSED then close 0, in %" PRId64 " ms", n, got, took);
  else failf(name, "%ld accepts: %ld completions (%ld bad, %ld duplicate), close %s%s", n, got, bad, dup,
             closed ? "done" : "MISSING", order_ok ? "" : ", close before the cancelled ops");
  return g_fail ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: see the comment at the top of reliability/faults.c\n");
    return 2;
  }
  rel_raise_nofile();
  int32_t rc = tcp_init(fake_dart_api_data());
  if (rc != TCP_OK) {
    printf("FAIL %s: tcp_init: %s\n", argv[1], tcp_strerror(rc));
    return 1;
  }
  const char *m = argv[1];
  g_backend = tcp_backend_name();
  g_unix = strcmp(argv[argc - 1], "unix") == 0;
  int status = 2;
  if (strcmp(m, "echo-server") == 0 && argc >= 4) status = run_echo_server(argv[2], argv[3]);
  else if (strcmp(m, "stream") == 0 && argc >= 8)
    status = run_stream(argv[2], atoi(argv[3]), atol(argv[4]), strtoull(argv[5], NULL, 10), atol(argv[6]), argv[7],
                        argc >= 9 ? argv[8] : "clean");
  else if (strcmp(m, "connect-timeout") == 0 && argc >= 4) status = run_connect_timeout(argv[2], atoi(argv[3]));
  else if (strcmp(m, "rst-peer") == 0) status = run_rst_peer();
  else if (strcmp(m, "emfile") == 0) status = run_emfile();
  else if (strcmp(m, "overflow") == 0 && argc >= 3) status = run_overflow(atol(argv[2]));
  else fprintf(stderr, "faults: bad arguments for %s\n", m);
  /* tcp_shutdown must complete (posts everything, joins the I/O thread). */
  if (tcp_shutdown() != TCP_OK) {
    printf("FAIL %s: tcp_shutdown\n", m);
    status = 1;
  }
  return status;
}
