/* io_uring_bufs.h -- a provided-buffer ring (kernel 5.19+,
 * IORING_REGISTER_PBUF_RING): buffers the kernel picks from only when a recv
 * has bytes to deliver, so a waiting read holds no memory (io_uring_bufs.c).
 *
 * The ring starts small and grows when the kernel finds it empty (ENOBUFS),
 * up to entries_max; buffers are UBUF_BYTES each. Resident memory is the
 * buffers the kernel has used at once at the busiest moment, not a buffer per
 * connection. I/O thread only. */
#ifndef ZIG_TCP_IO_URING_BUFS_H
#define ZIG_TCP_IO_URING_BUFS_H

#include <linux/io_uring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 64 KiB: what the Dart layer's reads and a stream's receives ask for, so a
 * bulk read is never cut shorter than it would be with a buffer of its own
 * (with 32 KiB buffers a bulk transfer takes twice the completions, and
 * twice the messages to the isolate, of 64 KiB reads). */
#define UBUF_BYTES (64u * 1024u)
#define UBUF_GROUP 0

typedef struct uring_bufs {
  struct io_uring_buf_ring *ring; /* shared with the kernel */
  size_t ring_bytes;
  uint8_t **buffers;              /* [entries_max]: the buffer behind each id */
  unsigned entries_max;           /* a power of two */
  unsigned populated;             /* ids 0..populated-1 have a buffer */
  uint16_t tail;                  /* buffers published so far */
} uring_bufs;

/* Registers a ring of entries_max ids with initial buffers. 0, or the errno
 * (EINVAL on a kernel without provided-buffer rings). */
int uring_bufs_setup(uring_bufs *b, int ring_fd, unsigned entries_max, unsigned initial);
void uring_bufs_teardown(uring_bufs *b, int ring_fd);
/* More buffers (up to entries_max): false when none could be added. */
bool uring_bufs_grow(uring_bufs *b);
/* The buffer behind id (the kernel filled it). */
uint8_t *uring_bufs_get(const uring_bufs *b, uint16_t id);
/* Gives buffer id back to the kernel. */
void uring_bufs_recycle(uring_bufs *b, uint16_t id);
/* Every buffer is in the ring, none being filled: their pages go back to the
 * OS (they come back, zeroed, when the kernel next writes into them). */
void uring_bufs_release_pages(uring_bufs *b);
/* Takes buffer id out for good (its bytes go to the VM): a new buffer takes
 * its place. NULL when out of memory (then id stays as it is). */
uint8_t *uring_bufs_take(uring_bufs *b, uint16_t id);

#endif /* ZIG_TCP_IO_URING_BUFS_H */
