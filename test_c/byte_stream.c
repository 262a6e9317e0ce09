/*
 * byte_stream.c -- seeded byte streams and FNV-1a (see byte_stream.h).
 */
#include "byte_stream.h"

/* Spreads consecutive word numbers over the seed's bits. */
#define WORD_STEP 0x2545f4914f6cdd1dull

uint64_t byte_stream_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* The 8 bytes of the stream that hold byte `offset`, as one word. */
static uint64_t word_at(uint64_t seed, uint64_t offset) {
  return byte_stream_mix64(seed ^ (offset >> 3) * WORD_STEP);
}

uint8_t byte_stream_byte(uint64_t seed, uint64_t offset) {
  return (uint8_t)(word_at(seed, offset) >> (8 * (offset & 7)));
}

void byte_stream_fill(uint64_t seed, uint64_t offset, uint8_t *buf, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint64_t w = word_at(seed, offset + i);
    for (unsigned b = (unsigned)((offset + i) & 7); b < 8 && i < n; b++, i++)
      buf[i] = (uint8_t)(w >> (8 * b));
  }
}

size_t byte_stream_first_diff(uint64_t seed, uint64_t offset, const uint8_t *buf, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint64_t w = word_at(seed, offset + i);
    for (unsigned b = (unsigned)((offset + i) & 7); b < 8 && i < n; b++, i++)
      if (buf[i] != (uint8_t)(w >> (8 * b))) return i;
  }
  return n;
}

uint64_t byte_stream_fnv1a(uint64_t h, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
