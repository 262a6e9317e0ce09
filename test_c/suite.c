/*
 * suite.c -- the backend-agnostic C test suite of zig_tcp: its main.
 *
 *   tcp_suite                 run every test
 *   tcp_suite WORD...         run the tests whose name contains any WORD
 *   tcp_suite --list          list the tests
 *
 * Prints "backend: NAME" first, one line per test, and "N passed, N failed"
 * (", N skipped") last; exits 1 if any test failed.
 * ZIG_TCP_BACKEND picks the backend on Linux (io_uring | uv);
 * TCP_SUITE_TIMEOUT_MS bounds every wait for a completion (default 20000);
 * TCP_SUITE_NO_NETNS=1 makes the connect-timeout tests use a listener with a
 * full backlog instead of a network namespace that drops SYNs.
 *
 * Transport-neutral tests run twice, NAME_tcp and NAME_unix (test_list.h).
 * The tests are listed in test_list.h and live in the test_*.c files, one per
 * topic; the harness (runner, tracker, tracked calls) is in harness.h.
 */
#include <stdio.h>
#include <string.h>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#endif

#include "harness.h"
#include "test_list.h"

static const h_test g_tests[] = {
#define TCP_SUITE_ENTRY(name) {#name, test_##name, H_TCP},
#define TCP_SUITE_ENTRY_BOTH(name) {#name "_tcp", test_##name, H_TCP}, {#name "_unix", test_##name, H_UNIX},
    TCP_SUITE_TESTS(TCP_SUITE_ENTRY, TCP_SUITE_ENTRY_BOTH)
#undef TCP_SUITE_ENTRY_BOTH
#undef TCP_SUITE_ENTRY
};
static const size_t g_ntests = sizeof g_tests / sizeof g_tests[0];

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  h_runner_configure();
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--list") == 0) {
      h_list_tests(g_tests, g_ntests);
      return 0;
    }
#if defined(_WIN32)
  WSADATA wsa;
  WSAStartup(MAKEWORD(2, 2), &wsa);
#endif

  int32_t rc = tcp_init(fake_dart_api_data());
  const char *name = tcp_backend_name();
  printf("backend: %s\n", rc == TCP_OK && name ? name : "(none)");
  if (rc == TCP_OK) tcp_shutdown();
  return h_run_tests(g_tests, g_ntests, argc, argv);
}
