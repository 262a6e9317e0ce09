/*
 * uv_server.c -- baseline: a plain libuv echo (or sink) server. One loop, one
 * thread, TCP_NODELAY. Each connection reads into its own buffer; the echo is
 * sent with uv_try_write, and only what the kernel did not take at once is
 * copied into a uv_write request (what a careful libuv server does; a malloc
 * per read would make libuv look slower than it is).
 *
 *   uv_server PORT [echo|sink] [READ_BYTES]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_loop_t *loop;
static size_t buf_len = 65536;
static int sink;

typedef struct conn {
  uv_tcp_t tcp;
  char *buf;
} conn;

typedef struct wreq {
  uv_write_t req;
  uv_buf_t buf;
} wreq;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn *c = (conn *)h;
  *buf = uv_buf_init(c->buf, (unsigned)buf_len);
}

static void on_close(uv_handle_t *h) {
  conn *c = (conn *)h;
  free(c->buf);
  free(c);
}

static void on_write(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  uv_handle_t *h = (uv_handle_t *)req->handle;
  free(w->buf.base);
  free(w);
  if (status < 0 && !uv_is_closing(h)) uv_close(h, on_close);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n <= 0) {
    if (n < 0 && !uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (sink) return;
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
  int w = uv_stream_get_write_queue_size(s) == 0 ? uv_try_write(s, &b, 1) : 0;
  if (w == UV_EAGAIN) w = 0;
  if (w < 0) {
    if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (w == n) return;
  wreq *r = malloc(sizeof *r);
  size_t left = (size_t)n - (size_t)w;
  r->buf = uv_buf_init(malloc(left), (unsigned)left);
  memcpy(r->buf.base, buf->base + w, left);
  uv_write(&r->req, s, &r->buf, 1, on_write);
}

static void on_conn(uv_stream_t *server, int status) {
  if (status < 0) return;
  conn *c = malloc(sizeof *c);
  c->buf = malloc(buf_len);
  uv_tcp_init(loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0) {
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  } else {
    uv_close((uv_handle_t *)&c->tcp, on_close);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: uv_server PORT [echo|sink] [READ_BYTES]\n");
    return 2;
  }
  sink = argc > 2 && strcmp(argv[2], "sink") == 0;
  if (argc > 3) buf_len = (size_t)atol(argv[3]);
  loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
  int r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (!r) r = uv_listen((uv_stream_t *)&server, 4096, on_conn);
  if (r) {
    fprintf(stderr, "uv_server: %s\n", uv_strerror(r));
    return 1;
  }
  printf("ready %s\n", argv[1]);
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
