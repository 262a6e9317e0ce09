/*
 * backend_iocp.c -- the Windows backend: one I/O completion port.
 *
 * submit issues the overlapped Winsock call (ConnectEx, AcceptEx: see
 * iocp_connect.c; WSASend here; reads, a zero-byte WSARecv and then a
 * non-blocking receive: iocp_read.c) on the I/O thread; poll waits on the port
 * with GetQueuedCompletionStatusEx and reports each completion packet.
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
 * The fault hook (ZIG_TCP_IOCP_FAULT) and the layout of the backend: iocp.h.
 */
#if !defined(_WIN32)
#error "backend_iocp.c is for Windows only"
#endif

#include "iocp.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

/* One WSASend never locks more than this much of a (up to 1 GiB) write. */
#define WRITE_CHUNK_MAX ((size_t)8 * 1024 * 1024)

static inline iocp_backend *self(backend *b) { return (iocp_backend *)(void *)b; }
static inline tcp_op *op_from_ov(OVERLAPPED *ov) {
  return (tcp_op *)(void *)((char *)ov - offsetof(tcp_op, backend));
}

/* ---- reporting ----------------------------------------------------------------- */

/* Ended by cancel(): aborted by its CancelIoEx, or by anything once the early
 * close (which aborts with provider-specific codes; Wine's differ) was made. */
static bool ended_by_cancel(tcp_op *op, DWORD err) {
  return iop(op)->cancelled && (err == ERROR_OPERATION_ABORTED || isock(op->sock)->closed_early);
}

void iocp_report_error(iocp_backend *ib, tcp_op *op, DWORD err) {
  if (ended_by_cancel(op, err)) sink_op_cancelled(ib->base.sink, op);
  else if (op->kind == OP_CONNECT) sink_op_failed(ib->base.sink, op, error_from_os_at_bind(err), (int64_t)err);
  else sink_op_error(ib->base.sink, op, (int64_t)err);
}

/* ---- issuing overlapped calls ------------------------------------------------ */

void iocp_after_issue(iocp_backend *ib, tcp_op *op, bool ok, DWORD bytes) {
  if (ok) {
    /* Without skip mode the port still gets a packet for it. */
    if (isock(op->sock)->skip_on_success) iocp_completed(ib, op, bytes, 0);
    return;
  }
  DWORD err = (DWORD)WSAGetLastError();
  if (err == WSA_IO_PENDING) return;
  iocp_completed(ib, op, 0, err); /* failed at once: no packet is queued */
}

static void issue_write(iocp_backend *ib, tcp_op *op) {
  memset(&iop(op)->ov, 0, sizeof(OVERLAPPED));
  size_t left = op->len - op->done;
  WSABUF buf;
  buf.len = (ULONG)(left < WRITE_CHUNK_MAX ? left : WRITE_CHUNK_MAX);
  buf.buf = (char *)op->data + op->done;
  DWORD bytes = 0;
  int rc = WSASend(op->sock->fd, &buf, 1, &bytes, 0, &iop(op)->ov, NULL);
  iocp_after_issue(ib, op, rc == 0, bytes);
}

/* ---- completions ---------------------------------------------------------------- */

static void completed_write(iocp_backend *ib, tcp_op *op, DWORD bytes, DWORD err) {
  if (err == 0 && bytes == 0 && op->done < op->len) err = WSAECONNABORTED; /* no progress */
  if (err != 0) {
    iocp_report_error(ib, op, err);
    return;
  }
  op->done += bytes;
  if (op->done == op->len) sink_op_done(ib->base.sink, op, (int64_t)op->len);
  else if (iop(op)->cancelled) sink_op_cancelled(ib->base.sink, op);
  else issue_write(ib, op); /* short write: send the rest */
}

void iocp_completed(iocp_backend *ib, tcp_op *op, DWORD bytes, DWORD err) {
  /* After the early close the socket is gone: a connect that made it in time
   * cannot be finished, and an accepted socket has no listener to update from. */
  if (err == 0 && isock(op->sock)->closed_early && (op->kind == OP_CONNECT || op->kind == OP_ACCEPT))
    err = ERROR_OPERATION_ABORTED;
  switch (op->kind) {
    case OP_CONNECT: iocp_completed_connect(ib, op, err); return;
    case OP_ACCEPT: iocp_completed_accept(ib, op, err); return;
    case OP_READ: iocp_completed_read(ib, op, bytes, err); return;
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
  iocp_completed(ib, op, bytes, err);
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
    case OP_CONNECT: iocp_issue_connect(ib, op); break;
    case OP_ACCEPT: iocp_issue_accept(ib, op); break;
    case OP_READ: iocp_issue_read(ib, op); break;
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
  is->receive_first = false;
  const iocp_family *f = family_of(ib, s);
  if (f->accept_ex == NULL) return TCP_ERR_ADDRESS_FAMILY; /* no provider for it at create */
  /* Reads receive without waiting once a zero-byte WSARecv said the socket is
   * readable (iocp_read.c); overlapped calls are not affected by the mode. */
  u_long nonblocking = 1;
  if (s->kind == SOCK_CONNECTION && ioctlsocket(s->fd, FIONBIO, &nonblocking) != 0) return TCP_ERR_OS;
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

/* Idle: the scratch buffer is made again by the next receive. */
static void iocp_trim(backend *b) {
  iocp_backend *ib = self(b);
  free(ib->scratch);
  ib->scratch = NULL;
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
    else if (strcmp(word, "read_spurious=always") == 0) f->read_spurious = SPURIOUS_ALWAYS;
    else if (strncmp(word, "read_spurious=", 14) == 0) f->read_spurious = (uint32_t)strtoul(word + 14, NULL, 10);
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
    /* Optional: without an AF_UNIX provider (before Windows 10 1803, Wine 8)
     * tcp_listen_unix / tcp_connect_unix fail at socket creation. */
    (void)load_family(&ib->local, AF_UNIX);
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
  free(ib->scratch);
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
    .trim = iocp_trim,
};
