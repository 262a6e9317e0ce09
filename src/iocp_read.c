/* iocp_read.c -- the IOCP backend's reads: a waiting read holds no buffer.
 *
 * An overlapped WSARecv owns its buffer until it completes, so a read that
 * waits with one holds bytes_max (64 KiB from the Dart layer) per idle
 * connection. Instead a read waits in a zero-byte overlapped WSARecv, which
 * completes once the socket has bytes, its end of stream or an error, and
 * takes nothing; then a non-blocking receive (the socket is in FIONBIO mode,
 * set at adopt) takes what is there into the backend's one scratch buffer,
 * and the bytes go to the op at their exact size (op_read_copy /
 * op_read_adopt, ops.h: the seam every backend uses). libuv's Windows TCP
 * reads work the same way (uv__tcp_queue_read's zero read, then non-blocking
 * WSARecv calls in uv__process_tcp_read_req).
 *
 * RECEIVE FIRST
 *   When the last receive filled its buffer, more is probably queued (bulk
 *   traffic, a read stream): the next read receives at once and arms the
 *   zero-byte WSARecv only if nothing was there, saving a call per read. After
 *   a short receive (request/response traffic) the next read arms it directly:
 *   the answer is rarely there yet, and the receive would only say so.
 *
 * READINESS THAT FINDS NOTHING
 *   The zero-byte WSARecv may complete while the receive then finds nothing
 *   (WSAEWOULDBLOCK): the read arms it again and waits in the port, which does
 *   not spin. A provider that completes it at once every time would spin all
 *   the same, so after SPURIOUS_REARMS_MAX such rounds in a row the read waits
 *   in an overlapped WSARecv with its own buffer (the old way: it holds the
 *   buffer, but never spins and never loses a byte).
 *
 * CANCEL
 *   A waiting read is cancelled like any op (CancelIoEx on its OVERLAPPED). A
 *   zero-byte WSARecv that completed although its read was cancelled took
 *   nothing: the read ends as cancelled and the bytes stay in the socket for
 *   the next read (a stopped read stream loses none). */
#if defined(_WIN32)

#include "iocp.h"

#include <stdlib.h>
#include <string.h>

/* Rounds of readiness that found nothing, in a row, before a read waits with
 * its own buffer (see the top). */
#define SPURIOUS_REARMS_MAX 2

/* What a receive found. */
typedef enum receive_outcome {
  RECEIVED,      /* bytes, the end of stream or an error: the op is reported */
  NOTHING_THERE, /* WSAEWOULDBLOCK: the op still waits */
} receive_outcome;

static size_t receive_bytes(const tcp_op *op) { return op->len < RECEIVE_BYTES_MAX ? op->len : RECEIVE_BYTES_MAX; }

/* Waits for readability: a zero-byte overlapped WSARecv. */
static void arm_zero_byte_receive(iocp_backend *ib, tcp_op *op) {
  static char nothing[1];
  memset(&iop(op)->ov, 0, sizeof(OVERLAPPED));
  WSABUF buf;
  buf.len = 0;
  buf.buf = nothing;
  DWORD bytes = 0, flags = 0;
  int rc = SOCKET_ERROR;
  if (ib->fault.read_error != 0) WSASetLastError((int)ib->fault.read_error);
  else rc = WSARecv(op->sock->fd, &buf, 1, &bytes, &flags, &iop(op)->ov, NULL);
  iocp_after_issue(ib, op, rc == 0, 0);
}

/* Waits with a buffer of its own: an overlapped WSARecv into it. */
static void arm_buffered_receive(iocp_backend *ib, tcp_op *op) {
  iocp_op *o = iop(op);
  memset(&o->ov, 0, sizeof(OVERLAPPED));
  o->read_buffer = malloc(receive_bytes(op));
  if (o->read_buffer == NULL) {
    sink_op_failed(ib->base.sink, op, TCP_ERR_NO_MEMORY, 0);
    return;
  }
  WSABUF buf;
  buf.len = (ULONG)receive_bytes(op);
  buf.buf = (char *)o->read_buffer;
  DWORD bytes = 0, flags = 0;
  int rc = WSARecv(op->sock->fd, &buf, 1, &bytes, &flags, &o->ov, NULL);
  iocp_after_issue(ib, op, rc == 0, bytes);
}

/* n > 0 bytes in the scratch buffer become the op's: copied at their size,
 * or, when they fill most of it, the scratch buffer itself goes to the VM
 * (a new one is made on the next receive). False when out of memory. */
static bool scratch_to_op(iocp_backend *ib, tcp_op *op, size_t n) {
  if (n <= TCP_READ_COPY_BYTES_MAX || n <= RECEIVE_BYTES_MAX / 2) return op_read_copy(op, ib->scratch, n);
  uint8_t *whole = ib->scratch;
  ib->scratch = NULL;
  uint8_t *shrunk = realloc(whole, n);
  op_read_adopt(op, shrunk != NULL ? shrunk : whole);
  return true;
}

/* recv(2) without waiting: n >= 0 bytes into the scratch buffer, or
 * SOCKET_ERROR with *err. after_readiness: a zero-byte WSARecv just
 * completed (the read_spurious fault fakes those receives only). */
static int receive_now(iocp_backend *ib, tcp_op *op, bool after_readiness, DWORD *err) {
  iocp_fault *f = &ib->fault;
  if (f->read_error != 0 || (after_readiness && f->read_spurious > 0)) {
    *err = f->read_error != 0 ? f->read_error : WSAEWOULDBLOCK;
    if (f->read_error == 0 && f->read_spurious != SPURIOUS_ALWAYS) f->read_spurious--;
    return SOCKET_ERROR;
  }
  int n = recv(op->sock->fd, (char *)ib->scratch, (int)receive_bytes(op), 0);
  if (n == SOCKET_ERROR) *err = (DWORD)WSAGetLastError();
  return n;
}

/* Takes what the socket holds for op and reports op, unless nothing is there. */
static receive_outcome receive(iocp_backend *ib, tcp_op *op, bool after_readiness) {
  backend_sink *sink = ib->base.sink;
  if (ib->scratch == NULL) ib->scratch = malloc(RECEIVE_BYTES_MAX);
  if (ib->scratch == NULL) {
    sink_op_failed(sink, op, TCP_ERR_NO_MEMORY, 0);
    return RECEIVED;
  }
  DWORD err = 0;
  int n = receive_now(ib, op, after_readiness, &err);
  if (n == SOCKET_ERROR && err == WSAEWOULDBLOCK) return NOTHING_THERE;
  if (n == SOCKET_ERROR) iocp_report_error(ib, op, err);
  else if (n == 0) sink_op_done(sink, op, 0); /* end of stream */
  else if (!scratch_to_op(ib, op, (size_t)n)) sink_op_failed(sink, op, TCP_ERR_NO_MEMORY, 0); /* bytes lost */
  else sink_op_done(sink, op, n);
  isock(op->sock)->receive_first = n > 0 && (size_t)n == receive_bytes(op);
  return RECEIVED;
}

void iocp_issue_read(iocp_backend *ib, tcp_op *op) {
  iop(op)->spurious = 0;
  if (isock(op->sock)->receive_first && receive(ib, op, false) == RECEIVED) return;
  arm_zero_byte_receive(ib, op);
}

/* The overlapped WSARecv with the read's own buffer finished. */
static void completed_buffered(iocp_backend *ib, tcp_op *op, DWORD bytes, DWORD err) {
  iocp_op *o = iop(op);
  uint8_t *buffer = o->read_buffer;
  o->read_buffer = NULL;
  isock(op->sock)->receive_first = err == 0 && bytes == receive_bytes(op);
  if (err != 0 || bytes == 0) {
    free(buffer);
    if (err != 0) iocp_report_error(ib, op, err);
    else sink_op_done(ib->base.sink, op, 0); /* end of stream */
    return;
  }
  if (bytes > TCP_READ_COPY_BYTES_MAX) {
    op_read_adopt(op, buffer);
  } else {
    bool copied = op_read_copy(op, buffer, bytes);
    free(buffer);
    if (!copied) {
      sink_op_failed(ib->base.sink, op, TCP_ERR_NO_MEMORY, 0);
      return;
    }
  }
  sink_op_done(ib->base.sink, op, (int64_t)bytes);
}

void iocp_completed_read(iocp_backend *ib, tcp_op *op, DWORD bytes, DWORD err) {
  iocp_op *o = iop(op);
  if (o->read_buffer != NULL) {
    completed_buffered(ib, op, bytes, err);
    return;
  }
  ZT_ASSERT(err != 0 || bytes == 0); /* a zero-byte WSARecv moves no byte */
  if (err != 0) {
    iocp_report_error(ib, op, err);
  } else if (o->cancelled) {
    sink_op_cancelled(ib->base.sink, op); /* it took nothing: the bytes wait for the next read */
  } else if (receive(ib, op, true) == NOTHING_THERE) {
    if (++o->spurious > SPURIOUS_REARMS_MAX) arm_buffered_receive(ib, op);
    else arm_zero_byte_receive(ib, op);
  }
}

#else
typedef int iocp_read_is_for_windows_only; /* a translation unit is never empty */
#endif /* _WIN32 */
