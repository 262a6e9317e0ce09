/*
 * tracked_calls.c -- engine calls that must be accepted and are tracked (see
 * tracked_calls.h).
 */
#include "tracked_calls.h"

#include <string.h>

#include "runner.h"
#include "tcp.h"

const uint8_t H_LOOPBACK4[4] = {127, 0, 0, 1};
const uint8_t H_LOOPBACK6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

int64_t h_listen(int64_t port, const uint8_t *addr, int32_t addr_len, int32_t backlog) {
  int64_t l = tcp_listen(port, addr, addr_len, 0, backlog, 1, 0);
  if (l <= 0) FAILF("tcp_listen returned %lld (%s), os error %d", (long long)l, h_code_name(l),
                    (int)tcp_last_os_error());
  h_remember_port(l, port);
  return l;
}

int64_t h_listen_mode(int64_t port, const uint8_t *addr, int32_t addr_len, int32_t tcp_port, int32_t mode) {
  int64_t l = tcp_listen(port, addr, addr_len, tcp_port, 0, 1, mode);
  if (l <= 0) FAILF("tcp_listen (mode %d) returned %lld (%s), os error %d", (int)mode, (long long)l,
                    h_code_name(l), (int)tcp_last_os_error());
  h_remember_port(l, port);
  return l;
}

int64_t h_connect(int64_t port, const uint8_t *addr, int32_t addr_len, int32_t tcp_port,
                  int64_t timeout_ms, int64_t *handle) {
  int64_t id = h_new_id();
  int64_t h = tcp_connect(port, id, addr, addr_len, tcp_port, NULL, 0, 0, timeout_ms);
  if (h <= 0) FAILF("tcp_connect returned %lld (%s)", (long long)h, h_code_name(h));
  h_issue(id, port, K_CONNECT, h, 0);
  h_remember_port(h, port);
  if (handle) *handle = h;
  return id;
}

int64_t h_accept(int64_t listener) {
  int64_t id = h_new_id();
  CHECK_EQ(tcp_accept(listener, id), TCP_OK);
  h_issue(id, h_port_of(listener), K_ACCEPT, listener, 0);
  return id;
}

/* Awaits an accept and records the new connection's port. */
int64_t h_accepted(int64_t accept_id) {
  h_req *r = h_await(accept_id);
  if (r->c.result <= 0)
    FAILF("accept %lld failed: %lld (%s)", (long long)accept_id, (long long)r->c.result,
          h_code_name(r->c.result));
  h_remember_port(r->c.result, r->port);
  return r->c.result;
}

int64_t h_read(int64_t conn, int64_t max) {
  int64_t id = h_new_id();
  CHECK_EQ(tcp_read(conn, id, max), TCP_OK);
  h_issue(id, h_port_of(conn), K_READ, conn, 0);
  return id;
}

int64_t h_stream(int64_t conn, int64_t window) {
  int64_t id = h_new_id();
  CHECK_EQ(tcp_read_stream(conn, id, window), TCP_OK);
  h_issue(id, h_port_of(conn), K_STREAM, conn, 0);
  return id;
}

int64_t h_write(int64_t conn, const void *bytes, int64_t len) {
  int64_t id = h_new_id();
  CHECK_EQ(tcp_write(conn, id, (const uint8_t *)bytes, len), TCP_OK);
  h_issue(id, h_port_of(conn), K_WRITE, conn, 0);
  h_get(id)->len = len;
  return id;
}

int64_t h_shutw(int64_t conn) {
  int64_t id = h_new_id();
  CHECK_EQ(tcp_shutdown_write(conn, id), TCP_OK);
  h_issue(id, h_port_of(conn), K_SHUTW, conn, 0);
  return id;
}

int64_t h_close(int64_t handle) {
  int64_t id = h_new_id();
  int64_t port = h_port_of(handle);
  CHECK_EQ(tcp_close(handle, id), TCP_OK);
  h_issue(id, port, K_CLOSE, handle, 0);
  return id;
}

int64_t h_result(int64_t id) { return h_await(id)->c.result; }

int64_t h_pair(int64_t listen_port, int64_t client_port, const uint8_t *addr, int32_t addr_len,
               int64_t *client, int64_t *server) {
  int64_t l = h_listen(listen_port, addr, addr_len, 0);
  int32_t p = tcp_local_port(l);
  if (p <= 0) FAILF("tcp_local_port(listener) = %d (%s)", (int)p, h_code_name(p));
  int64_t a = h_accept(l);
  int64_t c = h_connect(client_port, addr, addr_len, p, 0, client);
  CHECK_EQ(h_result(c), 0);
  *server = h_accepted(a);
  return l;
}

void h_read_exact(int64_t conn, uint8_t *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    int64_t id = h_read(conn, (int64_t)(n - got));
    h_req *r = h_await(id);
    if (r->c.result <= 0)
      FAILF("read after %zu of %zu bytes returned %lld (%s)", got, n, (long long)r->c.result,
            h_code_name(r->c.result));
    if ((size_t)r->c.result > n - got)
      FAILF("read of at most %zu bytes returned %lld", n - got, (long long)r->c.result);
    memcpy(buf + got, r->c.data, (size_t)r->c.result);
    got += (size_t)r->c.result;
    h_release(r);
  }
}

void h_write_all(int64_t conn, const void *bytes, size_t n) {
  int64_t id = h_write(conn, bytes, (int64_t)n);
  CHECK_EQ(h_result(id), (int64_t)n);
}

void h_close_wait(int64_t handle) { CHECK_EQ(h_result(h_close(handle)), 0); }

void h_expect_eof(int64_t conn) { CHECK_EQ(h_result(h_read(conn, 4096)), 0); }
