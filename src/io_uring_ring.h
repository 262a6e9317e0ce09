/* io_uring_ring.h -- one io_uring instance through raw syscalls (no liburing):
 * setup with the best flags the kernel takes, the opcode probe, the shared
 * rings, and io_uring_enter with its errors sorted (io_uring_ring.c).
 *
 * Memory ordering (shared with the kernel): SQE contents are published by a
 * store-release of the SQ tail; the kernel's consumption is read with a
 * load-acquire of the SQ head; CQEs are read after a load-acquire of the CQ
 * tail and handed back by a store-release of the CQ head. */
#ifndef ZIG_TCP_IO_URING_RING_H
#define ZIG_TCP_IO_URING_RING_H

#include <linux/io_uring.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct uring_ring {
  int fd;
  void *sq_map, *cq_map;
  size_t sq_map_bytes, cq_map_bytes;
  struct io_uring_sqe *sqes;
  size_t sqes_bytes;
  _Atomic(unsigned) *sq_head, *sq_tail, *sq_flags;
  unsigned *sq_array, sq_mask, sq_entries;
  _Atomic(unsigned) *cq_head, *cq_tail, *cq_overflow;
  unsigned cq_mask;
  struct io_uring_cqe *cqes;
  unsigned sq_tail_local;   /* SQEs written so far (published at once) */
  unsigned cq_overflow_seen;/* CQEs the kernel dropped: any growth is fatal */
  bool disabled;            /* made IORING_SETUP_R_DISABLED: the issuer enables it */
  int last_errno;           /* of the last io_uring_enter that failed */
  bool defer_taskrun;       /* completion work runs only inside io_uring_enter */
} uring_ring;

/* How io_uring_enter ended. */
typedef enum uring_enter_result {
  URING_ENTER_OK,        /* also: woken by a signal, or the wait timed out */
  URING_ENTER_BUSY,      /* EAGAIN / EBUSY: reap, then wait for a completion */
  URING_ENTER_LOST,      /* EBADR, or the CQ overflow counter grew: CQEs were dropped */
  URING_ENTER_BROKEN,    /* a persistent error (EBADFD, EEXIST, ENXIO, EFAULT...) */
} uring_enter_result;

/* Sets up a ring of sq_entries SQEs and cq_entries CQEs. TCP_OK,
 * TCP_ERR_UNSUPPORTED (no io_uring, blocked, too old: lacks NODROP,
 * FAST_POLL, EXT_ARG or an opcode the engine uses) or TCP_ERR_NO_MEMORY. */
int32_t uring_ring_setup(uring_ring *r, unsigned sq_entries, unsigned cq_entries);
void uring_ring_teardown(uring_ring *r);
/* On the issuing thread, before its first submit. 0 or the errno. */
int uring_ring_enable(uring_ring *r);

/* Room for n more SQEs? */
bool uring_sq_has_room(const uring_ring *r, unsigned n);
/* The next SQE, zeroed (needs room); visible to the kernel after publish. */
struct io_uring_sqe *uring_sqe_next(uring_ring *r);
void uring_sq_publish(uring_ring *r);
/* SQEs published and not yet consumed by the kernel. */
unsigned uring_sq_pending(const uring_ring *r);

/* Submits what is published; waits for at least one CQE up to timeout_ms
 * when timeout_ms != 0 (-1: no limit). errno_injected != 0 (tests) makes the
 * call fail with that errno instead of entering. */
uring_enter_result uring_enter(uring_ring *r, int64_t timeout_ms, int errno_injected);
/* Waits for at least one CQE (up to timeout_ms; -1: no limit), submitting
 * nothing. */
uring_enter_result uring_wait(uring_ring *r, int64_t timeout_ms);
/* Lock-free: CQEs to reap, deferred completion work, or SQEs to submit. */
bool uring_has_work(const uring_ring *r);
/* Completions parked in the kernel (CQ overflow, NODROP): flush them. */
bool uring_cq_overflowed(const uring_ring *r);
/* Did the kernel drop CQEs since the last call? */
bool uring_cqes_lost(uring_ring *r);

/* Calls handle(ctx, user_data, res, flags) for every CQE, handing each slot back
 * first (handle may submit). Returns how many. */
unsigned uring_reap(uring_ring *r, void (*handle)(void *ctx, uint64_t user_data, int32_t res, uint32_t flags), void *ctx);

#endif /* ZIG_TCP_IO_URING_RING_H */
