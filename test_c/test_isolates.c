/*
 * test_isolates.c -- ports ("isolates") and caller threads: a port that is
 * gone, two isolates, three threads driving their own sockets at once, request
 * ids of any value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "harness.h"
#include "test_list.h"
#include "threads.h"

void test_port_gone(void) {
  int64_t pa = h_port(), pb = h_port();
  int64_t l = h_listen_any(pa, 0);
  h_endpoint ep = h_endpoint_of(l);
  int64_t a = h_accept(l);
  int64_t c;
  CHECK_EQ(h_result(h_connect_to(pb, &ep, 0, &c)), 0);
  int64_t s = h_accepted(a);
  /* More than TCP_READ_COPY_BYTES_MAX: the refused read would have handed its
   * buffer over as external typed data, so the engine must free it itself. */
  static uint8_t payload[3 * TCP_READ_COPY_BYTES_MAX];
  memset(payload, 'p', sizeof payload);
  h_write_all(s, payload, sizeof payload);
  fd_stats st0, st1;
  fake_dart_stats(&st0);
  h_close_port(pb); /* the "isolate" of the client goes away */
  h_read(c, 65536); /* completes with data: the post is refused, the engine frees it */
  if (!fake_dart_wait_refused(st0.posts_refused + 1, h_timeout_ms))
    FAILF("the read's completion was never posted (refused count stayed %llu)",
          (unsigned long long)st0.posts_refused);
  fake_dart_stats(&st1);
  CHECK_EQ(st1.finalizers_run, st0.finalizers_run);
  CHECK_EQ(st1.external_live, st0.external_live);
  h_close(c);
  if (!fake_dart_wait_refused(st0.posts_refused + 2, h_timeout_ms))
    FAILF("the close's completion was never posted");
  fake_dart_stats(&st1);
  CHECK_EQ(st1.finalizers_run, st0.finalizers_run);
  /* the other side lives on */
  h_expect_eof(s);
  h_close_wait(s);
  h_close_wait(l);
}

void test_two_isolates(void) {
  int64_t pa = h_port(), pb = h_port();
  int64_t la = h_listen_any(pa, 0), lb = h_listen_any(pb, 0);
  h_endpoint ea = h_endpoint_of(la), eb = h_endpoint_of(lb);
  int64_t aa = h_accept(la), ab = h_accept(lb);
  int64_t cb, ca; /* cb: client on port B to A's listener; ca: vice versa */
  int64_t k1 = h_connect_to(pb, &ea, 0, &cb);
  int64_t k2 = h_connect_to(pa, &eb, 0, &ca);
  CHECK_EQ(h_result(k1), 0);
  CHECK_EQ(h_result(k2), 0);
  int64_t sa = h_accepted(aa), sb = h_accepted(ab); /* sa on port A, sb on port B */
  uint8_t buf[8];
  h_write_all(cb, "to-A", 4);
  h_read_exact(sa, buf, 4);
  CHECK(memcmp(buf, "to-A", 4) == 0);
  h_write_all(ca, "to-B", 4);
  h_read_exact(sb, buf, 4);
  CHECK(memcmp(buf, "to-B", 4) == 0);
  h_close_wait(cb);
  h_close_wait(ca);
  h_close_wait(sa);
  h_close_wait(sb);
  h_close_wait(la);
  h_close_wait(lb);
  /* every completion was checked for its port on arrival; count them too */
  fd_port_stats a, b;
  CHECK(fake_dart_port_stats(pa, &a) && fake_dart_port_stats(pb, &b));
  CHECK(a.triples > 0 && b.triples > 0);
}

/* ---- several caller threads at once ("isolates" on their own threads) ------------- */
#define W_OPS 2048
#define W_ROUNDS 150

typedef struct worker {
  int index;
  int64_t port;
  int64_t base, next;       /* request ids: base .. next-1 */
  h_endpoint at;            /* where it listens (a fresh endpoint) */
  bool done[W_OPS];
  int64_t result[W_OPS];
  fd_completion comp[W_OPS];
  char error[256];
} worker;

/* Waits for id on the worker's port; checks every arrival. */
static bool w_await(worker *w, int64_t id, int64_t *result, fd_completion *out) {
  while (!w->done[id - w->base]) {
    fd_completion c;
    if (!fake_dart_next(w->port, h_timeout_ms, &c)) {
      snprintf(w->error, sizeof w->error, "worker %d: request %lld did not complete", w->index,
               (long long)id);
      return false;
    }
    int64_t k = c.request_id - w->base;
    if (k < 0 || c.request_id >= w->next || w->done[k]) {
      snprintf(w->error, sizeof w->error, "worker %d: %s completion for id %lld", w->index,
               (k >= 0 && c.request_id < w->next) ? "duplicate" : "foreign", (long long)c.request_id);
      fake_dart_release(&c);
      return false;
    }
    w->done[k] = true;
    w->result[k] = c.result;
    w->comp[k] = c;
  }
  *result = w->result[id - w->base];
  if (out) {
    *out = w->comp[id - w->base];
    memset(&w->comp[id - w->base], 0, sizeof(fd_completion));
  } else {
    fake_dart_release(&w->comp[id - w->base]);
  }
  return true;
}

static int64_t w_id(worker *w) { return w->next < w->base + W_OPS ? w->next++ : -1; }

#define W_CHECK(cond, ...)                                  \
  do {                                                      \
    if (!(cond)) {                                          \
      if (w->error[0] == '\0') {                            \
        int n_ = snprintf(w->error, sizeof w->error, "worker %d: ", w->index); \
        snprintf(w->error + n_, sizeof w->error - (size_t)n_, __VA_ARGS__); \
      }                                                     \
      THREAD_RETURN;                                        \
    }                                                       \
  } while (0)


THREAD_FN(worker_main) {
  worker *w = (worker *)arg;
  int64_t res, id;
  fd_completion c;
  int64_t l = h_ep_listen(w->port, &w->at, 0, 0);
  W_CHECK(l > 0, "listen: %lld", (long long)l);
  h_endpoint to = w->at;
  if (to.transport == H_TCP) to.port = tcp_local_port(l);
  int64_t acc = w_id(w);
  W_CHECK(tcp_accept(l, acc) == 0, "accept refused");
  int64_t con = w_id(w);
  int64_t ch = h_ep_connect(w->port, con, &to, 0);
  W_CHECK(ch > 0, "connect: %lld", (long long)ch);
  W_CHECK(w_await(w, con, &res, NULL) && res == 0, "connect result %lld", (long long)res);
  W_CHECK(w_await(w, acc, &res, NULL) && res > 0, "accept result %lld", (long long)res);
  int64_t sh = res;
  for (int round = 0; round < W_ROUNDS; round++) {
    uint8_t msg[48], back[48];
    byte_stream_fill((uint64_t)(w->index * 100000 + round), 0, msg, sizeof msg);
    int64_t wr = w_id(w);
    W_CHECK(wr > 0 && tcp_write(ch, wr, msg, sizeof msg) == 0, "write refused");
    /* server: read it all, echo it */
    size_t have = 0;
    while (have < sizeof msg) {
      id = w_id(w);
      W_CHECK(id > 0 && tcp_read(sh, id, (int64_t)(sizeof msg - have)) == 0, "read refused");
      W_CHECK(w_await(w, id, &res, &c), "%s", w->error);
      W_CHECK(res > 0, "server read %lld", (long long)res);
      memcpy(back + have, c.data, c.len);
      have += c.len;
      fake_dart_release(&c);
    }
    W_CHECK(w_await(w, wr, &res, NULL) && res == (int64_t)sizeof msg, "write result %lld",
            (long long)res);
    id = w_id(w);
    W_CHECK(id > 0 && tcp_write(sh, id, back, sizeof back) == 0, "echo refused");
    W_CHECK(w_await(w, id, &res, NULL) && res == (int64_t)sizeof back, "echo result");
    have = 0;
    memset(back, 0, sizeof back);
    while (have < sizeof msg) {
      id = w_id(w);
      W_CHECK(id > 0 && tcp_read(ch, id, (int64_t)(sizeof msg - have)) == 0, "read refused");
      W_CHECK(w_await(w, id, &res, &c), "%s", w->error);
      W_CHECK(res > 0, "client read %lld", (long long)res);
      memcpy(back + have, c.data, c.len);
      have += c.len;
      fake_dart_release(&c);
    }
    W_CHECK(memcmp(back, msg, sizeof msg) == 0, "round %d: echo differs", round);
  }
  int64_t hs[3] = {ch, sh, l};
  for (int i = 0; i < 3; i++) {
    id = w_id(w);
    W_CHECK(id > 0 && tcp_close(hs[i], id) == 0, "close refused");
    W_CHECK(w_await(w, id, &res, NULL) && res == 0, "close result %lld", (long long)res);
  }
  /* nothing else may arrive for this worker */
  W_CHECK(!fake_dart_next(w->port, 0, &c), "stray completion id %lld", (long long)c.request_id);
  THREAD_RETURN;
}

void test_threads_as_isolates(void) {
  enum { NT = 3 };
  static worker ws[NT];
  h_thread th[NT];
  memset(ws, 0, sizeof ws);
  for (int i = 0; i < NT; i++) {
    ws[i].index = i;
    ws[i].port = fake_dart_open_port(); /* checked by the worker, not the tracker */
    ws[i].base = ((int64_t)(i + 1) << 50);
    ws[i].next = ws[i].base;
    ws[i].at = h_fresh_endpoint(); /* here: a skip or failure may not happen on a worker */
  }
  int started = 0;
  for (; started < NT; started++)
    if (!thread_start(&th[started], worker_main, &ws[started])) break;
  for (int i = 0; i < started; i++) thread_join(th[i]);
  for (int i = 0; i < NT; i++)
    for (int k = 0; k < W_OPS; k++) fake_dart_release(&ws[i].comp[k]);
  CHECK_EQ(started, NT);
  for (int i = 0; i < NT; i++)
    if (ws[i].error[0] != '\0') FAILF("%s", ws[i].error);
}

/* ---- request ids of any value --------------------------------------------------- */
void test_request_ids_full_range(void) {
  /* untracked port: these ids are outside the tracker's range on purpose */
  int64_t p = fake_dart_open_port();
  int64_t l = tcp_listen(p, H_LOOPBACK4, 4, 0, 0, 1, 0);
  CHECK(l > 0);
  const int64_t ids[] = {INT64_MIN, -1, 0, INT64_MAX};
  for (int i = 0; i < 3; i++) CHECK_EQ(tcp_accept(l, ids[i]), TCP_OK);
  CHECK_EQ(tcp_close(l, ids[3]), TCP_OK);
  bool seen[3] = {false, false, false};
  for (int i = 0; i < 4; i++) {
    fd_completion c;
    if (!fake_dart_next(p, h_timeout_ms, &c)) FAILF("completion %d of 4 missing", i + 1);
    int64_t id = c.request_id, res = c.result;
    fake_dart_release(&c);
    if (i < 3) { /* the cancelled accepts (in any order), then the close */
      int k = id == ids[0] ? 0 : id == ids[1] ? 1 : id == ids[2] ? 2 : -1;
      if (k < 0 || seen[k]) FAILF("accept completion with id %lld", (long long)id);
      seen[k] = true;
      CHECK_EQ(res, TCP_ERR_CLOSED);
    } else {
      CHECK_EQ(id, INT64_MAX);
      CHECK_EQ(res, 0);
    }
  }
  fd_completion extra;
  CHECK(!fake_dart_next(p, 0, &extra));
  fake_dart_close_port(p);
}
