/* io_uring_read.c -- the io_uring backend's receive path: reads held back one
 * io_uring_enter, and a read's CQE turned into the op's bytes (from a
 * provided buffer or the read's own), including an empty buffer ring
 * (ENOBUFS). The ring side is backend_io_uring.c. I/O thread only.
 *
 * Reads take their buffer from a provided-buffer ring (io_uring_bufs.h) when
 * the kernel has one (5.19+): a waiting read holds no memory. A read that
 * finds the ring empty (ENOBUFS) grows it and goes again; once the ring is at
 * its largest, that read falls back to a buffer of its own -- held while it
 * waits, like every read on a kernel without the ring. Neither loses a byte
 * (ENOBUFS means the kernel delivered nothing) and neither spins (growth is
 * bounded, the fallback always has a buffer). */
#include <errno.h>
#include <stdlib.h>

#include "io_uring_backend.h"

/* A read of a socket the last read emptied (request/response traffic) is not
 * submitted with the write that usually comes with it, but one io_uring_enter
 * later: by then the peer has often answered, and the recv completes at once
 * instead of arming poll and finishing later as deferred task work (measured:
 * that path was 17 % of the engine's CPU at 1000 connections). This is the
 * backend's own policy, not the core's: it exists because of how io_uring
 * charges a recv that must wait. */
void uring_hold_read(uring_backend *u, tcp_op *op) { queue_push(&u->fresh_reads, &op->backend_link); }

/* Before an io_uring_enter: submit the reads held for one enter; all of them
 * when the thread is about to wait (nothing else would bring them in). */
void uring_release_reads(uring_backend *u, bool all) {
  qlink *l;
  while ((l = queue_pop(&u->aged_reads)) != NULL) uring_send_op(u, op_of(l));
  while ((l = queue_pop(&u->fresh_reads)) != NULL) {
    if (all) uring_send_op(u, op_of(l));
    else queue_push(&u->aged_reads, l);
  }
}

/* The provided buffer a read's CQE carries (if any) goes back to the ring. */
void uring_recycle_provided(uring_backend *u, tcp_op *op) {
  uring_op *o = uop(op);
  if (o->cqe_flags & IORING_CQE_F_BUFFER) uring_bufs_recycle(&u->bufs, (uint16_t)(o->cqe_flags >> IORING_CQE_BUFFER_SHIFT));
  o->cqe_flags &= ~(uint32_t)IORING_CQE_F_BUFFER;
}

/* A read's buffers go back: the provided one to the ring, its own freed. */
static void read_buffers_back(uring_backend *u, tcp_op *op) {
  uring_recycle_provided(u, op);
  free(uop(op)->own_buffer);
  uop(op)->own_buffer = NULL;
}

/* n > 0 bytes arrived in src (a provided buffer, or the op's own): they become
 * the op's. Small ones are copied (the buffer goes back at once); large ones
 * keep their buffer, which goes to the VM (a fresh one replaces it in the
 * ring). False when out of memory (the bytes are lost). */
static bool read_bytes_to_op(uring_backend *u, tcp_op *op, size_t n) {
  uring_op *o = uop(op);
  bool provided = (o->cqe_flags & IORING_CQE_F_BUFFER) != 0;
  uint16_t id = (uint16_t)(o->cqe_flags >> IORING_CQE_BUFFER_SHIFT);
  uint8_t *src = provided ? uring_bufs_get(&u->bufs, id) : o->own_buffer;
  uint8_t *whole = NULL;
  if (n > TCP_READ_COPY_BYTES_MAX) whole = provided ? uring_bufs_take(&u->bufs, id) : o->own_buffer;
  if (whole == NULL) {
    bool copied = op_read_copy(op, src, n);
    read_buffers_back(u, op);
    return copied;
  }
  if (!provided) o->own_buffer = NULL;
  o->cqe_flags &= ~(uint32_t)IORING_CQE_F_BUFFER;
  uint8_t *shrunk = n <= UBUF_BYTES / 2 ? realloc(whole, n) : NULL;
  op_read_adopt(op, shrunk != NULL ? shrunk : whole);
  return true;
}

/* The provided-buffer ring was empty: grow it, or give this read its own
 * buffer; then it goes again (nothing was delivered). */
static void read_found_no_buffer(uring_backend *u, tcp_op *op) {
  if (!uring_bufs_grow(&u->bufs)) {
    size_t bytes = op->len < UBUF_BYTES ? op->len : UBUF_BYTES;
    uop(op)->own_buffer = malloc(bytes);
    if (uop(op)->own_buffer == NULL) {
      sink_op_failed(u->base.sink, op, TCP_ERR_NO_MEMORY, 0);
      return;
    }
    if (op->len > bytes) op->len = bytes; /* a read may always return less */
  }
  uring_send_op(u, op);
}

void uring_read_settled(uring_backend *u, tcp_op *op) {
  uring_op *o = uop(op);
  backend_sink *sink = u->base.sink;
  int32_t res = o->res;
  if (res == -ENOBUFS && !o->cancelled) {
    read_found_no_buffer(u, op);
    return;
  }
  /* A receive that took bytes out of the socket is delivered also when its
   * cancel was on its way: a stream's stop racing it must not lose them
   * (tcp.h: they come as a last DATA completion); for a close the core drops
   * them. Nothing taken (an error, or end of stream, which stays readable)
   * ends as cancelled when a cancel was asked for. */
  if (res <= 0) {
    read_buffers_back(u, op);
    if (res == -ECANCELED || o->cancelled) sink_op_cancelled(sink, op);
    else if (res < 0) sink_op_error(sink, op, -res);
    else sink_op_done(sink, op, 0); /* end of stream */
    return;
  }
  usock(op->sock)->read_drained = (size_t)res < op->len;
  if (read_bytes_to_op(u, op, (size_t)res)) sink_op_done(sink, op, res);
  else sink_op_failed(sink, op, TCP_ERR_NO_MEMORY, ENOMEM);
}
