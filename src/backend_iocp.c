/*
 * backend_iocp.c -- the Windows backend: one I/O completion port.
 *
 * submit issues the overlapped Winsock call (ConnectEx, AcceptEx, WSARecv,
 * WSASend) on the I/O thread; poll waits on the port with
 * GetQueuedCompletionStatusEx and reports each completion packet.
 *
 * Where the socket provider allows it, sockets use
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: a call that succeeds at once queues no
 * packet, and is reported at once, like a call that fails at once.
 *
 * CANCELLATION
 *   cancel() is CancelIoEx on the op's own OVERLAPPED; the aborted completion
 *   (ERROR_OPERATION_ABORTED) still arrives and is reported. Where a non-IFS
 *   LSP sits on the socket, the I/O runs on the LSP's own handle and
 *   OVERLAPPED, and CancelIoEx can find nothing: an idle read would then never
 *   end. So a cancel that finds nothing is retried on the SIO_BASE_HANDLE
 *   handle (libuv's uv__tcp_try_cancel_reqs does the same); if that finds
 *   nothing either, the packets already in the port are moved to the stash
 *   (reported on the next poll) to see whether the op's completion is among
 *   them, and if it is not, the socket is closed early: closing a socket
 *   aborts all of its I/O, whose packets still come ("Any pending overlapped
 *   send and receive operations ... are also canceled. Any event, completion
 *   routine, or completion port action specified for these overlapped
 *   operations is performed" -- closesocket, Microsoft Learn). Every op still
 *   ends exactly once. Otherwise the OS socket is closed only after every op on
 *   it completed (release is called with nothing in flight).
 *
 * FAULT HOOK (tests; test_c/test_portability.c)
 *   ZIG_TCP_IOCP_FAULT=WORD[,WORD...], read at create:
 *     cancel_miss          CancelIoEx finds nothing, on the socket and on its
 *                          base handle (the non-IFS LSP case above)
 *     accept_context_once  the first SO_UPDATE_ACCEPT_CONTEXT fails (WSAEINVAL)
 *     connect_error=CODE   every ConnectEx fails at once with CODE
 *     read_error=CODE      every WSARecv fails at once with CODE
 */
#if !defined(_WIN32)
#error "backend_iocp.c is for Windows only"
#endif

#include "backend.h"

#include <mstcpip.h>
#include <mswsock.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "errors.h"

/* Completion keys. Sockets are associated with KEY_IO; wake() posts KEY_WAKE. */
#define KEY_IO ((ULONG_PTR)0)
#define KEY_WAKE ((ULONG_PTR)1)

/* AcceptEx needs room for each address plus 16 bytes. */
#define ACCEPT_ADDR_BYTES ((DWORD)(sizeof(struct sockaddr_in6) + 16))
/* Completion packets taken from the port per call. */
#define BATCH 128
/* One WSASend never locks more than this much of a (up to 1 GiB) write. */
#define WRITE_CHUNK_MAX ((size_t)8 * 1024 * 1024)

typedef struct iocp_op {
  OVERLAPPED ov;        /* first: a packet's OVERLAPPED* leads to the op */
  SOCKET accept_fd;     /* accept: the pre-created socket */
  uint8_t *read_buffer; /* read: bytes_max bytes, held while the read waits (see issue_read) */
  bool cancelled;       /* cancel() was called */
  unsigned char addrs[2 * ACCEPT_ADDR_BYTES];
} iocp_op;

typedef struct iocp_sock {
  bool skip_on_success; /* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set */
  bool closed_early;    /* a cancel found nothing: the OS socket was closed to abort its I/O */
} iocp_sock;

/* What one address family's provider gives: extension functions are the
 * provider's own (an LSP may install different ones per family). */
typedef struct iocp_family {
  LPFN_ACCEPTEX accept_ex; /* NULL: no socket of this family could be made at create */
  LPFN_CONNECTEX connect_ex;
  bool ifs; /* the provider hands out IFS handles (skip mode is safe) */
} iocp_family;

typedef struct iocp_fault {
  bool cancel_miss;
  bool accept_context_once;
  DWORD connect_error, read_error;
} iocp_fault;

typedef struct iocp_backend {
  backend base;
  HANDLE port;
  iocp_family v4, v6;
  /* Windows 10 1709+: SIO_TCP_INITIAL_RTO accepts TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS. */
  bool no_syn_retransmissions;
  /* Packets taken from the port by a cancel, reported on the next poll
   * (tcp_op.backend_link). */
  queue stash;
  bool wake_stashed; /* the wake packet was among them */
  iocp_fault fault;
  volatile LONG wake_pending;
  OVERLAPPED_ENTRY entries[BATCH];
} iocp_backend;

_Static_assert(sizeof(iocp_op) <= OP_BACKEND_BYTES, "iocp_op must fit in tcp_op.backend");
_Static_assert(_Alignof(iocp_op) <= 16, "tcp_op.backend is 16-aligned");
_Static_assert(sizeof(iocp_sock) <= SOCK_BACKEND_BYTES, "iocp_sock must fit in tcp_sock.backend");

static inline iocp_op *iop(tcp_op *op) { return (iocp_op *)(void *)op->backend; }
static inline iocp_sock *isock(tcp_sock *s) { return (iocp_sock *)(void *)s->backend; }
static inline iocp_backend *self(backend *b) { return (iocp_backend *)(void *)b; }
static inline tcp_op *op_from_ov(OVERLAPPED *ov) {
  return (tcp_op *)(void *)((char *)ov - offsetof(tcp_op, backend));
}
static inline iocp_family *family_of(iocp_backend *ib, const tcp_sock *s) {
  return s->family == AF_INET6 ? &ib->v6 : &ib->v4;
}

static void completed(iocp_backend *ib, tcp_op *op, DWORD bytes, DWORD err);

/* ---- reporting ----------------------------------------------------------------- */

/* Ended by cancel(): aborted by its CancelIoEx, or by anything once the early
 * close (which aborts with provider-specific codes; Wine's differ) was made. */
static bool ended_by_cancel(tcp_op *op, DWORD err) {
  return iop(op)->cancelled && (err == ERROR_OPERATION_ABORTED || isock(op->sock)->closed_early);
}

static void report_error(iocp_backend *ib, tcp_op *op, DWORD err) {
  if (ended_by_cancel(op, err)) sink_op_cancelled(ib->base.sink, op);
  else if (op->kind == OP_CONNECT) sink_op_failed(ib->base.sink, op, error_from_os_at_bind(err), (int64_t)err);
  else sink_op_error(ib->base.sink, op, (int64_t)err);
}

/* ---- issuing overlapped calls ------------------------------------------------ */

/* After an overlapped call: ok = it returned success at once. */
static void after_issue(iocp_backend *ib, tcp_op *op, bool ok, DWORD bytes) {
  if (ok) {
    /* Without skip mode the port still gets a packet for it. */
    if (isock(op->sock)->skip_on_success) completed(ib, op, bytes, 0);
    return;
  }
  DWORD err = (DWORD)WSAGetLastError();
  if (err == WSA_IO_PENDING) return;
  completed(ib, op, 0, err); /* failed at once: no packet is queued */
}

/* TODO(issue 13): a zero-byte WSARecv to learn readability, then a
 * non-blocking receive, so that a waiting read holds no buffer; today the
 * read's buffer is taken when it is issued. */
static void issue_read(iocp_backend *ib, tcp_op *op) {
  memset(&iop(op)->ov, 0, sizeof(OVERLAPPED));
  if (iop(op)->read_buffer == NULL) iop(op)->read_buffer = malloc(op->len);
  if (iop(op)->read_buffer == NULL) {
    sink_op_failed(ib->base.sink, op, TCP_ERR_NO_MEMORY, 0);
    return;
  }
  WSABUF buf;
  buf.len = (ULONG)op->len;
  buf.buf = (char *)iop(op)->read_buffer;
  DWORD bytes = 0, flags = 0;
  int rc = SOCKET_ERROR;
  if (ib->fault.read_error != 0) WSASetLastError((int)ib->fault.read_error);
  else rc = WSARecv(op->sock->fd, &buf, 1, &bytes, &flags, &iop(op)->ov, NULL);
  after_issue(ib, op, rc == 0, bytes);
}

static void issue_write(iocp_backend *ib, tcp_op *op) {
  memset(&iop(op)->ov, 0, sizeof(OVERLAPPED));
  size_t left = op->len - op->done;
  WSABUF buf;
  buf.len = (ULONG)(left < WRITE_CHUNK_MAX ? left : WRITE_CHUNK_MAX);
  buf.buf = (char *)op->data + op->done;
  DWORD bytes = 0;
  int rc = WSASend(op->sock->fd, &buf, 1, &bytes, 0, &iop(op)->ov, NULL);
  after_issue(ib, op, rc == 0, bytes);
}

/* ConnectEx needs a bound socket: bind to the family's wildcard address unless
 * tcp_connect bound a source address. The core says which (s->source_bound):
 * getsockname cannot, as it fails with WSAEINVAL both on an unbound socket and
 * on one "bound to ADDR_ANY" whose "connection has not yet occurred" (Microsoft
 * Learn, getsockname) -- the source-port-only connect. Returns 0 or the WSA
 * code. */
static DWORD ensure_bound(tcp_sock *s) {
  if (s->source_bound) return 0;
  struct sockaddr_storage ss;
  int len;
  memset(&ss, 0, sizeof(ss));
  if (s->family == AF_INET6) {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_any;
    len = (int)sizeof(*v6);
  } else {
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_ANY);
    len = (int)sizeof(*v4);
  }
  if (bind(s->fd, (struct sockaddr *)&ss, len) != 0) return (DWORD)WSAGetLastError();
  return 0;
}

static bool is_v4_mapped(const struct in6_addr *a) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(a->s6_addr, prefix, sizeof(prefix)) == 0;
}

/* The address ConnectEx gets: op->addr, except that the unspecified address
 * (0.0.0.0, ::, ::ffff:0.0.0.0) means this host's loopback, as Linux and the
 * BSDs connect it. Windows fails it with WSAEADDRNOTAVAIL; libuv converts it
 * the same way ("uv__convert_to_localhost_if_unspecified", src/win/winsock.c). */
static void connect_target(const tcp_op *op, struct sockaddr_storage *out) {
  memcpy(out, &op->addr, sizeof(*out));
  if (out->ss_family == AF_INET) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    if (v4->sin_addr.s_addr == htonl(INADDR_ANY)) v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return;
  }
  struct in6_addr *a = &((struct sockaddr_in6 *)out)->sin6_addr;
  static const uint8_t zero[16] = {0};
  if (memcmp(a->s6_addr, zero, 16) == 0) {
    *a = in6addr_loopback;
  } else if (is_v4_mapped(a) && memcmp(a->s6_addr + 12, zero, 4) == 0) {
    a->s6_addr[12] = 127; /* ::ffff:127.0.0.1 */
    a->s6_addr[15] = 1;
  }
}

static bool is_loopback(const struct sockaddr_storage *sa) {
  if (sa->ss_family == AF_INET) return ((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr)[0] == 127;
  const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
  return memcmp(a, &in6addr_loopback, sizeof(*a)) == 0 || (is_v4_mapped(a) && a->s6_addr[12] == 127);
}

/* Windows answers a SYN to a closed port with RST and still retransmits the
 * SYN for about 2 s before it reports the refusal; Linux reports it at once.
 * For loopback peers turn the retransmissions off, as libuv does ("This makes
 * connect() fail instantly if the target port on the localhost is not
 * reachable, instead of waiting for 2s. We do not care if this fails. This
 * only works on Windows version 10.0.16299 and later." -- uv__tcp_try_connect,
 * src/win/tcp.c) and Go (net/fd_windows.go). Older Windows would take the
 * value for a count of 254 retransmissions, hence the version check. Wine
 * refuses at once anyway (Linux sockets) and may not know the ioctl. */
static void refuse_loopback_at_once(iocp_backend *ib, SOCKET fd, const struct sockaddr_storage *peer) {
  if (!ib->no_syn_retransmissions || !is_loopback(peer)) return;
  TCP_INITIAL_RTO_PARAMETERS rto;
  rto.Rtt = TCP_INITIAL_RTO_UNSPECIFIED_RTT; /* the system's (administrator's) value */
  rto.MaxSynRetransmissions = TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS;
  DWORD bytes = 0;
  (void)WSAIoctl(fd, SIO_TCP_INITIAL_RTO, &rto, (DWORD)sizeof(rto), NULL, 0, &bytes, NULL, NULL);
}

static void issue_connect(iocp_backend *ib, tcp_op *op) {
  memset(&iop(op)->ov, 0, sizeof(OVERLAPPED));
  DWORD err = ensure_bound(op->sock);
  if (err != 0) {
    completed(ib, op, 0, err);
    return;
  }
  struct sockaddr_storage peer;
  connect_target(op, &peer);
  refuse_loopback_at_once(ib, op->sock->fd, &peer);
  LPFN_CONNECTEX connect_ex = family_of(ib, op->sock)->connect_ex;
  ZT_ASSERT(connect_ex != NULL); /* adopt refused the family otherwise */
  DWORD bytes = 0;
  BOOL ok = FALSE;
  if (ib->fault.connect_error != 0) WSASetLastError((int)ib->fault.connect_error);
  else ok = connect_ex(op->sock->fd, (const struct sockaddr *)&peer, op->addr_len, NULL, 0, &bytes, &iop(op)->ov);
  after_issue(ib, op, ok != FALSE, 0);
}

/* ---- accepts ------------------------------------------------------------------ */

static bool accept_error_is_transient(DWORD err) {
  /* The peer reset or gave up before we took the connection: wait for the next. */
  return err == WSAECONNRESET || err == ERROR_NETNAME_DELETED || err == WSAECONNABORTED ||
         err == ERROR_CONNECTION_ABORTED;
}

/* The accepted socket takes the listener's properties; 0 or the WSA code. */
static DWORD update_accept_context(iocp_backend *ib, SOCKET fd, SOCKET listener) {
  if (ib->fault.accept_context_once) {
    ib->fault.accept_context_once = false;
    return WSAEINVAL;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&listener, (int)sizeof(listener)) != 0)
    return (DWORD)WSAGetLastError();
  return 0;
}

/* AcceptEx finished with err: reports op, or returns true when another
 * AcceptEx must be issued for it. A failure that concerns only the accepted
 * socket -- the peer gave up, or SO_UPDATE_ACCEPT_CONTEXT failed on it -- does
 * not fail the caller's accept ("Error related to accepted socket is ignored
 * because the server socket may still be healthy" -- libuv,
 * uv__process_tcp_accept_req). */
static bool accept_finished(iocp_backend *ib, tcp_op *op, DWORD err) {
  iocp_op *o = iop(op);
  SOCKET fd = o->accept_fd;
  o->accept_fd = INVALID_SOCKET;
  bool accepted = err == 0;
  if (accepted) err = update_accept_context(ib, fd, op->sock->fd);
  if (err == 0) {
    sink_accept_done(ib->base.sink, op, fd);
    return false;
  }
  if (fd != INVALID_SOCKET) os_socket_close(fd);
  if (!o->cancelled && (accepted || accept_error_is_transient(err))) return true;
  report_error(ib, op, err);
  return false;
}

/* One AcceptEx; true when it finished at once and another must follow. */
static bool try_accept(iocp_backend *ib, tcp_op *op) {
  iocp_op *o = iop(op);
  memset(&o->ov, 0, sizeof(o->ov));
  int err = 0;
  o->accept_fd = os_socket_open(op->sock->family, false, &err);
  if (o->accept_fd == INVALID_SOCKET) {
    report_error(ib, op, (DWORD)err);
    return false;
  }
  DWORD bytes = 0;
  BOOL ok = family_of(ib, op->sock)->accept_ex(op->sock->fd, o->accept_fd, o->addrs, 0, ACCEPT_ADDR_BYTES,
                                                ACCEPT_ADDR_BYTES, &bytes, &o->ov);
  if (ok && !isock(op->sock)->skip_on_success) return false; /* its packet comes */
  DWORD rc = ok ? 0 : (DWORD)WSAGetLastError();
  if (rc == WSA_IO_PENDING) return false;
  return accept_finished(ib, op, rc);
}

/* A loop, not recursion: a backlog of connections the op does not take may
 * finish AcceptEx at once many times over. */
static void issue_accept(iocp_backend *ib, tcp_op *op) {
  while (try_accept(ib, op)) {
  }
}

/* ---- completions ---------------------------------------------------------------- */

static void completed_write(iocp_backend *ib, tcp_op *op, DWORD bytes, DWORD err) {
  if (err == 0 && bytes == 0 && op->done < op->len) err = WSAECONNABORTED; /* no progress */
  if (err != 0) {
    report_error(ib, op, err);
    return;
  }
  op->done += bytes;
  if (op->done == op->len) sink_op_done(ib->base.sink, op, (int64_t)op->len);
  else if (iop(op)->cancelled) sink_op_cancelled(ib->base.sink, op);
  else issue_write(ib, op); /* short write: send the rest */
}

static void completed_read(iocp_backend *ib, tcp_op *op, DWORD bytes, DWORD err) {
  iocp_op *o = iop(op);
  uint8_t *buffer = o->read_buffer;
  o->read_buffer = NULL;
  if (err != 0 || bytes == 0) {
    free(buffer);
    if (err != 0) report_error(ib, op, err);
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

static void completed(iocp_backend *ib, tcp_op *op, DWORD bytes, DWORD err) {
  /* After the early close the socket is gone: a connect that made it in time
   * cannot be finished, and an accepted socket has no listener to update from. */
  if (err == 0 && isock(op->sock)->closed_early && (op->kind == OP_CONNECT || op->kind == OP_ACCEPT))
    err = ERROR_OPERATION_ABORTED;
  switch (op->kind) {
    case OP_CONNECT:
      if (err == 0 && setsockopt(op->sock->fd, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0)
        err = (DWORD)WSAGetLastError();
      if (err != 0) report_error(ib, op, err);
      else sink_op_done(ib->base.sink, op, 0);
      return;
    case OP_ACCEPT:
      if (accept_finished(ib, op, err)) issue_accept(ib, op);
      return;
    case OP_READ: completed_read(ib, op, bytes, err); return;
    case OP_WRITE: completed_write(ib, op, bytes, err); return;
    default: ZT_ASSERT(!"only connect, accept, read and write are overlapped"); return;
  }
}

/* The packet of an overlapped call: its OVERLAPPED and byte count. */
static void completed_packet(iocp_backend *ib, tcp_op *op, DWORD bytes) {
  OVERLAPPED *ov = &iop(op)->ov;
  DWORD err = 0;
  if ((LONG)ov->Internal < 0) { /* an NTSTATUS error: let Winsock name it */
    DWORD b2 = 0, flags = 0;
    if (isock(op->sock)->closed_early) {
      err = ERROR_OPERATION_ABORTED; /* no socket left to ask (its handle may be reused) */
    } else if (!WSAGetOverlappedResult(op->sock->fd, ov, &b2, FALSE, &flags)) {
      err = (DWORD)WSAGetLastError();
      if (err == 0) err = ERROR_OPERATION_ABORTED;
    } else {
      bytes = b2;
    }
  }
  completed(ib, op, bytes, err);
}

/* Packets of the port: a wake, or an op's completion. */
static void take_packets(iocp_backend *ib, ULONG n, bool to_stash) {
  for (ULONG i = 0; i < n; i++) {
    OVERLAPPED_ENTRY *e = &ib->entries[i];
    if (e->lpOverlapped == NULL) {
      if (e->lpCompletionKey != KEY_WAKE) continue;
      if (to_stash) ib->wake_stashed = true;
      else InterlockedExchange(&ib->wake_pending, 0);
      continue;
    }
    tcp_op *op = op_from_ov(e->lpOverlapped);
    if (to_stash) queue_push(&ib->stash, &op->backend_link);
    else completed_packet(ib, op, e->dwNumberOfBytesTransferred);
  }
}

/* Moves every packet now in the port to the stash. Each op has at most one
 * packet outstanding and a cancel issues nothing, so this ends. */
static void stash_queued_packets(iocp_backend *ib) {
  ULONG n = BATCH;
  while (n == BATCH) {
    n = 0;
    if (!GetQueuedCompletionStatusEx(ib->port, ib->entries, BATCH, &n, 0, FALSE)) return;
    take_packets(ib, n, true);
  }
}

static void report_stash(iocp_backend *ib) {
  if (ib->wake_stashed) InterlockedExchange(&ib->wake_pending, 0);
  ib->wake_stashed = false;
  qlink *l;
  while ((l = queue_pop(&ib->stash)) != NULL) {
    tcp_op *op = QUEUE_ENTRY(l, tcp_op, backend_link);
    /* Dequeued, its OVERLAPPED holds the final status and byte count. */
    completed_packet(ib, op, (DWORD)iop(op)->ov.InternalHigh);
  }
}

/* ---- cancellation ------------------------------------------------------------------ */

/* CancelIoEx on handle for op: true when it found the op's I/O. */
static bool cancel_on(iocp_backend *ib, SOCKET handle, tcp_op *op) {
  if (ib->fault.cancel_miss) return false;
  return CancelIoEx((HANDLE)handle, &iop(op)->ov) != FALSE;
}

/* The same on the base provider's handle, where a layered provider sits. */
static bool cancel_on_base_handle(iocp_backend *ib, tcp_op *op) {
  SOCKET fd = op->sock->fd, base = INVALID_SOCKET;
  DWORD bytes = 0;
  if (WSAIoctl(fd, SIO_BASE_HANDLE, NULL, 0, &base, (DWORD)sizeof(base), &bytes, NULL, NULL) != 0) return false;
  return base != INVALID_SOCKET && base != fd && cancel_on(ib, base, op);
}

/* Last resort: closing the socket aborts all of its I/O (see the top). */
static void close_early(tcp_sock *s) {
  os_socket_close(s->fd);
  s->fd = INVALID_SOCKET; /* lock held: no accessor can use the stale handle */
  isock(s)->closed_early = true;
}

static void iocp_cancel(backend *b, tcp_op *op) {
  iocp_backend *ib = self(b);
  tcp_sock *s = op->sock;
  iop(op)->cancelled = true;
  if (isock(s)->closed_early || qlink_in(&op->backend_link, &ib->stash)) return;
  if (cancel_on(ib, s->fd, op) || cancel_on_base_handle(ib, op)) return;
  /* Found nothing: finished with its packet in the port, or hidden by a
   * layered provider. Only the port can tell. */
  stash_queued_packets(ib);
  if (!qlink_in(&op->backend_link, &ib->stash)) close_early(s);
}

/* ---- the vtable -------------------------------------------------------------------- */

static void iocp_submit(backend *b, tcp_op *op) {
  iocp_backend *ib = self(b);
  iocp_op *o = iop(op);
  o->accept_fd = INVALID_SOCKET;
  o->read_buffer = NULL;
  o->cancelled = false;
  switch (op->kind) {
    case OP_CONNECT: issue_connect(ib, op); break;
    case OP_ACCEPT: issue_accept(ib, op); break;
    case OP_READ: issue_read(ib, op); break;
    case OP_WRITE: issue_write(ib, op); break;
    case OP_SHUTDOWN_WRITE: {
      int err = os_shutdown_write(op->sock->fd);
      if (err != 0) sink_op_error(b->sink, op, err);
      else sink_op_done(b->sink, op, 0);
      break;
    }
    default: ZT_ASSERT(!"the core submits no other kind"); break;
  }
}

static int32_t iocp_adopt(backend *b, tcp_sock *s) {
  iocp_backend *ib = self(b);
  iocp_sock *is = isock(s);
  is->skip_on_success = false;
  is->closed_early = false;
  const iocp_family *f = family_of(ib, s);
  if (f->accept_ex == NULL) return TCP_ERR_ADDRESS_FAMILY; /* no provider for it at create */
  if (CreateIoCompletionPort((HANDLE)s->fd, ib->port, KEY_IO, 0) == NULL) return TCP_ERR_OS;
  if (f->ifs && SetFileCompletionNotificationModes((HANDLE)s->fd,
                                                   FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE))
    is->skip_on_success = true;
  return TCP_OK;
}

static void iocp_release(backend *b, tcp_sock *s) {
  if (s->fd != INVALID_SOCKET) os_socket_close(s->fd);
  s->fd = INVALID_SOCKET;
  sink_sock_released(b->sink, s);
}

static void iocp_poll(backend *b, int64_t timeout_ms) {
  iocp_backend *ib = self(b);
  if (!queue_empty(&ib->stash) || ib->wake_stashed) {
    report_stash(ib); /* the loop ends them, then polls again */
    return;
  }
  DWORD wait_ms = timeout_ms < 0 ? INFINITE : timeout_ms >= INFINITE ? INFINITE - 1 : (DWORD)timeout_ms;
  ULONG n = 0;
  if (!GetQueuedCompletionStatusEx(ib->port, ib->entries, BATCH, &n, wait_ms, FALSE)) {
    if (GetLastError() != WAIT_TIMEOUT) Sleep(1); /* not expected; never spin */
    return;
  }
  take_packets(ib, n, false);
}

static void iocp_wake(backend *b) {
  iocp_backend *ib = self(b);
  if (InterlockedCompareExchange(&ib->wake_pending, 1, 0) != 0) return;
  if (!PostQueuedCompletionStatus(ib->port, 0, KEY_WAKE, NULL)) InterlockedExchange(&ib->wake_pending, 0);
}

/* ---- setup ------------------------------------------------------------------------- */

static bool load_extension(SOCKET fd, GUID guid, void *fn, size_t fn_size) {
  DWORD bytes = 0;
  return WSAIoctl(fd, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, (DWORD)sizeof(guid), fn, (DWORD)fn_size, &bytes,
                  NULL, NULL) == 0;
}

static bool has_ifs_handles(SOCKET fd) {
  WSAPROTOCOL_INFOW info;
  int len = (int)sizeof(info);
  return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &len) == 0 &&
         (info.dwServiceFlags1 & XP1_IFS_HANDLES) != 0;
}

/* AcceptEx and ConnectEx are the provider's functions, fetched from a socket
 * of that provider: one probe per family. False when the family has none. */
static bool load_family(iocp_family *f, int family) {
  memset(f, 0, sizeof(*f));
  int err = 0;
  SOCKET probe = os_socket_open(family, false, &err);
  if (probe == INVALID_SOCKET) return false;
  GUID accept_guid = WSAID_ACCEPTEX;
  GUID connect_guid = WSAID_CONNECTEX;
  bool ok = load_extension(probe, accept_guid, &f->accept_ex, sizeof(f->accept_ex)) &&
            load_extension(probe, connect_guid, &f->connect_ex, sizeof(f->connect_ex));
  if (ok) f->ifs = has_ifs_handles(probe);
  else memset(f, 0, sizeof(*f));
  os_socket_close(probe);
  return ok;
}

/* Windows 10 build 16299 (1709) or later. RtlGetVersion, since GetVersionEx
 * reports 6.2 to a program without a compatibility manifest. */
static bool windows_10_1709_or_later(void) {
  typedef LONG(WINAPI * rtl_get_version_fn)(OSVERSIONINFOW *);
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  FARPROC proc = ntdll != NULL ? GetProcAddress(ntdll, "RtlGetVersion") : NULL;
  if (proc == NULL) return false;
  rtl_get_version_fn get_version = (rtl_get_version_fn)(void (*)(void))proc;
  OSVERSIONINFOW v;
  memset(&v, 0, sizeof(v));
  v.dwOSVersionInfoSize = (DWORD)sizeof(v);
  if (get_version(&v) != 0) return false;
  if (v.dwMajorVersion != 10) return v.dwMajorVersion > 10;
  return v.dwMinorVersion > 0 || v.dwBuildNumber >= 16299;
}

static void fault_from_env(iocp_fault *f) {
  char spec[256];
  DWORD n = GetEnvironmentVariableA("ZIG_TCP_IOCP_FAULT", spec, (DWORD)sizeof(spec));
  if (n == 0 || n >= sizeof(spec)) return;
  for (char *word = strtok(spec, ","); word != NULL; word = strtok(NULL, ",")) {
    if (strcmp(word, "cancel_miss") == 0) f->cancel_miss = true;
    else if (strcmp(word, "accept_context_once") == 0) f->accept_context_once = true;
    else if (strncmp(word, "connect_error=", 14) == 0) f->connect_error = (DWORD)strtoul(word + 14, NULL, 10);
    else if (strncmp(word, "read_error=", 11) == 0) f->read_error = (DWORD)strtoul(word + 11, NULL, 10);
  }
}

static int32_t iocp_create(backend_sink *sink, backend **out) {
  WSADATA wsa;
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) return TCP_ERR_UNSUPPORTED;
  iocp_backend *ib = calloc(1, sizeof(*ib));
  int32_t rc = ib == NULL ? TCP_ERR_NO_MEMORY : TCP_OK;
  if (rc == TCP_OK) {
    bool v4 = load_family(&ib->v4, AF_INET);
    bool v6 = load_family(&ib->v6, AF_INET6);
    if (!v4 && !v6) rc = TCP_ERR_UNSUPPORTED;
  }
  if (rc == TCP_OK) {
    /* One thread runs the port: concurrency value 1. */
    ib->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (ib->port == NULL) rc = TCP_ERR_NO_MEMORY;
  }
  if (rc != TCP_OK) {
    free(ib);
    WSACleanup();
    return rc;
  }
  ib->no_syn_retransmissions = windows_10_1709_or_later();
  fault_from_env(&ib->fault);
  ib->base.vtable = &backend_iocp;
  ib->base.sink = sink;
  *out = &ib->base;
  return TCP_OK;
}

static void iocp_destroy(backend *b) {
  iocp_backend *ib = self(b);
  ZT_ASSERT(queue_empty(&ib->stash));
  CloseHandle(ib->port);
  free(ib);
  WSACleanup();
}

const backend_vtable backend_iocp = {
    .name = "iocp",
    .create = iocp_create,
    .destroy = iocp_destroy,
    .adopt = iocp_adopt,
    .submit = iocp_submit,
    .cancel = iocp_cancel,
    .release = iocp_release,
    .poll = iocp_poll,
    .wake = iocp_wake,
};
