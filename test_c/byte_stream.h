/*
 * byte_stream.h -- seeded byte streams and a checksum, for every program that
 * checks data sent through the engine: the C suite, the fuzzer
 * (fuzz/fuzz_ops.c) and the reliability tools (reliability/).
 *
 * Any byte of a stream follows from its seed and offset alone, so a receiver
 * checks each byte it gets against what was sent without keeping a copy, at
 * any offset and in pieces of any size. Byte k of the stream `seed` is byte
 * k % 8 (least significant first) of
 *   byte_stream_mix64(seed ^ (k / 8) * 0x2545f4914f6cdd1d).
 * These values are a fixed format: the fuzzer's committed corpus and its
 * findings replay with the same bytes.
 */
#ifndef ZIG_TCP_BYTE_STREAM_H
#define ZIG_TCP_BYTE_STREAM_H

#include <stddef.h>
#include <stdint.h>

/* A 64-bit mixer (SplitMix64's step): also a handy way to derive seeds. */
uint64_t byte_stream_mix64(uint64_t x);

/* Byte `offset` of the stream `seed`. */
uint8_t byte_stream_byte(uint64_t seed, uint64_t offset);

/* buf[0..n) = bytes offset .. offset+n-1 of the stream `seed`. */
void byte_stream_fill(uint64_t seed, uint64_t offset, uint8_t *buf, size_t n);

/* The index in buf of the first byte that differs from the stream `seed` at
 * offset, or n when all n bytes are right. */
size_t byte_stream_first_diff(uint64_t seed, uint64_t offset, const uint8_t *buf, size_t n);

/* FNV-1a over p[0..n), continuing from h (BYTE_STREAM_FNV1A_INIT to start). */
uint64_t byte_stream_fnv1a(uint64_t h, const uint8_t *p, size_t n);
#define BYTE_STREAM_FNV1A_INIT 0xcbf29ce484222325ull

#endif /* ZIG_TCP_BYTE_STREAM_H */
