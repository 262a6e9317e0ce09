/*
 * stress_cancel_backlog.c -- closes racing completing reads, queued writes and
 * pending accepts, with exactly-once checks on every request (issue 16, item 1:
 * "a cancel waiting in the backlog outlives its op").
 *
 *   stress_cancel_backlog            run STRESS_ITERATIONS rounds
 *
 * A round starts a fresh engine, connects STRESS_PAIRS loopback pairs and keeps
 * reads pending on both ends of each (re-issued as they complete). Several
 * writer threads then write self-describing records (header + a pattern of
 * their writer id and sequence number) to random ends, each keeping a window of
 * writes in flight, while a closer thread closes ends in the middle of the
 * traffic: right after feeding the end's peer a record (so that the end's
 * pending read completes as its close cancels it), after a random spin, gated on
 * how many writes have completed. Writers close ends too. Some rounds add an
 * accept storm (a listener with pending accepts, closed while connects arrive)
 * and a "ballast": thousands of reads queued on one connection and failed by
 * its close at once, which fills the engine's pool of idle ops so that later
 * ops are freed instead of pooled (a use-after-free then shows under ASan). The
 * round ends with tcp_shutdown.
 *
 * On io_uring with ZIG_TCP_URING_ENTRIES=2 the SQ is full most of the time, so
 * cancels wait in the backlog while the ops they target complete: the race of
 * item 1. The program itself is backend-agnostic (only tcp.h and the fake VM).
 *
 * Checked on every request: each call the engine accepted completes exactly
 * once, on the port of its socket, with a result and payload of the right shape
 * (TCP_ERR_CLOSED only once the test closed that socket, TCP_ERR_SHUTDOWN only
 * after tcp_shutdown began); a refused call never completes; a close completes
 * after every op of its socket; each receiving end sees a stream of whole,
 * uncorrupted records, each writer's in increasing order (a write sent twice or
 * lost from the middle shows here); tcp_shutdown returns. Every wait is bounded
 * (STRESS_TIMEOUT_MS without any completion counts as a hang: the round fails
 * with a list of what is outstanding); a watchdog ends the process with the
 * summary if a call into the engine itself never returns.
 *
 * Environment (all optional):
 *   STRESS_SEED=N         seed of the operation program (default 1); printed, and
 *                         the same seed replays the same program (thread timing
 *                         still varies from run to run)
 *   STRESS_ITERATIONS=N   rounds (default 30)
 *   STRESS_WRITERS=N      writer threads (default 4)
 *   STRESS_PAIRS=N        connection pairs per round (default 6)
 *   STRESS_WRITES=N       writes per writer per round (default 96)
 *   STRESS_WRITE_SIZES=   mixed (default) | tiny (16..64 bytes) | large (64 KiB)
 *   STRESS_BALLAST=N      reads queued on the ballast connection (default 6000;
 *                         0: no ballast)
 *   STRESS_BALLAST_PERCENT=P  percent of rounds with a ballast (default 40)
 *   STRESS_STORM=P        percent of rounds with an accept storm (default 40)
 *   STRESS_TIMEOUT_MS=N   bound on every wait (default 10000)
 *   STRESS_VERBOSE=1      one line of figures per round
 * Prints "N passed, N failed" last (N = rounds); exits 1 if any failed.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_dart.h"
#include "tcp.h"

#define WRITERS_MAX 32
#define PAIRS_MAX 128
#define STORM_ACCEPTS_MAX 8
#define STORM_CONNECTS_MAX 12
/* pairs, the ballast pair, two listeners, the storm's clients */
#define CONNS_MAX (2 * PAIRS_MAX + 2 + 2 + STORM_CONNECTS_MAX)
#define STEPS_MAX 100000
#define CLOSER_STEPS_MAX (2 * PAIRS_MAX + 2)
#define RECORD_HEADER_BYTES 16
#define RECORD_MAGIC 0x5a7cb10cu
#define LARGE_RECORD_BYTES (64 * 1024)
#define TINY_BODY_MAX 48
#define ID_BASE ((int64_t)1 << 40) /* ids above 32 bits: they must survive the trip */
#define REQS_PER_CHUNK 4096
#define REQ_CHUNKS_MAX 4096
#define BATCH_MAX 64
#define COLLECTOR_POLL_MS 20
#define FAILURES_PRINTED_MAX 8

static const uint8_t LOOPBACK4[4] = {127, 0, 0, 1};

/* ======================================================================== */
/* configuration                                                             */
/* ======================================================================== */
enum { SIZES_MIXED, SIZES_TINY, SIZES_LARGE };

static struct {
  uint64_t seed;
  int iterations, writers, pairs, writes, ballast_reads, ballast_percent, storm_percent, sizes;
  int64_t timeout_ms;
  bool verbose;
} C;

static int64_t env_int(const char *name, int64_t fallback, int64_t min, int64_t max) {
  const char *text = getenv(name);
  if (text == NULL || text[0] == '\0') return fallback;
  char *end = NULL;
  long long value = strtoll(text, &end, 10);
  if (*end != '\0' || value < min || value > max) {
    fprintf(stderr, "%s=%s: expected an integer in %lld..%lld\n", name, text, (long long)min,
            (long long)max);
    exit(2);
  }
  return value;
}

static const char *sizes_name(int sizes) {
  return sizes == SIZES_TINY ? "tiny" : sizes == SIZES_LARGE ? "large" : "mixed";
}

static void config_load(void) {
  C.seed = (uint64_t)env_int("STRESS_SEED", 1, 0, INT64_MAX);
  C.iterations = (int)env_int("STRESS_ITERATIONS", 30, 1, 1000000);
  C.writers = (int)env_int("STRESS_WRITERS", 4, 1, WRITERS_MAX);
  C.pairs = (int)env_int("STRESS_PAIRS", 6, 1, PAIRS_MAX);
  C.writes = (int)env_int("STRESS_WRITES", 96, 1, STEPS_MAX);
  C.ballast_reads = (int)env_int("STRESS_BALLAST", 6000, 0, 200000);
  C.ballast_percent = (int)env_int("STRESS_BALLAST_PERCENT", 40, 0, 100);
  C.storm_percent = (int)env_int("STRESS_STORM", 40, 0, 100);
  C.timeout_ms = env_int("STRESS_TIMEOUT_MS", 10000, 100, 3600000);
  C.verbose = env_int("STRESS_VERBOSE", 0, 0, 1) != 0;
  const char *sizes = getenv("STRESS_WRITE_SIZES");
  if (sizes == NULL || sizes[0] == '\0' || strcmp(sizes, "mixed") == 0) C.sizes = SIZES_MIXED;
  else if (strcmp(sizes, "tiny") == 0) C.sizes = SIZES_TINY;
  else if (strcmp(sizes, "large") == 0) C.sizes = SIZES_LARGE;
  else {
    fprintf(stderr, "STRESS_WRITE_SIZES=%s: expected mixed, tiny or large\n", sizes);
    exit(2);
  }
}

/* ======================================================================== */
/* small helpers: random numbers, clocks, failures                           */
/* ======================================================================== */
typedef struct rng {
  uint64_t state;
} rng;

static uint64_t rng_next(rng *r) { /* splitmix64 */
  uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static uint32_t rng_below(rng *r, uint32_t n) { return n == 0 ? 0 : (uint32_t)(rng_next(r) % n); }
static bool rng_chance(rng *r, uint32_t percent) { return rng_below(r, 100) < percent; }

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec timespec_at(int64_t deadline_ms) {
  struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000L};
  return ts;
}

static void cond_init_monotonic(pthread_cond_t *cond) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(cond, &attr);
  pthread_condattr_destroy(&attr);
}

static const char *code_name(int64_t code) {
  switch (code) {
#define N(c) \
  case c: return #c;
    N(TCP_ERR_INVALID_ARGUMENT) N(TCP_ERR_BAD_HANDLE) N(TCP_ERR_CLOSED) N(TCP_ERR_NOT_INITIALIZED)
    N(TCP_ERR_SHUTDOWN) N(TCP_ERR_NO_MEMORY) N(TCP_ERR_UNSUPPORTED) N(TCP_ERR_DART_API)
    N(TCP_ERR_ADDRESS_IN_USE) N(TCP_ERR_ADDRESS_NOT_AVAILABLE) N(TCP_ERR_CONNECTION_REFUSED)
    N(TCP_ERR_CONNECTION_RESET) N(TCP_ERR_CONNECTION_ABORTED) N(TCP_ERR_TIMED_OUT)
    N(TCP_ERR_NETWORK_UNREACHABLE) N(TCP_ERR_HOST_UNREACHABLE) N(TCP_ERR_BROKEN_PIPE)
    N(TCP_ERR_ACCESS_DENIED) N(TCP_ERR_TOO_MANY_FILES) N(TCP_ERR_NOT_CONNECTED)
    N(TCP_ERR_ADDRESS_FAMILY) N(TCP_ERR_OS)
#undef N
    default: return code < 0 ? "unknown error" : "ok";
  }
}

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int round_failures;
static int current_round;
static int rounds_passed, rounds_failed;

/* Any thread: counts a failure of the current round and prints the first few. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  int n = atomic_fetch_add(&round_failures, 1) + 1;
  if (n > FAILURES_PRINTED_MAX) return;
  char text[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&print_lock);
  printf("round %d (STRESS_SEED=%" PRIu64 "): FAIL: %s\n", current_round, C.seed, text);
  if (n == FAILURES_PRINTED_MAX) printf("round %d: (further failures not printed)\n", current_round);
  pthread_mutex_unlock(&print_lock);
}

/* ======================================================================== */
/* records: what writers send, checked byte for byte by the receiving end     */
/* ======================================================================== */
/* header: magic u32, writer u16, ~writer u16, seq u32, body_len u32 (host order) */
static uint32_t record_key(uint32_t writer, uint32_t seq) {
  uint32_t x = writer * 0x01000193u ^ seq * 0x9e3779b9u;
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  return x ^ (x >> 13);
}

static uint8_t body_byte(uint32_t key, uint32_t index) {
  uint32_t x = key + index * 0x9e3779b1u;
  return (uint8_t)(x ^ (x >> 15) ^ (index >> 8));
}

/* Writes a record of body_len bytes into out; returns its total length. */
static size_t record_build(uint8_t *out, uint32_t writer, uint32_t seq, uint32_t body_len) {
  uint32_t magic = RECORD_MAGIC;
  uint16_t w = (uint16_t)writer, not_w = (uint16_t)~writer;
  memcpy(out, &magic, 4);
  memcpy(out + 4, &w, 2);
  memcpy(out + 6, &not_w, 2);
  memcpy(out + 8, &seq, 4);
  memcpy(out + 12, &body_len, 4);
  uint32_t key = record_key(writer, seq);
  for (uint32_t i = 0; i < body_len; i++) out[RECORD_HEADER_BYTES + i] = body_byte(key, i);
  return RECORD_HEADER_BYTES + body_len;
}

/* The receiving side of one connection end: a stream parser. Only the collector
 * of the end's port touches it. */
typedef struct rx_parser {
  uint8_t header[RECORD_HEADER_BYTES];
  uint32_t header_have;
  uint32_t writer, seq, body_len, body_have, key;
  uint32_t last_seq[WRITERS_MAX + 1]; /* per writer: the last record seen */
  uint64_t offset;                    /* bytes of the stream seen so far */
  uint64_t records;
  bool broken;                        /* a failure was reported: stop checking */
} rx_parser;

static void rx_start_record(rx_parser *rx, int conn) {
  uint32_t magic, seq, body_len;
  uint16_t w, not_w;
  memcpy(&magic, rx->header, 4);
  memcpy(&w, rx->header + 4, 2);
  memcpy(&not_w, rx->header + 6, 2);
  memcpy(&seq, rx->header + 8, 4);
  memcpy(&body_len, rx->header + 12, 4);
  uint64_t at = rx->offset - RECORD_HEADER_BYTES;
  uint16_t want_not_w = (uint16_t)~w;
  if (magic != RECORD_MAGIC || want_not_w != not_w || w > C.writers ||
      body_len > LARGE_RECORD_BYTES - RECORD_HEADER_BYTES) {
    fail("conn %d: no record header at stream offset %" PRIu64 " (magic %08x, writer %u/%u, body %u)",
         conn, at, magic, w, (uint16_t)~not_w, body_len);
    rx->broken = true;
    return;
  }
  if (seq <= rx->last_seq[w]) {
    fail("conn %d: record of writer %u seq %u at offset %" PRIu64 " after seq %u: sent twice or reordered",
         conn, w, seq, at, rx->last_seq[w]);
    rx->broken = true;
    return;
  }
  rx->last_seq[w] = seq;
  rx->writer = w;
  rx->seq = seq;
  rx->body_len = body_len;
  rx->body_have = 0;
  rx->key = record_key(w, seq);
  rx->records++;
  if (body_len == 0) rx->header_have = 0;
}

static size_t rx_body(rx_parser *rx, int conn, const uint8_t *p, size_t n) {
  size_t take = rx->body_len - rx->body_have;
  if (take > n) take = n;
  for (size_t i = 0; i < take; i++) {
    uint8_t want = body_byte(rx->key, rx->body_have + (uint32_t)i);
    if (p[i] != want) {
      fail("conn %d: writer %u seq %u byte %zu is %02x, expected %02x (stream offset %" PRIu64 ")", conn,
           rx->writer, rx->seq, rx->body_have + i, p[i], want, rx->offset + i);
      rx->broken = true;
      return take;
    }
  }
  rx->body_have += (uint32_t)take;
  rx->offset += take;
  if (rx->body_have == rx->body_len) rx->header_have = 0;
  return take;
}

static void rx_feed(rx_parser *rx, int conn, const uint8_t *p, size_t n) {
  while (n > 0 && !rx->broken) {
    if (rx->header_have < RECORD_HEADER_BYTES) {
      size_t take = RECORD_HEADER_BYTES - rx->header_have;
      if (take > n) take = n;
      memcpy(rx->header + rx->header_have, p, take);
      rx->header_have += (uint32_t)take;
      rx->offset += take;
      p += take;
      n -= take;
      if (rx->header_have == RECORD_HEADER_BYTES) rx_start_record(rx, conn);
      continue;
    }
    size_t used = rx_body(rx, conn, p, n);
    p += used;
    n -= used;
  }
}

/* ======================================================================== */
/* tracker: every request and every connection end of the round               */
/* ======================================================================== */
typedef enum req_kind { K_CONNECT = 1, K_ACCEPT, K_READ, K_WRITE, K_CLOSE } req_kind;
typedef enum req_state { ST_CALLING = 1, ST_ACCEPTED, ST_REFUSED } req_state;

static const char *kind_name(int kind) {
  static const char *names[] = {"?", "connect", "accept", "read", "write", "close"};
  return kind >= K_CONNECT && kind <= K_CLOSE ? names[kind] : "?";
}

typedef struct request {
  uint8_t kind, state, completions;
  int16_t writer; /* write: the writer thread (C.writers = the closer); else -1 */
  int32_t conn;   /* the socket the request is on (a listener for accepts) */
  int64_t port;   /* where its completion must arrive */
  int64_t len;    /* write: bytes; read: bytes_max */
  uint32_t order; /* write: its writer's record seq (the writer's call order) */
  int64_t result;
  uint64_t seq;   /* arrival order (fake VM, across ports) */
} request;

typedef struct conn {
  int64_t handle;
  int64_t port;       /* the port its completions go to */
  int32_t read_bytes; /* bytes_max of its reads */
  bool listener;
  bool reads_renewed; /* a read that returned data is followed by a new one */
  bool closing;       /* set before tcp_close: from then on TCP_ERR_CLOSED is valid */
  int64_t close_id;   /* its close request (0: the test never closed it) */
  int32_t reads_pending;
  int32_t accepts_done;
  uint32_t last_write_done[WRITERS_MAX + 1]; /* per writer: order of its last completed write */
  rx_parser rx;
} conn;

/* tracker_lock guards T; tracker_progress is broadcast on every completion,
 * refusal and writer exit. */
static pthread_mutex_t tracker_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tracker_progress;

static struct {
  request *chunks[REQ_CHUNKS_MAX];
  uint32_t count;
  conn conns[CONNS_MAX];
  int nconns;
  bool shutdown_started;
  int writers_running;
  int64_t nonread_pending; /* accepted (or in the call) requests other than reads, not completed */
  int64_t writes_completed, writes_pending;
  int32_t writer_pending[WRITERS_MAX + 1];
  uint64_t completions;
  uint64_t read_bytes, reads_done, closed_results, refusals;
} T;

static request *req_at(uint32_t index) { return &T.chunks[index / REQS_PER_CHUNK][index % REQS_PER_CHUNK]; }

static void tracker_reset(void) {
  for (uint32_t c = 0; c < REQ_CHUNKS_MAX && T.chunks[c] != NULL; c++) {
    free(T.chunks[c]);
    T.chunks[c] = NULL;
  }
  memset(&T, 0, sizeof T);
}

/* Lock held. A new connection end (handle set by the caller). */
static int conn_add(int64_t handle, int64_t port, bool listener) {
  if (T.nconns >= CONNS_MAX) {
    fprintf(stderr, "stress: more than %d sockets in a round\n", CONNS_MAX);
    exit(2);
  }
  conn *cn = &T.conns[T.nconns];
  memset(cn, 0, sizeof *cn);
  cn->handle = handle;
  cn->port = port;
  cn->listener = listener;
  return T.nconns++;
}

/* Lock held. Registers a request before its call (its completion may arrive
 * before the call returns). Returns its id. */
static int64_t request_begin(req_kind kind, int conn, int64_t len, int writer, uint32_t order) {
  uint32_t index = T.count;
  if (index / REQS_PER_CHUNK >= REQ_CHUNKS_MAX) {
    fprintf(stderr, "stress: more than %d requests in a round\n", REQ_CHUNKS_MAX * REQS_PER_CHUNK);
    exit(2);
  }
  request **chunk = &T.chunks[index / REQS_PER_CHUNK];
  if (*chunk == NULL && (*chunk = calloc(REQS_PER_CHUNK, sizeof(request))) == NULL) {
    fprintf(stderr, "stress: out of memory\n");
    exit(2);
  }
  T.count++;
  request *r = req_at(index);
  *r = (request){.kind = (uint8_t)kind, .state = ST_CALLING, .writer = (int16_t)writer, .conn = conn,
                 .port = T.conns[conn].port, .len = len, .order = order};
  if (kind == K_READ) T.conns[conn].reads_pending++;
  else T.nonread_pending++;
  if (kind == K_WRITE) {
    T.writes_pending++;
    T.writer_pending[writer]++;
  }
  return ID_BASE + index;
}

/* Lock held. The request will never complete (refused), or has completed. */
static void request_settle(request *r) {
  if (r->kind == K_READ) T.conns[r->conn].reads_pending--;
  else T.nonread_pending--;
  if (r->kind == K_WRITE) {
    T.writes_pending--;
    T.writer_pending[r->writer]--;
  }
}

/* Lock held: may the call have been refused with rc? */
static bool refusal_allowed(const request *r, int64_t rc) {
  if (rc == TCP_ERR_SHUTDOWN || rc == TCP_ERR_NOT_INITIALIZED) return T.shutdown_started;
  if (rc == TCP_ERR_CLOSED) return r->kind != K_CLOSE && T.conns[r->conn].closing;
  return false;
}

/* Every returned call and every completion counts (see the watchdog). */
static atomic_uint_fast64_t progress_ticks;

/* The call of id returned rc (>= 0: accepted). */
static void request_end(int64_t id, int64_t rc) {
  atomic_fetch_add(&progress_ticks, 1);
  pthread_mutex_lock(&tracker_lock);
  request *r = req_at((uint32_t)(id - ID_BASE));
  if (rc >= 0) {
    r->state = ST_ACCEPTED;
  } else {
    r->state = ST_REFUSED;
    T.refusals++;
    if (!refusal_allowed(r, rc))
      fail("tcp_%s on conn %d refused with %" PRId64 " (%s)", kind_name(r->kind), r->conn, rc, code_name(rc));
    if (r->completions > 0)
      fail("refused tcp_%s (id %" PRId64 ") completed nonetheless", kind_name(r->kind), id);
    else request_settle(r);
    pthread_cond_broadcast(&tracker_progress);
  }
  pthread_mutex_unlock(&tracker_lock);
}

/* ======================================================================== */
/* completions                                                               */
/* ======================================================================== */
/* Lock held: is result a valid outcome of r? */
static bool result_allowed(const request *r, int64_t result) {
  const conn *cn = &T.conns[r->conn];
  if (r->kind == K_CLOSE) return result == 0; /* also at shutdown: tcp.h */
  if (result == TCP_ERR_CLOSED) return cn->closing;
  if (result == TCP_ERR_SHUTDOWN) return T.shutdown_started;
  switch (r->kind) {
    case K_READ: return result >= 0 ? result <= r->len : result == TCP_ERR_CONNECTION_RESET;
    case K_WRITE:
      return result == r->len || result == TCP_ERR_CONNECTION_RESET || result == TCP_ERR_BROKEN_PIPE;
    case K_CONNECT:
      return result == 0 || result == TCP_ERR_CONNECTION_REFUSED || result == TCP_ERR_CONNECTION_RESET;
    case K_ACCEPT: return result > 0;
    default: return false;
  }
}

/* Lock held: does the payload have the shape tcp.h gives it? */
static bool payload_ok(const request *r, const fd_completion *c) {
  if (c->result < 0) return c->payload_kind == FD_PAYLOAD_INT;
  if (r->kind == K_READ && c->result > 0)
    return c->payload_kind == FD_PAYLOAD_BYTES && c->len == (size_t)c->result &&
           c->data_type == DART_TYPED_DATA_UINT8;
  return c->payload_kind == FD_PAYLOAD_NULL;
}

/* Lock held. Records one completion; returns the request, or NULL if it must
 * not be looked at further (unknown id, second completion). */
static request *completion_record(const fd_completion *c) {
  int64_t index = c->request_id - ID_BASE;
  if (index < 0 || index >= (int64_t)T.count) {
    fail("completion for unknown request id %" PRId64 " on port %" PRId64, c->request_id, c->port);
    return NULL;
  }
  request *r = req_at((uint32_t)index);
  if (r->completions++ > 0) {
    fail("%s on conn %d (id %" PRId64 ") completed twice: first %" PRId64 " (%s), again %" PRId64 " (%s)",
         kind_name(r->kind), r->conn, c->request_id, r->result, code_name(r->result), c->result,
         code_name(c->result));
    return NULL;
  }
  if (r->state == ST_REFUSED) fail("refused %s (id %" PRId64 ") completed", kind_name(r->kind), c->request_id);
  if (c->port != r->port)
    fail("%s on conn %d completed on port %" PRId64 ", its socket's port is %" PRId64, kind_name(r->kind),
         r->conn, c->port, r->port);
  if (!result_allowed(r, c->result))
    fail("%s on conn %d (len %" PRId64 ") completed with %" PRId64 " (%s, OS error %" PRId64 ")%s",
         kind_name(r->kind), r->conn, r->len, c->result, code_name(c->result),
         c->payload_kind == FD_PAYLOAD_INT ? c->payload_int : 0,
         T.conns[r->conn].closing ? "" : "; the test never closed it");
  if (!payload_ok(r, c))
    fail("%s on conn %d: result %" PRId64 " came with payload kind %d (%zu bytes)", kind_name(r->kind),
         r->conn, c->result, (int)c->payload_kind, c->len);
  r->result = c->result;
  r->seq = c->seq;
  if (r->state != ST_REFUSED) request_settle(r);
  return r;
}

/* Lock held: counters and follow-ups of one recorded completion. Returns true
 * when a new read must be issued on the request's socket. */
static bool completion_account(const request *r) {
  conn *cn = &T.conns[r->conn];
  T.completions++;
  if (r->result == TCP_ERR_CLOSED) T.closed_results++;
  switch (r->kind) {
    case K_WRITE:
      T.writes_completed++;
      if (r->order <= cn->last_write_done[r->writer])
        fail("write %u of writer %d on conn %d completed after its write %u: not in call order", r->order,
             r->writer, r->conn, cn->last_write_done[r->writer]);
      cn->last_write_done[r->writer] = r->order;
      return false;
    case K_ACCEPT:
      if (r->result > 0) cn->accepts_done++;
      return false;
    case K_READ:
      T.reads_done++;
      if (r->result > 0) T.read_bytes += (uint64_t)r->result;
      return r->result > 0 && cn->reads_renewed && !cn->closing;
    default: return false;
  }
}

static void issue_read(int conn_index);

/* Collector thread: everything that happens when one completion arrives. */
static void on_completion(const fd_completion *c) {
  atomic_fetch_add(&progress_ticks, 1);
  pthread_mutex_lock(&tracker_lock);
  request *r = completion_record(c);
  bool renew = r != NULL && completion_account(r);
  int conn_index = r != NULL ? r->conn : -1;
  bool data = r != NULL && r->kind == K_READ && c->result > 0 && c->payload_kind == FD_PAYLOAD_BYTES;
  pthread_cond_broadcast(&tracker_progress);
  pthread_mutex_unlock(&tracker_lock);
  /* Only this thread parses this end's stream, in completion order. */
  if (data) rx_feed(&T.conns[conn_index].rx, conn_index, c->data, c->len);
  if (renew) issue_read(conn_index);
}

static atomic_bool collectors_stop;

static void *collector_main(void *arg) {
  int64_t port = (int64_t)(intptr_t)arg;
  fd_completion batch[BATCH_MAX];
  for (;;) {
    size_t n = fake_dart_next_batch(port, COLLECTOR_POLL_MS, batch, BATCH_MAX);
    for (size_t i = 0; i < n; i++) {
      on_completion(&batch[i]);
      fake_dart_release(&batch[i]);
    }
    if (n == 0 && atomic_load(&collectors_stop)) return NULL;
  }
}

/* ======================================================================== */
/* bounded waits                                                             */
/* ======================================================================== */
typedef bool (*wait_pred)(const void *arg);

/* Lock held. Waits until pred holds; gives up (false) after C.timeout_ms
 * without any completion, which the caller reports as a hang. */
static bool wait_for(wait_pred pred, const void *arg) {
  uint64_t seen = T.completions;
  int64_t deadline = now_ms() + C.timeout_ms;
  while (!pred(arg)) {
    if (T.completions != seen) {
      seen = T.completions;
      deadline = now_ms() + C.timeout_ms;
    }
    if (now_ms() >= deadline) return false;
    struct timespec at = timespec_at(deadline);
    pthread_cond_timedwait(&tracker_progress, &tracker_lock, &at);
  }
  return true;
}

static bool request_done(const void *arg) {
  int64_t id = *(const int64_t *)arg;
  return req_at((uint32_t)(id - ID_BASE))->completions > 0;
}

/* Waits for request id; its result, or INT64_MIN after a timeout (reported). */
static int64_t await_result(int64_t id) {
  pthread_mutex_lock(&tracker_lock);
  bool done = wait_for(request_done, &id);
  request *r = req_at((uint32_t)(id - ID_BASE));
  int64_t result = done ? r->result : INT64_MIN;
  if (!done) fail("%s on conn %d did not complete within %" PRId64 " ms", kind_name(r->kind), r->conn, C.timeout_ms);
  pthread_mutex_unlock(&tracker_lock);
  return result;
}

/* ======================================================================== */
/* engine calls, each tracked                                                */
/* ======================================================================== */
static void issue_read(int conn_index) {
  pthread_mutex_lock(&tracker_lock);
  conn *cn = &T.conns[conn_index];
  if (cn->closing) {
    pthread_mutex_unlock(&tracker_lock);
    return;
  }
  int64_t handle = cn->handle, bytes = cn->read_bytes;
  int64_t id = request_begin(K_READ, conn_index, bytes, -1, 0);
  pthread_mutex_unlock(&tracker_lock);
  request_end(id, tcp_read(handle, id, bytes));
}

/* bytes is a record of the writer's (seq: its call order). */
static void issue_write(int conn_index, int writer, uint32_t seq, const uint8_t *bytes, size_t len) {
  pthread_mutex_lock(&tracker_lock);
  int64_t handle = T.conns[conn_index].handle;
  int64_t id = request_begin(K_WRITE, conn_index, (int64_t)len, writer, seq);
  pthread_mutex_unlock(&tracker_lock);
  request_end(id, tcp_write(handle, id, bytes, (int64_t)len));
}

static int64_t issue_accept(int listener) {
  pthread_mutex_lock(&tracker_lock);
  int64_t handle = T.conns[listener].handle;
  int64_t id = request_begin(K_ACCEPT, listener, 0, -1, 0);
  pthread_mutex_unlock(&tracker_lock);
  request_end(id, tcp_accept(handle, id));
  return id;
}

/* Closes an end once (a second call does nothing). Any thread. */
static void close_conn(int conn_index) {
  pthread_mutex_lock(&tracker_lock);
  conn *cn = &T.conns[conn_index];
  if (cn->closing) {
    pthread_mutex_unlock(&tracker_lock);
    return;
  }
  cn->closing = true;
  int64_t handle = cn->handle;
  int64_t id = request_begin(K_CLOSE, conn_index, 0, -1, 0);
  cn->close_id = id;
  pthread_mutex_unlock(&tracker_lock);
  request_end(id, tcp_close(handle, id));
}

/* Starts a connect to 127.0.0.1:tcp_port; returns the new end (its handle is
 * 0 if the call was refused) and the request id in *id. */
static int issue_connect(int64_t port, int32_t tcp_port, int64_t *id) {
  pthread_mutex_lock(&tracker_lock);
  int conn_index = conn_add(0, port, false);
  *id = request_begin(K_CONNECT, conn_index, 0, -1, 0);
  pthread_mutex_unlock(&tracker_lock);
  int64_t handle = tcp_connect(port, *id, LOOPBACK4, 4, tcp_port, NULL, 0, 0, 0);
  pthread_mutex_lock(&tracker_lock);
  if (handle > 0) T.conns[conn_index].handle = handle;
  pthread_mutex_unlock(&tracker_lock);
  request_end(*id, handle > 0 ? 0 : handle);
  return conn_index;
}

/* A listener on 127.0.0.1 (ephemeral port) whose accepts complete on port. */
static int make_listener(int64_t port, int32_t *tcp_port) {
  int64_t handle = tcp_listen(port, LOOPBACK4, 4, 0, 128, 0, 0);
  if (handle <= 0) {
    fail("tcp_listen returned %" PRId64 " (%s)", handle, code_name(handle));
    return -1;
  }
  *tcp_port = tcp_local_port(handle);
  pthread_mutex_lock(&tracker_lock);
  int conn_index = conn_add(handle, port, true);
  pthread_mutex_unlock(&tracker_lock);
  return conn_index;
}

/* ======================================================================== */
/* the operation program of a round (a pure function of seed and round)      */
/* ======================================================================== */
/* Pair p is ends 2p (the connecting side) and 2p+1 (the accepted side); an
 * end's peer is its index ^ 1. The ballast pair follows the pairs. In the
 * tracker's table, conn 0 is the pairs' listener and end e is conn 1 + e; the
 * storm's listener and clients come after them. */
#define PAIRS_LISTENER 0
static int conn_of_end(int end) { return 1 + end; }

/* The setup creates the table's entries in this order; say so if not. */
static void assert_end(int conn_index, int end) {
  if (conn_index != conn_of_end(end)) {
    fprintf(stderr, "stress: internal error: end %d is conn %d\n", end, conn_index);
    exit(2);
  }
}

typedef struct write_step {
  int16_t conn;        /* the end to write to */
  int16_t close_after; /* an end this writer closes after the write, or -1 */
  uint32_t body_len;
} write_step;

typedef enum closer_action { CA_CLOSE, CA_BALLAST, CA_STORM } closer_action;

typedef struct closer_step {
  uint8_t action;
  bool feed;        /* CA_CLOSE: first write a record on the peer, so that it reaches the end */
  bool yield;       /* sched_yield() before the close */
  int16_t conn;     /* CA_CLOSE: the end */
  uint32_t spin;    /* busy iterations before the close */
  int64_t gate;     /* wait until this many writes completed (or all are done) */
} closer_step;

typedef struct plan {
  int32_t read_bytes[2 * PAIRS_MAX];
  uint8_t read_depth[2 * PAIRS_MAX];
  write_step *steps[WRITERS_MAX]; /* C.writes each */
  int32_t window[WRITERS_MAX];    /* writes a writer keeps in flight */
  closer_step closer[CLOSER_STEPS_MAX];
  int ncloser;
  bool ballast, storm, storm_close_clients;
  int storm_accepts, storm_connects, storm_gate_accepts;
  uint32_t storm_spin;
} plan;

static plan P;

static uint32_t pick_body_len(rng *r) {
  bool large = C.sizes == SIZES_LARGE || (C.sizes == SIZES_MIXED && rng_chance(r, 25));
  return large ? LARGE_RECORD_BYTES - RECORD_HEADER_BYTES : rng_below(r, TINY_BODY_MAX + 1);
}

static int32_t pick_read_bytes(rng *r) {
  static const int32_t sizes[] = {1, 7, 64, 1000, 4096, 65536};
  return sizes[rng_below(r, sizeof sizes / sizeof sizes[0])];
}

static void plan_writers(rng *r) {
  for (int w = 0; w < C.writers; w++) {
    P.window[w] = 2 + (int32_t)rng_below(r, 15);
    for (int i = 0; i < C.writes; i++)
      P.steps[w][i] = (write_step){.conn = (int16_t)rng_below(r, 2 * (uint32_t)C.pairs), .close_after = -1,
                                   .body_len = pick_body_len(r)};
  }
}

static void plan_add_closer(closer_action action, int conn, rng *r) {
  int64_t total_writes = (int64_t)C.writers * C.writes;
  P.closer[P.ncloser++] = (closer_step){.action = (uint8_t)action, .conn = (int16_t)conn,
                                        .feed = rng_chance(r, 60), .yield = rng_chance(r, 25),
                                        .spin = rng_chance(r, 25) ? 0 : rng_below(r, 20000),
                                        .gate = total_writes * rng_below(r, 80) / 100};
}

/* Each end is closed by the closer, by one writer after one of its writes, or
 * only by tcp_shutdown. */
static void plan_closes(rng *r) {
  for (int e = 0; e < 2 * C.pairs; e++) {
    uint32_t roll = rng_below(r, 100);
    if (roll < 50) {
      plan_add_closer(CA_CLOSE, e, r);
    } else if (roll < 65) {
      write_step *steps = P.steps[rng_below(r, (uint32_t)C.writers)];
      int at = (int)rng_below(r, (uint32_t)C.writes);
      for (int k = 0; k < C.writes && steps[at].close_after >= 0; k++) at = (at + 1) % C.writes;
      if (steps[at].close_after < 0) steps[at].close_after = (int16_t)e;
    }
  }
}

static void plan_sort_closer(void) { /* by gate, stable */
  for (int i = 1; i < P.ncloser; i++)
    for (int j = i; j > 0 && P.closer[j - 1].gate > P.closer[j].gate; j--) {
      closer_step t = P.closer[j];
      P.closer[j] = P.closer[j - 1];
      P.closer[j - 1] = t;
    }
}

static void plan_make(int round) {
  rng r = {.state = C.seed * 0xd1b54a32d192ed03ull ^ ((uint64_t)round + 1) * 0x9e3779b97f4a7c15ull};
  for (int e = 0; e < 2 * C.pairs; e++) {
    P.read_bytes[e] = pick_read_bytes(&r);
    P.read_depth[e] = (uint8_t)(1 + rng_below(&r, 3));
  }
  P.ncloser = 0;
  plan_writers(&r);
  plan_closes(&r);
  P.ballast = C.ballast_reads > 0 && rng_chance(&r, (uint32_t)C.ballast_percent);
  if (P.ballast) plan_add_closer(CA_BALLAST, 2 * C.pairs, &r);
  P.storm = rng_chance(&r, (uint32_t)C.storm_percent);
  P.storm_accepts = 1 + (int)rng_below(&r, STORM_ACCEPTS_MAX);
  P.storm_connects = 1 + (int)rng_below(&r, STORM_CONNECTS_MAX);
  int most = P.storm_accepts < P.storm_connects ? P.storm_accepts : P.storm_connects;
  P.storm_gate_accepts = (int)rng_below(&r, (uint32_t)most + 1);
  P.storm_spin = rng_chance(&r, 30) ? 0 : rng_below(&r, 50000);
  P.storm_close_clients = rng_chance(&r, 50);
  if (P.storm) plan_add_closer(CA_STORM, -1, &r);
  plan_sort_closer();
}

/* ======================================================================== */
/* writer and closer threads                                                 */
/* ======================================================================== */
static bool window_has_room(const void *arg) {
  int writer = *(const int *)arg;
  return T.writer_pending[writer] < P.window[writer];
}

static void *writer_main(void *arg) {
  int writer = (int)(intptr_t)arg;
  uint8_t *buffer = malloc(LARGE_RECORD_BYTES);
  uint32_t seq = 0;
  for (int i = 0; buffer != NULL && i < C.writes; i++) {
    const write_step *step = &P.steps[writer][i];
    pthread_mutex_lock(&tracker_lock);
    bool room = wait_for(window_has_room, &writer);
    int32_t in_flight = T.writer_pending[writer];
    pthread_mutex_unlock(&tracker_lock);
    if (!room) {
      fail("writer %d: %d writes in flight and no completion for %" PRId64 " ms", writer, in_flight,
           C.timeout_ms);
      break;
    }
    size_t len = record_build(buffer, (uint32_t)writer, ++seq, step->body_len);
    issue_write(conn_of_end(step->conn), writer, seq, buffer, len);
    if (step->close_after >= 0) close_conn(conn_of_end(step->close_after));
  }
  if (buffer == NULL) fail("writer %d: out of memory", writer);
  free(buffer);
  pthread_mutex_lock(&tracker_lock);
  T.writers_running--;
  pthread_cond_broadcast(&tracker_progress);
  pthread_mutex_unlock(&tracker_lock);
  return NULL;
}

static bool gate_open(const void *arg) {
  int64_t gate = *(const int64_t *)arg;
  return T.writes_completed >= gate || (T.writers_running == 0 && T.writes_pending == 0);
}

static void spin(uint32_t iterations) {
  for (volatile uint32_t i = 0; i < iterations; i++) {
  }
}

static uint32_t closer_seq;

static void closer_close(const closer_step *step) {
  if (step->feed) {
    uint8_t record[RECORD_HEADER_BYTES + TINY_BODY_MAX];
    size_t len = record_build(record, (uint32_t)C.writers, ++closer_seq, step->spin % (TINY_BODY_MAX + 1));
    issue_write(conn_of_end(step->conn ^ 1), C.writers, closer_seq, record, len);
  }
  spin(step->spin);
  if (step->yield) sched_yield();
  close_conn(conn_of_end(step->conn));
}

/* The pairs' accepted ends complete on port_accepted, their connecting ends on
 * port_connecting[p % 2]; the storm's listener on port_connecting[1], its
 * clients on port_connecting[0]. */
static int64_t port_accepted, port_connecting[2];
static int storm_listener = -1, storm_clients[STORM_CONNECTS_MAX];
static int32_t storm_tcp_port;

static bool storm_accepts_reached(const void *arg) {
  (void)arg;
  return T.conns[storm_listener].accepts_done >= P.storm_gate_accepts;
}

/* Connects arrive while the listener with pending accepts is closed. */
static void closer_storm(void) {
  int64_t id;
  for (int i = 0; i < P.storm_connects; i++)
    storm_clients[i] = issue_connect(port_connecting[0], storm_tcp_port, &id);
  pthread_mutex_lock(&tracker_lock);
  bool reached = wait_for(storm_accepts_reached, NULL);
  pthread_mutex_unlock(&tracker_lock);
  if (!reached)
    fail("accept storm: fewer than %d accepts completed within %" PRId64 " ms", P.storm_gate_accepts,
         C.timeout_ms);
  spin(P.storm_spin);
  close_conn(storm_listener);
  if (P.storm_close_clients)
    for (int i = 0; i < P.storm_connects; i++) close_conn(storm_clients[i]);
}

static void *closer_main(void *arg) {
  (void)arg;
  for (int i = 0; i < P.ncloser; i++) {
    const closer_step *step = &P.closer[i];
    pthread_mutex_lock(&tracker_lock);
    bool open = wait_for(gate_open, &step->gate);
    pthread_mutex_unlock(&tracker_lock);
    if (!open) {
      fail("closer: waiting for %" PRId64 " completed writes, no completion for %" PRId64 " ms", step->gate,
           C.timeout_ms);
      return NULL;
    }
    if (step->action == CA_CLOSE) closer_close(step);
    else if (step->action == CA_BALLAST) close_conn(conn_of_end(step->conn));
    else closer_storm();
  }
  return NULL;
}

/* ======================================================================== */
/* watchdog: a call into the engine that never returns ends the process       */
/* ======================================================================== */
/* Every completion and every returned call is progress. The round's own waits
 * give up after C.timeout_ms without a completion and say what is missing; the
 * watchdog only catches what they cannot: a thread stuck inside the engine (a
 * lock never released, tcp_shutdown never returning). */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  const char *phase; /* NULL: disarmed */
  int64_t budget_ms;  /* without progress */
  int64_t last_change_ms;
} W = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Arms the watchdog for phase (NULL: disarms it). */
static void watch_budget(const char *phase, int64_t budget_ms) {
  pthread_mutex_lock(&W.lock);
  W.phase = phase;
  W.budget_ms = budget_ms;
  W.last_change_ms = now_ms();
  pthread_cond_broadcast(&W.changed);
  pthread_mutex_unlock(&W.lock);
}

static void watch(const char *phase) { watch_budget(phase, 3 * C.timeout_ms); }

static void dump_outstanding(void);

static void watchdog_fire(const char *phase, int64_t budget_ms) {
  pthread_mutex_lock(&print_lock);
  printf("round %d (STRESS_SEED=%" PRIu64 "): FAIL: hang in %s: no progress for %" PRId64 " ms\n",
         current_round, C.seed, phase, budget_ms);
  pthread_mutex_unlock(&print_lock);
  if (pthread_mutex_trylock(&tracker_lock) == 0) {
    dump_outstanding();
    pthread_mutex_unlock(&tracker_lock);
  } else {
    printf("  (the tracker's lock is held: a thread is stuck)\n");
  }
  printf("%d passed, %d failed\n", rounds_passed, rounds_failed + 1);
  fflush(stdout);
  _exit(1);
}

static void *watchdog_main(void *arg) {
  (void)arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&W.lock);
  for (;;) {
    uint64_t ticks = atomic_load(&progress_ticks);
    if (ticks != seen) {
      seen = ticks;
      W.last_change_ms = now_ms();
    }
    if (W.phase != NULL && now_ms() - W.last_change_ms > W.budget_ms) watchdog_fire(W.phase, W.budget_ms);
    struct timespec at = timespec_at(now_ms() + 200);
    pthread_cond_timedwait(&W.changed, &W.lock, &at);
  }
  return NULL;
}

/* ======================================================================== */
/* a round                                                                   */
/* ======================================================================== */
/* Lock held. Prints the first requests that have not completed. */
static void dump_outstanding(void) {
  int shown = 0;
  for (uint32_t i = 0; i < T.count && shown < 12; i++) {
    const request *r = req_at(i);
    if (r->state == ST_REFUSED || r->completions > 0) continue;
    const conn *cn = &T.conns[r->conn];
    if (r->kind == K_READ && !cn->closing && !T.shutdown_started) continue; /* waits for data */
    printf("  outstanding: %s id %" PRId64 " on conn %d (handle %" PRId64 ", %s%s)\n", kind_name(r->kind),
           ID_BASE + i, r->conn, cn->handle, cn->closing ? "closed by the test" : "open",
           r->state == ST_CALLING ? ", call not returned" : "");
    shown++;
  }
  printf("  %" PRId64 " non-read requests outstanding\n", T.nonread_pending);
}

static pthread_t collectors[3];

static void collectors_start(void) {
  port_accepted = fake_dart_open_port();
  port_connecting[0] = fake_dart_open_port();
  port_connecting[1] = fake_dart_open_port();
  int64_t ports[3] = {port_accepted, port_connecting[0], port_connecting[1]};
  atomic_store(&collectors_stop, false);
  for (int i = 0; i < 3; i++) pthread_create(&collectors[i], NULL, collector_main, (void *)(intptr_t)ports[i]);
}

/* After tcp_shutdown: every completion is queued; the collectors take them all. */
static void collectors_join(void) {
  atomic_store(&collectors_stop, true);
  for (int i = 0; i < 3; i++) pthread_join(collectors[i], NULL);
}

/* Connects pair p (ends 2p, 2p+1) through the pairs' listener. */
static bool connect_pair(int p, int32_t tcp_port) {
  int64_t accept_id = issue_accept(PAIRS_LISTENER), connect_id;
  int client = issue_connect(port_connecting[p % 2], tcp_port, &connect_id);
  assert_end(client, 2 * p);
  int64_t connected = await_result(connect_id), accepted = await_result(accept_id);
  if (connected != 0 || accepted <= 0) {
    fail("pair %d: connect gave %" PRId64 " (%s), accept %" PRId64 " (%s)", p, connected, code_name(connected),
         accepted, code_name(accepted));
    return false;
  }
  pthread_mutex_lock(&tracker_lock);
  assert_end(conn_add(accepted, port_accepted, false), 2 * p + 1);
  pthread_mutex_unlock(&tracker_lock);
  return true;
}

/* Reads pending on both ends of every pair; the ballast's many reads. */
static void first_reads(void) {
  for (int e = 0; e < 2 * C.pairs; e++) {
    pthread_mutex_lock(&tracker_lock);
    conn *cn = &T.conns[conn_of_end(e)];
    cn->read_bytes = P.read_bytes[e];
    cn->reads_renewed = true;
    pthread_mutex_unlock(&tracker_lock);
    for (int k = 0; k < P.read_depth[e]; k++) issue_read(conn_of_end(e));
  }
  if (!P.ballast) return;
  /* Its peer never writes: all but the first wait in the engine's queue and
   * fail together when the closer closes it. */
  pthread_mutex_lock(&tracker_lock);
  T.conns[conn_of_end(2 * C.pairs)].read_bytes = 64;
  pthread_mutex_unlock(&tracker_lock);
  for (int k = 0; k < C.ballast_reads; k++) issue_read(conn_of_end(2 * C.pairs));
}

/* The pairs, their first reads, the ballast, the storm's listener. */
static bool round_setup(void) {
  int32_t tcp_port = 0;
  if (make_listener(port_accepted, &tcp_port) != PAIRS_LISTENER) return false;
  int pairs = C.pairs + (P.ballast ? 1 : 0);
  for (int p = 0; p < pairs; p++)
    if (!connect_pair(p, tcp_port)) return false;
  first_reads();
  if (!P.storm) return true;
  storm_listener = make_listener(port_connecting[1], &storm_tcp_port);
  if (storm_listener < 0) return false;
  for (int i = 0; i < P.storm_accepts; i++) issue_accept(storm_listener);
  return true;
}

static void round_traffic(void) {
  pthread_t writers[WRITERS_MAX], closer;
  T.writers_running = C.writers;
  for (int w = 0; w < C.writers; w++) pthread_create(&writers[w], NULL, writer_main, (void *)(intptr_t)w);
  pthread_create(&closer, NULL, closer_main, NULL);
  for (int w = 0; w < C.writers; w++) pthread_join(writers[w], NULL);
  pthread_join(closer, NULL);
}

/* Every request must complete except the last read of each end that stays
 * open (it waits for data that will not come; tcp_shutdown completes it). */
static bool round_quiet(const void *arg) {
  (void)arg;
  if (T.nonread_pending > 0) return false;
  for (int i = 0; i < T.nconns; i++)
    if (T.conns[i].closing && T.conns[i].reads_pending > 0) return false;
  return true;
}

static void round_drain(void) {
  pthread_mutex_lock(&tracker_lock);
  if (!wait_for(round_quiet, NULL)) {
    fail("no completion for %" PRId64 " ms while requests are outstanding (a hang):", C.timeout_ms);
    dump_outstanding();
  }
  pthread_mutex_unlock(&tracker_lock);
}

static void round_shutdown(void) {
  pthread_mutex_lock(&tracker_lock);
  T.shutdown_started = true;
  pthread_mutex_unlock(&tracker_lock);
  /* After a hang was seen, the engine is not expected to recover: do not wait
   * long for tcp_shutdown. */
  watch_budget("tcp_shutdown", atomic_load(&round_failures) > 0 ? C.timeout_ms : 3 * C.timeout_ms);
  int32_t rc = tcp_shutdown();
  if (rc != TCP_OK) fail("tcp_shutdown returned %d (%s)", (int)rc, code_name(rc));
  watch("collecting the last completions");
  collectors_join();
}

/* Lock held (no other thread runs). Exactly once, and a close after its ops. */
static void verify_request(uint32_t index) {
  const request *r = req_at(index);
  const conn *cn = &T.conns[r->conn];
  int64_t id = ID_BASE + index;
  if (r->state == ST_CALLING) fail("%s id %" PRId64 ": the call never returned", kind_name(r->kind), id);
  if (r->state != ST_ACCEPTED) return;
  if (r->completions == 0) {
    fail("%s on conn %d (id %" PRId64 ", %s) never completed, not even at tcp_shutdown", kind_name(r->kind),
         r->conn, id, cn->closing ? "closed by the test" : "left open");
    return;
  }
  if (cn->close_id == 0 || cn->close_id == id) return;
  const request *close = req_at((uint32_t)(cn->close_id - ID_BASE));
  if (close->state == ST_ACCEPTED && close->completions > 0 && r->seq > close->seq)
    fail("%s on conn %d (id %" PRId64 ") completed after the close of its socket", kind_name(r->kind), r->conn, id);
}

static void round_verify(void) {
  pthread_mutex_lock(&tracker_lock);
  for (uint32_t i = 0; i < T.count; i++) verify_request(i);
  pthread_mutex_unlock(&tracker_lock);
  fd_stats stats;
  fake_dart_stats(&stats);
  if (stats.malformed > 0) fail("%" PRIu64 " malformed messages: %s", stats.malformed, fake_dart_last_malformed());
  fake_dart_reset();
}

static void round_report(bool passed) {
  if (!C.verbose && passed) return;
  pthread_mutex_lock(&print_lock);
  printf("round %d: %s: %u requests, %" PRIu64 " reads (%" PRIu64 " bytes), %" PRId64 " writes, %" PRIu64
         " TCP_ERR_CLOSED, %" PRIu64 " refused;%s%s\n",
         current_round, passed ? "ok" : "FAILED", T.count, T.reads_done, T.read_bytes, T.writes_completed,
         T.closed_results, T.refusals, P.ballast ? " ballast" : "", P.storm ? " accept-storm" : "");
  pthread_mutex_unlock(&print_lock);
}

static bool run_round(int round) {
  current_round = round;
  atomic_store(&round_failures, 0);
  plan_make(round);
  tracker_reset();
  closer_seq = 0;
  storm_listener = -1;
  watch("tcp_init");
  int32_t rc = tcp_init(fake_dart_api_data());
  if (rc != TCP_OK) {
    fail("tcp_init returned %d (%s)", (int)rc, code_name(rc));
    return false;
  }
  collectors_start();
  watch("the round");
  if (round_setup()) round_traffic();
  round_drain();
  round_shutdown();
  round_verify();
  watch(NULL);
  bool passed = atomic_load(&round_failures) == 0;
  round_report(passed);
  return passed;
}

static void print_banner(void) {
  const char *backend = "(none)";
  if (tcp_init(fake_dart_api_data()) == TCP_OK) {
    backend = tcp_backend_name();
    tcp_shutdown();
  }
  const char *entries = getenv("ZIG_TCP_URING_ENTRIES");
  printf("stress_cancel_backlog: backend %s%s%s, seed %" PRIu64 " (STRESS_SEED=%" PRIu64
         " replays the program), %d iterations, %d writers, %d pairs, %d writes each, sizes %s, ballast %d,"
         " in %d%% of rounds, storm %d%%\n",
         backend, entries ? ", ZIG_TCP_URING_ENTRIES=" : "", entries ? entries : "", C.seed, C.seed,
         C.iterations, C.writers, C.pairs, C.writes, sizes_name(C.sizes), C.ballast_reads, C.ballast_percent,
         C.storm_percent);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  config_load();
  cond_init_monotonic(&tracker_progress);
  cond_init_monotonic(&W.changed);
  for (int w = 0; w < C.writers; w++) P.steps[w] = calloc((size_t)C.writes, sizeof(write_step));
  print_banner();
  pthread_t watchdog;
  pthread_create(&watchdog, NULL, watchdog_main, NULL);
  for (int round = 0; round < C.iterations; round++) {
    bool passed = run_round(round);
    pthread_mutex_lock(&W.lock); /* the watchdog reads the counts */
    if (passed) rounds_passed++;
    else rounds_failed++;
    pthread_mutex_unlock(&W.lock);
  }
  printf("%d passed, %d failed\n", rounds_passed, rounds_failed);
  return rounds_failed == 0 ? 0 : 1;
}
