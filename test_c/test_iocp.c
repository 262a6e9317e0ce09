/*
 * test_iocp.c -- the IOCP backend's reads (issue 13): a waiting read holds no
 * buffer -- a zero-byte WSARecv learns that the socket is readable, then a
 * non-blocking receive takes what is there -- and the paths of that scheme
 * no OS here produces on demand, driven by the backend's fault hook
 * (ZIG_TCP_IOCP_FAULT, see src/iocp.h): readiness that finds nothing
 * (WSAEWOULDBLOCK after the zero-byte completion) once, and every time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <malloc.h>
#include <winsock2.h>
#include <windows.h>
#endif

#include "byte_stream.h"
#include "harness.h"
#include "test_list.h"

/* Bytes of the C runtime's heap in use, which the engine (a DLL on the same
 * UCRT) allocates from; -1 where this cannot be measured. */
static int64_t heap_bytes_in_use(void) {
#if defined(_WIN32)
  _HEAPINFO info;
  memset(&info, 0, sizeof(info));
  int64_t used = 0;
  int rc;
  while ((rc = _heapwalk(&info)) == _HEAPOK)
    if (info._useflag == _USEDENTRY) used += (int64_t)info._size;
  return rc == _HEAPEND ? used : -1;
#else
  return -1;
#endif
}

#define STREAM_SEED 0x10c9ull

/* Returns once the I/O thread handed every op started before this call to
 * the backend: a connect started now is submitted after them (the loop's
 * commands are FIFO), and its completion comes after its submission. */
static void everything_submitted(int64_t port, int64_t live_listener) {
  int64_t h;
  CHECK_EQ(h_result(h_connect(port, H_LOOPBACK4, 4, tcp_local_port(live_listener), 0, &h)), 0);
  h_close_wait(h);
}

#define IDLE_CONNECTIONS 64
#define IDLE_READ_BYTES 65536
#define IDLE_MESSAGE_BYTES 32768
/* What one waiting read may add to the heap: its op record and the
 * harness's bookkeeping, far below the read's 64 KiB. */
#define IDLE_READ_HEAP_BYTES_MAX 4096

/* Issue 13 item 1. IDLE_CONNECTIONS server connections each echo one 32 KiB
 * message, then wait in a 64 KiB read. The heap may grow by the reads' records,
 * never by their buffers: before the change every waiting read held its 64 KiB
 * (its overlapped WSARecv's buffer), ~4 MiB here. Then every read still gets
 * its byte. Measured with the CRT's heap walk, so Windows (Wine) only; the
 * Linux backends' receive buffers come from a ring or one scratch buffer. */
void test_idle_reads_hold_no_buffer(void) {
  if (heap_bytes_in_use() < 0) SKIP("heap bytes are counted with the C runtime's _heapwalk: Windows only");
  static int64_t client[IDLE_CONNECTIONS], server[IDLE_CONNECTIONS], read_id[IDLE_CONNECTIONS];
  static uint8_t message[IDLE_MESSAGE_BYTES], echoed[IDLE_MESSAGE_BYTES];
  int64_t port = h_port();
  int64_t l = h_listen(port, H_LOOPBACK4, 4, IDLE_CONNECTIONS);
  for (int i = 0; i < IDLE_CONNECTIONS; i++) {
    int64_t a = h_accept(l);
    CHECK_EQ(h_result(h_connect(port, H_LOOPBACK4, 4, tcp_local_port(l), 0, &client[i])), 0);
    server[i] = h_accepted(a);
    memset(message, 'a' + i % 26, sizeof(message));
    h_write_all(client[i], message, sizeof(message));
    h_read_exact(server[i], echoed, sizeof(echoed));
    h_write_all(server[i], echoed, sizeof(echoed));
    h_read_exact(client[i], echoed, sizeof(echoed));
    CHECK(memcmp(message, echoed, sizeof(message)) == 0);
  }
  everything_submitted(port, l);
  int64_t before = heap_bytes_in_use();
  for (int i = 0; i < IDLE_CONNECTIONS; i++) read_id[i] = h_read(server[i], IDLE_READ_BYTES);
  everything_submitted(port, l);
  int64_t after = heap_bytes_in_use();
  int64_t per_read = (after - before) / IDLE_CONNECTIONS;
  printf("  heap per waiting %d-byte read: %lld bytes (%d reads)\n", IDLE_READ_BYTES, (long long)per_read,
         IDLE_CONNECTIONS);
  if (per_read > IDLE_READ_HEAP_BYTES_MAX)
    FAILF("each waiting read added %lld bytes to the heap (at most %d allowed)", (long long)per_read,
          IDLE_READ_HEAP_BYTES_MAX);
  for (int i = 0; i < IDLE_CONNECTIONS; i++) {
    uint8_t tag = (uint8_t)('A' + i % 26);
    h_write_all(client[i], &tag, 1);
  }
  for (int i = 0; i < IDLE_CONNECTIONS; i++) {
    h_req *r = h_await(read_id[i]);
    CHECK_EQ(r->c.result, 1);
    CHECK_EQ(r->c.data[0], (uint8_t)('A' + i % 26));
  }
  for (int i = 0; i < IDLE_CONNECTIONS; i++) {
    h_close_wait(client[i]);
    h_close_wait(server[i]);
  }
  h_close_wait(l);
}

/* ---- readiness that finds nothing, by the fault hook -------------------------- */


/* One connection's traffic under the hook: a waiting one-shot read, then its
 * bytes; then a read stream carrying 256 KiB, intact and in order, and the
 * peer's end of stream as its final completion. */
static void check_reads_survive(void) {
  int64_t port = h_port();
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  int64_t id = h_read(s, 4096);
  everything_submitted(port, l); /* the read waits in its zero-byte WSARecv */
  h_write_all(c, "ping", 4);
  h_req *r = h_await(id);
  CHECK_EQ(r->c.result, 4);
  CHECK(memcmp(r->c.data, "ping", 4) == 0);
  const size_t n = 256 * 1024;
  const int64_t window = 64 * 1024;
  uint8_t *data = malloc(n);
  CHECK(data != NULL);
  byte_stream_fill(STREAM_SEED, 0, data, n);
  int64_t stream = h_stream(s, window);
  int64_t w = h_write(c, data, (int64_t)n);
  h_req *st = h_get(stream);
  while (st->stream_len < n) {
    h_stream_wait(stream, (size_t)st->stream_acked + 1);
    CHECK(!st->done);
    int64_t ack = (int64_t)st->stream_len - st->stream_acked;
    CHECK(ack <= window);
    CHECK_EQ(tcp_read_stream_ack(s, ack), TCP_OK);
    st->stream_acked += ack;
  }
  free(data);
  CHECK_EQ(h_await(w)->c.result, (int64_t)n);
  h_await(h_shutw(c));
  st = h_await(stream);
  CHECK_EQ(st->c.result, 0); /* end of stream */
  CHECK_EQ(st->stream_len, n);
  size_t bad = byte_stream_first_diff(STREAM_SEED, 0, st->stream_bytes, n);
  if (bad != n) FAILF("stream byte %zu of %zu is wrong", bad, n);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}

/* Readiness that finds nothing once per read (WSAEWOULDBLOCK from the
 * non-blocking receive after the zero-byte WSARecv completed): the read
 * waits again and gets its bytes when they come; none is lost or doubled. */
void test_iocp_spurious_readable(void) {
  h_engine_restart_with_fault("iocp", "ZIG_TCP_IOCP_FAULT", "read_spurious=1");
  check_reads_survive();
}

/* Readiness that never finds anything (a provider whose zero-byte WSARecv
 * completes at once although nothing can be received): the backend must not
 * spin re-arming it; after a bounded number of tries the read waits in an
 * overlapped WSARecv with its own buffer, and every byte still arrives. */
void test_iocp_spurious_readable_always(void) {
  h_engine_restart_with_fault("iocp", "ZIG_TCP_IOCP_FAULT", "read_spurious=always");
  check_reads_survive();
}

/* ---- Unix domain sockets where the OS has none ---------------------------------- */

/* Issue 15 on IOCP. A Windows without an AF_UNIX provider (before Windows 10
 * 1803; Wine 8 has none) refuses Unix listeners and connects with a clear
 * code and the OS's reason -- never a crash, a hang or a half-made socket --
 * and TCP keeps working. Where AF_UNIX exists the transport-neutral _unix
 * tests run instead, so this one skips there. */
void test_iocp_unix_without_provider(void) {
  if (strcmp(tcp_backend_name(), "iocp") != 0) SKIP("IOCP only: the Unix backends always have AF_UNIX");
#if defined(_WIN32)
  SOCKET probe = socket(AF_UNIX, SOCK_STREAM, 0);
  if (probe != INVALID_SOCKET) {
    closesocket(probe);
    SKIP("this Windows has AF_UNIX sockets: the _unix tests cover them");
  }
#endif
  static const char path[] = "zt-no-unix.sock";
  int64_t port = h_port();
  CHECK_EQ(tcp_listen_unix(port, (const uint8_t *)path, (int32_t)strlen(path), 0, 0), TCP_ERR_ADDRESS_FAMILY);
  CHECK_EQ(tcp_last_os_error(), 10047); /* WSAEAFNOSUPPORT */
  CHECK_EQ(tcp_connect_unix(port, h_new_id(), (const uint8_t *)path, (int32_t)strlen(path), 0),
           TCP_ERR_ADDRESS_FAMILY);
  CHECK_EQ(tcp_last_os_error(), 10047);
  int64_t c, s;
  int64_t l = h_pair(port, port, H_LOOPBACK4, 4, &c, &s);
  h_write_all(c, "tcp", 3);
  uint8_t got[3];
  h_read_exact(s, got, 3);
  CHECK(memcmp(got, "tcp", 3) == 0);
  h_close_wait(c);
  h_close_wait(s);
  h_close_wait(l);
}
