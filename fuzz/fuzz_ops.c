/*
 * fuzz_ops.c -- operation-sequence fuzzer for the zig_tcp engine (libFuzzer).
 *
 * Each input is a small program of engine calls (listen, connect, accept,
 * read, write of random sizes, shutdown-write, close, double close, the
 * finalizer, made-up and stale handles, null / oversized buffers, accessors,
 * engine shutdown and re-init) run against loopback peers that the program
 * itself creates. Completions arrive through the fake Dart VM (test_c/
 * fake_dart.h) on two ports.
 *
 * Invariants, checked at every step (a violation aborts: libFuzzer keeps the
 * input as a crash):
 *   - a call the engine refused (negative return) never produces a message,
 *     and a refusal is one of the codes the contract allows for that call;
 *   - every accepted operation completes exactly once, on the port of the
 *     socket it was issued on, with a result of the right shape (read payload
 *     of exactly `result` bytes, write result == bytes_len, accept a new
 *     handle, close 0);
 *   - a close's completion follows the completions of every earlier op on
 *     that socket; writes on one socket complete in issue order;
 *   - every byte received is the byte its writer sent at that offset (each
 *     direction is a self-describing stream: an 8-byte seed, then a
 *     deterministic function of seed and offset), no stream reaches two
 *     readers, nothing arrives after end-of-stream, and a clean end-of-stream
 *     comes only after every byte whose write completed;
 *   - at the end of each input every handle it opened is closed and every
 *     outstanding op must complete within a bound (10 s); afterwards the
 *     process holds exactly the file descriptors it held before the input and
 *     the fake VM holds no read buffer; after tcp_shutdown every op has
 *     already been posted (no wait at all);
 *   - AddressSanitizer, UBSan and LeakSanitizer watch memory.
 *
 * The engine is initialised once (LLVMFuzzerInitialize) and restarted only
 * when a program asks for it. The backend is chosen by ZIG_TCP_BACKEND.
 * Run it inside a private network namespace (tools/fuzz.sh does) so that its
 * connections cannot touch anything else on the machine.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "byte_stream.h"
#include "fake_dart.h"
#include "tcp.h"

/* ---- limits ----------------------------------------------------------------- */
#define MAX_STEPS 96
#define MAX_RECS 320         /* sockets per input: at most 3 per step */
#define MAX_REQS 4096        /* accepted async requests per input */
#define DRAIN_BOUND_MS 10000 /* every op must complete this soon after its close */
#define BIG_WRITE (256 * 1024)

/* ---- failure ---------------------------------------------------------------- */
static unsigned long long g_input_no;
static const char *g_backend = "?";

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "\n*** zig_tcp fuzz invariant violated (backend %s, input #%llu): ", g_backend,
          g_input_no);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}
#define REQUIRE(cond, ...)  \
  do {                      \
    if (!(cond)) fail(__VA_ARGS__); \
  } while (0)

/* ---- input reader ------------------------------------------------------------- */
typedef struct reader {
  const uint8_t *p;
  size_t n, i;
} reader;
static uint8_t rd8(reader *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static uint16_t rd16(reader *r) { return (uint16_t)(rd8(r) | (rd8(r) << 8)); }
static uint32_t rd32(reader *r) { return (uint32_t)rd16(r) | ((uint32_t)rd16(r) << 16); }
static uint64_t rd64(reader *r) { return (uint64_t)rd32(r) | ((uint64_t)rd32(r) << 32); }

/* ---- streams ---------------------------------------------------------------- */
/* Each direction is self-describing: 8 bytes of seed (least significant
 * first), then the byte stream of that seed (test_c/byte_stream.h). */
#define STREAM_HEADER_LEN 8
static uint8_t stream_byte(uint64_t seed, uint64_t off) {
  if (off < STREAM_HEADER_LEN) return (uint8_t)(seed >> (8 * off));
  return byte_stream_byte(seed, off - STREAM_HEADER_LEN);
}
static void stream_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t n) {
  size_t i = 0;
  for (; i < n && off + i < STREAM_HEADER_LEN; i++) buf[i] = stream_byte(seed, off + i);
  if (i < n) byte_stream_fill(seed, off + i - STREAM_HEADER_LEN, buf + i, n - i);
}

/* ---- per-input state ------------------------------------------------------------ */
typedef enum rec_state {
  R_LIVE,      /* handle valid: ops expected to be accepted */
  R_CLOSED,    /* tcp_close accepted: ops must return TCP_ERR_CLOSED */
  R_FINALIZED, /* tcp_close_finalizer called: likewise, but no close completion */
  R_DEAD,      /* the engine shut down under it */
} rec_state;

typedef struct rec {
  bool used;
  bool listener;
  bool accepted;        /* came from tcp_accept */
  bool temp_port;       /* its port was closed on purpose: no checks on its ops */
  rec_state state;
  int64_t handle;
  int64_t port;
  int family;           /* 4 or 6 */
  int32_t tcp_port;     /* listener: its port */
  int32_t last_nodelay, last_keepalive; /* -1 unknown */
  /* outgoing stream */
  uint64_t out_seed, out_queued, out_ok;
  uint32_t writes_issued, writes_completed;
  bool shutw_issued;
  /* incoming stream */
  uint8_t in_hdr[STREAM_HEADER_LEN];
  uint64_t in_off, in_seed;
  int writer;           /* rec index of the writer, -1 until the header is in */
  int reader;           /* for a writer: which rec reads its stream, -1 none */
  bool eof, in_error;
  int close_req;        /* request index of the close, -1 */
} rec;

typedef enum kind { K_CONNECT = 1, K_ACCEPT, K_READ, K_WRITE, K_SHUTW, K_CLOSE } kind;
static const char *kind_name(int k) {
  static const char *n[] = {"?", "connect", "accept", "read", "write", "shutdown_write", "close"};
  return k >= 1 && k <= 6 ? n[k] : "?";
}

typedef struct req {
  uint8_t kind;
  bool done;
  int rec;
  int64_t port;
  int64_t len;        /* read: bytes_max; write: bytes_len */
  uint32_t write_seq; /* write: its index among the rec's writes */
  int64_t result;
} req;

static rec recs[MAX_RECS];
static int nrecs;
static req reqs[MAX_REQS];
static int nreqs, outstanding;
static int64_t port_a, port_b;
static bool engine_up;
static int fds_engine_up, fds_engine_down; /* open fds with no socket open */
static bool input_used_temp_port, input_used_finalizer;
static int huge_reads;
static uint64_t refused_seen;

/* Request ids: unique across the whole run, and above 2^32 so that 64 bits
 * must survive the trip. */
#define ID_TAG 0x5a00000000000000ll
static int64_t id_of(int idx) { return ID_TAG | ((int64_t)(g_input_no & 0xffffffffffull) << 16) | idx; }

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Open sockets of this process (libFuzzer opens pipes of its own, so only
 * sockets are counted: every one of them belongs to the engine). */
static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  int n = 0;
  struct dirent *e;
  char path[64], target[64];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t len = readlink(path, target, sizeof target - 1);
    if (len > 7 && memcmp(target, "socket:", 7) == 0) n++;
  }
  closedir(d);
  return n;
}

static void list_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return;
  struct dirent *e;
  char path[64], target[256];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
  }
  closedir(d);
}

static bool is_error_code(int64_t c) {
  return (c <= -1 && c >= -8) || (c <= -20 && c >= -32) || c == -99;
}

static int new_rec(bool listener, int64_t handle, int64_t port, int family) {
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
  r->last_nodelay = r->last_keepalive = -1;
  r->out_seed = byte_stream_mix64(((uint64_t)g_input_no << 8) ^ (uint64_t)i ^ 0x7cafe0000ull) | 1;
  return i;
}

static bool g_trace; /* FUZZ_TRACE=1: print every request and completion */
static bool g_profile; /* FUZZ_PROFILE=1: where the wall time goes, every 1000 inputs */
static int64_t prof_us[4]; /* wait_some, restart, drain, total */
static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int add_req(kind k, int ri, int64_t port, int64_t len) {
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

/* Ids for requests that are refused (never registered). */
static int64_t spare_id(void) { return id_of(MAX_REQS + 1 + (nreqs & 0x3fff)); }

/* ---- completions ------------------------------------------------------------------ */
static void close_rec(int ri);

static void on_read_data(int ri, const uint8_t *data, size_t n) {
  rec *r = &recs[ri];
  REQUIRE(!r->eof, "rec %d: %zu bytes read after end of stream", ri, n);
  size_t i = 0;
  while (r->in_off < STREAM_HEADER_LEN && i < n) r->in_hdr[r->in_off++] = data[i++];
  if (r->writer < 0 && r->in_off >= STREAM_HEADER_LEN) {
    uint64_t seed = 0;
    for (int b = 0; b < STREAM_HEADER_LEN; b++) seed |= (uint64_t)r->in_hdr[b] << (8 * b);
    int w = -1;
    for (int j = 0; j < nrecs; j++)
      if (recs[j].used && !recs[j].listener && recs[j].out_seed == seed) w = j;
    REQUIRE(w >= 0, "rec %d: stream header %016llx names no writer of this input", ri,
            (unsigned long long)seed);
    REQUIRE(recs[w].reader < 0 || recs[w].reader == ri,
            "stream of rec %d reached two readers (%d and %d)", w, recs[w].reader, ri);
    REQUIRE(w != ri, "rec %d reads its own stream", ri);
    recs[w].reader = ri;
    r->writer = w;
    r->in_seed = seed;
  }
  if (i < n) {
    size_t bad = byte_stream_first_diff(r->in_seed, r->in_off - STREAM_HEADER_LEN, data + i, n - i);
    REQUIRE(bad == n - i, "rec %d: byte %llu of the stream is %02x, expected %02x", ri,
            (unsigned long long)(r->in_off + bad), data[i + bad],
            stream_byte(r->in_seed, r->in_off + bad));
    r->in_off += n - i;
  }
  if (r->writer >= 0)
    REQUIRE(r->in_off <= recs[r->writer].out_queued,
            "rec %d received %llu bytes but its writer %d only queued %llu", ri,
            (unsigned long long)r->in_off, r->writer, (unsigned long long)recs[r->writer].out_queued);
}

static bool draining;

static void on_completion(fd_completion *c) {
  int64_t id = c->request_id;
  int64_t base = id_of(0);
  REQUIRE((id & ~0xffffll) == base && (id & 0xffff) < nreqs,
          "completion for unknown request id %llx on port %lld (result %lld)", (long long)id,
          (long long)c->port, (long long)c->result);
  int idx = (int)(id & 0xffff);
  req *q = &reqs[idx];
  if (g_trace)
    fprintf(stderr, "[trace] completion of req %d (%s): result %lld payload %lld\n", idx,
            kind_name(q->kind), (long long)c->result,
            c->payload_kind == FD_PAYLOAD_INT ? (long long)c->payload_int : (long long)c->len);
  REQUIRE(!q->done, "request %d (%s) completed twice", idx, kind_name(q->kind));
  REQUIRE(c->port == q->port, "request %d (%s) completed on port %lld, issued on port %lld", idx,
          kind_name(q->kind), (long long)c->port, (long long)q->port);
  q->done = true;
  q->result = c->result;
  outstanding--;
  rec *r = &recs[q->rec];
  int64_t res = c->result;
  if (res < 0) {
    REQUIRE(is_error_code(res), "request %d (%s): result %lld is no TCP_ERR code", idx,
            kind_name(q->kind), (long long)res);
    REQUIRE(c->payload_kind == FD_PAYLOAD_INT, "request %d (%s): error without an OS code payload", idx,
            kind_name(q->kind));
  }
  switch (q->kind) {
    case K_CONNECT:
      REQUIRE(res <= 0, "connect result %lld", (long long)res);
      REQUIRE(res < 0 || c->payload_kind == FD_PAYLOAD_NULL, "connect: payload on success");
      break;
    case K_ACCEPT:
      if (res > 0) {
        REQUIRE(c->payload_kind == FD_PAYLOAD_NULL, "accept: payload on success");
        int ni = new_rec(false, res, r->port, r->family);
        recs[ni].accepted = true;
        if (draining) close_rec(ni);
      } else {
        REQUIRE(res < 0, "accept result 0");
      }
      break;
    case K_READ:
      if (res > 0) {
        REQUIRE(res <= q->len, "read of max %lld returned %lld", (long long)q->len, (long long)res);
        REQUIRE(c->payload_kind == FD_PAYLOAD_BYTES && c->len == (size_t)res,
                "read result %lld with a payload of kind %d, %zu bytes", (long long)res,
                (int)c->payload_kind, c->len);
        on_read_data(q->rec, c->data, c->len);
      } else if (res == 0) {
        REQUIRE(c->payload_kind == FD_PAYLOAD_NULL, "read EOF with a payload");
        r->eof = true;
      } else {
        r->in_error = true;
      }
      break;
    case K_WRITE:
      REQUIRE(res < 0 || res == q->len, "write of %lld bytes completed with %lld", (long long)q->len,
              (long long)res);
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
            REQUIRE(reqs[j].done && reqs[j].result >= 0,
                    "rec %d: write #%u succeeded, but the earlier write #%u %s", q->rec, q->write_seq,
                    reqs[j].write_seq, reqs[j].done ? "failed" : "had not completed");
      r->writes_completed++;
      if (res > 0) r->out_ok += (uint64_t)res;
      break;
    case K_SHUTW:
      REQUIRE(res <= 0, "shutdown_write result %lld", (long long)res);
      break;
    case K_CLOSE:
      REQUIRE(res == 0, "close completed with %lld", (long long)res);
      REQUIRE(c->payload_kind == FD_PAYLOAD_NULL, "close with a payload");
      for (int j = 0; j < idx; j++)
        if (reqs[j].rec == q->rec && reqs[j].kind != K_CLOSE && !reqs[j].done && !r->temp_port)
          fail("rec %d: close completed before its earlier %s (request %d)", q->rec,
               kind_name(reqs[j].kind), j);
      break;
  }
  fake_dart_release(c);
}

/* Takes every completion already queued on both ports. */
static void poll_now(void) {
  fd_completion c[32];
  for (int p = 0; p < 2; p++) {
    int64_t port = p ? port_b : port_a;
    size_t n;
    while ((n = fake_dart_next_batch(port, 0, c, 32)) > 0)
      for (size_t i = 0; i < n; i++) on_completion(&c[i]);
  }
}

/* Waits up to timeout_ms for one completion on the port of the oldest
 * outstanding request, then takes whatever is queued. Progress only: nothing
 * is asserted about how long it took. */
static void wait_some(int64_t timeout_ms) {
  int64_t port = port_a;
  for (int i = 0; i < nreqs; i++)
    if (!reqs[i].done && !recs[reqs[i].rec].temp_port) {
      port = reqs[i].port;
      break;
    }
  fd_completion c;
  int64_t t0 = g_profile ? now_us() : 0;
  if (fake_dart_next(port, timeout_ms, &c)) on_completion(&c);
  if (g_profile) prof_us[0] += now_us() - t0;
  poll_now();
}

/* ---- operations ------------------------------------------------------------------ */
static const uint8_t LO4[4] = {127, 0, 0, 1};
static const uint8_t LO6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static int64_t pick_port(reader *in) { return (rd8(in) & 1) ? port_b : port_a; }

/* A rec index chosen by the input, of the wanted kind (-1: any). */
static int pick_rec(reader *in, int want_listener) {
  if (nrecs == 0) return -1;
  int start = rd8(in) % nrecs;
  for (int k = 0; k < nrecs; k++) {
    int i = (start + k) % nrecs;
    if (want_listener < 0 || recs[i].listener == (want_listener == 1)) return i;
  }
  return -1;
}

/* The refusal a call on rec ri must get, or 0 if it must be accepted. */
static int32_t expected_refusal(int ri) {
  rec *r = &recs[ri];
  if (!engine_up) return TCP_ERR_NOT_INITIALIZED;
  if (r->state != R_LIVE) return TCP_ERR_CLOSED;
  return 0;
}

static void op_listen(reader *in) {
  uint8_t flags = rd8(in);
  int64_t port = pick_port(in);
  bool v6 = flags & 1;
  int32_t backlog = (flags & 2) ? (int32_t)(rd8(in) % 8) : 0;
  int64_t h = tcp_listen(port, v6 ? LO6 : LO4, v6 ? 16 : 4, 0, backlog, (flags >> 2) & 1, (flags >> 3) & 1);
  if (!engine_up) {
    REQUIRE(h == TCP_ERR_NOT_INITIALIZED, "listen while down: %lld", (long long)h);
    return;
  }
  REQUIRE(h > 0, "listen on loopback failed: %lld (%s, os %d)", (long long)h, tcp_strerror(h),
          tcp_last_os_error());
  int ri = new_rec(true, h, port, v6 ? 6 : 4);
  if (g_trace) fprintf(stderr, "[trace] listen: rec %d (handle %llx) v6 %d backlog %d shared %d\n", ri, (long long)h, v6, backlog, (flags >> 3) & 1);
  int32_t p = tcp_local_port(h);
  REQUIRE(p > 0 && p < 65536, "listener port %d", p);
  recs[ri].tcp_port = p;
  uint8_t a[16];
  REQUIRE(tcp_local_address(h, a) == (v6 ? 16 : 4), "listener address length");
}

static int connect_to(int li, int64_t port, int64_t timeout_ms) {
  rec *l = &recs[li];
  bool v6 = l->family == 6;
  int idx = add_req(K_CONNECT, nrecs, port, 0);
  int64_t h = tcp_connect(port, id_of(idx), v6 ? LO6 : LO4, v6 ? 16 : 4, l->tcp_port, NULL, 0, 0,
                          timeout_ms);
  if (!engine_up) {
    REQUIRE(h == TCP_ERR_NOT_INITIALIZED, "connect while down: %lld", (long long)h);
    nreqs--, outstanding--;
    return -1;
  }
  REQUIRE(h > 0, "connect to loopback refused: %lld (%s, os %d)", (long long)h, tcp_strerror(h),
          tcp_last_os_error());
  int ri = new_rec(false, h, port, l->family);
  REQUIRE(ri == reqs[idx].rec, "rec bookkeeping");
  return ri;
}

static void op_connect(reader *in) {
  uint8_t flags = rd8(in);
  int64_t port = pick_port(in);
  int li = pick_rec(in, 1);
  if (li < 0) return;
  int64_t timeout = (flags & 1) ? (int64_t)rd8(in) * 8 : 0;
  connect_to(li, port, timeout);
}

static void op_accept(reader *in) {
  int li = pick_rec(in, 1);
  if (li < 0) return;
  int idx = add_req(K_ACCEPT, li, recs[li].port, 0);
  int32_t rc = tcp_accept(recs[li].handle, id_of(idx));
  int32_t want = expected_refusal(li);
  REQUIRE(rc == want, "accept on rec %d: got %d, expected %d", li, rc, want);
  if (rc != 0) nreqs--, outstanding--;
}

static int64_t size_of_class(reader *in) {
  uint8_t c = rd8(in);
  switch (c & 7) {
    case 0: return 0;
    case 1: return 1 + (c >> 3) % 16;
    case 2: case 3: return 1 + rd16(in) % 1024;
    case 4: case 5: return 1 + rd16(in) % 16384;
    case 6: return 1 + rd16(in);
    default: return (c & 0x80) ? BIG_WRITE : 1 + rd16(in) % 200;
  }
}

/* Read, write and shutdown_write on a connection: accepted, or refused with
 * exactly the code the contract gives. */
static void check_io_refusal(int ri, int32_t rc, const char *what) {
  rec *r = &recs[ri];
  int32_t want = expected_refusal(ri);
  if (want == 0 && r->listener) want = TCP_ERR_BAD_HANDLE;
  if (want == 0 && rc == TCP_ERR_NOT_CONNECTED && !r->accepted) return; /* its connect failed */
  REQUIRE(rc == want, "%s on rec %d (%s): got %d (%s), expected %d", what, ri,
          r->listener ? "listener" : "connection", rc, tcp_strerror(rc), want);
}

static void op_read(reader *in) {
  int ri = pick_rec(in, rd8(in) < 16 ? -1 : 0);
  if (ri < 0) return;
  int64_t max = size_of_class(in);
  if (max == 0) max = 1;
  if (max == BIG_WRITE && (rd8(in) & 1) && huge_reads < 2) {
    max = TCP_READ_BYTES_MAX; /* the largest legal read */
    huge_reads++;
  }
  int idx = add_req(K_READ, ri, recs[ri].port, max);
  int32_t rc = tcp_read(recs[ri].handle, id_of(idx), max);
  if (rc != 0) nreqs--, outstanding--;
  check_io_refusal(ri, rc, "read");
}

static void op_write(reader *in) {
  int ri = pick_rec(in, rd8(in) < 16 ? -1 : 0);
  if (ri < 0) return;
  rec *r = &recs[ri];
  int64_t len = size_of_class(in);
  uint8_t *buf = len > 0 ? malloc((size_t)len) : NULL;
  if (len > 0) stream_fill(r->out_seed, r->out_queued, buf, (size_t)len);
  int idx = add_req(K_WRITE, ri, r->port, len);
  reqs[idx].write_seq = r->writes_issued;
  int32_t rc = tcp_write(r->handle, id_of(idx), buf, len);
  /* The engine copied the bytes: scribbling over them now must not matter. */
  if (buf != NULL) memset(buf, 0xEE, (size_t)len);
  free(buf);
  if (rc == 0) {
    r->writes_issued++;
    r->out_queued += (uint64_t)len;
  } else {
    nreqs--, outstanding--;
  }
  check_io_refusal(ri, rc, "write");
}

static void op_shutw(reader *in) {
  int ri = pick_rec(in, rd8(in) < 16 ? -1 : 0);
  if (ri < 0) return;
  int idx = add_req(K_SHUTW, ri, recs[ri].port, 0);
  int32_t rc = tcp_shutdown_write(recs[ri].handle, id_of(idx));
  if (rc != 0) nreqs--, outstanding--;
  else recs[ri].shutw_issued = true;
  check_io_refusal(ri, rc, "shutdown_write");
}

static void close_rec(int ri) {
  rec *r = &recs[ri];
  int idx = add_req(K_CLOSE, ri, r->port, 0);
  int32_t rc = tcp_close(r->handle, id_of(idx));
  int32_t want = expected_refusal(ri);
  REQUIRE(rc == want, "close of rec %d: got %d, expected %d", ri, rc, want);
  if (rc != 0) {
    nreqs--, outstanding--;
    return;
  }
  r->state = R_CLOSED;
  r->close_req = idx;
}

static void op_close(reader *in) {
  int ri = pick_rec(in, -1);
  if (ri >= 0) close_rec(ri); /* a second close of the same rec is a double close */
}

static void op_finalizer(reader *in) {
  int ri = pick_rec(in, -1);
  if (ri < 0) return;
  tcp_close_finalizer((void *)(intptr_t)recs[ri].handle);
  if (g_trace) fprintf(stderr, "[trace] finalizer on rec %d (handle %llx)\n", ri, (long long)recs[ri].handle);
  input_used_finalizer = true;
  if (recs[ri].state == R_LIVE && engine_up) recs[ri].state = R_FINALIZED;
}

/* A made-up handle: from the input, or a twist of a real one. */
static bool accept_outstanding(void) {
  for (int i = 0; i < nreqs; i++)
    if (!reqs[i].done && reqs[i].kind == K_ACCEPT) return true;
  return false;
}

static int64_t made_up_handle(reader *in) {
  uint8_t how = rd8(in);
  int ri = pick_rec(in, -1);
  int64_t h;
  /* An accepted socket whose completion is still on its way has a live handle
   * that no rec knows yet: a made-up value could name it for real. Only
   * values that can never be such a handle are used then. */
  if (how % 6 == 0 || how % 6 == 1 || how % 6 == 3) { /* 1: a freed slot's next generation */
    poll_now();
    if (accept_outstanding()) how = 2;
  }
  switch (how % 6) {
    case 0: h = (int64_t)rd64(in); break;
    case 1: h = ri >= 0 ? recs[ri].handle + ((int64_t)1 << 32) : 1; break;  /* future generation */
    case 2: h = ri >= 0 ? recs[ri].handle - ((int64_t)1 << 32) : 2; break;  /* past generation */
    case 3: h = ri >= 0 ? recs[ri].handle + 4096 : 3; break;                  /* far slot */
    case 4: h = -(int64_t)rd32(in); break;
    default: h = (int64_t)rd8(in); break;                                       /* generation 0 */
  }
  for (int i = 0; i < nrecs; i++)
    if (recs[i].state == R_LIVE && recs[i].handle == h) return INT64_MIN; /* not made up */
  return h;
}

static void op_bad_handle(reader *in) {
  int64_t h = made_up_handle(in);
  if (h == INT64_MIN) return;
  uint8_t which = rd8(in);
  int32_t rc;
  uint8_t buf[16] = {0};
  int64_t id = spare_id();
  switch (which % 10) {
    case 0: rc = tcp_accept(h, id); break;
    case 1: rc = tcp_read(h, id, 100); break;
    case 2: rc = tcp_write(h, id, buf, sizeof buf); break;
    case 3: rc = tcp_shutdown_write(h, id); break;
    case 4: rc = tcp_close(h, id); break;
    case 5: rc = tcp_local_port(h); break;
    case 6: rc = tcp_remote_address(h, buf); break;
    case 7: rc = tcp_get_no_delay(h); break;
    case 8: rc = tcp_set_keep_alive(h, 1); break;
    default: tcp_close_finalizer((void *)(intptr_t)h); return;
  }
  if (!engine_up)
    REQUIRE(rc == TCP_ERR_NOT_INITIALIZED, "made-up handle %llx while down: %d", (long long)h, rc);
  else
    REQUIRE(rc == TCP_ERR_BAD_HANDLE || rc == TCP_ERR_CLOSED,
            "made-up handle %llx (call %d) got %d (%s)", (long long)h, which % 10, rc, tcp_strerror(rc));
}

/* Bad arguments on real handles: each must be refused with
 * TCP_ERR_INVALID_ARGUMENT, before the handle is even looked at. */
static void op_bad_args(reader *in) {
  uint8_t which = rd8(in);
  int ri = pick_rec(in, -1);
  int64_t h = ri >= 0 ? recs[ri].handle : 1;
  int64_t id = spare_id();
  uint8_t small[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  int64_t r64 = 0;
  int32_t rc = 0;
  switch (which % 14) {
    case 0: rc = tcp_read(h, id, 0); break;
    case 1: rc = tcp_read(h, id, -(int64_t)rd32(in) - 1); break;
    case 2: rc = tcp_read(h, id, (int64_t)TCP_READ_BYTES_MAX + 1 + rd32(in)); break;
    case 3: rc = tcp_write(h, id, NULL, 1 + rd16(in)); break;
    case 4: rc = tcp_write(h, id, small, -1 - (int64_t)rd16(in)); break;
    /* Oversized: the engine must refuse without touching the 8-byte buffer. */
    case 5: rc = tcp_write(h, id, small, (int64_t)TCP_WRITE_BYTES_MAX + 1 + rd32(in)); break;
    case 6: r64 = tcp_listen(port_a, NULL, 4, 0, 0, 0, 0); break;
    case 7: {
      int32_t len = rd8(in) % 32;
      if (len == 4 || len == 16) len++;
      r64 = tcp_listen(port_a, LO4, len, 0, 0, 0, 0);
      break;
    }
    case 8: r64 = tcp_listen(port_a, LO4, 4, 65536 + rd16(in), 0, 0, 0); break;
    case 9: r64 = tcp_connect(port_a, id, LO4, 4, 0, NULL, 0, 0, 0); break; /* port 0 */
    case 10: r64 = tcp_connect(port_a, id, NULL, 16, 80, NULL, 0, 0, 0); break;
    case 11: r64 = tcp_connect(port_a, id, LO4, 4, 1 + rd16(in) % 65535, LO6, 16, 0, 0); break; /* family mismatch */
    case 12: rc = tcp_local_address(h, NULL); break;
    default: r64 = tcp_connect(port_a, id, LO4, 4, -1 - (int32_t)rd16(in), NULL, 0, 0, 0); break;
  }
  if (r64 != 0) rc = (int32_t)r64;
  REQUIRE(rc == TCP_ERR_INVALID_ARGUMENT, "bad arguments (case %d) got %d (%s)", which % 14, rc,
          tcp_strerror(rc));
}

/* A zero-length write with a NULL buffer is legal. */
static void op_null_empty_write(reader *in) {
  int ri = pick_rec(in, 0);
  if (ri < 0) return;
  rec *r = &recs[ri];
  int idx = add_req(K_WRITE, ri, r->port, 0);
  reqs[idx].write_seq = r->writes_issued;
  int32_t rc = tcp_write(r->handle, id_of(idx), NULL, 0);
  if (rc == 0) r->writes_issued++;
  else nreqs--, outstanding--;
  check_io_refusal(ri, rc, "empty write");
}

static void op_accessors(reader *in) {
  int ri = pick_rec(in, -1);
  if (ri < 0) return;
  rec *r = &recs[ri];
  int32_t want = expected_refusal(ri);
  uint8_t a[16];
  uint8_t which = rd8(in);
  int32_t rc;
  switch (which % 6) {
    case 0:
      rc = tcp_local_address(r->handle, a);
      if (want == 0) REQUIRE(rc == (r->family == 6 ? 16 : 4), "local address of rec %d: %d", ri, rc);
      else REQUIRE(rc == want, "local address of rec %d: %d, expected %d", ri, rc, want);
      break;
    case 1:
      rc = tcp_local_port(r->handle);
      if (want == 0) REQUIRE(rc >= 0 && rc < 65536, "local port of rec %d: %d", ri, rc);
      else REQUIRE(rc == want, "local port of rec %d: %d, expected %d", ri, rc, want);
      break;
    case 2:
      rc = tcp_remote_port(r->handle);
      if (want == 0 && r->listener) REQUIRE(rc == TCP_ERR_BAD_HANDLE, "remote port of a listener: %d", rc);
      else if (want == 0) REQUIRE((rc > 0 && rc < 65536) || rc == TCP_ERR_NOT_CONNECTED, "remote port of rec %d: %d", ri, rc);
      else REQUIRE(rc == want, "remote port of rec %d: %d, expected %d", ri, rc, want);
      if (want == 0 && r->accepted) REQUIRE(rc > 0 || rc == TCP_ERR_NOT_CONNECTED, "accepted socket without a peer port");
      break;
    case 3:
    case 4: {
      bool nodelay = which % 6 == 3;
      int32_t on = (which >> 4) & 1;
      rc = nodelay ? tcp_set_no_delay(r->handle, on) : tcp_set_keep_alive(r->handle, on);
      if (want == 0 && r->listener) {
        REQUIRE(rc == TCP_ERR_BAD_HANDLE, "option on a listener: %d", rc);
        break;
      }
      if (want != 0) {
        REQUIRE(rc == want, "option on rec %d: %d, expected %d", ri, rc, want);
        break;
      }
      REQUIRE(rc == 0, "set option on rec %d: %d (%s, os %d)", ri, rc, tcp_strerror(rc), tcp_last_os_error());
      int32_t got = nodelay ? tcp_get_no_delay(r->handle) : tcp_get_keep_alive(r->handle);
      REQUIRE(got == on, "option set to %d reads back %d", on, got);
      break;
    }
    default: {
      int64_t code = -(int64_t)rd8(in);
      const char *s = tcp_strerror(code);
      REQUIRE(s != NULL && s[0] != '\0', "tcp_strerror(%lld) empty", (long long)code);
      (void)tcp_last_os_error();
      REQUIRE(tcp_backend_name() == NULL || strcmp(tcp_backend_name(), g_backend) == 0, "backend name changed");
      break;
    }
  }
}

/* listen if needed, connect, accept, and give the accept a moment. */
static void op_pair(reader *in) {
  int li = -1;
  for (int i = nrecs - 1; i >= 0; i--)
    if (recs[i].listener && recs[i].state == R_LIVE) {
      li = i;
      break;
    }
  if (li < 0) {
    op_listen(in);
    li = nrecs - 1;
    if (li < 0 || !recs[li].listener || recs[li].state != R_LIVE) return;
  }
  int64_t port = pick_port(in);
  if (connect_to(li, port, 0) < 0) return;
  int idx = add_req(K_ACCEPT, li, recs[li].port, 0);
  int32_t rc = tcp_accept(recs[li].handle, id_of(idx));
  REQUIRE(rc == 0, "accept on a live listener: %d", rc);
  for (int k = 0; k < 8 && !reqs[idx].done; k++) wait_some(5);
}

/* A socket whose port goes away: every post to it is refused, and the engine
 * must free what those messages carried. Its requests are not tracked. */
static void op_temp_port(reader *in) {
  int li = pick_rec(in, 1);
  if (li < 0 || recs[li].state != R_LIVE || !engine_up) return;
  int64_t tp = fake_dart_open_port();
  input_used_temp_port = true;
  input_used_finalizer = true;
  rec *l = &recs[li];
  bool v6 = l->family == 6;
  int64_t h = tcp_connect(tp, spare_id(), v6 ? LO6 : LO4, v6 ? 16 : 4, l->tcp_port, NULL, 0, 0, 0);
  REQUIRE(h > 0, "connect on a temporary port: %lld", (long long)h);
  int ri = new_rec(false, h, tp, l->family);
  recs[ri].temp_port = true;
  uint8_t byte = 42;
  (void)tcp_write(h, spare_id(), &byte, 1); /* its data never reaches a reader check (no header) */
  (void)tcp_read(h, spare_id(), 1 + rd8(in));
  fake_dart_close_port(tp);
  if (rd8(in) & 1) {
    REQUIRE(tcp_close(h, spare_id()) == 0, "close on a temporary port");
  } else {
    tcp_close_finalizer((void *)(intptr_t)h);
  }
  recs[ri].state = R_FINALIZED;
  recs[ri].out_seed = 0; /* never a stream header */
}

static void engine_down(void) {
  int64_t t0 = g_profile ? now_us() : 0;
  int32_t rc = tcp_shutdown();
  if (g_profile) prof_us[1] += now_us() - t0;
  REQUIRE(rc == TCP_OK, "tcp_shutdown: %d", rc);
  engine_up = false;
  REQUIRE(tcp_backend_name() == NULL, "backend name after shutdown");
  /* Shutdown posted everything before it returned: no waiting. */
  poll_now();
  if (outstanding != 0) {
    for (int i = 0; i < nreqs; i++)
      if (!reqs[i].done)
        fprintf(stderr, "  request %d (%s) on rec %d still outstanding\n", i, kind_name(reqs[i].kind), reqs[i].rec);
    fail("%d requests had no completion when tcp_shutdown returned", outstanding);
  }
  for (int i = 0; i < nrecs; i++)
    if (recs[i].state == R_LIVE || recs[i].state == R_FINALIZED) recs[i].state = R_DEAD;
  int fds = count_fds();
  if (fds != fds_engine_down) {
    list_fds();
    fail("%d sockets open after tcp_shutdown, %d before tcp_init", fds, fds_engine_down);
  }
}

static void engine_upagain(void) {
  int64_t t0 = g_profile ? now_us() : 0;
  int32_t rc = tcp_init(fake_dart_api_data());
  if (g_profile) prof_us[1] += now_us() - t0;
  REQUIRE(rc == TCP_OK, "tcp_init: %d", rc);
  engine_up = true;
  REQUIRE(tcp_backend_name() != NULL && strcmp(tcp_backend_name(), g_backend) == 0,
          "backend %s, expected %s", tcp_backend_name() ? tcp_backend_name() : "(null)", g_backend);
  /* Handles from before the restart stay invalid. */
  for (int i = 0; i < nrecs; i++)
    if (recs[i].state == R_DEAD) recs[i].state = R_CLOSED;
  fds_engine_up = count_fds();
}

static void op_lifecycle(reader *in) {
  uint8_t what = rd8(in);
  if (what % 4 == 0) {
    if (engine_up) engine_down();
    else REQUIRE(tcp_shutdown() == TCP_ERR_NOT_INITIALIZED, "tcp_shutdown while down");
  } else if (what % 4 == 1) {
    if (engine_up) REQUIRE(tcp_init(fake_dart_api_data()) == TCP_OK, "second tcp_init");
    else engine_upagain();
  } else if (what % 4 == 2) {
    if (engine_up) {
      engine_down();
      engine_upagain();
    }
  } else {
    /* Bad DL API data is refused (and harmless while running: ignored). */
    int32_t rc = tcp_init(NULL);
    if (engine_up) REQUIRE(rc == TCP_OK, "tcp_init(NULL) while running: %d", rc);
    else REQUIRE(rc == TCP_ERR_DART_API, "tcp_init(NULL) while down: %d", rc);
  }
}

/* ---- end of input ---------------------------------------------------------------- */
static void drain_all(void) {
  draining = true;
  if (!engine_up) engine_upagain();
  poll_now();
  for (int i = 0; i < nrecs; i++)
    if (recs[i].state == R_LIVE) close_rec(i);
  int64_t start = now_ms();
  while (outstanding > 0) {
    if (now_ms() - start >= DRAIN_BOUND_MS) {
      for (int i = 0; i < nreqs; i++)
        if (!reqs[i].done)
          fprintf(stderr, "  request %d (%s) on rec %d (handle %llx) outstanding\n", i,
                  kind_name(reqs[i].kind), reqs[i].rec, (long long)recs[reqs[i].rec].handle);
      fail("%d requests did not complete within %d ms of closing every socket", outstanding,
           DRAIN_BOUND_MS);
    }
    wait_some(50);
    for (int i = 0; i < nrecs; i++)
      if (recs[i].state == R_LIVE) close_rec(i); /* accepted during the drain */
  }
  poll_now();
  draining = false;
  /* Clean end of stream: every byte whose write completed arrived first. */
  for (int i = 0; i < nrecs; i++) {
    rec *r = &recs[i];
    if (r->eof && r->writer >= 0)
      REQUIRE(r->in_off >= recs[r->writer].out_ok,
              "rec %d saw end of stream after %llu bytes, but its writer completed %llu", i,
              (unsigned long long)r->in_off, (unsigned long long)recs[r->writer].out_ok);
  }
  fd_stats st;
  fake_dart_stats(&st);
  REQUIRE(st.malformed == 0, "malformed message: %s", fake_dart_last_malformed());
  REQUIRE(st.external_live == 0, "%llu read buffers still held by the fake VM",
          (unsigned long long)st.external_live);
  if (input_used_finalizer) {
    /* A finalizer's close posts nothing, so only a full engine stop tells
     * when its socket is gone; tcp_shutdown is that barrier. */
    engine_down();
    engine_upagain();
  } else {
    REQUIRE(st.posts_refused == refused_seen, "a post was refused on a port that is open");
    int fds = count_fds();
    if (fds != fds_engine_up) {
      list_fds();
      fail("%d sockets open after every close completed, %d expected", fds, fds_engine_up);
    }
  }
  fake_dart_stats(&st);
  refused_seen = st.posts_refused;
}

/* ---- libFuzzer entry points ------------------------------------------------------- */
static void shutdown_at_exit(void) {
  if (!engine_up) return;
  tcp_shutdown();
  engine_up = false;
  poll_now(); /* completions of nothing: every input drained its own */
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *b = getenv("ZIG_TCP_BACKEND");
  g_backend = b && b[0] ? b : "io_uring";
  g_trace = getenv("FUZZ_TRACE") != NULL;
  g_profile = getenv("FUZZ_PROFILE") != NULL;
  port_a = fake_dart_open_port();
  port_b = fake_dart_open_port();
  fds_engine_down = count_fds();
  int32_t rc = tcp_init(fake_dart_api_data());
  if (rc != TCP_OK) {
    fprintf(stderr, "tcp_init failed: %d (%s)\n", rc, tcp_strerror(rc));
    exit(1);
  }
  engine_up = true;
  if (tcp_backend_name() == NULL || strcmp(tcp_backend_name(), g_backend) != 0) {
    fprintf(stderr, "backend %s, expected %s\n", tcp_backend_name(), g_backend);
    exit(1);
  }
  fds_engine_up = count_fds();
  fprintf(stderr, "fuzz_ops: backend %s, %d sockets with the engine up\n", g_backend, fds_engine_up);
  /* Stop the engine before LeakSanitizer's exit-time check (atexit runs the
   * handlers in reverse order, so this one comes first): with the I/O thread
   * joined, everything the engine still holds is reachable or truly leaked. */
  atexit(shutdown_at_exit);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  g_input_no++;
  int64_t t0 = g_profile ? now_us() : 0;
  nrecs = 0;
  nreqs = 0;
  outstanding = 0;
  input_used_temp_port = false;
  input_used_finalizer = false;
  huge_reads = 0;
  reader in = {data, size, 0};
  for (int step = 0; step < MAX_STEPS && in.i < in.n; step++) {
    uint8_t op = rd8(&in);
    if (g_trace) fprintf(stderr, "[trace] step %d: op %d (%u)\n", step, op % 20, op);
    switch (op % 20) {
      case 0: op_listen(&in); break;
      case 1: case 2: op_connect(&in); break;
      case 3: op_accept(&in); break;
      case 4: case 5: op_read(&in); break;
      case 6: case 7: op_write(&in); break;
      case 8: op_shutw(&in); break;
      case 9: op_close(&in); break;
      case 10: op_finalizer(&in); break;
      case 11: op_bad_handle(&in); break;
      case 12: op_bad_args(&in); break;
      case 13: poll_now(); break;
      case 14: wait_some(1); break;
      case 15: op_accessors(&in); break;
      case 16: op_pair(&in); break;
      case 17: if (op >= 200) op_lifecycle(&in); else op_null_empty_write(&in); break;
      case 18: if (op >= 200) op_temp_port(&in); else poll_now(); break;
      default: {
        /* close everything mid-program and carry on with what remains */
        drain_all();
        break;
      }
    }
  }
  int64_t t1 = g_profile ? now_us() : 0;
  drain_all();
  if (g_profile) {
    int64_t t2 = now_us();
    prof_us[2] += t2 - t1;
    prof_us[3] += t2 - t0;
    if (g_input_no % 1000 == 0)
      fprintf(stderr, "[profile] per input: %lld us total, %lld waiting in steps+drain, %lld restarting, %lld in the final drain\n",
              (long long)prof_us[3] / 1000, (long long)prof_us[0] / 1000, (long long)prof_us[1] / 1000,
              (long long)prof_us[2] / 1000);
    if (g_input_no % 1000 == 0) memset(prof_us, 0, sizeof prof_us);
  }
  return 0;
}
