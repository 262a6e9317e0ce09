/*
 * fuzz_ops.c -- operation-sequence fuzzer for the zig_tcp engine (libFuzzer):
 * the entry points, the program interpreter, engine restarts and the checks
 * at the end of each input. (fuzz.h lists the other parts.)
 *
 * Each input is a small program of engine calls (listen, connect, accept,
 * read, write of random sizes, shutdown-write, close, double close, the
 * finalizer, made-up and stale handles, null / oversized buffers, accessors,
 * read streams with random windows, their acks, stops and the window hit,
 * engine shutdown and re-init) run against loopback peers that the program
 * itself creates. Completions arrive through the fake Dart VM (test_c/
 * fake_dart.h) on two ports.
 *
 * Invariants, checked at every step (a violation aborts: libFuzzer keeps the
 * input as a crash):
 *   - a call the engine refused (negative return) never produces a message,
 *     and a refusal is one of the codes the contract allows for that call;
 *   - every accepted operation completes exactly once (a read stream: DATA
 *     completions, then exactly one final), on the port of the socket it was
 *     issued on, with a result of the right shape (read payload of exactly
 *     `result` bytes, write result == bytes_len, accept a new handle, close 0);
 *   - a close's completion follows the completions of every earlier op on
 *     that socket; writes on one socket complete in issue order, and so do
 *     reads and streams (a stream's DATA after every earlier read, a read
 *     after the stream's final);
 *   - every byte received, by one-shot reads and streams alike, is the byte
 *     its writer sent at that offset (each direction is a self-describing
 *     stream: an 8-byte seed, then a deterministic function of seed and
 *     offset), no stream reaches two readers, nothing arrives after
 *     end-of-stream, end-of-stream comes only after the peer shut down its
 *     write side or closed, and a clean end-of-stream only after every byte
 *     whose write completed;
 *   - read streams keep their window and end as tcp.h says (fuzz_stream.c);
 *   - at the end of each input every handle it opened is closed and every
 *     outstanding op must complete within a bound (10 s); afterwards the
 *     process holds exactly the file descriptors it held before the input and
 *     the fake VM holds no read buffer; after tcp_shutdown every op has
 *     already been posted (no wait at all);
 *   - AddressSanitizer, UBSan and LeakSanitizer watch memory.
 *
 * The engine is initialised once (LLVMFuzzerInitialize) and restarted only
 * when a program asks for it. The backend is chosen by ZIG_TCP_BACKEND.
 * FUZZ_TRACE=1 prints the program and every request and completion.
 * Run it inside a private network namespace (tools/fuzz.sh does) so that its
 * connections cannot touch anything else on the machine.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static int fds_engine_up, fds_engine_down; /* open fds with no socket open */
static uint64_t refused_seen;

/* Open sockets of this process (libFuzzer opens pipes of its own, so only
 * sockets are counted: every one of them belongs to the engine). */
static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  int n = 0;
  struct dirent *e;
  char path[64], target[64];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t len = readlink(path, target, sizeof target - 1);
    if (len > 7 && memcmp(target, "socket:", 7) == 0) n++;
  }
  closedir(d);
  return n;
}

static void list_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return;
  struct dirent *e;
  char path[64], target[256];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
  }
  closedir(d);
}


static void engine_down(void) {
  int64_t t0 = g_profile ? now_us() : 0;
  g_shutdowns++;
  int32_t rc = tcp_shutdown();
  if (g_profile) prof_us[1] += now_us() - t0;
  REQUIRE(rc == TCP_OK, "tcp_shutdown: %d", rc);
  engine_up = false;
  REQUIRE(tcp_backend_name() == NULL, "backend name after shutdown");
  /* Shutdown posted everything before it returned: no waiting. */
  poll_after_shutdown();
  if (outstanding != 0) {
    for (int i = 0; i < nreqs; i++)
      if (!reqs[i].done)
        fprintf(stderr, "  request %d (%s) on rec %d still outstanding\n", i, kind_name(reqs[i].kind), reqs[i].rec);
    fail("%d requests had no completion when tcp_shutdown returned", outstanding);
  }
  for (int i = 0; i < nrecs; i++)
    if (recs[i].state == R_LIVE || recs[i].state == R_FINALIZED) recs[i].state = R_DEAD;
  int fds = count_fds();
  if (fds != fds_engine_down) {
    list_fds();
    fail("%d sockets open after tcp_shutdown, %d before tcp_init", fds, fds_engine_down);
  }
}

static void engine_upagain(void) {
  int64_t t0 = g_profile ? now_us() : 0;
  int32_t rc = tcp_init(fake_dart_api_data());
  if (g_profile) prof_us[1] += now_us() - t0;
  REQUIRE(rc == TCP_OK, "tcp_init: %d", rc);
  engine_up = true;
  REQUIRE(tcp_backend_name() != NULL && strcmp(tcp_backend_name(), g_backend) == 0,
          "backend %s, expected %s", tcp_backend_name() ? tcp_backend_name() : "(null)", g_backend);
  /* Handles from before the restart stay invalid. */
  for (int i = 0; i < nrecs; i++)
    if (recs[i].state == R_DEAD) recs[i].state = R_CLOSED;
  fds_engine_up = count_fds();
}

static void op_lifecycle(reader *in) {
  uint8_t what = rd8(in);
  if (what % 4 == 0) {
    if (engine_up) engine_down();
    else REQUIRE(tcp_shutdown() == TCP_ERR_NOT_INITIALIZED, "tcp_shutdown while down");
  } else if (what % 4 == 1) {
    if (engine_up) REQUIRE(tcp_init(fake_dart_api_data()) == TCP_OK, "second tcp_init");
    else engine_upagain();
  } else if (what % 4 == 2) {
    if (engine_up) {
      engine_down();
      engine_upagain();
    }
  } else {
    /* Bad DL API data is refused (and harmless while running: ignored). */
    int32_t rc = tcp_init(NULL);
    if (engine_up) REQUIRE(rc == TCP_OK, "tcp_init(NULL) while running: %d", rc);
    else REQUIRE(rc == TCP_ERR_DART_API, "tcp_init(NULL) while down: %d", rc);
  }
}

/* ---- end of input ---------------------------------------------------------------- */
static void drain_all(void) {
  draining = true;
  if (!engine_up) engine_upagain();
  poll_now();
  for (int i = 0; i < nrecs; i++)
    if (recs[i].state == R_LIVE) close_rec(i);
  int64_t start = now_ms();
  while (outstanding > 0) {
    if (now_ms() - start >= DRAIN_BOUND_MS) {
      for (int i = 0; i < nreqs; i++)
        if (!reqs[i].done)
          fprintf(stderr, "  request %d (%s) on rec %d (handle %llx) outstanding\n", i,
                  kind_name(reqs[i].kind), reqs[i].rec, (long long)recs[reqs[i].rec].handle);
      fail("%d requests did not complete within %d ms of closing every socket", outstanding,
           DRAIN_BOUND_MS);
    }
    wait_some(50);
    for (int i = 0; i < nrecs; i++)
      if (recs[i].state == R_LIVE) close_rec(i); /* accepted during the drain */
  }
  poll_now();
  draining = false;
  /* Clean end of stream: every byte whose write completed arrived first. */
  for (int i = 0; i < nrecs; i++) {
    rec *r = &recs[i];
    if (r->eof && r->writer >= 0)
      REQUIRE(r->in_off >= recs[r->writer].out_ok,
              "rec %d saw end of stream after %llu bytes, but its writer completed %llu", i,
              (unsigned long long)r->in_off, (unsigned long long)recs[r->writer].out_ok);
  }
  fd_stats st;
  fake_dart_stats(&st);
  REQUIRE(st.malformed == 0, "malformed message: %s", fake_dart_last_malformed());
  REQUIRE(st.external_live == 0, "%llu read buffers still held by the fake VM",
          (unsigned long long)st.external_live);
  if (input_used_finalizer) {
    /* A finalizer's close posts nothing, so only a full engine stop tells
     * when its socket is gone; tcp_shutdown is that barrier. */
    engine_down();
    engine_upagain();
  } else {
    REQUIRE(st.posts_refused == refused_seen, "a post was refused on a port that is open");
    int fds = count_fds();
    if (fds != fds_engine_up) {
      list_fds();
      fail("%d sockets open after every close completed, %d expected", fds, fds_engine_up);
    }
  }
  fake_dart_stats(&st);
  refused_seen = st.posts_refused;
}

/* ---- libFuzzer entry points ------------------------------------------------------- */
static void shutdown_at_exit(void) {
  if (!engine_up) return;
  tcp_shutdown();
  engine_up = false;
  poll_now(); /* completions of nothing: every input drained its own */
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *b = getenv("ZIG_TCP_BACKEND");
  g_backend = b && b[0] ? b : "io_uring";
  g_trace = getenv("FUZZ_TRACE") != NULL;
  g_profile = getenv("FUZZ_PROFILE") != NULL;
  port_a = fake_dart_open_port();
  port_b = fake_dart_open_port();
  fds_engine_down = count_fds();
  int32_t rc = tcp_init(fake_dart_api_data());
  if (rc != TCP_OK) {
    fprintf(stderr, "tcp_init failed: %d (%s)\n", rc, tcp_strerror(rc));
    exit(1);
  }
  engine_up = true;
  if (tcp_backend_name() == NULL || strcmp(tcp_backend_name(), g_backend) != 0) {
    fprintf(stderr, "backend %s, expected %s\n", tcp_backend_name(), g_backend);
    exit(1);
  }
  fds_engine_up = count_fds();
  fprintf(stderr, "fuzz_ops: backend %s, %d sockets with the engine up\n", g_backend, fds_engine_up);
  /* Stop the engine before LeakSanitizer's exit-time check (atexit runs the
   * handlers in reverse order, so this one comes first): with the I/O thread
   * joined, everything the engine still holds is reachable or truly leaked. */
  atexit(shutdown_at_exit);
  return 0;
}

/* One step of the program: an operation chosen by its first byte. (Lifecycle
 * and temporary ports are rare: op >= 200.) */
static void run_step(uint8_t op, reader *in) {
  switch (op % 26) {
    case 0: op_listen(in); break;
    case 1: case 2: op_connect(in); break;
    case 3: op_accept(in); break;
    case 4: case 5: op_read(in); break;
    case 6: case 7: op_write(in); break;
    case 8: op_shutw(in); break;
    case 9: op_close(in); break;
    case 10: op_finalizer(in); break;
    case 11: op_bad_handle(in); break;
    case 12: op_bad_args(in); break;
    case 13: poll_now(); break;
    case 14: wait_some(1); break;
    case 15: op_accessors(in); break;
    case 16: op_pair(in); break;
    case 17: if (op >= 200) op_lifecycle(in); else op_null_empty_write(in); break;
    case 18: if (op >= 200) op_temp_port(in); else poll_now(); break;
    case 19: drain_all(); break; /* close everything mid-program and carry on with what remains */
    case 20: op_stream_start(in); break;
    case 21: case 22: op_stream_ack(in); break;
    case 23: op_stream_stop(in); break;
    case 24: op_stream_fill(in); break;
    default: op_stream_probe(in); break;
  }
}

static void trace_program(const uint8_t *data, size_t size) {
  fprintf(stderr, "[trace] input #%llu, program of %zu bytes:", g_input_no, size);
  for (size_t i = 0; i < size; i++) fprintf(stderr, "%s%02x", i % 32 == 0 ? "\n[trace]   " : " ", data[i]);
  fprintf(stderr, "\n");
}

static void profile_input(int64_t t0, int64_t t1) {
  int64_t t2 = now_us();
  prof_us[2] += t2 - t1;
  prof_us[3] += t2 - t0;
  if (g_input_no % 1000 != 0) return;
  fprintf(stderr,
          "[profile] per input: %lld us total, %lld waiting in steps+drain, %lld restarting, %lld in the final drain\n",
          (long long)prof_us[3] / 1000, (long long)prof_us[0] / 1000, (long long)prof_us[1] / 1000,
          (long long)prof_us[2] / 1000);
  memset(prof_us, 0, sizeof prof_us);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  g_input_no++;
  int64_t t0 = g_profile ? now_us() : 0;
  nrecs = 0;
  nreqs = 0;
  outstanding = 0;
  input_used_temp_port = false;
  input_used_finalizer = false;
  huge_reads = 0;
  if (g_trace) trace_program(data, size);
  reader in = {data, size, 0};
  for (int step = 0; step < MAX_STEPS && in.i < in.n; step++) {
    uint8_t op = rd8(&in);
    if (g_trace) fprintf(stderr, "[trace] step %d: op %d (%u)\n", step, op % 26, op);
    run_step(op, &in);
  }
  int64_t t1 = g_profile ? now_us() : 0;
  drain_all();
  if (g_profile) profile_input(t0, t1);
  return 0;
}
