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
 * Cancellation is CancelIoEx on the op's own OVERLAPPED; the aborted
 * completion (ERROR_OPERATION_ABORTED) still arrives and is reported. The OS
 * socket is closed only after every op on it completed (the core calls
 * release with nothing in flight): closesocket is never used to abort I/O
 * (Wine completes such I/O with another code than Windows).
 */
#if !defined(_WIN32)
#error "backend_iocp.c is for Windows only"
#endif

#include "backend.h"

#include <mswsock.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

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
  OVERLAPPED ov;    /* first: a packet's OVERLAPPED* leads to the op */
  SOCKET accept_fd; /* accept: the pre-created socket */
  uint8_t *read_buffer; /* read: bytes_max bytes, held while the read waits (see issue_read) */
  bool cancelled;   /* cancel() was called */
  unsigned char addrs[2 * ACCEPT_ADDR_BYTES];
} iocp_op;

typedef struct iocp_sock {
  bool skip_on_success; /* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set */
} iocp_sock;

typedef struct iocp_backend {
  backend base;
  HANDLE port;
  LPFN_ACCEPTEX accept_ex;
  LPFN_CONNECTEX connect_ex;
  bool ifs_v4, ifs_v6; /* provider hands out IFS handles (skip mode is safe) */
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

static void completed(iocp_backend *ib, tcp_op *op, DWORD bytes, DWORD err);

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
  int rc = WSARecv(op->sock->fd, &buf, 1, &bytes, &flags, &iop(op)->ov, NULL);
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
 * the core already bound a source address. Returns 0 or the WSA code. */
static DWORD ensure_bound(tcp_sock *s) {
  struct sockaddr_storage ss;
  int len = (int)sizeof(ss);
  if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == 0) return 0;
  DWORD err = (DWORD)WSAGetLastError();
  if (err != WSAEINVAL) return err;
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

static void issue_connect(iocp_backend *ib, tcp_op *op) {
  memset(&iop(op)->ov, 0, sizeof(OVERLAPPED));
  DWORD err = ensure_bound(op->sock);
  if (err != 0) {
    completed(ib, op, 0, err);
    return;
  }
  DWORD bytes = 0;
  BOOL ok = ib->connect_ex(op->sock->fd, (const struct sockaddr *)&op->addr, op->addr_len, NULL, 0, &bytes,
                           &iop(op)->ov);
  after_issue(ib, op, ok != FALSE, 0);
}

static void issue_accept(iocp_backend *ib, tcp_op *op) {
  iocp_op *o = iop(op);
  memset(&o->ov, 0, sizeof(o->ov));
  int err = 0;
  o->accept_fd = os_socket_open(op->sock->family, false, &err);
  if (o->accept_fd == INVALID_SOCKET) {
    completed(ib, op, 0, (DWORD)err);
    return;
  }
  DWORD bytes = 0;
  BOOL ok = ib->accept_ex(op->sock->fd, o->accept_fd, o->addrs, 0, ACCEPT_ADDR_BYTES, ACCEPT_ADDR_BYTES, &bytes,
                          &o->ov);
  after_issue(ib, op, ok != FALSE, 0);
}

/* ---- completions ---------------------------------------------------------------- */

static bool accept_error_is_transient(DWORD err) {
  /* The peer reset or gave up before we took the connection: wait for the next. */
  return err == WSAECONNRESET || err == ERROR_NETNAME_DELETED || err == WSAECONNABORTED ||
         err == ERROR_CONNECTION_ABORTED;
}

static void report_error(iocp_backend *ib, tcp_op *op, DWORD err) {
  if (err == ERROR_OPERATION_ABORTED && iop(op)->cancelled) sink_op_cancelled(ib->base.sink, op);
  else sink_op_error(ib->base.sink, op, (int64_t)err);
}

static void completed_accept(iocp_backend *ib, tcp_op *op, DWORD err) {
  iocp_op *o = iop(op);
  SOCKET fd = o->accept_fd;
  o->accept_fd = INVALID_SOCKET;
  if (err == 0) {
    SOCKET listener = op->sock->fd;
    if (setsockopt(fd, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&listener, (int)sizeof(listener)) != 0) {
      err = (DWORD)WSAGetLastError();
      os_socket_close(fd);
      report_error(ib, op, err);
      return;
    }
    sink_accept_done(ib->base.sink, op, fd);
    return;
  }
  if (fd != INVALID_SOCKET) os_socket_close(fd);
  if (accept_error_is_transient(err) && !o->cancelled) {
    issue_accept(ib, op);
    return;
  }
  report_error(ib, op, err);
}

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
  switch (op->kind) {
    case OP_CONNECT:
      if (err == 0 && setsockopt(op->sock->fd, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0)
        err = (DWORD)WSAGetLastError();
      if (err != 0) report_error(ib, op, err);
      else sink_op_done(ib->base.sink, op, 0);
      return;
    case OP_ACCEPT: completed_accept(ib, op, err); return;
    case OP_READ: completed_read(ib, op, bytes, err); return;
    case OP_WRITE: completed_write(ib, op, bytes, err); return;
    default: ZT_ASSERT(!"only connect, accept, read and write are overlapped"); return;
  }
}

/* A packet from the port for an overlapped call. */
static void completed_packet(iocp_backend *ib, const OVERLAPPED_ENTRY *e) {
  OVERLAPPED *ov = e->lpOverlapped;
  tcp_op *op = op_from_ov(ov);
  DWORD bytes = e->dwNumberOfBytesTransferred;
  DWORD err = 0;
  if ((LONG)ov->Internal < 0) { /* an NTSTATUS error: let Winsock name it */
    DWORD b2 = 0, flags = 0;
    if (!WSAGetOverlappedResult(op->sock->fd, ov, &b2, FALSE, &flags)) {
      err = (DWORD)WSAGetLastError();
      if (err == 0) err = ERROR_OPERATION_ABORTED;
    } else {
      bytes = b2;
    }
  }
  completed(ib, op, bytes, err);
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

static void iocp_cancel(backend *b, tcp_op *op) {
  (void)b;
  iop(op)->cancelled = true;
  /* ERROR_NOT_FOUND: its packet is already in the port. */
  CancelIoEx((HANDLE)op->sock->fd, &iop(op)->ov);
}

static int32_t iocp_adopt(backend *b, tcp_sock *s) {
  iocp_backend *ib = self(b);
  iocp_sock *is = isock(s);
  is->skip_on_success = false;
  if (CreateIoCompletionPort((HANDLE)s->fd, ib->port, KEY_IO, 0) == NULL) return TCP_ERR_OS;
  bool ifs = s->family == AF_INET6 ? ib->ifs_v6 : ib->ifs_v4;
  if (ifs && SetFileCompletionNotificationModes((HANDLE)s->fd,
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
  DWORD wait_ms = timeout_ms < 0 ? INFINITE : timeout_ms >= INFINITE ? INFINITE - 1 : (DWORD)timeout_ms;
  ULONG n = 0;
  if (!GetQueuedCompletionStatusEx(ib->port, ib->entries, BATCH, &n, wait_ms, FALSE)) {
    if (GetLastError() != WAIT_TIMEOUT) Sleep(1); /* not expected; never spin */
    return;
  }
  for (ULONG i = 0; i < n; i++) {
    if (ib->entries[i].lpOverlapped == NULL) {
      if (ib->entries[i].lpCompletionKey == KEY_WAKE) InterlockedExchange(&ib->wake_pending, 0);
      continue;
    }
    completed_packet(ib, &ib->entries[i]);
  }
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

static bool family_has_ifs_handles(int family) {
  int err = 0;
  SOCKET fd = os_socket_open(family, false, &err);
  if (fd == INVALID_SOCKET) return false;
  WSAPROTOCOL_INFOW info;
  int len = (int)sizeof(info);
  bool ifs = getsockopt(fd, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &len) == 0 &&
             (info.dwServiceFlags1 & XP1_IFS_HANDLES) != 0;
  os_socket_close(fd);
  return ifs;
}

static bool load_extensions(iocp_backend *ib) {
  int err = 0;
  SOCKET probe = os_socket_open(AF_INET, false, &err);
  if (probe == INVALID_SOCKET) probe = os_socket_open(AF_INET6, false, &err);
  if (probe == INVALID_SOCKET) return false;
  GUID accept_guid = WSAID_ACCEPTEX;
  GUID connect_guid = WSAID_CONNECTEX;
  bool ok = load_extension(probe, accept_guid, &ib->accept_ex, sizeof(ib->accept_ex)) &&
            load_extension(probe, connect_guid, &ib->connect_ex, sizeof(ib->connect_ex));
  os_socket_close(probe);
  return ok;
}

static int32_t iocp_create(backend_sink *sink, backend **out) {
  WSADATA wsa;
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) return TCP_ERR_UNSUPPORTED;
  iocp_backend *ib = calloc(1, sizeof(*ib));
  int32_t rc = ib == NULL ? TCP_ERR_NO_MEMORY : TCP_OK;
  if (rc == TCP_OK && !load_extensions(ib)) rc = TCP_ERR_UNSUPPORTED;
  if (rc == TCP_OK) {
    ib->ifs_v4 = family_has_ifs_handles(AF_INET);
    ib->ifs_v6 = family_has_ifs_handles(AF_INET6);
    /* One thread runs the port: concurrency value 1. */
    ib->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (ib->port == NULL) rc = TCP_ERR_NO_MEMORY;
  }
  if (rc != TCP_OK) {
    free(ib);
    WSACleanup();
    return rc;
  }
  ib->base.vtable = &backend_iocp;
  ib->base.sink = sink;
  *out = &ib->base;
  return TCP_OK;
}

static void iocp_destroy(backend *b) {
  iocp_backend *ib = self(b);
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
