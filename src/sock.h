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

/* A backend's per-socket state inside the record: io_uring and IOCP keep a
 * flag, libuv a pointer to its own allocation. */
#define SOCK_BACKEND_BYTES 16

struct tcp_sock {
  qlink command_link; /* the loop's release queue */
  qlink backend_link; /* the backend's own lists while it releases, then the sink */
  sock_kind kind;
  uint32_t slot;             /* index in the handle table */
  int64_t handle;            /* the id handed out (slot | generation << 32) */
  int64_t dart_port;
  os_socket fd;
  int family;                /* AF_INET / AF_INET6, or AF_UNIX: the transport (family_is_tcp) */
  os_unix_file *unix_file;   /* a Unix listener's socket file, removed when its close begins
                              * (tcp.h, tcp_listen_unix); NULL for every other socket */
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
  /* Order checks: ops end in call order. 32 bits (every idle connection pays
   * for its record): wrapping is harmless, they are only compared for equality
   * with tcp_op.seq. */
  uint32_t reads_issued, reads_ended;
  uint32_t writes_issued, writes_ended;
  tcp_op *connect_op;        /* the pending connect, if any */
  tcp_op *close_op;          /* the pending close, if any */
  tcp_op *stream;            /* the read stream's anchor (OP_READ_STREAM), if one runs */
  /* Shared listeners (shared.c): a member is the handle one tcp_listen with
   * TCP_LISTEN_SHARED returned; it owns no OS socket (fd is its group's) and
   * its accepts run on the group's listener, which is hidden from callers. */
  tcp_sock *group;           /* member: the group's listener */
  uint32_t group_members;    /* group listener: members still open */
  int32_t member_accepts;    /* member: its accepts not yet ended */
  bool hidden;               /* a group's listener: no caller may use its handle */
  bool in_group_table;       /* a group's listener others may still join */
  bool stream_stopping;      /* tcp_read_stream_stop seen: no new receives */
  bool stream_receiving;     /* one of its receives is in the read queue */
  int64_t stream_window;     /* bytes it may post beyond those acknowledged */
  int64_t stream_posted, stream_acked;
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
/* Read streams (stream.c). */
void sock_stream_start(tcp_sock *s, tcp_op *anchor, int64_t window_bytes);
int32_t sock_stream_ack(tcp_sock *s, int64_t bytes);
int32_t sock_stream_stop(tcp_sock *s);
/* sock.c -> stream.c: a receive of the stream ended with result (> 0: its bytes
 * were posted as a DATA completion); the stream goes on or ends. */
void sock_stream_receive_ended(tcp_sock *s, int64_t result, int64_t os_error);
/* sock.c -> stream.c: the socket is closing; ends the stream if no receive
 * of it is in flight. */
void sock_stream_closing(tcp_sock *s);
/* stream.c -> sock.c: queue a receive (like sock_add_read). */
void sock_queue_read(tcp_sock *s, tcp_op *op);
/* stream.c -> sock.c: the stream stops; its receive (s->stream_receiving)
 * ends now, is cancelled, or ends when its turn comes. */
bool sock_stream_stop_receive(tcp_sock *s);
/* stream.c -> sock.c: the op's outcome is final; post it. */
void sock_complete(tcp_op *op, int64_t result, int64_t os_error);

/* Shared listeners (shared.c). */
/* The group listening on addr (TCP: bound, port != 0; Unix: the path) that
 * new members may join. */
tcp_sock *shared_find(const struct sockaddr_storage *addr, int addr_len, bool v6_only);
/* Makes listener (just created on addr) a group others can join. */
bool shared_register(tcp_sock *listener, const struct sockaddr_storage *addr, int addr_len, bool v6_only);
/* A new member of group for dart_port; NULL with *error on failure. */
tcp_sock *shared_join(tcp_sock *group, int64_t dart_port, int32_t *error);
/* sock.c -> shared.c: a member begins closing / one of its accepts ended. */
void shared_member_closing(tcp_sock *member);
void shared_member_accept_ended(tcp_sock *member);
/* sock.c -> shared.c: a group listener begins closing: nobody joins it now. */
void shared_forget(tcp_sock *group);

/* I/O thread: the backend reported op (its outcome is in op->result etc.). */
void sock_op_ended(tcp_op *op);
/* I/O thread: the backend released s; s is freed. */
void sock_released(tcp_sock *s);

#endif /* ZIG_TCP_SOCK_H */
