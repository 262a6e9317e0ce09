/* deadlines.h -- a min-heap of connect ops by deadline (deadlines.c), so the
 * loop finds the nearest deadline in O(1) and arms or disarms one in
 * O(log n), however many connects wait. An op knows its slot
 * (op->deadline_index). */
#ifndef ZIG_TCP_DEADLINES_H
#define ZIG_TCP_DEADLINES_H

#include <stdbool.h>
#include <stdint.h>

#include "ops.h"

typedef struct deadline_heap {
  tcp_op **ops;
  uint32_t len, cap;
} deadline_heap;

/* Room for one more op; false when out of memory. */
bool deadlines_reserve(deadline_heap *h);
/* Adds op (op->deadline_ms set); needs a reserve first. */
void deadlines_add(deadline_heap *h, tcp_op *op);
void deadlines_remove(deadline_heap *h, tcp_op *op);
/* The op with the nearest deadline, or NULL. */
tcp_op *deadlines_first(const deadline_heap *h);
void deadlines_free(deadline_heap *h);

#endif /* ZIG_TCP_DEADLINES_H */
