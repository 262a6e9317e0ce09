/* io_uring_ring.c -- ring setup, SQ/CQ access and io_uring_enter (see
 * io_uring_ring.h). */
#include "io_uring_ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tcp.h"
#include "zt_assert.h"

static int sys_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_register(int fd, unsigned opcode, void *arg, unsigned nr_args) {
  return (int)syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
}

/* The kernel must support every opcode the engine issues; refuse otherwise,
 * so the core falls back to libuv instead of failing at the first connect. */
static bool probe_opcodes(int fd) {
  static const unsigned char needed[] = {IORING_OP_NOP,  IORING_OP_ACCEPT, IORING_OP_CONNECT,
                                         IORING_OP_RECV, IORING_OP_SEND,   IORING_OP_ASYNC_CANCEL,
                                         IORING_OP_READ /* the wake eventfd */};
  size_t bytes = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
  struct io_uring_probe *probe = calloc(1, bytes);
  if (probe == NULL) return false;
  bool ok = sys_register(fd, IORING_REGISTER_PROBE, probe, 256) >= 0;
  for (size_t i = 0; ok && i < sizeof(needed); i++) {
    unsigned char code = needed[i];
    ok = code <= probe->last_op && (probe->ops[code].flags & IO_URING_OP_SUPPORTED);
  }
  free(probe);
  return ok;
}

void uring_ring_teardown(uring_ring *r) {
  if (r->sqes != NULL && r->sqes != MAP_FAILED) munmap(r->sqes, r->sqes_bytes);
  if (r->cq_map != NULL && r->cq_map != MAP_FAILED && r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_map_bytes);
  if (r->sq_map != NULL && r->sq_map != MAP_FAILED) munmap(r->sq_map, r->sq_map_bytes);
  if (r->fd >= 0) close(r->fd);
  memset(r, 0, sizeof(*r));
  r->fd = -1;
}

/* Best first; each later entry drops what an older kernel rejects (EINVAL).
 * R_DISABLED: the ring is made on the tcp_init caller's thread, but its single
 * issuer must be the I/O thread, which enables it. */
static int create_fd(unsigned sq_entries, unsigned cq_entries, struct io_uring_params *p) {
  static const unsigned flag_sets[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED |
          IORING_SETUP_TASKRUN_FLAG,
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      0,
  };
  for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
    memset(p, 0, sizeof(*p));
    p->flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | flag_sets[i];
    p->cq_entries = cq_entries;
    int fd = sys_setup(sq_entries, p);
    if (fd >= 0 || errno != EINVAL) return fd;
  }
  return -1;
}

static void *map_ring(int fd, size_t bytes, off_t offset) {
  return mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);
}

static int32_t map_rings(uring_ring *r, const struct io_uring_params *p) {
  r->sq_entries = p->sq_entries;
  r->sq_map_bytes = p->sq_off.array + p->sq_entries * sizeof(unsigned);
  r->cq_map_bytes = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
  bool single = (p->features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single) {
    if (r->cq_map_bytes > r->sq_map_bytes) r->sq_map_bytes = r->cq_map_bytes;
    r->cq_map_bytes = r->sq_map_bytes;
  }
  r->sq_map = map_ring(r->fd, r->sq_map_bytes, IORING_OFF_SQ_RING);
  if (r->sq_map == MAP_FAILED) return TCP_ERR_NO_MEMORY;
  r->cq_map = single ? r->sq_map : map_ring(r->fd, r->cq_map_bytes, IORING_OFF_CQ_RING);
  if (r->cq_map == MAP_FAILED) return TCP_ERR_NO_MEMORY;
  r->sqes_bytes = p->sq_entries * sizeof(struct io_uring_sqe);
  r->sqes = map_ring(r->fd, r->sqes_bytes, IORING_OFF_SQES);
  if (r->sqes == MAP_FAILED) return TCP_ERR_NO_MEMORY;
  char *sq = r->sq_map, *cq = r->cq_map;
  r->sq_head = (_Atomic(unsigned) *)(sq + p->sq_off.head);
  r->sq_tail = (_Atomic(unsigned) *)(sq + p->sq_off.tail);
  r->sq_mask = *(unsigned *)(sq + p->sq_off.ring_mask);
  r->sq_flags = (_Atomic(unsigned) *)(sq + p->sq_off.flags);
  r->sq_array = (unsigned *)(sq + p->sq_off.array);
  r->cq_head = (_Atomic(unsigned) *)(cq + p->cq_off.head);
  r->cq_tail = (_Atomic(unsigned) *)(cq + p->cq_off.tail);
  r->cq_overflow = (_Atomic(unsigned) *)(cq + p->cq_off.overflow);
  r->cq_mask = *(unsigned *)(cq + p->cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(cq + p->cq_off.cqes);
  r->sq_tail_local = atomic_load_explicit(r->sq_tail, memory_order_relaxed);
  r->cq_overflow_seen = atomic_load_explicit(r->cq_overflow, memory_order_relaxed);
  return TCP_OK;
}

int32_t uring_ring_setup(uring_ring *r, unsigned sq_entries, unsigned cq_entries) {
  memset(r, 0, sizeof(*r));
  struct io_uring_params p;
  r->fd = create_fd(sq_entries, cq_entries, &p);
  /* ENOSYS: no io_uring; EPERM: disabled by sysctl or seccomp; EINVAL: too old. */
  if (r->fd < 0) {
    r->fd = -1;
    return TCP_ERR_UNSUPPORTED;
  }
  r->disabled = (p.flags & IORING_SETUP_R_DISABLED) != 0;
  r->defer_taskrun = (p.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
  /* NODROP (5.5): completions survive a full CQ. FAST_POLL (5.7): socket ops
   * wait by poll, not in worker threads. EXT_ARG (5.11): a timed wait without
   * a timeout SQE. All three are the floor; older kernels get libuv. */
  unsigned needed = IORING_FEAT_NODROP | IORING_FEAT_FAST_POLL | IORING_FEAT_EXT_ARG;
  if ((p.features & needed) != needed || !probe_opcodes(r->fd)) {
    uring_ring_teardown(r);
    return TCP_ERR_UNSUPPORTED;
  }
  int32_t rc = map_rings(r, &p);
  if (rc != TCP_OK) uring_ring_teardown(r);
  return rc;
}

int uring_ring_enable(uring_ring *r) {
  if (!r->disabled) return 0;
  if (sys_register(r->fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0) return errno;
  r->disabled = false;
  return 0;
}

unsigned uring_sq_pending(const uring_ring *r) {
  return r->sq_tail_local - atomic_load_explicit(r->sq_head, memory_order_acquire);
}

bool uring_sq_has_room(const uring_ring *r, unsigned n) { return r->sq_entries - uring_sq_pending(r) >= n; }

struct io_uring_sqe *uring_sqe_next(uring_ring *r) {
  ZT_ASSERT(uring_sq_has_room(r, 1));
  unsigned index = r->sq_tail_local & r->sq_mask;
  struct io_uring_sqe *sqe = &r->sqes[index];
  memset(sqe, 0, sizeof(*sqe));
  r->sq_array[index] = index;
  return sqe;
}

void uring_sq_publish(uring_ring *r) {
  r->sq_tail_local++;
  atomic_store_explicit(r->sq_tail, r->sq_tail_local, memory_order_release);
}

static uring_enter_result classify(int err) {
  switch (err) {
    case EINTR:
    case ETIME: return URING_ENTER_OK;
    case EAGAIN:
    case EBUSY: return URING_ENTER_BUSY;
    case EBADR: return URING_ENTER_LOST;
    default: return URING_ENTER_BROKEN; /* EBADFD, EEXIST, ENXIO, EFAULT, EINVAL, EOPNOTSUPP */
  }
}

static uring_enter_result enter(uring_ring *r, unsigned to_submit, int64_t timeout_ms) {
  unsigned flags = IORING_ENTER_GETEVENTS;
  struct __kernel_timespec ts;
  struct io_uring_getevents_arg arg;
  memset(&arg, 0, sizeof(arg));
  void *argp = NULL;
  size_t argsz = 0;
  if (timeout_ms > 0) {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (timeout_ms % 1000) * 1000000;
    arg.ts = (uint64_t)(uintptr_t)&ts;
    flags |= IORING_ENTER_EXT_ARG;
    argp = &arg;
    argsz = sizeof(arg);
  }
  unsigned min_complete = timeout_ms != 0 ? 1 : 0;
  int rc = (int)syscall(__NR_io_uring_enter, r->fd, to_submit, min_complete, flags, argp, argsz);
  if (rc >= 0) return URING_ENTER_OK;
  r->last_errno = errno;
  return classify(errno);
}

uring_enter_result uring_enter(uring_ring *r, int64_t timeout_ms, int errno_injected) {
  if (errno_injected != 0) {
    r->last_errno = errno_injected;
    return classify(errno_injected);
  }
  /* Exactly what is published: io_uring_enter skips the wait (and the
   * deferred completion work) when it submits fewer SQEs than asked. */
  return enter(r, uring_sq_pending(r), timeout_ms);
}

uring_enter_result uring_wait(uring_ring *r, int64_t timeout_ms) { return enter(r, 0, timeout_ms); }

bool uring_has_work(const uring_ring *r) {
  if (atomic_load_explicit(r->cq_tail, memory_order_acquire) != atomic_load_explicit(r->cq_head, memory_order_relaxed))
    return true;
  if (atomic_load_explicit(r->sq_flags, memory_order_relaxed) & IORING_SQ_TASKRUN) return true;
  return uring_sq_pending(r) != 0;
}

bool uring_cq_overflowed(const uring_ring *r) {
  return (atomic_load_explicit(r->sq_flags, memory_order_relaxed) & IORING_SQ_CQ_OVERFLOW) != 0;
}

bool uring_cqes_lost(uring_ring *r) {
  unsigned now = atomic_load_explicit(r->cq_overflow, memory_order_relaxed);
  bool lost = now != r->cq_overflow_seen;
  r->cq_overflow_seen = now;
  return lost;
}

unsigned uring_reap(uring_ring *r, void (*handle)(void *ctx, uint64_t user_data, int32_t res, uint32_t flags), void *ctx) {
  unsigned reaped = 0;
  for (;;) {
    unsigned head = atomic_load_explicit(r->cq_head, memory_order_relaxed);
    unsigned tail = atomic_load_explicit(r->cq_tail, memory_order_acquire);
    if (head == tail) return reaped;
    for (; head != tail; head++, reaped++) {
      struct io_uring_cqe *cqe = &r->cqes[head & r->cq_mask];
      uint64_t data = cqe->user_data;
      int32_t res = cqe->res;
      uint32_t flags = cqe->flags;
      atomic_store_explicit(r->cq_head, head + 1, memory_order_release);
      handle(ctx, data, res, flags);
    }
  }
}
