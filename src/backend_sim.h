/* backend_sim.h -- the control side of the simulation backend (backend_sim.c),
 * for the test program that drives it (test_c/sim_*.c).
 *
 * The simulation backend ("sim") is a scripted backend for testing the core:
 * it performs no network I/O and decides every outcome -- when an op
 * completes, how short a read or a write is, whether a connect succeeds, is
 * refused or never answers, how a cancel ends -- from one seeded PRNG. It is
 * compiled only into the simulation test (-DZIG_TCP_HAVE_SIM), never into a
 * shipped library, and runs only when forced (ZIG_TCP_BACKEND=sim).
 *
 * LOCKSTEP
 *   The test thread and the I/O thread never run at the same time, so a seed
 *   replays exactly. The sim's poll is the meeting point:
 *     step mode (from tcp_init on): poll waits until the test calls
 *       sim_step(), runs one pass, and sim_step() returns when the I/O thread
 *       is back in poll -- by then the loop has handed the sim every command
 *       of the pass and posted every completion. The test calls the engine
 *       only between sim_sync()/sim_step() and its next sim_step().
 *     free-run mode (sim_free_run, then tcp_shutdown): from the next wake on,
 *       polls run without waiting for steps; a poll with nothing to do still
 *       waits for a wake (a condition variable, no spinning).
 *
 * VIRTUAL TIME
 *   The loop's deadline clock (backend now_ms) is the sim's: every pass
 *   advances it by SIM_PASS_MS; a pass that finds nothing to do while the
 *   loop waits for a deadline jumps to that deadline.
 *
 * CONNECTION PROFILES
 *   What a connection's peer does follows from the run's seed and the
 *   connection's handle alone (sim_profile_of), so the test predicts it: the
 *   byte stream reads deliver, where that stream ends (EOF or a reset), how
 *   many written bytes the peer takes before it resets, and how a connect
 *   ends. Only the timing and the sizes come from the PRNG. */
#ifndef ZIG_TCP_BACKEND_SIM_H
#define ZIG_TCP_BACKEND_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_PASS_MS 1

/* ---- the seeded PRNG (SplitMix64 in counter mode) ------------------------ */

typedef struct sim_rng {
  uint64_t counter;
} sim_rng;

uint64_t sim_rng_next(sim_rng *r);
/* 0 .. n-1 (n > 0). */
uint64_t sim_rng_below(sim_rng *r, uint64_t n);
/* lo .. hi inclusive. */
uint64_t sim_rng_range(sim_rng *r, uint64_t lo, uint64_t hi);
/* true with probability percent / 100. */
bool sim_rng_chance(sim_rng *r, uint32_t percent);

/* ---- connection profiles --------------------------------------------------- */

typedef enum sim_read_end {
  SIM_READ_ENDLESS, /* the peer sends forever */
  SIM_READ_EOF,     /* the peer shuts down after read_end_offset bytes */
  SIM_READ_RESET,   /* the peer resets after read_end_offset bytes */
  SIM_READ_SILENT,  /* the peer goes quiet after read_end_offset bytes: reads then wait for ever */
} sim_read_end;

typedef enum sim_write_end {
  SIM_WRITE_RESET, /* the peer resets once it took write_limit bytes */
  SIM_WRITE_STALL, /* the peer stops reading there: the write waits for ever */
} sim_write_end;

typedef enum sim_connect_end {
  SIM_CONNECT_OK,
  SIM_CONNECT_REFUSED, /* ECONNREFUSED */
  SIM_CONNECT_SILENT,  /* never answers: only a cancel or the deadline ends it */
} sim_connect_end;

#define SIM_NO_LIMIT UINT64_MAX

typedef struct sim_profile {
  uint64_t read_seed;  /* byte_stream seed of what reads deliver */
  uint64_t write_seed; /* byte_stream seed the written bytes must follow */
  sim_read_end read_end;
  uint64_t read_end_offset;
  uint64_t write_limit; /* the peer takes this many bytes, then write_end; or SIM_NO_LIMIT */
  sim_write_end write_end;
  sim_connect_end connect;
} sim_profile;

sim_profile sim_profile_of(uint64_t run_seed, int64_t handle);

/* ---- control (the test thread) ---------------------------------------------- */

/* Before tcp_init: the seed of the next sim instance. */
void sim_configure(uint64_t run_seed);
/* After tcp_init: waits until the I/O thread is parked in its first poll. */
void sim_sync(void);
/* Runs exactly one poll pass (see LOCKSTEP). */
void sim_step(void);
/* Free-run from the next wake on (see LOCKSTEP); call before tcp_shutdown,
 * right after a sim_step() with no engine call in between, so that the wake
 * comes from tcp_shutdown itself and the run stays deterministic. */
void sim_free_run(void);
/* Free-run at once, whatever the state (the teardown after a failed check,
 * where determinism no longer matters). Does nothing without a sim engine. */
void sim_free_run_now(void);
/* Peers dial in: the listener gets count incoming connections for its
 * accepts. False if the sim has no such listener (closed, made up). */
bool sim_dial(int64_t listener_handle, uint32_t count);
/* Whether passes may also dial in on their own (the default: yes). */
void sim_spontaneous_dials(bool on);
/* The virtual clock (the loop's deadline clock). */
int64_t sim_now_ms(void);
/* Passes run since tcp_init. */
uint64_t sim_passes(void);

/* ---- what the sim found (valid across tcp_shutdown) -------------------------- */

/* How many contract violations the sim saw (a wrong write, an op submitted
 * twice, a release with ops in flight, a broken lockstep...); the first one's
 * text goes to first (may be NULL). */
uint64_t sim_failures(char *first, size_t first_size);
/* Per-socket records alive (adopted and not yet released and freed). */
uint64_t sim_socks_live(void);
/* What the sim did, for the test's coverage line. */
typedef enum sim_counter {
  SIM_C_ENDED_IN_SUBMIT,  /* an op ended inside submit */
  SIM_C_ENDED_IN_PASS,    /* an op ended in a later pass */
  SIM_C_SHORT_WRITES,     /* write chunks that left bytes for a later pass */
  SIM_C_CANCEL_AT_ONCE,   /* cancels that ended the op inside cancel */
  SIM_C_CANCEL_LATER,     /* cancels that ended the op passes later */
  SIM_C_CANCEL_LOST_RACE, /* cancelled ops that completed normally */
  SIM_C_DIALS,            /* peers that dialled in on their own */
  SIM_C_RELEASE_LATER,    /* releases reported passes later */
  SIM_C_TIME_JUMPS,       /* idle passes that jumped to the loop's deadline */
  SIM_C_COUNT,
} sim_counter;
void sim_counters(uint64_t out[SIM_C_COUNT]);
/* Forget failures and counters (before a new seed). */
void sim_report_reset(void);

/* ---- the event trace (both threads) -------------------------------------------- */

/* Adds one event (printf-style text) to the trace's hash; prints it when
 * tracing is on. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
void sim_trace(const char *fmt, ...);
void sim_trace_start(bool print);
uint64_t sim_trace_hash(void);
uint64_t sim_trace_events(void);

#endif /* ZIG_TCP_BACKEND_SIM_H */
