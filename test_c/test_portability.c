/*
 * test_portability.c -- calls whose OS-level behaviour differs between Linux
 * and Windows, which the engine makes agree: connects to the unspecified
 * address and to IPv4-mapped IPv6 addresses, a connect bound to a source port
 * alone, re-listening on a port whose old connections still live, a refused
 * loopback connect; and the IOCP backend's fallbacks driven by its fault hook
 * (ZIG_TCP_IOCP_FAULT, see backend_iocp.c).
 *
 * Wine runs Winsock on Linux sockets, so several Windows behaviours cannot
 * show under it; each test says which of its checks can fail where.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#endif

#include "harness.h"
#include "test_list.h"
#include "hanging_destination.h"

static const uint8_t ANY4[4] = {0, 0, 0, 0};
static const uint8_t ANY6[16] = {0};
static const uint8_t MAPPED_LOOPBACK4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};

/* Whether this host can listen on ::1 (a listener of its own, closed again). */
static bool loopback6_available(void) {
  int64_t p = fake_dart_open_port();
  int64_t l = tcp_listen(p, H_LOOPBACK6, 16, 0, 0, 1, 0);
  if (l > 0 && tcp_close(l, -78) == TCP_OK) {
    fd_completion c;
    if (fake_dart_next(p, h_timeout_ms, &c)) fake_dart_release(&c);
  }
  fake_dart_close_port(p);
  return l > 0;
}

/* One byte each way over a connected pair. */
static void check_traffic(int64_t c, int64_t s, char tag) {
  uint8_t b = 0;
  h_write_all(c, &tag, 1);
  h_read_exact(s, &b, 1);
  CHECK_EQ(b, tag);
  h_write_all(s, &tag, 1);
  h_read_exact(c, &b, 1);
  CHECK_EQ(b, tag);
}

/* Connects to target (its port is the listener's) and checks that the accept
 * on l gets the connection and that the client's peer is `peer`. */
static void connect_and_check(int64_t port, int64_t l, const uint8_t *target, int32_t target_len,
                              const uint8_t *peer, int32_t peer_len) {
  int64_t a = h_accept(l);
  int64_t c;
  int64_t id = h_connect(port, target, target_len, tcp_local_port(l), 0, &c);
  CHECK_EQ(h_result(id), 0);
  int64_t s = h_accepted(a);
  uint8_t got[16];
  CHECK_EQ(tcp_remote_address(c, got), peer_len);
  CHECK(memcmp(got, peer, (size_t)peer_len) == 0);
  CHECK_EQ(tcp_remote_port(c), tcp_local_port(l));
  check_traffic(c, s, 'u');
  h_close_wait(c);
  h_close_wait(s);
}

/* Issue 16 item 7. Linux connects a socket aimed at 0.0.0.0 or :: to the
 * loopback address; Windows fails it with WSAEADDRNOTAVAIL unless the engine
 * converts the target as libuv does. Wine passes the target to Linux, so this
 * fails only on real Windows without the conversion. */
void test_connect_unspecified_is_loopback(void) {
  int64_t port = h_port();
  int64_t l4 = h_listen(port, H_LOOPBACK4, 4, 0);
  connect_and_check(port, l4, ANY4, 4, H_LOOPBACK4, 4);
  h_close_wait(l4);
  if (!loopback6_available()) return; /* the IPv4 half ran */
  int64_t l6 = h_listen(port, H_LOOPBACK6, 16, 0);
  connect_and_check(port, l6, ANY6, 16, H_LOOPBACK6, 16);
  h_close_wait(l6);
}

/* Issue 16 item 10. An IPv6 socket aimed at ::ffff:127.0.0.1 reaches an IPv4
 * listener on Linux (dual-stack by default); Windows (and Wine, which sets
 * IPV6_V6ONLY on every IPv6 socket as Windows does) refuses unless the engine
 * clears IPV6_V6ONLY on connect sockets. */
void test_connect_v4_mapped(void) {
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int64_t a = h_accept(l);
  int64_t id = h_new_id();
  int64_t c = tcp_connect(port, id, MAPPED_LOOPBACK4, 16, tcp_local_port(l), NULL, 0, 0, 0);
  if (c == TCP_ERR_ADDRESS_FAMILY) SKIP("no IPv6 sockets on this host");
  if (c <= 0) FAILF("tcp_connect(::ffff:127.0.0.1) returned %lld (%s)", (long long)c, h_code_name(c));
  h_issue(id, port, K_CONNECT, c, 0);
  h_remember_port(c, port);
  int64_t rc = h_result(id);
  if (rc != 0) FAILF("connect to ::ffff:127.0.0.1: %lld (%s)", (long long)rc, h_code_name(rc));
  int64_t s = h_accepted(a);
  uint8_t got[16];
  /* the client sees the mapped address, the IPv4 server a plain IPv4 peer */
  CHECK_EQ(tcp_remote_address(c, got), 16);
  CHECK(memcmp(got, MAPPED_LOOPBACK4, 16) == 0);
  CHECK_EQ(tcp_remote_address(s, got), 4);
  CHECK(memcmp(got, H_LOOPBACK4, 4) == 0);
  CHECK_EQ(tcp_remote_port(s), tcp_local_port(c));
  check_traffic(c, s, 'm');
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* A port nobody listens on right now, on loopback of addr's family. */
static int32_t free_port_on(int64_t port, const uint8_t *addr, int32_t addr_len) {
  int64_t tmp = h_listen(port, addr, addr_len, 0);
  int32_t p = tcp_local_port(tmp);
  h_close_wait(tmp);
  return p;
}

static int32_t free_port(int64_t port) { return free_port_on(port, H_LOOPBACK4, 4); }

static void connect_from(int64_t port, int64_t l, const uint8_t *source, int32_t source_len, int32_t source_port) {
  int64_t a = h_accept(l);
  int64_t id = h_new_id();
  int64_t c = tcp_connect(port, id, H_LOOPBACK4, 4, tcp_local_port(l), source, source_len, source_port, 0);
  if (c <= 0) FAILF("tcp_connect returned %lld (%s)", (long long)c, h_code_name(c));
  h_issue(id, port, K_CONNECT, c, 0);
  h_remember_port(c, port);
  int64_t rc = h_result(id);
  if (rc != 0) FAILF("connect from port %d: %lld (%s)", (int)source_port, (long long)rc, h_code_name(rc));
  int64_t s = h_accepted(a);
  if (source_port != 0) CHECK_EQ(tcp_local_port(c), source_port);
  CHECK_EQ(tcp_remote_port(s), tcp_local_port(c));
  check_traffic(c, s, 's');
  h_close_wait(c);
  h_close_wait(s);
}

/* Issue 16 item 11. A connect bound to the wildcard address (a source port
 * alone, or 0.0.0.0 given) is bound but not connected, and Windows'
 * getsockname fails such a socket with WSAEINVAL, as it does an unbound one:
 * the IOCP backend must not take that for "unbound" and bind again (the
 * second bind fails). Wine's getsockname succeeds there, so this fails only on
 * real Windows. */
void test_connect_source_port_only(void) {
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  connect_from(port, l, NULL, 0, free_port(port));
  connect_from(port, l, ANY4, 4, free_port(port));
  connect_from(port, l, ANY4, 4, 0);
  h_close_wait(l);
}

/* Issue 16 item 6. A server restarted on its fixed port while connections of
 * the old listener live (and after they closed, leaving TIME_WAIT) gets the
 * port again: SO_REUSEADDR on Unix; on Windows no option at all, since
 * SO_EXCLUSIVEADDRUSE refuses the bind until those connections are gone. */
void test_relisten_while_connections_live(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  int32_t p = tcp_local_port(l);
  h_close_wait(l);
  int64_t l2 = tcp_listen(port, H_LOOPBACK4, 4, p, 0, 1, 0);
  if (l2 <= 0)
    FAILF("re-listen on port %d with a connection alive: %lld (%s), os error %d", (int)p, (long long)l2,
          h_code_name(l2), (int)tcp_last_os_error());
  h_remember_port(l2, port);
  /* only one listener at a time: a second one is still refused */
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, p, 0, 1, 0), TCP_ERR_ADDRESS_IN_USE);
  connect_and_check(port, l2, H_LOOPBACK4, 4, H_LOOPBACK4, 4);
  check_traffic(c, s, 'o'); /* the old connection is untouched */
  h_close_wait(s);          /* the server side closes first: TIME_WAIT on port p */
  h_expect_eof(c);
  h_close_wait(c);
  h_close_wait(l2);
  int64_t l3 = tcp_listen(port, H_LOOPBACK4, 4, p, 0, 1, 0);
  if (l3 <= 0)
    FAILF("re-listen on port %d after its connections closed: %lld (%s), os error %d", (int)p, (long long)l3,
          h_code_name(l3), (int)tcp_last_os_error());
  h_remember_port(l3, port);
  h_close_wait(l3);
}

/* Issue 16 item 5. Windows answers a SYN to a closed port with RST and still
 * retransmits it for about 2 s before it reports the refusal (Linux reports
 * it at once); for loopback targets the IOCP backend turns those
 * retransmissions off (SIO_TCP_INITIAL_RTO), so a 1 s deadline is never what
 * ends the connect. A loopback refusal takes microseconds elsewhere (Linux,
 * Wine), so this can fail only on real Windows without the ioctl. */
void test_refused_loopback_connect_is_prompt(void) {
  int64_t port = h_port();
  int32_t p = free_port(port);
  int64_t h;
  CHECK_EQ(h_result(h_connect(port, H_LOOPBACK4, 4, p, 1000, &h)), TCP_ERR_CONNECTION_REFUSED);
  h_close_wait(h);
  if (!loopback6_available()) return;
  p = free_port_on(port, H_LOOPBACK6, 16);
  CHECK_EQ(h_result(h_connect(port, H_LOOPBACK6, 16, p, 1000, &h)), TCP_ERR_CONNECTION_REFUSED);
  h_close_wait(h);
}

/* ---- the IOCP backend's fallbacks, by its fault hook -------------------------------- */

/* Returns once the I/O thread handed every op started before this call to
 * the backend: a connect started now is submitted after them (the loop's
 * commands are FIFO), and its completion comes after its submission. */
static void backend_has_everything_started(int64_t port, int64_t live_listener) {
  int64_t h;
  CHECK_EQ(h_result(h_connect(port, H_LOOPBACK4, 4, tcp_local_port(live_listener), 0, &h)), 0);
  h_close_wait(h);
}

/* Issue 16 item 8. Where a non-IFS LSP sits on the socket, CancelIoEx can find
 * nothing to cancel (on the socket and on its SIO_BASE_HANDLE), and the op
 * would never end. With every cancel missing (the hook), the backend must
 * close the socket early, and every op still ends exactly once: accepts and a
 * connect cancelled by a close, and a connect cancelled by its deadline.
 * Reads and writes are not driven here: Wine does not abort a pending
 * WSARecv / WSASend when its socket is closed (server/sock.c,
 * sock_close_handle, terminates only accept, connect and poll requests),
 * while Windows does ("Any pending overlapped send and receive operations ...
 * are also canceled" -- closesocket). */
void test_iocp_cancel_misses(void) {
  h_engine_restart_with_fault("iocp", "ZIG_TCP_IOCP_FAULT", "cancel_miss");
  int64_t port = h_port();
  int64_t live = h_listen(port, H_LOOPBACK4, 4, 0);
  /* accepts pending in AcceptEx, then the listener closes */
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int32_t p = tcp_local_port(l);
  int64_t a1 = h_accept(l), a2 = h_accept(l);
  backend_has_everything_started(port, live);
  int64_t cl = h_close(l);
  h_req *x = h_await(a1), *y = h_await(a2), *z = h_await(cl);
  CHECK_EQ(x->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(y->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(z->c.result, 0);
  CHECK(x->c.seq < z->c.seq && y->c.seq < z->c.seq);
  int64_t h;
  CHECK_EQ(h_result(h_connect(port, H_LOOPBACK4, 4, p, 0, &h)), TCP_ERR_CONNECTION_REFUSED);
  h_close_wait(h);
  /* a connect pending in ConnectEx, then its socket closes */
  uint8_t bh[4];
  int32_t bp;
  hanging_destination(port, bh, &bp);
  int64_t id = h_connect(port, bh, 4, bp, 0, &h);
  backend_has_everything_started(port, live);
  int64_t cl2 = h_close(h);
  x = h_await(id);
  z = h_await(cl2);
  CHECK_EQ(x->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(z->c.result, 0);
  CHECK(x->c.seq < z->c.seq);
  /* a connect whose deadline passes */
  CHECK_EQ(h_result(h_connect(port, bh, 4, bp, 300, &h)), TCP_ERR_TIMED_OUT);
  h_close_wait(h);
  h_close_wait(live);
}

/* Issue 16 item 9. SO_UPDATE_ACCEPT_CONTEXT failing on one accepted socket
 * (the hook fails the first) must not fail the caller's accept: that socket is
 * closed and the accept waits for the next connection, as libuv does. */
void test_iocp_accept_context_failure(void) {
  h_engine_restart_with_fault("iocp", "ZIG_TCP_IOCP_FAULT", "accept_context_once");
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int64_t a = h_accept(l);
  int64_t first, second;
  CHECK_EQ(h_result(h_connect(port, H_LOOPBACK4, 4, tcp_local_port(l), 0, &first)), 0);
  /* the engine closed the first connection's accepted socket */
  int64_t r = h_result(h_read(first, 16));
  if (r != 0 && r != TCP_ERR_CONNECTION_RESET) FAILF("read on the dropped connection: %lld (%s)", (long long)r, h_code_name(r));
  CHECK_EQ(h_result(h_connect(port, H_LOOPBACK4, 4, tcp_local_port(l), 0, &second)), 0);
  int64_t s = h_accepted(a);
  CHECK_EQ(tcp_remote_port(s), tcp_local_port(second));
  check_traffic(second, s, 'a');
  h_close_wait(first);
  h_close_wait(second);
  h_close_wait(s);
  h_close_wait(l);
}

/* Issue 16 item 9: the OS codes the IOCP backend maps by context. The hook
 * fails ConnectEx or WSARecv at once with a chosen code. */
static void check_connect_error(const char *spec, int32_t expected, int64_t os_error) {
  h_engine_restart_with_fault("iocp", "ZIG_TCP_IOCP_FAULT", spec);
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int64_t h;
  h_req *r = h_await(h_connect(port, H_LOOPBACK4, 4, tcp_local_port(l), 0, &h));
  CHECK_EQ(r->c.result, expected);
  CHECK_EQ(r->c.payload_int, os_error);
  h_close_wait(h);
  h_close_wait(l);
}

static void check_read_error(const char *spec, int32_t expected, int64_t os_error) {
  h_engine_restart_with_fault("iocp", "ZIG_TCP_IOCP_FAULT", spec);
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  h_req *r = h_await(h_read(c, 16));
  CHECK_EQ(r->c.result, expected);
  CHECK_EQ(r->c.payload_int, os_error);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

void test_iocp_error_mapping(void) {
  /* WSAENOBUFS from a connect: the ephemeral ports ran out (Linux: EADDRNOTAVAIL) */
  check_connect_error("connect_error=10055", TCP_ERR_ADDRESS_NOT_AVAILABLE, 10055);
  /* WSAECONNABORTED on an established connection reads as a reset (libuv does the same) */
  check_read_error("read_error=10053", TCP_ERR_CONNECTION_RESET, 10053);
  /* WSAENETRESET: keep-alive found the peer gone (Linux: ETIMEDOUT) */
  check_read_error("read_error=10052", TCP_ERR_TIMED_OUT, 10052);
  /* WSAENOBUFS elsewhere is a lack of memory */
  check_read_error("read_error=10055", TCP_ERR_NO_MEMORY, 10055);
}
