/* sock.h -- socket records and the per-socket state machine: the read, write
 * and accept queues, the order rules of tcp.h, and the close/cancel protocol.
 *
 * THE CLOSE PROTOCOL (sock_begin_close)
 *   The handle dies at once. Ops that were never started complete with the
 *   close reason (in call order, after any in flight ahead of them). Ops in
 *   flight are cancelled in the backend and complete with the close reason when
 *   the backend reports them. Once no op is in flight the backend releases the
 *   OS socket; only when it reports that does the close itself complete.
 *
 * Every function: engine lock held. Those marked "I/O thread" run only there. */
#ifndef ZIG_TCP_SOCK_H
#define ZIG_TCP_SOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "ops.h"

typedef enum sock_kind {
  SOCK_LISTENER,
  SOCK_CONNECTION,
} sock_kind;

#define SOCK_BACKEND_BYTES 256

struct tcp_sock {
  qlink command_link; /* the loop's release queue */
  qlink backend_link; /* the backend's own lists while it releases, then the sink */
  sock_kind kind;
  uint32_t slot;             /* index in the handle table */
  int64_t handle;            /* the id handed out (slot | generation << 32) */
  int64_t dart_port;
  os_socket fd;
  int family;                /* AF_INET / AF_INET6 */
  bool closing;              /* tcp_close or shutdown seen: no new ops */
  bool release_requested;    /* handed to the loop for backend->release */
  bool connected;            /* reads/writes may start (false while connecting) */
  bool source_bound;         /* tcp_connect bound a source address (a backend that must bind
                              * before connecting, IOCP's ConnectEx, then does not) */
  int32_t close_reason;      /* TCP_ERR_CLOSED or TCP_ERR_SHUTDOWN */
  int32_t inflight;          /* ops started and not yet ended */
  queue reads;               /* the head is the only one that may be in flight */
  queue writes;              /* writes and shutdown_write, in call order; likewise */
  queue accepts;             /* all in flight */
  uint64_t reads_issued, reads_ended;   /* order checks: ops end in call order */
  uint64_t writes_issued, writes_ended;
  tcp_op *connect_op;        /* the pending connect, if any */
  tcp_op *close_op;          /* the pending close, if any */
  _Alignas(16) unsigned char backend[SOCK_BACKEND_BYTES];
};

/* A new socket with a handle, adopted by the backend; NULL with *error set on
 * failure (fd is then still the caller's). */
tcp_sock *sock_create(sock_kind kind, int64_t dart_port, os_socket fd, int family, int32_t *error);
/* Queue a read / a write or shutdown_write / an accept; starts it when its turn
 * comes. */
void sock_add_read(tcp_sock *s, tcp_op *op);
void sock_add_write(tcp_sock *s, tcp_op *op);
void sock_add_accept(tcp_sock *s, tcp_op *op);
/* Starts the connect of a socket made by tcp_connect (s->connected is false). */
void sock_add_connect(tcp_sock *s, tcp_op *op);
/* The close protocol above. close_op may be NULL (a finalizer's close). */
void sock_begin_close(tcp_sock *s, int32_t reason, tcp_op *close_op);
/* I/O thread: the backend reported op (its outcome is in op->result etc.). */
void sock_op_ended(tcp_op *op);
/* I/O thread: the backend released s; s is freed. */
void sock_released(tcp_sock *s);

#endif /* ZIG_TCP_SOCK_H */
