/* iocp_connect.c -- the IOCP backend's connects (ConnectEx) and accepts
 * (AcceptEx, one in flight per pending tcp_accept). See iocp.h. */
#if defined(_WIN32)

#include "iocp.h"

#include <stdlib.h>
#include <string.h>

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
  if (s->family == AF_UNIX) {
    /* An unnamed socket: the family alone, no path (what a Unix client is
     * after connect(2); the Windows AF_UNIX client side of libuv's and
     * Boost corosio's ConnectEx paths binds the same way). */
    ((struct sockaddr_un *)&ss)->sun_family = AF_UNIX;
    len = (int)offsetof(struct sockaddr_un, sun_path);
  } else if (s->family == AF_INET6) {
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
  if (out->ss_family == AF_UNIX) return; /* a path: nothing to convert */
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
  if (sa->ss_family == AF_UNIX) return false; /* no SYN to retransmit */
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

void iocp_issue_connect(iocp_backend *ib, tcp_op *op) {
  memset(&iop(op)->ov, 0, sizeof(OVERLAPPED));
  DWORD err = ensure_bound(op->sock);
  if (err != 0) {
    iocp_completed(ib, op, 0, err);
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
  iocp_after_issue(ib, op, ok != FALSE, 0);
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

/* Where AcceptEx writes the two addresses, and how much room each has: in the
 * op for TCP; for AF_UNIX (SOCKADDR_UN does not fit in tcp_op.backend) an
 * allocation kept across the op's AcceptEx calls and freed when it is
 * reported. NULL when out of memory. */
static unsigned char *accept_addrs(tcp_op *op, DWORD *each_bytes) {
  iocp_op *o = iop(op);
  if (op->sock->family != AF_UNIX) {
    *each_bytes = ACCEPT_ADDR_BYTES;
    return o->addrs;
  }
  *each_bytes = UNIX_ACCEPT_ADDR_BYTES;
  if (o->unix_addrs == NULL) o->unix_addrs = malloc(2 * (size_t)UNIX_ACCEPT_ADDR_BYTES);
  return o->unix_addrs;
}

static void accept_free_addrs(tcp_op *op) {
  if (op->sock->family != AF_UNIX) return;
  free(iop(op)->unix_addrs);
  iop(op)->unix_addrs = NULL;
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
    accept_free_addrs(op);
    sink_accept_done(ib->base.sink, op, fd);
    return false;
  }
  if (fd != INVALID_SOCKET) os_socket_close(fd);
  if (!o->cancelled && (accepted || accept_error_is_transient(err))) return true;
  accept_free_addrs(op);
  iocp_report_error(ib, op, err);
  return false;
}

/* One AcceptEx; true when it finished at once and another must follow. */
static bool try_accept(iocp_backend *ib, tcp_op *op) {
  iocp_op *o = iop(op);
  memset(&o->ov, 0, sizeof(o->ov));
  DWORD each_bytes = 0;
  unsigned char *addrs = accept_addrs(op, &each_bytes);
  if (addrs == NULL) {
    sink_op_failed(ib->base.sink, op, TCP_ERR_NO_MEMORY, 0);
    return false;
  }
  int err = 0;
  o->accept_fd = os_socket_open(op->sock->family, false, &err);
  if (o->accept_fd == INVALID_SOCKET) {
    accept_free_addrs(op);
    iocp_report_error(ib, op, (DWORD)err);
    return false;
  }
  DWORD bytes = 0;
  BOOL ok = family_of(ib, op->sock)->accept_ex(op->sock->fd, o->accept_fd, addrs, 0, each_bytes, each_bytes,
                                                &bytes, &o->ov);
  if (ok && !isock(op->sock)->skip_on_success) return false; /* its packet comes */
  DWORD rc = ok ? 0 : (DWORD)WSAGetLastError();
  if (rc == WSA_IO_PENDING) return false;
  return accept_finished(ib, op, rc);
}

/* A loop, not recursion: a backlog of connections the op does not take may
 * finish AcceptEx at once many times over. */
void iocp_issue_accept(iocp_backend *ib, tcp_op *op) {
  while (try_accept(ib, op)) {
  }
}

void iocp_completed_connect(iocp_backend *ib, tcp_op *op, DWORD err) {
  /* After SO_UPDATE_CONNECT_CONTEXT getpeername, shutdown etc. work. */
  if (err == 0 && setsockopt(op->sock->fd, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0)
    err = (DWORD)WSAGetLastError();
  if (err != 0) iocp_report_error(ib, op, err);
  else sink_op_done(ib->base.sink, op, 0);
}

void iocp_completed_accept(iocp_backend *ib, tcp_op *op, DWORD err) {
  if (accept_finished(ib, op, err)) iocp_issue_accept(ib, op);
}

#else
typedef int iocp_connect_is_for_windows_only; /* a translation unit is never empty */
#endif /* _WIN32 */
