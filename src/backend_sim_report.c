/* backend_sim_report.c -- the simulation backend's seeded decisions and what
 * it reports: the PRNG, connection profiles and swarm knobs, the failures it
 * found and the event trace (see backend_sim.h). The report and the trace
 * outlive a sim instance, so the test reads them after tcp_shutdown. */
#if defined(ZIG_TCP_HAVE_SIM)

#include <stdarg.h>
#include <stdio.h>

#include "backend_sim_internal.h"
#include "byte_stream.h"

/* ---- report and trace (they outlive an instance) ------------------------- */

static pthread_mutex_t g_report_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  uint64_t failures;
  char first[512];
  uint64_t socks_live;
  uint64_t counters[SIM_C_COUNT];
  uint64_t trace_hash, trace_events;
  bool trace_print;
} R = {.trace_hash = BYTE_STREAM_FNV1A_INIT};

void sim_fail(const char *fmt, ...) {
  char text[sizeof R.first];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&g_report_mu);
  if (R.failures++ == 0) memcpy(R.first, text, sizeof text);
  bool print = R.trace_print;
  pthread_mutex_unlock(&g_report_mu);
  if (print) printf("  sim FAILURE: %s\n", text);
}

uint64_t sim_failures(char *first, size_t first_size) {
  pthread_mutex_lock(&g_report_mu);
  uint64_t n = R.failures;
  if (first != NULL && first_size > 0) snprintf(first, first_size, "%s", R.first);
  pthread_mutex_unlock(&g_report_mu);
  return n;
}

uint64_t sim_socks_live(void) {
  pthread_mutex_lock(&g_report_mu);
  uint64_t n = R.socks_live;
  pthread_mutex_unlock(&g_report_mu);
  return n;
}

void sim_count(sim_counter c) {
  pthread_mutex_lock(&g_report_mu);
  R.counters[c]++;
  pthread_mutex_unlock(&g_report_mu);
}

void sim_counters(uint64_t out[SIM_C_COUNT]) {
  pthread_mutex_lock(&g_report_mu);
  memcpy(out, R.counters, sizeof R.counters);
  pthread_mutex_unlock(&g_report_mu);
}

void sim_report_reset(void) {
  pthread_mutex_lock(&g_report_mu);
  R.failures = 0;
  R.first[0] = '\0';
  memset(R.counters, 0, sizeof R.counters);
  pthread_mutex_unlock(&g_report_mu);
}

void sim_count_socks_live(int delta) {
  pthread_mutex_lock(&g_report_mu);
  R.socks_live += (uint64_t)(int64_t)delta;
  pthread_mutex_unlock(&g_report_mu);
}

void sim_trace(const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  pthread_mutex_lock(&g_report_mu);
  R.trace_hash = byte_stream_fnv1a(R.trace_hash, (const uint8_t *)line, len);
  R.trace_hash = byte_stream_fnv1a(R.trace_hash, (const uint8_t *)"\n", 1);
  R.trace_events++;
  bool print = R.trace_print;
  pthread_mutex_unlock(&g_report_mu);
  if (print) printf("  %s\n", line);
}

void sim_trace_start(bool print) {
  pthread_mutex_lock(&g_report_mu);
  R.trace_hash = BYTE_STREAM_FNV1A_INIT;
  R.trace_events = 0;
  R.trace_print = print;
  pthread_mutex_unlock(&g_report_mu);
}

uint64_t sim_trace_hash(void) {
  pthread_mutex_lock(&g_report_mu);
  uint64_t h = R.trace_hash;
  pthread_mutex_unlock(&g_report_mu);
  return h;
}

uint64_t sim_trace_events(void) {
  pthread_mutex_lock(&g_report_mu);
  uint64_t n = R.trace_events;
  pthread_mutex_unlock(&g_report_mu);
  return n;
}

/* ---- PRNG, profiles and knobs ---------------------------------------------- */

uint64_t sim_rng_next(sim_rng *r) { return byte_stream_mix64(r->counter++); }
uint64_t sim_rng_below(sim_rng *r, uint64_t n) { return sim_rng_next(r) % n; }
uint64_t sim_rng_range(sim_rng *r, uint64_t lo, uint64_t hi) { return lo + sim_rng_below(r, hi - lo + 1); }
bool sim_rng_chance(sim_rng *r, uint32_t percent) { return sim_rng_below(r, 100) < percent; }

sim_profile sim_profile_of(uint64_t run_seed, int64_t handle) {
  sim_rng r = {byte_stream_mix64(run_seed ^ byte_stream_mix64((uint64_t)handle))};
  sim_profile p;
  p.read_seed = sim_rng_next(&r);
  p.write_seed = sim_rng_next(&r);
  uint64_t end = sim_rng_below(&r, 20);
  p.read_end = end < 8 ? SIM_READ_ENDLESS : end < 13 ? SIM_READ_EOF : end < 16 ? SIM_READ_RESET : SIM_READ_SILENT;
  p.read_end_offset = sim_rng_chance(&r, 20) ? sim_rng_below(&r, 16) : sim_rng_below(&r, 20000);
  p.write_limit = sim_rng_chance(&r, 70) ? SIM_NO_LIMIT : sim_rng_below(&r, 30000);
  p.write_end = sim_rng_chance(&r, 50) ? SIM_WRITE_RESET : SIM_WRITE_STALL;
  uint64_t connect = sim_rng_below(&r, 10);
  p.connect = connect < 6 ? SIM_CONNECT_OK : connect < 8 ? SIM_CONNECT_REFUSED : SIM_CONNECT_SILENT;
  return p;
}

sim_knobs sim_knobs_from(sim_rng *r) {
  sim_knobs k;
  k.inline_pct = (uint32_t)sim_rng_below(r, 91);
  k.delay_max = (uint32_t)sim_rng_range(r, 1, 6);
  k.cancel_now_w = (uint32_t)sim_rng_below(r, 11);
  k.cancel_later_w = (uint32_t)sim_rng_below(r, 11);
  k.cancel_race_w = (uint32_t)sim_rng_below(r, 11);
  if (k.cancel_now_w + k.cancel_later_w + k.cancel_race_w == 0) k.cancel_now_w = 1;
  k.release_now_pct = (uint32_t)sim_rng_below(r, 101);
  k.accept_error_pct = (uint32_t)sim_rng_below(r, 9);
  k.spontaneous_dial_pct = (uint32_t)sim_rng_below(r, 21);
  k.full_read_pct = (uint32_t)sim_rng_below(r, 101);
  k.full_write_pct = (uint32_t)sim_rng_below(r, 101);
  return k;
}

#endif /* ZIG_TCP_HAVE_SIM */
