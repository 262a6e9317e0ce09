/*
 * harness.h -- the test runner and the request tracker of the C suite.
 *
 * Runner: tests are plain functions; CHECK* and SKIP leave a test with
 * longjmp, so helpers at any depth can fail it. Each test runs on a fresh
 * engine (tcp_init before, tcp_shutdown after) and a reset fake VM.
 *
 * Tracker: every asynchronous call that the engine accepted is registered with
 * its request id, kind and port. Every completion that arrives is checked at
 * once: known id, on the right port, first completion for that id, payload of
 * the right shape for the kind and result. After the test, the engine is shut
 * down (which posts every remaining completion) and every registered request
 * must have completed exactly once -- except those whose port the test closed.
 */
#ifndef ZIG_TCP_HARNESS_H
#define ZIG_TCP_HARNESS_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_dart.h"
#include "tcp.h"

/* ---- runner ------------------------------------------------------------------ */
typedef void (*test_fn)(void);

void h_fail_at(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4), noreturn))
#endif
    ;
void h_skip(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;

#define FAILF(...) h_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define SKIP(...) h_skip(__VA_ARGS__)
#define CHECK(cond)                                   \
  do {                                                \
    if (!(cond)) FAILF("check failed: %s", #cond);    \
  } while (0)
/* Compares two integers; error codes are printed by name. */
#define CHECK_EQ(got, want)                                                              \
  do {                                                                                   \
    long long got_ = (long long)(got), want_ = (long long)(want);                        \
    if (got_ != want_)                                                                   \
      FAILF("%s: got %lld (%s), expected %lld (%s)", #got, got_, h_code_name(got_), want_, \
            h_code_name(want_));                                                         \
  } while (0)

/* "TCP_ERR_CLOSED" for -3, "" for anything that is not an error code. */
const char *h_code_name(long long code);

/* The bound on every wait for a completion (ms). TCP_SUITE_TIMEOUT_MS sets it. */
extern int64_t h_timeout_ms;

/* ---- engine lifetime inside a test ------------------------------------------ */
/* tcp_shutdown for a test that wants it; the tracker learns that the engine is
 * down (the runner then skips its own shutdown). */
void h_engine_shutdown(void);
/* tcp_init with the fake VM after h_engine_shutdown. */
void h_engine_init(void);

/* ---- tracker ---------------------------------------------------------------- */
typedef enum op_kind_t {
  K_CONNECT = 1,
  K_ACCEPT,
  K_READ,
  K_WRITE,
  K_SHUTW,
  K_CLOSE,
} op_kind_t;

typedef struct h_req {
  bool issued, done, consumed;
  op_kind_t kind;
  int64_t port;
  int64_t handle;   /* the socket the op was issued on */
  int64_t user;     /* free for the test */
  int64_t len;      /* write: bytes_len */
  fd_completion c;  /* when done */
} h_req;

/* A new port for this test (closed by the runner afterwards). */
int64_t h_port(void);
/* Closes a port in the middle of a test: its requests are exempt from the
 * exactly-once check (their posts are refused). */
void h_close_port(int64_t port);

/* A fresh request id (large, to check that 64 bits survive the trip). */
int64_t h_new_id(void);
/* Registers an accepted asynchronous call. */
void h_issue(int64_t id, int64_t port, op_kind_t kind, int64_t handle, int64_t user);
/* The record of id (fails the test for an unknown id). */
h_req *h_get(int64_t id);
/* Waits for the completion of id; marks it consumed. */
h_req *h_await(int64_t id);
/* The next not yet consumed completion on port, in arrival order; marks it
 * consumed. Fails the test after h_timeout_ms without one. */
h_req *h_next(int64_t port);
/* Frees the payload of a consumed completion early (big transfers).
 * h_req pointers stay valid for the whole test. */
void h_release(h_req *r);

/* ---- engine call wrappers: the call must be accepted, the request is tracked -- */
int64_t h_listen(int64_t port, const uint8_t *addr, int32_t addr_len, int32_t backlog);
int64_t h_accept(int64_t listener);
/* Awaits an accept; fails unless it produced a handle, which it returns. */
int64_t h_accepted(int64_t accept_id);
/* Returns the request id; the new handle goes to *handle. */
int64_t h_connect(int64_t port, const uint8_t *addr, int32_t addr_len, int32_t tcp_port,
                  int64_t timeout_ms, int64_t *handle);
int64_t h_read(int64_t conn, int64_t max);
int64_t h_write(int64_t conn, const void *bytes, int64_t len);
int64_t h_shutw(int64_t conn);
int64_t h_close(int64_t handle);
/* Waits and returns the result. */
int64_t h_result(int64_t id);

/* A connected pair on loopback of the family of addr (4 or 16 bytes):
 * *client from tcp_connect on client_port, *server accepted on the listener's
 * port. Returns the listener. Fails the test on any error. */
int64_t h_pair(int64_t listen_port, int64_t client_port, const uint8_t *addr, int32_t addr_len,
               int64_t *client, int64_t *server);
/* Reads exactly n bytes into buf (several reads if needed). */
void h_read_exact(int64_t conn, uint8_t *buf, size_t n);
/* Writes n bytes and waits for the completion. */
void h_write_all(int64_t conn, const void *bytes, size_t n);
/* Closes and waits for the close to complete with 0. */
void h_close_wait(int64_t handle);

extern const uint8_t H_LOOPBACK4[4];
extern const uint8_t H_LOOPBACK6[16];

/* ---- checksums -------------------------------------------------------------- */
uint64_t h_fnv1a(uint64_t h, const uint8_t *p, size_t n);
#define H_FNV_INIT 0xcbf29ce484222325ull
/* Fills buf with a pseudo-random stream from seed. */
void h_fill(uint8_t *buf, size_t n, uint64_t seed);

#endif /* ZIG_TCP_HARNESS_H */
