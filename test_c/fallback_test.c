/* fallback_test.c -- proves the Linux library falls back from io_uring to
 * libuv at run time when io_uring cannot be set up, as in a container whose
 * seccomp profile blocks it. Each case runs in a child process that installs
 * a seccomp filter making io_uring_setup fail with EPERM, then starts the
 * engine and echoes bytes over loopback.
 *
 * Prints one line per case and `N passed, N failed`. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_dart.h"
#include "tcp.h"

#define WAIT_MS 10000

static int block_io_uring(void) {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program);
}

static bool next_for(int64_t port, int64_t request_id, fd_completion *c) {
  return fake_dart_next(port, WAIT_MS, c) && c->request_id == request_id;
}

/* One echo round trip over loopback; returns 0 on success. */
static int echo_once(void) {
  int64_t port = fake_dart_open_port();
  const uint8_t loopback[4] = {127, 0, 0, 1};
  int64_t listener = tcp_listen(port, loopback, 4, 0, 4, 0, 0);
  if (listener < 0) return 1;
  fd_completion accepted, connected, c;
  if (tcp_accept(listener, 1) != TCP_OK) return 2;
  int64_t client = tcp_connect(port, 2, loopback, 4, tcp_local_port(listener), NULL, 0, 0, 5000);
  if (client < 0) return 3;
  /* The two completions may arrive in either order. */
  if (!fake_dart_next(port, WAIT_MS, &accepted) || !fake_dart_next(port, WAIT_MS, &connected)) return 4;
  if (accepted.request_id == 2) {
    fd_completion t = accepted;
    accepted = connected;
    connected = t;
  }
  if (accepted.result <= 0 || connected.result != 0) return 5;
  if (tcp_write(client, 3, (const uint8_t *)"fallback", 8) != TCP_OK || !next_for(port, 3, &c) || c.result != 8)
    return 6;
  if (tcp_read(accepted.result, 4, 64) != TCP_OK || !next_for(port, 4, &c) || c.result != 8 ||
      memcmp(c.data, "fallback", 8) != 0)
    return 7;
  fake_dart_release(&c);
  return tcp_shutdown() == TCP_OK ? 0 : 8;
}

/* Runs body in a child with io_uring blocked; returns the child's exit code. */
static int in_blocked_child(int (*body)(void)) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    if (block_io_uring() != 0) _exit(90);
    _exit(body());
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 99;
  return WEXITSTATUS(status);
}

static int case_falls_back(void) {
  unsetenv("ZIG_TCP_BACKEND");
  if (syscall(__NR_io_uring_setup, 4, NULL) != -1 || errno != EPERM) return 10; /* filter works */
  if (tcp_init(fake_dart_api_data()) != TCP_OK) return 11;
  if (strcmp(tcp_backend_name(), "uv") != 0) return 12;
  return echo_once();
}

static int case_forced_io_uring_refused(void) {
  setenv("ZIG_TCP_BACKEND", "io_uring", 1);
  int32_t rc = tcp_init(fake_dart_api_data());
  if (rc != TCP_ERR_UNSUPPORTED) return 20;
  if (tcp_backend_name() != NULL) return 21;
  return 0;
}

static int case_unknown_backend_refused(void) {
  setenv("ZIG_TCP_BACKEND", "no_such_backend", 1);
  return tcp_init(fake_dart_api_data()) == TCP_ERR_UNSUPPORTED ? 0 : 30;
}

static int case_io_uring_default_unblocked(void) {
  unsetenv("ZIG_TCP_BACKEND");
  if (tcp_init(fake_dart_api_data()) != TCP_OK) return 40;
  if (strcmp(tcp_backend_name(), "io_uring") != 0) return 41;
  return echo_once();
}

int main(void) {
  struct {
    const char *name;
    int (*body)(void);
    bool blocked;
  } cases[] = {
      {"io_uring blocked by seccomp -> falls back to uv and echoes", case_falls_back, true},
      {"io_uring blocked, ZIG_TCP_BACKEND=io_uring -> TCP_ERR_UNSUPPORTED", case_forced_io_uring_refused, true},
      {"ZIG_TCP_BACKEND=no_such_backend -> TCP_ERR_UNSUPPORTED", case_unknown_backend_refused, true},
      {"io_uring available -> io_uring chosen by default and echoes", case_io_uring_default_unblocked, false},
  };
  int passed = 0, failed = 0;
  printf("backend: fallback\n");
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int code;
    if (cases[i].blocked) {
      code = in_blocked_child(cases[i].body);
    } else {
      fflush(stdout);
      pid_t pid = fork();
      if (pid == 0) _exit(cases[i].body());
      int status = 0;
      code = (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) ? WEXITSTATUS(status) : 99;
    }
    printf("%s %s%s\n", code == 0 ? "PASS" : "FAIL", cases[i].name, code == 0 ? "" : " (step code shown below)");
    if (code != 0) printf("  failed at step %d\n", code);
    if (code == 0) passed++;
    else failed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
