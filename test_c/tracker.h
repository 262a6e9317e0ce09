/*
 * tracker.h -- the request tracker: checks every completion the engine posts.
 *
 * Every asynchronous call that the engine accepted is registered with its
 * request id, kind and port (h_issue; tracked_calls.h does it for the usual
 * calls). Every completion that arrives is checked at once: known id, on the
 * right port, first completion for that id, payload of the right shape for the
 * kind and result (tcp.h COMPLETION MESSAGES). After the test,
 * h_tracker_finish shuts the engine down (which posts every remaining
 * completion) and checks that every registered request completed exactly once
 * -- except those whose port the test closed -- that every message was a
 * well-formed batch and that no read buffer is left.
 *
 * A failed check fails the running test (runner.h). The runner calls
 * h_tracker_finish and h_tracker_reset around each test; another program that
 * links the harness gets the same checks by running its cases with
 * h_run_test.
 */
#ifndef ZIG_TCP_TRACKER_H
#define ZIG_TCP_TRACKER_H

#include <stdbool.h>
#include <stdint.h>

#include "fake_dart.h"

typedef enum op_kind_t {
  K_CONNECT = 1,
  K_ACCEPT,
  K_READ,
  K_WRITE,
  K_SHUTW,
  K_CLOSE,
  K_STREAM, /* tcp_read_stream: DATA completions, then one final */
} op_kind_t;

typedef struct h_req {
  bool issued, done, consumed;
  op_kind_t kind;
  int64_t port;
  int64_t handle;   /* the socket the op was issued on */
  int64_t user;     /* free for the test */
  int64_t len;      /* write: bytes_len */
  fd_completion c;  /* when done (a stream: its final completion) */
  /* A stream: the bytes of its DATA completions, in arrival order. */
  uint8_t *stream_bytes;
  size_t stream_len, stream_cap;
  uint64_t stream_chunks;
  int64_t stream_acked; /* for the test: bytes it acknowledged */
} h_req;

/* ---- engine lifetime inside a test ------------------------------------------ */
/* tcp_shutdown for a test that wants it; the tracker learns that the engine is
 * down (the runner then skips its own shutdown). */
void h_engine_shutdown(void);
/* tcp_init with the fake VM after h_engine_shutdown. */
void h_engine_init(void);
/* For a backend's fault hook: skips the test unless `backend` runs, then
 * restarts the engine with the environment variable `name` set to `value`
 * (removed again when the test ends) and checks the same backend came up. */
void h_engine_restart_with_fault(const char *backend, const char *name, const char *value);
/* The engine is up (a test that called tcp_init itself says so; the runner
 * after its own tcp_init): h_tracker_finish shuts it down. */
void h_engine_started(void);
/* tcp_shutdown without checks if the engine is still up (teardown after a
 * failed check). */
void h_engine_shutdown_unchecked(void);

/* ---- ports and sockets ---------------------------------------------------------- */
/* A new port for this test (closed by the runner afterwards). */
int64_t h_port(void);
/* Closes a port in the middle of a test: its requests are exempt from the
 * exactly-once check (their posts are refused). */
void h_close_port(int64_t port);
/* Records which port a socket's completions go to (tracked_calls.c does it
 * for every socket it makes). */
void h_remember_port(int64_t handle, int64_t port);
/* The port of a socket (fails the test for an unknown one). */
int64_t h_port_of(int64_t handle);

/* ---- requests ------------------------------------------------------------------- */
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
/* A stream: waits until at least bytes of DATA arrived (or its final did);
 * returns the record. */
h_req *h_stream_wait(int64_t id, size_t bytes);
/* A stream: takes whatever already arrived, without waiting. */
void h_stream_poll(int64_t id);
/* Takes the next completion of port if one is there (no wait), checks and
 * files it as h_next does and returns its request, marked consumed; NULL when
 * none is there. A stream's DATA completion returns the stream with
 * *data_bytes = its size (its bytes end stream_bytes); otherwise 0. For a
 * program that checks every completion in arrival order itself. */
h_req *h_take(int64_t port, size_t *data_bytes);
/* Frees the payload of a consumed completion early (big transfers).
 * h_req pointers stay valid for the whole test. */
void h_release(h_req *r);

/* ---- around a test ----------------------------------------------------------------- */
/* After the test body: shut the engine down, take every completion left and
 * check that every tracked request completed exactly once (see above). */
void h_tracker_finish(void);
/* Forgets every request, port and socket of the test; frees their payloads. */
void h_tracker_reset(void);

#endif /* ZIG_TCP_TRACKER_H */
