/*
 * runner.h -- the test runner of the C suite, usable by any C test program
 * that links the harness (runner.c, tracker.c, tracked_calls.c, fake_dart.c).
 *
 * Tests are plain functions; CHECK* and SKIP leave a test with longjmp, so
 * helpers at any depth can fail it. h_run_test runs one test on a fresh engine
 * (tcp_init before, tcp_shutdown after) and a reset fake VM, and then applies
 * the tracker's checks (tracker.h); h_run_tests runs a list of them and prints
 * one line per test and the summary `N passed, N failed`.
 */
#ifndef ZIG_TCP_RUNNER_H
#define ZIG_TCP_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef void (*test_fn)(void);

/* The transport a test runs over (endpoint.h): a transport-neutral test runs
 * once per transport; every other test runs once, with H_TCP. */
typedef enum h_transport { H_TCP = 0, H_UNIX = 1 } h_transport;

typedef struct h_test {
  const char *name;
  test_fn fn;
  h_transport transport;
} h_test;

/* The transport of the test that runs now. */
extern h_transport h_transport_now;

typedef enum h_outcome { H_PASS, H_FAIL, H_SKIP } h_outcome;

void h_fail_at(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4), noreturn))
#endif
    ;
void h_skip(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;

#define FAILF(...) h_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define SKIP(...) h_skip(__VA_ARGS__)
#define CHECK(cond)                                   \
  do {                                                \
    if (!(cond)) FAILF("check failed: %s", #cond);    \
  } while (0)
/* Compares two integers; error codes are printed by name. */
#define CHECK_EQ(got, want)                                                              \
  do {                                                                                   \
    long long got_ = (long long)(got), want_ = (long long)(want);                        \
    if (got_ != want_)                                                                   \
      FAILF("%s: got %lld (%s), expected %lld (%s)", #got, got_, h_code_name(got_), want_, \
            h_code_name(want_));                                                         \
  } while (0)

/* "TCP_ERR_CLOSED" for -3, "" for anything that is not an error code. */
const char *h_code_name(long long code);

/* The bound on every wait for a completion (ms). TCP_SUITE_TIMEOUT_MS sets it
 * (h_runner_configure). */
extern int64_t h_timeout_ms;

/* Reads the runner's settings from the environment (TCP_SUITE_TIMEOUT_MS). */
void h_runner_configure(void);

/* Runs fn after the current test's checks, before the next test starts
 * (cleanup of what a helper set up: a network namespace, ...). Registering
 * the same fn twice in one test runs it once. */
void h_at_test_end(void (*fn)(void));

/* Runs fn right after the current test's body has returned or failed, before
 * the tracker's checks shut the engine down (a program that paces the I/O
 * thread, such as the simulation test, lets it run freely here). Same rules
 * as h_at_test_end; fn must not fail the test. */
void h_after_body(void (*fn)(void));
/* The running test's first failure ("why (file:line)"), or NULL while it has
 * not failed (for an after-body function that reports early). */
const char *h_failure(void);

/* Runs one test: reset fake VM, tcp_init, fn, then the tracker's checks
 * (h_tracker_finish), the test-end functions and a reset of tracker and fake
 * VM. The reason of a failure or skip goes to msg (may be NULL). */
h_outcome h_run_test(test_fn fn, char *msg, size_t msg_size);

/* Prints the names of tests, one a line. */
void h_list_tests(const h_test *tests, size_t n);

/* Runs the tests whose name contains any of the words in argv[1..] (all when
 * there are none; arguments starting with '-' are not words), printing
 * "PASS name", "FAIL name: why" or "SKIP name: why" per test and last
 * "N passed, N failed" (", N skipped"). Returns the exit code: 1 if any test
 * failed. */
int h_run_tests(const h_test *tests, size_t n, int argc, char **argv);

#endif /* ZIG_TCP_RUNNER_H */
