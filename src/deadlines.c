/* deadlines.c -- binary min-heap of ops by deadline_ms (see deadlines.h). */
#include "deadlines.h"

#include <stdlib.h>

#include "zt_assert.h"

static void place(deadline_heap *h, uint32_t i, tcp_op *op) {
  h->ops[i] = op;
  op->deadline_index = i;
}

static void sift_up(deadline_heap *h, uint32_t i) {
  tcp_op *op = h->ops[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (h->ops[parent]->deadline_ms <= op->deadline_ms) break;
    place(h, i, h->ops[parent]);
    i = parent;
  }
  place(h, i, op);
}

static void sift_down(deadline_heap *h, uint32_t i) {
  tcp_op *op = h->ops[i];
  for (;;) {
    uint32_t child = 2 * i + 1;
    if (child >= h->len) break;
    if (child + 1 < h->len && h->ops[child + 1]->deadline_ms < h->ops[child]->deadline_ms) child++;
    if (op->deadline_ms <= h->ops[child]->deadline_ms) break;
    place(h, i, h->ops[child]);
    i = child;
  }
  place(h, i, op);
}

bool deadlines_reserve(deadline_heap *h) {
  if (h->len < h->cap) return true;
  uint32_t cap = h->cap ? h->cap * 2 : 16;
  if (cap <= h->cap) return false;
  tcp_op **grown = realloc(h->ops, (size_t)cap * sizeof(*grown));
  if (grown == NULL) return false;
  h->ops = grown;
  h->cap = cap;
  return true;
}

void deadlines_add(deadline_heap *h, tcp_op *op) {
  ZT_ASSERT(h->len < h->cap);
  ZT_ASSERT(op->deadline_index == OP_NO_DEADLINE);
  h->len++;
  place(h, h->len - 1, op);
  sift_up(h, h->len - 1);
}

void deadlines_remove(deadline_heap *h, tcp_op *op) {
  uint32_t i = op->deadline_index;
  ZT_ASSERT(i < h->len && h->ops[i] == op);
  op->deadline_index = OP_NO_DEADLINE;
  h->len--;
  if (i == h->len) return;
  tcp_op *moved = h->ops[h->len];
  place(h, i, moved);
  sift_down(h, i);
  sift_up(h, moved->deadline_index);
}

tcp_op *deadlines_first(const deadline_heap *h) { return h->len > 0 ? h->ops[0] : NULL; }

void deadlines_free(deadline_heap *h) {
  ZT_ASSERT(h->len == 0);
  free(h->ops);
  h->ops = NULL;
  h->cap = 0;
}
