/*
 * fuzz_calls.c -- the fuzzer's operations on listeners and connections:
 * listen, connect, accept, read, write, shutdown_write, close, the finalizer,
 * made-up handles, bad arguments, the accessors, a port that closes. Each
 * checks what the call returned against the contract (tcp.h) and registers
 * the request it started with the model (fuzz_model.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

int64_t pick_port(reader *in) { return (rd8(in) & 1) ? port_b : port_a; }

/* A rec index chosen by the input, of the wanted kind (-1: any). */
int pick_rec(reader *in, int want_listener) {
  if (nrecs == 0) return -1;
  int start = rd8(in) % nrecs;
  for (int k = 0; k < nrecs; k++) {
    int i = (start + k) % nrecs;
    if (want_listener < 0 || recs[i].listener == (want_listener == 1)) return i;
  }
  return -1;
}

/* The refusal a call on rec ri must get, or 0 if it must be accepted. */
int32_t expected_refusal(int ri) {
  rec *r = &recs[ri];
  if (!engine_up) return TCP_ERR_NOT_INITIALIZED;
  if (r->state != R_LIVE) return TCP_ERR_CLOSED;
  return 0;
}

/* ---- Unix listeners: paths in a directory of this process, or abstract names */
static char unix_dir[40];
static unsigned unix_next;

static void remove_unix_dir(void) {
  /* The engine removed every socket file it made; anything else is a finding
   * the next run would trip over, so rmdir simply fails then. */
  rmdir(unix_dir);
}

/* A fresh path (abstract: a leading NUL, Linux only) into r. */
static void fresh_unix_path(rec *r, bool abstract) {
  if (unix_dir[0] == '\0') {
    snprintf(unix_dir, sizeof unix_dir, "/tmp/zt-fuzz-%d", (int)getpid());
    if (mkdir(unix_dir, 0700) != 0 && errno != EEXIST) fail("mkdir %s: %s", unix_dir, strerror(errno));
    atexit(remove_unix_dir);
  }
#if !defined(__linux__)
  abstract = false;
#endif
  char *at = (char *)r->path + (abstract ? 1 : 0);
  int n = abstract ? snprintf(at, sizeof r->path - 1, "zt-fuzz-%d-%u", (int)getpid(), ++unix_next)
                   : snprintf(at, sizeof r->path, "%s/l%u", unix_dir, ++unix_next);
  REQUIRE(n > 0 && n < (int)sizeof r->path - 1, "unix path length %d", n);
  r->path[0] = abstract ? 0 : r->path[0];
  r->path_len = n + (abstract ? 1 : 0);
}

static void op_listen_unix(uint8_t flags, int64_t port, int32_t backlog) {
  rec tmp;
  fresh_unix_path(&tmp, (flags >> 5) & 1);
  int32_t shared = (flags >> 3) & 1;
  int64_t h = tcp_listen_unix(port, tmp.path, tmp.path_len, backlog, shared);
  if (!engine_up) {
    REQUIRE(h == TCP_ERR_NOT_INITIALIZED, "unix listen while down: %lld", (long long)h);
    return;
  }
  REQUIRE(h > 0, "unix listen failed: %lld (%s, os %d)", (long long)h, tcp_strerror(h), tcp_last_os_error());
  int ri = new_rec(true, h, port, FAMILY_UNIX);
  memcpy(recs[ri].path, tmp.path, sizeof tmp.path);
  recs[ri].path_len = tmp.path_len;
  if (g_trace) fprintf(stderr, "[trace] listen unix: rec %d (handle %llx) abstract %d shared %d\n", ri, (long long)h, tmp.path[0] == 0, shared);
  uint8_t got[TCP_UNIX_PATH_BYTES_MAX];
  REQUIRE(tcp_local_path(h, got, sizeof got) == tmp.path_len && memcmp(got, tmp.path, (size_t)tmp.path_len) == 0,
          "listener path");
  REQUIRE(tcp_local_port(h) == TCP_ERR_NOT_TCP, "port of a unix listener");
}

/* Connect rec-less: to the listener l, whatever its transport. */
static int64_t connect_raw(const rec *l, int64_t port, int64_t id, int64_t timeout_ms) {
  if (l->family == FAMILY_UNIX) return tcp_connect_unix(port, id, l->path, l->path_len, timeout_ms);
  bool v6 = l->family == 6;
  return tcp_connect(port, id, v6 ? LO6 : LO4, v6 ? 16 : 4, l->tcp_port, NULL, 0, 0, timeout_ms);
}

/* A new connection's rec knows its listener's endpoint. */
static int new_connection_rec(int64_t h, int64_t port, const rec *l) {
  int ri = new_rec(false, h, port, l->family);
  recs[ri].tcp_port = l->tcp_port;
  memcpy(recs[ri].path, l->path, sizeof l->path);
  recs[ri].path_len = l->path_len;
  return ri;
}

void op_listen(reader *in) {
  uint8_t flags = rd8(in);
  int64_t port = pick_port(in);
  bool v6 = flags & 1;
  if (flags & 0x10) {
    op_listen_unix(flags, port, (flags & 2) ? (int32_t)(rd8(in) % 8) : 0);
    return;
  }
  int32_t backlog = (flags & 2) ? (int32_t)(rd8(in) % 8) : 0;
  int64_t h = tcp_listen(port, v6 ? LO6 : LO4, v6 ? 16 : 4, 0, backlog, (flags >> 2) & 1, (flags >> 3) & 1);
  if (!engine_up) {
    REQUIRE(h == TCP_ERR_NOT_INITIALIZED, "listen while down: %lld", (long long)h);
    return;
  }
  REQUIRE(h > 0, "listen on loopback failed: %lld (%s, os %d)", (long long)h, tcp_strerror(h),
          tcp_last_os_error());
  int ri = new_rec(true, h, port, v6 ? 6 : 4);
  if (g_trace) fprintf(stderr, "[trace] listen: rec %d (handle %llx) v6 %d backlog %d shared %d\n", ri, (long long)h, v6, backlog, (flags >> 3) & 1);
  int32_t p = tcp_local_port(h);
  REQUIRE(p > 0 && p < 65536, "listener port %d", p);
  recs[ri].tcp_port = p;
  uint8_t a[16];
  REQUIRE(tcp_local_address(h, a) == (v6 ? 16 : 4), "listener address length");
}

static int connect_to(int li, int64_t port, int64_t timeout_ms) {
  rec *l = &recs[li];
  int idx = add_req(K_CONNECT, nrecs, port, 0);
  int64_t h = connect_raw(l, port, id_of(idx), timeout_ms);
  if (!engine_up) {
    REQUIRE(h == TCP_ERR_NOT_INITIALIZED, "connect while down: %lld", (long long)h);
    drop_req((int32_t)h);
    return -1;
  }
  REQUIRE(h > 0, "connect to loopback refused: %lld (%s, os %d)", (long long)h, tcp_strerror(h),
          tcp_last_os_error());
  int ri = new_connection_rec(h, port, l);
  REQUIRE(ri == reqs[idx].rec, "rec bookkeeping");
  return ri;
}

void op_connect(reader *in) {
  uint8_t flags = rd8(in);
  int64_t port = pick_port(in);
  int li = pick_rec(in, 1);
  if (li < 0) return;
  int64_t timeout = (flags & 1) ? (int64_t)rd8(in) * 8 : 0;
  connect_to(li, port, timeout);
}

void op_accept(reader *in) {
  int li = pick_rec(in, 1);
  if (li < 0) return;
  int idx = add_req(K_ACCEPT, li, recs[li].port, 0);
  int32_t rc = tcp_accept(recs[li].handle, id_of(idx));
  int32_t want = expected_refusal(li);
  REQUIRE(rc == want, "accept on rec %d: got %d, expected %d", li, rc, want);
  if (rc != 0) drop_req(rc);
}

static int64_t size_of_class(reader *in) {
  uint8_t c = rd8(in);
  switch (c & 7) {
    case 0: return 0;
    case 1: return 1 + (c >> 3) % 16;
    case 2: case 3: return 1 + rd16(in) % 1024;
    case 4: case 5: return 1 + rd16(in) % 16384;
    case 6: return 1 + rd16(in);
    default: return (c & 0x80) ? BIG_WRITE : 1 + rd16(in) % 200;
  }
}

/* Read, write and shutdown_write on a connection: accepted, or refused with
 * exactly the code the contract gives. */
void check_io_refusal(int ri, int32_t rc, const char *what) {
  rec *r = &recs[ri];
  int32_t want = expected_refusal(ri);
  if (want == 0 && r->listener) want = TCP_ERR_BAD_HANDLE;
  if (want == 0 && rc == TCP_ERR_NOT_CONNECTED && !r->accepted) return; /* its connect failed */
  REQUIRE(rc == want, "%s on rec %d (%s): got %d (%s), expected %d", what, ri,
          r->listener ? "listener" : "connection", rc, tcp_strerror(rc), want);
}

/* A one-shot read on rec ri: refused with TCP_ERR_BUSY while its read stream
 * runs, accepted again once the stream was stopped (or has ended). */
void read_on(int ri, int64_t max) {
  int32_t busy = read_side_busy(ri);
  int idx = add_req(K_READ, ri, recs[ri].port, max);
  int32_t rc = tcp_read(recs[ri].handle, id_of(idx), max);
  if (rc != 0) drop_req(rc);
  if (rc == TCP_ERR_BUSY) {
    REQUIRE(busy == TCP_ERR_BUSY && expected_refusal(ri) == 0, "read on rec %d: TCP_ERR_BUSY with no stream running",
            ri);
    return;
  }
  check_io_refusal(ri, rc, "read");
  if (rc == 0) note_read_accepted(idx);
}

void op_read(reader *in) {
  int ri = pick_rec(in, rd8(in) < 16 ? -1 : 0);
  if (ri < 0) return;
  int64_t max = size_of_class(in);
  if (max == 0) max = 1;
  if (max == BIG_WRITE && (rd8(in) & 1) && huge_reads < 2) {
    max = TCP_READ_BYTES_MAX; /* the largest legal read */
    huge_reads++;
  }
  read_on(ri, max);
}

void op_write(reader *in) {
  int ri = pick_rec(in, rd8(in) < 16 ? -1 : 0);
  if (ri < 0) return;
  rec *r = &recs[ri];
  int64_t len = size_of_class(in);
  uint8_t *buf = len > 0 ? malloc((size_t)len) : NULL;
  if (len > 0) stream_fill(r->out_seed, r->out_queued, buf, (size_t)len);
  int idx = add_req(K_WRITE, ri, r->port, len);
  reqs[idx].write_seq = r->writes_issued;
  int32_t rc = tcp_write(r->handle, id_of(idx), buf, len);
  /* The engine copied the bytes: scribbling over them now must not matter. */
  if (buf != NULL) memset(buf, 0xEE, (size_t)len);
  free(buf);
  if (rc == 0) {
    r->writes_issued++;
    r->out_queued += (uint64_t)len;
  } else {
    drop_req(rc);
  }
  check_io_refusal(ri, rc, "write");
}

void op_shutw(reader *in) {
  int ri = pick_rec(in, rd8(in) < 16 ? -1 : 0);
  if (ri < 0) return;
  int idx = add_req(K_SHUTW, ri, recs[ri].port, 0);
  int32_t rc = tcp_shutdown_write(recs[ri].handle, id_of(idx));
  if (rc != 0) drop_req(rc);
  else recs[ri].shutw_issued = true;
  check_io_refusal(ri, rc, "shutdown_write");
}

void close_rec(int ri) {
  rec *r = &recs[ri];
  int idx = add_req(K_CLOSE, ri, r->port, 0);
  int32_t rc = tcp_close(r->handle, id_of(idx));
  int32_t want = expected_refusal(ri);
  REQUIRE(rc == want, "close of rec %d: got %d, expected %d", ri, rc, want);
  if (rc != 0) {
    drop_req(rc);
    return;
  }
  r->state = R_CLOSED;
  r->close_req = idx;
}

void op_close(reader *in) {
  int ri = pick_rec(in, -1);
  if (ri >= 0) close_rec(ri); /* a second close of the same rec is a double close */
}

void op_finalizer(reader *in) {
  int ri = pick_rec(in, -1);
  if (ri < 0) return;
  tcp_close_finalizer((void *)(intptr_t)recs[ri].handle);
  if (g_trace) fprintf(stderr, "[trace] finalizer on rec %d (handle %llx)\n", ri, (long long)recs[ri].handle);
  input_used_finalizer = true;
  if (recs[ri].state == R_LIVE && engine_up) recs[ri].state = R_FINALIZED;
}

/* A made-up handle: from the input, or a twist of a real one. */
static bool accept_outstanding(void) {
  for (int i = 0; i < nreqs; i++)
    if (!reqs[i].done && reqs[i].kind == K_ACCEPT) return true;
  return false;
}

static int64_t made_up_handle(reader *in) {
  uint8_t how = rd8(in);
  int ri = pick_rec(in, -1);
  int64_t h;
  /* An accepted socket whose completion is still on its way has a live handle
   * that no rec knows yet: a made-up value could name it for real. Only
   * values that can never be such a handle are used then. */
  if (how % 6 == 0 || how % 6 == 1 || how % 6 == 3) { /* 1: a freed slot's next generation */
    poll_now();
    if (accept_outstanding()) how = 2;
  }
  switch (how % 6) {
    case 0: h = (int64_t)rd64(in); break;
    case 1: h = ri >= 0 ? recs[ri].handle + ((int64_t)1 << 32) : 1; break;  /* future generation */
    case 2: h = ri >= 0 ? recs[ri].handle - ((int64_t)1 << 32) : 2; break;  /* past generation */
    case 3: h = ri >= 0 ? recs[ri].handle + 4096 : 3; break;                  /* far slot */
    case 4: h = -(int64_t)rd32(in); break;
    default: h = (int64_t)rd8(in); break;                                       /* generation 0 */
  }
  for (int i = 0; i < nrecs; i++)
    if (recs[i].state == R_LIVE && recs[i].handle == h) return INT64_MIN; /* not made up */
  return h;
}

void op_bad_handle(reader *in) {
  int64_t h = made_up_handle(in);
  if (h == INT64_MIN) return;
  uint8_t which = rd8(in);
  int32_t rc;
  uint8_t buf[16] = {0};
  int64_t id = spare_id();
  switch (which % 13) {
    case 0: rc = tcp_accept(h, id); break;
    case 1: rc = tcp_read(h, id, 100); break;
    case 2: rc = tcp_write(h, id, buf, sizeof buf); break;
    case 3: rc = tcp_shutdown_write(h, id); break;
    case 4: rc = tcp_close(h, id); break;
    case 5: rc = tcp_local_port(h); break;
    case 6: rc = tcp_remote_address(h, buf); break;
    case 7: rc = tcp_get_no_delay(h); break;
    case 8: rc = tcp_set_keep_alive(h, 1); break;
    case 9: rc = tcp_read_stream(h, id, 1 + rd16(in)); break;
    case 10: rc = tcp_read_stream_ack(h, 1 + rd8(in)); break;
    case 11: rc = tcp_read_stream_stop(h); break;
    default: tcp_close_finalizer((void *)(intptr_t)h); return;
  }
  if (!engine_up)
    REQUIRE(rc == TCP_ERR_NOT_INITIALIZED, "made-up handle %llx while down: %d", (long long)h, rc);
  else
    REQUIRE(rc == TCP_ERR_BAD_HANDLE || rc == TCP_ERR_CLOSED,
            "made-up handle %llx (call %d) got %d (%s)", (long long)h, which % 13, rc, tcp_strerror(rc));
}

/* Bad arguments on real handles: each must be refused with
 * TCP_ERR_INVALID_ARGUMENT, before the handle is even looked at. */
void op_bad_args(reader *in) {
  uint8_t which = rd8(in);
  int ri = pick_rec(in, -1);
  int64_t h = ri >= 0 ? recs[ri].handle : 1;
  int64_t id = spare_id();
  uint8_t small[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  int64_t r64 = 0;
  int32_t rc = 0, want = TCP_ERR_INVALID_ARGUMENT;
  uint8_t path[TCP_UNIX_PATH_BYTES_MAX + 2];
  memset(path, 'p', sizeof path);
  path[0] = '/';
  switch (which % 20) {
    /* Unix paths: too long (PATH_TOO_LONG, checked below), a NUL inside, none */
    case 17: r64 = tcp_listen_unix(port_a, path, (int32_t)sizeof path - (int32_t)(rd8(in) % 3), 0, 0);
             want = TCP_ERR_PATH_TOO_LONG; /* sun_path has at most 108 bytes anywhere */
             break;
    case 18: path[1 + rd8(in) % 20] = 0;
             r64 = tcp_connect_unix(port_a, id, path, 24, 0);
             break;
    case 19: r64 = tcp_listen_unix(port_a, path, -(int32_t)(rd8(in) % 2), 0, 0); break;
    case 0: rc = tcp_read(h, id, 0); break;
    case 1: rc = tcp_read(h, id, -(int64_t)rd32(in) - 1); break;
    case 2: rc = tcp_read(h, id, (int64_t)TCP_READ_BYTES_MAX + 1 + rd32(in)); break;
    case 3: rc = tcp_write(h, id, NULL, 1 + rd16(in)); break;
    case 4: rc = tcp_write(h, id, small, -1 - (int64_t)rd16(in)); break;
    /* Oversized: the engine must refuse without touching the 8-byte buffer. */
    case 5: rc = tcp_write(h, id, small, (int64_t)TCP_WRITE_BYTES_MAX + 1 + rd32(in)); break;
    case 6: r64 = tcp_listen(port_a, NULL, 4, 0, 0, 0, 0); break;
    case 7: {
      /* A length the engine must refuse (4, 16 and 20 -- IPv6 with a scope id
       * -- are valid), over a buffer that really has that many bytes. */
      uint8_t addr[32] = {127, 0, 0, 1};
      int32_t len = rd8(in) % 32;
      if (len == 4 || len == 16 || len == 20) len++;
      r64 = tcp_listen(port_a, addr, len, 0, 0, 0, 0);
      break;
    }
    case 8: r64 = tcp_listen(port_a, LO4, 4, 65536 + rd16(in), 0, 0, 0); break;
    case 9: r64 = tcp_connect(port_a, id, LO4, 4, 0, NULL, 0, 0, 0); break; /* port 0 */
    case 10: r64 = tcp_connect(port_a, id, NULL, 16, 80, NULL, 0, 0, 0); break;
    case 11: r64 = tcp_connect(port_a, id, LO4, 4, 1 + rd16(in) % 65535, LO6, 16, 0, 0); break; /* family mismatch */
    case 12: rc = tcp_local_address(h, NULL); break;
    /* A stream's window is checked before the handle, like a read's size. */
    case 13: rc = tcp_read_stream(h, id, 0); break;
    case 14: rc = tcp_read_stream(h, id, -(int64_t)rd32(in) - 1); break;
    case 15: rc = tcp_read_stream(h, id, (int64_t)TCP_READ_BYTES_MAX + 1 + rd32(in)); break;
    default: r64 = tcp_connect(port_a, id, LO4, 4, -1 - (int32_t)rd16(in), NULL, 0, 0, 0); break;
  }
  if (r64 != 0) rc = (int32_t)r64;
  REQUIRE(rc == want, "bad arguments (case %d) got %d (%s)", which % 20, rc,
          tcp_strerror(rc));
}

/* A zero-length write with a NULL buffer is legal. */
void op_null_empty_write(reader *in) {
  int ri = pick_rec(in, 0);
  if (ri < 0) return;
  rec *r = &recs[ri];
  int idx = add_req(K_WRITE, ri, r->port, 0);
  reqs[idx].write_seq = r->writes_issued;
  int32_t rc = tcp_write(r->handle, id_of(idx), NULL, 0);
  if (rc == 0) r->writes_issued++;
  else drop_req(rc);
  check_io_refusal(ri, rc, "empty write");
}

/* The accessors of a live Unix socket: its paths, and TCP_ERR_NOT_TCP for
 * every TCP/IP one (tcp.h). */
static void unix_accessors(int ri, uint8_t which) {
  rec *r = &recs[ri];
  uint8_t p[TCP_UNIX_PATH_BYTES_MAX], a[16];
  int32_t rc;
  switch (which % 6) {
    case 0:
      rc = tcp_local_path(r->handle, p, sizeof p);
      if (r->listener || r->accepted)
        REQUIRE(rc == r->path_len && memcmp(p, r->path, (size_t)rc) == 0, "local path of rec %d: %d", ri, rc);
      else
        REQUIRE(rc == 0, "local path of a unix client rec %d: %d", ri, rc);
      REQUIRE(tcp_local_address(r->handle, a) == TCP_ERR_NOT_TCP, "local address of a unix rec");
      break;
    case 1:
      rc = tcp_remote_path(r->handle, p, sizeof p);
      if (r->listener) REQUIRE(rc == TCP_ERR_BAD_HANDLE, "remote path of a listener: %d", rc);
      else if (r->accepted) REQUIRE(rc == 0 || rc == TCP_ERR_NOT_CONNECTED, "remote path of an accepted rec: %d", rc);
      else REQUIRE((rc == r->path_len && memcmp(p, r->path, (size_t)rc) == 0) || rc == TCP_ERR_NOT_CONNECTED,
                   "remote path of a unix client rec %d: %d", ri, rc);
      break;
    case 2:
      rc = tcp_remote_port(r->handle);
      REQUIRE(rc == (r->listener ? TCP_ERR_BAD_HANDLE : TCP_ERR_NOT_TCP), "remote port of a unix rec: %d", rc);
      REQUIRE(tcp_local_port(r->handle) == TCP_ERR_NOT_TCP, "local port of a unix rec");
      break;
    default:
      rc = (which % 6 == 3) ? tcp_set_no_delay(r->handle, 1) : tcp_get_keep_alive(r->handle);
      REQUIRE(rc == (r->listener ? TCP_ERR_BAD_HANDLE : TCP_ERR_NOT_TCP), "option on a unix rec: %d", rc);
      break;
  }
}

void op_accessors(reader *in) {
  int ri = pick_rec(in, -1);
  if (ri < 0) return;
  rec *r = &recs[ri];
  int32_t want = expected_refusal(ri);
  uint8_t a[16];
  uint8_t which = rd8(in);
  int32_t rc;
  bool unix_sock = r->family == FAMILY_UNIX;
  if (unix_sock && want == 0 && which % 6 <= 4) {
    unix_accessors(ri, which);
    return;
  }
  switch (which % 6) {
    case 0:
      rc = tcp_local_address(r->handle, a);
      if (want == 0) REQUIRE(rc == (r->family == 6 ? 16 : 4), "local address of rec %d: %d", ri, rc);
      else REQUIRE(rc == want, "local address of rec %d: %d, expected %d", ri, rc, want);
      break;
    case 1:
      rc = tcp_local_port(r->handle);
      if (want == 0) REQUIRE(rc >= 0 && rc < 65536, "local port of rec %d: %d", ri, rc);
      else REQUIRE(rc == want, "local port of rec %d: %d, expected %d", ri, rc, want);
      break;
    case 2:
      rc = tcp_remote_port(r->handle);
      if (want == 0 && r->listener) REQUIRE(rc == TCP_ERR_BAD_HANDLE, "remote port of a listener: %d", rc);
      else if (want == 0) REQUIRE((rc > 0 && rc < 65536) || rc == TCP_ERR_NOT_CONNECTED, "remote port of rec %d: %d", ri, rc);
      else REQUIRE(rc == want, "remote port of rec %d: %d, expected %d", ri, rc, want);
      if (want == 0 && r->accepted) REQUIRE(rc > 0 || rc == TCP_ERR_NOT_CONNECTED, "accepted socket without a peer port");
      break;
    case 3:
    case 4: {
      bool nodelay = which % 6 == 3;
      int32_t on = (which >> 4) & 1;
      rc = nodelay ? tcp_set_no_delay(r->handle, on) : tcp_set_keep_alive(r->handle, on);
      if (want == 0 && r->listener) {
        REQUIRE(rc == TCP_ERR_BAD_HANDLE, "option on a listener: %d", rc);
        break;
      }
      if (want != 0) {
        REQUIRE(rc == want, "option on rec %d: %d, expected %d", ri, rc, want);
        break;
      }
      REQUIRE(rc == 0, "set option on rec %d: %d (%s, os %d)", ri, rc, tcp_strerror(rc), tcp_last_os_error());
      int32_t got = nodelay ? tcp_get_no_delay(r->handle) : tcp_get_keep_alive(r->handle);
      REQUIRE(got == on, "option set to %d reads back %d", on, got);
      break;
    }
    default: {
      int64_t code = -(int64_t)rd8(in);
      const char *s = tcp_strerror(code);
      REQUIRE(s != NULL && s[0] != '\0', "tcp_strerror(%lld) empty", (long long)code);
      (void)tcp_last_os_error();
      REQUIRE(tcp_backend_name() == NULL || strcmp(tcp_backend_name(), g_backend) == 0, "backend name changed");
      break;
    }
  }
}

/* listen if needed, connect, accept, and give the accept a moment. */
void op_pair(reader *in) {
  int li = -1;
  for (int i = nrecs - 1; i >= 0; i--)
    if (recs[i].listener && recs[i].state == R_LIVE) {
      li = i;
      break;
    }
  if (li < 0) {
    op_listen(in);
    li = nrecs - 1;
    if (li < 0 || !recs[li].listener || recs[li].state != R_LIVE) return;
  }
  int64_t port = pick_port(in);
  if (connect_to(li, port, 0) < 0) return;
  int idx = add_req(K_ACCEPT, li, recs[li].port, 0);
  int32_t rc = tcp_accept(recs[li].handle, id_of(idx));
  REQUIRE(rc == 0, "accept on a live listener: %d", rc);
  for (int k = 0; k < 8 && !reqs[idx].done; k++) wait_some(5);
}

/* A socket whose port goes away: every post to it is refused, and the engine
 * must free what those messages carried. Its requests are not tracked. */
void op_temp_port(reader *in) {
  int li = pick_rec(in, 1);
  if (li < 0 || recs[li].state != R_LIVE || !engine_up) return;
  int64_t tp = fake_dart_open_port();
  input_used_temp_port = true;
  input_used_finalizer = true;
  rec *l = &recs[li];
  int64_t h = connect_raw(l, tp, spare_id(), 0);
  REQUIRE(h > 0, "connect on a temporary port: %lld", (long long)h);
  int ri = new_connection_rec(h, tp, l);
  recs[ri].temp_port = true;
  uint8_t byte = 42;
  (void)tcp_write(h, spare_id(), &byte, 1); /* its data never reaches a reader check (no header) */
  uint8_t how = rd8(in);
  if (how & 0x80) (void)tcp_read_stream(h, spare_id(), 1 + (how & 0x7f)); /* DATA posts are refused too */
  else (void)tcp_read(h, spare_id(), 1 + how);
  fake_dart_close_port(tp);
  if (rd8(in) & 1) {
    REQUIRE(tcp_close(h, spare_id()) == 0, "close on a temporary port");
  } else {
    tcp_close_finalizer((void *)(intptr_t)h);
  }
  recs[ri].state = R_FINALIZED;
  recs[ri].out_seed = 0; /* never a stream header */
}
