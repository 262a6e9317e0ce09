/* backend_uv.c -- the libuv backend: the fallback on Linux (no io_uring, or
 * ZIG_TCP_BACKEND=uv) and the backend on macOS, the BSDs and other Unixes.
 *
 * libuv is the portable readiness poller here (epoll, kqueue, event ports):
 * each socket has one uv_poll_t, and the backend makes the socket calls itself
 * -- recv, send, accept, connect -- the way dart:io's event handler works. A
 * connection then costs a uv_poll_t (no uv_tcp_t, no uv_write_t: ~250 bytes
 * in all), and an echoed request a recv and a send with no epoll_ctl.
 *
 * libuv is not thread-safe, and here it need not be: the loop calls submit,
 * cancel, release and poll on the I/O thread only, and libuv's callbacks run
 * inside poll's uv_run. Only wake (uv_async_send) comes from other threads.
 *
 * Per operation:
 *   read     recv(2) at once into the backend's one scratch buffer, copied to
 *            an exact size for the op (a waiting read holds no memory); on
 *            EAGAIN, wait for readability. Readability stays watched after a
 *            read completes (request/response traffic then needs no epoll_ctl
 *            per read) until it fires while no read waits.
 *   write    send(2) until done; the rest when the socket is writable.
 *   connect  non-blocking connect(2), then writability and SO_ERROR.
 *   accept   accept(2) while accepts wait, watching readability only then
 *            (connections nobody asked for stay in the kernel's queue). */
#if !defined(_WIN32)

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "backend.h"
#include "platform.h"

#if !defined(MSG_NOSIGNAL)
#define MSG_NOSIGNAL 0 /* Apple: SO_NOSIGPIPE is set on every socket instead */
#endif

typedef struct uv_backend uv_backend;

/* Lives in tcp_op.backend while the op is submitted. */
typedef struct uv_op {
  bool cancelled;
} uv_op;

/* Made by adopt, in the backend's record slab (ops.h: an idle connection's
 * state stays off the arenas its busy time's buffers churn); tcp_sock.backend
 * holds the pointer. Every idle connection pays for it: 192 bytes on Linux
 * x86_64, 160 of them libuv's uv_poll_t. */
typedef struct uv_sock {
  uv_poll_t poll;      /* poll.data: this uv_sock */
  tcp_sock *sock;
  union {
    struct {           /* a connection's */
      tcp_op *read_op;
      union {          /* the core starts no write before the connect ended */
        tcp_op *write_op;
        tcp_op *connect_op; /* while connecting is set */
      };
    };
    queue *accepts;    /* a listener's waiting accepts (tcp_op.backend_link); its own
                          allocation, so that a connection's record stays 192 bytes */
  };
  bool connecting;     /* connect_op holds the pending connect */
  uint8_t events;      /* what the poll watches now (UV_READABLE | UV_WRITABLE) */
  bool poll_init, poll_closing, release_started;
  bool keep_reading;   /* watch readability although no read waits (see the top) */
  bool read_drained;   /* the last recv returned less than it asked for: the socket was empty then */
  bool nonblocking;    /* O_NONBLOCK set on the fd */
} uv_sock;

/* Reads of up to this many bytes go through the scratch buffer; a larger
 * bytes_max gets its own buffer of that size, taken when bytes are there. */
#define SCRATCH_BYTES (256 * 1024)

struct uv_backend {
  backend base;
  uv_loop_t loop;
  uv_async_t wake_async;
  uv_timer_t poll_timer; /* bounds a waiting poll */
  uint8_t *scratch;      /* SCRATCH_BYTES; I/O thread only */
  /* The uv_socks: adopt runs on any thread under the engine lock, a release
   * ends on the I/O thread without it, hence a lock of their own. */
  plat_mutex socks_lock;
  record_slab socks;
};

#if defined(__linux__) && defined(__x86_64__)
_Static_assert(sizeof(uv_sock) <= 192, "uv_sock grew: every idle connection pays for it (issue 13)");
#endif
_Static_assert(sizeof(uv_op) <= OP_BACKEND_BYTES, "uv_op must fit tcp_op.backend");
_Static_assert(sizeof(uv_sock *) <= SOCK_BACKEND_BYTES, "tcp_sock.backend holds a pointer");

static uv_op *uv_op_of(tcp_op *op) { return (uv_op *)(void *)op->backend; }
static uv_backend *self(backend *b) { return (uv_backend *)(void *)b; }
/* The one backend of the process (the engine is a process-wide singleton):
 * set by create, cleared by destroy; a uv_sock need not carry a pointer. */
static uv_backend *the_backend;

static uv_backend *owner_of(uv_sock *us) {
  (void)us;
  ZT_ASSERT(the_backend != NULL);
  return the_backend;
}
static backend_sink *sink_of(uv_sock *us) { return owner_of(us)->base.sink; }

static uv_sock *sock_state(tcp_sock *s) {
  uv_sock *us;
  memcpy(&us, s->backend, sizeof(us));
  return us;
}

static void set_sock_state(tcp_sock *s, uv_sock *us) { memcpy(s->backend, &us, sizeof(us)); }

/* libuv status codes are -errno on Unix. */
static int errno_of(int uv_status) { return uv_status < 0 ? -uv_status : uv_status; }

/* result >= 0: success value; otherwise os_error is the errno. */
static void report(uv_sock *us, tcp_op *op, int64_t result, int os_error) {
  backend_sink *sink = sink_of(us);
  if (result >= 0) sink_op_done(sink, op, result);
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

/* ---- the poll ------------------------------------------------------------- */

static void on_poll_event(uv_poll_t *h, int status, int events);

static int ensure_poll(uv_sock *us) {
  if (us->poll_init) return 0;
  int err = set_nonblocking(us);
  if (err != 0) return err;
  int rc = uv_poll_init_socket(&owner_of(us)->loop, &us->poll, us->sock->fd);
  if (rc != 0) return errno_of(rc);
  us->poll_init = true;
  us->poll.data = us;
  return 0;
}

/* Watches exactly what the socket's waiting operations need. 0 or an errno. */
static int update_events(uv_sock *us) {
  int want = 0;
  if (us->sock->kind == SOCK_LISTENER) {
    if (!queue_empty(us->accepts)) want |= UV_READABLE;
  } else {
    if (us->read_op != NULL || us->keep_reading) want |= UV_READABLE;
    if (us->write_op != NULL) want |= UV_WRITABLE; /* a write, or the connect */
  }
  if (want == us->events || us->poll_closing) return 0;
  int err = ensure_poll(us);
  if (err != 0) return err;
  int rc = want == 0 ? uv_poll_stop(&us->poll) : uv_poll_start(&us->poll, want, on_poll_event);
  if (rc != 0) return errno_of(rc);
  us->events = (uint8_t)want;
  return 0;
}

static void free_sock_state(uv_sock *us) {
  uv_backend *u = owner_of(us);
  if (us->sock->kind == SOCK_LISTENER) free(us->accepts); /* empty, or NULL (adopt failed) */
  plat_lock(&u->socks_lock);
  slab_free(&u->socks, us);
  plat_unlock(&u->socks_lock);
}

static void finish_release(uv_sock *us) {
  tcp_sock *s = us->sock;
  os_socket_close(s->fd);
  s->fd = -1;
  backend_sink *sink = sink_of(us);
  set_sock_state(s, NULL);
  free_sock_state(us);
  sink_sock_released(sink, s);
}

static void on_poll_closed(uv_handle_t *h) { finish_release(h->data); }

/* ---- read ------------------------------------------------------------------ */

/* recv for op: > 0 bytes (now the op's), 0 end of stream, -1 with *err
 * (EAGAIN: nothing yet). */
static ssize_t receive(uv_sock *us, tcp_op *op, int *err) {
  uint8_t *buf = op->len <= SCRATCH_BYTES ? owner_of(us)->scratch : malloc(op->len);
  if (buf == NULL) {
    *err = ENOMEM;
    return -1;
  }
  ssize_t n;
  do {
    n = recv(us->sock->fd, buf, op->len, 0);
  } while (n < 0 && errno == EINTR);
  *err = n < 0 ? errno : 0;
  if (n > 0 && buf == owner_of(us)->scratch && !op_read_copy(op, buf, (size_t)n)) {
    *err = ENOMEM; /* the bytes are lost: the stream is broken */
    return -1;
  }
  if (buf != owner_of(us)->scratch) {
    uint8_t *shrunk = n > 0 && (size_t)n <= op->len / 2 ? realloc(buf, (size_t)n) : NULL;
    if (n > 0) op_read_adopt(op, shrunk != NULL ? shrunk : buf);
    else free(buf);
  }
  return n;
}

/* Tries the waiting read; reports it unless the socket has nothing yet. */
static void try_read(uv_sock *us) {
  tcp_op *op = us->read_op;
  int err = 0;
  ssize_t n = receive(us, op, &err);
  if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) return;
  us->read_op = NULL;
  us->keep_reading = n > 0; /* the next read usually comes before more bytes */
  us->read_drained = n > 0 && (size_t)n < op->len;
  report(us, op, n >= 0 ? n : -1, err);
}

static void start_read(uv_sock *us, tcp_op *op) {
  us->read_op = op;
  /* Bytes already queued (pipelined or bulk traffic) cost no poll round -- but
   * when the last recv emptied the socket and readability is still watched, a
   * recv now almost always fails with EAGAIN (request/response traffic: one
   * wasted syscall per request, measured with strace -c). The poll is
   * level-triggered, so bytes that came meanwhile are reported at its next
   * round. */
  if (!(us->read_drained && (us->events & UV_READABLE))) try_read(us);
  int err = update_events(us);
  if (err != 0 && us->read_op != NULL) {
    us->read_op = NULL;
    report(us, op, -1, err);
  }
}

/* ---- write ----------------------------------------------------------------- */

/* Sends what is left of the waiting write; reports it when all is sent or it
 * fails. */
static void try_write(uv_sock *us) {
  tcp_op *op = us->write_op;
  while (op->done < op->len) {
    ssize_t n = send(us->sock->fd, op->data + op->done, op->len - op->done, MSG_NOSIGNAL);
    if (n > 0) {
      op->done += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    } else {
      us->write_op = NULL;
      report(us, op, -1, n < 0 ? errno : EPIPE);
      return;
    }
  }
  us->write_op = NULL;
  report(us, op, (int64_t)op->len, 0);
}

static void start_write(uv_sock *us, tcp_op *op) {
  int err = set_nonblocking(us);
  if (err != 0) {
    report(us, op, -1, err);
    return;
  }
  ZT_ASSERT(!us->connecting && us->write_op == NULL);
  us->write_op = op;
  try_write(us);
  err = update_events(us);
  if (err != 0 && us->write_op != NULL) {
    us->write_op = NULL;
    report(us, op, -1, err);
  }
}

static void start_shutdown_write(uv_sock *us, tcp_op *op) {
  int err = os_shutdown_write(us->sock->fd);
  report(us, op, err ? -1 : 0, err);
}

/* ---- connect --------------------------------------------------------------- */

static void finish_connect(uv_sock *us, int os_error) {
  ZT_ASSERT(us->connecting);
  tcp_op *op = us->connect_op;
  us->connect_op = NULL;
  us->connecting = false;
  (void)update_events(us);
  report(us, op, os_error ? -1 : 0, os_error);
}

static void connect_ready(uv_sock *us, int status, int events) {
  int so_error = 0;
  socklen_t len = sizeof(so_error);
  if (getsockopt(us->sock->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
  /* libuv turns POLLERR into a bare UV_EBADF; SO_ERROR has the reason. */
  if (so_error == 0 && status < 0) so_error = errno_of(status);
  if (so_error != 0 || (events & UV_WRITABLE)) finish_connect(us, so_error);
}

static void start_connect(uv_sock *us, tcp_op *op) {
  ZT_ASSERT(us->connect_op == NULL && us->read_op == NULL);
  us->connect_op = op;
  us->connecting = true;
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
  err = update_events(us);
  if (err != 0) finish_connect(us, err);
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
  qlink *l = queue_pop(us->accepts);
  return l != NULL ? QUEUE_ENTRY(l, tcp_op, backend_link) : NULL;
}

/* Pairs waiting accepts with queued connections, first come first served. */
static void serve_accepts(uv_sock *us) {
  while (!queue_empty(us->accepts)) {
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
  int err = update_events(us);
  tcp_op *op;
  while (err != 0 && (op = accept_pop(us)) != NULL) report(us, op, -1, err);
}

static void start_accept(uv_sock *us, tcp_op *op) {
  int err = set_nonblocking(us);
  if (err != 0) {
    report(us, op, -1, err);
    return;
  }
  queue_push(us->accepts, &op->backend_link);
  serve_accepts(us);
}

/* ---- readiness ------------------------------------------------------------------ */

static void on_poll_event(uv_poll_t *h, int status, int events) {
  uv_sock *us = h->data;
  if (us->sock->kind == SOCK_LISTENER) {
    serve_accepts(us); /* an error shows up in accept() itself */
    return;
  }
  /* An error (status < 0): the socket calls themselves report the reason. */
  bool readable = status < 0 || (events & UV_READABLE);
  bool writable = status < 0 || (events & UV_WRITABLE);
  if (us->connecting) {
    connect_ready(us, status, events);
    return;
  }
  if (readable && us->read_op != NULL) try_read(us);
  else if (readable) us->keep_reading = false; /* bytes and no read: stop watching */
  if (writable && us->write_op != NULL) try_write(us);
  int err = update_events(us);
  if (err == 0) return;
  tcp_op *op = us->read_op;
  us->read_op = NULL;
  if (op != NULL) report(us, op, -1, err);
  op = us->write_op;
  us->write_op = NULL;
  if (op != NULL) report(us, op, -1, err);
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
      ZT_ASSERT(us->connecting && us->connect_op == op);
      us->connect_op = NULL;
      us->connecting = false;
      break;
    case OP_ACCEPT: queue_remove(us->accepts, &op->backend_link); break;
    case OP_READ: ZT_ASSERT(us->read_op == op); us->read_op = NULL; us->keep_reading = false; break;
    case OP_WRITE: ZT_ASSERT(!us->connecting && us->write_op == op); us->write_op = NULL; break;
    default: ZT_ASSERT(!"only connect, accept, read and write stay submitted"); break;
  }
  (void)update_events(us); /* a failure here only leaves a watch on: harmless */
  sink_op_cancelled(sink_of(us), op);
}

static int32_t uv_backend_adopt(backend *b, tcp_sock *s) {
  uv_backend *u = self(b);
  plat_lock(&u->socks_lock);
  uv_sock *us = slab_alloc(&u->socks);
  plat_unlock(&u->socks_lock);
  if (us == NULL) return TCP_ERR_NO_MEMORY;
  memset(us, 0, sizeof(*us));
  us->sock = s;
  if (s->kind == SOCK_LISTENER && (us->accepts = calloc(1, sizeof(queue))) == NULL) {
    free_sock_state(us);
    return TCP_ERR_NO_MEMORY;
  }
#if defined(SO_NOSIGPIPE)
  /* Where SIGPIPE is process-wide (Apple, BSD), a send to a reset peer must not
   * raise it; the engine also ignores SIGPIPE at init. */
  int on = 1;
  (void)setsockopt(s->fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on));
#endif
  set_sock_state(s, us);
  return TCP_OK;
}

static void uv_backend_release(backend *b, tcp_sock *s) {
  (void)b;
  uv_sock *us = sock_state(s);
  ZT_ASSERT(!us->connecting);
  if (s->kind == SOCK_LISTENER) ZT_ASSERT(queue_empty(us->accepts));
  else ZT_ASSERT(us->read_op == NULL && us->write_op == NULL);
  us->release_started = true;
  if (!us->poll_init) {
    finish_release(us);
    return;
  }
  us->poll_closing = true;
  uv_close((uv_handle_t *)&us->poll, on_poll_closed); /* the fd is closed after libuv let go of it */
}

/* libuv's UV_RUN_ONCE runs due timers *before* it polls (1.44: uv_run's loop
 * head), and then computes the poll's timeout from the timers still active.
 * When this timer is already due there, a plain callback would leave no timer
 * and the poll would wait with no deadline (a connect timeout never fired:
 * test connect_timeouts_short). uv_stop makes that poll not wait at all. */
static void on_poll_timer(uv_timer_t *t) { uv_stop(t->loop); }

static void uv_backend_poll(backend *b, int64_t timeout_ms) {
  uv_backend *u = self(b);
  if (timeout_ms == 0) {
    uv_run(&u->loop, UV_RUN_NOWAIT);
    return;
  }
  /* The loop's clock is cached since its last pass; the timer counts from it. */
  uv_update_time(&u->loop);
  if (timeout_ms > 0) uv_timer_start(&u->poll_timer, on_poll_timer, (uint64_t)timeout_ms, 0);
  uv_run(&u->loop, UV_RUN_ONCE); /* the wake handle keeps the loop alive */
  if (timeout_ms > 0) uv_timer_stop(&u->poll_timer);
}

static void uv_backend_wake(backend *b) { uv_async_send(&self(b)->wake_async); }

static void on_wake(uv_async_t *h) { (void)h; /* uv_run returns after this pass */ }

static int32_t uv_backend_create(backend_sink *sink, backend **out) {
  uv_backend *u = calloc(1, sizeof(*u));
  if (u == NULL) return TCP_ERR_NO_MEMORY;
  u->socks_lock = (plat_mutex)PLAT_MUTEX_INIT;
  u->socks = (record_slab)RECORD_SLAB_INIT(uv_sock);
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
  ZT_ASSERT(the_backend == NULL);
  the_backend = u;
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
  slab_release_spare(&u->socks); /* every socket was released */
  free(u->scratch);
  the_backend = NULL;
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
