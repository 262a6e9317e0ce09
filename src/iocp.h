/* iocp.h -- the IOCP backend's own declarations, shared by its files:
 *   backend_iocp.c   the vtable: setup, completion packets, cancellation, writes
 *   iocp_read.c      reads: a zero-byte WSARecv, then a non-blocking receive
 *   iocp_connect.c   ConnectEx and AcceptEx
 * Windows only; nothing here is part of the core's contract (backend.h).
 *
 * FAULT HOOK (tests; test_c/test_portability.c, test_c/test_iocp.c)
 *   ZIG_TCP_IOCP_FAULT=WORD[,WORD...], read at create:
 *     cancel_miss          CancelIoEx finds nothing, on the socket and on its
 *                          base handle (the non-IFS LSP case, backend_iocp.c)
 *     accept_context_once  the first SO_UPDATE_ACCEPT_CONTEXT fails (WSAEINVAL)
 *     connect_error=CODE   every ConnectEx fails at once with CODE
 *     read_error=CODE      every WSARecv (the zero-byte one and the
 *                          non-blocking receive) fails at once with CODE
 *     read_spurious=N      the first N receives after a zero-byte WSARecv
 *                          completed find nothing (WSAEWOULDBLOCK);
 *                          read_spurious=always: every one does */
#ifndef ZIG_TCP_IOCP_H
#define ZIG_TCP_IOCP_H

#if !defined(_WIN32)
#error "iocp.h is for Windows only"
#endif

#include "backend.h"

#include <mstcpip.h>
#include <mswsock.h>
#include <stddef.h>
#include <windows.h>

/* Completion keys. Sockets are associated with KEY_IO; wake() posts KEY_WAKE. */
#define KEY_IO ((ULONG_PTR)0)
#define KEY_WAKE ((ULONG_PTR)1)

/* AcceptEx needs room for each address plus 16 bytes ("at least 16 bytes
 * more than the maximum address length for the transport protocol in use" --
 * AcceptEx, Microsoft Learn): TCP's inside the op, AF_UNIX's (SOCKADDR_UN, 110
 * bytes) in an allocation of the accept (iocp_connect.c). */
#define ACCEPT_ADDR_BYTES ((DWORD)(sizeof(struct sockaddr_in6) + 16))
#define UNIX_ACCEPT_ADDR_BYTES ((DWORD)(sizeof(SOCKADDR_UN) + 16))
/* Completion packets taken from the port per call. */
#define BATCH 128
/* One receive takes at most this much (a read may always return less); the
 * backend's one scratch buffer has this size. */
#define RECEIVE_BYTES_MAX ((size_t)256 * 1024)

typedef struct iocp_op {
  OVERLAPPED ov;        /* first: a packet's OVERLAPPED* leads to the op */
  SOCKET accept_fd;     /* accept: the pre-created socket */
  union {
    uint8_t *read_buffer;       /* read: NULL while it waits in a zero-byte WSARecv; the
                                 * buffer of a read that waits with one (iocp_read.c) */
    unsigned char *unix_addrs;  /* accept on AF_UNIX: 2 * UNIX_ACCEPT_ADDR_BYTES */
  };
  bool cancelled;       /* cancel() was called */
  uint8_t spurious;     /* read: readiness that found nothing, in a row */
  unsigned char addrs[2 * ACCEPT_ADDR_BYTES];
} iocp_op;

typedef struct iocp_sock {
  bool skip_on_success; /* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set */
  bool closed_early;    /* a cancel found nothing: the OS socket was closed to abort its I/O */
  bool receive_first;   /* the last receive filled its buffer: more is likely queued */
} iocp_sock;

/* What one address family's provider gives: extension functions are the
 * provider's own (an LSP may install different ones per family). */
typedef struct iocp_family {
  LPFN_ACCEPTEX accept_ex; /* NULL: no socket of this family could be made at create */
  LPFN_CONNECTEX connect_ex;
  bool ifs; /* the provider hands out IFS handles (skip mode is safe) */
} iocp_family;

#define SPURIOUS_ALWAYS UINT32_MAX

typedef struct iocp_fault {
  bool cancel_miss;
  bool accept_context_once;
  DWORD connect_error, read_error;
  uint32_t read_spurious; /* receives left to fake as empty; SPURIOUS_ALWAYS: all */
} iocp_fault;

typedef struct iocp_backend {
  backend base;
  HANDLE port;
  iocp_family v4, v6;
  iocp_family local; /* AF_UNIX (Windows 10 1803+; none under Wine 8) */
  /* Windows 10 1709+: SIO_TCP_INITIAL_RTO accepts TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS. */
  bool no_syn_retransmissions;
  /* Packets taken from the port by a cancel, reported on the next poll
   * (tcp_op.backend_link). */
  queue stash;
  bool wake_stashed; /* the wake packet was among them */
  iocp_fault fault;
  volatile LONG wake_pending;
  /* Where every receive lands (RECEIVE_BYTES_MAX; I/O thread only; NULL until
   * the first receive, and after a large one took it along). */
  uint8_t *scratch;
  OVERLAPPED_ENTRY entries[BATCH];
} iocp_backend;

_Static_assert(sizeof(iocp_op) <= OP_BACKEND_BYTES, "iocp_op must fit in tcp_op.backend");
_Static_assert(_Alignof(iocp_op) <= 16, "tcp_op.backend is 16-aligned");
_Static_assert(sizeof(iocp_sock) <= SOCK_BACKEND_BYTES, "iocp_sock must fit in tcp_sock.backend");

static inline iocp_op *iop(tcp_op *op) { return (iocp_op *)(void *)op->backend; }
static inline iocp_sock *isock(tcp_sock *s) { return (iocp_sock *)(void *)s->backend; }
static inline iocp_family *family_of(iocp_backend *ib, const tcp_sock *s) {
  if (s->family == AF_UNIX) return &ib->local;
  return s->family == AF_INET6 ? &ib->v6 : &ib->v4;
}

/* backend_iocp.c */
/* op's overlapped call finished (bytes, err: 0 or a WSA/Win32 code): end it,
 * or issue its next step. */
void iocp_completed(iocp_backend *ib, tcp_op *op, DWORD bytes, DWORD err);
/* After an overlapped call on op: ok = it returned success at once. */
void iocp_after_issue(iocp_backend *ib, tcp_op *op, bool ok, DWORD bytes);
/* op failed with err (or ended by its cancel: then reported as such). */
void iocp_report_error(iocp_backend *ib, tcp_op *op, DWORD err);

/* iocp_read.c */
void iocp_issue_read(iocp_backend *ib, tcp_op *op);
void iocp_completed_read(iocp_backend *ib, tcp_op *op, DWORD bytes, DWORD err);

/* iocp_connect.c */
void iocp_issue_connect(iocp_backend *ib, tcp_op *op);
void iocp_completed_connect(iocp_backend *ib, tcp_op *op, DWORD err);
void iocp_issue_accept(iocp_backend *ib, tcp_op *op);
void iocp_completed_accept(iocp_backend *ib, tcp_op *op, DWORD err);

#endif /* ZIG_TCP_IOCP_H */
