/*
 * epoll_server.c -- baseline: a plain single-threaded epoll echo (or sink)
 * server, the way one would write it by hand. Level-triggered, nonblocking,
 * TCP_NODELAY, one read buffer; a connection whose echo cannot be written at
 * once keeps the rest and stops reading until it is flushed.
 *
 *   epoll_server PORT [echo|sink] [READ_BYTES]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct conn {
  int fd;
  char *pend; /* bytes still to echo */
  size_t pend_len, pend_off, pend_cap;
} conn;

static int epfd;
static int sink;

static void drop(conn *c) {
  close(c->fd);
  free(c->pend);
  free(c);
}

static void arm(conn *c, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* returns 0 when everything pending went out, 1 when some is left, -1 on error */
static int push(conn *c, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  if (!n) return 0;
  if (c->pend_cap < n) {
    free(c->pend);
    c->pend = malloc(n);
    c->pend_cap = n;
  }
  memcpy(c->pend, p, n);
  c->pend_len = n;
  c->pend_off = 0;
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: epoll_server PORT [echo|sink] [READ_BYTES]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  sink = argc > 2 && strcmp(argv[2], "sink") == 0;
  size_t buf_len = argc > 3 ? (size_t)atol(argv[3]) : 65536;
  char *buf = malloc(buf_len);
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
    perror("epoll_server: bind/listen");
    return 1;
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
  printf("ready %d\n", port);
  fflush(stdout);

  struct epoll_event evs[512];
  for (;;) {
    int n = epoll_wait(epfd, evs, 512, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      if (!c) {
        for (;;) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conn *nc = calloc(1, sizeof *nc);
          nc->fd = fd;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      if (evs[i].events & EPOLLOUT) {
        int r = push(c, c->pend + c->pend_off, c->pend_len - c->pend_off);
        if (r < 0) {
          drop(c);
          continue;
        }
        if (r == 0) {
          c->pend_len = 0;
          arm(c, EPOLLIN);
        }
        continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t r = recv(c->fd, buf, buf_len, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) {
          drop(c);
          continue;
        }
        if (sink) continue;
        int p = push(c, buf, (size_t)r);
        if (p < 0) drop(c);
        else if (p > 0) arm(c, EPOLLOUT);
      }
    }
  }
}
