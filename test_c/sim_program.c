/*
 * sim_program.c -- one seed of the simulation test (see sim_program.h).
 *
 * The program's own choices (which call, on which handle, with which
 * arguments, when to step) come from a PRNG of its own, seeded from the seed,
 * with per-seed weights (swarm testing: a seed that mostly reads, one that
 * closes a lot...). Every call's return code is predicted by the model; every
 * completion is checked by the tracker and the model after each step.
 *
 * Phases: the program (50-200 calls); liveness (no new calls, peers dial in
 * for every waiting accept, spontaneous dial-ins off: every request that can
 * end must end within a bound number of steps); shutdown (free-run, then
 * tcp_shutdown: everything left completes with TCP_ERR_SHUTDOWN or CLOSED).
 */
#include "sim_program.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_sim.h"
#include "byte_stream.h"
#include "harness.h"
#include "sim_model.h"

#define CALLS_MIN 50
#define CALLS_MAX 200
#define PORTS_MAX 3
#define OPEN_SOCKS_MAX 100
#define LIVENESS_STEPS_MAX 20000
#define WRITE_LEN_MAX 40000

typedef enum action {
  A_LISTEN,
  A_CONNECT,
  A_ACCEPT,
  A_DIAL,
  A_READ,
  A_WRITE,
  A_SHUTW,
  A_CLOSE,
  A_FINALIZE,
  A_ACCESSOR,
  A_STREAM,
  A_ACK,
  A_STOP,
  A_STEP,
  A_COUNT,
} action;

static struct {
  uint64_t seed;
  bool ipv6;
  sim_rng rng;
  int64_t ports[PORTS_MAX];
  size_t nports;
  uint32_t weights[A_COUNT];
  uint32_t step_pct; /* after a call, steps follow this often */
  uint64_t calls, steps;
  uint64_t failure_hash, failure_events; /* the trace when a check failed */
  void (*on_failure)(const sim_seed_outcome *early);
} P;

static uint8_t g_write_buf[WRITE_LEN_MAX];

void sim_program_configure(bool ipv6, void (*on_failure)(const sim_seed_outcome *early)) {
  P.ipv6 = ipv6;
  P.on_failure = on_failure;
}

static uint64_t below(uint64_t n) { return sim_rng_below(&P.rng, n); }
static uint64_t range(uint64_t lo, uint64_t hi) { return sim_rng_range(&P.rng, lo, hi); }
static bool chance(uint32_t percent) { return sim_rng_chance(&P.rng, percent); }

/* ---- steps ---------------------------------------------------------------------------------- */

static void check_sim(void) {
  char first[600];
  uint64_t n = sim_failures(first, sizeof first);
  if (n != 0) FAILF("the sim saw %llu contract violation(s); first: %s", (unsigned long long)n, first);
}

/* One pass of the I/O thread, then every completion it posted. */
static void step(void) {
  sim_step();
  P.steps++;
  sim_trace("step %llu: clock %lld ms", (unsigned long long)P.steps, (long long)sim_now_ms());
  check_sim();
  model_drain(P.ports, P.nports);
}

/* ---- handles ---------------------------------------------------------------------------------- */

/* A value tcp.h must reject with TCP_ERR_BAD_HANDLE (never issued). */
static int64_t made_up_handle(void) {
  switch (below(5)) {
    case 0: return 0;
    case 1: return -(int64_t)range(1, (uint64_t)1 << 40);
    case 2: return (int64_t)range(1, 1000); /* generation 0 */
    case 3: return ((int64_t)1 << 32) | 0x7ffffff0; /* a slot far beyond the table */
    default: {
      size_t n = model_socks(); /* a newer generation of a real slot */
      return n ? model_sock(below(n))->handle + ((int64_t)1000 << 32) : 0;
    }
  }
}

static bool fits(const m_sock *s, int want_kind, bool open) {
  return s->closed != open && (want_kind < 0 || (int)s->kind == want_kind);
}

static int64_t random_handle(int want_kind, bool open) {
  size_t n = 0;
  for (size_t i = 0; i < model_socks(); i++) n += fits(model_sock(i), want_kind, open) ? 1 : 0;
  if (n == 0) return made_up_handle();
  size_t k = below(n);
  for (size_t i = 0; i < model_socks(); i++)
    if (fits(model_sock(i), want_kind, open) && k-- == 0) return model_sock(i)->handle;
  return made_up_handle();
}

/* Mostly an open socket of the kind asked for; sometimes one of the other
 * kind, a closed (stale) one or a made-up value. */
static int64_t pick_handle(int want_kind) {
  uint64_t roll = below(100);
  if (roll < 80) return random_handle(want_kind, true);
  if (roll < 88) return random_handle(-1, true);
  if (roll < 95) return random_handle(-1, false);
  return made_up_handle();
}

static size_t open_socks(void) {
  size_t n = 0;
  for (size_t i = 0; i < model_socks(); i++) n += model_sock(i)->closed ? 0 : 1;
  return n;
}

/* The call's return code against the model's; arg is the call's size
 * argument (bytes_max, bytes_len) or 0. */
static void expect_rc(const char *call, int64_t handle, int64_t id, int64_t arg, int64_t rc, int64_t want) {
  sim_trace("call %s(handle %lld, request %lld, %lld) = %lld %s", call, (long long)handle, (long long)id,
            (long long)arg, (long long)rc, h_code_name(rc));
  if (rc != want)
    FAILF("%s(handle %lld) returned %lld (%s), expected %lld (%s)", call, (long long)handle, (long long)rc,
          h_code_name(rc), (long long)want, h_code_name(want));
}

/* ---- the calls --------------------------------------------------------------------------------- */

static int64_t random_port(void) { return P.ports[below(P.nports)]; }

static void do_listen(void) {
  if (open_socks() >= OPEN_SOCKS_MAX) return;
  int64_t port = random_port();
  int64_t h = tcp_listen(port, H_LOOPBACK4, 4, 0, (int32_t)below(17), 1, 0);
  sim_trace("call listen(port %lld) = %lld", (long long)port, (long long)h);
  if (h <= 0) FAILF("tcp_listen returned %lld (%s), os error %d", (long long)h, h_code_name(h), tcp_last_os_error());
  model_add(h, port, M_LISTENER);
  int32_t local = tcp_local_port(h);
  if (local <= 0) FAILF("tcp_local_port of a new listener returned %d (%s)", local, h_code_name(local));
}

static int64_t connect_timeout_ms(void) {
  uint64_t roll = below(10);
  if (roll < 5) return 0;
  if (roll < 6) return -(int64_t)range(1, 100); /* <= 0: no timeout */
  return (int64_t)range(1, 40);
}

/* A bad argument: refused at once, never completes (the tracker fails any
 * completion of an id it was not told about). */
static void do_connect_bad(int64_t port) {
  int64_t id = h_new_id();
  bool zero_port = chance(50);
  int64_t rc = tcp_connect(port, id, H_LOOPBACK4, zero_port ? 4 : 5, zero_port ? 0 : 80, NULL, 0, 0, 0);
  expect_rc("connect with a bad argument", 0, id, 0, rc, TCP_ERR_INVALID_ARGUMENT);
}

static void do_connect(void) {
  int64_t port = random_port();
  if (chance(5)) return do_connect_bad(port);
  if (open_socks() >= OPEN_SOCKS_MAX) return;
  bool v6 = P.ipv6 && chance(15);
  int64_t listener = random_handle(M_LISTENER, true);
  int32_t tcp_port = model_find(listener) ? tcp_local_port(listener) : (int32_t)range(1, 65535);
  int64_t timeout = connect_timeout_ms();
  int64_t id = h_new_id();
  int64_t now = sim_now_ms();
  int64_t h = tcp_connect(port, id, v6 ? H_LOOPBACK6 : H_LOOPBACK4, v6 ? 16 : 4, tcp_port, NULL, 0, 0, timeout);
  sim_trace("call connect(port %lld, request %lld, %s, timeout %lld ms) = %lld", (long long)port, (long long)id,
            v6 ? "::1" : "127.0.0.1", (long long)timeout, (long long)h);
  if (h <= 0) FAILF("tcp_connect returned %lld (%s)", (long long)h, h_code_name(h));
  m_sock *s = model_add(h, port, M_CONN);
  s->connect = MC_PENDING;
  s->connect_timeout_ms = timeout > 0 ? timeout : 0;
  s->connect_deadline_ms = now + s->connect_timeout_ms;
  model_issue(id, s, K_CONNECT);
}

static void do_accept(void) {
  int64_t h = pick_handle(M_LISTENER);
  int64_t want = model_expect_call(h, K_ACCEPT);
  int64_t id = h_new_id();
  expect_rc("accept", h, id, 0, tcp_accept(h, id), want);
  if (want == TCP_OK) model_issue(id, model_find(h), K_ACCEPT);
}

static void do_dial(void) {
  int64_t h = pick_handle(M_LISTENER);
  const m_sock *s = model_find(h);
  bool found = sim_dial(h, (uint32_t)range(1, 2));
  sim_trace("dial listener %lld: %s", (long long)h, found ? "found" : "not found");
  /* A closed listener may still be known to the sim until its release. */
  if (s != NULL && s->kind == M_LISTENER && !s->closed && !found)
    FAILF("sim_dial: open listener %lld unknown", (long long)h);
  if (s == NULL && found) FAILF("sim_dial: made-up handle %lld found", (long long)h);
}

static int64_t read_bytes_max(bool *bad) {
  uint64_t roll = below(100);
  *bad = roll >= 96;
  if (roll < 30) return (int64_t)range(1, 64);
  if (roll < 65) return (int64_t)range(65, TCP_READ_COPY_BYTES_MAX);
  if (roll < 94) return (int64_t)range(TCP_READ_COPY_BYTES_MAX + 1, 70000);
  if (roll < 96) return (int64_t)range(70001, 300000);
  static const int64_t bad_values[] = {0, -1, TCP_READ_BYTES_MAX + 1};
  return bad_values[below(3)];
}

static void do_read(void) {
  int64_t h = pick_handle(M_CONN);
  bool bad = false;
  int64_t bytes_max = read_bytes_max(&bad);
  int64_t want = bad ? TCP_ERR_INVALID_ARGUMENT : model_expect_call(h, K_READ);
  int64_t id = h_new_id();
  expect_rc("read", h, id, bytes_max, tcp_read(h, id, bytes_max), want);
  if (want == TCP_OK) model_issue(id, model_find(h), K_READ)->bytes_max = bytes_max;
}

static int64_t write_len(void) {
  uint64_t roll = below(100);
  if (roll < 10) return 0;
  if (roll < 40) return (int64_t)range(1, 256);
  if (roll < 85) return (int64_t)range(257, 8192);
  return (int64_t)range(8193, WRITE_LEN_MAX);
}

/* Bad arguments (checked before the handle): a NULL buffer with bytes, a
 * negative or oversized length. */
static void do_write_bad(int64_t h) {
  int64_t id = h_new_id();
  uint64_t kind = below(3);
  const uint8_t *bytes = kind == 0 ? NULL : g_write_buf;
  int64_t len = kind == 0 ? 5 : kind == 1 ? -1 : (int64_t)TCP_WRITE_BYTES_MAX + 1;
  expect_rc("write with a bad argument", h, id, len, tcp_write(h, id, bytes, len), TCP_ERR_INVALID_ARGUMENT);
}

static void do_write(void) {
  int64_t h = pick_handle(M_CONN);
  if (chance(4)) return do_write_bad(h);
  m_sock *s = model_find(h);
  int64_t len = write_len();
  if (s != NULL) byte_stream_fill(s->profile.write_seed, s->write_offset, g_write_buf, (size_t)len);
  int64_t want = model_expect_call(h, K_WRITE);
  int64_t id = h_new_id();
  expect_rc("write", h, id, len, tcp_write(h, id, len ? g_write_buf : NULL, len), want);
  if (want != TCP_OK) return;
  bool connected = s->connect == MC_OK || s->connect == MC_ACCEPTED;
  m_op *op = model_issue(id, s, K_WRITE);
  op->write_offset = s->write_offset;
  op->write_len = (uint64_t)len;
  /* A zero-length write with nothing ahead of it ends inside tcp_write with 0:
   * a close right after it does not change that. */
  op->ended_at_once = len == 0 && connected && s->writes_in_core == 0;
  if (!op->ended_at_once) s->writes_in_core++;
  s->write_offset += (uint64_t)len;
}

static void do_shutdown_write(void) {
  int64_t h = pick_handle(M_CONN);
  int64_t want = model_expect_call(h, K_SHUTW);
  int64_t id = h_new_id();
  expect_rc("shutdown_write", h, id, 0, tcp_shutdown_write(h, id), want);
  if (want != TCP_OK) return;
  model_issue(id, model_find(h), K_SHUTW);
  model_find(h)->writes_in_core++;
}

static void mark_closed(m_sock *s) {
  s->closed = true;
  s->close_reason = TCP_ERR_CLOSED;
}

static void do_close(void) {
  int64_t h = pick_handle(chance(50) ? M_CONN : M_LISTENER);
  int64_t want = model_expect_call(h, K_CLOSE);
  int64_t id = h_new_id();
  expect_rc("close", h, id, 0, tcp_close(h, id), want);
  if (want != TCP_OK) return;
  m_sock *s = model_find(h);
  mark_closed(s);
  model_issue(id, s, K_CLOSE);
}

/* Closes like tcp_close without a completion of its own; a stale or made-up
 * token must do nothing (the model then expects the socket still open). */
static void do_finalize(void) {
  int64_t h = pick_handle(chance(50) ? M_CONN : M_LISTENER);
  tcp_close_finalizer((void *)(intptr_t)h);
  sim_trace("call close_finalizer(handle %lld)", (long long)h);
  m_sock *s = model_find(h);
  if (s != NULL && !s->closed) mark_closed(s);
}

/* The synchronous accessors see the same handle rules. */
static void do_accessor(void) {
  int64_t h = pick_handle(M_CONN);
  int64_t want = model_expect_call(h, 0);
  expect_rc("set_no_delay", h, 0, 1, tcp_set_no_delay(h, 1), want);
  if (want == TCP_OK) expect_rc("get_no_delay", h, 0, 0, tcp_get_no_delay(h), 1);
  int64_t l = pick_handle(M_LISTENER);
  int32_t port = tcp_local_port(l);
  const m_sock *s = model_find(l);
  sim_trace("call local_port(handle %lld) = %s", (long long)l, port > 0 ? "a port" : h_code_name(port));
  if (s == NULL && port != TCP_ERR_BAD_HANDLE) FAILF("tcp_local_port(made-up %lld) = %d", (long long)l, port);
  if (s != NULL && s->closed && port != TCP_ERR_CLOSED) FAILF("tcp_local_port(closed %lld) = %d", (long long)l, port);
  if (s != NULL && !s->closed && s->kind == M_LISTENER && port <= 0)
    FAILF("tcp_local_port(listener %lld) = %d", (long long)l, port);
}

/* ---- read streams ------------------------------------------------------------------------------- */

static int64_t stream_window(bool *bad) {
  uint64_t roll = below(100);
  *bad = roll >= 95;
  if (*bad) {
    static const int64_t bad_values[] = {0, -1, TCP_READ_BYTES_MAX + 1};
    return bad_values[below(3)];
  }
  return roll < 40 ? (int64_t)range(1, 512) : (int64_t)range(513, 70000);
}

static void do_stream(void) {
  int64_t h = pick_handle(M_CONN);
  bool bad = false;
  int64_t window = stream_window(&bad);
  int64_t want = model_expect_stream(h, window);
  int64_t id = h_new_id();
  expect_rc("read_stream", h, id, window, tcp_read_stream(h, id, window), want);
  if (want != TCP_OK) return;
  m_sock *s = model_find(h);
  model_stream_started(s, model_issue(id, s, K_STREAM), window);
}

/* Mostly a connection whose stream runs: ack and stop act on streams. */
static int64_t pick_streaming(void) {
  size_t n = 0;
  for (size_t i = 0; i < model_socks(); i++) n += model_sock(i)->stream != NULL ? 1 : 0;
  if (n == 0 || chance(25)) return pick_handle(M_CONN);
  size_t k = below(n);
  for (size_t i = 0; i < model_socks(); i++)
    if (model_sock(i)->stream != NULL && k-- == 0) return model_sock(i)->handle;
  return pick_handle(M_CONN);
}

static void do_ack(void) {
  int64_t h = pick_streaming();
  m_sock *s = model_find(h);
  int64_t unacked = s != NULL ? s->stream_posted - s->stream_acked : 0;
  int64_t bytes = unacked > 0 && chance(90) ? (int64_t)range(1, (uint64_t)unacked) : chance(50) ? 0 : unacked + 1;
  int64_t want = model_expect_ack(h, bytes);
  expect_rc("read_stream_ack", h, 0, bytes, tcp_read_stream_ack(h, bytes), want);
  if (want == TCP_OK) model_stream_acked(s, bytes);
}

static void do_stop(void) {
  int64_t h = pick_streaming();
  int64_t want = model_expect_stop(h);
  expect_rc("read_stream_stop", h, 0, 0, tcp_read_stream_stop(h), want);
  if (want == TCP_OK) model_stream_stopped(model_find(h));
}

/* The liveness phase consumes what streams posted, as a listening Dart
 * subscription would: a window that stays full must not stall them. */
static void ack_all_streams(void) {
  for (size_t i = 0; i < model_socks(); i++) {
    m_sock *s = model_sock(i);
    int64_t unacked = s->stream != NULL && !s->stream_stopping && !s->closed ? s->stream_posted - s->stream_acked : 0;
    if (unacked <= 0) continue;
    expect_rc("read_stream_ack", s->handle, 0, unacked, tcp_read_stream_ack(s->handle, unacked), TCP_OK);
    model_stream_acked(s, unacked);
  }
}

/* Before the liveness phase: a stream whose peer ends far beyond what its
 * window lets through in a few hundred passes (a 1-byte window, 20,000 bytes
 * to go) is stopped, so that liveness checks the stop instead of spending
 * tens of thousands of passes; so is half the streams of endless peers (the
 * other half runs into tcp_shutdown). */
#define STREAM_WINDOWS_TO_END_MAX 16

static bool stream_runs_long(const m_sock *s) {
  const sim_profile *p = &s->profile;
  if (p->read_end == SIM_READ_ENDLESS) return chance(50);
  uint64_t left = p->read_end_offset > s->read_offset ? p->read_end_offset - s->read_offset : 0;
  return left > (uint64_t)s->stream_window * STREAM_WINDOWS_TO_END_MAX;
}

static void stop_long_streams(void) {
  for (size_t i = 0; i < model_socks(); i++) {
    m_sock *s = model_sock(i);
    if (s->stream == NULL || s->stream_stopping || s->closed || !stream_runs_long(s)) continue;
    expect_rc("read_stream_stop", s->handle, 0, 0, tcp_read_stream_stop(s->handle), TCP_OK);
    model_stream_stopped(s);
  }
}

static void do_steps(void) {
  for (uint64_t n = range(1, 3); n > 0; n--) step();
}

/* ---- the phases ----------------------------------------------------------------------------------- */

static action pick_action(void) {
  uint32_t total = 0;
  for (int a = 0; a < A_COUNT; a++) total += P.weights[a];
  uint64_t roll = below(total);
  for (int a = 0; a < A_COUNT; a++) {
    if (roll < P.weights[a]) return (action)a;
    roll -= P.weights[a];
  }
  return A_STEP;
}

static void run_action(action a) {
  P.calls += a == A_STEP || a == A_DIAL ? 0 : 1;
  switch (a) {
    case A_LISTEN: return do_listen();
    case A_CONNECT: return do_connect();
    case A_ACCEPT: return do_accept();
    case A_DIAL: return do_dial();
    case A_READ: return do_read();
    case A_WRITE: return do_write();
    case A_SHUTW: return do_shutdown_write();
    case A_CLOSE: return do_close();
    case A_FINALIZE: return do_finalize();
    case A_ACCESSOR: return do_accessor();
    case A_STREAM: return do_stream();
    case A_ACK: return do_ack();
    case A_STOP: return do_stop();
    default: return do_steps();
  }
}

static void choose_weights(void) {
  for (int a = 0; a < A_COUNT; a++) P.weights[a] = (uint32_t)below(11);
  P.weights[A_LISTEN] += 2;
  P.weights[A_CONNECT] += 2;
  P.weights[A_READ] += 3;
  P.weights[A_WRITE] += 3;
  P.weights[A_FINALIZE] /= 3; /* rare in real programs: only the GC calls it */
  P.step_pct = (uint32_t)range(10, 70);
}

static void run_program(void) {
  for (uint64_t n = range(CALLS_MIN, CALLS_MAX); n > 0; n--) {
    run_action(pick_action());
    if (chance(P.step_pct)) do_steps();
  }
}

static void liveness(void) {
  sim_spontaneous_dials(false);
  stop_long_streams();
  for (size_t i = 0; i < model_socks(); i++) {
    const m_sock *s = model_sock(i);
    uint32_t waiting = model_accepts_waiting(s);
    if (waiting > 0 && !sim_dial(s->handle, waiting))
      FAILF("sim_dial: open listener %lld unknown", (long long)s->handle);
  }
  for (uint64_t i = 0;; i++) {
    const m_op *op;
    const m_sock *s;
    size_t left = model_must_complete(&op, &s);
    if (left == 0) return;
    ack_all_streams();
    if (i == LIVENESS_STEPS_MAX) {
      static const char *const kinds[K_STREAM + 1] = {"?",     "connect",        "accept", "read",
                                                      "write", "shutdown_write", "close",  "read_stream"};
      FAILF("liveness: %zu request(s) still pending after %d steps with nothing new to do; the oldest of "
            "handle %lld: %s %lld",
            left, LIVENESS_STEPS_MAX, (long long)s->handle, op ? kinds[op->kind] : "?", op ? (long long)op->id : -1LL);
    }
    step();
  }
}

static void shut_down(void) {
  step(); /* the I/O thread waits in poll with no wake pending: tcp_shutdown's wake ends the lockstep */
  sim_free_run();
  model_shutdown();
  h_engine_shutdown();
  model_drain(P.ports, P.nports);
  check_sim();
  for (size_t i = 0; i < model_socks(); i++)
    if (model_sock(i)->requests_out != 0)
      FAILF("handle %lld: %u request(s) never completed, not even at tcp_shutdown", (long long)model_sock(i)->handle,
            model_sock(i)->requests_out);
  if (sim_socks_live() != 0)
    FAILF("%llu sim socket record(s) left after tcp_shutdown", (unsigned long long)sim_socks_live());
}

/* After the body: a failed check leaves the sim in step mode, so let
 * tcp_shutdown through, and say why the seed failed before the teardown runs
 * (a broken engine may hang there). */
static void after_body(void) {
  const char *why = h_failure();
  if (why != NULL) {
    P.failure_hash = sim_trace_hash();
    P.failure_events = sim_trace_events();
  }
  if (why != NULL && P.on_failure != NULL) {
    sim_seed_outcome early;
    memset(&early, 0, sizeof early);
    snprintf(early.message, sizeof early.message, "%s", why);
    early.trace_hash = early.failure_hash = P.failure_hash;
    early.trace_events = early.failure_events = P.failure_events;
    P.on_failure(&early);
  }
  if (tcp_backend_name() != NULL) sim_free_run_now();
}

static void seed_body(void) {
  h_after_body(after_body);
  const char *name = tcp_backend_name();
  if (name == NULL || strcmp(name, "sim") != 0) FAILF("the engine runs backend %s, not sim", name ? name : "(none)");
  sim_sync();
  P.nports = (size_t)range(1, PORTS_MAX);
  for (size_t i = 0; i < P.nports; i++) P.ports[i] = h_port();
  choose_weights();
  run_program();
  liveness();
  shut_down();
}

/* ---- one seed ---------------------------------------------------------------------------------------- */

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  int n = 0;
  while (readdir(d) != NULL) n++;
  closedir(d);
  return n;
}

sim_seed_outcome sim_run_seed(uint64_t seed, bool trace) {
  sim_seed_outcome out;
  memset(&out, 0, sizeof out);
  bool ipv6 = P.ipv6;
  void (*on_failure)(const sim_seed_outcome *) = P.on_failure;
  memset(&P, 0, sizeof P);
  P.ipv6 = ipv6;
  P.on_failure = on_failure;
  P.seed = seed;
  P.rng.counter = byte_stream_mix64(seed ^ 0x9a0c5a11u);
  sim_configure(seed);
  sim_report_reset();
  sim_trace_start(trace);
  model_reset(seed);
  int fds_before = open_fds();
  h_outcome result = h_run_test(seed_body, out.message, sizeof out.message);
  int fds_after = open_fds();
  out.final = true;
  out.passed = result == H_PASS;
  if (out.passed && fds_after != fds_before) {
    out.passed = false;
    snprintf(out.message, sizeof out.message, "%d file descriptor(s) open before the seed, %d after", fds_before,
             fds_after);
  }
  out.trace_hash = sim_trace_hash();
  out.trace_events = sim_trace_events();
  out.failure_hash = P.failure_hash;
  out.failure_events = P.failure_events;
  out.calls = P.calls;
  out.steps = P.steps;
  model_stats stats = model_stats_get();
  out.completions = stats.completions;
  memcpy(out.outcomes, stats.outcomes, sizeof out.outcomes);
  sim_counters(out.sim_counters);
  model_reset(0);
  return out;
}
