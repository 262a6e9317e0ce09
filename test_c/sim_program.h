/*
 * sim_program.h -- one seed of the simulation test (sim_program.c): a fresh
 * engine on the sim backend, a random program of tcp.h calls interleaved with
 * sim steps, a liveness phase, tcp_shutdown, and every check of sim_model.h,
 * the tracker's and the sim's own.
 */
#ifndef ZIG_TCP_SIM_PROGRAM_H
#define ZIG_TCP_SIM_PROGRAM_H

#include <stdbool.h>
#include <stdint.h>

#include "backend_sim.h"
#include "sim_model.h"

typedef struct sim_seed_outcome {
  bool final; /* false: an early report of a failure, before the teardown */
  bool passed;
  char message[900];    /* why it failed */
  uint64_t trace_hash;  /* FNV-1a over every event: equal for equal runs */
  uint64_t trace_events;
  /* A failed seed: the trace's hash when the check failed, before the
   * teardown (which free-runs, so the final hash of a failed seed is not
   * reproducible); a replay must show the same. */
  uint64_t failure_hash, failure_events;
  uint64_t calls, steps, completions;
  uint64_t sim_counters[SIM_C_COUNT]; /* what the sim did */
  uint64_t outcomes[MO_COUNT];        /* how the completions ended */
} sim_seed_outcome;

/* Whether IPv6 sockets can be made here (connects to ::1 then join the mix),
 * and who hears of a failure at once, before the teardown (which may hang
 * when the engine is broken); may be NULL. */
void sim_program_configure(bool ipv6, void (*on_failure)(const sim_seed_outcome *early));
/* Runs seed in this process (ZIG_TCP_BACKEND must be "sim"). With trace,
 * every call, step, sim decision and completion is printed. */
sim_seed_outcome sim_run_seed(uint64_t seed, bool trace);

#endif /* ZIG_TCP_SIM_PROGRAM_H */
