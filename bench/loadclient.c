/*
 * loadclient.c -- zig_tcp's own TCP load client (independent of the engine).
 *
 * One thread, epoll, nonblocking sockets. Two modes:
 *
 *   echo  N connections each keep `depth` requests of `size` bytes in flight
 *         against an echo server (depth 1 = ping-pong, depth 16 = pipelined).
 *         A request completes when its `size` echoed bytes are back; its RTT is
 *         the time from the write() that handed its first byte to the kernel
 *         until the read() that returned its last byte. Every echoed byte is
 *         checked against the pattern that was sent.
 *   bulk  N connections write `size`-byte chunks as fast as the server takes
 *         them (one-way; the server reads and discards). Reports MB/s.
 *
 * --rate R (echo): offered load of R requests per second in total instead of
 * "as fast as the server answers". A finished request frees its slot, and the
 * slot is sent again when the pacer grants a credit (credits accrue at R per
 * second, handed out at least every 100 us, at most conns * depth banked).
 * With the server below saturation, its CPU per request is its own cost: at
 * full speed both processes of this 2-vCPU box run at 100 % and every
 * server's CPU per request is just 1 / req_s.
 *
 * --unix PATH: connect to the Unix stream socket PATH instead of a TCP port
 * (no TCP_NODELAY there: AF_UNIX has no Nagle). Linux completes a
 * non-blocking AF_UNIX connect at once, or refuses it with EAGAIN while the
 * listener's backlog is full; such a connect is retried after the next wait.
 *
 * Run: warm-up seconds (not counted), then measured seconds. CPU time: this
 * process by getrusage, the server (optional --server-pid) by
 * /proc/PID/stat utime+stime (all its threads). Output: one JSON line.
 *
 *   loadclient --port P [--host 127.0.0.1] | --unix PATH  [--mode echo|bulk] [--conns N]
 *              [--depth D] [--size BYTES] [--seconds S] [--warmup S]
 *              [--server-pid PID] [--label TEXT] [--connect-timeout S] [--rate R]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#define PATTERN_PERIOD 251u /* prime, so the pattern never lines up with sizes */
#define MAX_DEPTH 256

/* ---- log-linear latency histogram (ns), ~0.2% resolution -------------- */
#define HIST_SUB_BITS 9
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB * 40)
static uint64_t hist[HIST_BUCKETS];
static uint64_t hist_count, hist_max;
static long double hist_sum;

static unsigned hist_index(uint64_t v) {
  if (v < HIST_SUB) return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - HIST_SUB_BITS;
  unsigned idx = (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
  return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}
static uint64_t hist_value(unsigned idx) { /* midpoint of bucket */
  if (idx < HIST_SUB) return idx;
  unsigned shift = idx / HIST_SUB - 1;
  uint64_t base = ((uint64_t)(idx % HIST_SUB) + HIST_SUB) << shift;
  return base + ((1ull << shift) >> 1);
}
static void hist_add(uint64_t v) {
  hist[hist_index(v)]++;
  hist_count++;
  hist_sum += v;
  if (v > hist_max) hist_max = v;
}
static double hist_pct(double p) {
  if (!hist_count) return 0;
  uint64_t want = (uint64_t)((long double)hist_count * p);
  if (want >= hist_count) want = hist_count - 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += hist[i];
    if (seen > want) return (double)hist_value(i);
  }
  return (double)hist_max;
}

/* ---- options -------------------------------------------------------------- */
static const char *opt_host = "127.0.0.1";
static int opt_port = 0;
static const char *opt_unix; /* a Unix socket path instead of host:port */
static bool opt_bulk = false;
static int opt_conns = 1;
static int opt_depth = 1;
static size_t opt_size = 64;
static double opt_seconds = 5, opt_warmup = 1, opt_connect_timeout = 10;
static int opt_server_pid = 0;
static const char *opt_label = "";
static double opt_rate = 0; /* requests per second offered; 0 = closed loop */

static void usage(void) {
  fprintf(stderr,
          "usage: loadclient (--port P [--host H] | --unix PATH) [--mode echo|bulk] [--conns N] [--depth D]\n"
          "                  [--size B] [--seconds S] [--warmup S] [--server-pid PID] [--label L]\n"
          "                  [--rate REQ_PER_S]\n");
  exit(2);
}

static size_t parse_size(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (*end == 'k' || *end == 'K') v *= 1024;
  else if (*end == 'm' || *end == 'M') v *= 1024 * 1024;
  return (size_t)v;
}

/* ---- connections ----------------------------------------------------------- */
typedef struct conn {
  int fd;
  bool connected;
  bool want_out;          /* EPOLLOUT registered */
  uint64_t sent;          /* stream bytes handed to the kernel */
  uint64_t queued;        /* stream bytes we decided to send (sent <= queued) */
  uint64_t recvd;         /* stream bytes received */
  /* per-request send timestamps, ring indexed by request number */
  uint64_t ts[MAX_DEPTH];
  uint64_t req_issued;    /* requests whose bytes were fully handed to write */
  uint64_t req_done;
} conn;

static conn *conns;
static int epfd;
static uint8_t *pattern;  /* PATTERN_PERIOD + max chunk bytes */
static size_t pattern_len;
static uint8_t *rbuf;
static size_t rbuf_len;
static uint64_t total_done, total_bytes, errors_verify, errors_io;
static bool measuring;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "loadclient: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void set_events(conn *c, bool out) {
  if (c->want_out == out) return;
  struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
  c->want_out = out;
}

/* Push queued bytes; stamp every request whose first byte goes out now. */
static void flush_out(conn *c, uint64_t t) {
  while (c->sent < c->queued) {
    uint64_t off = c->sent % PATTERN_PERIOD;
    uint64_t left = c->queued - c->sent;
    size_t cap = opt_bulk ? opt_size : pattern_len - PATTERN_PERIOD; /* bulk: iperf3-like write size */
    size_t n = left > cap ? cap : (size_t)left;
    ssize_t w = send(c->fd, pattern + off, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      errors_io++;
      fprintf(stderr, "loadclient: send: %s\n", strerror(errno));
      exit(1);
    }
    if (!opt_bulk) {
      /* requests starting inside [sent, sent+w) get timestamp t */
      uint64_t first = (c->sent + opt_size - 1) / opt_size; /* first request starting at/after sent */
      uint64_t end = c->sent + (uint64_t)w;
      for (uint64_t r = first; r * opt_size < end; r++) c->ts[r % MAX_DEPTH] = t;
    } else if (measuring) {
      total_bytes += (uint64_t)w;
    }
    c->sent += (uint64_t)w;
  }
  set_events(c, c->sent < c->queued || opt_bulk);
}

static void issue(conn *c, int n) { c->queued += (uint64_t)n * opt_size; }

/* ---- pacing (--rate) ------------------------------------------------------------ */
/* Request slots waiting for a credit: a FIFO of connections, one entry per slot. */
static conn **wait_ring;
static size_t wait_cap, wait_head, wait_len;
static uint64_t pace_t0, pace_granted; /* credits granted since pace_t0 */
#define PACE_TICK_NS 100000ull

static void slot_wait(conn *c, int n) {
  for (int i = 0; i < n; i++) wait_ring[(wait_head + wait_len++) % wait_cap] = c;
}

/* Hands out the credits that accrued by t, one request per waiting slot. */
static void pace(uint64_t t) {
  uint64_t due = (uint64_t)((double)(t - pace_t0) * opt_rate / 1e9);
  uint64_t bank = (uint64_t)opt_conns * (uint64_t)opt_depth;
  if (due > pace_granted + bank) pace_granted = due - bank; /* a slow server does not earn a burst */
  while (pace_granted < due && wait_len > 0) {
    conn *c = wait_ring[wait_head];
    wait_head = (wait_head + 1) % wait_cap;
    wait_len--;
    pace_granted++;
    issue(c, 1);
    flush_out(c, t);
  }
}

/* How long the loop may wait for events before the pacer is due, in ns. */
static uint64_t pace_wait_ns(uint64_t t) {
  if (wait_len == 0) return UINT64_MAX;
  uint64_t next = pace_t0 + (uint64_t)((double)(pace_granted + 1) * 1e9 / opt_rate);
  uint64_t wait = next > t ? next - t : 0;
  return wait < PACE_TICK_NS ? PACE_TICK_NS : wait;
}

static void on_readable(conn *c, uint64_t t) {
  for (;;) {
    ssize_t r = recv(c->fd, rbuf, rbuf_len, 0);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      fprintf(stderr, "loadclient: recv: %s\n", strerror(errno));
      exit(1);
    }
    if (r == 0) {
      fprintf(stderr, "loadclient: server closed a connection\n");
      exit(1);
    }
    if (opt_bulk) continue; /* a sink sends nothing; ignore */
    /* verify the echo */
    uint64_t off = c->recvd % PATTERN_PERIOD;
    size_t checked = 0;
    while (checked < (size_t)r) {
      size_t n = (size_t)r - checked;
      if (n > pattern_len - PATTERN_PERIOD) n = pattern_len - PATTERN_PERIOD;
      if (memcmp(rbuf + checked, pattern + (off + checked) % PATTERN_PERIOD, n) != 0) {
        errors_verify++;
        fprintf(stderr, "loadclient: echoed bytes differ from what was sent\n");
        exit(1);
      }
      checked += n;
    }
    c->recvd += (uint64_t)r;
    uint64_t done_now = c->recvd / opt_size;
    int completed = 0;
    while (c->req_done < done_now) {
      if (measuring) {
        hist_add(t - c->ts[c->req_done % MAX_DEPTH]);
        total_done++;
      }
      c->req_done++;
      completed++;
    }
    if (completed && opt_rate > 0) {
      slot_wait(c, completed);
    } else if (completed) {
      issue(c, completed);
      flush_out(c, t);
    }
    if ((size_t)r < rbuf_len) return; /* drained (level-triggered anyway) */
  }
}

static double proc_cpu_seconds(int pid) {
  if (pid <= 0) return -1;
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  /* after ") " come fields 3.. ; utime is field 14, stime 15 */
  unsigned long long ut = 0, st = 0;
  int field = 2;
  for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
    field++;
    if (field == 14) ut = strtoull(tok, NULL, 10);
    if (field == 15) { st = strtoull(tok, NULL, 10); break; }
  }
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Context switches (voluntary + involuntary) of every thread of pid, or -1. */
static double proc_ctx_switches(int pid) {
  if (pid <= 0) return -1;
  char path[96], line[256];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  double total = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/%d/task/%.20s/status", pid, e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    while (fgets(line, sizeof line, f)) {
      unsigned long long v;
      if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
          sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
        total += (double)v;
    }
    fclose(f);
  }
  closedir(d);
  return total;
}

static double self_cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static void run_loop_until(uint64_t deadline) {
  struct epoll_event evs[512];
  for (;;) {
    uint64_t t = now_ns();
    if (t >= deadline) return;
    uint64_t wait_ns = deadline - t;
    if (wait_ns > 100000000ull) wait_ns = 100000000ull;
    if (opt_rate > 0) {
      pace(t);
      uint64_t pace_ns = pace_wait_ns(t);
      if (pace_ns < wait_ns) wait_ns = pace_ns;
    }
    struct timespec timeout = {.tv_sec = (time_t)(wait_ns / 1000000000ull),
                               .tv_nsec = (long)(wait_ns % 1000000000ull)};
    int n = epoll_pwait2(epfd, evs, 512, &timeout, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    t = now_ns();
    for (int i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, t);
      if (evs[i].events & EPOLLOUT) {
        if (opt_bulk) c->queued = c->sent + (uint64_t)opt_size * 64; /* keep the pipe full */
        flush_out(c, t);
      }
    }
  }
}

/* The server's address: --unix PATH, else --host:--port (IPv4 loopback only).
 * Returns 0, or 2 after saying what is wrong. */
static int target_address(struct sockaddr_storage *sa, socklen_t *sa_len) {
  memset(sa, 0, sizeof *sa);
  if (opt_unix) {
    struct sockaddr_un *su = (struct sockaddr_un *)sa;
    size_t n = strlen(opt_unix);
    if (n == 0 || n >= sizeof su->sun_path) {
      fprintf(stderr, "loadclient: --unix: the path must have 1..%zu bytes\n", sizeof su->sun_path - 1);
      return 2;
    }
    su->sun_family = AF_UNIX;
    memcpy(su->sun_path, opt_unix, n + 1);
    *sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
  }
  struct sockaddr_in *si = (struct sockaddr_in *)sa;
  si->sin_family = AF_INET;
  si->sin_port = htons((uint16_t)opt_port);
  if (inet_pton(AF_INET, opt_host, &si->sin_addr) != 1) {
    fprintf(stderr, "loadclient: bad --host (IPv4 loopback only)\n");
    return 2;
  }
  if ((ntohl(si->sin_addr.s_addr) >> 24) != 127) {
    fprintf(stderr, "loadclient: refusing a non-loopback target\n");
    return 2;
  }
  *sa_len = sizeof *si;
  return 0;
}

/* Starts c's non-blocking connect and waits for it to be writable. Returns
 * false (fd closed) when a Unix listener's backlog is full (EAGAIN): the
 * caller tries again after its next wait. */
static bool start_connect(conn *c, const struct sockaddr_storage *sa, socklen_t sa_len) {
  c->fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) die("socket");
  if (sa->ss_family == AF_INET) {
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (connect(c->fd, (const struct sockaddr *)sa, sa_len) < 0 && errno != EINPROGRESS) {
    if (sa->ss_family == AF_UNIX && errno == EAGAIN) {
      close(c->fd);
      c->fd = -1;
      return false;
    }
    die("connect");
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl add");
  c->want_out = true;
  return true;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
    if (ARG("--host")) opt_host = v;
    else if (ARG("--port")) opt_port = atoi(v);
    else if (ARG("--unix")) opt_unix = v;
    else if (ARG("--mode")) opt_bulk = strcmp(v, "bulk") == 0;
    else if (ARG("--conns")) opt_conns = atoi(v);
    else if (ARG("--depth")) opt_depth = atoi(v);
    else if (ARG("--size")) opt_size = parse_size(v);
    else if (ARG("--seconds")) opt_seconds = atof(v);
    else if (ARG("--warmup")) opt_warmup = atof(v);
    else if (ARG("--connect-timeout")) opt_connect_timeout = atof(v);
    else if (ARG("--server-pid")) opt_server_pid = atoi(v);
    else if (ARG("--label")) opt_label = v;
    else if (ARG("--rate")) opt_rate = atof(v);
    else usage();
#undef ARG
  }
  bool address_ok = opt_unix ? opt_port == 0 : opt_port > 0; /* one of --unix, --port */
  if (!address_ok || opt_conns <= 0 || opt_depth <= 0 || opt_depth > MAX_DEPTH / 2 || opt_size == 0 ||
      opt_seconds <= 0 || opt_seconds > 600 || opt_warmup < 0 || opt_warmup > 60 || opt_rate < 0 ||
      (opt_rate > 0 && opt_bulk))
    usage();
  signal(SIGPIPE, SIG_IGN);

  size_t chunk = opt_size * (size_t)opt_depth;
  if (chunk < 65536) chunk = 65536;
  if (chunk > 4 << 20) chunk = 4 << 20;
  pattern_len = PATTERN_PERIOD + chunk;
  pattern = malloc(pattern_len);
  for (size_t i = 0; i < pattern_len; i++) pattern[i] = (uint8_t)(i % PATTERN_PERIOD);
  rbuf_len = 256 * 1024;
  rbuf = malloc(rbuf_len);
  conns = calloc((size_t)opt_conns, sizeof(conn));
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!pattern || !rbuf || !conns || epfd < 0) die("setup");

  struct sockaddr_storage sa;
  socklen_t sa_len = 0;
  if (target_address(&sa, &sa_len) != 0) return 2;

  /* connect everything, in waves so the listen backlog never overflows */
  uint64_t t0 = now_ns();
  int connected = 0;
  int started = 0;
  while (connected < opt_conns) {
    while (started < opt_conns && started - connected < 128) {
      if (!start_connect(&conns[started], &sa, sa_len)) break; /* a full Unix backlog: after the wait */
      started++;
    }
    struct epoll_event evs[256];
    int n = epoll_wait(epfd, evs, 256, 100);
    for (int i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      if (c->connected) continue;
      int err = 0;
      socklen_t el = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
      if (err) {
        errno = err;
        die("connect");
      }
      c->connected = true;
      connected++;
      struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
      epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
      c->want_out = false;
    }
    if ((double)(now_ns() - t0) / 1e9 > opt_connect_timeout) {
      fprintf(stderr, "loadclient: only %d of %d connections after %.0f s\n", connected, opt_conns,
              opt_connect_timeout);
      return 1;
    }
  }
  double connect_s = (double)(now_ns() - t0) / 1e9;

  /* start the load */
  uint64_t t = now_ns();
  if (opt_rate > 0) {
    wait_cap = (size_t)opt_conns * (size_t)opt_depth;
    wait_ring = malloc(wait_cap * sizeof *wait_ring);
    if (!wait_ring) die("setup");
    pace_t0 = t;
  }
  for (int i = 0; i < opt_conns; i++) {
    conn *c = &conns[i];
    if (opt_bulk) {
      c->queued = (uint64_t)opt_size * 64;
    } else if (opt_rate > 0) {
      slot_wait(c, opt_depth);
      continue;
    } else {
      issue(c, opt_depth);
    }
    flush_out(c, t);
  }
  run_loop_until(now_ns() + (uint64_t)(opt_warmup * 1e9));

  measuring = true;
  double cpu0 = self_cpu_seconds(), scpu0 = proc_cpu_seconds(opt_server_pid);
  double sctx0 = proc_ctx_switches(opt_server_pid);
  uint64_t m0 = now_ns();
  run_loop_until(m0 + (uint64_t)(opt_seconds * 1e9));
  uint64_t m1 = now_ns();
  double cpu1 = self_cpu_seconds(), scpu1 = proc_cpu_seconds(opt_server_pid);
  double sctx1 = proc_ctx_switches(opt_server_pid); /* threads that exit meanwhile are missed */
  double sctx = (sctx0 >= 0 && sctx1 >= 0) ? sctx1 - sctx0 : -1;
  measuring = false;

  double secs = (double)(m1 - m0) / 1e9;
  double ccpu = cpu1 - cpu0;
  double scpu = (scpu0 >= 0 && scpu1 >= 0) ? scpu1 - scpu0 : -1;
  printf("{\"label\":\"%s\",\"mode\":\"%s\",\"conns\":%d,\"depth\":%d,\"size\":%zu,\"seconds\":%.3f,"
         "\"connect_seconds\":%.3f,\"offered_req_per_s\":%.0f,",
         opt_label, opt_bulk ? "bulk" : "echo", opt_conns, opt_bulk ? 0 : opt_depth, opt_size, secs, connect_s,
         opt_rate);
  if (opt_bulk) {
    printf("\"bytes\":%" PRIu64 ",\"mb_per_s\":%.1f,", total_bytes, (double)total_bytes / secs / 1e6);
    printf("\"client_cpu_s\":%.3f,\"server_cpu_s\":%.3f", ccpu, scpu);
    if (total_bytes)
      printf(",\"client_cpu_ns_per_kib\":%.1f,\"server_cpu_ns_per_kib\":%.1f",
             ccpu * 1e9 / ((double)total_bytes / 1024), scpu >= 0 ? scpu * 1e9 / ((double)total_bytes / 1024) : -1);
  } else {
    printf("\"requests\":%" PRIu64 ",\"req_per_s\":%.1f,", total_done, (double)total_done / secs);
    printf("\"rtt_us\":{\"p50\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"mean\":%.2f,\"max\":%.2f},",
           hist_pct(0.50) / 1e3, hist_pct(0.99) / 1e3, hist_pct(0.999) / 1e3,
           hist_count ? (double)(hist_sum / hist_count) / 1e3 : 0.0, (double)hist_max / 1e3);
    printf("\"client_cpu_s\":%.3f,\"server_cpu_s\":%.3f", ccpu, scpu);
    if (total_done)
      printf(",\"client_cpu_us_per_req\":%.3f,\"server_cpu_us_per_req\":%.3f,\"server_ctxsw_per_req\":%.3f",
             ccpu * 1e6 / (double)total_done, scpu >= 0 ? scpu * 1e6 / (double)total_done : -1,
             sctx >= 0 ? sctx / (double)total_done : -1);
  }
  printf(",\"errors\":%" PRIu64 "}\n", errors_io + errors_verify);
  fflush(stdout);
  int rc = 0;
  if ((opt_bulk && total_bytes == 0) || (!opt_bulk && total_done == 0)) {
    fprintf(stderr, "loadclient: the server %s nothing in %.1f s\n", opt_bulk ? "accepted" : "echoed", secs);
    rc = 1;
  }
  /* abortive close (RST): no TIME_WAIT pile-up across many runs */
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  for (int i = 0; i < opt_conns; i++) {
    setsockopt(conns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(conns[i].fd);
  }
  return rc;
}
