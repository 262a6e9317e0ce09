/*
 * common.h -- small helpers shared by the reliability programs (soak.c,
 * faults.c): checksummed byte streams, RSS, clocks, failure reporting.
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

#include "fake_dart.h"
#include "tcp.h"

static inline uint64_t rel_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Byte `off` of the deterministic stream `seed`: both ends can compute any
 * byte, so every received byte is checked against what was sent. */
static inline uint8_t rel_stream_byte(uint64_t seed, uint64_t off) {
  return (uint8_t)(rel_mix64(seed ^ ((off >> 3) * 0x2545f4914f6cdd1dull)) >> (8 * (off & 7)));
}
static inline void rel_stream_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t n) {
  size_t i = 0;
  while (i < n && ((off + i) & 7) != 0) {
    buf[i] = rel_stream_byte(seed, off + i);
    i++;
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w = rel_mix64(seed ^ (((off + i) >> 3) * 0x2545f4914f6cdd1dull));
    memcpy(buf + i, &w, 8); /* little-endian: byte k of w is byte off+i+k */
  }
  for (; i < n; i++) buf[i] = rel_stream_byte(seed, off + i);
}
/* Number of bytes in buf that differ from the stream at off. */
static inline uint64_t rel_stream_diff(uint64_t seed, uint64_t off, const uint8_t *buf, size_t n) {
  uint64_t bad = 0;
  for (size_t i = 0; i < n; i++) bad += buf[i] != rel_stream_byte(seed, off + i);
  return bad;
}

static inline uint64_t rel_fnv1a(uint64_t h, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
#define REL_FNV_INIT 0xcbf29ce484222325ull

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
