/*
 * test_options.c -- socket options and listen / connect variants: keep-alive
 * and no-delay, shared listeners, a connect from a chosen source address.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "test_list.h"

void test_keepalive_nodelay(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  int64_t hs[2] = {c, s};
  for (int i = 0; i < 2; i++) {
    int64_t h = hs[i];
    int32_t v = tcp_get_keep_alive(h);
    CHECK(v == 0 || v == 1);
    CHECK_EQ(tcp_set_keep_alive(h, 1), TCP_OK);
    CHECK_EQ(tcp_get_keep_alive(h), 1);
    CHECK_EQ(tcp_set_keep_alive(h, 0), TCP_OK);
    CHECK_EQ(tcp_get_keep_alive(h), 0);
    CHECK_EQ(tcp_set_keep_alive(h, 5), TCP_OK); /* any non-zero is on */
    CHECK_EQ(tcp_get_keep_alive(h), 1);
    v = tcp_get_no_delay(h);
    CHECK(v == 0 || v == 1);
    CHECK_EQ(tcp_set_no_delay(h, 1), TCP_OK);
    CHECK_EQ(tcp_get_no_delay(h), 1);
    CHECK_EQ(tcp_set_no_delay(h, 0), TCP_OK);
    CHECK_EQ(tcp_get_no_delay(h), 0);
    CHECK_EQ(tcp_set_no_delay(h, -1), TCP_OK);
    CHECK_EQ(tcp_get_no_delay(h), 1);
  }
  /* the options do not disturb traffic */
  uint8_t b = 0;
  h_write_all(c, "o", 1);
  h_read_exact(s, &b, 1);
  CHECK_EQ(b, 'o');
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

void test_listen_shared(void) {
  int64_t port = h_port();
  int64_t l1 = tcp_listen(port, H_LOOPBACK4, 4, 0, 0, 1, 1);
  if (l1 == TCP_ERR_UNSUPPORTED) SKIP("the %s backend has no shared listeners", tcp_backend_name());
  if (l1 <= 0) FAILF("shared listener: %lld (%s)", (long long)l1, h_code_name(l1));
  int32_t p = tcp_local_port(l1);
  CHECK(p > 0);
  int64_t l2 = tcp_listen(port, H_LOOPBACK4, 4, p, 0, 1, 1);
  if (l2 <= 0) FAILF("second shared listener on port %d: %lld (%s)", (int)p, (long long)l2,
                     h_code_name(l2));
  CHECK_EQ(tcp_local_port(l2), p);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, p, 0, 1, 0), TCP_ERR_ADDRESS_IN_USE);
  /* track them for closing */
  int64_t c1 = h_new_id(), c2 = h_new_id();
  CHECK_EQ(tcp_close(l1, c1), TCP_OK);
  h_issue(c1, port, K_CLOSE, l1, 0);
  CHECK_EQ(tcp_close(l2, c2), TCP_OK);
  h_issue(c2, port, K_CLOSE, l2, 0);
  CHECK_EQ(h_result(c1), 0);
  CHECK_EQ(h_result(c2), 0);
}

/* a connect with a source address and port */
void test_connect_source_address(void) {
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 0);
  int64_t a = h_accept(l);
  /* pick a free source port by listening on one and closing it */
  int64_t tmp = h_listen(port, H_LOOPBACK4, 4, 0);
  int32_t sp = tcp_local_port(tmp);
  h_close_wait(tmp);
  int64_t id = h_new_id();
  int64_t c = tcp_connect(port, id, H_LOOPBACK4, 4, tcp_local_port(l), H_LOOPBACK4, 4, sp, 0);
  CHECK(c > 0);
  h_issue(id, port, K_CONNECT, c, 0);
  h_remember_port(c, port);
  CHECK_EQ(h_result(id), 0);
  int64_t s = h_accepted(a);
  CHECK_EQ(tcp_local_port(c), sp);
  CHECK_EQ(tcp_remote_port(s), sp);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}
