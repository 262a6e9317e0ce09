/*
 * idleclient.c -- the load client of `./run-benchmark --memory`: N idle
 * connections, each after ONE echoed message, held while the benchmark reads
 * the server's memory.
 *
 *   idleclient --port P --conns N --size S [--sources K] [--timeout SECONDS]
 *              [--server-pid PID]
 *
 * 1. Opens N connections to 127.0.0.1:P, at most 256 unfinished at a time, so
 *    the server's listen backlog never overflows. Unfinished: not yet echoed,
 *    or (S = 0, where no echo proves it) not yet accepted by the server, which
 *    --server-pid lets the client see: the socket descriptors the server holds
 *    in /proc/PID/fd, counted whenever the window is full. Without it a
 *    connection counts as finished once connected; a server slower to accept
 *    than the kernel is to complete handshakes then overflows its backlog, and
 *    the overflow waits for SYN-ACK retransmits. (The count takes the
 *    server's other sockets to stay as they were: start it on a fresh server.)
 *    Connection i binds its source address to 127.0.0.(2 + i % K) (K =
 *    --sources, default 8) with IP_BIND_ADDRESS_NO_PORT, so the kernel picks
 *    the source port at connect time per 4-tuple: 15,000 connections never
 *    run one address out of ephemeral ports (32768-60999), nor wait on ports
 *    left in TIME-WAIT by earlier runs.
 * 2. On each connection writes S bytes (S = 0: nothing) and reads them back,
 *    checking every byte against what was sent. A connection is done when its
 *    S bytes are back (S = 0: when connected); more bytes, a close or an error
 *    from the server fails the run.
 * 3. Once all N are done prints {"idle":N,...} on stdout and waits for a line
 *    (or end of file) on stdin, while watching every connection: anything the
 *    server sends or closes in this phase fails the run, so the state that
 *    was measured was really N idle connections.
 * 4. Closes all N with a reset (SO_LINGER 0: no TIME-WAIT), prints
 *    {"closed":N} and exits 0.
 *
 * Errors: a message on stderr and exit code 1 (2 for bad arguments).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define CONNS_MAX 15000        /* 20,000 descriptors per process here */
#define SIZE_MAX_BYTES (1 << 20)
#define SOURCES_MAX 250
#define IN_FLIGHT_MAX 256      /* connections connecting or echoing at once */
#define PATTERN_PERIOD 251u    /* prime, like loadclient's pattern */
#define STDIN_TAG UINT32_MAX   /* epoll tag of stdin */

typedef enum conn_state { CONNECTING, SENDING, RECEIVING, DONE } conn_state;

typedef struct conn {
  int fd;
  conn_state state;
  size_t sent, recvd;
} conn;

static int opt_port, opt_conns, opt_sources = 8;
static size_t opt_size;
static double opt_timeout_s = 120;
static int opt_server_pid; /* 0: unknown */
static conn *conns;
static int epfd;
static uint8_t *pattern;

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "idleclient: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void usage(void) {
  fprintf(stderr, "usage: idleclient --port P --conns N (1..%d) --size BYTES (0..%d) [--sources K (1..%d)] "
                  "[--timeout SECONDS] [--server-pid PID]\n", CONNS_MAX, SIZE_MAX_BYTES, SOURCES_MAX);
  exit(2);
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (strcmp(a, "--port") == 0) opt_port = atoi(v);
    else if (strcmp(a, "--conns") == 0) opt_conns = atoi(v);
    else if (strcmp(a, "--size") == 0) opt_size = (size_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--sources") == 0) opt_sources = atoi(v);
    else if (strcmp(a, "--timeout") == 0) opt_timeout_s = atof(v);
    else if (strcmp(a, "--server-pid") == 0) opt_server_pid = atoi(v);
    else usage();
  }
  if (argc % 2 == 0 || opt_port <= 0 || opt_port > 65535 || opt_conns < 1 || opt_conns > CONNS_MAX ||
      opt_size > SIZE_MAX_BYTES || opt_sources < 1 || opt_sources > SOURCES_MAX || opt_timeout_s <= 0 ||
      opt_server_pid < 0)
    usage();
}

static void watch(conn *c, int index, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)index};
  if (epoll_ctl(epfd, op, c->fd, &ev) < 0) fail("connection %d: epoll_ctl: %s", index, strerror(errno));
}

/* Starts connection index from its source address (see the header). */
static void start_connect(int index) {
  conn *c = &conns[index];
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) fail("connection %d: socket: %s", index, strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  struct sockaddr_in src = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(index % opt_sources))};
  if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) fail("connection %d: bind: %s", index, strerror(errno));
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS)
    fail("connection %d: connect: %s", index, strerror(errno));
  c->state = CONNECTING;
  watch(c, index, EPOLLOUT, EPOLL_CTL_ADD);
}

/* Writes what is left of the message; returns whether all of it went out. */
static bool send_rest(conn *c, int index) {
  while (c->sent < opt_size) {
    ssize_t w = send(c->fd, pattern + c->sent % PATTERN_PERIOD, opt_size - c->sent, MSG_NOSIGNAL);
    if (w < 0 && errno == EAGAIN) return false;
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("connection %d: send: %s", index, strerror(errno));
    c->sent += (size_t)w;
  }
  return true;
}

static void on_connected(conn *c, int index) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) fail("connection %d: connect: %s", index, strerror(err));
  c->state = opt_size == 0 ? DONE : SENDING;
  if (c->state == SENDING && send_rest(c, index)) c->state = RECEIVING;
  watch(c, index, c->state == SENDING ? EPOLLOUT : EPOLLIN, EPOLL_CTL_MOD);
}

/* Reads the echo and checks it; returns whether the connection is done. */
static bool receive_echo(conn *c, int index) {
  static uint8_t buf[65536];
  for (;;) {
    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EAGAIN) return false;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("connection %d: recv: %s", index, strerror(errno));
    if (r == 0) fail("connection %d: the server closed it before echoing", index);
    if (c->recvd + (size_t)r > opt_size) fail("connection %d: the server sent more than it was sent", index);
    for (ssize_t i = 0; i < r; i++)
      if (buf[i] != pattern[(c->recvd + (size_t)i) % PATTERN_PERIOD])
        fail("connection %d: echoed bytes differ from what was sent", index);
    c->recvd += (size_t)r;
    if (c->recvd == opt_size) return true;
  }
}

/* One epoll event of the connect-and-echo phase; returns whether that
 * connection became done. */
static bool step(int index, uint32_t events) {
  conn *c = &conns[index];
  switch (c->state) {
    case CONNECTING: on_connected(c, index); return c->state == DONE;
    case SENDING:
      if (events & (EPOLLERR | EPOLLHUP)) fail("connection %d: reset while sending", index);
      if (send_rest(c, index)) {
        c->state = RECEIVING;
        watch(c, index, EPOLLIN, EPOLL_CTL_MOD);
      }
      return false;
    case RECEIVING:
      if (!receive_echo(c, index)) return false;
      c->state = DONE;
      return true;
    case DONE: fail("connection %d: the server sent bytes after the echo", index);
  }
  return false;
}

/* Socket descriptors the server holds (/proc/PID/fd), or -1. */
static int server_sockets(void) {
  char path[64], link[32];
  snprintf(path, sizeof path, "/proc/%d/fd", opt_server_pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof link);
    n += len >= 7 && memcmp(link, "socket:", 7) == 0;
  }
  closedir(d);
  return n;
}

/* How many connections the server surely has: echoed ones, or those it
 * accepted (counted again, at most every 5 ms, when the window is full). The
 * count assumes the server's other sockets stay as they were at the start (a
 * fresh server: bench/memory.py); fewer than then means some were closing, and
 * the count starts from there. */
static int surely_served(int started, int done, int *sockets_before) {
  static int accepted;
  static double counted_at;
  int proven = opt_size > 0 ? done : 0;
  if (*sockets_before < 0) return done;
  if (started - (accepted > proven ? accepted : proven) >= IN_FLIGHT_MAX && now_s() - counted_at > 0.005) {
    int now_sockets = server_sockets();
    if (now_sockets < 0) fail("server %d gone (/proc/%d/fd)", opt_server_pid, opt_server_pid);
    if (now_sockets < *sockets_before) *sockets_before = now_sockets;
    accepted = now_sockets - *sockets_before;
    counted_at = now_s();
  }
  return accepted > proven ? accepted : proven;
}

/* Connects all N and echoes one message on each, IN_FLIGHT_MAX unfinished at
 * a time. */
static void connect_and_echo(double deadline) {
  int started = 0, done = 0;
  int sockets_before = opt_server_pid ? server_sockets() : -1;
  if (opt_server_pid && sockets_before < 0) fail("--server-pid %d: no /proc/%d/fd", opt_server_pid, opt_server_pid);
  struct epoll_event evs[512];
  while (done < opt_conns) {
    while (started < opt_conns && started - surely_served(started, done, &sockets_before) < IN_FLIGHT_MAX)
      start_connect(started++);
    int n = epoll_wait(epfd, evs, 512, 10);
    if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) done += step((int)evs[i].data.u32, evs[i].events);
    if (now_s() > deadline) {
      fprintf(stderr, "idleclient: only %d of %d connections connected and echoed in %.0f s\n", done, opt_conns,
              opt_timeout_s);
      exit(1);
    }
  }
}

/* Holds everything idle until stdin has a line or ends; any event on a
 * connection meanwhile fails the run. */
static void hold_idle(void) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = STDIN_TAG};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0) fail("epoll_ctl(stdin): %s", strerror(errno));
  for (;;) {
    struct epoll_event evs[64];
    int n = epoll_wait(epfd, evs, 64, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
      if (evs[i].data.u32 == STDIN_TAG) return;
      fail("connection %d: the server sent bytes or closed it while idle", (int)evs[i].data.u32);
    }
  }
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  pattern = malloc(PATTERN_PERIOD + (opt_size ? opt_size : 1));
  conns = calloc((size_t)opt_conns, sizeof *conns);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!pattern || !conns || epfd < 0) fail("setup: %s", strerror(errno));
  for (size_t i = 0; i < PATTERN_PERIOD + opt_size; i++) pattern[i] = (uint8_t)(i % PATTERN_PERIOD);

  double t0 = now_s();
  connect_and_echo(t0 + opt_timeout_s);
  printf("{\"idle\":%d,\"size\":%zu,\"sources\":%d,\"connect_and_echo_s\":%.3f}\n", opt_conns, opt_size,
         opt_sources, now_s() - t0);
  fflush(stdout);
  hold_idle();
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  for (int i = 0; i < opt_conns; i++) {
    setsockopt(conns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(conns[i].fd);
  }
  printf("{\"closed\":%d}\n", opt_conns);
  return 0;
}
