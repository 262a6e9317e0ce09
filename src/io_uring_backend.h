/* io_uring_backend.h -- what the io_uring backend's files share: its
 * instance, its per-op and per-socket state, and the calls between the ring
 * side (backend_io_uring.c) and the receive path (io_uring_read.c). Internal
 * to the backend; the core sees only backend.h. */
#ifndef ZIG_TCP_IO_URING_BACKEND_H
#define ZIG_TCP_IO_URING_BACKEND_H

#include "backend.h"
#include "io_uring_bufs.h"
#include "io_uring_ring.h"

enum {
  TAG_OP = 0,     /* the op's own CQE */
  TAG_CANCEL = 1, /* the CQE of an ASYNC_CANCEL of the op */
  TAG_WAKE = 2,   /* the read of the wake eventfd */
  TAG_MASK = 3,
};

typedef struct uring_op {
  qlink cancel_link;   /* cancel_backlog */
  uint8_t *own_buffer; /* read: a buffer of its own (no provided buffers, or the ring ran dry) */
  uint8_t cqes_due;    /* CQEs still to come that name this op */
  bool cqe_seen;       /* its own CQE arrived; res and cqe_flags hold it */
  bool cancelled;      /* cancel() was called */
  int32_t res;
  uint32_t cqe_flags;
} uring_op;
_Static_assert(sizeof(uring_op) <= OP_BACKEND_BYTES, "uring_op must fit in tcp_op.backend");

typedef struct uring_sock {
  bool read_drained; /* the last read returned less than asked: the socket is likely empty */
} uring_sock;
_Static_assert(sizeof(uring_sock) <= SOCK_BACKEND_BYTES, "uring_sock must fit in tcp_sock.backend");

typedef struct uring_backend {
  backend base;
  uring_ring ring;
  int wake_fd;          /* eventfd: a write wakes a waiting I/O thread */
  uint64_t wake_value;  /* buffer of the pending eventfd read */
  bool wake_armed;      /* that read is in the kernel */
  bool broken;          /* the ring failed for good: every op fails at once */
  bool use_bufs;        /* reads select provided buffers */
  uring_bufs bufs;
  int fault_errno;      /* ZIG_TCP_URING_FAULT (tests): io_uring_enter fails with it ... */
  size_t fault_inflight;/* ... once, the first time this many ops are in the kernel */
  queue backlog, fresh_reads, aged_reads, in_kernel, cancel_backlog;
} uring_backend;

static inline uring_op *uop(tcp_op *op) { return (uring_op *)(void *)op->backend; }
static inline uring_sock *usock(tcp_sock *s) { return (uring_sock *)(void *)s->backend; }
static inline uring_backend *self(backend *b) { return (uring_backend *)(void *)b; }
static inline tcp_op *op_of(qlink *l) { return QUEUE_ENTRY(l, tcp_op, backend_link); }
/* cancel_link is the first member of uring_op, which is tcp_op.backend. */
static inline tcp_op *op_of_cancel_link(qlink *l) { return QUEUE_ENTRY(l, tcp_op, backend); }
static inline uint64_t user_data(tcp_op *op, unsigned tag) { return (uint64_t)(uintptr_t)op | tag; }

/* backend_io_uring.c: writes op's SQE, or queues it behind a full SQ. */
void uring_send_op(uring_backend *u, tcp_op *op);

/* io_uring_read.c: the receive path. */
void uring_hold_read(uring_backend *u, tcp_op *op);
void uring_release_reads(uring_backend *u, bool all);
void uring_recycle_provided(uring_backend *u, tcp_op *op);
void uring_read_settled(uring_backend *u, tcp_op *op);

#endif /* ZIG_TCP_IO_URING_BACKEND_H */
