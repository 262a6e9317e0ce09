/* ops.c -- op records, in a record slab, the read data helpers and the slabs
 * themselves (see ops.h).
 *
 * Ops are made on the callers' threads and retired on the I/O thread; with
 * malloc that pattern defeats the per-thread caches (measured: ~6 % of the
 * server's CPU in echo), hence records of our own: a slab, under the engine
 * lock. Every call: engine lock held, but for op_read_copy / op_read_adopt,
 * which touch only their op. */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

#include "engine.h"

#if defined(_WIN32) || defined(__SANITIZE_ADDRESS__)
#define SLAB_PLAIN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_PLAIN_MALLOC 1
#endif
#endif

#if defined(__linux__) && defined(__x86_64__)
/* Every idle connection pays for one socket record and one pending read's op
 * record (tcp.h: receive at scale; bench/RESULTS.md, memory per idle
 * connection): growing either is a decision, not an accident. */
_Static_assert(sizeof(tcp_op) <= 352, "tcp_op grew: every idle connection's pending read pays for it");
_Static_assert(sizeof(tcp_sock) <= 288, "tcp_sock grew: every connection pays for it");
#endif

static struct {
  record_slab ops;
  /* Ops the backend lost track of (TCP_ERR_BACKEND_FAILED): the OS may still
   * write into them or their buffers, so they are kept for the life of the
   * process -- on a list, so that leak checkers see them as reachable. */
  tcp_op *quarantined; /* linked by core_link.next */
} P = {.ops = RECORD_SLAB_INIT(tcp_op)};

tcp_op *op_new(op_kind kind, int64_t request_id) {
  ASSERT_LOCKED();
  tcp_op *op = slab_alloc(&P.ops);
  if (op == NULL) return NULL;
  memset(op, 0, offsetof(tcp_op, inline_data));
  op->kind = kind;
  op->state = OP_QUEUED;
  op->request_id = request_id;
  if (kind == OP_CONNECT) op->deadline_index = OP_NO_DEADLINE;
  if (kind == OP_ACCEPT) op->accepted_fd = OS_SOCKET_INVALID;
  return op;
}

void op_free(tcp_op *op) {
  ASSERT_LOCKED();
  ZT_ASSERT(!qlink_queued(&op->core_link));
  ZT_ASSERT(!qlink_queued(&op->command_link));
  ZT_ASSERT(!qlink_queued(&op->backend_link));
  ZT_ASSERT(op->kind != OP_CONNECT || op->deadline_index == OP_NO_DEADLINE);
  ZT_ASSERT(op->state != OP_STARTED && op->state != OP_SUBMITTED && op->state != OP_FREE);
  if (op->quarantined) {
    op->state = OP_FREE;
    op->core_link.next = (qlink *)(void *)P.quarantined;
    P.quarantined = op;
    return;
  }
  if (op->data != op->inline_data) free(op->data);
  op->state = OP_FREE;
  slab_free(&P.ops, op);
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
  slab_release_spare(&P.ops);
}

/* ---- record slabs ------------------------------------------------------------ */

#if defined(SLAB_PLAIN_MALLOC)
void *slab_alloc(record_slab *slab) { return malloc(slab->record_bytes); }
void slab_free(record_slab *slab, void *record) {
  (void)slab;
  free(record);
}
void slab_release_spare(record_slab *slab) { (void)slab; }
#else
#include <stdint.h>
#include <sys/mman.h>

/* 64 KiB: an mmap per ~170 op records; an empty block costs 64 KiB at most. */
#define SLAB_BLOCK_BYTES ((size_t)64 * 1024)
#define SLAB_HEADER_BYTES 64

struct slab_block {
  slab_block *prev, *next; /* the slab's partial list */
  void *free_list;         /* freed records, linked through their first word */
  uint8_t *bump;           /* records past this one were never handed out */
  uint32_t used, capacity;
};
_Static_assert(sizeof(slab_block) <= SLAB_HEADER_BYTES, "the header fits before the first record");

static slab_block *block_of(void *record) {
  return (slab_block *)((uintptr_t)record & ~(uintptr_t)(SLAB_BLOCK_BYTES - 1));
}

static void block_reset(slab_block *b, size_t record_bytes) {
  memset(b, 0, sizeof(*b));
  b->bump = (uint8_t *)b + SLAB_HEADER_BYTES;
  b->capacity = (uint32_t)((SLAB_BLOCK_BYTES - SLAB_HEADER_BYTES) / record_bytes);
}

/* A block aligned to its size (block_of finds it from any record): map twice
 * the size, unmap what lies outside the aligned part. */
static slab_block *block_map(size_t record_bytes) {
  size_t span = 2 * SLAB_BLOCK_BYTES;
  uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  uint8_t *start = (uint8_t *)(((uintptr_t)p + SLAB_BLOCK_BYTES - 1) & ~(uintptr_t)(SLAB_BLOCK_BYTES - 1));
  if (start > p) munmap(p, (size_t)(start - p));
  uint8_t *end = start + SLAB_BLOCK_BYTES;
  if (end < p + span) munmap(end, (size_t)(p + span - end));
  slab_block *b = (slab_block *)(void *)start;
  block_reset(b, record_bytes);
  return b;
}

static void partial_push(record_slab *slab, slab_block *b) {
  b->prev = NULL;
  b->next = slab->partial;
  if (slab->partial != NULL) slab->partial->prev = b;
  slab->partial = b;
}

static void partial_remove(record_slab *slab, slab_block *b) {
  if (b->prev != NULL) b->prev->next = b->next;
  else slab->partial = b->next;
  if (b->next != NULL) b->next->prev = b->prev;
  b->prev = b->next = NULL;
}

void *slab_alloc(record_slab *slab) {
  ZT_ASSERT(slab->record_bytes >= sizeof(void *) && slab->record_bytes % 16 == 0);
  slab_block *b = slab->partial;
  if (b == NULL) {
    b = slab->spare != NULL ? slab->spare : block_map(slab->record_bytes);
    if (b == NULL) return NULL;
    slab->spare = NULL;
    partial_push(slab, b);
  }
  void *record = b->free_list;
  if (record != NULL) {
    memcpy(&b->free_list, record, sizeof(void *));
  } else {
    record = b->bump;
    b->bump += slab->record_bytes;
  }
  if (++b->used == b->capacity) partial_remove(slab, b);
  return record;
}

void slab_free(record_slab *slab, void *record) {
  slab_block *b = block_of(record);
  ZT_ASSERT(b->used > 0 && b->used <= b->capacity);
  if (b->used == b->capacity) partial_push(slab, b);
  memcpy(record, &b->free_list, sizeof(void *));
  b->free_list = record;
  if (--b->used > 0) return;
  partial_remove(slab, b);
  if (slab->spare == NULL) {
    block_reset(b, slab->record_bytes); /* handed out afresh: dense again */
    slab->spare = b;
  } else {
    munmap(b, SLAB_BLOCK_BYTES);
  }
}

void slab_release_spare(record_slab *slab) {
  if (slab->spare != NULL) munmap(slab->spare, SLAB_BLOCK_BYTES);
  slab->spare = NULL;
}
#endif
