/* echo_demo.c -- an echo server and client on the zig_tcp engine, each on its
 * own "isolate" (a native port with its own thread), talking over loopback
 * the way Dart code would: every operation is a request id whose completion
 * arrives as a message on the port. Prints what both sides did.
 *
 *   echo_demo [messages] [bytes_per_message]      (defaults: 5, 32) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_dart.h"
#include "tcp.h"

#if defined(_WIN32)
#include <windows.h>
typedef HANDLE thread_t;
#else
#include <pthread.h>
typedef pthread_t thread_t;
#endif

#define WAIT_MS 10000

static int64_t server_port, client_port;
static int64_t listener;

/* Waits for the completion of request_id on port (completions of one port
 * arrive in the order the engine finished them; the demo has one request
 * outstanding per port at a time). */
static bool await(int64_t port, int64_t request_id, fd_completion *out, const char *what) {
  if (!fake_dart_next(port, WAIT_MS, out)) {
    printf("  !! %s: no completion within %d ms\n", what, WAIT_MS);
    return false;
  }
  if (out->request_id != request_id) {
    printf("  !! %s: completion for request %lld, expected %lld\n", what, (long long)out->request_id,
           (long long)request_id);
    return false;
  }
  if (out->result < 0) {
    printf("  !! %s failed: %s (OS error %lld)\n", what, tcp_strerror(out->result), (long long)out->payload_int);
    return false;
  }
  return true;
}

/* The server isolate: accept one connection, echo until EOF, close. */
static void serve(void) {
  fd_completion c;
  int64_t id = 100;
  if (tcp_accept(listener, ++id) != TCP_OK || !await(server_port, id, &c, "accept")) return;
  int64_t conn = c.result;
  uint8_t peer[16];
  int32_t peer_len = tcp_remote_address(conn, peer);
  printf("server: accepted a connection from port %d (%s)\n", tcp_remote_port(conn),
         peer_len == 4 ? "IPv4" : "IPv6");
  size_t echoed = 0;
  for (;;) {
    if (tcp_read(conn, ++id, 64 * 1024) != TCP_OK || !await(server_port, id, &c, "server read")) break;
    if (c.result == 0) {
      printf("server: end of stream after echoing %zu bytes; closing\n", echoed);
      break;
    }
    int64_t n = c.result;
    int32_t rc = tcp_write(conn, ++id, c.data, n);
    fake_dart_release(&c);
    if (rc != TCP_OK || !await(server_port, id, &c, "server write")) break;
    echoed += (size_t)n;
  }
  if (tcp_close(conn, ++id) == TCP_OK) await(server_port, id, &c, "server close");
}

#if defined(_WIN32)
static DWORD WINAPI server_thread(LPVOID arg) {
  (void)arg;
  serve();
  return 0;
}
#else
static void *server_thread(void *arg) {
  (void)arg;
  serve();
  return NULL;
}
#endif

int main(int argc, char **argv) {
  int messages = argc > 1 ? atoi(argv[1]) : 5;
  int message_bytes = argc > 2 ? atoi(argv[2]) : 32;
  if (messages < 1 || message_bytes < 1 || message_bytes > 1 << 20) {
    fprintf(stderr, "usage: echo_demo [messages >= 1] [bytes_per_message 1..1048576]\n");
    return 2;
  }
  int32_t rc = tcp_init(fake_dart_api_data());
  if (rc != TCP_OK) {
    fprintf(stderr, "tcp_init failed: %s\n", tcp_strerror(rc));
    return 1;
  }
  printf("engine: backend %s\n", tcp_backend_name());
  server_port = fake_dart_open_port();
  client_port = fake_dart_open_port();

  const uint8_t loopback[4] = {127, 0, 0, 1};
  listener = tcp_listen(server_port, loopback, 4, 0, 16, 0, 0);
  if (listener < 0) {
    fprintf(stderr, "listen failed: %s\n", tcp_strerror(listener));
    return 1;
  }
  int32_t port = tcp_local_port(listener);
  printf("server: listening on 127.0.0.1:%d\n", port);
  thread_t server;
#if defined(_WIN32)
  server = CreateThread(NULL, 0, server_thread, NULL, 0, NULL);
#else
  pthread_create(&server, NULL, server_thread, NULL);
#endif

  int failures = 0;
  fd_completion c;
  int64_t id = 0;
  int64_t conn = tcp_connect(client_port, ++id, loopback, 4, port, NULL, 0, 0, 5000);
  if (conn < 0 || !await(client_port, id, &c, "connect")) return 1;
  tcp_set_no_delay(conn, 1);
  printf("client: connected from local port %d (noDelay=%d)\n", tcp_local_port(conn), tcp_get_no_delay(conn));

  uint8_t *message = malloc((size_t)message_bytes);
  for (int m = 0; m < messages; m++) {
    for (int i = 0; i < message_bytes; i++) message[i] = (uint8_t)('a' + (m + i) % 26);
    if (tcp_write(conn, ++id, message, message_bytes) != TCP_OK || !await(client_port, id, &c, "write")) {
      failures++;
      break;
    }
    /* Read until the whole message came back (TCP may split it). */
    size_t got = 0;
    bool same = true;
    while (got < (size_t)message_bytes) {
      if (tcp_read(conn, ++id, message_bytes - (int64_t)got) != TCP_OK || !await(client_port, id, &c, "read") ||
          c.result == 0) {
        same = false;
        break;
      }
      same = same && memcmp(c.data, message + got, c.len) == 0;
      got += c.len;
      fake_dart_release(&c);
    }
    printf("client: message %d: wrote %d bytes, read %zu back, %s\n", m + 1, message_bytes, got,
           same ? "identical" : "DIFFERENT");
    if (!same) failures++;
  }
  free(message);

  if (tcp_shutdown_write(conn, ++id) == TCP_OK && await(client_port, id, &c, "shutdown_write"))
    printf("client: shut down its write side\n");
  if (tcp_read(conn, ++id, 16) == TCP_OK && await(client_port, id, &c, "read EOF"))
    printf("client: read %s\n", c.result == 0 ? "end of stream (server closed)" : "unexpected data");
  if (tcp_close(conn, ++id) == TCP_OK && await(client_port, id, &c, "close")) printf("client: closed\n");

#if defined(_WIN32)
  WaitForSingleObject(server, INFINITE);
  CloseHandle(server);
#else
  pthread_join(server, NULL);
#endif
  if (tcp_close(listener, 1) == TCP_OK && await(server_port, 1, &c, "listener close"))
    printf("server: listener closed\n");
  tcp_shutdown();
  printf("demo %s\n", failures == 0 ? "succeeded" : "FAILED");
  return failures == 0 ? 0 : 1;
}
