/* queue.h -- the one intrusive FIFO of the engine.
 *
 * A record that can wait in queues embeds one qlink per queue it may be in at
 * the same time. A link knows the queue that holds it, so "is it queued, and
 * where" is a field, and the invariants "an element is in at most one queue
 * per link" and "it is removed only from the queue that holds it" are asserts.
 * Removal is O(1) (doubly linked): accepts complete out of order, and a close
 * may pull any op out of the command queue. */
#ifndef ZIG_TCP_QUEUE_H
#define ZIG_TCP_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "zt_assert.h"

typedef struct queue queue;

typedef struct qlink {
  struct qlink *prev, *next;
  queue *owner; /* the queue that holds this link, NULL when in none */
} qlink;

struct queue {
  qlink *head, *tail;
  size_t len;
};

#define QUEUE_ENTRY(link, type, member) ((type *)(void *)((char *)(link) - offsetof(type, member)))

static inline bool queue_empty(const queue *q) { return q->head == NULL; }
static inline bool qlink_in(const qlink *l, const queue *q) { return l->owner == q; }
static inline bool qlink_queued(const qlink *l) { return l->owner != NULL; }

static inline void queue_push(queue *q, qlink *l) {
  ZT_ASSERT(l->owner == NULL);
  l->owner = q;
  l->next = NULL;
  l->prev = q->tail;
  if (q->tail != NULL) q->tail->next = l;
  else q->head = l;
  q->tail = l;
  q->len++;
}

static inline void queue_remove(queue *q, qlink *l) {
  ZT_ASSERT(l->owner == q);
  ZT_ASSERT(q->len > 0);
  if (l->prev != NULL) l->prev->next = l->next;
  else q->head = l->next;
  if (l->next != NULL) l->next->prev = l->prev;
  else q->tail = l->prev;
  l->prev = l->next = NULL;
  l->owner = NULL;
  q->len--;
  ZT_ASSERT((q->len == 0) == (q->head == NULL));
}

static inline qlink *queue_pop(queue *q) {
  qlink *l = q->head;
  if (l != NULL) queue_remove(q, l);
  return l;
}

#endif /* ZIG_TCP_QUEUE_H */
