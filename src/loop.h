/* loop.h -- the I/O loop (loop.c): the one body of the I/O thread, for every
 * backend. It takes the commands callers queued (submit, cancel, release),
 * hands them to the backend, polls it, ends the ops it reports, expires
 * connect deadlines, and posts completions to Dart, one message per port per
 * pass.
 *
 * All loop_* calls below: engine lock held, any thread, unless marked. */
#ifndef ZIG_TCP_LOOP_H
#define ZIG_TCP_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

/* op (OP_STARTED) goes to the backend on the I/O thread's next pass. */
void loop_submit(tcp_op *op);
/* op (started, not yet ended) must be cancelled; at most once per op. */
void loop_cancel(tcp_op *op);
/* s has no op in flight: the backend releases it on the next pass. */
void loop_release(tcp_sock *s);
/* op's outcome is final (op->result, op->os_error): post it. */
void loop_complete(tcp_op *op);
/* Room for one more connect deadline; false when out of memory. */
bool loop_deadline_reserve(void);
/* Arm / disarm op's connect deadline (op->timeout_ms > 0). */
void loop_deadline_arm(tcp_op *op);
void loop_deadline_disarm(tcp_op *op);

/* Engine start / stop (engine.c). loop_start: without the I/O thread running. */
bool loop_start(backend *b);
/* Lock held: wake the I/O thread to notice the stop. */
void loop_notify_stop(void);
/* Without the lock: wait for the I/O thread to drain and exit. */
void loop_join(void);
/* The sink the backend of the next loop_start reports to. */
backend_sink *loop_sink(void);

#endif /* ZIG_TCP_LOOP_H */
