/* backend_sim_control.c -- the simulation backend's lifetime, its lockstep
 * poll (the meeting point of the test thread and the I/O thread; see LOCKSTEP
 * in backend_sim.h), its clock, and the control calls of the test. */
#if defined(ZIG_TCP_HAVE_SIM)

#include <stdio.h>
#include <stdlib.h>

#include "backend_sim_internal.h"
#include "byte_stream.h"

static uint64_t g_run_seed;
static sim_backend *g_live; /* the running instance, for the control calls */

/* ---- the lockstep poll, wake and the clock ------------------------------------------- */

/* The lockstep point (see backend_sim.h). Lock held. */
static void wait_for_turn(sim_backend *sb, int64_t timeout_ms) {
  sb->in_poll = true;
  pthread_cond_broadcast(&sb->test_cond);
  for (;;) {
    if (sb->mode == SIM_STEP && sb->grants > sb->steps_run) {
      sb->steps_run++;
      break;
    }
    if (sb->mode == SIM_FREE_ARMED && sb->wake_pending) sb->mode = SIM_FREE;
    if (sb->mode == SIM_FREE && (sb->wake_pending || timeout_ms >= 0 || sim_has_work(sb))) break;
    pthread_cond_wait(&sb->io_cond, &sb->mu);
  }
  sb->in_poll = false;
}

static void sim_poll(backend *b, int64_t timeout_ms) {
  sim_backend *sb = sim_self(b);
  sim_lock(sb);
  sim_check_io_thread(sb, "poll");
  wait_for_turn(sb, timeout_ms);
  sim_run_pass(sb, timeout_ms);
  sim_unlock(sb);
}

static void sim_wake(backend *b) {
  sim_backend *sb = sim_self(b);
  sim_lock(sb);
  sim_check_lockstep(sb, "wake");
  sb->wake_pending = true;
  pthread_cond_broadcast(&sb->io_cond);
  sim_unlock(sb);
}

static int64_t sim_backend_now_ms(backend *b) {
  sim_backend *sb = sim_self(b);
  sim_lock(sb);
  int64_t now = sb->now_ms;
  sim_unlock(sb);
  return now;
}

/* ---- lifetime ------------------------------------------------------------------------ */

static void sim_thread_begin(backend *b) {
  sim_backend *sb = sim_self(b);
  sim_lock(sb);
  sb->io_thread = pthread_self();
  sb->io_thread_known = true;
  sim_unlock(sb);
}

static int32_t sim_create(backend_sink *sink, backend **out) {
  sim_backend *sb = calloc(1, sizeof(*sb));
  if (sb == NULL) return TCP_ERR_NO_MEMORY;
  if (pthread_mutex_init(&sb->mu, NULL) != 0 || pthread_cond_init(&sb->io_cond, NULL) != 0 ||
      pthread_cond_init(&sb->test_cond, NULL) != 0) {
    free(sb); /* never fails on Linux: no attributes */
    return TCP_ERR_NO_MEMORY;
  }
  sb->base.vtable = &backend_sim;
  sb->base.sink = sink;
  sb->mode = SIM_STEP;
  sb->spontaneous = true;
  sb->run_seed = g_run_seed;
  sb->rng.counter = byte_stream_mix64(g_run_seed ^ 0x51a1u);
  sb->knobs = sim_knobs_from(&sb->rng);
  g_live = sb;
  *out = &sb->base;
  return TCP_OK;
}

static void sim_destroy(backend *b) {
  sim_backend *sb = sim_self(b);
  if (!queue_empty(&sb->pending) || !queue_empty(&sb->releasing) || !queue_empty(&sb->socks))
    sim_fail("destroy with %zu ops, %zu releases and %zu socket records left", sb->pending.len,
             sb->releasing.len, sb->socks.len);
  g_live = NULL;
  free(sb->due);
  pthread_cond_destroy(&sb->io_cond);
  pthread_cond_destroy(&sb->test_cond);
  pthread_mutex_destroy(&sb->mu);
  free(sb);
}

const backend_vtable backend_sim = {
    .name = "sim",
    .create = sim_create,
    .destroy = sim_destroy,
    .thread_begin = sim_thread_begin,
    .adopt = sim_adopt,
    .submit = sim_submit,
    .cancel = sim_cancel,
    .release = sim_release,
    .poll = sim_poll,
    .wake = sim_wake,
    .now_ms = sim_backend_now_ms,
};

/* ---- control (the test thread) ---------------------------------------------------------- */

void sim_configure(uint64_t run_seed) { g_run_seed = run_seed; }

static sim_backend *live(const char *call) {
  if (g_live == NULL) {
    fprintf(stderr, "sim: %s without a running sim engine (tcp_init with ZIG_TCP_BACKEND=sim)\n", call);
    abort();
  }
  return g_live;
}

void sim_sync(void) {
  sim_backend *sb = live("sim_sync");
  sim_lock(sb);
  while (!sb->in_poll) pthread_cond_wait(&sb->test_cond, &sb->mu);
  sim_unlock(sb);
}

void sim_step(void) {
  sim_backend *sb = live("sim_step");
  sim_lock(sb);
  if (sb->mode != SIM_STEP) sim_fail("sim_step after sim_free_run");
  while (!sb->in_poll) pthread_cond_wait(&sb->test_cond, &sb->mu);
  sb->grants++;
  pthread_cond_broadcast(&sb->io_cond);
  while (!(sb->in_poll && sb->steps_run == sb->grants)) pthread_cond_wait(&sb->test_cond, &sb->mu);
  sim_unlock(sb);
}

void sim_free_run(void) {
  sim_backend *sb = live("sim_free_run");
  sim_lock(sb);
  /* Else the wake that ends the lockstep may never come (the loop sent it
   * already) or come from another call than tcp_shutdown. */
  if (sb->mode != SIM_STEP || !sb->in_poll || sb->wake_pending)
    sim_fail("sim_free_run: the I/O thread must wait in poll with no wake pending (step first)");
  sb->mode = SIM_FREE_ARMED;
  pthread_cond_broadcast(&sb->io_cond);
  sim_unlock(sb);
}

void sim_free_run_now(void) {
  sim_backend *sb = g_live;
  if (sb == NULL) return;
  sim_lock(sb);
  sb->mode = SIM_FREE;
  pthread_cond_broadcast(&sb->io_cond);
  sim_unlock(sb);
}

bool sim_dial(int64_t listener_handle, uint32_t count) {
  sim_backend *sb = live("sim_dial");
  sim_lock(sb);
  sim_check_lockstep(sb, "sim_dial");
  bool found = false;
  for (qlink *l = sb->socks.head; l != NULL && !found; l = l->next) {
    sim_sock *ss = QUEUE_ENTRY(l, sim_sock, all_link);
    if (ss->handle == listener_handle && ss->listener && !ss->released) {
      ss->dials += count;
      found = true;
    }
  }
  sim_unlock(sb);
  return found;
}

void sim_spontaneous_dials(bool on) {
  sim_backend *sb = live("sim_spontaneous_dials");
  sim_lock(sb);
  sb->spontaneous = on;
  sim_unlock(sb);
}

int64_t sim_now_ms(void) { return sim_backend_now_ms(&live("sim_now_ms")->base); }

uint64_t sim_passes(void) {
  sim_backend *sb = live("sim_passes");
  sim_lock(sb);
  uint64_t n = sb->passes;
  sim_unlock(sb);
  return n;
}

#endif /* ZIG_TCP_HAVE_SIM */
