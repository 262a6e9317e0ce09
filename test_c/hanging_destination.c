/*
 * hanging_destination.c -- a destination whose SYNs are never answered (see
 * hanging_destination.h).
 */
#include "hanging_destination.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#include <unistd.h>
#endif

#include "runner.h"
#include "tcp.h"
#include "tracked_calls.h"

#if !defined(_WIN32)
static int h_getpid(void) { return (int)getpid(); }

static int run_cmd(const char *fmt, ...) {
  char cmd[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char full[600];
  snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
  return system(full);
}
#endif

/* A destination whose SYNs vanish: a veth peer inside a network namespace
 * this test creates, with an nftables rule dropping all its input. */
#if !defined(_WIN32)
static bool g_netns_up;
static char g_netns[32], g_veth[16], g_veth_peer[16];

/* Removes the namespace and the veth (also at the end of the test). */
static void netns_down(void) {
  if (!g_netns_up) return;
  run_cmd("ip netns del %s", g_netns);
  run_cmd("ip link del %s", g_veth);
  g_netns_up = false;
}
#endif

/* Sets up the black hole; returns NULL, or why it cannot be had here. */
static const char *netns_blackhole(uint8_t addr[4]) {
  if (getenv("TCP_SUITE_NO_NETNS") != NULL) return "TCP_SUITE_NO_NETNS is set";
#if defined(_WIN32)
  (void)addr;
  return "network namespaces are Linux-only";
#else
  if (geteuid() != 0) return "network namespaces need root";
  if (run_cmd("ip -V") != 0) return "no 'ip' command (iproute2)";
  if (run_cmd("nft --version") != 0) return "no 'nft' command (nftables)";
  int pid = h_getpid();
  snprintf(g_netns, sizeof g_netns, "zigtcp_%d", pid);
  snprintf(g_veth, sizeof g_veth, "zt%d", pid % 1000000);
  snprintf(g_veth_peer, sizeof g_veth_peer, "ztp%d", pid % 1000000);
  /* a /30 of 10.213.0.0/16 chosen from the pid, only ever routed to our veth */
  int b3 = (pid / 64) % 250, b4 = (pid % 64) * 4;
  addr[0] = 10;
  addr[1] = 213;
  addr[2] = (uint8_t)b3;
  addr[3] = (uint8_t)(b4 + 2);
  g_netns_up = true;
  h_at_test_end(netns_down);
  if (run_cmd("ip netns add %s", g_netns) != 0 ||
      run_cmd("ip link add %s type veth peer name %s", g_veth, g_veth_peer) != 0 ||
      run_cmd("ip link set %s netns %s", g_veth_peer, g_netns) != 0 ||
      run_cmd("ip addr add 10.213.%d.%d/30 dev %s", b3, b4 + 1, g_veth) != 0 ||
      run_cmd("ip link set %s up", g_veth) != 0 ||
      run_cmd("ip -n %s addr add 10.213.%d.%d/30 dev %s", g_netns, b3, b4 + 2, g_veth_peer) != 0 ||
      run_cmd("ip -n %s link set %s up", g_netns, g_veth_peer) != 0 ||
      run_cmd("ip netns exec %s nft add table inet zt", g_netns) != 0 ||
      run_cmd("ip netns exec %s nft 'add chain inet zt in { type filter hook input priority 0; "
              "policy drop; }'",
              g_netns) != 0) {
    netns_down();
    return "could not set up a network namespace with a drop rule";
  }
  return NULL;
#endif
}

/* Fallback: a loopback listener whose accept queue is full, so the kernel
 * drops further SYNs (Linux does; Windows answers with a reset instead, and
 * then the test is skipped). Fills the queue by connecting until a connect
 * times out -- a loopback connect to a listener with room never takes 2 s. */
static void full_backlog(int64_t port, uint8_t addr[4], int32_t *tcp_port, const char *why_not_netns) {
  int64_t l = h_listen(port, H_LOOPBACK4, 4, 1);
  int32_t p = tcp_local_port(l);
  for (int i = 0; i < 64; i++) {
    int64_t h;
    int64_t r = h_result(h_connect(port, H_LOOPBACK4, 4, p, 2000, &h));
    if (r == 0) continue; /* queued; stays open until the engine shuts down */
    h_close_wait(h);
    if (r == TCP_ERR_TIMED_OUT) {
      memcpy(addr, H_LOOPBACK4, 4);
      *tcp_port = p;
      return;
    }
    SKIP("%s; and a listener with a full backlog answers a connect with %s", why_not_netns,
         h_code_name(r));
  }
  SKIP("%s; and a listener's backlog did not fill up", why_not_netns);
}

/* A destination whose SYNs are never answered: the network-namespace black
 * hole where it can be had, else a listener with a full backlog. */
void hanging_destination(int64_t port, uint8_t addr[4], int32_t *tcp_port) {
  const char *why = netns_blackhole(addr);
  if (why == NULL) {
    *tcp_port = 9;
    return;
  }
  full_backlog(port, addr, tcp_port, why);
}
