/*
 * uring_server.c -- baseline: a plain single-threaded io_uring echo (or sink)
 * server, the way a careful io_uring user writes it by hand with liburing.
 * One ring (SINGLE_ISSUER | DEFER_TASKRUN when the kernel has them, a large
 * CQ), 4 accepts in flight, TCP_NODELAY, and per connection one operation in
 * flight on its own buffer: recv, then send what was read (the rest again
 * after a short send), then the next recv. No threads, no SQPOLL, no busy
 * polling: the loop sleeps in io_uring_submit_and_wait(ring, 1).
 *
 *   uring_server PORT [echo|sink] [READ_BYTES]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPTS 4

typedef struct conn {
  int fd;
  int sending;      /* the operation in flight: 0 = recv, 1 = send */
  size_t len, off;  /* bytes read, bytes of them sent so far */
  char buf[];       /* READ_BYTES */
} conn;

static struct io_uring ring;
static int lfd;
static int sink;
static size_t buf_len;

static struct io_uring_sqe *sqe_get(void) {
  struct io_uring_sqe *s = io_uring_get_sqe(&ring);
  if (!s) { /* SQ full: hand what is queued to the kernel, then there is room */
    io_uring_submit(&ring);
    s = io_uring_get_sqe(&ring);
  }
  return s;
}

static void arm_accept(void) {
  struct io_uring_sqe *s = sqe_get();
  io_uring_prep_accept(s, lfd, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data(s, NULL);
}

static void arm_recv(conn *c) {
  struct io_uring_sqe *s = sqe_get();
  c->sending = 0;
  io_uring_prep_recv(s, c->fd, c->buf, buf_len, 0);
  io_uring_sqe_set_data(s, c);
}

static void arm_send(conn *c) {
  struct io_uring_sqe *s = sqe_get();
  c->sending = 1;
  io_uring_prep_send(s, c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
  io_uring_sqe_set_data(s, c);
}

static void drop(conn *c) {
  close(c->fd); /* nothing else is in flight on it */
  free(c);
}

static void complete(struct io_uring_cqe *cqe) {
  conn *c = io_uring_cqe_get_data(cqe);
  int res = cqe->res;
  if (!c) { /* an accept */
    if (res >= 0) {
      int one = 1;
      setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      conn *nc = malloc(sizeof *nc + buf_len);
      nc->fd = res;
      arm_recv(nc);
    }
    arm_accept();
    return;
  }
  if (res <= 0) { /* peer closed, or an error */
    drop(c);
    return;
  }
  if (!c->sending) {
    if (sink) {
      arm_recv(c);
      return;
    }
    c->len = (size_t)res;
    c->off = 0;
    arm_send(c);
    return;
  }
  c->off += (size_t)res;
  if (c->off < c->len) arm_send(c); /* short send: the rest */
  else arm_recv(c);
}

static void on_signal(int sig) {
  (void)sig;
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: uring_server PORT [echo|sink] [READ_BYTES]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  sink = argc > 2 && strcmp(argv[2], "sink") == 0;
  buf_len = argc > 3 ? (size_t)atol(argv[3]) : 65536;
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa_sig = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa_sig, NULL);
  sigaction(SIGINT, &sa_sig, NULL);

  lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
    perror("uring_server: bind/listen");
    return 1;
  }

  struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
                                       IORING_SETUP_DEFER_TASKRUN,
                              .cq_entries = 65536};
  int r = io_uring_queue_init_params(4096, &ring, &p);
  if (r == -EINVAL) { /* kernel before 6.1: without SINGLE_ISSUER / DEFER_TASKRUN */
    p = (struct io_uring_params){.flags = IORING_SETUP_CQSIZE, .cq_entries = 65536};
    r = io_uring_queue_init_params(4096, &ring, &p);
  }
  if (r < 0) {
    fprintf(stderr, "uring_server: io_uring_queue_init_params: %s\n", strerror(-r));
    return 1;
  }
  for (int i = 0; i < ACCEPTS; i++) arm_accept();
  printf("ready %d\n", port);
  fflush(stdout);

  for (;;) {
    r = io_uring_submit_and_wait(&ring, 1);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      fprintf(stderr, "uring_server: io_uring_submit_and_wait: %s\n", strerror(-r));
      return 1;
    }
    unsigned head, n = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      complete(cqe);
      n++;
    }
    io_uring_cq_advance(&ring, n);
  }
}
