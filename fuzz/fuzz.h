/*
 * fuzz.h -- the parts of the operation-sequence fuzzer (fuzz/fuzz_ops.c has
 * the overview) and what they share:
 *   fuzz_ops.c     libFuzzer's entry points, the program interpreter, engine
 *                  restarts and the end-of-input checks;
 *   fuzz_model.c   the model of one input (sockets, requests, the byte
 *                  stream of each direction, who is whose peer) and the
 *                  checks every completion goes through;
 *   fuzz_calls.c   the operations on listeners and connections (listen,
 *                  connect, accept, read, write, close, bad input, ...);
 *   fuzz_stream.c  streaming reads: their operations and the checks of their
 *                  DATA and final completions.
 */
#ifndef ZIG_TCP_FUZZ_H
#define ZIG_TCP_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
#define REQUIRE(cond, ...)            \
  do {                                \
    if (!(cond)) fail(__VA_ARGS__);   \
  } while (0)

/* ---- input reader ------------------------------------------------------------- */
typedef struct reader {
  const uint8_t *p;
  size_t n, i;
} reader;
static inline uint8_t rd8(reader *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static inline uint16_t rd16(reader *r) { return (uint16_t)(rd8(r) | (rd8(r) << 8)); }
static inline uint32_t rd32(reader *r) { return (uint32_t)rd16(r) | ((uint32_t)rd16(r) << 16); }
static inline uint64_t rd64(reader *r) { return (uint64_t)rd32(r) | ((uint64_t)rd32(r) << 32); }

/* ---- byte streams ---------------------------------------------------------------- */
/* Each direction is self-describing: 8 bytes of seed (least significant
 * first), then the byte stream of that seed (test_c/byte_stream.h). */
#define STREAM_HEADER_LEN 8
uint8_t stream_byte(uint64_t seed, uint64_t off);
void stream_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t n);

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
  int family;           /* 4 or 6, or FAMILY_UNIX */
  int32_t path_len;     /* Unix: the listener's path (a connection: its listener's) */
  uint8_t path[48];
  int32_t tcp_port;     /* listener: its port; connection: the listener's port it belongs to */
  int32_t pair_port;    /* connection: the client's port (accepted: the remote one; connector: its
                           own), 0 while unknown; pairs a connection with its peer */
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
  int stream;           /* request index of its latest read stream, -1 none */
} rec;

typedef enum kind { K_CONNECT = 1, K_ACCEPT, K_READ, K_WRITE, K_SHUTW, K_CLOSE, K_STREAM } kind;
const char *kind_name(int k);

typedef struct req {
  uint8_t kind;
  bool done;
  int rec;
  int64_t port;
  int64_t len;        /* read: bytes_max; write: bytes_len; stream: window_bytes */
  uint32_t write_seq; /* write: its index among the rec's writes */
  int64_t result;
  /* read stream */
  int64_t posted, acked;    /* bytes of its DATA completions; bytes acknowledged */
  uint32_t chunks;          /* DATA completions */
  bool stop_called;         /* tcp_read_stream_stop accepted */
  bool must_have_ended;     /* the engine answered as if it had ended on its own */
  uint32_t shutdowns_before; /* g_shutdowns when it started */
} req;

extern rec recs[MAX_RECS];
extern int nrecs;
extern req reqs[MAX_REQS];
extern int nreqs, outstanding;
extern int64_t port_a, port_b;
extern bool engine_up, draining;
extern bool input_used_temp_port, input_used_finalizer;
extern int huge_reads;
extern uint32_t g_shutdowns;        /* tcp_shutdown calls so far */
extern unsigned long long g_input_no;
extern const char *g_backend;
extern bool g_trace;                /* FUZZ_TRACE=1: print the program, every request and completion */
extern bool g_profile;              /* FUZZ_PROFILE=1: where the wall time goes, every 1000 inputs */
extern int64_t prof_us[4];          /* wait_some, restart, drain, total */
extern const uint8_t LO4[4], LO6[16];
/* rec.family of a Unix domain socket (fuzz_calls.c picks a transport per
 * listener: IPv4, IPv6, a filesystem path or, on Linux, an abstract name). */
#define FAMILY_UNIX 1

/* ---- the model (fuzz_model.c) ------------------------------------------------------ */
int64_t now_ms(void);
int64_t now_us(void);
int64_t id_of(int idx);
int64_t spare_id(void);             /* an id for a request that will be refused */
bool is_error_code(int64_t c);
int new_rec(bool listener, int64_t handle, int64_t port, int family);
int add_req(kind k, int ri, int64_t port, int64_t len);
void drop_req(int32_t rc);          /* the request just added was refused with rc */
bool peer_may_have_ended(int ri);   /* may ri's peer have shut down its write side? */
void on_read_data(int ri, const uint8_t *data, size_t n);
void require_reads_before_done(int idx); /* earlier reads and streams of its rec completed first */
void poll_now(void);
void poll_after_shutdown(void);     /* poll_now for what tcp_shutdown posted */
void wait_on(int64_t port, int64_t timeout_ms);
void wait_some(int64_t timeout_ms);

/* ---- operations (fuzz_calls.c) ------------------------------------------------------ */
int64_t pick_port(reader *in);
int pick_rec(reader *in, int want_listener);
int32_t expected_refusal(int ri);
void check_io_refusal(int ri, int32_t rc, const char *what);
void close_rec(int ri);
void op_listen(reader *in);
void op_connect(reader *in);
void op_accept(reader *in);
void op_read(reader *in);
void read_on(int ri, int64_t max);
void op_write(reader *in);
void op_shutw(reader *in);
void op_close(reader *in);
void op_finalizer(reader *in);
void op_bad_handle(reader *in);
void op_bad_args(reader *in);
void op_null_empty_write(reader *in);
void op_accessors(reader *in);
void op_pair(reader *in);
void op_temp_port(reader *in);

/* ---- read streams (fuzz_stream.c) ----------------------------------------------------- */
typedef enum stream_phase { S_NONE, S_RUNNING, S_STOPPING } stream_phase;
stream_phase stream_phase_of(int ri); /* as far as the completions taken so far tell */
void note_read_accepted(int idx);     /* a one-shot read was accepted (maybe beside a stream) */
int32_t read_side_busy(int ri);       /* TCP_ERR_BUSY while its stream runs, else 0 */
void on_stream_completion(int idx, fd_completion *c);
void op_stream_start(reader *in);
void op_stream_ack(reader *in);
void op_stream_stop(reader *in);
void op_stream_fill(reader *in);
void op_stream_probe(reader *in);

#endif /* ZIG_TCP_FUZZ_H */
