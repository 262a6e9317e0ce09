/* backend_io_uring.c -- Linux io_uring backend (raw syscalls, no liburing).
 *
 * The I/O thread is the ring's only issuer: every SQE is written by submit or
 * cancel (called by the loop on that thread) and submitted by poll's one
 * io_uring_enter, which also runs the deferred completion work and waits. Why
 * not submit on the calling (Dart) thread: io_uring runs a request's
 * completion work as task_work of the task that submitted it, so a Dart thread
 * that submits is interrupted again for every completion, and the I/O thread
 * is woken for every CQE -- measured at 3.5 context switches per echoed
 * request. With one issuer the ring is SINGLE_ISSUER + DEFER_TASKRUN (6.1+;
 * older kernels: without them). A caller wakes a waiting I/O thread with one
 * eventfd write; the ring keeps a read of that eventfd pending.
 *
 * user_data is the op's address (16-byte aligned) with a tag in the low bits,
 * so the CQEs of cancels and wake-ups are told apart and never dereferenced.
 * An op is reported to the core only when no CQE that names it is still due
 * (its own and its cancel's): a late CQE, or a cancel still waiting for SQ
 * room, can then never reach the op's next life.
 *
 * Where an op of the backend waits (op->backend_link, one at a time):
 *   backlog       SQ full: submitted on the next poll, in order
 *   fresh / aged  a read held back one io_uring_enter (io_uring_read.c)
 *   in_kernel     its SQE was written; a CQE that names it is due
 * and a cancel that found the SQ full waits in cancel_backlog (uring_op's
 * own link).
 *
 * The receive path (held-back reads, provided buffers, ENOBUFS) is
 * io_uring_read.c. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "io_uring_backend.h"

#define SQ_ENTRIES 4096u
#define CQ_ENTRIES 65536u /* room for the completions of tens of thousands of sockets */
/* Provided buffers: 16 at first (1 MiB: ~100 bytes per connection at 10,000),
 * doubling on ENOBUFS up to 64 (4 MiB). Growing further would keep memory for
 * good after one burst: measured with 10,000 connections each echoing 32 KiB,
 * 256 at a time, then idling, a ring allowed 1024 buffers left the engine
 * with 8.2 KiB per idle connection -- what a ring grown to all 1024 (64 MiB)
 * holds, plus the records. Past 64, a read that finds the ring empty
 * takes a buffer of its own for that one receive instead: ENOBUFS means the
 * bytes are already there, so it completes at once and its buffer is gone. */
#define UBUF_INITIAL 16u
#define UBUF_MAX 64u

/* ---- writing SQEs ----------------------------------------------------------- */

static void prep_op(struct io_uring_sqe *sqe, tcp_op *op) {
  sqe->fd = op->sock->fd;
  sqe->user_data = user_data(op, TAG_OP);
  switch (op->kind) {
    case OP_CONNECT:
      sqe->opcode = IORING_OP_CONNECT;
      sqe->addr = (uint64_t)(uintptr_t)&op->addr;
      sqe->off = (uint64_t)op->addr_len;
      return;
    case OP_ACCEPT:
      sqe->opcode = IORING_OP_ACCEPT;
      sqe->accept_flags = SOCK_CLOEXEC;
      return;
    case OP_READ:
      sqe->opcode = IORING_OP_RECV;
      if (uop(op)->own_buffer != NULL) {
        sqe->addr = (uint64_t)(uintptr_t)uop(op)->own_buffer;
        sqe->len = op->len > 0x7fffffffu ? 0x7fffffffu : (unsigned)op->len;
      } else {
        sqe->flags |= IOSQE_BUFFER_SELECT; /* the kernel picks a buffer when bytes are there */
        sqe->buf_group = UBUF_GROUP;
        sqe->len = op->len < UBUF_BYTES ? (unsigned)op->len : UBUF_BYTES;
      }
      return;
    case OP_WRITE: {
      size_t left = op->len - op->done;
      sqe->opcode = IORING_OP_SEND;
      sqe->addr = (uint64_t)(uintptr_t)(op->data + op->done);
      sqe->len = left > 0x7fffffffu ? 0x7fffffffu : (unsigned)left;
      sqe->msg_flags = MSG_NOSIGNAL; /* a closed peer gives EPIPE, not SIGPIPE */
      return;
    }
    default: ZT_ASSERT(!"the core hands only connect, accept, read and write SQEs"); return;
  }
}

static void write_sqe(uring_backend *u, tcp_op *op) {
  prep_op(uring_sqe_next(&u->ring), op);
  uring_sq_publish(&u->ring);
  uop(op)->cqes_due++;
  uop(op)->cqe_seen = false;
  queue_push(&u->in_kernel, &op->backend_link);
}

/* Writes op's SQE, or queues op on the backlog when the SQ is full (or others
 * wait there: order is kept). */
void uring_send_op(uring_backend *u, tcp_op *op) {
  ZT_ASSERT(!qlink_queued(&op->backend_link));
  if (!queue_empty(&u->backlog) || !uring_sq_has_room(&u->ring, 1)) queue_push(&u->backlog, &op->backend_link);
  else write_sqe(u, op);
}

static bool send_cancel(uring_backend *u, tcp_op *op) {
  if (!uring_sq_has_room(&u->ring, 1)) return false;
  struct io_uring_sqe *sqe = uring_sqe_next(&u->ring);
  sqe->opcode = IORING_OP_ASYNC_CANCEL;
  sqe->fd = -1;
  sqe->addr = user_data(op, TAG_OP);
  sqe->user_data = user_data(op, TAG_CANCEL);
  uring_sq_publish(&u->ring);
  uop(op)->cqes_due++;
  return true;
}

static void arm_wake_read(uring_backend *u) {
  if (u->wake_armed || !uring_sq_has_room(&u->ring, 1)) return; /* retried on the next poll */
  struct io_uring_sqe *sqe = uring_sqe_next(&u->ring);
  sqe->opcode = IORING_OP_READ;
  sqe->fd = u->wake_fd;
  sqe->addr = (uint64_t)(uintptr_t)&u->wake_value;
  sqe->len = sizeof(u->wake_value);
  sqe->user_data = TAG_WAKE;
  uring_sq_publish(&u->ring);
  u->wake_armed = true;
}

/* Retries, in order, what found the SQ full. */
static void drain_backlogs(uring_backend *u) {
  while (!queue_empty(&u->cancel_backlog) && uring_sq_has_room(&u->ring, 1)) {
    send_cancel(u, op_of_cancel_link(queue_pop(&u->cancel_backlog)));
  }
  while (!queue_empty(&u->backlog) && uring_sq_has_room(&u->ring, 1)) write_sqe(u, op_of(queue_pop(&u->backlog)));
}

/* ---- the vtable: submit, cancel, release ----------------------------------- */

static void uring_submit(backend *b, tcp_op *op) {
  uring_backend *u = self(b);
  memset(uop(op), 0, sizeof(uring_op));
  if (u->broken) {
    sink_op_failed(b->sink, op, TCP_ERR_BACKEND_FAILED, 0);
    return;
  }
  if (op->kind == OP_SHUTDOWN_WRITE) {
    /* Immediate in the kernel; no SQE (IORING_OP_SHUTDOWN is 5.11+ and buys nothing). */
    int err = os_shutdown_write(op->sock->fd);
    if (err != 0) sink_op_error(b->sink, op, err);
    else sink_op_done(b->sink, op, 0);
    return;
  }
  if (op->kind == OP_READ && !u->use_bufs) {
    uop(op)->own_buffer = malloc(op->len);
    if (uop(op)->own_buffer == NULL) {
      sink_op_failed(b->sink, op, TCP_ERR_NO_MEMORY, 0);
      return;
    }
  }
  if (op->kind == OP_READ && usock(op->sock)->read_drained) {
    uring_hold_read(u, op);
    return;
  }
  uring_send_op(u, op);
}

static void uring_cancel(backend *b, tcp_op *op) {
  uring_backend *u = self(b);
  uring_op *o = uop(op);
  ZT_ASSERT(!o->cancelled);
  o->cancelled = true;
  if (qlink_in(&op->backend_link, &u->in_kernel)) {
    if (!send_cancel(u, op)) queue_push(&u->cancel_backlog, &o->cancel_link);
    return;
  }
  /* Never reached the kernel (backlog or a held-back read): it ends here. */
  queue_remove(op->backend_link.owner, &op->backend_link);
  free(o->own_buffer);
  o->own_buffer = NULL;
  sink_op_cancelled(b->sink, op);
}

static int32_t uring_adopt(backend *b, tcp_sock *s) {
  (void)b;
  memset(usock(s), 0, sizeof(uring_sock));
  return TCP_OK;
}

static void uring_release(backend *b, tcp_sock *s) {
  close(s->fd);
  s->fd = -1;
  sink_sock_released(b->sink, s);
}

/* ---- completions ------------------------------------------------------------- */

static bool retry_errno(int32_t res) { return res == -EINTR || res == -EAGAIN; }

/* op's CQEs have all arrived: report it, or resubmit what is left. */
static void op_settled(uring_backend *u, tcp_op *op) {
  backend_sink *sink = u->base.sink;
  uring_op *o = uop(op);
  int32_t res = o->res;
  if (retry_errno(res) && !o->cancelled && op->kind != OP_CONNECT) {
    if (op->kind == OP_READ) uring_recycle_provided(u, op);
    uring_send_op(u, op);
    return;
  }
  if (op->kind == OP_READ) {
    uring_read_settled(u, op);
    return;
  }
  /* An op io-wq runs blocking (a Unix connect waiting for room in a full
   * backlog) is cancelled by interrupting its worker: it ends with -EINTR. */
  if ((res == -ECANCELED || res == -EINTR) && o->cancelled) {
    sink_op_cancelled(sink, op);
    return;
  }
  if (res < 0) {
    sink_op_error(sink, op, -res);
    return;
  }
  switch (op->kind) {
    case OP_ACCEPT: sink_accept_done(sink, op, res); return;
    case OP_WRITE:
      op->done += (size_t)res;
      if (op->done == op->len) sink_op_done(sink, op, (int64_t)op->len);
      else if (o->cancelled) sink_op_cancelled(sink, op);
      else uring_send_op(u, op); /* short write: send the rest */
      return;
    default: sink_op_done(sink, op, 0); return;
  }
}

static void handle_cqe(void *ctx, uint64_t data, int32_t res, uint32_t flags) {
  uring_backend *u = ctx;
  unsigned tag = (unsigned)(data & TAG_MASK);
  if (tag == TAG_WAKE) {
    u->wake_armed = false;
    return;
  }
  tcp_op *op = (tcp_op *)(uintptr_t)(data & ~(uint64_t)TAG_MASK);
  uring_op *o = uop(op);
  ZT_ASSERT(qlink_in(&op->backend_link, &u->in_kernel));
  ZT_ASSERT(o->cqes_due > 0);
  o->cqes_due--;
  if (tag == TAG_OP) {
    ZT_ASSERT(!o->cqe_seen);
    o->cqe_seen = true;
    o->res = res;
    o->cqe_flags = flags;
    /* A cancel still waiting for SQ room is moot now. */
    if (qlink_queued(&o->cancel_link)) queue_remove(&u->cancel_backlog, &o->cancel_link);
  }
  if (!o->cqe_seen || o->cqes_due > 0) return;
  queue_remove(&u->in_kernel, &op->backend_link);
  op_settled(u, op);
}

/* ---- failure: the ring lost completions or broke -------------------------- */

/* Every op the kernel holds fails with TCP_ERR_BACKEND_FAILED and is
 * quarantined (the kernel may still write into it, so its memory is never
 * reused); ops that never reached the kernel fail too, and from now on every
 * submit fails at once. The engine stays usable for closing and shutting
 * down; tcp_shutdown + tcp_init gets a fresh ring. */
static void fail_everything(uring_backend *u, int os_error) {
  backend_sink *sink = u->base.sink;
  u->broken = true;
  qlink *l;
  /* A cancel that never reached the kernel is moot: its op fails below. */
  while ((l = queue_pop(&u->cancel_backlog)) != NULL) {
  }
  while ((l = queue_pop(&u->in_kernel)) != NULL) {
    op_of(l)->quarantined = true;
    sink_op_failed(sink, op_of(l), TCP_ERR_BACKEND_FAILED, os_error);
  }
  queue *lists[] = {&u->backlog, &u->fresh_reads, &u->aged_reads};
  for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
    while ((l = queue_pop(lists[i])) != NULL) {
      free(uop(op_of(l))->own_buffer); /* never reached the kernel */
      uop(op_of(l))->own_buffer = NULL;
      sink_op_failed(sink, op_of(l), TCP_ERR_BACKEND_FAILED, os_error);
    }
  }
}

/* The broken ring is never entered again; waits go to the eventfd. A wake read
 * left in the kernel may still consume a caller's eventfd write (without
 * DEFER_TASKRUN the kernel runs it on its own), so the wait is capped: in this
 * last-resort mode a periodic wake is the price of never hanging. */
#define BROKEN_POLL_MS_MAX 50

static void poll_broken(uring_backend *u, int64_t timeout_ms) {
  struct pollfd p = {.fd = u->wake_fd, .events = POLLIN};
  int wait_ms = timeout_ms < 0 || timeout_ms > BROKEN_POLL_MS_MAX ? BROKEN_POLL_MS_MAX : (int)timeout_ms;
  if (poll(&p, 1, wait_ms) > 0) {
    uint64_t value;
    (void)!read(u->wake_fd, &value, sizeof(value));
  }
}

static int injected_errno(uring_backend *u) {
  if (u->fault_errno == 0 || u->in_kernel.len < u->fault_inflight) return 0;
  int err = u->fault_errno;
  u->fault_errno = 0; /* once */
  return err;
}

/* ---- poll -------------------------------------------------------------------- */

static void reap_all(uring_backend *u) {
  uring_reap(&u->ring, handle_cqe, u);
  /* CQ overflowed (completions parked in the kernel, NODROP): flush them. */
  while (uring_cq_overflowed(&u->ring)) {
    if (uring_enter(&u->ring, 0, 0) != URING_ENTER_OK) break;
    if (uring_reap(&u->ring, handle_cqe, u) == 0) break;
  }
}

static void uring_poll(backend *b, int64_t timeout_ms) {
  uring_backend *u = self(b);
  if (u->broken) {
    poll_broken(u, timeout_ms);
    return;
  }
  arm_wake_read(u);
  drain_backlogs(u);
  uring_release_reads(u, timeout_ms != 0);
  /* Never wait with a backlog: nothing would wake us to drain it (this enter
   * empties the SQ, so the next pass has room). */
  bool backlog = !queue_empty(&u->backlog) || !queue_empty(&u->cancel_backlog);
  uring_enter_result rc = uring_enter(&u->ring, backlog || !u->wake_armed ? 0 : timeout_ms, injected_errno(u));
  if (rc == URING_ENTER_OK || rc == URING_ENTER_BUSY) reap_all(u);
  if (rc == URING_ENTER_BUSY && timeout_ms != 0 && u->wake_armed && uring_sq_pending(&u->ring) == 0) {
    /* EAGAIN / EBUSY: the kernel wants completions reaped before it takes
     * more. Wait for one, submitting nothing, instead of retrying at once --
     * but only when the wake read is surely in the kernel (the SQ is empty),
     * or nothing could end the wait. Otherwise the next pass retries. */
    rc = uring_wait(&u->ring, timeout_ms);
    if (rc == URING_ENTER_OK || rc == URING_ENTER_BUSY) reap_all(u);
  }
  if (rc != URING_ENTER_BROKEN && uring_cqes_lost(&u->ring)) rc = URING_ENTER_LOST;
  if (rc == URING_ENTER_LOST) fail_everything(u, EBADR);
  if (rc == URING_ENTER_BROKEN) fail_everything(u, u->ring.last_errno);
  drain_backlogs(u);
}

static bool uring_events_ready(backend *b) {
  uring_backend *u = self(b);
  return !u->broken && uring_has_work(&u->ring);
}

/* Idle: the provided buffers' pages go back to the OS. Safe only where the
 * kernel fills a buffer solely inside this thread's io_uring_enter
 * (DEFER_TASKRUN): here, outside it, no buffer is being written, and every one
 * is in the ring (a reported read's buffer went back, or was replaced). With
 * other rings the kernel may copy into a buffer at any syscall return. */
static void uring_trim(backend *b) {
  uring_backend *u = self(b);
  if (u->use_bufs && !u->broken && u->ring.defer_taskrun) uring_bufs_release_pages(&u->bufs);
}

static void uring_wake(backend *b) {
  uring_backend *u = self(b);
  uint64_t one = 1;
  while (write(u->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

/* ---- setup and teardown ------------------------------------------------------- */

static void uring_thread_begin(backend *b) {
  uring_backend *u = self(b);
  int err = uring_ring_enable(&u->ring); /* this thread is the issuer */
  if (err != 0) fail_everything(u, err);
}

/* ZIG_TCP_URING_ENTRIES=N (tests): an SQ of N >= 2 entries and a CQ of 2N, so
 * the SQ-full backlog and CQ overflow paths are driven on purpose. */
static void ring_sizes(unsigned *sq_entries, unsigned *cq_entries) {
  *sq_entries = SQ_ENTRIES;
  *cq_entries = CQ_ENTRIES;
  const char *env = getenv("ZIG_TCP_URING_ENTRIES");
  if (env != NULL && atoi(env) > 0) {
    *sq_entries = atoi(env) < 2 ? 2u : (unsigned)atoi(env);
    *cq_entries = 2 * *sq_entries;
  }
}

/* ZIG_TCP_URING_FAULT=ERRNO[@N] (tests): io_uring_enter fails once with that
 * errno (EBADR, EBUSY, EAGAIN, EBADFD, ENXIO, EINTR, or a number), the first
 * time at least N ops (default 1) are in the kernel -- a point a test can
 * reach on purpose, whatever the timing. */
static void fault_from_env(uring_backend *u) {
  const char *env = getenv("ZIG_TCP_URING_FAULT");
  if (env == NULL || env[0] == '\0') return;
  static const struct {
    const char *name;
    int value;
  } names[] = {{"EBADR", EBADR}, {"EBUSY", EBUSY}, {"EAGAIN", EAGAIN}, {"EBADFD", EBADFD}, {"ENXIO", ENXIO}, {"EINTR", EINTR}};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strncmp(env, names[i].name, strlen(names[i].name)) == 0) u->fault_errno = names[i].value;
  if (u->fault_errno == 0) u->fault_errno = atoi(env);
  const char *at = strchr(env, '@');
  u->fault_inflight = at != NULL && atoi(at + 1) > 0 ? (size_t)atoi(at + 1) : 1;
}

/* Provided buffers where the kernel has them (5.19+); ZIG_TCP_URING_BUFFERS=N
 * (tests) sets a ring of N buffers that never grows (N = 0: none, every read
 * has its own buffer, as on older kernels). */
static void setup_bufs(uring_backend *u) {
  unsigned initial = UBUF_INITIAL, max = UBUF_MAX;
  const char *env = getenv("ZIG_TCP_URING_BUFFERS");
  if (env != NULL && env[0] != '\0') {
    int n = atoi(env);
    if (n <= 0) return;
    for (max = 1; max < (unsigned)n && max < 32768; max *= 2) {
    }
    initial = max;
  }
  u->use_bufs = uring_bufs_setup(&u->bufs, u->ring.fd, max, initial) == 0;
}

static int32_t uring_create(backend_sink *sink, backend **out) {
  uring_backend *u = calloc(1, sizeof(*u));
  if (u == NULL) return TCP_ERR_NO_MEMORY;
  unsigned sq_entries, cq_entries;
  ring_sizes(&sq_entries, &cq_entries);
  int32_t rc = uring_ring_setup(&u->ring, sq_entries, cq_entries);
  if (rc != TCP_OK) {
    free(u);
    return rc;
  }
  u->wake_fd = eventfd(0, EFD_CLOEXEC); /* blocking: io_uring waits for it by poll */
  if (u->wake_fd < 0) {
    uring_ring_teardown(&u->ring);
    free(u);
    return TCP_ERR_NO_MEMORY;
  }
  fault_from_env(u);
  setup_bufs(u);
  u->base.vtable = &backend_io_uring;
  u->base.sink = sink;
  *out = &u->base;
  return TCP_OK;
}

/* Buffer rings of broken rings, kept for the life of the process (reachable,
 * so leak checkers stay quiet about memory kept on purpose). */
static struct kept_bufs {
  uring_bufs bufs;
  struct kept_bufs *next;
} *kept_bufs_head;

static void quarantine_bufs(const uring_bufs *bufs) {
  if (bufs->ring == NULL) return;
  struct kept_bufs *k = malloc(sizeof(*k));
  if (k == NULL) return; /* then it is merely unreachable; still never freed */
  k->bufs = *bufs;
  k->next = kept_bufs_head;
  kept_bufs_head = k;
}

static void uring_destroy(backend *b) {
  uring_backend *u = self(b);
  ZT_ASSERT(queue_empty(&u->in_kernel) && queue_empty(&u->backlog) && queue_empty(&u->cancel_backlog));
  ZT_ASSERT(queue_empty(&u->fresh_reads) && queue_empty(&u->aged_reads));
  /* A broken ring's kernel side may still write into its buffers: keep them. */
  if (u->use_bufs && !u->broken) uring_bufs_teardown(&u->bufs, u->ring.fd);
  if (u->broken) quarantine_bufs(&u->bufs);
  uring_ring_teardown(&u->ring);
  close(u->wake_fd);
  free(u);
}

const backend_vtable backend_io_uring = {
    .name = "io_uring",
    .create = uring_create,
    .destroy = uring_destroy,
    .thread_begin = uring_thread_begin,
    .adopt = uring_adopt,
    .submit = uring_submit,
    .cancel = uring_cancel,
    .release = uring_release,
    .poll = uring_poll,
    .wake = uring_wake,
    .events_ready = uring_events_ready,
    .trim = uring_trim,
};
