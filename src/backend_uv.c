/* backend_uv.c -- the libuv backend: the fallback on Linux (no io_uring, or
 * ZIG_TCP_BACKEND=uv) and the backend on macOS, the BSDs and other Unixes.
 *
 * libuv is not thread-safe, and here it need not be: the loop calls submit,
 * cancel, release and poll on the I/O thread only, and libuv's callbacks run
 * inside poll's uv_run. Only wake (uv_async_send) comes from other threads.
 *
 * Per operation:
 *   read     uv_read_start. The stream keeps reading after a read completes,
 *            so request/response traffic costs no epoll_ctl per read; it
 *            stops only when bytes arrive while no read waits. A read that
 *            finds the stream stopped first tries recv(2) at once. Bytes land
 *            in the backend's one scratch buffer (libuv asks for a buffer only
 *            when the socket is readable) and are copied to an exact-size
 *            buffer for the op: a waiting read holds no memory.
 *   write    uv_try_write, then uv_write of any rest (libuv resubmits short
 *            writes).
 *   connect  non-blocking connect(2) + a uv_poll for writability. Not
 *            uv_tcp_connect: abandoning that needs uv_close, which would close
 *            the fd while the core still uses it.
 *   accept   accept(2) on the listener while accepts wait, with a uv_poll that
 *            runs only while some do. Not uv_listen: it would call listen()
 *            again (overriding the backlog) and accept ahead of demand.
 * A connection's uv_tcp_t is made lazily (uv_tcp_open on the core's fd) by
 * its first read or write. */
#if !defined(_WIN32)

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "backend.h"

typedef struct uv_backend uv_backend;

/* Lives in tcp_op.backend while the op is submitted. */
typedef struct uv_op {
  bool cancelled;
} uv_op;

/* Allocated by adopt (a uv_tcp_t does not fit tcp_sock.backend beside the
 * rest); tcp_sock.backend holds the pointer. */
typedef struct uv_sock {
  tcp_sock *sock;
  uv_backend *owner;
  uv_tcp_t stream;   /* connection: reads and writes */
  uv_poll_t poll;    /* listener: readable; connection: connect done */
  int handles_open;  /* initialised handles whose close callback is due */
  bool stream_init, stream_closing;
  bool stream_owns_fd; /* uv_tcp_open succeeded: uv_close closes the fd */
  bool reading;        /* uv_read_start is in effect */
  int stream_error;    /* uv_tcp_open failed with this errno */
  bool poll_init, poll_closing, polling;
  bool nonblocking;    /* O_NONBLOCK set on the fd */
  bool release_started;
  tcp_op *read_op, *write_op, *connect_op;
  uv_write_t write_req; /* of write_op: the core runs one write at a time per socket */
  queue accepts;       /* waiting accepts (tcp_op.backend_link) */
} uv_sock;

/* Reads of up to this many bytes go through the scratch buffer; a larger
 * bytes_max gets its own buffer of that size, taken when the socket is
 * readable. */
#define SCRATCH_BYTES (256 * 1024)

struct uv_backend {
  backend base;
  uv_loop_t loop;
  uv_async_t wake_async;
  uv_timer_t poll_timer; /* bounds a waiting poll */
  uint8_t *scratch;      /* SCRATCH_BYTES; I/O thread only */
};

_Static_assert(sizeof(uv_op) <= OP_BACKEND_BYTES, "uv_op must fit tcp_op.backend");
_Static_assert(_Alignof(uv_op) <= 16, "tcp_op.backend is 16-byte aligned");
_Static_assert(sizeof(uv_sock *) <= SOCK_BACKEND_BYTES, "tcp_sock.backend holds a pointer");

static uv_op *uv_op_of(tcp_op *op) { return (uv_op *)(void *)op->backend; }
static uv_backend *self(backend *b) { return (uv_backend *)(void *)b; }
static backend_sink *sink_of(uv_sock *us) { return us->owner->base.sink; }

static uv_sock *sock_state(tcp_sock *s) {
  uv_sock *us;
  memcpy(&us, s->backend, sizeof(us));
  return us;
}

static void set_sock_state(tcp_sock *s, uv_sock *us) { memcpy(s->backend, &us, sizeof(us)); }

/* libuv status codes are -errno on Unix. */
static int errno_of(int uv_status) { return uv_status < 0 ? -uv_status : uv_status; }

/* result >= 0: success value; otherwise os_error is the errno. A cancelled op
 * that ends with ECANCELED is reported as ended by its cancel. */
static void report(uv_sock *us, tcp_op *op, int64_t result, int os_error) {
  backend_sink *sink = sink_of(us);
  if (result >= 0) sink_op_done(sink, op, result);
  else if (os_error == ECANCELED && uv_op_of(op)->cancelled) sink_op_cancelled(sink, op);
  else sink_op_error(sink, op, os_error);
}

static int set_nonblocking(uv_sock *us) {
  if (us->nonblocking) return 0;
  int fd = us->sock->fd;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return errno;
  us->nonblocking = true;
  return 0;
}

/* ---- handle lifetime ------------------------------------------------------- */

static void finish_release(uv_sock *us) {
  tcp_sock *s = us->sock;
  if (!us->stream_owns_fd) os_socket_close(s->fd);
  s->fd = -1;
  backend_sink *sink = sink_of(us);
  set_sock_state(s, NULL);
  free(us);
  sink_sock_released(sink, s);
}

static void on_handle_closed(uv_handle_t *h) {
  uv_sock *us = h->data;
  us->handles_open--;
  if (us->release_started && us->handles_open == 0) finish_release(us);
}

/* Closing the stream is also the only way to abandon a libuv write: its
 * callback then runs with UV_ECANCELED. A read gets no callback, so it is
 * reported here. */
static void close_stream(uv_sock *us) {
  if (!us->stream_init || us->stream_closing) return;
  us->stream_closing = true;
  us->reading = false; /* uv_close stops it */
  tcp_op *read_op = us->read_op;
  us->read_op = NULL;
  uv_close((uv_handle_t *)&us->stream, on_handle_closed);
  if (read_op != NULL) report(us, read_op, -1, ECANCELED);
}

static void close_poll(uv_sock *us) {
  if (!us->poll_init || us->poll_closing) return;
  us->poll_closing = true;
  us->polling = false;
  /* uv_close stops the watcher at once, so the fd is free for uv_tcp_open. */
  uv_close((uv_handle_t *)&us->poll, on_handle_closed);
}

static int ensure_poll(uv_sock *us) {
  if (us->poll_init) return 0;
  int rc = uv_poll_init_socket(&us->owner->loop, &us->poll, us->sock->fd);
  if (rc != 0) return errno_of(rc);
  us->poll_init = true;
  us->handles_open++;
  us->poll.data = us;
  return 0;
}

/* Returns 0 once the connection's uv_tcp_t wraps the fd, else an errno. */
static int ensure_stream(uv_sock *us) {
  if (us->stream_closing) return ECANCELED;
  if (us->stream_init) return us->stream_error;
  int rc = uv_tcp_init(&us->owner->loop, &us->stream);
  if (rc != 0) return errno_of(rc);
  us->stream_init = true;
  us->handles_open++;
  us->stream.data = us;
  rc = uv_tcp_open(&us->stream, us->sock->fd);
  if (rc != 0) {
    us->stream_error = errno_of(rc);
    return us->stream_error;
  }
  us->stream_owns_fd = true;
  us->nonblocking = true; /* uv_tcp_open made it so */
#if defined(SO_NOSIGPIPE)
  /* Where SIGPIPE is process-wide (Apple, BSD), keep a write to a reset peer
   * from raising it; the engine also ignores SIGPIPE at init. */
  int on = 1;
  (void)setsockopt(us->sock->fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on));
#endif
  return 0;
}

/* ---- read ------------------------------------------------------------------ */

/* Where the bytes of op's read go: the scratch buffer, or (bytes_max above it)
 * an own buffer of bytes_max, NULL when out of memory. */
static uint8_t *read_target(uv_sock *us, tcp_op *op, size_t *capacity) {
  *capacity = op->len;
  if (op->len <= SCRATCH_BYTES) return us->owner->scratch;
  return malloc(op->len);
}

/* n > 0 bytes arrived in buf (from read_target): they become op's. */
static void read_arrived(uv_sock *us, tcp_op *op, uint8_t *buf, size_t n) {
  if (buf != us->owner->scratch) {
    uint8_t *shrunk = n <= op->len / 2 ? realloc(buf, n) : NULL;
    op_read_adopt(op, shrunk != NULL ? shrunk : buf);
  } else if (!op_read_copy(op, buf, n)) {
    report(us, op, -1, ENOMEM); /* the bytes are lost: the stream is broken */
    return;
  }
  report(us, op, (int64_t)n, 0);
}

static void on_read_alloc(uv_handle_t *h, size_t suggested_bytes, uv_buf_t *buf) {
  (void)suggested_bytes;
  /* Called only when the socket is readable. A zero-length buffer (no read
   * waits, or out of memory) makes libuv report UV_ENOBUFS to on_read. */
  uv_sock *us = h->data;
  tcp_op *op = us->read_op;
  size_t capacity = 0;
  uint8_t *target = op != NULL ? read_target(us, op, &capacity) : NULL;
  buf->base = (char *)target;
  buf->len = target != NULL ? capacity : 0;
}

static void stop_reading(uv_sock *us) {
  if (!us->reading) return;
  uv_read_stop((uv_stream_t *)&us->stream);
  us->reading = false;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  uv_sock *us = stream->data;
  bool own_buffer = buf->base != NULL && (uint8_t *)buf->base != us->owner->scratch;
  if (nread <= 0 && own_buffer) free(buf->base);
  if (nread == 0) return; /* EAGAIN: libuv keeps polling */
  tcp_op *op = us->read_op;
  /* Keep reading after data: the next read is usually asked for before more
   * bytes arrive. Bytes with no read waiting (UV_ENOBUFS from on_read_alloc),
   * end of stream and errors stop it; the next read starts it again. */
  if (nread < 0 || op == NULL) stop_reading(us);
  if (op == NULL) return;
  us->read_op = NULL;
  if (nread > 0) read_arrived(us, op, (uint8_t *)buf->base, (size_t)nread);
  else if (nread == UV_EOF) report(us, op, 0, 0);
  else if (nread == UV_ENOBUFS) report(us, op, -1, ENOMEM);
  else report(us, op, -1, errno_of((int)nread));
}

static void start_read(uv_sock *us, tcp_op *op) {
  int err = ensure_stream(us);
  if (err != 0) {
    report(us, op, -1, err);
    return;
  }
  if (us->reading) {
    us->read_op = op; /* still polled: libuv asks on_read_alloc for a buffer when bytes come */
    return;
  }
  /* Try the socket first: when bytes are already queued (pipelined or bulk
   * traffic) this saves a poll round and libuv's epoll_ctl calls for arming
   * and disarming. libuv keeps no read-ahead, so bypassing it is safe. */
  if (op->len <= SCRATCH_BYTES) {
    ssize_t n;
    do {
      n = recv(us->sock->fd, us->owner->scratch, op->len, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      read_arrived(us, op, us->owner->scratch, (size_t)n);
      return;
    }
    if (n == 0) {
      report(us, op, 0, 0);
      return;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      report(us, op, -1, errno);
      return;
    }
  }
  us->read_op = op;
  int rc = uv_read_start((uv_stream_t *)&us->stream, on_read_alloc, on_read);
  if (rc != 0) {
    us->read_op = NULL;
    report(us, op, -1, errno_of(rc));
    return;
  }
  us->reading = true;
}

/* ---- write ----------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  tcp_op *op = req->data;
  uv_sock *us = sock_state(op->sock);
  us->write_op = NULL;
  if (status == 0) report(us, op, (int64_t)op->len, 0);
  else report(us, op, -1, errno_of(status));
}

static void start_write(uv_sock *us, tcp_op *op) {
  int err = ensure_stream(us);
  if (err != 0) {
    report(us, op, -1, err);
    return;
  }
  uv_buf_t buf = uv_buf_init((char *)op->data + op->done, (unsigned)(op->len - op->done));
  /* uv_try_write first: bytes that go out at once complete in this pass and
   * leave the poll mask alone (a uv_write that finishes at once still re-arms
   * it afterwards: one epoll_ctl per write). uv_write takes any rest. */
  int sent = uv_try_write((uv_stream_t *)&us->stream, &buf, 1);
  if (sent < 0 && sent != UV_EAGAIN) {
    report(us, op, -1, errno_of(sent));
    return;
  }
  if (sent > 0) {
    op->done += (size_t)sent;
    if (op->done == op->len) {
      report(us, op, (int64_t)op->len, 0);
      return;
    }
    buf.base += sent;
    buf.len -= (size_t)sent;
  }
  us->write_req.data = op;
  us->write_op = op;
  int rc = uv_write(&us->write_req, (uv_stream_t *)&us->stream, &buf, 1, on_write);
  if (rc != 0) {
    us->write_op = NULL;
    report(us, op, -1, errno_of(rc));
  }
}

static void start_shutdown_write(uv_sock *us, tcp_op *op) {
  int err = os_shutdown_write(us->sock->fd);
  report(us, op, err ? -1 : 0, err);
}

/* ---- connect --------------------------------------------------------------- */

static void finish_connect(uv_sock *us, int os_error) {
  tcp_op *op = us->connect_op;
  if (op == NULL) return;
  us->connect_op = NULL;
  close_poll(us);
  report(us, op, os_error ? -1 : 0, os_error);
}

static void on_connect_ready(uv_poll_t *h, int status, int events) {
  uv_sock *us = h->data;
  if (us->connect_op == NULL) return;
  int so_error = 0;
  socklen_t len = sizeof(so_error);
  if (getsockopt(us->sock->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
  /* libuv turns POLLERR into a bare UV_EBADF; SO_ERROR has the reason. */
  if (so_error == 0 && status < 0) so_error = errno_of(status);
  if (so_error != 0 || (events & UV_WRITABLE)) finish_connect(us, so_error);
}

static void start_connect(uv_sock *us, tcp_op *op) {
  us->connect_op = op;
  int err = set_nonblocking(us);
  if (err != 0) {
    finish_connect(us, err);
    return;
  }
  if (connect(us->sock->fd, (const struct sockaddr *)&op->addr, (socklen_t)op->addr_len) == 0) {
    finish_connect(us, 0);
    return;
  }
  /* EINTR: the connect goes on in the background, as EINPROGRESS. */
  if (errno != EINPROGRESS && errno != EINTR) {
    finish_connect(us, errno);
    return;
  }
  err = ensure_poll(us);
  if (err == 0) err = errno_of(uv_poll_start(&us->poll, UV_WRITABLE, on_connect_ready));
  if (err != 0) {
    finish_connect(us, err);
    return;
  }
  us->polling = true;
}

/* ---- accept ----------------------------------------------------------------- */

/* Returns a non-blocking, close-on-exec fd, or -1 with *os_error set. */
static int accept_nonblocking(int listener_fd, int *os_error) {
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || \
    defined(__DragonFly__)
  int fd = accept4(listener_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) *os_error = errno;
  return fd;
#else
  /* No accept4 (Apple): the fd is briefly inheritable by a concurrent exec. */
  int fd = accept(listener_fd, NULL, NULL);
  if (fd < 0) {
    *os_error = errno;
    return -1;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    *os_error = errno;
    close(fd);
    return -1;
  }
  return fd;
#endif
}

/* Errors that concern one failed handshake, not the listener: try the next
 * queued connection (accept(2) on Linux asks for this). */
static bool accept_error_is_transient(int err) {
  switch (err) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENOPROTOOPT:
    case EOPNOTSUPP:
#if defined(EHOSTDOWN)
    case EHOSTDOWN:
#endif
#if defined(ENONET)
    case ENONET:
#endif
      return true;
    default: return false;
  }
}

static tcp_op *accept_pop(uv_sock *us) {
  qlink *l = queue_pop(&us->accepts);
  return l != NULL ? QUEUE_ENTRY(l, tcp_op, backend_link) : NULL;
}

static void on_listener_ready(uv_poll_t *h, int status, int events);

/* Poll the listener exactly while accepts wait: connections nobody asked for
 * stay in the kernel's queue. */
static void update_accept_polling(uv_sock *us) {
  bool want = !queue_empty(&us->accepts);
  if (want == us->polling) return;
  if (!want) {
    uv_poll_stop(&us->poll);
    us->polling = false;
    return;
  }
  int err = ensure_poll(us);
  if (err == 0) err = errno_of(uv_poll_start(&us->poll, UV_READABLE, on_listener_ready));
  if (err == 0) {
    us->polling = true;
    return;
  }
  tcp_op *op;
  while ((op = accept_pop(us)) != NULL) report(us, op, -1, err);
}

/* Pairs waiting accepts with queued connections, first come first served. */
static void serve_accepts(uv_sock *us) {
  while (!queue_empty(&us->accepts)) {
    int err = 0;
    int fd = accept_nonblocking(us->sock->fd, &err);
    if (fd >= 0) {
      sink_accept_done(sink_of(us), accept_pop(us), fd);
      continue;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) break;
    if (accept_error_is_transient(err)) continue;
    /* EMFILE and the like: fail one accept; the next may succeed later. */
    report(us, accept_pop(us), -1, err);
    break;
  }
  update_accept_polling(us);
}

static void on_listener_ready(uv_poll_t *h, int status, int events) {
  (void)status; /* an error shows up in accept() itself */
  (void)events;
  serve_accepts(h->data);
}

static void start_accept(uv_sock *us, tcp_op *op) {
  int err = set_nonblocking(us);
  if (err != 0) {
    report(us, op, -1, err);
    return;
  }
  queue_push(&us->accepts, &op->backend_link);
  serve_accepts(us);
}

/* ---- the vtable ------------------------------------------------------------- */

static void uv_backend_submit(backend *b, tcp_op *op) {
  (void)b;
  uv_sock *us = sock_state(op->sock);
  memset(uv_op_of(op), 0, sizeof(uv_op));
  switch (op->kind) {
    case OP_CONNECT: start_connect(us, op); break;
    case OP_ACCEPT: start_accept(us, op); break;
    case OP_READ: start_read(us, op); break;
    case OP_WRITE: start_write(us, op); break;
    case OP_SHUTDOWN_WRITE: start_shutdown_write(us, op); break;
    default: ZT_ASSERT(!"the core submits no other kind"); break;
  }
}

static void uv_backend_cancel(backend *b, tcp_op *op) {
  (void)b;
  uv_sock *us = sock_state(op->sock);
  uv_op_of(op)->cancelled = true;
  switch (op->kind) {
    case OP_CONNECT:
      if (us->connect_op == op) finish_connect(us, ECANCELED);
      break;
    case OP_ACCEPT:
      queue_remove(&us->accepts, &op->backend_link);
      sink_op_cancelled(sink_of(us), op);
      update_accept_polling(us);
      break;
    case OP_READ:
      ZT_ASSERT(us->read_op == op);
      stop_reading(us);
      us->read_op = NULL;
      sink_op_cancelled(sink_of(us), op);
      break;
    case OP_WRITE:
      /* The write ends (UV_ECANCELED) in close_stream's uv_close. */
      ZT_ASSERT(us->write_op == op);
      close_stream(us);
      break;
    default: ZT_ASSERT(!"only connect, accept, read and write stay submitted"); break;
  }
}

static int32_t uv_backend_adopt(backend *b, tcp_sock *s) {
  uv_sock *us = calloc(1, sizeof(*us));
  if (us == NULL) return TCP_ERR_NO_MEMORY;
  us->sock = s;
  us->owner = self(b);
  set_sock_state(s, us);
  return TCP_OK;
}

static void uv_backend_release(backend *b, tcp_sock *s) {
  (void)b;
  uv_sock *us = sock_state(s);
  ZT_ASSERT(us->read_op == NULL && us->write_op == NULL && us->connect_op == NULL);
  ZT_ASSERT(queue_empty(&us->accepts));
  us->release_started = true;
  close_stream(us);
  close_poll(us);
  if (us->handles_open == 0) finish_release(us);
}

static void on_poll_timer(uv_timer_t *t) { (void)t; /* uv_run(ONCE) returns after this */ }

static void uv_backend_poll(backend *b, int64_t timeout_ms) {
  uv_backend *u = self(b);
  if (timeout_ms == 0) {
    uv_run(&u->loop, UV_RUN_NOWAIT);
    return;
  }
  if (timeout_ms > 0) uv_timer_start(&u->poll_timer, on_poll_timer, (uint64_t)timeout_ms, 0);
  uv_run(&u->loop, UV_RUN_ONCE); /* the wake handle keeps the loop alive */
  if (timeout_ms > 0) uv_timer_stop(&u->poll_timer);
}

static void uv_backend_wake(backend *b) { uv_async_send(&self(b)->wake_async); }

static void on_wake(uv_async_t *h) { (void)h; /* uv_run returns after this pass */ }

static int32_t uv_backend_create(backend_sink *sink, backend **out) {
  uv_backend *u = calloc(1, sizeof(*u));
  if (u == NULL) return TCP_ERR_NO_MEMORY;
  u->scratch = malloc(SCRATCH_BYTES);
  int rc = u->scratch != NULL ? uv_loop_init(&u->loop) : UV_ENOMEM;
  if (rc != 0) {
    free(u->scratch);
    free(u);
    return rc == UV_ENOMEM ? TCP_ERR_NO_MEMORY : TCP_ERR_UNSUPPORTED;
  }
  rc = uv_async_init(&u->loop, &u->wake_async, on_wake);
  if (rc == 0) rc = uv_timer_init(&u->loop, &u->poll_timer);
  if (rc != 0) {
    if (uv_is_active((uv_handle_t *)&u->wake_async)) uv_close((uv_handle_t *)&u->wake_async, NULL);
    uv_run(&u->loop, UV_RUN_NOWAIT);
    uv_loop_close(&u->loop);
    free(u->scratch);
    free(u);
    return rc == UV_ENOMEM ? TCP_ERR_NO_MEMORY : TCP_ERR_UNSUPPORTED;
  }
  u->base.vtable = &backend_uv;
  u->base.sink = sink;
  *out = &u->base;
  return TCP_OK;
}

static void close_leftover(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void uv_backend_destroy(backend *b) {
  uv_backend *u = self(b);
  uv_walk(&u->loop, close_leftover, NULL); /* the wake and timer handles: every socket is released */
  uv_run(&u->loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&u->loop);
  ZT_ASSERT(rc == 0);
  (void)rc;
  free(u->scratch);
  free(u);
}

const backend_vtable backend_uv = {
    .name = "uv",
    .create = uv_backend_create,
    .destroy = uv_backend_destroy,
    .adopt = uv_backend_adopt,
    .submit = uv_backend_submit,
    .cancel = uv_backend_cancel,
    .release = uv_backend_release,
    .poll = uv_backend_poll,
    .wake = uv_backend_wake,
};

#endif /* !_WIN32 */
