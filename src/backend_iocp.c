/*
 * backend_iocp.c -- the Windows backend: one I/O completion port.
 *
 * start() issues the overlapped Winsock call (ConnectEx, AcceptEx, WSARecv,
 * WSASend) directly on the calling thread, with the engine lock held. The
 * engine's I/O thread (run) waits on the port with GetQueuedCompletionStatusEx
 * and turns each completion packet into engine_op_done / engine_accept_done.
 *
 * Where the socket provider allows it, sockets use
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: a call that succeeds at once queues no
 * packet. Such results, and calls that fail at once, are put on a "ready" list
 * under the lock and handed to the core by the I/O thread (woken when needed),
 * so results always reach the core from the I/O thread and start() never
 * re-enters the core.
 *
 * Connect timeouts: connects with timeout_ms > 0 sit on a deadline list; the I/O
 * thread waits no longer than the nearest deadline, cancels an expired connect
 * with CancelIoEx and reports its abort as WSAETIMEDOUT.
 *
 * Cancellation is always CancelIoEx on the op's own OVERLAPPED; the aborted
 * completion (ERROR_OPERATION_ABORTED) still arrives and is reported. The OS
 * socket is closed only after every op on it completed (the core guarantees
 * release() is called with nothing in flight): closesocket is never used to
 * abort I/O (Wine completes such I/O with another code than Windows).
 */
#if !defined(_WIN32)
#error "backend_iocp.c is for Windows only"
#endif

#include "engine.h"

#include <mswsock.h>
#include <stddef.h>
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
  OVERLAPPED ov;            /* first: a packet's OVERLAPPED* leads to the op */
  SOCKET accept_fd;         /* accept: the pre-created socket */
  tcp_op *ready_next;       /* ready list link */
  tcp_op *timer_prev, *timer_next; /* connect deadline list links */
  ULONGLONG deadline;       /* connect: GetTickCount64() value */
  DWORD ready_bytes;        /* result of a call that finished at once */
  DWORD ready_error;
  bool in_timers;
  bool timed_out;           /* the deadline passed and the connect was cancelled */
  bool cancelled;           /* cancel() was called */
  unsigned char addrs[2 * ACCEPT_ADDR_BYTES];
} iocp_op;

typedef struct iocp_sock {
  bool skip_on_success;     /* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set */
} iocp_sock;

_Static_assert(sizeof(iocp_op) <= OP_BACKEND_BYTES, "iocp_op must fit in tcp_op.backend");
_Static_assert(_Alignof(iocp_op) <= 16, "tcp_op.backend is 16-aligned");
_Static_assert(sizeof(iocp_sock) <= SOCK_BACKEND_BYTES, "iocp_sock must fit in tcp_sock.backend");

static HANDLE g_port;
static LPFN_ACCEPTEX g_accept_ex;
static LPFN_CONNECTEX g_connect_ex;
static bool g_ifs_v4, g_ifs_v6;   /* provider hands out IFS handles (skip mode is safe) */
static bool g_wsa_started;
static volatile LONG g_wake_pending;
static volatile LONG g_io_thread_id;
/* Guarded by the engine lock: */
static tcp_op *g_ready_head, *g_ready_tail;
static tcp_op *g_timers;

static inline iocp_op *B(tcp_op *op) { return (iocp_op *)(void *)op->backend; }
static inline iocp_sock *BS(tcp_sock *s) { return (iocp_sock *)(void *)s->backend; }
static inline tcp_op *op_from_ov(OVERLAPPED *ov) {
  return (tcp_op *)(void *)((char *)ov - offsetof(tcp_op, backend));
}

static bool on_io_thread(void) {
  LONG id = g_io_thread_id;
  return id != 0 && (DWORD)id == GetCurrentThreadId();
}

static void iocp_wake(void) {
  if (g_port != NULL && InterlockedCompareExchange(&g_wake_pending, 1, 0) == 0) {
    if (!PostQueuedCompletionStatus(g_port, 0, KEY_WAKE, NULL)) InterlockedExchange(&g_wake_pending, 0);
  }
}

/* ---- ready list (lock held) ------------------------------------------------ */

/* The OS call for op finished at once (or failed at once) and no packet will
 * come: report it from the I/O thread. */
static void ready_push(tcp_op *op, DWORD bytes, DWORD error) {
  iocp_op *b = B(op);
  b->ready_bytes = bytes;
  b->ready_error = error;
  b->ready_next = NULL;
  if (g_ready_tail != NULL) B(g_ready_tail)->ready_next = op;
  else g_ready_head = op;
  g_ready_tail = op;
  if (!on_io_thread()) iocp_wake();
}

/* ---- connect deadlines (lock held) ---------------------------------------- */

static void timer_add(tcp_op *op) {
  iocp_op *b = B(op);
  b->deadline = GetTickCount64() + (ULONGLONG)op->timeout_ms;
  b->timer_prev = NULL;
  b->timer_next = g_timers;
  if (g_timers != NULL) B(g_timers)->timer_prev = op;
  g_timers = op;
  b->in_timers = true;
}

static void timer_remove(tcp_op *op) {
  iocp_op *b = B(op);
  if (!b->in_timers) return;
  if (b->timer_prev != NULL) B(b->timer_prev)->timer_next = b->timer_next;
  else g_timers = b->timer_next;
  if (b->timer_next != NULL) B(b->timer_next)->timer_prev = b->timer_prev;
  b->timer_prev = b->timer_next = NULL;
  b->in_timers = false;
}

/* Milliseconds until the nearest deadline, INFINITE if there is none. */
static DWORD timer_wait_ms(void) {
  if (g_timers == NULL) return INFINITE;
  ULONGLONG now = GetTickCount64();
  ULONGLONG nearest = (ULONGLONG)-1;
  for (tcp_op *op = g_timers; op != NULL; op = B(op)->timer_next) {
    if (B(op)->deadline < nearest) nearest = B(op)->deadline;
  }
  if (nearest <= now) return 0;
  ULONGLONG wait = nearest - now;
  return wait >= (ULONGLONG)INFINITE ? INFINITE - 1 : (DWORD)wait;
}

/* Cancel every connect whose deadline passed; the abort reports WSAETIMEDOUT. */
static void timer_expire(void) {
  if (g_timers == NULL) return;
  ULONGLONG now = GetTickCount64();
  tcp_op *op = g_timers;
  while (op != NULL) {
    tcp_op *next = B(op)->timer_next;
    if (B(op)->deadline <= now) {
      timer_remove(op);
      B(op)->timed_out = true;
      /* ERROR_NOT_FOUND: the connect already finished; its result stands. */
      CancelIoEx((HANDLE)op->sock->fd, &B(op)->ov);
    }
    op = next;
  }
}

/* ---- issuing overlapped calls (lock held) --------------------------------- */

/* After an overlapped call: ok = it returned success at once. */
static void after_issue(tcp_op *op, bool ok, DWORD bytes) {
  if (ok) {
    /* Without skip mode the port still gets a packet for it. */
    if (BS(op->sock)->skip_on_success) ready_push(op, bytes, 0);
    return;
  }
  DWORD err = (DWORD)WSAGetLastError();
  if (err == WSA_IO_PENDING) return;
  ready_push(op, 0, err); /* failed at once: no packet is queued */
}

static void issue_read(tcp_op *op) {
  iocp_op *b = B(op);
  memset(&b->ov, 0, sizeof(b->ov));
  WSABUF buf;
  buf.len = (ULONG)op->len;
  buf.buf = (char *)op->data;
  DWORD bytes = 0, flags = 0;
  int rc = WSARecv(op->sock->fd, &buf, 1, &bytes, &flags, &b->ov, NULL);
  after_issue(op, rc == 0, bytes);
}

static void issue_write(tcp_op *op) {
  iocp_op *b = B(op);
  memset(&b->ov, 0, sizeof(b->ov));
  size_t left = op->len - op->done;
  WSABUF buf;
  buf.len = (ULONG)(left < WRITE_CHUNK_MAX ? left : WRITE_CHUNK_MAX);
  buf.buf = (char *)op->data + op->done;
  DWORD bytes = 0;
  int rc = WSASend(op->sock->fd, &buf, 1, &bytes, 0, &b->ov, NULL);
  after_issue(op, rc == 0, bytes);
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

static void issue_connect(tcp_op *op) {
  iocp_op *b = B(op);
  memset(&b->ov, 0, sizeof(b->ov));
  DWORD err = ensure_bound(op->sock);
  if (err != 0) {
    ready_push(op, 0, err);
    return;
  }
  if (op->timeout_ms > 0) {
    timer_add(op);
    if (!on_io_thread()) iocp_wake(); /* the I/O thread must shorten its wait */
  }
  DWORD bytes = 0;
  BOOL ok = g_connect_ex(op->sock->fd, (const struct sockaddr *)&op->addr, op->addr_len, NULL, 0,
                         &bytes, &b->ov);
  after_issue(op, ok != FALSE, 0);
}

static void issue_accept(tcp_op *op) {
  iocp_op *b = B(op);
  memset(&b->ov, 0, sizeof(b->ov));
  int err = 0;
  b->accept_fd = os_socket_open(op->sock->family, false, &err);
  if (b->accept_fd == INVALID_SOCKET) {
    ready_push(op, 0, (DWORD)err);
    return;
  }
  DWORD bytes = 0;
  BOOL ok = g_accept_ex(op->sock->fd, b->accept_fd, b->addrs, 0, ACCEPT_ADDR_BYTES,
                        ACCEPT_ADDR_BYTES, &bytes, &b->ov);
  after_issue(op, ok != FALSE, 0);
}

/* ---- completions (lock held, I/O thread) ---------------------------------- */

static bool accept_error_is_transient(DWORD err) {
  /* The peer reset or gave up before we took the connection: wait for the next. */
  return err == WSAECONNRESET || err == ERROR_NETNAME_DELETED || err == WSAECONNABORTED ||
         err == ERROR_CONNECTION_ABORTED;
}

static void complete(tcp_op *op, DWORD bytes, DWORD err) {
  iocp_op *b = B(op);
  tcp_sock *s = op->sock;
  switch (op->kind) {
    case OP_CONNECT:
      timer_remove(op);
      if (err == 0 && setsockopt(s->fd, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0) {
        err = (DWORD)WSAGetLastError();
      }
      if (err == ERROR_OPERATION_ABORTED && b->timed_out && !b->cancelled) err = WSAETIMEDOUT;
      if (err != 0) engine_op_done(op, -1, (int64_t)err);
      else engine_op_done(op, 0, 0);
      return;

    case OP_ACCEPT: {
      SOCKET fd = b->accept_fd;
      b->accept_fd = INVALID_SOCKET;
      if (err == 0) {
        SOCKET listener = s->fd;
        if (setsockopt(fd, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&listener,
                       (int)sizeof(listener)) != 0) {
          err = (DWORD)WSAGetLastError();
          os_socket_close(fd);
          engine_op_done(op, -1, (int64_t)err);
          return;
        }
        engine_accept_done(op, fd);
        return;
      }
      if (fd != INVALID_SOCKET) os_socket_close(fd);
      if (accept_error_is_transient(err) && !b->cancelled && !s->closing) {
        issue_accept(op);
        return;
      }
      engine_op_done(op, -1, (int64_t)err);
      return;
    }

    case OP_READ:
      if (err != 0) engine_op_done(op, -1, (int64_t)err);
      else engine_op_done(op, (int64_t)bytes, 0); /* 0 = end of stream */
      return;

    case OP_WRITE:
      if (err == 0 && bytes == 0 && op->done < op->len) err = WSAECONNABORTED; /* no progress */
      if (err != 0) {
        engine_op_done(op, -1, (int64_t)err);
        return;
      }
      op->done += bytes;
      if (op->done < op->len) {
        if (b->cancelled || s->closing) {
          engine_op_done(op, -1, (int64_t)ERROR_OPERATION_ABORTED);
        } else {
          issue_write(op); /* short write: send the rest */
        }
        return;
      }
      engine_op_done(op, (int64_t)op->len, 0);
      return;

    default:
      /* The core runs shutdown_write, zero-length writes and close itself. */
      engine_op_done(op, -1, (int64_t)ERROR_INVALID_FUNCTION);
      return;
  }
}

/* A packet from the port for an overlapped call. */
static void complete_packet(const OVERLAPPED_ENTRY *e) {
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
  complete(op, bytes, err);
}

static void drain_ready(void) {
  while (g_ready_head != NULL) {
    tcp_op *op = g_ready_head;
    g_ready_head = B(op)->ready_next;
    if (g_ready_head == NULL) g_ready_tail = NULL;
    B(op)->ready_next = NULL;
    complete(op, B(op)->ready_bytes, B(op)->ready_error);
  }
}

/* ---- the vtable ------------------------------------------------------------ */

static bool load_extension(SOCKET fd, GUID guid, void *fn, size_t fn_size) {
  DWORD bytes = 0;
  return WSAIoctl(fd, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, (DWORD)sizeof(guid), fn,
                  (DWORD)fn_size, &bytes, NULL, NULL) == 0;
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

static int32_t iocp_init(void) {
  WSADATA wsa;
  int rc = WSAStartup(MAKEWORD(2, 2), &wsa);
  if (rc != 0) return TCP_ERR_UNSUPPORTED;
  g_wsa_started = true;

  g_ready_head = g_ready_tail = NULL;
  g_timers = NULL;
  g_wake_pending = 0;
  g_io_thread_id = 0;

  int err = 0;
  SOCKET probe = os_socket_open(AF_INET, false, &err);
  if (probe == INVALID_SOCKET) probe = os_socket_open(AF_INET6, false, &err);
  if (probe == INVALID_SOCKET) goto unsupported;
  GUID accept_guid = WSAID_ACCEPTEX;
  GUID connect_guid = WSAID_CONNECTEX;
  bool ok = load_extension(probe, accept_guid, &g_accept_ex, sizeof(g_accept_ex)) &&
            load_extension(probe, connect_guid, &g_connect_ex, sizeof(g_connect_ex));
  os_socket_close(probe);
  if (!ok) goto unsupported;

  g_ifs_v4 = family_has_ifs_handles(AF_INET);
  g_ifs_v6 = family_has_ifs_handles(AF_INET6);

  /* One thread runs the port: concurrency value 1. */
  g_port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
  if (g_port == NULL) {
    WSACleanup();
    g_wsa_started = false;
    return TCP_ERR_NO_MEMORY;
  }
  return TCP_OK;

unsupported:
  WSACleanup();
  g_wsa_started = false;
  return TCP_ERR_UNSUPPORTED;
}

static void iocp_run(void) {
  static OVERLAPPED_ENTRY entries[BATCH]; /* one I/O thread per process */
  InterlockedExchange(&g_io_thread_id, (LONG)GetCurrentThreadId());
  engine_lock();
  for (;;) {
    drain_ready();
    timer_expire();
    drain_ready();
    bool stopping = engine_stopping();
    DWORD wait_ms = timer_wait_ms();
    engine_unlock();
    engine_flush();
    if (stopping) {
      /* Checked after the flush: engine_drained() needs the posted list empty. */
      engine_lock();
      bool done = engine_drained();
      engine_unlock();
      if (done) break;
    }

    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(g_port, entries, BATCH, &n, wait_ms, FALSE)) {
      DWORD err = GetLastError();
      n = 0;
      if (err != WAIT_TIMEOUT) Sleep(1); /* not expected; do not spin */
    }
    engine_lock();
    for (ULONG i = 0; i < n; i++) {
      if (entries[i].lpOverlapped == NULL) {
        if (entries[i].lpCompletionKey == KEY_WAKE) InterlockedExchange(&g_wake_pending, 0);
        continue;
      }
      complete_packet(&entries[i]);
    }
  }
  InterlockedExchange(&g_io_thread_id, 0);
}

static void iocp_start(tcp_op *op) {
  iocp_op *b = B(op);
  b->accept_fd = INVALID_SOCKET;
  b->ready_next = NULL;
  b->timer_prev = b->timer_next = NULL;
  b->in_timers = false;
  b->timed_out = false;
  b->cancelled = false;
  switch (op->kind) {
    case OP_CONNECT: issue_connect(op); break;
    case OP_ACCEPT: issue_accept(op); break;
    case OP_READ: issue_read(op); break;
    case OP_WRITE:
      if (op->done >= op->len) ready_push(op, 0, 0); /* nothing to send */
      else issue_write(op);
      break;
    default: ready_push(op, 0, ERROR_INVALID_FUNCTION); break;
  }
}

static void iocp_cancel(tcp_op *op) {
  iocp_op *b = B(op);
  b->cancelled = true;
  /* ERROR_NOT_FOUND: its result is already on the ready list or in the port. */
  CancelIoEx((HANDLE)op->sock->fd, &b->ov);
}

static int32_t iocp_adopt(tcp_sock *s) {
  iocp_sock *bs = BS(s);
  bs->skip_on_success = false;
  if (CreateIoCompletionPort((HANDLE)s->fd, g_port, KEY_IO, 0) == NULL) {
    return error_from_os((int64_t)GetLastError());
  }
  bool ifs = s->family == AF_INET6 ? g_ifs_v6 : g_ifs_v4;
  if (ifs && SetFileCompletionNotificationModes(
                 (HANDLE)s->fd, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE)) {
    bs->skip_on_success = true;
  }
  return TCP_OK;
}

static void iocp_release(tcp_sock *s) {
  if (s->fd != INVALID_SOCKET) os_socket_close(s->fd);
  s->fd = INVALID_SOCKET;
  engine_sock_released(s);
}

static void iocp_destroy(void) {
  if (g_port != NULL) CloseHandle(g_port);
  g_port = NULL;
  g_ready_head = g_ready_tail = NULL;
  g_timers = NULL;
  if (g_wsa_started) WSACleanup();
  g_wsa_started = false;
}

const backend_vtable backend_iocp = {
    .name = "iocp",
    .init = iocp_init,
    .run = iocp_run,
    .wake = iocp_wake,
    .start = iocp_start,
    .cancel = iocp_cancel,
    .adopt = iocp_adopt,
    .release = iocp_release,
    .destroy = iocp_destroy,
};
