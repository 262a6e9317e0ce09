/*
 * soak.c -- many concurrent connections echoing checksummed data through the
 * zig_tcp engine, client and servers in separate processes (tools/soak.sh).
 *
 *   soak server PORTFILE CONNS [MODE]     listens on 127.0.0.1, echoes CONNS
 *                                         connections, exits when all closed.
 *                                         MODE oneshot (default): a tcp_read
 *                                         per message; stream: one read stream
 *                                         per connection, each echo
 *                                         acknowledged when its write completed
 *   soak client PORT[,PORT...] CONNS SECONDS
 *                                         opens CONNS connections (connection
 *                                         i to the i % N-th port), each sends
 *                                         messages of 1..MAXMSG bytes and reads
 *                                         the echo back, for SECONDS after
 *                                         warm-up; then half-closes, reads to
 *                                         the end and closes
 *
 * The backend is ZIG_TCP_BACKEND's. Every byte the client gets back is
 * compared with what it sent (a deterministic stream per connection), every
 * request id must complete exactly once, and the teardown must finish within
 * a bound. Each process prints its RSS after warm-up (every connection made
 * and through one round trip), at the end of the timed run (all connections
 * still open) and after teardown; a server also its RSS at start and the
 * memory per connection, (RSS after warm-up - RSS at start) / CONNS; and
 * last a line
 *   soak-ROLE: errors=E corrupted=C lost=L ...
 * which tools/soak.sh checks. A stream server also checks that no DATA goes
 * past its window.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include "common.h"

#define MAXMSG 4096
#define READ_MAX (16 * 1024)
#define CONNECTS_IN_FLIGHT 512
#define ACCEPTS_IN_FLIGHT 256
#define TEARDOWN_BOUND_MS 60000

enum { K_CONNECT = 1, K_ACCEPT, K_READ, K_WRITE, K_SHUTW, K_CLOSE, K_STREAM };
static int64_t make_id(uint64_t idx, int kind) { return (int64_t)((idx << 3) | (uint64_t)kind); }

static uint64_t g_errors, g_unexpected;
static const char *g_role = "soak";

static uint64_t g_unexpected_shown;
/* A completion that matches no pending request of its kind. */
static void unexpected(const char *what, uint64_t idx, int64_t result) {
  g_unexpected++;
  if (++g_unexpected_shown > 20) return;
  fprintf(stderr, "%s: unexpected completion: %s on connection %llu, result %lld\n", g_role, what,
          (unsigned long long)idx, (long long)result);
}

static void report_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report_error(const char *fmt, ...) {
  g_errors++;
  if (g_errors > 20) return; /* the count is reported; the first few say why */
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: error: ", g_role);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

/* ------------------------------------------------------------------ server */
/* The server reads each connection with one-shot reads (a tcp_read per
 * message, as Connection.read() does) or with a read stream (as the Dart
 * Stream does): the stream's DATA is echoed and acknowledged once the echo
 * write completed, so at most STREAM_WINDOW bytes per connection are in the
 * server at any time. */
#define STREAM_WINDOW READ_MAX

typedef struct sconn {
  int64_t h;
  bool read_pending, shutw_pending, close_pending, eof, closed;
  uint32_t writes_pending;
  uint64_t echoed;
  int64_t stream_posted, stream_acked; /* stream mode: DATA bytes, bytes acknowledged */
  bool ack_refused; /* the stream had ended (its final still on its way): no DATA may follow */
} sconn;

typedef struct server {
  bool stream_mode;
  long conns, accepted, accepts_out, closed, warm_count;
  uint64_t accept_seq, echoed_total;
  long rss_start, rss_warm, rss_end;
  sconn *c;
} server;

static void server_close(sconn *s, uint64_t idx) {
  if (!s->close_pending && tcp_close(s->h, make_id(idx, K_CLOSE)) == 0) s->close_pending = true;
}

/* Starts the reading of connection idx: a one-shot read, or the stream. */
static void server_read(server *sv, sconn *s, uint64_t idx) {
  int32_t rc = sv->stream_mode ? tcp_read_stream(s->h, make_id(idx, K_STREAM), STREAM_WINDOW)
                               : tcp_read(s->h, make_id(idx, K_READ), READ_MAX);
  if (rc == 0) s->read_pending = true;
  else report_error("%s refused: %s", sv->stream_mode ? "read stream" : "read", tcp_strerror(rc));
}

static void server_on_accept(server *sv, int64_t res, const fd_completion *fc) {
  sv->accepts_out--;
  if (res <= 0) {
    report_error("accept failed: %s (os %" PRId64 ")", tcp_strerror(res), fc->payload_int);
    return;
  }
  if (sv->accepted >= sv->conns) {
    report_error("more connections than expected");
    tcp_close(res, make_id((uint64_t)sv->conns + 1, K_CLOSE));
    return;
  }
  sconn *s = &sv->c[sv->accepted];
  s->h = res;
  server_read(sv, s, (uint64_t)sv->accepted);
  sv->accepted++;
}

/* Bytes arrived on connection idx (a read's or a stream's DATA): echo them. */
static void server_echo(server *sv, sconn *s, uint64_t idx, const fd_completion *fc) {
  if (fc->payload_kind != FD_PAYLOAD_BYTES || fc->len != (size_t)fc->result) {
    report_error("read payload of %zu bytes for result %" PRId64, fc->len, fc->result);
    return;
  }
  if (tcp_write(s->h, make_id(idx, K_WRITE), fc->data, fc->result) != 0) {
    report_error("echo write refused");
    return;
  }
  s->writes_pending++;
  if (s->echoed == 0 && ++sv->warm_count == sv->conns) sv->rss_warm = rel_rss_kib();
  s->echoed += (uint64_t)fc->result;
  sv->echoed_total += (uint64_t)fc->result;
}

/* End of stream (the client began its teardown): FIN after the echoes. */
static void server_on_eof(server *sv, sconn *s, uint64_t idx) {
  if (sv->rss_end < 0) sv->rss_end = rel_rss_kib();
  s->eof = true;
  if (tcp_shutdown_write(s->h, make_id(idx, K_SHUTW)) == 0) s->shutw_pending = true;
  else report_error("shutdown_write refused");
}

static void server_on_read(server *sv, sconn *s, uint64_t idx, const fd_completion *fc) {
  int64_t res = fc->result;
  if (!s->read_pending) unexpected("read", idx, res);
  s->read_pending = false;
  if (res > 0) {
    server_echo(sv, s, idx, fc);
    server_read(sv, s, idx);
  } else if (res == 0) {
    server_on_eof(sv, s, idx);
  } else {
    report_error("read on connection %" PRIu64 ": %s (os %" PRId64 ")", idx, tcp_strerror(res), fc->payload_int);
    server_close(s, idx);
  }
}

/* A stream completion: DATA (never past the window), or its one final. */
static void server_on_stream(server *sv, sconn *s, uint64_t idx, const fd_completion *fc) {
  int64_t res = fc->result;
  if (!s->read_pending) unexpected("stream", idx, res);
  if (res > 0) {
    if (s->ack_refused) report_error("connection %" PRIu64 ": stream DATA after an ack was refused", idx);
    s->stream_posted += res;
    if (s->stream_posted - s->stream_acked > STREAM_WINDOW)
      report_error("connection %" PRIu64 ": %" PRId64 " stream bytes unacknowledged, window %d", idx,
                   s->stream_posted - s->stream_acked, STREAM_WINDOW);
    server_echo(sv, s, idx, fc);
    return;
  }
  s->read_pending = false; /* the final */
  if (res == 0) {
    server_on_eof(sv, s, idx);
  } else {
    report_error("stream on connection %" PRIu64 ": %s (os %" PRId64 ")", idx, tcp_strerror(res), fc->payload_int);
    server_close(s, idx);
  }
}

static void server_on_write(server *sv, sconn *s, uint64_t idx, int64_t res) {
  if (s->writes_pending == 0) unexpected("write", idx, res);
  s->writes_pending--;
  if (res < 0) {
    report_error("echo write: %s", tcp_strerror(res));
    return;
  }
  /* Echoed: the stream may hand over that many more bytes. A stream that
   * ended on its own refuses the ack while its final is still in this batch. */
  if (sv->stream_mode && s->read_pending) {
    int32_t rc = tcp_read_stream_ack(s->h, res);
    if (rc == 0) s->stream_acked += res;
    else if (rc == TCP_ERR_INVALID_ARGUMENT) s->ack_refused = true;
    else report_error("ack of %" PRId64 " on connection %" PRIu64 ": %s", res, idx, tcp_strerror(rc));
  }
}

static void server_on_completion(server *sv, fd_completion *fc) {
  int kind = (int)(fc->request_id & 7);
  uint64_t idx = (uint64_t)fc->request_id >> 3;
  int64_t res = fc->result;
  if (kind == K_ACCEPT) {
    server_on_accept(sv, res, fc);
    return;
  }
  if (idx >= (uint64_t)sv->conns) {
    report_error("completion for unknown id %" PRId64, fc->request_id);
    g_unexpected++;
    return;
  }
  sconn *s = &sv->c[idx];
  switch (kind) {
    case K_READ: server_on_read(sv, s, idx, fc); break;
    case K_STREAM: server_on_stream(sv, s, idx, fc); break;
    case K_WRITE: server_on_write(sv, s, idx, res); break;
    case K_SHUTW:
      if (!s->shutw_pending) unexpected("shutdown_write", idx, res);
      s->shutw_pending = false;
      if (res != 0) report_error("shutdown_write: %s", tcp_strerror(res));
      server_close(s, idx); /* every echo write came before the FIN: now the socket can go */
      break;
    case K_CLOSE:
      if (!s->close_pending || s->closed) unexpected("close", idx, res);
      s->closed = true;
      sv->closed++;
      if (res != 0) report_error("close: %s", tcp_strerror(res));
      break;
    default: unexpected("unknown kind", idx, res);
  }
}

static int64_t server_listen(int64_t port, const char *port_file) {
  const uint8_t lo[4] = {127, 0, 0, 1};
  int64_t l = tcp_listen(port, lo, 4, 0, 8192, 0, 0);
  if (l <= 0) {
    fprintf(stderr, "soak-server: listen failed: %s (os %d)\n", tcp_strerror(l), tcp_last_os_error());
    return -1;
  }
  FILE *f = fopen(port_file, "w");
  if (f == NULL) return -1;
  fprintf(f, "%d\n", tcp_local_port(l));
  fclose(f);
  return l;
}

static void server_report(const server *sv) {
  long rss_after = rel_rss_kib();
  long per_conn = sv->rss_warm >= 0 ? (sv->rss_warm - sv->rss_start) * 1024 / sv->conns : -1;
  printf("soak-server: mode=%s connections=%ld rss_start_kib=%ld rss_warm_kib=%ld memory_per_connection_bytes=%ld\n",
         sv->stream_mode ? "stream" : "oneshot", sv->conns, sv->rss_start, sv->rss_warm, per_conn);
  printf("soak-server: rss_warm_kib=%ld rss_end_kib=%ld rss_after_close_kib=%ld\n", sv->rss_warm, sv->rss_end,
         rss_after);
  printf("soak-server: errors=%" PRIu64 " unexpected=%" PRIu64 " accepted=%ld closed=%ld echoed_bytes=%" PRIu64 "\n",
         g_errors, g_unexpected, sv->accepted, sv->closed, sv->echoed_total);
}

#define LISTENER_CLOSE_ID (make_id(0, K_CLOSE) | ((int64_t)1 << 60))

static int run_server(const char *port_file, long conns, bool stream_mode) {
  g_role = "soak-server";
  server sv = {.stream_mode = stream_mode, .conns = conns, .rss_warm = -1, .rss_end = -1};
  sv.rss_start = rel_rss_kib();
  int64_t port = fake_dart_open_port();
  int64_t l = server_listen(port, port_file);
  if (l < 0) return 1;
  sv.c = calloc((size_t)conns, sizeof *sv.c);
  bool listener_closed = false, listener_close_done = false;
  int64_t last_progress = rel_now_ms();
  fd_completion batch[512];
  while (sv.closed < conns || !listener_close_done) {
    while (!listener_closed && sv.accepted + sv.accepts_out < conns && sv.accepts_out < ACCEPTS_IN_FLIGHT) {
      int32_t rc = tcp_accept(l, make_id(sv.accept_seq++, K_ACCEPT));
      if (rc != 0) {
        report_error("accept refused: %s", tcp_strerror(rc));
        break;
      }
      sv.accepts_out++;
    }
    if (!listener_closed && sv.accepted == conns) {
      listener_closed = true;
      if (tcp_close(l, LISTENER_CLOSE_ID) != 0) report_error("listener close refused");
    }
    size_t n = fake_dart_next_batch(port, 1000, batch, 512);
    if (n == 0 && rel_now_ms() - last_progress > TEARDOWN_BOUND_MS * 5) {
      report_error("no completion for %d s (accepted %ld, closed %ld)", TEARDOWN_BOUND_MS * 5 / 1000, sv.accepted,
                   sv.closed);
      break;
    }
    if (n > 0) last_progress = rel_now_ms();
    for (size_t i = 0; i < n; i++) {
      if (batch[i].request_id == LISTENER_CLOSE_ID) {
        listener_close_done = true;
        if (batch[i].result != 0) report_error("listener close: %" PRId64, batch[i].result);
      } else {
        server_on_completion(&sv, &batch[i]);
      }
      fake_dart_release(&batch[i]);
    }
  }
  server_report(&sv);
  free(sv.c);
  return g_errors || g_unexpected ? 1 : 0;
}

/* ------------------------------------------------------------------ client */
typedef enum { C_IDLE, C_CONNECTING, C_RUNNING, C_DRAINING, C_CLOSING, C_CLOSED } cstate;

typedef struct cconn {
  int64_t h;
  cstate state;
  bool read_pending, shutw_pending;
  uint32_t writes_pending; /* a message's echo can come back before its write's completion */
  uint64_t seed, queued, recvd, msg_end, rounds;
  bool eof;
} cconn;

static long g_conns_running;

static void client_close(cconn *c, uint64_t idx) {
  if (c->state == C_CLOSING || c->state == C_CLOSED) return;
  if (tcp_close(c->h, make_id(idx, K_CLOSE)) == 0) c->state = C_CLOSING;
  else report_error("close refused");
}

static void client_next_message(cconn *c, uint64_t idx, bool stopping) {
  if (stopping) {
    c->state = C_DRAINING;
    if (tcp_shutdown_write(c->h, make_id(idx, K_SHUTW)) == 0) c->shutw_pending = true;
    else report_error("shutdown_write refused");
    if (tcp_read(c->h, make_id(idx, K_READ), 64) == 0) c->read_pending = true;
    else report_error("read refused");
    return;
  }
  size_t len = 1 + (size_t)(byte_stream_mix64(c->seed + c->rounds) % MAXMSG);
  uint8_t buf[MAXMSG];
  byte_stream_fill(c->seed, c->queued, buf, len);
  if (tcp_write(c->h, make_id(idx, K_WRITE), buf, (int64_t)len) == 0) {
    c->writes_pending++;
    c->queued += len;
    c->msg_end = c->queued;
  } else {
    report_error("write refused");
  }
  if (tcp_read(c->h, make_id(idx, K_READ), READ_MAX) == 0) c->read_pending = true;
  else report_error("read refused");
}

typedef struct client {
  const int32_t *tcp_ports;
  int nports;
  long conns, seconds, started, connecting, warm, closed;
  uint64_t corrupted, rounds_total, bytes_total;
  long rss_warm, rss_end;
  int64_t t_start, t_warm, t_stop, t_end_run, t_sample;
  bool stopping;
  int64_t port; /* the fake Dart port of every connection */
  cconn *c;
} client;

/* Starts connects until CONNECTS_IN_FLIGHT are pending or all are started. */
static void client_connect_more(client *cl) {
  const uint8_t lo[4] = {127, 0, 0, 1};
  while (cl->started < cl->conns && cl->connecting < CONNECTS_IN_FLIGHT) {
    cconn *cc = &cl->c[cl->started];
    cc->seed = byte_stream_mix64(0x50a4ull + (uint64_t)cl->started);
    int32_t tcp_port = cl->tcp_ports[cl->started % cl->nports]; /* connection i goes to server i % nports */
    int64_t h = tcp_connect(cl->port, make_id((uint64_t)cl->started, K_CONNECT), lo, 4, tcp_port, NULL, 0, 0, 30000);
    if (h <= 0) {
      report_error("connect %ld refused: %s (os %d)", cl->started, tcp_strerror(h), tcp_last_os_error());
      cc->state = C_CLOSED;
      cl->closed++;
    } else {
      cc->h = h;
      cc->state = C_CONNECTING;
      cl->connecting++;
    }
    cl->started++;
  }
}

/* Every 10 s an RSS sample; after SECONDS the teardown begins. */
static void client_tick(client *cl) {
  if (cl->stopping || cl->t_warm < 0) return;
  if (rel_now_ms() - cl->t_sample >= 10000) {
    cl->t_sample = rel_now_ms();
    fprintf(stderr, "soak-client: t=%" PRId64 "s rss_kib=%ld round_trips=%" PRIu64 "\n",
            (cl->t_sample - cl->t_warm) / 1000, rel_rss_kib(), cl->rounds_total);
  }
  if (rel_now_ms() - cl->t_warm >= cl->seconds * 1000) {
    cl->stopping = true;
    cl->t_stop = rel_now_ms();
    cl->rss_end = rel_rss_kib();
  }
}

/* The echo of a message came back (all of it, or part). */
static void client_on_data(client *cl, cconn *cc, uint64_t idx, const fd_completion *fc) {
  int64_t res = fc->result;
  if (fc->payload_kind != FD_PAYLOAD_BYTES || fc->len != (size_t)res) {
    report_error("read payload mismatch");
    return;
  }
  if (cc->recvd + (uint64_t)res > cc->queued)
    report_error("connection %" PRIu64 " got %" PRIu64 " bytes back, sent %" PRIu64, idx, cc->recvd + (uint64_t)res,
                 cc->queued);
  size_t good = byte_stream_first_diff(cc->seed, cc->recvd, fc->data, fc->len);
  if (good < fc->len) {
    cl->corrupted += fc->len - good; /* from the first wrong byte to the end of the read */
    report_error("connection %" PRIu64 ": stream byte %" PRIu64 " differs from what was sent", idx, cc->recvd + good);
  }
  cc->recvd += (uint64_t)res;
  cl->bytes_total += (uint64_t)res;
  if (cc->recvd < cc->msg_end) {
    if (tcp_read(cc->h, make_id(idx, K_READ), READ_MAX) == 0) cc->read_pending = true;
    else report_error("read refused");
  } else if (cc->state == C_RUNNING) {
    cc->rounds++;
    cl->rounds_total++;
    if (cc->rounds == 1 && ++cl->warm == cl->conns) {
      cl->t_warm = cl->t_sample = rel_now_ms();
      cl->rss_warm = rel_rss_kib();
      fprintf(stderr, "soak-client: warm: %ld connections through one round trip after %" PRId64 " ms\n", cl->conns,
              cl->t_warm - cl->t_start);
    }
    client_next_message(cc, idx, cl->stopping);
  } else {
    report_error("connection %" PRIu64 ": data after its half-close", idx);
  }
}

static void client_on_read(client *cl, cconn *cc, uint64_t idx, const fd_completion *fc) {
  int64_t res = fc->result;
  if (!cc->read_pending) unexpected("read", idx, res);
  cc->read_pending = false;
  if (res > 0) {
    client_on_data(cl, cc, idx, fc);
  } else if (res == 0) {
    if (cc->state != C_DRAINING) report_error("connection %" PRIu64 ": unexpected end of stream", idx);
    if (cc->recvd != cc->queued)
      report_error("connection %" PRIu64 ": %" PRIu64 " bytes lost", idx, cc->queued - cc->recvd);
    cc->eof = true;
    client_close(cc, idx);
  } else {
    report_error("read on %" PRIu64 ": %s (os %" PRId64 ")", idx, tcp_strerror(res), fc->payload_int);
    client_close(cc, idx);
  }
}

static void client_on_connect(client *cl, cconn *cc, uint64_t idx, const fd_completion *fc) {
  cl->connecting--;
  if (cc->state != C_CONNECTING) unexpected("connect", idx, fc->result);
  if (fc->result != 0) {
    report_error("connect %" PRIu64 ": %s (os %" PRId64 ")", idx, tcp_strerror(fc->result), fc->payload_int);
    client_close(cc, idx);
    return;
  }
  cc->state = C_RUNNING;
  g_conns_running++;
  client_next_message(cc, idx, cl->stopping);
}

static void client_on_completion(client *cl, const fd_completion *fc) {
  int kind = (int)(fc->request_id & 7);
  uint64_t idx = (uint64_t)fc->request_id >> 3;
  int64_t res = fc->result;
  if (idx >= (uint64_t)cl->conns) {
    g_unexpected++;
    return;
  }
  cconn *cc = &cl->c[idx];
  switch (kind) {
    case K_CONNECT: client_on_connect(cl, cc, idx, fc); break;
    case K_WRITE:
      if (cc->writes_pending == 0) unexpected("write", idx, res);
      else cc->writes_pending--;
      if (res < 0) {
        report_error("write on %" PRIu64 ": %s", idx, tcp_strerror(res));
        client_close(cc, idx);
      }
      break;
    case K_READ: client_on_read(cl, cc, idx, fc); break;
    case K_SHUTW:
      if (!cc->shutw_pending) unexpected("shutdown_write", idx, res);
      cc->shutw_pending = false;
      if (res != 0) report_error("shutdown_write: %s", tcp_strerror(res));
      break;
    case K_CLOSE:
      if (cc->state != C_CLOSING) unexpected("close", idx, res);
      if (res != 0) report_error("close: %s", tcp_strerror(res));
      cc->state = C_CLOSED;
      cl->closed++;
      if (cl->closed == cl->conns) cl->t_end_run = rel_now_ms();
      break;
    default: unexpected("unknown kind", idx, res);
  }
}

/* Prints the figures; returns how many bytes never came back. */
static uint64_t client_report(const client *cl) {
  long rss_after = rel_rss_kib();
  uint64_t lost = 0;
  for (long i = 0; i < cl->conns; i++) lost += cl->c[i].queued - cl->c[i].recvd;
  double run_s = cl->t_stop > cl->t_warm && cl->t_warm >= 0 ? (double)(cl->t_stop - cl->t_warm) / 1000.0 : 0;
  printf("soak-client: connections=%ld warm_after_ms=%" PRId64 " run_s=%.1f teardown_ms=%" PRId64 "\n", cl->conns,
         cl->t_warm >= 0 ? cl->t_warm - cl->t_start : -1, run_s,
         cl->t_end_run >= 0 && cl->t_stop >= 0 ? cl->t_end_run - cl->t_stop : -1);
  printf("soak-client: round_trips=%" PRIu64 " echoed_bytes=%" PRIu64 " (%.1f MB/s, %.0f round trips/s)\n",
         cl->rounds_total, cl->bytes_total, run_s > 0 ? cl->bytes_total / run_s / 1e6 : 0,
         run_s > 0 ? cl->rounds_total / run_s : 0);
  printf("soak-client: rss_warm_kib=%ld rss_end_kib=%ld rss_after_close_kib=%ld\n", cl->rss_warm, cl->rss_end,
         rss_after);
  printf("soak-client: errors=%" PRIu64 " unexpected=%" PRIu64 " corrupted=%" PRIu64 " lost=%" PRIu64 "\n", g_errors,
         g_unexpected, cl->corrupted, lost);
  return lost;
}

static int run_client(const int32_t *tcp_ports, int nports, long conns, long seconds) {
  g_role = "soak-client";
  client cl = {.tcp_ports = tcp_ports, .nports = nports, .conns = conns, .seconds = seconds, .rss_warm = -1,
               .rss_end = -1, .t_start = rel_now_ms(), .t_warm = -1, .t_stop = -1, .t_end_run = -1};
  cl.port = fake_dart_open_port();
  cl.c = calloc((size_t)conns, sizeof *cl.c);
  int64_t last_progress = rel_now_ms();
  fd_completion batch[512];
  while (cl.closed < conns) {
    client_connect_more(&cl);
    client_tick(&cl);
    size_t n = fake_dart_next_batch(cl.port, 200, batch, 512);
    if (n == 0 && rel_now_ms() - last_progress > TEARDOWN_BOUND_MS) {
      report_error("no completion for %d s with %ld connections not closed", TEARDOWN_BOUND_MS / 1000,
                   conns - cl.closed);
      break;
    }
    if (n > 0) last_progress = rel_now_ms();
    for (size_t i = 0; i < n; i++) {
      client_on_completion(&cl, &batch[i]);
      fake_dart_release(&batch[i]);
    }
  }
  uint64_t lost = client_report(&cl);
  free(cl.c);
  return g_errors || g_unexpected || cl.corrupted || lost || cl.t_warm < 0 ? 1 : 0;
}

/* "P1,P2,...": the servers' ports. Returns how many (0 on bad input). */
static int parse_ports(const char *list, int32_t *ports, int max) {
  int n = 0;
  for (const char *p = list; *p != '\0' && n < max;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v <= 0 || v > 65535 || (*end != ',' && *end != '\0')) return 0;
    ports[n++] = (int32_t)v;
    p = *end == ',' ? end + 1 : end;
  }
  return n;
}

static int usage(void) {
  fprintf(stderr, "usage: soak server PORTFILE CONNS [oneshot|stream] | soak client PORT[,PORT...] CONNS SECONDS\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 4) return usage();
  bool server = strcmp(argv[1], "server") == 0;
  bool stream_mode = server && argc >= 5 && strcmp(argv[4], "stream") == 0;
  if (server && argc >= 5 && !stream_mode && strcmp(argv[4], "oneshot") != 0) return usage();
  int32_t ports[8];
  int nports = server ? 0 : parse_ports(argv[2], ports, 8);
  if (!server && (argc < 5 || strcmp(argv[1], "client") != 0 || nports == 0)) return usage();
  long limit = rel_raise_nofile();
  int32_t rc = tcp_init(fake_dart_api_data());
  if (rc != TCP_OK) {
    fprintf(stderr, "soak: tcp_init: %s\n", tcp_strerror(rc));
    return 1;
  }
  fprintf(stderr, "soak-%s: backend %s, fd limit %ld, rss at start %ld KiB\n", argv[1], tcp_backend_name(), limit,
          rel_rss_kib());
  int status = server ? run_server(argv[2], atol(argv[3]), stream_mode)
                      : run_client(ports, nports, atol(argv[3]), atol(argv[4]));
  tcp_shutdown();
  return status;
}
