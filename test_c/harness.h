/*
 * harness.h -- everything a test of the C suite uses: the runner (CHECK,
 * FAILF, SKIP; runner.h), the request tracker (tracker.h), the tracked engine
 * calls (tracked_calls.h) and seeded byte streams (byte_stream.h). Helpers for
 * the environment have their own headers: raw_socket.h, hanging_destination.h,
 * threads.h.
 */
#ifndef ZIG_TCP_HARNESS_H
#define ZIG_TCP_HARNESS_H

#include "byte_stream.h"
#include "fake_dart.h"
#include "runner.h"
#include "tcp.h"
#include "tracked_calls.h"
#include "tracker.h"

#endif /* ZIG_TCP_HARNESS_H */
