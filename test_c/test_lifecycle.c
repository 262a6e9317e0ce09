/*
 * test_lifecycle.c -- the engine's life: init and shutdown, the DL API table,
 * error names, concurrent init, shutdown with work pending.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "harness.h"
#include "test_list.h"
#include "raw_socket.h"
#include "threads.h"

/* ---- engine lifetime and the DL API table --------------------------------- */
void test_lifecycle(void) {
  const char *name = tcp_backend_name();
  CHECK(name != NULL);
  CHECK(strcmp(name, "io_uring") == 0 || strcmp(name, "uv") == 0 || strcmp(name, "iocp") == 0);
  CHECK_EQ(tcp_init(fake_dart_api_data()), TCP_OK); /* idempotent while running */
  h_engine_shutdown();
  CHECK(tcp_backend_name() == NULL);
  CHECK_EQ(tcp_shutdown(), TCP_ERR_NOT_INITIALIZED);
  int64_t port = h_port();
  CHECK_EQ(tcp_listen(port, H_LOOPBACK4, 4, 0, 0, 1, 0), TCP_ERR_NOT_INITIALIZED);
  CHECK_EQ(tcp_connect(port, h_new_id(), H_LOOPBACK4, 4, 9, NULL, 0, 0, 0), TCP_ERR_NOT_INITIALIZED);
  CHECK_EQ(tcp_read(1, h_new_id(), 10), TCP_ERR_NOT_INITIALIZED);

  /* DL API data the engine must refuse */
  CHECK_EQ(tcp_init(NULL), TCP_ERR_DART_API);
  static const dart_api_dl_entry only_other[] = {{"Dart_PostInteger", NULL}, {NULL, NULL}};
  static const dart_api_dl_entry good[] = {
      {"Dart_PostInteger", NULL},
      {DART_POST_COBJECT_NAME, (void (*)(void))fake_dart_post_cobject},
      {NULL, NULL}};
  dart_api_dl_data wrong_major = {DART_DL_MAJOR_VERSION + 1, 0, good};
  CHECK_EQ(tcp_init(&wrong_major), TCP_ERR_DART_API);
  dart_api_dl_data missing = {DART_DL_MAJOR_VERSION, 3, only_other};
  CHECK_EQ(tcp_init(&missing), TCP_ERR_DART_API);
  dart_api_dl_data no_table = {DART_DL_MAJOR_VERSION, 0, NULL};
  CHECK_EQ(tcp_init(&no_table), TCP_ERR_DART_API);
  CHECK(tcp_backend_name() == NULL);

  /* a table with other entries first and a newer minor version is fine */
  dart_api_dl_data newer = {DART_DL_MAJOR_VERSION, 7, good};
  CHECK_EQ(tcp_init(&newer), TCP_OK);
  h_engine_started();
  CHECK(tcp_backend_name() != NULL);
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  h_write_all(c, "ping", 4);
  uint8_t buf[4];
  h_read_exact(s, buf, 4);
  CHECK(memcmp(buf, "ping", 4) == 0);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

void test_strerror(void) {
  static const int64_t codes[] = {
      TCP_OK, TCP_ERR_INVALID_ARGUMENT, TCP_ERR_BAD_HANDLE, TCP_ERR_CLOSED, TCP_ERR_NOT_INITIALIZED,
      TCP_ERR_SHUTDOWN, TCP_ERR_NO_MEMORY, TCP_ERR_UNSUPPORTED, TCP_ERR_DART_API,
      TCP_ERR_ADDRESS_IN_USE, TCP_ERR_ADDRESS_NOT_AVAILABLE, TCP_ERR_CONNECTION_REFUSED,
      TCP_ERR_CONNECTION_RESET, TCP_ERR_CONNECTION_ABORTED, TCP_ERR_TIMED_OUT,
      TCP_ERR_NETWORK_UNREACHABLE, TCP_ERR_HOST_UNREACHABLE, TCP_ERR_BROKEN_PIPE,
      TCP_ERR_ACCESS_DENIED, TCP_ERR_TOO_MANY_FILES, TCP_ERR_NOT_CONNECTED, TCP_ERR_ADDRESS_FAMILY,
      TCP_ERR_OS};
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    const char *s = tcp_strerror(codes[i]);
    if (s == NULL || s[0] == '\0') FAILF("tcp_strerror(%lld) is empty", (long long)codes[i]);
    for (size_t k = 0; k < i; k++)
      if (strcmp(s, tcp_strerror(codes[k])) == 0)
        FAILF("tcp_strerror(%lld) == tcp_strerror(%lld) == \"%s\"", (long long)codes[i],
              (long long)codes[k], s);
  }
  CHECK(tcp_strerror(-12345) != NULL);
  CHECK(tcp_strerror(INT64_MIN) != NULL);
  CHECK(tcp_strerror(77) != NULL);
}

/* ---- concurrent init ------------------------------------------------------ */
static int32_t g_init_rc[4];
THREAD_FN(init_main) {
  int i = (int)(intptr_t)arg;
  g_init_rc[i] = tcp_init(fake_dart_api_data());
  THREAD_RETURN;
}

void test_concurrent_init(void) {
  h_engine_shutdown();
  h_thread th[4];
  int started = 0;
  for (; started < 4; started++)
    if (!thread_start(&th[started], init_main, (void *)(intptr_t)started)) break;
  for (int i = 0; i < started; i++) thread_join(th[i]);
  h_engine_started(); /* whatever happened, the runner shuts it down */
  CHECK_EQ(started, 4);
  for (int i = 0; i < 4; i++) CHECK_EQ(g_init_rc[i], TCP_OK);
  CHECK(tcp_backend_name() != NULL);
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  uint8_t b = 0;
  h_write_all(c, "i", 1);
  h_read_exact(s, &b, 1);
  CHECK_EQ(b, 'i');
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
  h_engine_shutdown();
  CHECK_EQ(tcp_shutdown(), TCP_ERR_NOT_INITIALIZED); /* exactly one engine ran */
}

/* ---- engine shutdown with work pending ------------------------------------------------- */
void test_shutdown_with_pending(void) {
  int64_t port = h_port();
  int64_t l = h_listen_any(port, 0);
  int64_t l2 = h_listen_any(port, 0);
  h_endpoint ep = h_endpoint_of(l);
  /* a peer the engine does not own, so nothing but the shutdown can end the
   * pending operations */
  raw_sock raw = h_raw_connect(&ep);
  int64_t s = h_accepted(h_accept(l));
  int64_t a2 = h_accept(l);
  int64_t r = h_read(s, 4096);
  const size_t n = (size_t)64 << 20;
  uint8_t *big = (uint8_t *)calloc(1, n);
  CHECK(big != NULL);
  int64_t w = h_write(s, big, (int64_t)n);
  free(big);
  int64_t w2 = h_write(s, "tail", 4);
  int64_t cl2 = h_close(l2);
  h_engine_shutdown();
  CHECK_EQ(h_result(a2), TCP_ERR_SHUTDOWN);
  CHECK_EQ(h_result(r), TCP_ERR_SHUTDOWN);
  CHECK_EQ(h_result(w), TCP_ERR_SHUTDOWN);
  CHECK_EQ(h_result(w2), TCP_ERR_SHUTDOWN);
  CHECK_EQ(h_result(cl2), 0);
  raw_closesocket(raw);
  /* down: everything says so */
  CHECK_EQ(tcp_read(s, h_new_id(), 10), TCP_ERR_NOT_INITIALIZED);
  CHECK_EQ(tcp_close(l, h_new_id()), TCP_ERR_NOT_INITIALIZED);
  /* up again: the old handles stay dead */
  h_engine_init();
  int32_t rc = tcp_read(s, h_new_id(), 10);
  CHECK(rc == TCP_ERR_CLOSED || rc == TCP_ERR_BAD_HANDLE);
  rc = tcp_close(l, h_new_id());
  CHECK(rc == TCP_ERR_CLOSED || rc == TCP_ERR_BAD_HANDLE);
  rc = tcp_local_path(l, ep.path, TCP_UNIX_PATH_BYTES_MAX);
  CHECK(rc == TCP_ERR_CLOSED || rc == TCP_ERR_BAD_HANDLE);
  /* and the new engine works */
  int64_t c3, s3;
  int64_t l3 = h_pair_any(port, port, &c3, &s3);
  CHECK(c3 != s && s3 != s && l3 != l);
  uint8_t b = 0;
  h_write_all(c3, "z", 1);
  h_read_exact(s3, &b, 1);
  CHECK_EQ(b, 'z');
  h_close_wait(c3);
  h_close_wait(s3);
  h_close_wait(l3);
}
