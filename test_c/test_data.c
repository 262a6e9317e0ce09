/*
 * test_data.c -- data paths: echo on IPv4 and IPv6, several accepts, a 16 MiB
 * transfer both ways, 500 connections, end of stream and half close, zero-length
 * and many small writes, reads in chunks and in call order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "harness.h"
#include "test_list.h"

#if !defined(_WIN32)
#include <sys/resource.h>
#endif

/* ---- connect / accept / echo ---------------------------------------------------- */
static bool have_ipv6(void) {
  int64_t p = fake_dart_open_port();
  int64_t l = tcp_listen(p, H_LOOPBACK6, 16, 0, 0, 1, 0);
  if (l > 0) {
    /* close without a tracked request: wait for its completion directly */
    int64_t id = -77;
    if (tcp_close(l, id) == TCP_OK) {
      fd_completion c;
      if (fake_dart_next(p, h_timeout_ms, &c)) fake_dart_release(&c);
    }
  }
  fake_dart_close_port(p);
  return l > 0;
}

static void echo_test(const uint8_t *addr, int32_t addr_len) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, addr, addr_len, &c, &s);
  int32_t lport = tcp_local_port(l);
  uint8_t a[16];
  CHECK_EQ(tcp_local_address(l, a), addr_len);
  CHECK(memcmp(a, addr, (size_t)addr_len) == 0);
  CHECK_EQ(tcp_local_address(c, a), addr_len);
  CHECK(memcmp(a, addr, (size_t)addr_len) == 0);
  CHECK_EQ(tcp_remote_address(c, a), addr_len);
  CHECK(memcmp(a, addr, (size_t)addr_len) == 0);
  CHECK_EQ(tcp_remote_address(s, a), addr_len);
  CHECK(memcmp(a, addr, (size_t)addr_len) == 0);
  CHECK_EQ(tcp_remote_port(c), lport);
  CHECK_EQ(tcp_local_port(s), lport);
  int32_t cport = tcp_local_port(c);
  CHECK(cport > 0 && cport != lport);
  CHECK_EQ(tcp_remote_port(s), cport);

  static const char hello[] = "hello from the client";
  static const char world[] = "and hello from the server, a bit longer";
  uint8_t buf[64];
  h_write_all(c, hello, sizeof hello);
  h_read_exact(s, buf, sizeof hello);
  CHECK(memcmp(buf, hello, sizeof hello) == 0);
  h_write_all(s, world, sizeof world);
  h_read_exact(c, buf, sizeof world);
  CHECK(memcmp(buf, world, sizeof world) == 0);
  /* and once more each way: the sockets stay usable */
  h_write_all(s, "x", 1);
  h_read_exact(c, buf, 1);
  CHECK_EQ(buf[0], 'x');
  h_write_all(c, "y", 1);
  h_read_exact(s, buf, 1);
  CHECK_EQ(buf[0], 'y');
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

void test_echo_ipv4(void) { echo_test(H_LOOPBACK4, 4); }

void test_echo_ipv6(void) {
  if (!have_ipv6()) SKIP("::1 is not available");
  echo_test(H_LOOPBACK6, 16);
}

void test_accept_several_pending(void) {
  int64_t port = h_port();
  int64_t l = h_listen_any(port, 0);
  h_endpoint ep = h_endpoint_of(l);
  int64_t acc[3], con[3], ch[3], sh[3];
  for (int i = 0; i < 3; i++) acc[i] = h_accept(l);
  for (int i = 0; i < 3; i++) con[i] = h_connect_to(port, &ep, 0, &ch[i]);
  for (int i = 0; i < 3; i++) CHECK_EQ(h_result(con[i]), 0);
  for (int i = 0; i < 3; i++) sh[i] = h_accepted(acc[i]);
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < i; k++) {
      CHECK(sh[i] != sh[k]);
      CHECK(ch[i] != ch[k]);
    }
  /* pair them up by what each client says (no ports on every transport) and
   * talk back over each: every client and every server is in one pair */
  bool heard[3] = {false, false, false};
  for (int i = 0; i < 3; i++) {
    uint8_t b = (uint8_t)('a' + i);
    h_write_all(ch[i], &b, 1);
  }
  for (int k = 0; k < 3; k++) {
    uint8_t got = 0;
    h_read_exact(sh[k], &got, 1);
    int i = got - 'a';
    CHECK(i >= 0 && i < 3 && !heard[i]);
    heard[i] = true;
    uint8_t back = (uint8_t)('A' + i), got_back = 0;
    h_write_all(sh[k], &back, 1);
    h_read_exact(ch[i], &got_back, 1);
    CHECK_EQ(got_back, back);
  }
  for (int i = 0; i < 3; i++) {
    h_close_wait(ch[i]);
    h_close_wait(sh[i]);
  }
  h_close_wait(l);
}

/* ---- bulk transfer ------------------------------------------------------------- */
/* The receiving end of one direction of the transfer. */
typedef struct transfer_end {
  int64_t conn;
  const char *name;
  size_t got;
  uint64_t sum;
} transfer_end;

/* A read completed on e: checksum its bytes, read again until n are in. */
static void transfer_read_done(transfer_end *e, h_req *r, size_t n, size_t rmax) {
  if (r->c.result <= 0)
    FAILF("read on %s after %zu bytes returned %lld (%s)", e->name, e->got, (long long)r->c.result,
          h_code_name(r->c.result));
  CHECK(r->c.result <= (int64_t)rmax);
  e->sum = byte_stream_fnv1a(e->sum, r->c.data, r->c.len);
  e->got += r->c.len;
  CHECK(e->got <= n);
  if (e->got < n) h_read(e->conn, (int64_t)rmax);
  h_release(r);
}

void test_transfer_16mib_both_ways(void) {
  const size_t n = (size_t)16 << 20, chunk = 64 * 1024, rmax = 256 * 1024;
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  uint8_t *up = (uint8_t *)malloc(n), *down = (uint8_t *)malloc(n);
  CHECK(up != NULL && down != NULL);
  byte_stream_fill(11, 0, up, n);
  byte_stream_fill(22, 0, down, n);
  uint64_t up_sum = byte_stream_fnv1a(BYTE_STREAM_FNV1A_INIT, up, n);
  uint64_t down_sum = byte_stream_fnv1a(BYTE_STREAM_FNV1A_INIT, down, n);
  /* client -> server: one 16 MiB write; server -> client: 256 writes of 64 KiB */
  int64_t big = h_write(c, up, (int64_t)n);
  size_t nchunks = n / chunk;
  int64_t first_chunk = 0;
  for (size_t i = 0; i < nchunks; i++) {
    int64_t id = h_write(s, down + i * chunk, (int64_t)chunk);
    if (i == 0) first_chunk = id;
  }
  /* the engine copied the bytes: the buffers may go at once */
  memset(up, 0xA5, n);
  memset(down, 0x5A, n);
  free(up);
  free(down);

  h_read(c, (int64_t)rmax);
  h_read(s, (int64_t)rmax);
  transfer_end at_c = {c, "client", 0, BYTE_STREAM_FNV1A_INIT};
  transfer_end at_s = {s, "server", 0, BYTE_STREAM_FNV1A_INIT};
  size_t writes = 0;
  int64_t next_chunk = first_chunk;
  while (at_c.got < n || at_s.got < n || writes < nchunks + 1) {
    h_req *r = h_next(port);
    if (r->kind == K_READ) {
      transfer_read_done(r->handle == c ? &at_c : &at_s, r, n, rmax);
    } else if (r->kind == K_WRITE) {
      CHECK_EQ(r->c.result, r->len);
      if (r->handle == s) { /* writes on one socket complete in call order */
        CHECK_EQ(r->c.request_id, next_chunk);
        next_chunk++;
      } else {
        CHECK_EQ(r->c.request_id, big);
      }
      writes++;
    } else {
      FAILF("unexpected %d completion", (int)r->kind);
    }
  }
  CHECK_EQ(at_s.got, n);
  CHECK_EQ(at_c.got, n);
  if (at_s.sum != up_sum) FAILF("client->server checksum %016llx, sent %016llx",
                                (unsigned long long)at_s.sum, (unsigned long long)up_sum);
  if (at_c.sum != down_sum) FAILF("server->client checksum %016llx, sent %016llx",
                                  (unsigned long long)at_c.sum, (unsigned long long)down_sum);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* ---- many connections ---------------------------------------------------------- */
#define NCONN 500
#define MSG_LEN 40

/* Raises the soft RLIMIT_NOFILE to what NCONN connections need (both ends in
 * this process), or skips the test. */
static void ensure_fd_limit(void) {
#if !defined(_WIN32)
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  rlim_t need = 2 * NCONN + 256;
  if (rl.rlim_cur < need) {
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
      SKIP("RLIMIT_NOFILE hard limit %llu < %llu", (unsigned long long)rl.rlim_max,
           (unsigned long long)need);
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) SKIP("cannot raise RLIMIT_NOFILE to %llu",
                                                  (unsigned long long)need);
  }
#endif
}

/* The clients (user = index + 1) and what they sent and got back; servers
 * carry user = -1. */
typedef struct many_conns {
  int64_t ch[NCONN];
  uint8_t want[NCONN][MSG_LEN], got[NCONN][MSG_LEN];
  size_t have[NCONN];
  int verified;
} many_conns;

/* client: collect the echo; close once all of it is back and checked */
static void many_client_read(many_conns *m, h_req *r) {
  int64_t u = r->user;
  int i = (int)u - 1;
  if (r->c.result <= 0) FAILF("client %d read returned %lld (%s)", i,
                              (long long)r->c.result, h_code_name(r->c.result));
  CHECK(m->have[i] + r->c.len <= MSG_LEN);
  memcpy(m->got[i] + m->have[i], r->c.data, r->c.len);
  m->have[i] += r->c.len;
  h_release(r);
  if (m->have[i] < MSG_LEN) {
    h_get(h_read(m->ch[i], (int64_t)(MSG_LEN - m->have[i])))->user = u;
  } else {
    if (memcmp(m->got[i], m->want[i], MSG_LEN) != 0) FAILF("client %d got a wrong echo", i);
    m->verified++;
    h_get(h_close(m->ch[i]))->user = u;
  }
}

/* server: echo until EOF, then close */
static void many_server_read(h_req *r) {
  if (r->c.result < 0) FAILF("server read returned %lld (%s)", (long long)r->c.result,
                             h_code_name(r->c.result));
  if (r->c.result == 0) {
    h_get(h_close(r->handle))->user = -1;
  } else {
    h_get(h_write(r->handle, r->c.data, (int64_t)r->c.len))->user = -1;
    h_release(r);
    h_get(h_read(r->handle, 4096))->user = -1;
  }
}

void test_many_connections(void) {
  ensure_fd_limit();
  int64_t port = h_port();
  int64_t l = h_listen_any(port, 1024);
  h_endpoint ep = h_endpoint_of(l);
  static many_conns m;
  memset(m.have, 0, sizeof m.have);
  m.verified = 0;
  for (int i = 0; i < NCONN; i++) h_get(h_accept(l))->user = -1;
  for (int i = 0; i < NCONN; i++) {
    snprintf((char *)m.want[i], MSG_LEN, "connection %d of %d says hello", i, NCONN);
    h_get(h_connect_to(port, &ep, 0, &m.ch[i]))->user = i + 1;
  }
  int clients_closed = 0, servers_closed = 0, accepted = 0;
  while (clients_closed < NCONN || servers_closed < NCONN) {
    h_req *r = h_next(port);
    int64_t u = r->user;
    switch (r->kind) {
      case K_CONNECT:
        if (r->c.result != 0)
          FAILF("connect %lld failed: %lld (%s)", (long long)u - 1, (long long)r->c.result,
                h_code_name(r->c.result));
        h_write(m.ch[u - 1], m.want[u - 1], MSG_LEN);
        h_get(h_read(m.ch[u - 1], MSG_LEN))->user = u;
        break;
      case K_ACCEPT: {
        if (r->c.result <= 0) FAILF("accept failed: %lld (%s)", (long long)r->c.result,
                                    h_code_name(r->c.result));
        accepted++;
        h_remember_port(r->c.result, port);
        h_get(h_read(r->c.result, 4096))->user = -1;
        break;
      }
      case K_READ:
        if (u > 0) many_client_read(&m, r); else many_server_read(r);
        break;
      case K_WRITE:
        CHECK_EQ(r->c.result, r->len);
        break;
      case K_CLOSE:
        CHECK_EQ(r->c.result, 0);
        if (u > 0) clients_closed++; else servers_closed++;
        break;
      default: FAILF("unexpected completion kind %d", (int)r->kind);
    }
  }
  CHECK_EQ(m.verified, NCONN);
  CHECK_EQ(accepted, NCONN);
  h_close_wait(l);
}

/* ---- end of stream, half close --------------------------------------------------- */
void test_eof_after_peer_close(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  h_write_all(c, "bye", 3);
  h_close_wait(c);
  uint8_t buf[3];
  h_read_exact(s, buf, 3);
  CHECK(memcmp(buf, "bye", 3) == 0);
  h_expect_eof(s);
  h_close_wait(s);
  h_close_wait(l);
}

void test_read_after_eof(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  CHECK_EQ(h_result(h_shutw(c)), 0);
  h_expect_eof(s);
  h_expect_eof(s);
  /* two reads queued after EOF: both 0, in call order */
  int64_t r1 = h_read(s, 10), r2 = h_read(s, 10);
  h_req *a = h_await(r1), *b = h_await(r2);
  CHECK_EQ(a->c.result, 0);
  CHECK_EQ(b->c.result, 0);
  CHECK(a->c.seq < b->c.seq);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

void test_shutdown_write_half_close(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  int64_t w = h_write(c, "abc", 3);
  int64_t sw = h_shutw(c);
  h_req *wr = h_await(w), *swr = h_await(sw);
  CHECK_EQ(wr->c.result, 3);
  CHECK_EQ(swr->c.result, 0);
  CHECK(wr->c.seq < swr->c.seq); /* shutdown_write waits for earlier writes */
  uint8_t buf[3];
  h_read_exact(s, buf, 3);
  CHECK(memcmp(buf, "abc", 3) == 0);
  h_expect_eof(s);
  /* the other direction still works */
  h_write_all(s, "xyz", 3);
  h_read_exact(c, buf, 3);
  CHECK(memcmp(buf, "xyz", 3) == 0);
  /* writing on the shut side fails with BROKEN_PIPE, now or in the completion */
  int64_t id = h_new_id();
  int32_t rc = tcp_write(c, id, (const uint8_t *)"q", 1);
  if (rc == TCP_OK) {
    h_issue(id, port, K_WRITE, c, 0);
    CHECK_EQ(h_result(id), TCP_ERR_BROKEN_PIPE);
  } else {
    CHECK_EQ(rc, TCP_ERR_BROKEN_PIPE);
  }
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* ---- writes ------------------------------------------------------------------------ */
void test_zero_length_write(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  int64_t w1 = h_write(c, "ab", 2);
  int64_t w0 = h_write(c, NULL, 0);
  uint8_t empty = 0;
  int64_t w0b = h_write(c, &empty, 0);
  int64_t w2 = h_write(c, "cd", 2);
  h_req *a = h_await(w1), *b = h_await(w0), *b2 = h_await(w0b), *d = h_await(w2);
  CHECK_EQ(a->c.result, 2);
  CHECK_EQ(b->c.result, 0);
  CHECK_EQ(b2->c.result, 0);
  CHECK_EQ(d->c.result, 2);
  CHECK(a->c.seq < b->c.seq && b->c.seq < b2->c.seq && b2->c.seq < d->c.seq);
  uint8_t buf[4];
  h_read_exact(s, buf, 4);
  CHECK(memcmp(buf, "abcd", 4) == 0);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

void test_many_small_writes_batched(void) {
  /* structural checks on batching: the tracker already checks every message
   * (non-empty, 3*N, ids known and unique); here: many completions at once,
   * writes complete in call order, bytes arrive in order */
  enum { NW = 400 };
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  static int64_t ids[NW];
  uint8_t buf[NW];
  for (int i = 0; i < NW; i++) {
    uint8_t b = (uint8_t)(i * 7 + 3);
    ids[i] = h_write(c, &b, 1);
  }
  h_read_exact(s, buf, NW);
  for (int i = 0; i < NW; i++) CHECK_EQ(buf[i], (uint8_t)(i * 7 + 3));
  uint64_t prev = 0;
  for (int i = 0; i < NW; i++) {
    h_req *r = h_await(ids[i]);
    CHECK_EQ(r->c.result, 1);
    CHECK(r->c.seq > prev);
    prev = r->c.seq;
  }
  fd_port_stats ps;
  CHECK(fake_dart_port_stats(port, &ps));
  CHECK(ps.messages >= 1 && ps.messages <= ps.triples);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* ---- reads --------------------------------------------------------------------------- */
void test_read_in_chunks(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  static const char msg[] = "0123456789";
  h_write_all(c, msg, 10);
  uint8_t got[10];
  size_t have = 0;
  while (have < 10) {
    h_req *r = h_await(h_read(s, 3));
    CHECK(r->c.result >= 1 && r->c.result <= 3);
    memcpy(got + have, r->c.data, r->c.len);
    have += r->c.len;
    h_release(r);
  }
  CHECK(memcmp(got, msg, 10) == 0);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

void test_reads_in_call_order(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair_any(port, port, &c, &s);
  int64_t r[3];
  for (int i = 0; i < 3; i++) r[i] = h_read(s, 1);
  h_write_all(c, "abc", 3);
  uint64_t prev = 0;
  for (int i = 0; i < 3; i++) {
    h_req *q = h_await(r[i]);
    CHECK_EQ(q->c.result, 1);
    CHECK_EQ(q->c.data[0], "abc"[i]);
    CHECK(q->c.seq > prev);
    prev = q->c.seq;
  }
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}
