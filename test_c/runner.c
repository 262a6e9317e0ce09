/*
 * runner.c -- runs tests one by one, each on a fresh engine, and reports
 * them (see runner.h).
 */
#include "runner.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_dart.h"
#include "tcp.h"
#include "tracker.h"

static jmp_buf g_jmp;
static h_outcome g_outcome;
static char g_msg[1024];
int64_t h_timeout_ms = 20000;
h_transport h_transport_now = H_TCP;

#define TEST_END_FNS_MAX 8
static void (*g_test_end_fns[TEST_END_FNS_MAX])(void);
static size_t g_ntest_end_fns;

void h_fail_at(const char *file, int line, const char *fmt, ...) {
  char buf[800];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (g_outcome != H_FAIL) { /* keep the first failure */
    snprintf(g_msg, sizeof g_msg, "%s (%s:%d)", buf, file, line);
    g_outcome = H_FAIL;
  }
  longjmp(g_jmp, 1);
}

void h_skip(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_msg, sizeof g_msg, fmt, ap);
  va_end(ap);
  g_outcome = H_SKIP;
  longjmp(g_jmp, 1);
}

const char *h_code_name(long long code) {
  if (code >= 0) return "";
  switch (code) {
#define H_CODE_NAME_(name, value, text) \
  case name: return #name;
    TCP_ERRORS(H_CODE_NAME_)
#undef H_CODE_NAME_
    default: return code < 0 ? "?" : "";
  }
}

void h_runner_configure(void) {
  const char *t = getenv("TCP_SUITE_TIMEOUT_MS");
  if (t != NULL && atoll(t) > 0) h_timeout_ms = atoll(t);
}

void h_at_test_end(void (*fn)(void)) {
  for (size_t i = 0; i < g_ntest_end_fns; i++)
    if (g_test_end_fns[i] == fn) return;
  if (g_ntest_end_fns == TEST_END_FNS_MAX) FAILF("too many test-end functions (test bug)");
  g_test_end_fns[g_ntest_end_fns++] = fn;
}

static void run_test_end_fns(void) {
  for (size_t i = 0; i < g_ntest_end_fns; i++) g_test_end_fns[i]();
  g_ntest_end_fns = 0;
}

static void (*g_after_body_fns[TEST_END_FNS_MAX])(void);
static size_t g_nafter_body_fns;

void h_after_body(void (*fn)(void)) {
  for (size_t i = 0; i < g_nafter_body_fns; i++)
    if (g_after_body_fns[i] == fn) return;
  if (g_nafter_body_fns == TEST_END_FNS_MAX) FAILF("too many after-body functions (test bug)");
  g_after_body_fns[g_nafter_body_fns++] = fn;
}

const char *h_failure(void) { return g_outcome == H_FAIL ? g_msg : NULL; }

static void run_after_body_fns(void) {
  for (size_t i = 0; i < g_nafter_body_fns; i++) g_after_body_fns[i]();
  g_nafter_body_fns = 0;
}

/* The body: a fresh engine, then the test. Leaves by return or longjmp. */
static void run_body(test_fn fn) {
  if (setjmp(g_jmp) == 0) {
    int32_t irc = tcp_init(fake_dart_api_data());
    if (irc != TCP_OK) FAILF("tcp_init returned %d (%s)", (int)irc, h_code_name(irc));
    h_engine_started();
    fn();
  }
}

h_outcome h_run_test(test_fn fn, char *msg, size_t msg_size) {
  fake_dart_reset();
  g_outcome = H_PASS;
  g_msg[0] = '\0';
  run_body(fn);
  run_after_body_fns();
  /* teardown (also after a failure or a skip) */
  h_outcome outcome = g_outcome;
  char saved[sizeof g_msg];
  memcpy(saved, g_msg, sizeof saved);
  g_outcome = H_PASS;
  if (setjmp(g_jmp) == 0) h_tracker_finish();
  if (outcome == H_PASS && g_outcome == H_FAIL) {
    outcome = H_FAIL;
  } else {
    memcpy(g_msg, saved, sizeof saved);
  }
  h_engine_shutdown_unchecked(); /* h_tracker_finish failed before shutting down */
  run_test_end_fns();
  h_tracker_reset();
  fake_dart_reset();
  if (msg != NULL && msg_size > 0) snprintf(msg, msg_size, "%s", g_msg);
  return outcome;
}

void h_list_tests(const h_test *tests, size_t n) {
  for (size_t k = 0; k < n; k++) printf("%s\n", tests[k].name);
}

static bool selected(const char *name, int argc, char **argv) {
  bool any = false;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') continue;
    any = true;
    if (strstr(name, argv[i]) != NULL) return true;
  }
  return !any;
}

int h_run_tests(const h_test *tests, size_t n, int argc, char **argv) {
  int passed = 0, failed = 0, skipped = 0;
  static char msg[sizeof g_msg];
  for (size_t k = 0; k < n; k++) {
    if (!selected(tests[k].name, argc, argv)) continue;
    h_transport_now = tests[k].transport;
    switch (h_run_test(tests[k].fn, msg, sizeof msg)) {
      case H_PASS:
        passed++;
        printf("PASS %s\n", tests[k].name);
        break;
      case H_SKIP:
        skipped++;
        printf("SKIP %s: %s\n", tests[k].name, msg);
        break;
      default:
        failed++;
        printf("FAIL %s: %s\n", tests[k].name, msg);
        break;
    }
  }
  if (skipped)
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  else
    printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
