/* engine.c -- the shared core: engine lifetime and backend choice, the handle
 * table, per-socket operation queues, the close/cancel protocol, completion
 * queueing, and every public entry point of tcp.h. Backends (backend_*.c) only
 * start, cancel and release at the OS level; see engine.h. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#if defined(_WIN32)
#include <process.h>
#include <windows.h>
typedef SRWLOCK plat_mutex;
#define PLAT_MUTEX_INIT SRWLOCK_INIT
static void plat_lock(plat_mutex *m) { AcquireSRWLockExclusive(m); }
static void plat_unlock(plat_mutex *m) { ReleaseSRWLockExclusive(m); }
typedef HANDLE plat_thread;
#else
#include <pthread.h>
#include <signal.h>
typedef pthread_mutex_t plat_mutex;
#define PLAT_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
static void plat_lock(plat_mutex *m) { pthread_mutex_lock(m); }
static void plat_unlock(plat_mutex *m) { pthread_mutex_unlock(m); }
typedef pthread_t plat_thread;
#endif

#define NO_SLOT UINT32_MAX
#define READ_POOL_BUFFERS_MAX 64
/* Idle op records kept for reuse. Ops are made on the callers' threads and
 * retired on the I/O thread; with malloc that pattern defeats the per-thread
 * caches (measured: ~6 % of the server's CPU in echo). */
#define OP_POOL_MAX 4096
#define GENERATION_MAX 0x7fffffffu

typedef struct slot {
  tcp_sock *sock;      /* NULL when free */
  uint32_t generation; /* of the handle this slot issues next / issued last */
  uint32_t next_free;
} slot;

/* lifecycle_mutex serialises tcp_init/tcp_shutdown; engine_mutex guards E. */
static plat_mutex lifecycle_mutex = PLAT_MUTEX_INIT;
static plat_mutex engine_mutex = PLAT_MUTEX_INIT;

static struct {
  bool running;  /* between a successful tcp_init and the end of tcp_shutdown */
  bool stopping; /* tcp_shutdown in progress */
  const backend_vtable *backend;
  plat_thread io_thread;
  /* The handle table outlives an engine restart, so handles from an earlier
   * run stay recognisably closed. */
  slot *slots;
  uint32_t slots_len, slots_cap, free_head;
  size_t live_socks;
  tcp_op *done_head, *done_tail; /* completions waiting for engine_flush */
  bool wake_pending;             /* the I/O thread was woken to flush them */
  /* Idle read buffers, all of read_pool_bytes capacity (the size most recent
   * reads asked for): a read whose result is copied out gives its buffer back
   * here for the next read, instead of a malloc + free of bytes_max per read. */
  uint8_t *read_pool[READ_POOL_BUFFERS_MAX];
  uint32_t read_pool_len;
  size_t read_pool_bytes;
  tcp_op *op_pool; /* idle ops, linked by ->next */
  uint32_t op_pool_len;
} E = {.free_head = NO_SLOT};

static _Thread_local bool on_io_thread;
static _Thread_local int32_t last_os_error;

void engine_lock(void) { plat_lock(&engine_mutex); }
void engine_unlock(void) { plat_unlock(&engine_mutex); }
bool engine_stopping(void) { return E.stopping; }
bool engine_drained(void) { return E.live_socks == 0 && E.done_head == NULL; }
bool engine_done_pending(void) { return E.done_head != NULL; }

/* ---- queues --------------------------------------------------------------- */

static void queue_push(tcp_op **head, tcp_op **tail, tcp_op *op) {
  op->next = NULL;
  if (*tail) (*tail)->next = op;
  else *head = op;
  *tail = op;
}

static void queue_remove(tcp_op **head, tcp_op **tail, tcp_op *op) {
  tcp_op *prev = NULL;
  for (tcp_op *it = *head; it; prev = it, it = it->next) {
    if (it != op) continue;
    if (prev) prev->next = op->next;
    else *head = op->next;
    if (*tail == op) *tail = prev;
    op->next = NULL;
    return;
  }
}

/* ---- handles -------------------------------------------------------------- */

static int64_t handle_of(uint32_t index, uint32_t generation) {
  return ((int64_t)generation << 32) | (int64_t)index;
}

static int32_t engine_state_error(void) {
  if (!E.running) return TCP_ERR_NOT_INITIALIZED;
  if (E.stopping) return TCP_ERR_SHUTDOWN;
  return TCP_OK;
}

/* Without the lock: refuse early, before any socket call (on Windows a
 * socket call before tcp_init would fail with a confusing WSANOTINITIALISED). */
static int32_t current_state_error(void) {
  engine_lock();
  int32_t state = engine_state_error();
  engine_unlock();
  return state;
}

/* Lock held. The live socket behind handle, or NULL with *error set. */
static tcp_sock *lookup(int64_t handle, int32_t *error) {
  int32_t state = engine_state_error();
  if (state != TCP_OK) {
    *error = state;
    return NULL;
  }
  uint64_t generation = (uint64_t)handle >> 32;
  uint64_t index = (uint64_t)handle & 0xffffffffu;
  if (handle <= 0 || generation == 0 || generation > GENERATION_MAX || index >= E.slots_len) {
    *error = TCP_ERR_BAD_HANDLE;
    return NULL;
  }
  slot *sl = &E.slots[index];
  if (generation == sl->generation && sl->sock != NULL && !sl->sock->closing) return sl->sock;
  /* Generations only grow, and every one below the current was issued: an
   * older one is a closed handle, a newer one was never ours. */
  *error = generation < sl->generation ? TCP_ERR_CLOSED : TCP_ERR_BAD_HANDLE;
  return NULL;
}

static tcp_sock *lookup_kind(int64_t handle, sock_kind kind, int32_t *error) {
  tcp_sock *s = lookup(handle, error);
  if (s != NULL && s->kind != kind) {
    *error = TCP_ERR_BAD_HANDLE;
    return NULL;
  }
  return s;
}

/* Lock held. Makes the socket's handle invalid at once; the slot itself is
 * reused only after the socket is released. */
static void retire_handle(tcp_sock *s) {
  slot *sl = &E.slots[s->slot];
  sl->generation = sl->generation >= GENERATION_MAX ? 1 : sl->generation + 1;
}

static void free_slot(tcp_sock *s) {
  slot *sl = &E.slots[s->slot];
  sl->sock = NULL;
  sl->next_free = E.free_head;
  E.free_head = s->slot;
}

/* Lock held. A new socket record with a handle, attached to the backend.
 * On failure returns NULL with *error set; fd is left to the caller. */
static tcp_sock *sock_create(sock_kind kind, int64_t dart_port, os_socket fd, int family,
                             int32_t *error) {
  tcp_sock *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    *error = TCP_ERR_NO_MEMORY;
    return NULL;
  }
  uint32_t index;
  if (E.free_head != NO_SLOT) {
    index = E.free_head;
    E.free_head = E.slots[index].next_free;
  } else {
    if (E.slots_len == E.slots_cap) {
      uint32_t cap = E.slots_cap ? E.slots_cap * 2 : 64;
      slot *grown = cap > E.slots_cap ? realloc(E.slots, cap * sizeof(slot)) : NULL;
      if (grown == NULL) {
        free(s);
        *error = TCP_ERR_NO_MEMORY;
        return NULL;
      }
      E.slots = grown;
      E.slots_cap = cap;
    }
    index = E.slots_len++;
    E.slots[index].generation = 1;
  }
  E.slots[index].sock = s;
  s->kind = kind;
  s->slot = index;
  s->handle = handle_of(index, E.slots[index].generation);
  s->dart_port = dart_port;
  s->fd = fd;
  s->family = family;
  s->connected = kind == SOCK_CONNECTION; /* tcp_connect clears it */
  E.live_socks++;
  int32_t rc = E.backend->adopt(s);
  if (rc != TCP_OK) {
    retire_handle(s);
    free_slot(s);
    E.live_socks--;
    free(s);
    *error = rc;
    return NULL;
  }
  return s;
}

/* ---- read buffers ----------------------------------------------------------- */

/* Lock held. A buffer of bytes, or NULL when out of memory. */
static uint8_t *read_buffer_take(size_t bytes) {
  if (E.read_pool_len > 0 && E.read_pool_bytes == bytes) return E.read_pool[--E.read_pool_len];
  return malloc(bytes);
}

/* Lock held. Keeps buffer for a later read of the same size, or frees it. */
static void read_buffer_give(uint8_t *buffer, size_t bytes) {
  if (buffer == NULL) return;
  if (E.read_pool_bytes != bytes) {
    /* Reads changed size: the pool follows the newest one. */
    while (E.read_pool_len > 0) free(E.read_pool[--E.read_pool_len]);
    E.read_pool_bytes = bytes;
  }
  if (E.read_pool_len < READ_POOL_BUFFERS_MAX) E.read_pool[E.read_pool_len++] = buffer;
  else free(buffer);
}

static void read_pool_free(void) {
  while (E.read_pool_len > 0) free(E.read_pool[--E.read_pool_len]);
}

/* ---- operations and completions ------------------------------------------ */

/* Lock held. A cleared op (inline_data excepted), or NULL when out of memory. */
static tcp_op *op_take(op_kind kind, int64_t request_id) {
  tcp_op *op = E.op_pool;
  if (op != NULL) {
    E.op_pool = op->next;
    E.op_pool_len--;
  } else {
    op = malloc(sizeof(*op));
    if (op == NULL) return NULL;
  }
  memset(op, 0, offsetof(tcp_op, inline_data));
  op->kind = kind;
  op->request_id = request_id;
  op->wants_completion = true;
  return op;
}

/* Lock held. Frees what op still owns and keeps the record for reuse. */
static void op_recycle(tcp_op *op) {
  if (op->data != op->inline_data) free(op->data);
  if (E.op_pool_len >= OP_POOL_MAX) {
    free(op);
    return;
  }
  op->next = E.op_pool;
  E.op_pool = op;
  E.op_pool_len++;
}

/* Lock held. An op for the socket a lookup returned: NULL when the lookup failed
 * (*error already says why) or, with *error = TCP_ERR_NO_MEMORY, when out of
 * memory. */
static tcp_op *op_take_for(tcp_sock *s, op_kind kind, int64_t request_id, int32_t *error) {
  if (s == NULL) return NULL;
  tcp_op *op = op_take(kind, request_id);
  if (op == NULL) *error = TCP_ERR_NO_MEMORY;
  return op;
}

static void op_pool_free(void) {
  while (E.op_pool != NULL) {
    tcp_op *op = E.op_pool;
    E.op_pool = op->next;
    free(op);
  }
  E.op_pool_len = 0;
}

static void op_attach(tcp_op *op, tcp_sock *s) {
  op->sock = s;
  op->dart_port = s->dart_port;
}

/* Lock held. Queue op's completion for the next engine_flush. Off the I/O
 * thread, make sure the I/O thread wakes up to post it. */
static void complete(tcp_op *op, int64_t result, int64_t os_error) {
  op->result = result;
  op->os_error = os_error;
  op->sock = NULL; /* the socket may be freed before the post */
  if (!op->wants_completion) {
    op_recycle(op);
    return;
  }
  queue_push(&E.done_head, &E.done_tail, op);
  if (!on_io_thread && !E.wake_pending) {
    E.wake_pending = true;
    E.backend->wake();
  }
}

static void start_op(tcp_op *op) {
  op->started = true;
  op->sock->inflight++;
  E.backend->start(op);
}

static void release_sock(tcp_sock *s) {
  s->released = true;
  E.backend->release(s);
}

/* Lock held. Start the next read if none is in flight. Its buffer is taken
 * only now, so reads queued behind it hold no memory. */
static void pump_reads(tcp_sock *s) {
  while (!s->closing && s->connected && s->read_queue != NULL && !s->read_queue->started) {
    tcp_op *op = s->read_queue;
    if (op->data == NULL) op->data = read_buffer_take(op->len);
    if (op->data != NULL) {
      start_op(op);
      return;
    }
    queue_remove(&s->read_queue, &s->read_queue_tail, op);
    complete(op, TCP_ERR_NO_MEMORY, 0);
  }
}

/* Lock held. Run the write queue in order: the core itself performs
 * shutdown_write and zero-length writes when they reach the head. */
static void pump_writes(tcp_sock *s) {
  while (!s->closing && s->connected) {
    tcp_op *head = s->write_queue;
    if (head == NULL || head->started) return;
    if (head->kind == OP_WRITE && head->len > 0) {
      start_op(head);
      return;
    }
    queue_remove(&s->write_queue, &s->write_queue_tail, head);
    if (head->kind == OP_SHUTDOWN_WRITE) {
      int err = os_shutdown_write(s->fd);
      complete(head, err ? error_from_os(err) : 0, err);
    } else {
      complete(head, 0, 0);
    }
  }
}

/* Lock held. Fail every op of a queue that has not been started. */
static void fail_unstarted(tcp_op **head, tcp_op **tail, int32_t code) {
  tcp_op *it = *head;
  while (it) {
    tcp_op *next = it->next;
    if (!it->started) {
      queue_remove(head, tail, it);
      complete(it, code, 0);
    }
    it = next;
  }
}

static void cancel_started(tcp_op *head) {
  for (tcp_op *it = head; it; it = it->next)
    if (it->started) E.backend->cancel(it);
}

/* Lock held. The close protocol: the handle dies now; queued ops complete
 * with reason; in-flight ops are cancelled and complete (with reason) when
 * the OS reports them; once none is left the backend releases the OS socket
 * and only then does close_op complete. */
static void begin_close(tcp_sock *s, int32_t reason, tcp_op *close_op) {
  s->closing = true;
  s->close_reason = reason;
  s->close_op = close_op;
  retire_handle(s);
  /* Reads and writes complete in call order, also on close: an op queued
   * behind an in-flight one fails only after that one (see op_finish). */
  if (s->read_queue == NULL || !s->read_queue->started)
    fail_unstarted(&s->read_queue, &s->read_queue_tail, reason);
  if (s->write_queue == NULL || !s->write_queue->started)
    fail_unstarted(&s->write_queue, &s->write_queue_tail, reason);
  fail_unstarted(&s->accept_queue, &s->accept_queue_tail, reason);
  cancel_started(s->read_queue);
  cancel_started(s->write_queue);
  cancel_started(s->accept_queue);
  if (s->connect_op != NULL && s->connect_op->started) E.backend->cancel(s->connect_op);
  if (s->inflight == 0) release_sock(s);
}

/* Lock held. Bookkeeping shared by every finished in-flight op; result is
 * already a portable code (or a success value). */
static void op_finish(tcp_op *op, int64_t result, int64_t os_error) {
  tcp_sock *s = op->sock;
  op->started = false;
  s->inflight--;
  if (s->closing) {
    result = s->close_reason;
    os_error = 0;
  }
  switch (op->kind) {
    case OP_READ:
      queue_remove(&s->read_queue, &s->read_queue_tail, op);
      if (result <= 0) {
        read_buffer_give(op->data, op->len);
        op->data = NULL;
      } else if (result <= TCP_READ_COPY_BYTES_MAX) {
        /* Small: an exact copy travels (the VM copies it again into the
         * isolate's heap) and the buffer serves the next read. */
        uint8_t *copy = (size_t)result <= OP_INLINE_BYTES ? op->inline_data : malloc((size_t)result);
        if (copy != NULL) {
          memcpy(copy, op->data, (size_t)result);
          read_buffer_give(op->data, op->len);
          op->data = copy;
          op->data_by_copy = true;
        }
      } else if ((size_t)result <= op->len / 2) {
        /* Large: the buffer itself goes to the VM as external typed data;
         * give back what the read did not use (an in-place shrink). */
        uint8_t *smaller = realloc(op->data, (size_t)result);
        if (smaller != NULL) op->data = smaller;
      }
      break;
    case OP_WRITE:
      queue_remove(&s->write_queue, &s->write_queue_tail, op);
      break;
    case OP_ACCEPT:
      queue_remove(&s->accept_queue, &s->accept_queue_tail, op);
      break;
    case OP_CONNECT:
      s->connect_op = NULL;
      if (result == 0 && !s->closing) {
        s->connected = true;
      } else if (!s->closing) {
        fail_unstarted(&s->read_queue, &s->read_queue_tail, TCP_ERR_NOT_CONNECTED);
        fail_unstarted(&s->write_queue, &s->write_queue_tail, TCP_ERR_NOT_CONNECTED);
      }
      break;
    default:
      break;
  }
  complete(op, result, os_error);
  if (s->closing) {
    if (op->kind == OP_READ) fail_unstarted(&s->read_queue, &s->read_queue_tail, s->close_reason);
    if (op->kind == OP_WRITE) fail_unstarted(&s->write_queue, &s->write_queue_tail, s->close_reason);
    if (s->inflight == 0 && !s->released) release_sock(s);
  } else {
    pump_reads(s);
    pump_writes(s);
  }
}

void engine_op_done(tcp_op *op, int64_t result, int64_t os_error) {
  if (result < 0) op_finish(op, error_from_os(os_error), os_error);
  else op_finish(op, result, 0);
}

tcp_sock *engine_accept_done(tcp_op *op, os_socket fd) {
  tcp_sock *listener = op->sock;
  if (listener->closing) {
    os_socket_close(fd);
    op_finish(op, 0, 0); /* becomes the close reason */
    return NULL;
  }
  int32_t error = TCP_OK;
  tcp_sock *s = sock_create(SOCK_CONNECTION, listener->dart_port, fd, listener->family, &error);
  if (s == NULL) {
    os_socket_close(fd);
    op_finish(op, error, 0);
    return NULL;
  }
  op_finish(op, s->handle, 0);
  return s;
}

void engine_sock_released(tcp_sock *s) {
  if (s->close_op != NULL) complete(s->close_op, 0, 0);
  free_slot(s);
  E.live_socks--;
  free(s);
}

void engine_flush(void) {
  engine_lock();
  tcp_op *list = E.done_head;
  E.done_head = E.done_tail = NULL;
  E.wake_pending = false;
  engine_unlock();
  if (list == NULL) return;
  dart_post_ops(list);
  engine_lock();
  for (tcp_op *op = list, *next; op != NULL; op = next) {
    next = op->next;
    op_recycle(op);
  }
  engine_unlock();
}

/* ---- lifecycle ------------------------------------------------------------ */

static const backend_vtable *const backend_candidates[] = {
#if defined(_WIN32)
    &backend_iocp,
#else
#if defined(ZIG_TCP_HAVE_IO_URING)
    &backend_io_uring,
#endif
    &backend_uv,
#endif
};

/* Tries the backends in order of preference; ZIG_TCP_BACKEND=name forces one
 * (and then its failure is final). Without it, any failure to set up the
 * preferred backend (no io_uring, seccomp, an old kernel) falls through to the
 * next one. */
static int32_t choose_backend(const backend_vtable **chosen) {
  const char *forced = getenv("ZIG_TCP_BACKEND");
  if (forced != NULL && forced[0] == '\0') forced = NULL;
  int32_t rc = TCP_ERR_UNSUPPORTED;
  for (size_t i = 0; i < sizeof(backend_candidates) / sizeof(backend_candidates[0]); i++) {
    const backend_vtable *b = backend_candidates[i];
    if (forced != NULL && strcmp(forced, b->name) != 0) continue;
    rc = b->init();
    if (rc == TCP_OK) {
      *chosen = b;
      return TCP_OK;
    }
    if (forced != NULL) return rc;
  }
  return rc;
}

#if defined(_WIN32)
static unsigned __stdcall io_thread_main(void *arg) {
  (void)arg;
  on_io_thread = true;
  E.backend->run();
  return 0;
}
static bool start_io_thread(void) {
  uintptr_t t = _beginthreadex(NULL, 0, io_thread_main, NULL, 0, NULL);
  if (t == 0) return false;
  E.io_thread = (HANDLE)t;
  return true;
}
static void join_io_thread(void) {
  WaitForSingleObject(E.io_thread, INFINITE);
  CloseHandle(E.io_thread);
}
#else
static void *io_thread_main(void *arg) {
  (void)arg;
  on_io_thread = true;
  E.backend->run();
  return NULL;
}
static bool start_io_thread(void) {
  /* The I/O thread must not take the application's signals. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  bool ok = pthread_create(&E.io_thread, NULL, io_thread_main, NULL) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return ok;
}
static void join_io_thread(void) { pthread_join(E.io_thread, NULL); }
#endif

TCP_API int32_t tcp_init(void *dart_api_dl_data) {
  plat_lock(&lifecycle_mutex);
  engine_lock();
  bool running = E.running;
  engine_unlock();
  int32_t rc = TCP_OK;
  if (running) goto out;
  rc = dart_api_bind(dart_api_dl_data);
  if (rc != TCP_OK) goto out;
#if !defined(_WIN32)
  {
    /* Safety net: sends use MSG_NOSIGNAL, but libuv's writes do not. Only a
     * default disposition is changed; an application's handler is kept. */
    struct sigaction current;
    if (sigaction(SIGPIPE, NULL, &current) == 0 && current.sa_handler == SIG_DFL)
      signal(SIGPIPE, SIG_IGN);
  }
#endif
  const backend_vtable *backend = NULL;
  rc = choose_backend(&backend);
  if (rc != TCP_OK) goto out;
  engine_lock();
  E.backend = backend;
  E.stopping = false;
  E.wake_pending = false;
  E.running = true;
  engine_unlock();
  if (!start_io_thread()) {
    engine_lock();
    E.running = false;
    engine_unlock();
    backend->destroy();
    rc = TCP_ERR_NO_MEMORY;
  }
out:
  plat_unlock(&lifecycle_mutex);
  return rc;
}

TCP_API int32_t tcp_shutdown(void) {
  plat_lock(&lifecycle_mutex);
  engine_lock();
  if (!E.running) {
    engine_unlock();
    plat_unlock(&lifecycle_mutex);
    return TCP_ERR_NOT_INITIALIZED;
  }
  E.stopping = true;
  for (uint32_t i = 0; i < E.slots_len; i++) {
    tcp_sock *s = E.slots[i].sock;
    if (s != NULL && !s->closing) begin_close(s, TCP_ERR_SHUTDOWN, NULL);
  }
  E.backend->wake();
  engine_unlock();
  join_io_thread();
  engine_lock();
  const backend_vtable *backend = E.backend;
  E.running = false;
  E.stopping = false;
  read_pool_free();
  op_pool_free();
  engine_unlock();
  backend->destroy();
  plat_unlock(&lifecycle_mutex);
  return TCP_OK;
}

TCP_API const char *tcp_backend_name(void) {
  engine_lock();
  const char *name = E.running ? E.backend->name : NULL;
  engine_unlock();
  return name;
}

TCP_API int32_t tcp_last_os_error(void) { return last_os_error; }

/* Records an OS failure of a synchronous call and maps it. */
static int32_t fail_os(int os_error) {
  last_os_error = os_error;
  return error_from_os(os_error);
}

/* ---- listeners and connections ------------------------------------------- */

TCP_API int64_t tcp_listen(int64_t dart_port, const uint8_t *addr, int32_t addr_len, int32_t port,
                           int32_t backlog, int32_t v6_only, int32_t shared) {
  last_os_error = 0;
  struct sockaddr_storage sa;
  int sa_len = sockaddr_from_bytes(addr, addr_len, port, &sa);
  if (sa_len == 0) return TCP_ERR_INVALID_ARGUMENT;
#if defined(_WIN32)
  if (shared) return TCP_ERR_UNSUPPORTED; /* no SO_REUSEPORT on Windows */
#endif
  int32_t state = current_state_error();
  if (state != TCP_OK) return state;
  /* The syscalls run outside the engine lock; only registration needs it. */
  int os_error = 0;
  os_socket fd = os_socket_open(sa.ss_family, false, &os_error);
  if (fd == OS_SOCKET_INVALID) return fail_os(os_error);
  os_error = os_listen_setup(fd, &sa, sa_len, backlog, v6_only != 0, shared != 0);
  if (os_error != 0) {
    os_socket_close(fd);
    return fail_os(os_error);
  }
  engine_lock();
  int32_t error = engine_state_error();
  tcp_sock *s = error == TCP_OK ? sock_create(SOCK_LISTENER, dart_port, fd, sa.ss_family, &error) : NULL;
  int64_t handle = s ? s->handle : error;
  engine_unlock();
  if (s == NULL) os_socket_close(fd);
  return handle;
}

TCP_API int32_t tcp_accept(int64_t listener, int64_t request_id) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup_kind(listener, SOCK_LISTENER, &error);
  tcp_op *op = op_take_for(s, OP_ACCEPT, request_id, &error);
  if (op != NULL) {
    op_attach(op, s);
    queue_push(&s->accept_queue, &s->accept_queue_tail, op);
    start_op(op);
  }
  engine_unlock();
  return error;
}

TCP_API int64_t tcp_connect(int64_t dart_port, int64_t request_id, const uint8_t *addr,
                            int32_t addr_len, int32_t port, const uint8_t *source_addr,
                            int32_t source_addr_len, int32_t source_port, int64_t timeout_ms) {
  last_os_error = 0;
  struct sockaddr_storage peer, source;
  int peer_len = sockaddr_from_bytes(addr, addr_len, port, &peer);
  if (peer_len == 0 || port == 0) return TCP_ERR_INVALID_ARGUMENT;
  int source_len = 0;
  if (source_addr != NULL || source_addr_len != 0) {
    source_len = sockaddr_from_bytes(source_addr, source_addr_len, source_port, &source);
    if (source_len == 0 || source.ss_family != peer.ss_family) return TCP_ERR_INVALID_ARGUMENT;
  } else if (source_port != 0) {
    /* A source port alone binds the wildcard address of the peer's family. */
    static const uint8_t any[16] = {0};
    source_len = sockaddr_from_bytes(any, peer.ss_family == AF_INET ? 4 : 16, source_port, &source);
    if (source_len == 0) return TCP_ERR_INVALID_ARGUMENT;
  }
  int32_t state = current_state_error();
  if (state != TCP_OK) return state;
  int os_error = 0;
  os_socket fd = os_socket_open(peer.ss_family, false, &os_error);
  if (fd == OS_SOCKET_INVALID) return fail_os(os_error);
  if (source_len != 0 && (os_error = os_bind(fd, &source, source_len)) != 0) {
    os_socket_close(fd);
    return fail_os(os_error);
  }
  engine_lock();
  int32_t error = engine_state_error();
  tcp_op *op = error == TCP_OK ? op_take(OP_CONNECT, request_id) : NULL;
  if (error == TCP_OK && op == NULL) error = TCP_ERR_NO_MEMORY;
  tcp_sock *s = op != NULL ? sock_create(SOCK_CONNECTION, dart_port, fd, peer.ss_family, &error) : NULL;
  int64_t handle = error;
  if (s != NULL) {
    memcpy(&op->addr, &peer, sizeof(peer));
    op->addr_len = peer_len;
    op->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
    s->connected = false;
    op_attach(op, s);
    s->connect_op = op;
    start_op(op);
    handle = s->handle;
  } else if (op != NULL) {
    op_recycle(op);
  }
  engine_unlock();
  if (s == NULL) os_socket_close(fd);
  return handle;
}

/* Lock held. A connection that can take reads and writes (or queue them
 * behind its pending connect). */
static tcp_sock *lookup_io(int64_t connection, int32_t *error) {
  tcp_sock *s = lookup_kind(connection, SOCK_CONNECTION, error);
  if (s != NULL && !s->connected && s->connect_op == NULL) {
    *error = TCP_ERR_NOT_CONNECTED;
    return NULL;
  }
  return s;
}

/* Lock held. Queues a read, write or shutdown_write on its connection's queue
 * and starts it if it is first in line. */
static void enqueue_io(tcp_sock *s, tcp_op *op) {
  op_attach(op, s);
  if (op->kind == OP_READ) {
    queue_push(&s->read_queue, &s->read_queue_tail, op);
    pump_reads(s);
  } else {
    queue_push(&s->write_queue, &s->write_queue_tail, op);
    pump_writes(s);
  }
}

TCP_API int32_t tcp_read(int64_t connection, int64_t request_id, int64_t bytes_max) {
  last_os_error = 0;
  if (bytes_max <= 0 || bytes_max > TCP_READ_BYTES_MAX) return TCP_ERR_INVALID_ARGUMENT;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup_io(connection, &error);
  tcp_op *op = op_take_for(s, OP_READ, request_id, &error);
  if (op != NULL) {
    op->len = (size_t)bytes_max; /* the buffer is taken when the read starts */
    enqueue_io(s, op);
  }
  engine_unlock();
  return error;
}

TCP_API int32_t tcp_write(int64_t connection, int64_t request_id, const uint8_t *bytes,
                          int64_t bytes_len) {
  last_os_error = 0;
  if (bytes_len < 0 || bytes_len > TCP_WRITE_BYTES_MAX || (bytes == NULL && bytes_len > 0))
    return TCP_ERR_INVALID_ARGUMENT;
  /* Copied now, so the caller's buffer (a Dart Uint8List) is free at once; a
   * large copy is made before taking the lock, a small one into the op. */
  uint8_t *copy = NULL;
  if (bytes_len > OP_INLINE_BYTES) {
    copy = malloc((size_t)bytes_len);
    if (copy == NULL) return TCP_ERR_NO_MEMORY;
    memcpy(copy, bytes, (size_t)bytes_len);
  }
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup_io(connection, &error);
  tcp_op *op = op_take_for(s, OP_WRITE, request_id, &error);
  if (op != NULL) {
    if (copy != NULL) {
      op->data = copy;
    } else if (bytes_len > 0) {
      op->data = op->inline_data;
      memcpy(op->data, bytes, (size_t)bytes_len);
    }
    op->len = (size_t)bytes_len;
    enqueue_io(s, op);
  } else {
    free(copy);
  }
  engine_unlock();
  return error;
}

TCP_API int32_t tcp_shutdown_write(int64_t connection, int64_t request_id) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup_io(connection, &error);
  tcp_op *op = op_take_for(s, OP_SHUTDOWN_WRITE, request_id, &error);
  if (op != NULL) enqueue_io(s, op);
  engine_unlock();
  return error;
}

TCP_API int32_t tcp_close(int64_t handle, int64_t request_id) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup(handle, &error);
  tcp_op *op = op_take_for(s, OP_CLOSE, request_id, &error);
  if (op != NULL) {
    op_attach(op, s);
    op->sock = NULL; /* a close op is not in any socket queue */
    begin_close(s, TCP_ERR_CLOSED, op);
  }
  engine_unlock();
  return error;
}

TCP_API void tcp_close_finalizer(void *token) {
  int64_t handle = (int64_t)(intptr_t)token;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup(handle, &error);
  if (s != NULL) begin_close(s, TCP_ERR_CLOSED, NULL);
  engine_unlock();
}

/* ---- synchronous accessors ------------------------------------------------ */

static int32_t address_of(int64_t handle, bool remote, uint8_t *addr_out, int32_t *port_out) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = remote ? lookup_kind(handle, SOCK_CONNECTION, &error) : lookup(handle, &error);
  struct sockaddr_storage sa;
  int os_error = s ? os_get_address(s->fd, remote, &sa) : 0;
  engine_unlock();
  if (s == NULL) return error;
  if (os_error != 0) return fail_os(os_error);
  return sockaddr_to_bytes(&sa, addr_out, port_out);
}

TCP_API int32_t tcp_local_address(int64_t handle, uint8_t *addr_out) {
  if (addr_out == NULL) return TCP_ERR_INVALID_ARGUMENT;
  return address_of(handle, false, addr_out, NULL);
}

TCP_API int32_t tcp_remote_address(int64_t connection, uint8_t *addr_out) {
  if (addr_out == NULL) return TCP_ERR_INVALID_ARGUMENT;
  return address_of(connection, true, addr_out, NULL);
}

TCP_API int32_t tcp_local_port(int64_t handle) {
  int32_t port = 0;
  int32_t rc = address_of(handle, false, NULL, &port);
  return rc < 0 ? rc : port;
}

TCP_API int32_t tcp_remote_port(int64_t connection) {
  int32_t port = 0;
  int32_t rc = address_of(connection, true, NULL, &port);
  return rc < 0 ? rc : port;
}

static int32_t get_option(int64_t connection, int option) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK, value = 0;
  tcp_sock *s = lookup_kind(connection, SOCK_CONNECTION, &error);
  int os_error = s ? os_get_bool_option(s->fd, option, &value) : 0;
  engine_unlock();
  if (s == NULL) return error;
  if (os_error != 0) return fail_os(os_error);
  return value;
}

static int32_t set_option(int64_t connection, int option, int32_t enabled) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup_kind(connection, SOCK_CONNECTION, &error);
  int os_error = s ? os_set_bool_option(s->fd, option, enabled != 0) : 0;
  engine_unlock();
  if (s == NULL) return error;
  if (os_error != 0) return fail_os(os_error);
  return TCP_OK;
}

TCP_API int32_t tcp_get_keep_alive(int64_t connection) { return get_option(connection, SO_KEEPALIVE); }
TCP_API int32_t tcp_get_no_delay(int64_t connection) { return get_option(connection, TCP_NODELAY); }
TCP_API int32_t tcp_set_keep_alive(int64_t connection, int32_t enabled) {
  return set_option(connection, SO_KEEPALIVE, enabled);
}
TCP_API int32_t tcp_set_no_delay(int64_t connection, int32_t enabled) {
  return set_option(connection, TCP_NODELAY, enabled);
}
