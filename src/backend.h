/* backend.h -- the contract between the core and one OS backend.
 *
 * A backend is an OS mechanism and nothing more: it starts an operation in the
 * OS, cancels it, waits for the OS to finish operations and hands them to the
 * core, wakes a waiting I/O thread, and closes OS sockets. The core owns
 * everything else: handles, queues, order, the close protocol, connect
 * deadlines, the I/O loop itself and posting to Dart (see loop.c).
 *
 * THREADS AND LOCKING
 *   Every call below runs on the engine's I/O thread, except create and
 *   destroy (the thread that calls tcp_init / tcp_shutdown, while no I/O thread
 *   runs), adopt and wake (any thread). submit, cancel, release and adopt run
 *   with the engine lock held; poll and events_ready without it. A backend
 *   never takes the engine lock and never calls into the core except through
 *   the sink, so its state (an instance, never file globals) is touched by the
 *   I/O thread only -- wake is the one exception, and must be thread-safe.
 *
 * THE SINK
 *   A backend reports every op it was given exactly once, through one of the
 *   sink_op_* calls, and every socket it was asked to release through
 *   sink_sock_released. It reports an op only when the OS no longer refers to
 *   it (no pending CQE, no OVERLAPPED in flight, no libuv request) and it
 *   holds it in none of its own lists: the core may reuse the memory at once.
 *   Reports may be made from inside submit, cancel or release (an OS call that
 *   finished at once) or during poll. */
#ifndef ZIG_TCP_BACKEND_H
#define ZIG_TCP_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "ops.h"
#include "queue.h"
#include "sock.h"
#include "tcp.h"

typedef struct backend_vtable backend_vtable;
typedef struct backend_sink backend_sink;

/* The start of every backend instance. */
typedef struct backend {
  const backend_vtable *vtable;
  backend_sink *sink;
} backend;

struct backend_vtable {
  const char *name;
  /* Set up the OS mechanism. TCP_ERR_UNSUPPORTED lets the core fall back to
   * the next backend; *out is set only on TCP_OK. */
  int32_t (*create)(backend_sink *sink, backend **out);
  /* Free everything; every socket was released. */
  void (*destroy)(backend *b);
  /* Optional. First call on the I/O thread. */
  void (*thread_begin)(backend *b);
  /* Attach backend state to a new socket (s->backend). Any thread, lock held:
   * touches only s and thread-safe OS calls. */
  int32_t (*adopt)(backend *b, tcp_sock *s);
  /* Start op in the OS: OP_CONNECT (the core made and maybe bound the socket;
   * op->addr is the peer), OP_ACCEPT, OP_READ (up to op->len bytes), OP_WRITE
   * (op->len > 0 bytes from op->data; the backend sends them all, resubmitting
   * short writes, and keeps its progress in op->done) or OP_SHUTDOWN_WRITE.
   * A read holds no buffer while it waits: only when bytes arrive does the
   * backend give them to the op (op_read_copy / op_read_adopt, ops.h) and
   * report sink_op_done(op, n); n = 0 is end of stream, with no data. */
  void (*submit)(backend *b, tcp_op *op);
  /* Ask the OS to abandon op: called at most once, while op is submitted and
   * not yet reported. The op is still reported, as ended by the cancel
   * (sink_op_cancelled) or with whatever result the OS gives. */
  void (*cancel)(backend *b, tcp_op *op);
  /* No op of s is in flight: close the OS socket and report s (now or later). */
  void (*release)(backend *b, tcp_sock *s);
  /* Make progress: hand the OS what submit/cancel asked for, wait up to
   * timeout_ms (-1: until woken or something completes; 0: not at all) and
   * report what the OS finished. */
  void (*poll)(backend *b, int64_t timeout_ms);
  /* Make a poll that waits (now or next) return soon. Lock held, any thread. */
  void (*wake)(backend *b);
  /* Optional, lock-free: is there work poll would find without waiting? With
   * it, the loop lingers briefly before it waits (see loop.c). */
  bool (*events_ready)(backend *b);
  /* Optional: the clock of deadlines (the simulation backend's virtual time);
   * otherwise the OS's monotonic clock. */
  int64_t (*now_ms)(backend *b);
  /* Optional, I/O thread, no lock: the engine has been idle for a while;
   * give memory the backend holds but does not need back to the OS. */
  void (*trim)(backend *b);
};

/* Where reports go. The I/O thread's own: touched without the lock. */
struct backend_sink {
  queue ops;   /* tcp_op.backend_link */
  queue socks; /* tcp_sock.backend_link */
};

/* op succeeded: result >= 0 (bytes read, 0 = end of stream; bytes written; 0). */
void sink_op_done(backend_sink *sink, tcp_op *op, int64_t result);
/* op failed with an OS error code (errno, WSA/Win32 code), mapped by the core. */
void sink_op_error(backend_sink *sink, tcp_op *op, int64_t os_error);
/* op failed with a portable code the backend chose, and the OS code behind it. */
void sink_op_failed(backend_sink *sink, tcp_op *op, int32_t code, int64_t os_error);
/* op ended because of cancel(). */
void sink_op_cancelled(backend_sink *sink, tcp_op *op);
/* An accept produced fd; the core makes the connection (or closes fd). */
void sink_accept_done(backend_sink *sink, tcp_op *op, os_socket fd);
/* s is released: its OS socket is closed. */
void sink_sock_released(backend_sink *sink, tcp_sock *s);

/* The backends, in order of preference for this target. */
#if defined(_WIN32)
extern const backend_vtable backend_iocp;
#else
extern const backend_vtable backend_uv;
#if defined(ZIG_TCP_HAVE_IO_URING)
extern const backend_vtable backend_io_uring;
#endif
#endif
#if defined(ZIG_TCP_HAVE_SIM)
extern const backend_vtable backend_sim;
#endif

#endif /* ZIG_TCP_BACKEND_H */
