/*
 * test_close_cancel.c -- close with operations pending: every pending read,
 * accept, connect, write and shutdown_write completes once with
 * TCP_ERR_CLOSED, in call order, before the close itself; the finalizer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "harness.h"
#include "test_list.h"
#include "hanging_destination.h"

/* Two reads pending on c, then close c: both complete with TCP_ERR_CLOSED in
 * call order, then the close with 0, and the peer s sees end of stream. */
static void close_with_two_reads_pending(int64_t c, int64_t s, int64_t l) {
  int64_t r1 = h_read(c, 100), r2 = h_read(c, 100);
  int64_t cl = h_close(c);
  h_req *a = h_await(r1), *b = h_await(r2), *z = h_await(cl);
  CHECK_EQ(a->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(b->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(z->c.result, 0);
  CHECK(a->c.seq < z->c.seq && b->c.seq < z->c.seq);
  CHECK(a->c.seq < b->c.seq); /* call order, also when cancelled */
  /* the OS socket is really closed: the peer sees end of stream */
  h_expect_eof(s);
  h_close_wait(s);
  h_close_wait(l);
}

void test_close_while_read_pending(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  close_with_two_reads_pending(c, s, l);
}

/* A read that follows one which emptied the socket (request/response traffic)
 * may be held back by the backend before it reaches the OS (io_uring submits
 * it one pass later). Closing then must still complete it, and the read queued
 * behind it, exactly once, in call order, before the close. */
void test_close_while_next_read_pending(void) {
  for (int round = 0; round < 10; round++) {
    int64_t port = h_port();
    int64_t c, s;
    int64_t l = h_pair_any(port, port, &c, &s);
    h_write_all(s, "ping", 4);
    h_req *first = h_await(h_read(c, 100));
    CHECK_EQ(first->c.result, 4); /* fewer than asked: the socket is now empty */
    close_with_two_reads_pending(c, s, l);
  }
}

void test_close_while_accept_pending(void) {
  int64_t port = h_port();
  int64_t l = h_listen_any(port, 0);
  h_endpoint ep = h_endpoint_of(l);
  int64_t a1 = h_accept(l), a2 = h_accept(l);
  int64_t cl = h_close(l);
  h_req *x = h_await(a1), *y = h_await(a2), *z = h_await(cl);
  CHECK_EQ(x->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(y->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(z->c.result, 0);
  CHECK(x->c.seq < z->c.seq && y->c.seq < z->c.seq);
  /* nobody listens there any more (a Unix listener took its file along) */
  int64_t h;
  CHECK_EQ(h_result(h_connect_to(port, &ep, 0, &h)), h_gone_endpoint_error());
  h_close_wait(h);
}

void test_close_while_connect_pending(void) {
  int64_t port = h_port();
  uint8_t bh[4];
  int32_t bp;
  hanging_destination(port, bh, &bp);
  int64_t h;
  int64_t id = h_connect(port, bh, 4, bp, 0, &h);
  int64_t cl = h_close(h);
  h_req *x = h_await(id), *z = h_await(cl);
  CHECK_EQ(x->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(z->c.result, 0);
  CHECK(x->c.seq < z->c.seq);
}

void test_close_while_write_pending(void) {
  /* 64 MiB is more than loopback socket buffers hold while the peer does not read */
  const size_t n = (size_t)64 << 20;
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  uint8_t *big = (uint8_t *)calloc(1, n);
  CHECK(big != NULL);
  int64_t w1 = h_write(c, big, (int64_t)n);
  free(big);
  int64_t w2 = h_write(c, "x", 1);
  int64_t sw = h_shutw(c);
  int64_t cl = h_close(c);
  h_req *a = h_await(w1), *b = h_await(w2), *d = h_await(sw), *z = h_await(cl);
  CHECK_EQ(a->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(b->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(d->c.result, TCP_ERR_CLOSED);
  CHECK_EQ(z->c.result, 0);
  CHECK(a->c.seq < z->c.seq && b->c.seq < z->c.seq && d->c.seq < z->c.seq);
  /* Writes complete in call order also when a close cancels them (tcp.h ORDERING):
   * the queued ones after the one in flight. */
  CHECK(a->c.seq < b->c.seq && b->c.seq < d->c.seq);
  h_close_wait(s);
  h_close_wait(l);
}

void test_close_finalizer(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  int64_t r = h_read(c, 10);
  tcp_close_finalizer((void *)(intptr_t)c);
  /* the pending read completes; the close itself posts nothing (the tracker
   * fails the test on any completion it does not expect) */
  CHECK_EQ(h_result(r), TCP_ERR_CLOSED);
  CHECK_EQ(tcp_read(c, h_new_id(), 10), TCP_ERR_CLOSED);
  h_expect_eof(s);
  tcp_close_finalizer((void *)(intptr_t)c); /* twice: nothing */
  h_close_wait(s);
  h_close_wait(l);
}
