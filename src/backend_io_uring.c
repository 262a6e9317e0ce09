/* backend_io_uring.c -- Linux io_uring backend, raw syscalls (no liburing).
 *
 * Submission: whoever holds the engine lock writes SQEs into the ring (plain
 * memory writes, no syscall); only the I/O thread calls io_uring_enter, which
 * both submits everything published and waits. Why not submit on the calling
 * (Dart) thread: io_uring runs a request's completion work (poll retries, the
 * CQE) as task_work of the task that submitted it, so a Dart thread that
 * submits is interrupted again for every completion, and the I/O thread is
 * woken for every CQE -- measured here at 3.5 context switches per echoed
 * request. With one issuer the ring is set up SINGLE_ISSUER + DEFER_TASKRUN
 * (6.1+; older kernels: without them): completion work runs in batches inside
 * the I/O thread's own io_uring_enter. A caller wakes a parked I/O thread with
 * one eventfd write (the ring keeps a read of it pending); while the I/O thread
 * is awake, callers make no syscall at all.
 *
 * Memory ordering (shared with the kernel): SQE contents are published by a
 * store-release of the SQ tail; the kernel's consumption is read with a
 * load-acquire of the SQ head; CQEs are read after a load-acquire of the CQ tail
 * and handed back by a store-release of the CQ head.
 *
 * user_data is the tcp_op pointer (16-byte aligned) with a tag in the low bits,
 * so the CQEs of cancels, linked timeouts and wake-ups are told apart and never
 * dereferenced. An op is freed only after its own CQE. A cancel's SQE is
 * always written while its target is in flight, and the kernel consumes SQEs in
 * ring order, so a cancel can never reach a newer op that reused the memory
 * (that op's SQE comes later in the ring). */
#include <errno.h>
#include <linux/io_uring.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"

enum {
  TAG_OP = 0,          /* the op's own CQE */
  TAG_CANCEL = 1,      /* result of an ASYNC_CANCEL: ignored */
  TAG_LINK_TIMEOUT = 2,/* result of a connect's linked timeout: ignored */
  TAG_WAKE = 3,        /* the read of the wake eventfd */
  TAG_MASK = 7,
};

#define SQ_ENTRIES 4096u
#define CQ_ENTRIES 65536u /* room for the completions of tens of thousands of sockets */

/* What the backend keeps inside each op (op->backend). */
typedef struct uring_op {
  struct __kernel_timespec timeout; /* connect timeout, read by the kernel at submit */
  tcp_op *backlog_next;             /* backlog or deferred-read list link */
  bool in_backlog;
  bool deferred;                    /* waits in a deferred-read list */
  bool cancel_requested;
  bool cancel_in_backlog;
} uring_op;
_Static_assert(sizeof(uring_op) <= OP_BACKEND_BYTES, "uring_op must fit in tcp_op.backend");

/* What the backend keeps inside each socket (s->backend). */
typedef struct uring_sock {
  bool read_drained; /* the last read returned less than asked: the socket is likely empty */
} uring_sock;
_Static_assert(sizeof(uring_sock) <= SOCK_BACKEND_BYTES, "uring_sock must fit in tcp_sock.backend");

static struct {
  int ring_fd;
  void *sq_ring, *cq_ring;
  size_t sq_ring_bytes, cq_ring_bytes;
  struct io_uring_sqe *sqes;
  size_t sqes_bytes;
  _Atomic(unsigned) *sq_head, *sq_tail;
  unsigned *sq_array, sq_mask, sq_entries;
  _Atomic(unsigned) *sq_flags;
  _Atomic(unsigned) *cq_head, *cq_tail;
  unsigned cq_mask;
  struct io_uring_cqe *cqes;
  unsigned sq_tail_local; /* SQEs written so far (published at once) */
  bool disabled;          /* set up R_DISABLED: the I/O thread enables it */
  int wake_fd;            /* eventfd: a write wakes a parked I/O thread */
  uint64_t wake_value;    /* buffer of the pending eventfd read */
  bool parked;            /* the I/O thread waits (or is about to) */
  bool wake_sent;         /* the eventfd was written since it parked */
  tcp_op *backlog_head, *backlog_tail; /* ops that found the SQ full */
  /* Reads of sockets the last read emptied, held back one io_uring_enter (see
   * defer_read): "fresh" ones came since the last enter, "aged" ones before. */
  tcp_op *fresh_reads, *aged_reads;
} R = {.ring_fd = -1, .wake_fd = -1};

static uring_op *uop(tcp_op *op) { return (uring_op *)op->backend; }
static uring_sock *usock(tcp_sock *s) { return (uring_sock *)s->backend; }

static int sys_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}
static int sys_enter(unsigned to_submit, unsigned min_complete, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, R.ring_fd, to_submit, min_complete, flags, NULL, 0);
}
static int sys_register(unsigned opcode, void *arg, unsigned nr_args) {
  return (int)syscall(__NR_io_uring_register, R.ring_fd, opcode, arg, nr_args);
}

/* ---- setup ------------------------------------------------------------------ */

static void unmap_all(void) {
  if (R.sqes && R.sqes != MAP_FAILED) munmap(R.sqes, R.sqes_bytes);
  if (R.cq_ring && R.cq_ring != MAP_FAILED && R.cq_ring != R.sq_ring) munmap(R.cq_ring, R.cq_ring_bytes);
  if (R.sq_ring && R.sq_ring != MAP_FAILED) munmap(R.sq_ring, R.sq_ring_bytes);
  if (R.ring_fd >= 0) close(R.ring_fd);
  if (R.wake_fd >= 0) close(R.wake_fd);
  memset(&R, 0, sizeof(R));
  R.ring_fd = -1;
  R.wake_fd = -1;
}

/* The kernel must support every opcode the engine issues; refuse otherwise,
 * so the core falls back to libuv instead of failing at the first connect. */
static bool probe_opcodes(void) {
  static const unsigned char needed[] = {IORING_OP_NOP,    IORING_OP_ACCEPT, IORING_OP_CONNECT,
                                         IORING_OP_RECV,   IORING_OP_SEND,   IORING_OP_ASYNC_CANCEL,
                                         IORING_OP_LINK_TIMEOUT};
  size_t bytes = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
  struct io_uring_probe *probe = calloc(1, bytes);
  if (probe == NULL) return false;
  bool ok = sys_register(IORING_REGISTER_PROBE, probe, 256) >= 0;
  for (size_t i = 0; ok && i < sizeof(needed); i++) {
    unsigned char code = needed[i];
    ok = code <= probe->last_op && (probe->ops[code].flags & IO_URING_OP_SUPPORTED);
  }
  free(probe);
  return ok;
}

static int32_t uring_init(void) {
  struct io_uring_params p;
  /* Best first; each later entry drops what an older kernel rejects (EINVAL).
   * R_DISABLED: the ring is created here, on the caller's thread, but its
   * single issuer must be the I/O thread, which enables it. */
  static const unsigned flag_sets[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED |
          IORING_SETUP_TASKRUN_FLAG,
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      0,
  };
  /* ZIG_TCP_URING_ENTRIES=N (tests): an SQ of N >= 2 entries and a CQ of 2N, so
   * the SQ-full backlog and CQ overflow paths can be driven on purpose. */
  unsigned sq_entries = SQ_ENTRIES, cq_entries = CQ_ENTRIES;
  const char *entries_env = getenv("ZIG_TCP_URING_ENTRIES");
  if (entries_env != NULL && atoi(entries_env) > 0) {
    /* At least 2: a connect with a timeout is two linked SQEs. */
    sq_entries = atoi(entries_env) < 2 ? 2u : (unsigned)atoi(entries_env);
    cq_entries = 2 * sq_entries;
  }
  size_t flag_set = 0;
  for (; flag_set < sizeof(flag_sets) / sizeof(flag_sets[0]); flag_set++) {
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | flag_sets[flag_set];
    p.cq_entries = cq_entries;
    R.ring_fd = sys_setup(sq_entries, &p);
    if (R.ring_fd >= 0 || errno != EINVAL) break;
  }
  if (R.ring_fd < 0) {
    /* ENOSYS: no io_uring; EPERM: disabled by sysctl or seccomp; EINVAL: too old. */
    R.ring_fd = -1;
    return TCP_ERR_UNSUPPORTED;
  }
  R.disabled = (p.flags & IORING_SETUP_R_DISABLED) != 0;
  R.wake_fd = eventfd(0, EFD_CLOEXEC); /* blocking: io_uring waits for it by poll */
  if (R.wake_fd < 0) {
    unmap_all();
    return TCP_ERR_NO_MEMORY;
  }
  /* NODROP (5.5): completions are never lost on CQ overflow. FAST_POLL (5.7):
   * socket ops wait by poll, not in worker threads - our floor. */
  if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_FAST_POLL) || !probe_opcodes()) {
    unmap_all();
    return TCP_ERR_UNSUPPORTED;
  }
  R.sq_entries = p.sq_entries;
  R.sq_ring_bytes = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  R.cq_ring_bytes = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  if (p.features & IORING_FEAT_SINGLE_MMAP) {
    if (R.cq_ring_bytes > R.sq_ring_bytes) R.sq_ring_bytes = R.cq_ring_bytes;
    R.cq_ring_bytes = R.sq_ring_bytes;
  }
  R.sq_ring = mmap(NULL, R.sq_ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, R.ring_fd,
                   IORING_OFF_SQ_RING);
  if (R.sq_ring == MAP_FAILED) goto fail;
  if (p.features & IORING_FEAT_SINGLE_MMAP) {
    R.cq_ring = R.sq_ring;
  } else {
    R.cq_ring = mmap(NULL, R.cq_ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, R.ring_fd,
                     IORING_OFF_CQ_RING);
    if (R.cq_ring == MAP_FAILED) goto fail;
  }
  R.sqes_bytes = p.sq_entries * sizeof(struct io_uring_sqe);
  R.sqes = mmap(NULL, R.sqes_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, R.ring_fd,
                IORING_OFF_SQES);
  if (R.sqes == MAP_FAILED) goto fail;
  char *sq = R.sq_ring, *cq = R.cq_ring;
  R.sq_head = (_Atomic(unsigned) *)(sq + p.sq_off.head);
  R.sq_tail = (_Atomic(unsigned) *)(sq + p.sq_off.tail);
  R.sq_mask = *(unsigned *)(sq + p.sq_off.ring_mask);
  R.sq_flags = (_Atomic(unsigned) *)(sq + p.sq_off.flags);
  R.sq_array = (unsigned *)(sq + p.sq_off.array);
  R.cq_head = (_Atomic(unsigned) *)(cq + p.cq_off.head);
  R.cq_tail = (_Atomic(unsigned) *)(cq + p.cq_off.tail);
  R.cq_mask = *(unsigned *)(cq + p.cq_off.ring_mask);
  R.cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  R.sq_tail_local = atomic_load_explicit(R.sq_tail, memory_order_relaxed);
  return TCP_OK;
fail:
  unmap_all();
  return TCP_ERR_NO_MEMORY;
}

static void uring_destroy(void) { unmap_all(); }

/* ---- submission (engine lock held) ----------------------------------------- */

static unsigned sq_free(void) {
  unsigned head = atomic_load_explicit(R.sq_head, memory_order_acquire);
  return R.sq_entries - (R.sq_tail_local - head);
}

/* Wakes the I/O thread if it is parked in io_uring_enter: one eventfd write,
 * at most once per park. Lock held. */
static void wake_if_parked(void) {
  if (!R.parked || R.wake_sent) return;
  R.wake_sent = true;
  uint64_t one = 1;
  while (write(R.wake_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

/* n consecutive SQEs, zeroed, or NULL when the SQ has no room even after a
 * submit. They become visible to the kernel only in publish(). */
static struct io_uring_sqe *get_sqes(unsigned n) {
  if (sq_free() < n) return NULL; /* the caller backlogs; the I/O thread submits soon */
  for (unsigned i = 0; i < n; i++) {
    unsigned index = (R.sq_tail_local + i) & R.sq_mask;
    memset(&R.sqes[index], 0, sizeof(struct io_uring_sqe));
    R.sq_array[index] = index;
  }
  return &R.sqes[R.sq_tail_local & R.sq_mask];
}

static struct io_uring_sqe *sqe_at(unsigned offset) {
  return &R.sqes[(R.sq_tail_local + offset) & R.sq_mask];
}

static void publish(unsigned n) {
  R.sq_tail_local += n;
  atomic_store_explicit(R.sq_tail, R.sq_tail_local, memory_order_release);
  wake_if_parked();
}

static uint64_t user_data(tcp_op *op, unsigned tag) { return (uint64_t)(uintptr_t)op | tag; }

/* Writes the SQE(s) of op and publishes them; false if the SQ is full. */
static bool submit_op(tcp_op *op) {
  bool linked_timeout = op->kind == OP_CONNECT && op->timeout_ms > 0;
  unsigned n = linked_timeout ? 2 : 1;
  if (get_sqes(n) == NULL) return false;
  struct io_uring_sqe *sqe = sqe_at(0);
  int fd = op->sock->fd;
  switch (op->kind) {
    case OP_CONNECT:
      sqe->opcode = IORING_OP_CONNECT;
      sqe->fd = fd;
      sqe->addr = (uint64_t)(uintptr_t)&op->addr;
      sqe->off = (uint64_t)op->addr_len;
      break;
    case OP_ACCEPT:
      sqe->opcode = IORING_OP_ACCEPT;
      sqe->fd = fd;
      sqe->accept_flags = SOCK_CLOEXEC;
      break;
    case OP_READ:
      sqe->opcode = IORING_OP_RECV;
      sqe->fd = fd;
      sqe->addr = (uint64_t)(uintptr_t)op->data;
      sqe->len = (unsigned)op->len;
      break;
    case OP_WRITE: {
      size_t left = op->len - op->done;
      sqe->opcode = IORING_OP_SEND;
      sqe->fd = fd;
      sqe->addr = (uint64_t)(uintptr_t)(op->data + op->done);
      sqe->len = left > 0x7fffffffu ? 0x7fffffffu : (unsigned)left;
      sqe->msg_flags = MSG_NOSIGNAL; /* a closed peer gives EPIPE, not SIGPIPE */
      break;
    }
    default:
      return true; /* the core never hands other kinds to a backend */
  }
  sqe->user_data = user_data(op, TAG_OP);
  if (linked_timeout) {
    uring_op *u = uop(op);
    u->timeout.tv_sec = op->timeout_ms / 1000;
    u->timeout.tv_nsec = (op->timeout_ms % 1000) * 1000000;
    sqe->flags |= IOSQE_IO_LINK;
    struct io_uring_sqe *timeout = sqe_at(1);
    timeout->opcode = IORING_OP_LINK_TIMEOUT;
    timeout->fd = -1;
    timeout->addr = (uint64_t)(uintptr_t)&u->timeout;
    timeout->len = 1;
    timeout->user_data = user_data(op, TAG_LINK_TIMEOUT);
  }
  publish(n);
  return true;
}

static bool submit_cancel(tcp_op *op) {
  if (get_sqes(1) == NULL) return false;
  struct io_uring_sqe *sqe = sqe_at(0);
  sqe->opcode = IORING_OP_ASYNC_CANCEL;
  sqe->fd = -1;
  sqe->addr = user_data(op, TAG_OP);
  sqe->user_data = user_data(op, TAG_CANCEL);
  publish(1);
  return true;
}

static void backlog_push(tcp_op *op) {
  wake_if_parked(); /* the I/O thread drains the backlog after its next pass */
  uring_op *u = uop(op);
  u->in_backlog = true;
  u->backlog_next = NULL;
  if (R.backlog_tail) uop(R.backlog_tail)->backlog_next = op;
  else R.backlog_head = op;
  R.backlog_tail = op;
}

/* I/O thread, lock held: retry what found the SQ full, in order. */
static void drain_backlog(void) {
  while (R.backlog_head != NULL) {
    tcp_op *op = R.backlog_head;
    uring_op *u = uop(op);
    bool done;
    if (u->cancel_in_backlog) done = submit_cancel(op);
    else if (u->cancel_requested) done = true; /* never started in the OS */
    else done = submit_op(op);
    if (!done) return;
    R.backlog_head = u->backlog_next;
    if (R.backlog_head == NULL) R.backlog_tail = NULL;
    u->in_backlog = false;
    if (!u->cancel_in_backlog && u->cancel_requested) engine_op_done(op, -1, ECANCELED);
    u->cancel_in_backlog = false;
  }
}

/* A read of a socket the last read emptied (request/response traffic) is not
 * submitted with the write that usually comes with it, but one io_uring_enter
 * later: by then the peer has often answered, and the recv completes at once
 * instead of arming poll and finishing later as deferred task work (measured:
 * that path was 17 % of the engine's CPU at 1000 connections). */
static void defer_read(tcp_op *op) {
  uring_op *u = uop(op);
  u->deferred = true;
  u->backlog_next = R.fresh_reads;
  R.fresh_reads = op;
  wake_if_parked(); /* a parked I/O thread submits it at once (see release_reads) */
}

/* I/O thread, lock held, before an io_uring_enter: submit the aged reads, and
 * the fresh ones too when the thread is about to wait (nothing else would
 * bring them in). A cancelled one completes here, never started in the OS. */
static void release_reads(bool all) {
  tcp_op *list = R.aged_reads;
  R.aged_reads = NULL;
  if (all) {
    tcp_op **tail = &list;
    while (*tail != NULL) tail = &uop(*tail)->backlog_next;
    *tail = R.fresh_reads;
    R.fresh_reads = NULL;
  } else {
    R.aged_reads = R.fresh_reads;
    R.fresh_reads = NULL;
  }
  while (list != NULL) {
    tcp_op *op = list;
    uring_op *u = uop(op);
    list = u->backlog_next;
    u->deferred = false;
    u->backlog_next = NULL;
    if (u->cancel_requested) engine_op_done(op, -1, ECANCELED);
    else if (R.backlog_head != NULL || !submit_op(op)) backlog_push(op);
  }
}

static void uring_start(tcp_op *op) {
  memset(uop(op), 0, sizeof(uring_op));
  if (op->kind == OP_READ && usock(op->sock)->read_drained) {
    defer_read(op);
    return;
  }
  if (R.backlog_head != NULL || !submit_op(op)) backlog_push(op);
}

static void uring_cancel(tcp_op *op) {
  uring_op *u = uop(op);
  u->cancel_requested = true;
  if (u->in_backlog || u->deferred) return; /* completed without being started in the OS */
  if (!submit_cancel(op)) {
    u->cancel_in_backlog = true;
    backlog_push(op);
  }
}

static void uring_wake(void) { wake_if_parked(); }

/* I/O thread, lock held: keep a read of the wake eventfd pending. */
static bool arm_wake_read(void) {
  if (get_sqes(1) == NULL) return false; /* retried after the next pass */
  struct io_uring_sqe *sqe = sqe_at(0);
  sqe->opcode = IORING_OP_READ;
  sqe->fd = R.wake_fd;
  sqe->addr = (uint64_t)(uintptr_t)&R.wake_value;
  sqe->len = sizeof(R.wake_value);
  sqe->user_data = TAG_WAKE;
  R.sq_tail_local += 1;
  atomic_store_explicit(R.sq_tail, R.sq_tail_local, memory_order_release);
  return true;
}

static int32_t uring_adopt(tcp_sock *s) {
  memset(usock(s), 0, sizeof(uring_sock));
  return TCP_OK;
}

static void uring_release(tcp_sock *s) {
  close(s->fd);
  s->fd = -1;
  engine_sock_released(s);
}

/* ---- completions (I/O thread, lock held) ------------------------------------ */

static bool retry_errno(int res) { return res == -EINTR || res == -EAGAIN; }

static void resubmit(tcp_op *op) {
  if (!submit_op(op)) backlog_push(op);
}

static bool wake_read_armed;

static void handle_cqe(uint64_t data, int res) {
  if ((data & TAG_MASK) == TAG_WAKE) {
    wake_read_armed = false;
    return;
  }
  if ((data & TAG_MASK) != TAG_OP) return;
  tcp_op *op = (tcp_op *)(uintptr_t)data;
  bool closing = op->sock->closing;
  switch (op->kind) {
    case OP_ACCEPT:
      if (res >= 0) engine_accept_done(op, res);
      else if (retry_errno(res) && !closing) resubmit(op);
      else engine_op_done(op, -1, -res);
      return;
    case OP_READ:
      if (res >= 0) usock(op->sock)->read_drained = (size_t)res < op->len;
      if (res >= 0) engine_op_done(op, res, 0);
      else if (retry_errno(res) && !closing) resubmit(op);
      else engine_op_done(op, -1, -res);
      return;
    case OP_WRITE:
      if (res > 0) op->done += (size_t)res;
      if (res < 0 && !retry_errno(res)) {
        engine_op_done(op, -1, -res);
      } else if (op->done < op->len && !closing) {
        resubmit(op); /* short write: send the rest */
      } else if (op->done == op->len) {
        engine_op_done(op, (int64_t)op->len, 0);
      } else {
        engine_op_done(op, -1, ECANCELED); /* closing: the core reports the close */
      }
      return;
    case OP_CONNECT:
      if (res == 0) {
        engine_op_done(op, 0, 0);
      } else if (res == -ECANCELED && op->timeout_ms > 0 && !uop(op)->cancel_requested) {
        engine_op_done(op, -1, ETIMEDOUT); /* the linked timeout fired */
      } else {
        engine_op_done(op, -1, -res);
      }
      return;
    default:
      return;
  }
}

static unsigned reap_cqes(void) {
  unsigned reaped = 0;
  for (;;) {
    unsigned head = atomic_load_explicit(R.cq_head, memory_order_relaxed);
    unsigned tail = atomic_load_explicit(R.cq_tail, memory_order_acquire);
    if (head == tail) break;
    for (; head != tail; head++, reaped++) {
      struct io_uring_cqe *cqe = &R.cqes[head & R.cq_mask];
      uint64_t data = cqe->user_data;
      int res = cqe->res;
      /* Hand the slot back before handling: handling may submit more. */
      atomic_store_explicit(R.cq_head, head + 1, memory_order_release);
      handle_cqe(data, res);
    }
  }
  return reaped;
}

/* Lock not needed: is there work the I/O thread could do without waiting?
 * CQEs in the ring, deferred completion work (IORING_SQ_TASKRUN), or SQEs
 * published but not consumed. */
static bool work_visible(void) {
  if (atomic_load_explicit(R.cq_tail, memory_order_acquire) !=
      atomic_load_explicit(R.cq_head, memory_order_relaxed))
    return true;
  if (atomic_load_explicit(R.sq_flags, memory_order_relaxed) & IORING_SQ_TASKRUN) return true;
  return atomic_load_explicit(R.sq_tail, memory_order_acquire) !=
         atomic_load_explicit(R.sq_head, memory_order_acquire);
}

/* Before parking, give other threads (the isolates' threads, often on this
 * very CPU) a few chances to produce work, so that a busy engine handles
 * events in batches instead of sleeping and being woken for each one. */
#define SPIN_YIELDS 8

static void linger_before_park(void) {
  for (int i = 0; i < SPIN_YIELDS && !work_visible(); i++) sched_yield();
}

static void uring_run(void) {
  if (R.disabled) sys_register(IORING_REGISTER_ENABLE_RINGS, NULL, 0); /* this thread is the issuer */
  wake_read_armed = false;
  bool stop_seen = false;
  for (;;) {
    linger_before_park();
    engine_lock();
    if (!wake_read_armed) wake_read_armed = arm_wake_read();
    /* Park only with nothing to post (a completion queued off this thread
     * while it was awake sent no eventfd write: it is seen here) and a wake
     * read armed. */
    /* A stop request made while this thread was awake sent no eventfd write
     * either: take one non-waiting pass when it is first seen. */
    bool stop_news = engine_stopping() && !stop_seen;
    stop_seen = engine_stopping();
    /* Never with a backlog: nothing would wake us to drain it, and this
     * io_uring_enter empties the SQ, so the next pass has room for it. */
    bool may_park = wake_read_armed && !engine_done_pending() && !stop_news && R.backlog_head == NULL;
    /* Held-back reads go in now; all of them before waiting. */
    release_reads(may_park);
    /* A cancelled read completed there must be posted first. */
    R.parked = may_park && R.backlog_head == NULL && !engine_done_pending();
    R.wake_sent = false;
    bool wait = R.parked;
    /* Exactly what is published now: io_uring_enter skips the wait (and the
     * deferred completion work) when it submits fewer SQEs than asked. SQEs
     * published after this point come with an eventfd write (parked). */
    unsigned to_submit = R.sq_entries - sq_free();
    engine_unlock();
    /* Submits, runs deferred completion work, and waits for one CQE if
     * parked. EINTR, EBUSY, EAGAIN: reap what is there and go round again. */
    sys_enter(to_submit, wait ? 1 : 0, IORING_ENTER_GETEVENTS);
    engine_lock();
    R.parked = false;
    reap_cqes();
    /* CQ overflowed (completions parked in the kernel, NODROP): flush them. */
    while (atomic_load_explicit(R.sq_flags, memory_order_relaxed) & IORING_SQ_CQ_OVERFLOW) {
      sys_enter(0, 0, IORING_ENTER_GETEVENTS);
      if (reap_cqes() == 0) break;
    }
    drain_backlog();
    engine_unlock();
    engine_flush();
    engine_lock();
    bool finished = engine_stopping() && engine_drained();
    engine_unlock();
    if (finished) return;
  }
}

const backend_vtable backend_io_uring = {
    .name = "io_uring",
    .init = uring_init,
    .run = uring_run,
    .wake = uring_wake,
    .start = uring_start,
    .cancel = uring_cancel,
    .adopt = uring_adopt,
    .release = uring_release,
    .destroy = uring_destroy,
};
