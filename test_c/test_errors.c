/*
 * test_errors.c -- errors: refused connects, address in use, connect timeout,
 * reset by the peer, stale / made-up / wrong-kind handles, bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "harness.h"
#include "test_list.h"
#include "hanging_destination.h"

/* ---- connect / listen errors ------------------------------------------------------ */
void test_connection_refused(void) {
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int32_t p = tcp_local_port(l);
  h_close_wait(l); /* the port is free again and nobody listens */
  int64_t h;
  int64_t id = h_connect(port, H_LOOPBACK4, 4, p, 0, &h);
  h_req *r = h_await(id);
  CHECK_EQ(r->c.result, TCP_ERR_CONNECTION_REFUSED);
  CHECK(r->c.payload_int != 0); /* the OS code */
  /* a failed connection still has to be closed; I/O on it fails */
  int64_t rid = h_new_id();
  int32_t rc = tcp_read(h, rid, 10);
  if (rc == TCP_OK) {
    h_issue(rid, port, K_READ, h, 0);
    CHECK(h_result(rid) < 0);
  } else {
    CHECK(rc < 0);
  }
  h_close_wait(h);
}

void test_address_in_use(void) {
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int32_t p = tcp_local_port(l);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, p, 0, 1, 0), TCP_ERR_ADDRESS_IN_USE);
  CHECK(tcp_last_os_error() != 0);
  /* asking for sharing does not steal a port held without it (a backend
   * without shared listeners refuses the request altogether) */
  int64_t rc = tcp_listen(port, H_LOOPBACK4, 4, p, 0, 1, 1);
  if (rc != TCP_ERR_UNSUPPORTED) CHECK_EQ(rc, TCP_ERR_ADDRESS_IN_USE);
  h_close_wait(l);
}

void test_connect_timeout(void) {
  int64_t port = h_port();
  uint8_t bh[4];
  int32_t bp;
  hanging_destination(port, bh, &bp);
  /* a connect that succeeds at once must not time out later: its timer is
   * still armed when the black-hole connect below times out */
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int64_t a = h_accept(l);
  int64_t ok_h;
  int64_t ok = h_connect(port, H_LOOPBACK4, 4, tcp_local_port(l), 250, &ok_h);
  CHECK_EQ(h_result(ok), 0);
  int64_t s = h_accepted(a);

  int64_t h;
  int64_t id = h_connect(port, bh, 4, bp, 300, &h);
  CHECK_EQ(h_result(id), TCP_ERR_TIMED_OUT);
  h_close_wait(h);
  /* the early connection is still fine */
  uint8_t b = 0;
  h_write_all(ok_h, "k", 1);
  h_read_exact(s, &b, 1);
  CHECK_EQ(b, 'k');
  h_close_wait(ok_h);
  h_close_wait(s);
  h_close_wait(l);
}

/* Many short connect timeouts in a row, the I/O thread otherwise idle: each
 * one must fire. (The uv backend bounded its wait with a libuv timer started
 * against the loop's cached clock; when that clock was a millisecond behind,
 * the timer ran before libuv's poll, which then waited with no deadline --
 * the connect hung.) */
void test_connect_timeouts_short(void) {
  int64_t port = h_port();
  uint8_t bh[4];
  int32_t bp;
  hanging_destination(port, bh, &bp);
  for (int i = 0; i < 120; i++) {
    int64_t h;
    int64_t id = h_connect(port, bh, 4, bp, 1 + i % 3, &h);
    CHECK_EQ(h_result(id), TCP_ERR_TIMED_OUT);
    h_close_wait(h);
  }
}

void test_reset_by_peer(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  h_write_all(c, "abcdef", 6);
  /* take one byte, so the rest is certainly in s's receive buffer */
  h_req *one = h_await(h_read(s, 1));
  CHECK_EQ(one->c.result, 1);
  /* closing with unread data resets the connection */
  int64_t r = h_read(c, 100);
  h_close_wait(s);
  CHECK_EQ(h_result(r), TCP_ERR_CONNECTION_RESET);
  h_close_wait(c);
  h_close_wait(l);
}

/* ---- handles ---------------------------------------------------------------------- */
void test_stale_and_bad_handles(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  uint8_t a[16];
  /* wrong kind */
  CHECK_EQ(tcp_read(l, h_new_id(), 10), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_write(l, h_new_id(), (const uint8_t *)"x", 1), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_shutdown_write(l, h_new_id()), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_accept(s, h_new_id()), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_remote_port(l), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_remote_address(l, a), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_get_no_delay(l), TCP_ERR_BAD_HANDLE);
  /* made up */
  const int64_t made_up[] = {0, -1, INT64_MIN, ((int64_t)0x1234 << 32) | 0x00fffff0, INT64_MAX};
  for (size_t i = 0; i < sizeof made_up / sizeof made_up[0]; i++) {
    int64_t h = made_up[i];
    CHECK_EQ(tcp_read(h, h_new_id(), 10), TCP_ERR_BAD_HANDLE);
    CHECK_EQ(tcp_close(h, h_new_id()), TCP_ERR_BAD_HANDLE);
    CHECK_EQ(tcp_accept(h, h_new_id()), TCP_ERR_BAD_HANDLE);
    CHECK_EQ(tcp_local_port(h), TCP_ERR_BAD_HANDLE);
    CHECK_EQ(tcp_set_no_delay(h, 1), TCP_ERR_BAD_HANDLE);
    tcp_close_finalizer((void *)(intptr_t)h); /* must do nothing */
  }
  /* closed */
  h_close_wait(c);
  CHECK_EQ(tcp_read(c, h_new_id(), 10), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_write(c, h_new_id(), (const uint8_t *)"x", 1), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_shutdown_write(c, h_new_id()), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_close(c, h_new_id()), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_local_port(c), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_remote_port(c), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_local_address(c, a), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_get_keep_alive(c), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_set_no_delay(c, 1), TCP_ERR_CLOSED);
  /* double close: the handle is invalid as soon as the first close returns */
  int64_t cl = h_close(s);
  CHECK_EQ(tcp_close(s, h_new_id()), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_read(s, h_new_id(), 1), TCP_ERR_CLOSED);
  CHECK_EQ(h_result(cl), 0);
  /* new sockets (which may reuse the slots) never answer to the old handles */
  int64_t c2, s2;
  h_close_wait(l);
  int64_t l2 = h_pair_any(port, port, &c2, &s2);
  CHECK(c2 != c && c2 != s && s2 != c && s2 != s && l2 != l);
  CHECK_EQ(tcp_local_port(c), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_local_port(l), TCP_ERR_CLOSED);
  tcp_close_finalizer((void *)(intptr_t)c);
  tcp_close_finalizer((void *)(intptr_t)s);
  tcp_close_finalizer((void *)(intptr_t)l);
  uint8_t b = 0;
  h_write_all(c2, "n", 1);
  h_read_exact(s2, &b, 1);
  CHECK_EQ(b, 'n');
  h_close_wait(c2);
  h_close_wait(s2);
  h_close_wait(l2);
}

/* ---- bad input ------------------------------------------------------------------------- */
void test_bad_input(void) {
  int64_t port = h_port();
  const int32_t INV = TCP_ERR_INVALID_ARGUMENT;
  CHECK_EQ(tcp_listen(port, NULL, 4, 0, 0, 1, 0), INV);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 5, 0, 0, 1, 0), INV);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 0, 0, 0, 1, 0), INV);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, -4, 0, 0, 1, 0), INV);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, -1, 0, 1, 0), INV);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, 65536, 0, 1, 0), INV);
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  int32_t p = tcp_local_port(l);
  uint8_t buf[16];
  CHECK_EQ(tcp_connect(port, h_new_id(), NULL, 4, p, NULL, 0, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 3, p, NULL, 0, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, -1, NULL, 0, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, 65536, NULL, 0, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, p, H_LOOPBACK4, 5, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, p, NULL, 4, 0, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, p, H_LOOPBACK4, 4, 70000, 0), INV);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, p, H_LOOPBACK4, 4, -2, 0), INV);
  CHECK_EQ(tcp_read(c, h_new_id(), 0), INV);
  CHECK_EQ(tcp_read(c, h_new_id(), -1), INV);
  CHECK_EQ(tcp_read(c, h_new_id(), (int64_t)TCP_READ_BYTES_MAX + 1), INV);
  CHECK_EQ(tcp_write(c, h_new_id(), NULL, 5), INV);
  CHECK_EQ(tcp_write(c, h_new_id(), buf, -1), INV);
  /* an oversized length is refused before a byte is read (buf is 16 bytes) */
  CHECK_EQ(tcp_write(c, h_new_id(), buf, (int64_t)TCP_WRITE_BYTES_MAX + 1), INV);
  CHECK_EQ(tcp_write(c, h_new_id(), buf, INT64_MAX), INV);
  CHECK_EQ(tcp_local_address(c, NULL), INV);
  CHECK_EQ(tcp_remote_address(c, NULL), INV);
  CHECK_EQ(tcp_local_address(l, NULL), INV);
  /* none of that disturbed the connection */
  h_write_all(c, "fine", 4);
  h_read_exact(s, buf, 4);
  CHECK(memcmp(buf, "fine", 4) == 0);
  /* the largest read is accepted */
  int64_t r = h_read(s, TCP_READ_BYTES_MAX);
  h_write_all(c, "max", 3);
  h_req *rr = h_await(r);
  CHECK(rr->c.result >= 1 && rr->c.result <= 3);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}
