/*
 * test_options.c -- socket options and listen / connect variants: keep-alive
 * and no-delay, shared listeners (dart:io groups, SO_REUSEPORT), a connect from a
 * chosen source address, IPv6 scope ids.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "harness.h"
#include "test_list.h"

void test_keepalive_nodelay(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
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

/* Two listeners on one address and port: shared (one OS socket) or
 * SO_REUSEPORT (two); an exclusive bind of that port is then refused. */
static void two_listeners_on_one_port(int32_t mode) {
  int64_t port = h_port();
  int64_t l1 = tcp_listen(port, H_LOOPBACK4, 4, 0, 0, 0, mode);
  if (l1 == TCP_ERR_UNSUPPORTED) SKIP("the %s backend has no SO_REUSEPORT", tcp_backend_name());
  if (l1 <= 0) FAILF("listener (mode %d): %lld (%s)", (int)mode, (long long)l1, h_code_name(l1));
  int32_t p = tcp_local_port(l1);
  CHECK(p > 0);
  int64_t l2 = tcp_listen(port, H_LOOPBACK4, 4, p, 0, 0, mode);
  if (l2 <= 0) FAILF("second listener on port %d: %lld (%s)", (int)p, (long long)l2, h_code_name(l2));
  CHECK(l2 != l1);
  CHECK_EQ(tcp_local_port(l2), p);
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, p, 0, 0, 0), TCP_ERR_ADDRESS_IN_USE);
  h_remember_port(l1, port);
  h_remember_port(l2, port);
  h_close_wait(l1);
  h_close_wait(l2);
}

void test_listen_shared(void) {
  two_listeners_on_one_port(TCP_LISTEN_SHARED);
  CHECK_EQ(tcp_listen(h_port(), H_LOOPBACK4, 4, 0, 0, 0, 3), TCP_ERR_INVALID_ARGUMENT);
}

void test_listen_reuse_port(void) { two_listeners_on_one_port(TCP_LISTEN_REUSE_PORT); }

/* dart:io's shared listeners across two isolates (ports): one OS socket; each
 * connection goes to a listener with an accept waiting and completes on its
 * port; closing one leaves the other working; the socket closes with the last. */
void test_listen_shared_two_ports(void) {
  int64_t port_a = h_port(), port_b = h_port(), client_port = h_port();
  h_endpoint fresh = h_fresh_endpoint();
  int64_t la = h_listen_at(port_a, &fresh, 0, TCP_LISTEN_SHARED);
  h_endpoint ep = h_endpoint_of(la); /* TCP: with the port the first member got */
  int64_t lb = h_listen_at(port_b, &ep, 0, TCP_LISTEN_SHARED);
  int64_t acc_a = h_accept(la), acc_b = h_accept(lb);
  int64_t c1 = 0, c2 = 0;
  CHECK_EQ(h_result(h_connect_to(client_port, &ep, 0, &c1)), 0);
  CHECK_EQ(h_result(h_connect_to(client_port, &ep, 0, &c2)), 0);
  int64_t sa = h_accepted(acc_a), sb = h_accepted(acc_b); /* each had one accept waiting */
  h_remember_port(sa, port_a);
  h_remember_port(sb, port_b);
  h_write_all(c1, "x", 1);
  h_write_all(c2, "x", 1);
  CHECK_EQ(h_result(h_read(sa, 1)), 1); /* completes on port_a (the tracker checks the port) */
  CHECK_EQ(h_result(h_read(sb, 1)), 1);
  /* Closing one member ends its own accepts only. */
  int64_t pending_a = h_accept(la);
  int64_t close_a = h_close(la);
  CHECK_EQ(h_result(pending_a), TCP_ERR_CLOSED);
  CHECK_EQ(h_result(close_a), 0);
  int64_t acc_b2 = h_accept(lb), c3 = 0;
  CHECK_EQ(h_result(h_connect_to(client_port, &ep, 0, &c3)), 0);
  int64_t sb2 = h_accepted(acc_b2);
  h_remember_port(sb2, port_b);
  /* The last member closes the OS socket: the port refuses connections (a
   * Unix group's file goes with it). */
  h_close_wait(lb);
  int64_t c4 = 0;
  CHECK_EQ(h_result(h_connect_to(client_port, &ep, 0, &c4)), h_gone_endpoint_error());
  int64_t all[] = {c1, c2, c3, c4, sa, sb, sb2};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) h_close_wait(all[i]);
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

/* IPv6 scope ids travel both ways: a link-local address (fe80::1 on lo, in a
 * network namespace this test makes) with the interface's index as its scope
 * id; without one, the connect is refused by the OS. Needs root and `ip`. */
#if defined(_WIN32)
void test_ipv6_scope_id(void) { SKIP("makes a Linux network namespace"); }
#else
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

static char g_scope_ns[40];
static int g_host_netns = -1;

static void scope_netns_down(void) {
  if (g_host_netns >= 0) {
    if (setns(g_host_netns, CLONE_NEWNET) != 0) perror("setns back");
    close(g_host_netns);
    g_host_netns = -1;
  }
  if (g_scope_ns[0] != '\0') {
    char cmd[96];
    snprintf(cmd, sizeof cmd, "ip netns del %s 2>/dev/null", g_scope_ns);
    if (system(cmd) != 0) fprintf(stderr, "could not remove netns %s\n", g_scope_ns);
    g_scope_ns[0] = '\0';
  }
}

/* This thread enters a fresh namespace whose lo has fe80::1/64. */
static void enter_link_local_netns(void) {
  if (geteuid() != 0) SKIP("needs root to make a network namespace");
  snprintf(g_scope_ns, sizeof g_scope_ns, "zigtcp_scope_%d", (int)getpid());
  char cmd[200];
  snprintf(cmd, sizeof cmd, "ip netns add %s 2>/dev/null", g_scope_ns);
  if (system(cmd) != 0) {
    g_scope_ns[0] = '\0';
    SKIP("`ip netns add` failed: no network namespaces here");
  }
  h_at_test_end(scope_netns_down);
  snprintf(cmd, sizeof cmd, "ip -n %s link set lo up && ip -n %s addr add fe80::1/64 dev lo", g_scope_ns,
           g_scope_ns);
  CHECK(system(cmd) == 0);
  g_host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  snprintf(cmd, sizeof cmd, "/var/run/netns/%s", g_scope_ns);
  int ns = open(cmd, O_RDONLY | O_CLOEXEC);
  CHECK(g_host_netns >= 0 && ns >= 0);
  CHECK(setns(ns, CLONE_NEWNET) == 0); /* this thread only: its sockets live there */
  close(ns);
}

void test_ipv6_scope_id(void) {
  enter_link_local_netns();
  uint32_t lo = if_nametoindex("lo");
  CHECK(lo > 0);
  uint8_t ll[20] = {0xfe, 0x80, [15] = 1};
  memcpy(ll + 16, &lo, sizeof(lo));
  int64_t port = h_port();
  int64_t l = h_listen_mode(port, ll, 20, 0, 0);
  CHECK_EQ(tcp_local_scope_id(l), (int64_t)lo);
  int32_t p = tcp_local_port(l);
  int64_t bare = 0; /* fe80::1 with no scope: the OS cannot tell the interface */
  CHECK_EQ(h_result(h_connect(port, ll, 16, p, 0, &bare)), TCP_ERR_INVALID_ARGUMENT);
  int64_t acc = h_accept(l), c = 0;
  CHECK_EQ(h_result(h_connect(port, ll, 20, p, 0, &c)), 0);
  int64_t s = h_accepted(acc);
  CHECK_EQ(tcp_remote_scope_id(c), (int64_t)lo);
  CHECK_EQ(tcp_local_scope_id(c), (int64_t)lo);
  CHECK_EQ(tcp_remote_scope_id(s), (int64_t)lo);
  uint8_t got[16];
  CHECK_EQ(tcp_remote_address(c, got), 16);
  CHECK(memcmp(got, ll, 16) == 0);
  h_write_all(c, "hi", 2);
  CHECK_EQ(h_result(h_read(s, 2)), 2);
  CHECK_EQ(tcp_local_scope_id(0x7777777700000003ll), TCP_ERR_BAD_HANDLE);
  int64_t all[] = {bare, c, s, l};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) h_close_wait(all[i]);
}
#endif
