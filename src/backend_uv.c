/* backend_uv.c -- the libuv backend: the fallback on Linux (no io_uring, or
 * ZIG_TCP_BACKEND=uv) and the backend on macOS, the BSDs and other Unixes.
 *
 * libuv is not thread-safe: only the I/O thread (run()) touches the loop. The
 * core calls start/cancel/release from any thread with the engine lock held;
 * they only record a command on a queue that the same lock guards, and wake the
 * loop with uv_async_send. The I/O thread drains that queue between passes of
 * the loop, making the libuv calls with the engine lock held (none of them
 * calls back synchronously), and every libuv callback takes the lock before it
 * touches core state.
 *
 * Per operation:
 *   read     uv_read_start into op->data. The stream keeps reading after a
 *            read completes, so request/response traffic costs no epoll_ctl
 *            per read; it stops only when bytes arrive while no read waits.
 *            A read that finds the stream stopped first tries recv(2) at once.
 *   write    uv_try_write, then uv_write of any rest (libuv resubmits short
 *            writes).
 *   connect  non-blocking connect(2) + a uv_poll for writability + a uv_timer
 *            for the deadline. Not uv_tcp_connect: abandoning that needs
 *            uv_close, which would close the fd while the core still uses it.
 *   accept   accept(2) on the listener while accepts wait, with a uv_poll that
 *            runs only while some do. Not uv_listen: it would call listen()
 *            again (overriding the backlog) and accept ahead of demand.
 * A connection's uv_tcp_t is made lazily (uv_tcp_open on the core's fd) by
 * its first read or write, on the I/O thread. */
#if !defined(_WIN32)

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "engine.h"

/* A link in the command queue; the first member of both uv_op and uv_sock. */
typedef struct cmd_node {
  struct cmd_node *prev, *next;
  bool queued;
  bool is_sock; /* a uv_sock (release) rather than a uv_op (start/cancel) */
} cmd_node;

/* Lives in tcp_op.backend, from start() until the op's completion. */
typedef struct uv_op {
  cmd_node node;
  tcp_op *op;
  bool start_pending;
  bool cancel_pending;
  tcp_op *accept_next; /* a listener's waiting accepts */
  uv_write_t write_req;
} uv_op;

/* Allocated by adopt() (a uv_tcp_t does not fit tcp_sock.backend beside the
 * rest); tcp_sock.backend holds the pointer. Freed just before
 * engine_sock_released. Every field is touched on the I/O thread only, except
 * the queue node (engine lock). */
typedef struct uv_sock {
  cmd_node node;
  tcp_sock *sock;
  uv_tcp_t stream;          /* connection: reads and writes */
  uv_poll_t poll;           /* listener: readable; connection: connect done */
  uv_timer_t connect_timer; /* connect deadline */
  int handles_open;         /* initialised handles whose close callback is due */
  bool stream_init, stream_closing;
  bool stream_owns_fd;      /* uv_tcp_open succeeded: uv_close closes the fd */
  bool reading;             /* uv_read_start is in effect */
  int stream_error;         /* uv_tcp_open failed with this errno */
  bool poll_init, poll_closing, polling;
  bool timer_init, timer_closing;
  bool nonblocking;         /* O_NONBLOCK set on the fd */
  bool release_started;
  tcp_op *read_op, *write_op, *connect_op;
  tcp_op *accept_head, *accept_tail;
} uv_sock;

_Static_assert(sizeof(uv_op) <= OP_BACKEND_BYTES, "uv_op must fit tcp_op.backend");
_Static_assert(_Alignof(uv_op) <= 16, "tcp_op.backend is 16-byte aligned");
_Static_assert(sizeof(uv_sock *) <= SOCK_BACKEND_BYTES, "tcp_sock.backend holds a pointer");

static struct {
  uv_loop_t loop;
  uv_async_t wake_async;
  /* wake() may run on any thread, also while run() is closing the async
   * handle: this lock makes "still open?" and uv_async_send one step. */
  uv_mutex_t wake_mutex;
  bool wake_enabled;
  cmd_node queue; /* sentinel of a circular list; engine lock */
} B;

static _Thread_local bool on_loop_thread;

static uv_op *op_state(tcp_op *op) { return (uv_op *)(void *)op->backend; }

static uv_sock *sock_state(tcp_sock *s) {
  uv_sock *us;
  memcpy(&us, s->backend, sizeof(us));
  return us;
}

static void set_sock_state(tcp_sock *s, uv_sock *us) { memcpy(s->backend, &us, sizeof(us)); }

/* ---- command queue (engine lock held) ------------------------------------- */

static void queue_push(cmd_node *n) {
  n->queued = true;
  n->next = &B.queue;
  n->prev = B.queue.prev;
  B.queue.prev->next = n;
  B.queue.prev = n;
}

static void queue_unlink(cmd_node *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = NULL;
  n->queued = false;
}

static cmd_node *queue_pop(void) {
  cmd_node *n = B.queue.next;
  if (n == &B.queue) return NULL;
  queue_unlink(n);
  return n;
}

static void uv_wake(void) {
  uv_mutex_lock(&B.wake_mutex);
  if (B.wake_enabled) uv_async_send(&B.wake_async);
  uv_mutex_unlock(&B.wake_mutex);
}

/* On the I/O thread the run loop drains the queue right after the current
 * pass, so no wake-up is needed. */
static void queue_command(cmd_node *n) {
  if (!n->queued) queue_push(n);
  if (!on_loop_thread) uv_wake();
}

/* ---- completing ops (engine lock held) ------------------------------------ */

/* result >= 0: success value; otherwise os_error is the positive errno. */
static void finish_op(tcp_op *op, int64_t result, int os_error) {
  uv_op *u = op_state(op);
  /* A cancel queued behind this completion must not run: the core frees op. */
  if (u->node.queued) queue_unlink(&u->node);
  if (result < 0) engine_op_done(op, -1, os_error);
  else engine_op_done(op, result, 0);
}

/* libuv status codes are -errno on Unix. */
static int errno_of(int uv_status) { return uv_status < 0 ? -uv_status : uv_status; }

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
  set_sock_state(s, NULL);
  free(us);
  engine_sock_released(s);
}

static void on_handle_closed(uv_handle_t *h) {
  engine_lock();
  uv_sock *us = h->data;
  us->handles_open--;
  if (us->release_started && us->handles_open == 0) finish_release(us);
  engine_unlock();
}

/* Closing the stream is also the only way to abandon a libuv write: its
 * callback then runs with UV_ECANCELED. A read gets no callback, so it is
 * completed here. */
static void close_stream(uv_sock *us) {
  if (!us->stream_init || us->stream_closing) return;
  us->stream_closing = true;
  us->reading = false; /* uv_close stops it */
  tcp_op *read_op = us->read_op;
  us->read_op = NULL;
  uv_close((uv_handle_t *)&us->stream, on_handle_closed);
  if (read_op != NULL) finish_op(read_op, -1, ECANCELED);
}

static void close_poll(uv_sock *us) {
  if (!us->poll_init || us->poll_closing) return;
  us->poll_closing = true;
  us->polling = false;
  /* uv_close stops the watcher at once, so the fd is free for uv_tcp_open. */
  uv_close((uv_handle_t *)&us->poll, on_handle_closed);
}

static void close_timer(uv_sock *us) {
  if (!us->timer_init || us->timer_closing) return;
  us->timer_closing = true;
  uv_close((uv_handle_t *)&us->connect_timer, on_handle_closed);
}

/* Returns 0 once the connection's uv_tcp_t wraps the fd, else an errno. */
static int ensure_stream(uv_sock *us) {
  if (us->stream_closing) return ECANCELED;
  if (us->stream_init) return us->stream_error;
  int rc = uv_tcp_init(&B.loop, &us->stream);
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

static void on_read_alloc(uv_handle_t *h, size_t suggested_bytes, uv_buf_t *buf) {
  (void)suggested_bytes;
  /* I/O thread only; read_op is set before uv_read_start. A zero-length
   * buffer makes libuv report UV_ENOBUFS, which on_read ignores. */
  uv_sock *us = h->data;
  tcp_op *op = us->read_op;
  buf->base = op ? (char *)op->data : NULL;
  buf->len = op ? op->len : 0;
}

static void stop_reading(uv_sock *us) {
  if (!us->reading) return;
  uv_read_stop((uv_stream_t *)&us->stream);
  us->reading = false;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread == 0) return; /* EAGAIN: libuv keeps polling */
  engine_lock();
  uv_sock *us = stream->data;
  tcp_op *op = us->read_op;
  us->read_op = NULL;
  /* Keep reading after data: the next read is usually asked for before more
   * bytes arrive. Bytes with no read waiting (UV_ENOBUFS from on_read_alloc),
   * end of stream and errors stop it; the next read starts it again. */
  if (nread < 0 || op == NULL) stop_reading(us);
  if (op != NULL) {
    if (nread > 0) finish_op(op, nread, 0);
    else if (nread == UV_EOF) finish_op(op, 0, 0);
    else finish_op(op, -1, errno_of((int)nread));
  }
  engine_unlock();
}

static void start_read(uv_sock *us, tcp_op *op) {
  int err = ensure_stream(us);
  if (err != 0) {
    finish_op(op, -1, err);
    return;
  }
  if (us->reading) {
    /* Still polled: libuv reads into op->data when bytes come. */
    us->read_op = op;
    return;
  }
  /* Try the socket first: when bytes are already queued (pipelined or bulk
   * traffic) this saves a poll round and libuv's epoll_ctl calls for arming
   * and disarming. libuv keeps no read-ahead, so bypassing it is safe. */
  ssize_t n;
  do {
    n = recv(us->sock->fd, op->data, op->len, 0);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) {
    finish_op(op, n, 0);
    return;
  }
  if (errno != EAGAIN && errno != EWOULDBLOCK) {
    finish_op(op, -1, errno);
    return;
  }
  us->read_op = op;
  int rc = uv_read_start((uv_stream_t *)&us->stream, on_read_alloc, on_read);
  if (rc != 0) {
    us->read_op = NULL;
    finish_op(op, -1, errno_of(rc));
    return;
  }
  us->reading = true;
}

/* ---- write ----------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  engine_lock();
  tcp_op *op = req->data;
  uv_sock *us = sock_state(op->sock);
  us->write_op = NULL;
  if (status == 0) finish_op(op, (int64_t)op->len, 0);
  else finish_op(op, -1, errno_of(status));
  engine_unlock();
}

static void start_write(uv_sock *us, tcp_op *op) {
  int err = ensure_stream(us);
  if (err != 0) {
    finish_op(op, -1, err);
    return;
  }
  uv_op *u = op_state(op);
  uv_buf_t buf;
  buf.base = (char *)op->data + op->done;
  buf.len = op->len - op->done;
  /* uv_try_write first: bytes that go out at once complete in this pass and
   * leave the poll mask alone (a uv_write that finishes at once still re-arms
   * it afterwards: one epoll_ctl per write). uv_write takes any rest. */
  int sent = uv_try_write((uv_stream_t *)&us->stream, &buf, 1);
  if (sent < 0 && sent != UV_EAGAIN) {
    finish_op(op, -1, errno_of(sent));
    return;
  }
  if (sent > 0) {
    op->done += (size_t)sent;
    if (op->done == op->len) {
      finish_op(op, (int64_t)op->len, 0);
      return;
    }
    buf.base += sent;
    buf.len -= (size_t)sent;
  }
  u->write_req.data = op;
  us->write_op = op;
  int rc = uv_write(&u->write_req, (uv_stream_t *)&us->stream, &buf, 1, on_write);
  if (rc != 0) {
    us->write_op = NULL;
    finish_op(op, -1, errno_of(rc));
  }
}

/* ---- connect --------------------------------------------------------------- */

static void finish_connect(uv_sock *us, int os_error) {
  tcp_op *op = us->connect_op;
  if (op == NULL) return;
  us->connect_op = NULL;
  close_poll(us);
  close_timer(us);
  finish_op(op, os_error ? -1 : 0, os_error);
}

static void on_connect_ready(uv_poll_t *h, int status, int events) {
  engine_lock();
  uv_sock *us = h->data;
  if (us->connect_op != NULL) {
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (getsockopt(us->sock->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
    /* libuv turns POLLERR into a bare UV_EBADF; SO_ERROR has the reason. */
    if (so_error == 0 && status < 0) so_error = errno_of(status);
    if (so_error != 0 || (events & UV_WRITABLE)) finish_connect(us, so_error);
  }
  engine_unlock();
}

static void on_connect_timeout(uv_timer_t *t) {
  engine_lock();
  uv_sock *us = t->data;
  finish_connect(us, ETIMEDOUT);
  engine_unlock();
}

static void start_connect(uv_sock *us, tcp_op *op) {
  us->connect_op = op;
  int err = set_nonblocking(us);
  if (err != 0) {
    finish_connect(us, err);
    return;
  }
  int fd = us->sock->fd;
  if (connect(fd, (const struct sockaddr *)&op->addr, (socklen_t)op->addr_len) == 0) {
    finish_connect(us, 0);
    return;
  }
  /* EINTR: the connect goes on in the background, as EINPROGRESS. */
  if (errno != EINPROGRESS && errno != EINTR) {
    finish_connect(us, errno);
    return;
  }
  int rc = uv_poll_init_socket(&B.loop, &us->poll, fd);
  if (rc != 0) {
    finish_connect(us, errno_of(rc));
    return;
  }
  us->poll_init = true;
  us->handles_open++;
  us->poll.data = us;
  rc = uv_poll_start(&us->poll, UV_WRITABLE, on_connect_ready);
  if (rc != 0) {
    finish_connect(us, errno_of(rc));
    return;
  }
  us->polling = true;
  if (op->timeout_ms > 0) {
    rc = uv_timer_init(&B.loop, &us->connect_timer);
    if (rc != 0) {
      finish_connect(us, errno_of(rc));
      return;
    }
    us->timer_init = true;
    us->handles_open++;
    us->connect_timer.data = us;
    uv_timer_start(&us->connect_timer, on_connect_timeout, (uint64_t)op->timeout_ms, 0);
  }
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
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
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
    default:
      return false;
  }
}

static tcp_op *accept_pop(uv_sock *us) {
  tcp_op *op = us->accept_head;
  if (op == NULL) return NULL;
  us->accept_head = op_state(op)->accept_next;
  if (us->accept_head == NULL) us->accept_tail = NULL;
  op_state(op)->accept_next = NULL;
  return op;
}

static void on_listener_ready(uv_poll_t *h, int status, int events);

/* Poll the listener exactly while accepts wait: connections nobody asked for
 * stay in the kernel's queue. */
static void update_accept_polling(uv_sock *us) {
  bool want = us->accept_head != NULL;
  if (want == us->polling) return;
  if (!want) {
    uv_poll_stop(&us->poll);
    us->polling = false;
    return;
  }
  int rc = 0;
  if (!us->poll_init) {
    rc = uv_poll_init_socket(&B.loop, &us->poll, us->sock->fd);
    if (rc == 0) {
      us->poll_init = true;
      us->handles_open++;
      us->poll.data = us;
    }
  }
  if (rc == 0) rc = uv_poll_start(&us->poll, UV_READABLE, on_listener_ready);
  if (rc == 0) {
    us->polling = true;
    return;
  }
  tcp_op *op;
  while ((op = accept_pop(us)) != NULL) finish_op(op, -1, errno_of(rc));
}

/* Pairs waiting accepts with queued connections, first come first served. */
static void serve_accepts(uv_sock *us) {
  while (us->accept_head != NULL) {
    int err = 0;
    int fd = accept_nonblocking(us->sock->fd, &err);
    if (fd >= 0) {
      tcp_op *op = accept_pop(us);
      uv_op *u = op_state(op);
      if (u->node.queued) queue_unlink(&u->node);
      engine_accept_done(op, fd); /* on failure the core closed fd */
      continue;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) break;
    if (accept_error_is_transient(err)) continue;
    /* EMFILE and the like: fail one accept; the next may succeed later. */
    finish_op(accept_pop(us), -1, err);
    break;
  }
  update_accept_polling(us);
}

static void on_listener_ready(uv_poll_t *h, int status, int events) {
  (void)status; /* an error shows up in accept() itself */
  (void)events;
  engine_lock();
  serve_accepts(h->data);
  engine_unlock();
}

static void start_accept(uv_sock *us, tcp_op *op) {
  int err = set_nonblocking(us);
  if (err != 0) {
    finish_op(op, -1, err);
    return;
  }
  op_state(op)->accept_next = NULL;
  if (us->accept_tail) op_state(us->accept_tail)->accept_next = op;
  else us->accept_head = op;
  us->accept_tail = op;
  serve_accepts(us);
}

static void cancel_accept(uv_sock *us, tcp_op *op) {
  tcp_op *prev = NULL;
  for (tcp_op *it = us->accept_head; it != NULL; prev = it, it = op_state(it)->accept_next) {
    if (it != op) continue;
    tcp_op *next = op_state(it)->accept_next;
    if (prev) op_state(prev)->accept_next = next;
    else us->accept_head = next;
    if (us->accept_tail == op) us->accept_tail = prev;
    finish_op(op, -1, ECANCELED);
    update_accept_polling(us);
    return;
  }
}

/* ---- commands on the I/O thread (engine lock held) ------------------------ */

static void do_start(tcp_op *op) {
  uv_sock *us = sock_state(op->sock);
  switch (op->kind) {
    case OP_CONNECT: start_connect(us, op); break;
    case OP_ACCEPT: start_accept(us, op); break;
    case OP_READ: start_read(us, op); break;
    case OP_WRITE: start_write(us, op); break;
    default: finish_op(op, -1, EINVAL); break; /* the core runs the others */
  }
}

static void do_cancel(tcp_op *op) {
  uv_sock *us = sock_state(op->sock);
  switch (op->kind) {
    case OP_CONNECT:
      if (us->connect_op == op) finish_connect(us, ECANCELED);
      break;
    case OP_ACCEPT: cancel_accept(us, op); break;
    case OP_READ:
      if (us->read_op == op) {
        stop_reading(us);
        us->read_op = NULL;
        finish_op(op, -1, ECANCELED);
      }
      break;
    case OP_WRITE:
      /* The write completes (UV_ECANCELED) from close_stream's uv_close. */
      if (us->write_op == op) close_stream(us);
      break;
    default: break;
  }
}

static void do_release(uv_sock *us) {
  us->release_started = true;
  close_stream(us);
  close_poll(us);
  close_timer(us);
  if (us->handles_open == 0) finish_release(us);
}

static void drain_commands(void) {
  cmd_node *n;
  while ((n = queue_pop()) != NULL) {
    if (n->is_sock) {
      do_release((uv_sock *)n);
      continue;
    }
    uv_op *u = (uv_op *)n;
    if (u->cancel_pending) {
      bool never_started = u->start_pending;
      u->cancel_pending = u->start_pending = false;
      if (never_started) finish_op(u->op, -1, ECANCELED);
      else do_cancel(u->op);
    } else if (u->start_pending) {
      u->start_pending = false;
      do_start(u->op);
    }
  }
}

/* ---- the vtable --------------------------------------------------------------- */

static void on_wake(uv_async_t *h) { (void)h; /* run() drains after this pass */ }

static int32_t uv_backend_init(void) {
  memset(&B, 0, sizeof(B));
  B.queue.next = B.queue.prev = &B.queue;
  int rc = uv_loop_init(&B.loop);
  if (rc != 0) return rc == UV_ENOMEM ? TCP_ERR_NO_MEMORY : TCP_ERR_UNSUPPORTED;
  rc = uv_async_init(&B.loop, &B.wake_async, on_wake);
  if (rc == 0) {
    rc = uv_mutex_init(&B.wake_mutex);
    if (rc != 0) uv_close((uv_handle_t *)&B.wake_async, NULL);
  }
  if (rc != 0) {
    uv_run(&B.loop, UV_RUN_NOWAIT);
    uv_loop_close(&B.loop);
    return rc == UV_ENOMEM ? TCP_ERR_NO_MEMORY : TCP_ERR_UNSUPPORTED;
  }
  B.wake_enabled = true;
  return TCP_OK;
}

static void close_leftover(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void uv_backend_run(void) {
  on_loop_thread = true;
  for (;;) {
    engine_lock();
    drain_commands();
    engine_unlock();
    engine_flush();
    /* Checked after the flush: drained() also wants no unposted completion. */
    engine_lock();
    bool stop = engine_stopping() && engine_drained() && B.queue.next == &B.queue;
    engine_unlock();
    if (stop) break;
    uv_run(&B.loop, UV_RUN_ONCE);
  }
  uv_mutex_lock(&B.wake_mutex);
  B.wake_enabled = false;
  uv_mutex_unlock(&B.wake_mutex);
  uv_close((uv_handle_t *)&B.wake_async, NULL);
  uv_walk(&B.loop, close_leftover, NULL); /* none expected once drained */
  uv_run(&B.loop, UV_RUN_DEFAULT);
}

static void uv_backend_wake(void) {
  if (!on_loop_thread) uv_wake();
}

static void uv_backend_start(tcp_op *op) {
  uv_op *u = op_state(op);
  memset(u, 0, sizeof(*u));
  u->op = op;
  u->start_pending = true;
  queue_command(&u->node);
}

static void uv_backend_cancel(tcp_op *op) {
  uv_op *u = op_state(op);
  u->cancel_pending = true;
  queue_command(&u->node);
}

static int32_t uv_backend_adopt(tcp_sock *s) {
  uv_sock *us = calloc(1, sizeof(*us));
  if (us == NULL) return TCP_ERR_NO_MEMORY;
  us->sock = s;
  us->node.is_sock = true;
  set_sock_state(s, us);
  return TCP_OK;
}

static void uv_backend_release(tcp_sock *s) {
  queue_command(&sock_state(s)->node);
}

static void uv_backend_destroy(void) {
  uv_loop_close(&B.loop);
  uv_mutex_destroy(&B.wake_mutex);
}

const backend_vtable backend_uv = {
    .name = "uv",
    .init = uv_backend_init,
    .run = uv_backend_run,
    .wake = uv_backend_wake,
    .start = uv_backend_start,
    .cancel = uv_backend_cancel,
    .adopt = uv_backend_adopt,
    .release = uv_backend_release,
    .destroy = uv_backend_destroy,
};

#endif /* !_WIN32 */
