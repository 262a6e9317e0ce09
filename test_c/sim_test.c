/*
 * sim_test.c -- the deterministic simulation test of the engine core: the
 * core driven through tcp.h by random programs on the simulation backend
 * (src/backend_sim.h), one seed at a time, in the spirit of TigerBeetle's
 * VOPR. What one seed does and checks: sim_program.h, sim_model.h.
 *
 *   sim_test                          seeds 1..20000, SIM_JOBS at a time
 *   SIM_SEEDS=N SIM_SEED_FIRST=K      seeds K..K+N-1
 *   SIM_DURATION_S=S                  long mode: seeds from SIM_SEED_FIRST on for S seconds
 *   SIM_SEED=N [SIM_TRACE=1]          replay one seed in this process (every event printed)
 *   SIM_JOBS=J                        seeds run at once (default: the CPUs)
 *   SIM_SEED_TIMEOUT_S=T              a seed that runs longer is a hang (default 120)
 *
 * Each seed runs in a child process of its own: a fresh process is what makes
 * a seed replay exactly with SIM_SEED=N (the handle table outlives an engine
 * restart, so a second seed in one process would see other handle values),
 * and a failed invariant (abort) or a hang fails that seed only. Before the
 * summary, one seed runs twice more and the hashes of their full event traces
 * must equal the first run's (the replay self-check). The last line is
 * `N passed, N failed`; the self-check counts as one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sim_program.h"

#define JOBS_MAX 64
#define FAILURES_SHOWN 20

typedef struct job {
  pid_t pid;
  int fd;
  uint64_t seed;
} job;

static struct {
  uint64_t seed_first, seeds, duration_s;
  unsigned timeout_s;
  int jobs, cpus;
  uint64_t passed, failed;
  uint64_t calls, steps, completions;
  uint64_t sim_counters[SIM_C_COUNT], outcomes[MO_COUNT];
  const char *program; /* argv[0], for the replay line */
  bool ipv6;
  bool have_check_hash;
  uint64_t check_hash, check_events; /* the first seed's, from the batch */
} T;

static uint64_t env_u64(const char *name, uint64_t fallback) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? strtoull(v, NULL, 0) : fallback;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool ipv6_available(void) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  close(fd);
  return true;
}

/* ---- one seed in a child ----------------------------------------------------------------------- */

static int g_result_fd = -1; /* the child's end of its result pipe */

/* A failed check, reported before the teardown: if a broken engine then
 * hangs in tcp_shutdown or aborts, the parent still learns why. */
static void report_early(const sim_seed_outcome *early) {
  ssize_t n = write(g_result_fd, early, sizeof *early);
  (void)n;
}

static void print_early(const sim_seed_outcome *early) {
  printf("failed (before the teardown): %s\n", early->message);
}

static void run_child(uint64_t seed, int fd, int cpu) {
  if (T.cpus > 1) {
    /* Test thread and I/O thread take turns: on one CPU a turn is a cheap
     * local switch, not a wake-up across CPUs. The I/O thread inherits it. */
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % T.cpus, &set);
    (void)sched_setaffinity(0, sizeof set, &set);
  }
  alarm(T.timeout_s); /* a hang (a lost wake, a close that never completes) kills the seed */
  g_result_fd = fd;
  sim_program_configure(T.ipv6, report_early);
  sim_seed_outcome out = sim_run_seed(seed, false);
  ssize_t n = write(fd, &out, sizeof out);
  (void)n;
  close(fd);
  exit(out.passed ? 0 : 1); /* exit, not _exit: LeakSanitizer checks at exit */
}

static job start_seed(uint64_t seed, int slot, const job *running, int nrunning) {
  int fds[2];
  if (pipe(fds) != 0) {
    perror("sim_test: pipe");
    exit(2);
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    perror("sim_test: fork");
    exit(2);
  }
  if (pid == 0) {
    close(fds[0]);
    for (int i = 0; i < nrunning; i++) close(running[i].fd);
    run_child(seed, fds[1], slot);
  }
  close(fds[1]);
  return (job){pid, fds[0], seed};
}

/* Reads the child's records (an early failure report, then the final one)
 * until it closed the pipe. Returns how many arrived whole. */
static size_t read_records(int fd, sim_seed_outcome records[2]) {
  size_t got = 0;
  ssize_t n;
  while (got < 2 * sizeof(sim_seed_outcome) &&
         ((n = read(fd, (char *)records + got, 2 * sizeof(sim_seed_outcome) - got)) > 0 || (n < 0 && errno == EINTR)))
    if (n > 0) got += (size_t)n;
  return got / sizeof(sim_seed_outcome);
}

static void describe_death(int status, char *text, size_t size) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    snprintf(text, size, "killed by signal %d (%s)%s", sig, strsignal(sig),
             sig == SIGABRT ? ": a failed invariant or sanitizer report, printed above"
             : sig == SIGALRM ? ": the seed hung" : "");
  } else {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    snprintf(text, size, "exited %d (a sanitizer report, printed above?)", code);
  }
}

/* What a finished child reported; or what it said before it died, and how. */
static sim_seed_outcome collect(const job *j, int status) {
  sim_seed_outcome records[2];
  memset(records, 0, sizeof records);
  size_t n = read_records(j->fd, records);
  close(j->fd);
  sim_seed_outcome out = n > 0 ? records[n - 1] : records[0];
  if (n > 0 && out.final && WIFEXITED(status) && WEXITSTATUS(status) == (out.passed ? 0 : 1)) return out;
  char death[200], said[sizeof out.message];
  describe_death(status, death, sizeof death);
  if (n == 0) said[0] = '\0';
  else if (out.final && out.passed) snprintf(said, sizeof said, "passed its checks, but then ");
  else snprintf(said, sizeof said, "%.600s; then%s ", out.message, out.final ? "" : ", in the teardown,");
  out.final = true;
  out.passed = false;
  snprintf(out.message, sizeof out.message, "%s%s", said, death);
  return out;
}

static void record(uint64_t seed, const sim_seed_outcome *out) {
  T.calls += out->calls;
  T.steps += out->steps;
  T.completions += out->completions;
  for (int i = 0; i < SIM_C_COUNT; i++) T.sim_counters[i] += out->sim_counters[i];
  for (int i = 0; i < MO_COUNT; i++) T.outcomes[i] += out->outcomes[i];
  if (seed == T.seed_first && out->passed) {
    T.have_check_hash = true;
    T.check_hash = out->trace_hash;
    T.check_events = out->trace_events;
  }
  if (out->passed) {
    T.passed++;
    return;
  }
  if (T.failed++ < FAILURES_SHOWN)
    printf("FAIL seed %llu: %s\n  replay: SIM_SEED=%llu SIM_TRACE=1 %s   (at the failure: trace hash %016llx, "
           "%llu events)\n",
           (unsigned long long)seed, out->message, (unsigned long long)seed, T.program,
           (unsigned long long)out->failure_hash, (unsigned long long)out->failure_events);
}

/* Waits for one child and records it; returns its slot. */
static int reap(job *running, int *nrunning) {
  int status = 0;
  pid_t pid;
  do {
    pid = waitpid(-1, &status, 0);
  } while (pid < 0 && errno == EINTR);
  for (int i = 0; i < *nrunning; i++) {
    if (running[i].pid != pid) continue;
    sim_seed_outcome out = collect(&running[i], status);
    record(running[i].seed, &out);
    running[i] = running[--*nrunning];
    return i;
  }
  fprintf(stderr, "sim_test: waitpid returned %d, not one of our seeds\n", (int)pid);
  exit(2);
}

/* ---- the batch --------------------------------------------------------------------------------- */

static bool more_seeds(uint64_t next, double start) {
  if (T.duration_s > 0) return now_s() - start < (double)T.duration_s;
  return next < T.seed_first + T.seeds;
}

static void run_batch(void) {
  job running[JOBS_MAX];
  int nrunning = 0, slot = 0;
  uint64_t next = T.seed_first;
  double start = now_s(), last_progress = start;
  while (more_seeds(next, start) || nrunning > 0) {
    while (nrunning < T.jobs && more_seeds(next, start)) {
      running[nrunning] = start_seed(next++, slot++, running, nrunning);
      nrunning++;
    }
    reap(running, &nrunning);
    if (T.duration_s > 0 && now_s() - last_progress >= 60) {
      last_progress = now_s();
      printf("sim: %llu seeds, %llu failed, %.0f seeds/s\n", (unsigned long long)(T.passed + T.failed),
             (unsigned long long)T.failed, (double)(T.passed + T.failed) / (last_progress - start));
    }
  }
  double took = now_s() - start;
  uint64_t seeds = T.passed + T.failed;
  printf("sim: %llu seeds in %.1f s (%.0f seeds/s, %d jobs): %llu calls, %llu steps, %llu completions checked\n",
         (unsigned long long)seeds, took, (double)seeds / (took > 0 ? took : 1), T.jobs,
         (unsigned long long)T.calls, (unsigned long long)T.steps, (unsigned long long)T.completions);
}

/* What the seeds exercised: a line to see at a glance that no path went dark. */
static void print_coverage(void) {
  static const char *const sim_names[SIM_C_COUNT] = {
      "ended in submit", "ended in a later pass", "short writes", "cancels at once", "cancels later",
      "cancels lost to a completion", "spontaneous dial-ins", "releases later", "clock jumps",
  };
  printf("sim did:");
  for (int i = 0; i < SIM_C_COUNT; i++)
    printf("%s %llu %s", i ? "," : "", (unsigned long long)T.sim_counters[i], sim_names[i]);
  printf("\ncompletions:");
  for (int i = 0; i < MO_COUNT; i++)
    printf("%s %llu %s", i ? "," : "", (unsigned long long)T.outcomes[i], m_outcome_names[i]);
  printf("\n");
}

/* One seed in a child, synchronously. */
static sim_seed_outcome run_forked(uint64_t seed) {
  job j = start_seed(seed, 0, NULL, 0);
  int status = 0;
  while (waitpid(j.pid, &status, 0) < 0 && errno == EINTR) {
  }
  return collect(&j, status);
}

/* The replay self-check: the first seed twice more, each trace hash equal to
 * the batch's. */
static void replay_check(void) {
  uint64_t seed = T.seed_first;
  sim_seed_outcome a = run_forked(seed), b = run_forked(seed);
  bool same = a.passed && b.passed && a.trace_hash == b.trace_hash && a.trace_events == b.trace_events &&
              (!T.have_check_hash || (a.trace_hash == T.check_hash && a.trace_events == T.check_events));
  printf("%s replay self-check: seed %llu three times, trace hashes %016llx %016llx %016llx (%llu events)\n",
         same ? "PASS" : "FAIL", (unsigned long long)seed, (unsigned long long)T.check_hash,
         (unsigned long long)a.trace_hash, (unsigned long long)b.trace_hash, (unsigned long long)a.trace_events);
  if (!a.passed || !b.passed) printf("  the seed failed: %s\n", a.passed ? b.message : a.message);
  if (same) T.passed++;
  else T.failed++;
}

static int replay_one(uint64_t seed, bool trace) {
  printf("sim: replaying seed %llu in this process%s\n", (unsigned long long)seed, trace ? ", tracing" : "");
  sim_seed_outcome out = sim_run_seed(seed, trace);
  printf("%s seed %llu: trace hash %016llx (%llu events), %llu calls, %llu steps, %llu completions%s%s\n",
         out.passed ? "PASS" : "FAIL", (unsigned long long)seed, (unsigned long long)out.trace_hash,
         (unsigned long long)out.trace_events, (unsigned long long)out.calls, (unsigned long long)out.steps,
         (unsigned long long)out.completions, out.passed ? "" : ": ", out.passed ? "" : out.message);
  if (!out.passed)
    printf("at the failure: trace hash %016llx, %llu events (the batch's FAIL line must show the same)\n",
           (unsigned long long)out.failure_hash, (unsigned long long)out.failure_events);
  printf("%d passed, %d failed\n", out.passed ? 1 : 0, out.passed ? 0 : 1);
  return out.passed ? 0 : 1;
}

int main(int argc, char **argv) {
  (void)argc;
  T.program = argv[0];
  setvbuf(stdout, NULL, _IOLBF, 0);
  setenv("ZIG_TCP_BACKEND", "sim", 1);
  h_runner_configure();
  T.ipv6 = ipv6_available();
  sim_program_configure(T.ipv6, print_early);
  if (getenv("SIM_SEED") != NULL) return replay_one(env_u64("SIM_SEED", 0), env_u64("SIM_TRACE", 0) != 0);
  T.seed_first = env_u64("SIM_SEED_FIRST", 1);
  T.seeds = env_u64("SIM_SEEDS", 20000);
  T.duration_s = env_u64("SIM_DURATION_S", 0);
  T.timeout_s = (unsigned)env_u64("SIM_SEED_TIMEOUT_S", 120);
  T.cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (T.cpus < 1) T.cpus = 1;
  T.jobs = (int)env_u64("SIM_JOBS", (uint64_t)T.cpus);
  if (T.jobs < 1) T.jobs = 1;
  if (T.jobs > JOBS_MAX) T.jobs = JOBS_MAX;
  if (T.duration_s > 0)
    printf("sim: long mode, seeds from %llu on for %llu s\n", (unsigned long long)T.seed_first,
           (unsigned long long)T.duration_s);
  else
    printf("sim: seeds %llu..%llu\n", (unsigned long long)T.seed_first,
           (unsigned long long)(T.seed_first + T.seeds - 1));
  run_batch();
  print_coverage();
  replay_check();
  printf("%llu passed, %llu failed\n", (unsigned long long)T.passed, (unsigned long long)T.failed);
  return T.failed == 0 ? 0 : 1;
}
