/*
 * engine_server.c -- the zig_tcp engine as an echo (or sink) server, driven
 * exactly the way the Dart library drives it: completions arrive as messages
 * on native ports (test_c/fake_dart stands in for the VM: deep-copying
 * Dart_PostCObject, external typed data with finalizers, a blocking receive),
 * and a consumer thread per "isolate" reacts to each completion by calling the
 * public C API -- nothing Dart could not do:
 *
 *   accept done -> set noDelay, start a read on the new connection, accept again
 *   read done   -> echo: tcp_write of the received bytes (the engine copies them),
 *                  then drop the Uint8List (its finalizer runs) and read again;
 *                  sink: drop it and read again;
 *                  0 / error: tcp_close
 *   close done  -> forget the connection
 *
 * That is the ONE-SHOT driver (Connection.read() in lib/src/connection.dart).
 * The STREAM driver is what ZigSocket's Stream<Uint8List> does
 * (lib/src/socket.dart, read_stream.dart): one tcp_read_stream per connection
 * with a window, and per DATA completion the listener's work first, then the
 * acknowledgement -- in the consumer thread, after the "isolate" consumed the
 * bytes, as _onReadData does (_controller.add(data), then ack(data.length)):
 *
 *   accept done -> set noDelay, tcp_read_stream(WINDOW_BYTES), accept again
 *   DATA        -> echo: tcp_write of the bytes; drop the Uint8List;
 *                  tcp_read_stream_ack(its length)   (sink: drop it, ack)
 *   FINAL       -> 0 / error: tcp_close (CLOSED / SHUTDOWN: a close already runs)
 *
 * With ISOLATES > 1 each isolate has its own port and its own listener, bound
 * to the same port with shared = 1 (Dart's ServerSocket.bind(shared: true)).
 * The backend is the engine's default, or ZIG_TCP_BACKEND=io_uring|uv.
 *
 *   engine_server PORT|--unix PATH [echo|sink] [READ_BYTES] [ISOLATES] [READS_IN_FLIGHT]
 *                 [oneshot|stream] [WINDOW_BYTES]
 *
 * --unix PATH listens on a Unix stream socket at PATH (tcp_listen_unix; with
 * ISOLATES > 1 shared, keyed by the path) instead of 127.0.0.1:PORT, and sets
 * no noDelay on its connections (TCP-only: TCP_ERR_NOT_TCP there). The engine
 * removes the socket file when tcp_shutdown closes the listener.
 *
 * READS_IN_FLIGHT (one-shot driver; default 1, what Connection.read() callers
 * do) keeps that many tcp_read calls queued per connection (the engine serves
 * them in call order), to measure what a read-ahead would gain. The stream
 * driver ignores READ_BYTES and READS_IN_FLIGHT (the engine sizes its own
 * receives, at most 64 KiB each); WINDOW_BYTES defaults to 256 KiB, ZigSocket's
 * readWindowBytes.
 *
 * Prints "ready PORT BACKEND DRIVER" (--unix: "ready PATH BACKEND DRIVER") once listening; SIGTERM / SIGINT shut the
 * engine down cleanly (tcp_shutdown) and print batching counters on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_dart.h"
#include "tcp.h"

enum { OP_ACCEPT = 1, OP_READ = 2, OP_WRITE = 3, OP_CLOSE = 4, OP_STREAM = 5 };
#define OP_BITS 3
#define ACCEPTS_IN_FLIGHT 4
#define BATCH_MAX 256

typedef struct isolate {
  int index;
  int64_t port;
  int64_t listener;
  pthread_t thread;
  /* connection table: slot -> handle, with a free list */
  int64_t *handles;
  uint32_t *free_slots;
  uint32_t cap, used, nfree;
  /* counters */
  uint64_t completions, batches, reads, writes, bytes, accepts, closes, errors, acks;
  uint64_t ended_by_shutdown; /* reads / streams tcp_shutdown ended: one per connection still open then
                               * (with one read in flight per connection, the default) */
} isolate;

static int g_sink;
static int64_t g_read_bytes = 65536;
static int g_reads_in_flight = 1;
static int g_stream;                        /* the stream driver, else one-shot */
static int64_t g_window_bytes = 256 * 1024; /* ZigSocket.readWindowBytes */
static const char *g_unix_path;             /* a Unix socket path, else TCP */
static atomic_int g_stopping;
static atomic_int g_shutdown_done; /* tcp_shutdown returned: every completion is posted */

static int64_t rid(uint32_t slot, int op) { return ((int64_t)slot << OP_BITS) | op; }

static uint32_t slot_alloc(isolate *iso, int64_t handle) {
  uint32_t s;
  if (iso->nfree) {
    s = iso->free_slots[--iso->nfree];
  } else {
    if (iso->used == iso->cap) {
      iso->cap = iso->cap ? iso->cap * 2 : 1024;
      iso->handles = realloc(iso->handles, iso->cap * sizeof *iso->handles);
      iso->free_slots = realloc(iso->free_slots, iso->cap * sizeof *iso->free_slots);
      if (!iso->handles || !iso->free_slots) abort();
    }
    s = iso->used++;
  }
  iso->handles[s] = handle;
  return s;
}

static void slot_free(isolate *iso, uint32_t s) {
  iso->handles[s] = 0;
  iso->free_slots[iso->nfree++] = s;
}

/* Starts closing the connection in slot (once): its handle is kept negated
 * until the close completes, so late completions of other queued reads are
 * recognized and ignored. */
static void close_slot(isolate *iso, uint32_t slot) {
  int64_t h = iso->handles[slot];
  if (h <= 0) return;
  iso->handles[slot] = -h;
  if (tcp_close(h, rid(slot, OP_CLOSE)) < 0) slot_free(iso, slot);
}

static void start_read(isolate *iso, uint32_t slot) {
  int64_t h = iso->handles[slot];
  if (h <= 0) return;
  int32_t r = tcp_read(h, rid(slot, OP_READ), g_read_bytes);
  if (r < 0) {
    iso->errors++;
    close_slot(iso, slot);
  }
}

/* An error that is not part of an ordinary end (the peer's reset, our own
 * close or shutdown). */
static int unexpected_error(int64_t result) {
  return result < 0 && result != TCP_ERR_CLOSED && result != TCP_ERR_SHUTDOWN &&
         result != TCP_ERR_CONNECTION_RESET && result != TCP_ERR_BROKEN_PIPE;
}

/* Starts the stream driver's one read stream on a new connection. */
static void start_stream(isolate *iso, uint32_t slot) {
  int32_t r = tcp_read_stream(iso->handles[slot], rid(slot, OP_STREAM), g_window_bytes);
  if (r < 0) {
    iso->errors++;
    close_slot(iso, slot);
  }
}

static void on_accept(isolate *iso, fd_completion *c) {
  if (c->result > 0) {
    iso->accepts++;
    uint32_t s = slot_alloc(iso, c->result);
    if (!g_unix_path) tcp_set_no_delay(c->result, 1);
    if (g_stream) start_stream(iso, s);
    else for (int k = 0; k < g_reads_in_flight; k++) start_read(iso, s);
    tcp_accept(iso->listener, rid(0, OP_ACCEPT));
  } else if (c->result != TCP_ERR_CLOSED && c->result != TCP_ERR_SHUTDOWN && !atomic_load(&g_stopping)) {
    iso->errors++;
    tcp_accept(iso->listener, rid(0, OP_ACCEPT)); /* e.g. EMFILE: keep accepting */
  }
}

/* Bytes that arrived (either driver): echoed, or dropped by the sink. The
 * Uint8List becomes garbage once the "listener" returns. */
static void consume_bytes(isolate *iso, uint32_t slot, fd_completion *c) {
  iso->reads++;
  iso->bytes += (uint64_t)c->result;
  if (!g_sink) {
    if (tcp_write(iso->handles[slot], rid(slot, OP_WRITE), c->data, (int64_t)c->len) == 0) iso->writes++;
    else iso->errors++;
  }
  fake_dart_release(c);
}

/* A connection's reading ended (result <= 0: end of stream, an error, or the
 * engine closing it): count it, and close the connection unless the engine
 * already does. */
static void reading_ended(isolate *iso, uint32_t slot, int64_t result) {
  if (unexpected_error(result)) iso->errors++;
  if (result == TCP_ERR_SHUTDOWN) iso->ended_by_shutdown++;
  if (result != TCP_ERR_CLOSED && result != TCP_ERR_SHUTDOWN) close_slot(iso, slot);
}

static void on_read(isolate *iso, uint32_t slot, fd_completion *c) {
  if (iso->handles[slot] <= 0) return; /* closing: a late read of a closed connection */
  if (c->result > 0) {
    consume_bytes(iso, slot, c);
    start_read(iso, slot);
    return;
  }
  reading_ended(iso, slot, c->result);
}

/* A read stream's completion: DATA (result > 0) is consumed, then
 * acknowledged, as ZigSocket does for an unpaused listener; the FINAL one
 * (result <= 0) ends the connection unless a close already runs. */
static void on_stream(isolate *iso, uint32_t slot, fd_completion *c) {
  if (iso->handles[slot] <= 0) return; /* closing: the stream's last chunks have no reader */
  if (c->result > 0) {
    int64_t bytes = c->result;
    consume_bytes(iso, slot, c);
    /* refused only once the stream is over in the engine: its final follows */
    if (tcp_read_stream_ack(iso->handles[slot], bytes) == TCP_OK) iso->acks++;
    return;
  }
  reading_ended(iso, slot, c->result);
}

static void on_completion(isolate *iso, fd_completion *c) {
  int op = (int)(c->request_id & ((1 << OP_BITS) - 1));
  uint32_t slot = (uint32_t)(c->request_id >> OP_BITS);
  iso->completions++;
  switch (op) {
    case OP_ACCEPT: on_accept(iso, c); break;
    case OP_READ: on_read(iso, slot, c); break;
    case OP_STREAM: on_stream(iso, slot, c); break;
    case OP_WRITE:
      if (unexpected_error(c->result)) iso->errors++;
      break;
    case OP_CLOSE:
      iso->closes++;
      slot_free(iso, slot);
      break;
    default:
      iso->errors++;
  }
  fake_dart_release(c);
}

static void *isolate_main(void *arg) {
  isolate *iso = arg;
  fd_completion batch[BATCH_MAX];
  for (;;) {
    /* Once tcp_shutdown has returned, the queue holds the last completions:
     * take them all, then stop (closing the port first would drop them, as
     * closing a Dart port does). */
    bool shut = atomic_load(&g_shutdown_done);
    size_t n = fake_dart_next_batch(iso->port, shut ? 0 : 50, batch, BATCH_MAX);
    if (n == 0 && shut) break;
    iso->batches++;
    for (size_t i = 0; i < n; i++) on_completion(iso, &batch[i]);
  }
  return NULL;
}

/* The isolate's listener on 127.0.0.1:port or on g_unix_path (shared with
 * the other isolates' when shared), and its accepts in flight. Returns 0, or
 * 1 after saying why. */
static int open_listener(isolate *iso, int port, int shared) {
  const uint8_t loopback[4] = {127, 0, 0, 1};
  if (!g_unix_path) {
    /* shared is 0 or 1 (TCP_LISTEN_SHARED, a name older tcp.h lack) */
    iso->listener = tcp_listen(iso->port, loopback, 4, port, 4096, 0, shared);
  } else {
#ifdef TCP_UNIX_PATH_BYTES_MAX /* an engine whose tcp.h predates Unix sockets still gets this harness */
    iso->listener = tcp_listen_unix(iso->port, (const uint8_t *)g_unix_path, (int32_t)strlen(g_unix_path), 4096,
                                    shared ? TCP_LISTEN_SHARED : 0);
#else
    fprintf(stderr, "engine_server: --unix: this engine's tcp.h has no Unix sockets\n");
    return 1;
#endif
  }
  if (iso->listener < 0) {
    fprintf(stderr, "engine_server: %s: %s (os error %d)\n", g_unix_path ? "tcp_listen_unix" : "tcp_listen",
            tcp_strerror(iso->listener), tcp_last_os_error());
    return 1;
  }
  for (int k = 0; k < ACCEPTS_IN_FLIGHT; k++) {
    int32_t r = tcp_accept(iso->listener, rid(0, OP_ACCEPT));
    if (r < 0) {
      fprintf(stderr, "engine_server: tcp_accept: %s\n", tcp_strerror(r));
      return 1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "--unix") == 0) { /* the path takes the port's place */
    g_unix_path = argv[2];
    argv++;
    argc--;
  }
  if (argc < 2) {
    fprintf(stderr,
            "usage: engine_server PORT|--unix PATH [echo|sink] [READ_BYTES] [ISOLATES] [READS_IN_FLIGHT]\n"
            "                     [oneshot|stream] [WINDOW_BYTES]\n");
    return 2;
  }
  int port = g_unix_path ? 0 : atoi(argv[1]);
  g_sink = argc > 2 && strcmp(argv[2], "sink") == 0;
  if (argc > 3) g_read_bytes = atoll(argv[3]);
  int nisolates = argc > 4 ? atoi(argv[4]) : 1;
  g_reads_in_flight = argc > 5 ? atoi(argv[5]) : 1;
  int driver_ok = argc <= 6 || strcmp(argv[6], "oneshot") == 0 || strcmp(argv[6], "stream") == 0;
  g_stream = argc > 6 && strcmp(argv[6], "stream") == 0;
  if (argc > 7) g_window_bytes = atoll(argv[7]);
  if (nisolates < 1 || nisolates > 16 || g_reads_in_flight < 1 || g_reads_in_flight > 64 || g_read_bytes < 1 ||
      g_read_bytes > TCP_READ_BYTES_MAX || !driver_ok || g_window_bytes < 1 || g_window_bytes > TCP_READ_BYTES_MAX) {
    fprintf(stderr, "engine_server: bad arguments\n");
    return 2;
  }

  /* signals go to sigwait in main only */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  int32_t rc = tcp_init(fake_dart_api_data());
  if (rc != TCP_OK) {
    fprintf(stderr, "engine_server: tcp_init: %s\n", tcp_strerror(rc));
    return 1;
  }
  isolate *isos = calloc((size_t)nisolates, sizeof *isos);
  for (int i = 0; i < nisolates; i++) {
    isolate *iso = &isos[i];
    iso->index = i;
    iso->port = fake_dart_open_port();
    if (open_listener(iso, port, nisolates > 1) != 0) return 1;
    pthread_create(&iso->thread, NULL, isolate_main, iso);
  }
  if (g_unix_path) printf("ready %s %s %s\n", g_unix_path, tcp_backend_name(), g_stream ? "stream" : "oneshot");
  else printf("ready %d %s %s\n", port, tcp_backend_name(), g_stream ? "stream" : "oneshot");
  fflush(stdout);

  int sig = 0;
  sigwait(&set, &sig);
  atomic_store(&g_stopping, 1);
  rc = tcp_shutdown();
  atomic_store(&g_shutdown_done, 1);
  for (int i = 0; i < nisolates; i++) pthread_join(isos[i].thread, NULL);
  for (int i = 0; i < nisolates; i++) fake_dart_close_port(isos[i].port);

  fd_stats st;
  fake_dart_stats(&st);
  uint64_t all = 0;
  for (int i = 0; i < nisolates; i++) {
    isolate *iso = &isos[i];
    all += iso->completions;
    fprintf(stderr,
            "engine_server isolate %d: accepts %llu closes %llu (+ %llu ended by tcp_shutdown) reads %llu writes %llu "
            "acks %llu bytes %llu errors %llu; completions %llu in %llu wake-ups (%.2f per wake-up)\n",
            i, (unsigned long long)iso->accepts, (unsigned long long)iso->closes,
            (unsigned long long)iso->ended_by_shutdown, (unsigned long long)iso->reads,
            (unsigned long long)iso->writes, (unsigned long long)iso->acks, (unsigned long long)iso->bytes,
            (unsigned long long)iso->errors,
            (unsigned long long)iso->completions, (unsigned long long)iso->batches,
            iso->batches ? (double)iso->completions / (double)iso->batches : 0.0);
  }
  fprintf(stderr,
          "engine_server: %llu messages posted (%.2f completions per message), malformed %llu, "
          "external data still live %llu, tcp_shutdown %s\n",
          (unsigned long long)st.posts, st.posts ? (double)all / (double)st.posts : 0.0,
          (unsigned long long)st.malformed, (unsigned long long)st.external_live,
          rc == TCP_OK ? "ok" : tcp_strerror(rc));
  return 0;
}
