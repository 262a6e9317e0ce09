/*
 * test_streams.c -- read streams (tcp.h "streaming reads") on every backend:
 * data in order and intact, never past the window (backpressure: the
 * sender's write cannot finish while the window is full), exactly one final
 * completion after all data (end of stream, stop, close, shutdown), no byte
 * lost when one-shot reads take over after a stop, and bad input refused.
 */
#include <stdlib.h>
#include <string.h>

#include "byte_stream.h"
#include "endpoint.h"
#include "harness.h"
#include "test_list.h"

#define SEED 0x57e4a11ull

static uint8_t *stream_bytes(size_t n) {
  uint8_t *buf = malloc(n);
  CHECK(buf != NULL);
  byte_stream_fill(SEED, 0, buf, n);
  return buf;
}

static void check_intact(const h_req *r, size_t n) {
  CHECK_EQ(r->stream_len, n);
  size_t bad = byte_stream_first_diff(SEED, 0, r->stream_bytes, n);
  if (bad != n) FAILF("stream byte %zu of %zu is wrong", bad, n);
}

/* Reads the stream to `total` bytes, acknowledging all that arrived each time,
 * and checks the window is never exceeded. */
static void drain_stream(int64_t id, int64_t window, size_t total) {
  h_req *r = h_get(id);
  while (r->stream_len < total) {
    h_stream_wait(id, (size_t)r->stream_acked + 1);
    CHECK(!r->done);
    CHECK((int64_t)r->stream_len - r->stream_acked <= window);
    int64_t ack = (int64_t)r->stream_len - r->stream_acked;
    CHECK_EQ(tcp_read_stream_ack(r->handle, ack), TCP_OK);
    r->stream_acked += ack;
  }
}

void test_stream_in_order(void) {
  int64_t port = h_port(), c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  size_t n = 1 << 20;
  uint8_t *data = stream_bytes(n);
  int64_t id = h_stream(c, 64 * 1024);
  int64_t w = h_write(s, data, (int64_t)n);
  drain_stream(id, 64 * 1024, n);
  CHECK_EQ(h_await(w)->c.result, (int64_t)n);
  h_await(h_shutw(s));
  h_req *fin = h_await(id);
  CHECK_EQ(fin->c.result, 0); /* end of stream */
  check_intact(fin, n);
  CHECK(fin->stream_chunks > 1);
  free(data);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* A paused reader stops the sender: with the window full, a write far larger
 * than any kernel buffer cannot finish; acknowledging lets every byte through. */
void test_stream_window_backpressure(void) {
  int64_t port = h_port(), c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  size_t n = 32u << 20;
  int64_t window = 16 * 1024;
  uint8_t *data = stream_bytes(n);
  int64_t id = h_stream(c, window);
  int64_t w = h_write(s, data, (int64_t)n);
  h_req *r = h_stream_wait(id, (size_t)window);
  h_stream_poll(id);
  CHECK_EQ(r->stream_len, (size_t)window); /* exactly the window, not a byte more */
  CHECK(!h_get(w)->done);                  /* 32 MiB cannot sit in the kernel's buffers */
  drain_stream(id, window, n);
  CHECK_EQ(h_await(w)->c.result, (int64_t)n);
  check_intact(r, n);
  free(data);
  h_close_wait(c);
  h_req *fin = h_await(id);
  CHECK_EQ(fin->c.result, TCP_ERR_CLOSED);
  h_close_wait(s);
  h_close_wait(l);
}

/* After a stop, one-shot reads carry on exactly where the stream left off. */
void test_stream_stop_then_read(void) {
  int64_t port = h_port(), c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  size_t n = 100000;
  uint8_t *data = stream_bytes(n);
  int64_t id = h_stream(c, 8192);
  h_write_all(s, data, n);
  h_req *r = h_stream_wait(id, 8192);
  CHECK_EQ(tcp_read_stream_stop(c), TCP_OK);
  CHECK_EQ(tcp_read_stream_stop(c), TCP_ERR_INVALID_ARGUMENT); /* already stopping */
  h_req *fin = h_await(id);
  CHECK_EQ(fin->c.result, TCP_ERR_STOPPED);
  size_t got = r->stream_len;
  CHECK(got <= 8192);
  uint8_t *rest = malloc(n);
  CHECK(rest != NULL);
  memcpy(rest, r->stream_bytes, got);
  h_read_exact(c, rest + got, n - got);
  CHECK_EQ(byte_stream_first_diff(SEED, 0, rest, n), n);
  free(rest);
  free(data);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* A stream started and stopped while a one-shot read waits: its receive never
 * starts, and a tcp_read asked for after the stop runs once the first read ends
 * (it waited for ever before 5ff42b9; the simulation found it). */
void test_stream_stopped_behind_read(void) {
  int64_t port = h_port(), c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  int64_t first = h_read(c, 100);
  int64_t id = h_stream(c, 100);
  CHECK_EQ(tcp_read_stream_stop(c), TCP_OK);
  int64_t second = h_read(c, 100);
  h_write_all(s, "x", 1);
  h_req *r1 = h_await(first);
  CHECK_EQ(r1->c.result, 1);
  h_req *fin = h_await(id);
  CHECK_EQ(fin->c.result, TCP_ERR_STOPPED);
  CHECK_EQ(fin->stream_len, (size_t)0); /* its receive never started */
  h_write_all(s, "y", 1);
  h_req *r2 = h_await(second);
  CHECK_EQ(r2->c.result, 1);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

static void close_ends_stream(bool window_full) {
  int64_t port = h_port(), c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  int64_t id = h_stream(c, 100);
  if (window_full) {
    uint8_t *data = stream_bytes(300);
    h_write_all(s, data, 300);
    h_stream_wait(id, 100); /* the window is full: no receive in flight */
    free(data);
  }
  int64_t cl = h_close(c);
  h_req *fin = h_await(id), *z = h_await(cl);
  CHECK_EQ(fin->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(z->c.result, 0);
  CHECK(fin->c.seq < z->c.seq); /* the final before the close */
  h_close_wait(s);
  h_close_wait(l);
}

void test_stream_close(void) {
  close_ends_stream(false); /* a receive in flight */
  close_ends_stream(true);  /* the window full */
}

void test_stream_shutdown(void) {
  int64_t port = h_port(), c, s;
  h_pair_any(port, port, &c, &s);
  int64_t id = h_stream(c, 1000);
  h_engine_shutdown(); /* posts everything before it returns */
  h_req *fin = h_await(id);
  CHECK_EQ(fin->c.result, TCP_ERR_SHUTDOWN);
}

/* A stream started while the connect is pending begins once it connects. */
void test_stream_while_connecting(void) {
  int64_t port = h_port();
  int64_t l = h_listen_any(port, 0);
  h_endpoint ep = h_endpoint_of(l);
  int64_t acc = h_accept(l), c = 0;
  int64_t conn_id = h_connect_to(port, &ep, 0, &c);
  int64_t id = h_stream(c, 4096);
  CHECK_EQ(h_await(conn_id)->c.result, 0);
  int64_t s = h_accepted(acc);
  uint8_t *data = stream_bytes(1000);
  h_write_all(s, data, 1000);
  h_await(h_shutw(s));
  h_req *fin = h_await(id);
  CHECK_EQ(fin->c.result, 0);
  check_intact(fin, 1000);
  free(data);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

void test_stream_bad_input(void) {
  int64_t port = h_port(), c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  CHECK_EQ(tcp_read_stream(c, 1, 0), TCP_ERR_INVALID_ARGUMENT);
  CHECK_EQ(tcp_read_stream(c, 1, -5), TCP_ERR_INVALID_ARGUMENT);
  CHECK_EQ(tcp_read_stream(c, 1, (int64_t)TCP_READ_BYTES_MAX + 1), TCP_ERR_INVALID_ARGUMENT);
  CHECK_EQ(tcp_read_stream(l, 1, 100), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_read_stream(0x7777777700000003ll, 1, 100), TCP_ERR_BAD_HANDLE);
  CHECK_EQ(tcp_read_stream_ack(c, 1), TCP_ERR_INVALID_ARGUMENT); /* no stream */
  CHECK_EQ(tcp_read_stream_stop(c), TCP_ERR_INVALID_ARGUMENT);
  int64_t id = h_stream(c, 100);
  CHECK_EQ(tcp_read_stream(c, 2, 100), TCP_ERR_BUSY);
  CHECK_EQ(tcp_read(c, 3, 100), TCP_ERR_BUSY);
  CHECK_EQ(tcp_read_stream_ack(c, 1), TCP_ERR_INVALID_ARGUMENT); /* nothing posted yet */
  h_write_all(s, "abc", 3);
  h_req *r = h_stream_wait(id, 3);
  CHECK_EQ(tcp_read_stream_ack(c, 4), TCP_ERR_INVALID_ARGUMENT); /* more than posted */
  CHECK_EQ(tcp_read_stream_ack(c, 0), TCP_ERR_INVALID_ARGUMENT);
  CHECK_EQ(tcp_read_stream_ack(c, 3), TCP_OK);
  CHECK(memcmp(r->stream_bytes, "abc", 3) == 0);
  CHECK_EQ(tcp_read_stream_stop(c), TCP_OK);
  CHECK_EQ(h_await(id)->c.result, TCP_ERR_STOPPED);
  CHECK_EQ(tcp_read_stream_ack(c, 1), TCP_ERR_INVALID_ARGUMENT); /* it ended */
  h_write_all(s, "d", 1);
  h_req *one = h_await(h_read(c, 10)); /* one-shot reads work again */
  CHECK_EQ(one->c.result, 1);
  h_close_wait(c);
  CHECK_EQ(tcp_read_stream(c, 4, 100), TCP_ERR_CLOSED);
  h_close_wait(s);
  h_close_wait(l);
}
