/*
 * common.h -- small helpers shared by the reliability programs (soak.c,
 * faults.c): RSS, clocks, fd limits. Their byte streams come from
 * test_c/byte_stream.h, shared with the suite and the fuzzer.
 */
#ifndef ZIG_TCP_RELIABILITY_COMMON_H
#define ZIG_TCP_RELIABILITY_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "byte_stream.h"
#include "fake_dart.h"
#include "tcp.h"

static inline int64_t rel_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Resident set size of this process in KiB. */
static inline long rel_rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return -1;
  long pages = 0, resident = 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Raises the soft fd limit to the hard one; returns the new soft limit. */
static inline long rel_raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return (long)rl.rlim_cur;
}

#endif /* ZIG_TCP_RELIABILITY_COMMON_H */
