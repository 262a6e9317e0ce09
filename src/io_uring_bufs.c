/* io_uring_bufs.c -- the provided-buffer ring (see io_uring_bufs.h). */
#include "io_uring_bufs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zt_assert.h"

static void publish_buffer(uring_bufs *b, uint16_t id) {
  struct io_uring_buf *slot = &b->ring->bufs[b->tail & (b->entries_max - 1)];
  slot->addr = (uint64_t)(uintptr_t)b->buffers[id];
  slot->len = UBUF_BYTES;
  slot->bid = id;
  b->tail++;
  /* The kernel reads the slot after it sees the tail: release. */
  atomic_store_explicit((_Atomic(uint16_t) *)&b->ring->tail, b->tail, memory_order_release);
}

bool uring_bufs_grow(uring_bufs *b) {
  unsigned target = b->populated == 0 ? 1 : b->populated * 2;
  if (target > b->entries_max) target = b->entries_max;
  bool grew = false;
  while (b->populated < target) {
    uint8_t *buf = malloc(UBUF_BYTES);
    if (buf == NULL) break;
    b->buffers[b->populated] = buf;
    publish_buffer(b, (uint16_t)b->populated);
    b->populated++;
    grew = true;
  }
  return grew;
}

int uring_bufs_setup(uring_bufs *b, int ring_fd, unsigned entries_max, unsigned initial) {
  memset(b, 0, sizeof(*b));
  ZT_ASSERT(entries_max > 0 && (entries_max & (entries_max - 1)) == 0 && entries_max <= 32768);
  b->entries_max = entries_max;
  b->ring_bytes = entries_max * sizeof(struct io_uring_buf);
  b->ring = mmap(NULL, b->ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b->ring == MAP_FAILED) {
    b->ring = NULL;
    return ENOMEM;
  }
  b->buffers = calloc(entries_max, sizeof(*b->buffers));
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = (uint64_t)(uintptr_t)b->ring;
  reg.ring_entries = entries_max;
  reg.bgid = UBUF_GROUP;
  int err = b->buffers == NULL ? ENOMEM : 0;
  if (err == 0 && syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) err = errno;
  if (err != 0) {
    free(b->buffers);
    munmap(b->ring, b->ring_bytes);
    memset(b, 0, sizeof(*b));
    return err;
  }
  while (b->populated < initial && uring_bufs_grow(b)) {
  }
  return 0;
}

void uring_bufs_teardown(uring_bufs *b, int ring_fd) {
  if (b->ring == NULL) return;
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof(reg));
  reg.bgid = UBUF_GROUP;
  (void)syscall(__NR_io_uring_register, ring_fd, IORING_UNREGISTER_PBUF_RING, &reg, 1);
  for (unsigned i = 0; i < b->populated; i++) free(b->buffers[i]);
  free(b->buffers);
  munmap(b->ring, b->ring_bytes);
  memset(b, 0, sizeof(*b));
}

uint8_t *uring_bufs_get(const uring_bufs *b, uint16_t id) {
  ZT_ASSERT(id < b->populated);
  return b->buffers[id];
}

void uring_bufs_recycle(uring_bufs *b, uint16_t id) {
  ZT_ASSERT(id < b->populated);
  publish_buffer(b, id);
}

void uring_bufs_release_pages(uring_bufs *b) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  for (unsigned i = 0; i < b->populated; i++) {
    /* The whole pages inside the buffer (malloc's header page is not ours). */
    uintptr_t start = ((uintptr_t)b->buffers[i] + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)b->buffers[i] + UBUF_BYTES) & ~(uintptr_t)(page - 1);
    if (end > start) (void)madvise((void *)start, end - start, MADV_DONTNEED);
  }
}

uint8_t *uring_bufs_take(uring_bufs *b, uint16_t id) {
  ZT_ASSERT(id < b->populated);
  uint8_t *fresh = malloc(UBUF_BYTES);
  if (fresh == NULL) return NULL;
  uint8_t *taken = b->buffers[id];
  b->buffers[id] = fresh;
  publish_buffer(b, id);
  return taken;
}
