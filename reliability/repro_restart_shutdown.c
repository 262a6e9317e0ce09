/*
 * repro_restart_shutdown.c -- reproducer of a hang that fuzz/fuzz_ops.c found
 * in the io_uring backend at commit 3a9b023 (fixed in fc344d0, "fix a lost
 * wake-up of a stop request made while the I/O thread was awake"):
 * tcp_init, tcp_shutdown, tcp_init, tcp_shutdown -- the second tcp_shutdown
 * never returned. The stop request's wake-up was lost when the I/O thread had
 * not parked yet, and the thread then parked without looking at it.
 * Exit 0: every tcp_shutdown returned within 10 s; 1: one hung.
 *   ./zigw build repro_restart_shutdown --prefix build
 *   ZIG_TCP_BACKEND=io_uring build/reliability/repro_restart_shutdown
 *                                (... repro_restart_shutdown traffic: a listener each round)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "fake_dart.h"
#include "tcp.h"
static void *sd(void *arg) { *(int *)arg = tcp_shutdown(); return NULL; }
static int shutdown_bounded(const char *what) {
  int rc = -100; pthread_t t; pthread_create(&t, NULL, sd, &rc);
  struct timespec d; clock_gettime(CLOCK_REALTIME, &d); d.tv_sec += 10;
  if (pthread_timedjoin_np(t, NULL, &d) != 0) { printf("BUG: %s: tcp_shutdown did not return within 10 s\n", what); exit(1); }
  printf("%s: tcp_shutdown returned %d\n", what, rc); return rc;
}
int main(int argc, char **argv) {
  int traffic = argc > 1;
  for (int round = 1; round <= 3; round++) {
    if (tcp_init(fake_dart_api_data()) != TCP_OK) return 2;
    if (traffic) {
      int64_t port = fake_dart_open_port();
      const uint8_t lo[4] = {127, 0, 0, 1};
      int64_t l = tcp_listen(port, lo, 4, 0, 0, 0, 0);
      tcp_close(l, 1);
      fd_completion fc;
      fake_dart_next(port, 5000, &fc);
    }
    char what[32]; snprintf(what, sizeof what, "round %d (%s)", round, tcp_backend_name());
    shutdown_bounded(what);
  }
  printf("OK\n");
  return 0;
}
