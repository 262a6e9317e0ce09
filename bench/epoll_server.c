/*
 * epoll_server.c -- baseline: a plain single-threaded epoll echo (or sink)
 * server, the way one would write it by hand. Level-triggered, nonblocking,
 * TCP_NODELAY, one read buffer; a connection whose echo cannot be written at
 * once keeps the rest and stops reading until it is flushed.
 *
 *   epoll_server PORT|--unix PATH [echo|sink] [READ_BYTES]
 *
 * --unix PATH: the same server on a Unix stream socket at PATH (no
 * TCP_NODELAY there; the socket file is left to whoever made PATH's
 * directory, as the benchmark removes its temporary directory).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
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

/* The listening socket: on 127.0.0.1:port, or on the Unix path when unix_path
 * is set. Returns the fd, or -1 after saying why. */
static int listen_socket(int port, const char *unix_path) {
  struct sockaddr_storage ss = {0};
  socklen_t len;
  if (unix_path) {
    struct sockaddr_un *su = (struct sockaddr_un *)&ss;
    size_t n = strlen(unix_path);
    if (n == 0 || n >= sizeof su->sun_path) {
      fprintf(stderr, "epoll_server: --unix: the path must have 1..%zu bytes\n", sizeof su->sun_path - 1);
      return -1;
    }
    su->sun_family = AF_UNIX;
    memcpy(su->sun_path, unix_path, n + 1);
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  } else {
    struct sockaddr_in *si = (struct sockaddr_in *)&ss;
    si->sin_family = AF_INET;
    si->sin_port = htons((uint16_t)port);
    si->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *si;
  }
  int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (!unix_path) setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, len) < 0 || listen(lfd, 4096) < 0) {
    perror("epoll_server: bind/listen");
    return -1;
  }
  return lfd;
}

int main(int argc, char **argv) {
  const char *unix_path = NULL;
  if (argc > 2 && strcmp(argv[1], "--unix") == 0) { /* the path takes the port's place */
    unix_path = argv[2];
    argv++;
    argc--;
  }
  if (argc < 2) {
    fprintf(stderr, "usage: epoll_server PORT|--unix PATH [echo|sink] [READ_BYTES]\n");
    return 2;
  }
  int port = unix_path ? 0 : atoi(argv[1]);
  sink = argc > 2 && strcmp(argv[2], "sink") == 0;
  size_t buf_len = argc > 3 ? (size_t)atol(argv[3]) : 65536;
  char *buf = malloc(buf_len);
  signal(SIGPIPE, SIG_IGN);

  int lfd = listen_socket(port, unix_path);
  if (lfd < 0) return 1;
  int one = 1;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
  if (unix_path) printf("ready %s\n", unix_path);
  else printf("ready %d\n", port);
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
          if (!unix_path) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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
