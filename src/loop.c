/* loop.c -- the I/O loop: the one body of the I/O thread (see loop.h).
 *
 * ONE PASS
 *   Under the engine lock: end the ops the backend reported (sock_op_ended,
 *   which may start the next op of a queue), release sockets it finished, expire
 *   connect deadlines, hand queued commands to the backend; repeat until
 *   nothing is left to do without the OS. Then, without the lock: post the
 *   completions of the pass (one message per port), or poll the backend --
 *   without waiting if anything is left to post, else until woken or until the
 *   nearest deadline.
 *
 * WAKING
 *   Callers add commands and completions under the lock. While the I/O thread
 *   is awake it sees them on its next pass, so callers make no syscall; only
 *   when it is about to wait ("parked", set under the lock before it unlocks)
 *   does the first caller wake it through the backend (one syscall per park).
 *
 * LINGERING
 *   Where the backend can tell without a syscall whether poll would find work
 *   (events_ready), the loop yields the CPU a few times before it parks. The
 *   isolates' threads often share this CPU; yielding lets them answer, and a
 *   busy engine then handles events in batches instead of sleeping and being
 *   woken for each one (a wake costs ~20 us across vCPUs here). */
#include "loop.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "dart_post.h"
#include "deadlines.h"
#include "engine.h"
#include "errors.h"
#include "handles.h"
#include "platform.h"

#define LINGER_YIELDS 8
/* After this long with nothing to do, the freed memory of the busy time goes
 * back to the OS (see trim_when_idle). */
#define IDLE_TRIM_MS 1000

static struct {
  backend *backend;
  backend_sink sink;
  queue commands; /* ops to submit or cancel (tcp_op.command_link) */
  queue releases; /* sockets to release (tcp_sock.command_link) */
  queue done;     /* completions to post (tcp_op.core_link) */
  deadline_heap deadlines;
  bool parked;    /* the I/O thread waits, or is about to */
  bool wake_sent; /* a caller woke it since it parked */
  /* Bumped by every caller that adds work: the linger watches it lock-free. */
  _Atomic uint32_t work_added;
  bool trim_due;  /* completions were posted since the last trim */
  int64_t idle_trim_ms; /* IDLE_TRIM_MS, or ZIG_TCP_IDLE_TRIM_MS (tests: trim all the time) */
  plat_thread thread;
} L;

static _Thread_local bool on_io_thread;

backend_sink *loop_sink(void) { return &L.sink; }

/* Lock held: new work for the I/O thread. */
static void notify(void) {
  atomic_fetch_add_explicit(&L.work_added, 1, memory_order_relaxed);
  if (!L.parked || L.wake_sent) return;
  L.wake_sent = true;
  L.backend->vtable->wake(L.backend);
}

void loop_submit(tcp_op *op) {
  ASSERT_LOCKED();
  ZT_ASSERT(op->state == OP_STARTED && !op->cancel_requested);
  queue_push(&L.commands, &op->command_link);
  notify();
}

void loop_cancel(tcp_op *op) {
  ASSERT_LOCKED();
  ZT_ASSERT(op->state == OP_STARTED || op->state == OP_SUBMITTED);
  ZT_ASSERT(!op->cancel_requested && !op->cancel_sent);
  op->cancel_requested = true;
  if (!qlink_queued(&op->command_link)) queue_push(&L.commands, &op->command_link);
  notify();
}

void loop_release(tcp_sock *s) {
  ASSERT_LOCKED();
  queue_push(&L.releases, &s->command_link);
  notify();
}

void loop_complete(tcp_op *op) {
  ASSERT_LOCKED();
  op->state = OP_DONE;
  queue_push(&L.done, &op->core_link);
  notify();
}

bool loop_deadline_reserve(void) {
  ASSERT_LOCKED();
  return deadlines_reserve(&L.deadlines);
}

static int64_t now_ms(void) {
  backend *b = L.backend;
  return b->vtable->now_ms != NULL ? b->vtable->now_ms(b) : plat_now_ms();
}

void loop_deadline_arm(tcp_op *op) {
  ASSERT_LOCKED();
  ZT_ASSERT(op->kind == OP_CONNECT && op->timeout_ms > 0);
  op->deadline_ms = now_ms() + op->timeout_ms;
  deadlines_add(&L.deadlines, op);
  notify(); /* a parked I/O thread must shorten its wait */
}

void loop_deadline_disarm(tcp_op *op) {
  ASSERT_LOCKED();
  if (op->deadline_index != OP_NO_DEADLINE) deadlines_remove(&L.deadlines, op);
}

/* ---- the sink: what backends report (I/O thread) ------------------------ */

static void sink_push(backend_sink *sink, tcp_op *op) {
  ZT_ASSERT(on_io_thread);
  ZT_ASSERT(op->state == OP_SUBMITTED);
  ZT_ASSERT(!qlink_queued(&op->backend_link)); /* in none of the backend's lists */
  queue_push(&sink->ops, &op->backend_link);
}

void sink_op_done(backend_sink *sink, tcp_op *op, int64_t result) {
  ZT_ASSERT(result >= 0);
  op->result = result;
  op->os_error = 0;
  sink_push(sink, op);
}

void sink_op_error(backend_sink *sink, tcp_op *op, int64_t os_error) {
  op->result = error_from_os(os_error);
  op->os_error = os_error;
  sink_push(sink, op);
}

void sink_op_failed(backend_sink *sink, tcp_op *op, int32_t code, int64_t os_error) {
  ZT_ASSERT(code < 0);
  op->result = code;
  op->os_error = os_error;
  sink_push(sink, op);
}

void sink_op_cancelled(backend_sink *sink, tcp_op *op) {
  ZT_ASSERT(op->cancel_sent);
  op->ended_by_cancel = true;
  op->result = TCP_ERR_CLOSED;
  op->os_error = OS_ERROR_CANCELLED;
  sink_push(sink, op);
}

void sink_accept_done(backend_sink *sink, tcp_op *op, os_socket fd) {
  ZT_ASSERT(op->kind == OP_ACCEPT && fd != OS_SOCKET_INVALID);
  op->accepted_fd = fd;
  sink_op_done(sink, op, 0);
}

void sink_sock_released(backend_sink *sink, tcp_sock *s) {
  ZT_ASSERT(on_io_thread);
  ZT_ASSERT(s->release_requested && !qlink_queued(&s->backend_link));
  queue_push(&sink->socks, &s->backend_link);
}

/* ---- one pass (I/O thread, lock held) ----------------------------------- */

static void end_reported(void) {
  qlink *l;
  while ((l = queue_pop(&L.sink.ops)) != NULL) {
    tcp_op *op = QUEUE_ENTRY(l, tcp_op, backend_link);
    /* A cancel asked for after the backend finished the op is moot. */
    if (qlink_queued(&op->command_link)) queue_remove(&L.commands, &op->command_link);
    sock_op_ended(op);
  }
  while ((l = queue_pop(&L.sink.socks)) != NULL) sock_released(QUEUE_ENTRY(l, tcp_sock, backend_link));
}

static void expire_deadlines(void) {
  if (deadlines_first(&L.deadlines) == NULL) return;
  int64_t now = now_ms();
  tcp_op *op;
  while ((op = deadlines_first(&L.deadlines)) != NULL && op->deadline_ms <= now) {
    deadlines_remove(&L.deadlines, op);
    op->timed_out = true;
    if (!op->cancel_requested) loop_cancel(op);
  }
}

static void run_command(backend *b, tcp_op *op) {
  if (op->state == OP_STARTED && op->cancel_requested) {
    /* Cancelled before the backend ever saw it: it ends here. */
    op->ended_by_cancel = true;
    op->result = TCP_ERR_CLOSED;
    op->os_error = OS_ERROR_CANCELLED;
    sock_op_ended(op);
  } else if (op->state == OP_STARTED) {
    op->state = OP_SUBMITTED;
    b->vtable->submit(b, op);
  } else {
    ZT_ASSERT(op->state == OP_SUBMITTED && op->cancel_requested && !op->cancel_sent);
    ZT_ASSERT(!qlink_in(&op->backend_link, &L.sink.ops)); /* reported ops were ended first */
    op->cancel_sent = true;
    b->vtable->cancel(b, op);
  }
}

static void run_commands(void) {
  backend *b = L.backend;
  qlink *l;
  while ((l = queue_pop(&L.commands)) != NULL) run_command(b, QUEUE_ENTRY(l, tcp_op, command_link));
  while ((l = queue_pop(&L.releases)) != NULL) {
    tcp_sock *s = QUEUE_ENTRY(l, tcp_sock, command_link);
    ZT_ASSERT(s->inflight == 0);
    b->vtable->release(b, s);
  }
}

/* Everything that needs no OS wait, until none is left. */
static void settle(void) {
  do {
    end_reported();
    expire_deadlines();
    run_commands();
  } while (!queue_empty(&L.sink.ops) || !queue_empty(&L.sink.socks) || !queue_empty(&L.commands) ||
           !queue_empty(&L.releases));
}

/* Posts the pass's completions without the lock, then retires them. */
static void post_done(void) {
  queue posted = {0};
  qlink *l;
  while ((l = queue_pop(&L.done)) != NULL) queue_push(&posted, l);
  engine_unlock();
  dart_post_ops(&posted);
  engine_lock();
  while ((l = queue_pop(&posted)) != NULL) op_free(QUEUE_ENTRY(l, tcp_op, core_link));
  L.trim_due = true;
}

/* Idle memory. A busy time frees many read buffers, often on other threads
 * (the VM's finalizers), and allocators keep such memory resident for reuse:
 * measured, 10,000 connections that each echoed 32 KiB then idled kept 27 KiB
 * each on the uv backend. Once the loop has had nothing to do for
 * IDLE_TRIM_MS, it hands that memory back -- never while traffic flows. */
static int64_t trim_wait_ms(int64_t wait_ms) {
  if (!L.trim_due) return wait_ms;
  return wait_ms < 0 || wait_ms > L.idle_trim_ms ? L.idle_trim_ms : wait_ms;
}

static bool work_waiting(void);

static void trim_when_idle(uint32_t work_seen, int64_t waited_ms, int64_t asked_ms) {
  if (!L.trim_due || asked_ms != L.idle_trim_ms || waited_ms < L.idle_trim_ms) return;
  if (atomic_load_explicit(&L.work_added, memory_order_relaxed) != work_seen || work_waiting()) return;
  L.trim_due = false;
  engine_unlock();
  backend *b = L.backend;
  if (b->vtable->trim != NULL) b->vtable->trim(b);
  plat_release_free_memory();
  engine_lock();
}

/* -1 (no deadline) or the milliseconds until the nearest one. */
static int64_t wait_ms(void) {
  tcp_op *first = deadlines_first(&L.deadlines);
  if (first == NULL) return -1;
  int64_t left = first->deadline_ms - now_ms();
  return left > 0 ? left : 0;
}

/* Before the I/O thread waits: yields the CPU (lock released) a few times
 * while the backend has nothing poll would find at once and no caller added
 * work. */
static void linger(uint32_t work_seen) {
  backend *b = L.backend;
  if (b->vtable->events_ready == NULL) return;
  engine_unlock();
  for (int i = 0; i < LINGER_YIELDS && !b->vtable->events_ready(b); i++) {
    if (atomic_load_explicit(&L.work_added, memory_order_relaxed) != work_seen) break;
    plat_yield();
  }
  engine_lock();
}

/* Lock held: anything the next pass would do without the OS? */
static bool work_waiting(void) {
  return !queue_empty(&L.commands) || !queue_empty(&L.releases) || !queue_empty(&L.done) ||
         !queue_empty(&L.sink.ops) || !queue_empty(&L.sink.socks);
}

static void poll_backend(int64_t timeout_ms) {
  backend *b = L.backend;
  L.parked = timeout_ms != 0;
  L.wake_sent = false;
  engine_unlock();
  b->vtable->poll(b, timeout_ms);
  engine_lock();
  L.parked = false;
}

static void io_thread_main(void *arg) {
  (void)arg;
  on_io_thread = true;
  backend *b = L.backend;
  if (b->vtable->thread_begin != NULL) b->vtable->thread_begin(b);
  engine_lock();
  for (;;) {
    settle();
    if (!queue_empty(&L.done)) {
      post_done();
      continue;
    }
    if (engine_stopping() && handles_live() == 0) break;
    uint32_t work_seen = atomic_load_explicit(&L.work_added, memory_order_relaxed);
    linger(work_seen);
    /* Work added (or a stop asked for) while the lock was released in the
     * linger: take it first. From here on, under the lock, a caller that adds
     * work sees "parked" and wakes the backend. */
    if (atomic_load_explicit(&L.work_added, memory_order_relaxed) != work_seen || work_waiting()) continue;
    /* Also hands the OS what this pass submitted: with io_uring, one
     * io_uring_enter submits and waits. */
    int64_t asked_ms = trim_wait_ms(wait_ms());
    int64_t before_ms = plat_now_ms();
    poll_backend(asked_ms);
    if (queue_empty(&L.sink.ops) && queue_empty(&L.sink.socks))
      trim_when_idle(work_seen, plat_now_ms() - before_ms, asked_ms);
  }
  ZT_ASSERT(queue_empty(&L.commands) && queue_empty(&L.releases) && queue_empty(&L.done));
  ZT_ASSERT(deadlines_first(&L.deadlines) == NULL);
  engine_unlock();
}

bool loop_start(backend *b) {
  ASSERT_LOCKED();
  ZT_ASSERT(queue_empty(&L.commands) && queue_empty(&L.done) && queue_empty(&L.sink.ops));
  L.backend = b;
  L.parked = L.wake_sent = false;
  const char *trim_env = getenv("ZIG_TCP_IDLE_TRIM_MS");
  L.idle_trim_ms = trim_env != NULL && atoi(trim_env) > 0 ? atoi(trim_env) : IDLE_TRIM_MS;
  return plat_thread_start(&L.thread, io_thread_main, NULL);
}

void loop_notify_stop(void) {
  ASSERT_LOCKED();
  notify();
}

void loop_join(void) {
  plat_thread_join(L.thread);
  engine_lock();
  deadlines_free(&L.deadlines);
  L.backend = NULL;
  engine_unlock();
}
