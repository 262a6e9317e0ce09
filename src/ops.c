/* ops.c -- op records, pooled, and the read data helpers (see ops.h).
 *
 * Ops are made on the callers' threads and retired on the I/O thread; with
 * malloc that pattern defeats the per-thread caches (measured: ~6 % of the
 * server's CPU in echo), hence the pool. Every call: engine lock held, but for
 * op_read_copy / op_read_adopt, which touch only their op. */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define OP_POOL_MAX 4096

static struct {
  tcp_op *free_ops; /* linked by core_link.next */
  uint32_t free_ops_len;
  /* Ops the backend lost track of (TCP_ERR_BACKEND_FAILED): the OS may still
   * write into them or their buffers, so they are kept for the life of the
   * process -- on a list, so that leak checkers see them as reachable. */
  tcp_op *quarantined; /* linked by core_link.next */
} P;

tcp_op *op_new(op_kind kind, int64_t request_id) {
  ASSERT_LOCKED();
  tcp_op *op = P.free_ops;
  if (op != NULL) {
    P.free_ops = (tcp_op *)(void *)op->core_link.next;
    P.free_ops_len--;
  } else {
    op = malloc(sizeof(*op));
    if (op == NULL) return NULL;
  }
  memset(op, 0, offsetof(tcp_op, inline_data));
  op->kind = kind;
  op->state = OP_QUEUED;
  op->request_id = request_id;
  op->deadline_index = OP_NO_DEADLINE;
  op->accepted_fd = OS_SOCKET_INVALID;
  return op;
}

void op_free(tcp_op *op) {
  ASSERT_LOCKED();
  ZT_ASSERT(!qlink_queued(&op->core_link));
  ZT_ASSERT(!qlink_queued(&op->command_link));
  ZT_ASSERT(!qlink_queued(&op->backend_link));
  ZT_ASSERT(op->deadline_index == OP_NO_DEADLINE);
  ZT_ASSERT(op->state != OP_STARTED && op->state != OP_SUBMITTED && op->state != OP_FREE);
  if (op->quarantined) {
    op->state = OP_FREE;
    op->core_link.next = (qlink *)(void *)P.quarantined;
    P.quarantined = op;
    return;
  }
  if (op->data != op->inline_data) free(op->data);
  op->state = OP_FREE;
  if (P.free_ops_len >= OP_POOL_MAX) {
    free(op);
    return;
  }
  op->core_link.next = (qlink *)(void *)P.free_ops;
  P.free_ops = op;
  P.free_ops_len++;
}

bool op_read_copy(tcp_op *op, const uint8_t *src, size_t n) {
  ZT_ASSERT(op->kind == OP_READ && op->data == NULL && n > 0 && n <= op->len);
  uint8_t *dst = n <= OP_INLINE_BYTES ? op->inline_data : malloc(n);
  if (dst == NULL) return false;
  memcpy(dst, src, n);
  op->data = dst;
  return true;
}

void op_read_adopt(tcp_op *op, uint8_t *buf) {
  ZT_ASSERT(op->kind == OP_READ && op->data == NULL && buf != NULL);
  op->data = buf;
}

void ops_free_pools(void) {
  ASSERT_LOCKED();
  while (P.free_ops != NULL) {
    tcp_op *op = P.free_ops;
    P.free_ops = (tcp_op *)(void *)op->core_link.next;
    free(op);
  }
  P.free_ops_len = 0;
}
