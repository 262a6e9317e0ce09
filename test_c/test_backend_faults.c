/*
 * test_backend_faults.c -- what callers get when the io_uring backend's
 * io_uring_enter fails (issue 16 item 2). The failures are injected with
 * ZIG_TCP_URING_FAULT=ERRNO@N: io_uring_enter fails once with ERRNO, the first
 * time N ops are in the kernel. Other backends skip these tests (named reason).
 *   lost completions (EBADR) and persistent errors (EBADFD): every pending op
 *     completes with TCP_ERR_BACKEND_FAILED, later ops too, close and
 *     tcp_shutdown still complete -- nothing hangs;
 *   transient errors (EBUSY): nothing is lost, every op completes normally.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "test_list.h"

#if defined(_WIN32)
void test_uring_lost_completions(void) { SKIP("io_uring only (backend is %s)", tcp_backend_name()); }
void test_uring_ring_broken(void) { SKIP("io_uring only (backend is %s)", tcp_backend_name()); }
void test_uring_transient_busy(void) { SKIP("io_uring only (backend is %s)", tcp_backend_name()); }
#else


typedef struct three_pending {
  int64_t listener, client, server;
  int64_t accept_id, client_read, server_read;
} three_pending;

/* A connected pair, then an accept and a read on each end: three ops in the
 * kernel, the point where the injected failure strikes. */
static three_pending start_three(int64_t port) {
  three_pending t;
  t.listener = h_pair(port, port, H_LOOPBACK4, 4, &t.client, &t.server);
  t.accept_id = h_accept(t.listener);
  t.client_read = h_read(t.client, 100);
  t.server_read = h_read(t.server, 100);
  return t;
}

static void expect_failed(int64_t id, int64_t os_error) {
  h_req *r = h_await(id);
  CHECK_EQ(r->c.result, TCP_ERR_BACKEND_FAILED);
  CHECK_EQ(r->c.payload_int, os_error);
}

static void ring_fails_for_good(const char *fault, int64_t os_error) {
  int64_t port = h_port();
  three_pending t = start_three(port);
  expect_failed(t.accept_id, os_error);
  expect_failed(t.client_read, os_error);
  expect_failed(t.server_read, os_error);
  /* Later operations are accepted and fail the same way, at once. */
  h_req *r = h_await(h_read(t.client, 10));
  CHECK_EQ(r->c.result, TCP_ERR_BACKEND_FAILED);
  h_req *w = h_await(h_write(t.server, "x", 1));
  CHECK_EQ(w->c.result, TCP_ERR_BACKEND_FAILED);
  CHECK(strcmp(tcp_strerror(TCP_ERR_BACKEND_FAILED), "unknown error") != 0);
  /* Closing still works; the runner's tcp_shutdown must return. */
  h_close_wait(t.client);
  h_close_wait(t.server);
  h_close_wait(t.listener);
  (void)fault;
}

void test_uring_lost_completions(void) {
  h_engine_restart_with_fault("io_uring", "ZIG_TCP_URING_FAULT", "EBADR@3");
  ring_fails_for_good("EBADR", EBADR);
}

void test_uring_ring_broken(void) {
  h_engine_restart_with_fault("io_uring", "ZIG_TCP_URING_FAULT", "EBADFD@3");
  ring_fails_for_good("EBADFD", EBADFD);
}

void test_uring_transient_busy(void) {
  h_engine_restart_with_fault("io_uring", "ZIG_TCP_URING_FAULT", "EBUSY@3");
  int64_t port = h_port();
  three_pending t = start_three(port);
  /* Nothing was lost: each pending op completes with its real result. */
  h_write_all(t.client, "ping", 4);
  h_req *sr = h_await(t.server_read);
  CHECK_EQ(sr->c.result, 4);
  CHECK(memcmp(sr->c.data, "ping", 4) == 0);
  h_write_all(t.server, "pong", 4);
  h_req *cr = h_await(t.client_read);
  CHECK_EQ(cr->c.result, 4);
  CHECK(memcmp(cr->c.data, "pong", 4) == 0);
  int64_t second = 0;
  h_await(h_connect(port, H_LOOPBACK4, 4, tcp_local_port(t.listener), 0, &second));
  int64_t accepted = h_accepted(t.accept_id);
  CHECK(accepted > 0);
  h_close_wait(second);
  h_close_wait(accepted);
  h_close_wait(t.client);
  h_close_wait(t.server);
  h_close_wait(t.listener);
}
#endif /* !_WIN32 */
