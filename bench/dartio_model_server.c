/*
 * dartio_model_server.c -- a MODEL of how dart:io moves a socket's bytes on
 * Linux, as an echo (or sink) server: the peer Dart users have today, built in
 * C on the benchmark's fake Dart VM (test_c/fake_dart, the same ports the
 * engine's driver bench/engine_server.c receives on). Every table labels it
 * "dartio-model": it is not dart:io, it behaves like it.
 *
 * The behaviour modelled, read in the Dart SDK (dart-lang/sdk; no code taken):
 *
 *  runtime/bin/eventhandler_linux.cc, runtime/bin/eventhandler.h
 *   - One event-handler thread blocks in epoll_wait (16 events at a time).
 *     Connected sockets are registered edge-triggered with
 *     EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, the listening socket
 *     level-triggered.
 *   - Each epoll event becomes one message [socket, event mask] posted to the
 *     isolate's port (DartUtils::PostInt32): in, out, close (EPOLLHUP or
 *     EPOLLRDHUP), error (EPOLLERR with EPOLLIN).
 *   - Every posted event spends one token of that socket (DescriptorInfoSingle:
 *     16 for a connection; DescriptorInfoMultiple: 4 per isolate for a
 *     listener). At zero tokens the socket's mask reads 0 and it leaves epoll
 *     (EPOLL_CTL_DEL) until the isolate gives tokens back (EPOLL_CTL_ADD).
 *   - The isolate reaches the event handler only by InterruptMessages written
 *     to a pipe: set event mask, return N tokens, close. The event handler
 *     reads them after the socket events of the same epoll_wait, so it never
 *     closes a socket whose event it is still handling. Close: EPOLL_CTL_DEL,
 *     close(2), then a "destroyed" event to the isolate.
 *
 *  sdk/lib/_internal/vm/bin/socket_patch.dart (_NativeSocket)
 *   - multiplex(): a read event sets `available` from FIONREAD (nativeAvailable)
 *     and issues a read event to the user; a close event marks the read side
 *     closed; an error event reads SO_ERROR and closes. After each message the
 *     socket earns a token back; they go to the event handler 8 at a time
 *     (normalTokenBatchSize), the listener's 2 at a time, one per accept
 *     (listeningTokenBatchSize).
 *   - issueReadEvent(), in a microtask: while `available` > 0 the user's read
 *     handler runs; at 0 with the read side closed the socket is closed.
 *   - read(null): reads exactly `available` bytes, asks FIONREAD again, and
 *     loops until it says 0 (or 4 MiB are gathered); the chunks are copied into
 *     one list (BytesBuilder.toBytes) that the user gets.
 *   - accept(): a read event on the listener means one accept; the new
 *     socket's setListening(read, write) sends its event mask to the event
 *     handler, which adds it to epoll. close() sends the close command.
 *
 *  runtime/bin/socket.cc, socket_linux.cc, socket_base_linux.cc, fdutils_linux.cc
 *   - Socket_Available: ioctl(FIONREAD) (on failure 1, so that the read
 *     reports the error). Socket_Read: a buffer of the asked size, read(2); a
 *     shorter read is copied into a buffer of the right size; nothing read
 *     (EAGAIN, end of stream) gives no list. Socket_WriteList: write(2) from
 *     the user's list itself. ServerSocket::Accept: accept(2), then FD_CLOEXEC
 *     and O_NONBLOCK by fcntl (get + set each).
 *
 * The user code is the echo every server of the benchmark runs: each chunk is
 * written straight back; if the kernel does not take all of it the rest is
 * kept, reading pauses (a paused subscription: read events are not delivered,
 * the bytes wait in the kernel) and resumes once a write event has flushed it.
 * Sink mode drops the chunk. TCP_NODELAY is set on every accepted socket (in
 * Dart the user's socket.setOption(SocketOption.tcpNoDelay, true)).
 *
 * What the model simplifies (so its numbers are a lower bound for dart:io's):
 *   - No Dart heap and no GC: a socket is two small C records (the isolate's
 *     and the event handler's) where dart:io has a _NativeSocket, _RawSocket,
 *     _Socket, stream controllers, a RawReceivePort and their closures; buffers
 *     are freed as soon as they are written, not at the next collection.
 *   - One port for the whole isolate, the message naming the socket's slot
 *     (dart:io gives each socket its own RawReceivePort; they feed the same
 *     isolate message queue). The fake VM's port (one mutex, one condition
 *     variable) stands in for that queue, as it does for the engine's driver.
 *   - Microtasks run right after the message that scheduled them, as in Dart;
 *     zones, stream-controller hops, socket profiling, timers and the
 *     IOSink/StreamConsumer layering of writes are left out.
 *   - One isolate; no shared listeners; IPv4 loopback only.
 *
 *   dartio_model_server PORT [echo|sink] [READ_BYTES]
 *
 * READ_BYTES is accepted for the benchmark's common command line and ignored:
 * dart:io has no read size, it reads what FIONREAD reports. Prints
 * "ready PORT dartio-model" once listening; SIGTERM / SIGINT stop the event
 * handler with its shutdown message, close the port and print counters on
 * stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_dart.h"

/* eventhandler.h's MessageFlags: event bits, command bits, the listening flag */
enum { EV_IN = 0, EV_OUT = 1, EV_ERROR = 2, EV_CLOSE = 3, EV_DESTROYED = 4 };
enum { CMD_CLOSE = 8, CMD_RETURN_TOKENS = 11, CMD_SET_EVENT_MASK = 12, FLAG_LISTENING = 16 };
#define EVENT_MASK ((1 << EV_IN) | (1 << EV_OUT) | (1 << EV_ERROR) | (1 << EV_CLOSE) | (1 << EV_DESTROYED))
#define TOKEN_COUNT(data) ((data) & ((1 << CMD_CLOSE) - 1))
#define IS_COMMAND(data, cmd) (((data) & (1 << (cmd))) != 0)

#define CONN_TOKENS 16         /* DescriptorInfoSingle's kTokenCount */
#define LISTENER_TOKENS 4      /* DescriptorInfoMultiple's kTokenCount */
#define CONN_TOKEN_BATCH 8     /* normalTokenBatchSize */
#define LISTENER_TOKEN_BATCH 2 /* listeningTokenBatchSize */
#define EPOLL_EVENTS_MAX 16    /* Poll()'s kMaxEvents */
#define READ_GATHER_MAX (4 << 20) /* read(null)'s MAX_BUFFER_SIZE */
#define SHUTDOWN_FD (-2)       /* kShutdownId */
#define BATCH_MAX 256

/* What the isolate writes to the event handler's pipe (InterruptMessage). */
typedef struct interrupt_message {
  int64_t fd;
  int64_t socket_id; /* where the socket's events go (Dart: its port) */
  int64_t data;      /* a command bit, and event bits or a token count */
} interrupt_message;

/* ---- the event handler's side ---------------------------------------------- */
typedef struct descriptor_info {
  int fd;
  bool listening;
  int64_t socket_id;
  int interest; /* event bits the isolate asked for */
  int tokens;
} descriptor_info;

typedef struct event_handler {
  int epoll_fd;
  int interrupt_fds[2];
  int64_t isolate_port;
  descriptor_info **by_fd; /* this thread's only: fd -> record (Dart: a HashMap) */
  size_t by_fd_cap;
  bool shutdown;
  uint64_t waits, events_posted, commands, removals, rearms;
} event_handler;

/* ---- the isolate's side --------------------------------------------------------- */
typedef struct dart_socket {
  int fd;
  bool listening, closing, closed_read, read_paused;
  int64_t available; /* what FIONREAD said last */
  int tokens;        /* handled messages whose tokens are not returned yet */
  int connections;   /* listener: read events not yet turned into accepts */
  uint8_t *unsent;   /* echo bytes the kernel did not take yet */
  size_t unsent_len, unsent_off;
} dart_socket;

typedef struct isolate {
  int64_t port;
  int command_fd; /* the event handler's pipe, write end */
  dart_socket **sockets; /* slot = socket_id */
  uint32_t *free_slots;
  uint32_t cap, used, nfree;
  uint64_t messages, batches, fionreads, reads, writes, short_writes, accepts, token_returns, closes, errors;
} isolate;

static bool g_sink;
static event_handler g_eh;
static isolate g_iso;

/* ================================================================ event handler */
static int mask_of(const descriptor_info *di) { return di->tokens > 0 ? di->interest : 0; }

static void post_event(event_handler *eh, int64_t socket_id, int events) {
  dart_cobject id = {.type = DART_COBJECT_INT64, .value.as_int64 = socket_id};
  dart_cobject mask = {.type = DART_COBJECT_INT64, .value.as_int64 = events};
  dart_cobject none = {.type = DART_COBJECT_NULL};
  dart_cobject *triple[3] = {&id, &mask, &none};
  dart_cobject msg = {.type = DART_COBJECT_ARRAY, .value.as_array = {.length = 3, .values = triple}};
  if (fake_dart_post_cobject(eh->isolate_port, &msg)) eh->events_posted++;
}

static void epoll_add(event_handler *eh, descriptor_info *di) {
  int m = mask_of(di);
  struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = di};
  if (m & (1 << EV_IN)) ev.events |= EPOLLIN;
  if (m & (1 << EV_OUT)) ev.events |= EPOLLOUT;
  if (!di->listening) ev.events |= EPOLLET;
  if (epoll_ctl(eh->epoll_fd, EPOLL_CTL_ADD, di->fd, &ev) < 0)
    post_event(eh, di->socket_id, 1 << EV_CLOSE); /* as Dart: report it closed */
}

static void epoll_remove(event_handler *eh, descriptor_info *di) {
  epoll_ctl(eh->epoll_fd, EPOLL_CTL_DEL, di->fd, NULL);
}

/* UpdateEpollInstance: the socket enters / leaves epoll as its mask turns
 * non-zero / zero (interest given or taken, tokens spent or returned). */
static void update_epoll(event_handler *eh, descriptor_info *di, int old_mask) {
  int new_mask = mask_of(di);
  if (old_mask != 0 && new_mask == 0) {
    epoll_remove(eh, di);
    eh->removals++;
  } else if (old_mask == 0 && new_mask != 0) {
    epoll_add(eh, di);
    if (di->tokens < (di->listening ? LISTENER_TOKENS : CONN_TOKENS)) eh->rearms++;
  } else if (old_mask != 0 && new_mask != old_mask) {
    epoll_remove(eh, di);
    epoll_add(eh, di);
  }
}

static descriptor_info *descriptor_get(event_handler *eh, int fd, bool listening) {
  assert(fd >= 0);
  if ((size_t)fd >= eh->by_fd_cap) {
    size_t cap = eh->by_fd_cap ? eh->by_fd_cap : 1024;
    while (cap <= (size_t)fd) cap *= 2;
    eh->by_fd = realloc(eh->by_fd, cap * sizeof *eh->by_fd);
    if (!eh->by_fd) abort();
    memset(eh->by_fd + eh->by_fd_cap, 0, (cap - eh->by_fd_cap) * sizeof *eh->by_fd);
    eh->by_fd_cap = cap;
  }
  descriptor_info *di = eh->by_fd[fd];
  if (di == NULL) {
    di = calloc(1, sizeof *di);
    if (!di) abort();
    di->fd = fd;
    di->listening = listening;
    di->tokens = listening ? LISTENER_TOKENS : CONN_TOKENS;
    eh->by_fd[fd] = di;
  }
  return di;
}

static void handle_close_command(event_handler *eh, descriptor_info *di, int64_t socket_id) {
  int old_mask = mask_of(di);
  di->interest = 0; /* RemovePort */
  update_epoll(eh, di, old_mask);
  eh->by_fd[di->fd] = NULL;
  close(di->fd);
  free(di);
  post_event(eh, socket_id, 1 << EV_DESTROYED);
}

static void handle_command(event_handler *eh, const interrupt_message *m) {
  eh->commands++;
  if (m->fd == SHUTDOWN_FD) {
    eh->shutdown = true;
    return;
  }
  int64_t data = m->data;
  descriptor_info *di = descriptor_get(eh, (int)m->fd, (data & (1 << FLAG_LISTENING)) != 0);
  int old_mask = mask_of(di);
  if (IS_COMMAND(data, CMD_CLOSE)) {
    handle_close_command(eh, di, m->socket_id);
  } else if (IS_COMMAND(data, CMD_RETURN_TOKENS)) {
    di->tokens += (int)TOKEN_COUNT(data);
    assert(di->tokens <= (di->listening ? LISTENER_TOKENS : CONN_TOKENS));
    update_epoll(eh, di, old_mask);
  } else if (IS_COMMAND(data, CMD_SET_EVENT_MASK)) {
    di->socket_id = m->socket_id;
    di->interest = (int)(data & ((1 << EV_IN) | (1 << EV_OUT)));
    update_epoll(eh, di, old_mask);
  } else {
    assert(!"unknown command");
  }
}

/* HandleInterruptFd: up to 24 messages per read (Dart reads
 * kInterruptMessageSize messages at a time); the pipe is level-triggered, so
 * whatever is left wakes the next epoll_wait. */
static void handle_interrupt_fd(event_handler *eh) {
  interrupt_message msgs[sizeof(interrupt_message)];
  ssize_t n = read(eh->interrupt_fds[0], msgs, sizeof msgs);
  if (n <= 0) return; /* EAGAIN / EINTR: nothing yet */
  assert(n % (ssize_t)sizeof(interrupt_message) == 0); /* writes below PIPE_BUF are atomic */
  for (ssize_t i = 0; i < n / (ssize_t)sizeof(interrupt_message); i++) handle_command(eh, &msgs[i]);
}

/* GetPollEvents */
static int poll_events(uint32_t events) {
  if (events & EPOLLERR) return (events & EPOLLIN) ? 1 << EV_ERROR : 0;
  int mask = 0;
  if (events & EPOLLIN) mask |= 1 << EV_IN;
  if (events & EPOLLOUT) mask |= 1 << EV_OUT;
  if (events & (EPOLLHUP | EPOLLRDHUP)) mask |= 1 << EV_CLOSE;
  return mask;
}

static void handle_events(event_handler *eh, const struct epoll_event *evs, int n) {
  bool interrupt_seen = false;
  for (int i = 0; i < n; i++) {
    descriptor_info *di = evs[i].data.ptr;
    if (di == NULL) {
      interrupt_seen = true;
      continue;
    }
    int events = poll_events(evs[i].events);
    if (events == 0) continue;
    int old_mask = mask_of(di);
    di->tokens--; /* NextNotifyDartPort / NotifyAllDartPorts */
    update_epoll(eh, di, old_mask);
    post_event(eh, di->socket_id, events);
  }
  if (interrupt_seen) handle_interrupt_fd(eh); /* after the socket events */
}

static void *event_handler_main(void *arg) {
  event_handler *eh = arg;
  struct epoll_event evs[EPOLL_EVENTS_MAX];
  while (!eh->shutdown) {
    int n = epoll_wait(eh->epoll_fd, evs, EPOLL_EVENTS_MAX, -1);
    eh->waits++;
    if (n < 0) {
      if (errno != EINTR) perror("dartio_model_server: epoll_wait");
      continue;
    }
    handle_events(eh, evs, n);
  }
  return NULL;
}

/* ================================================================ isolate */
/* EventHandler::SendData: a blocking write of one message to the pipe. */
static void send_to_event_handler(isolate *iso, int fd, int64_t socket_id, int64_t data) {
  interrupt_message m = {.fd = fd, .socket_id = socket_id, .data = data};
  for (;;) {
    ssize_t w = write(iso->command_fd, &m, sizeof m);
    if (w == (ssize_t)sizeof m) return;
    if (w < 0 && errno == EINTR) continue;
    perror("dartio_model_server: write to the event handler");
    abort(); /* Dart: FATAL */
  }
}

static uint32_t socket_new(isolate *iso, int fd, bool listening) {
  uint32_t slot;
  if (iso->nfree) {
    slot = iso->free_slots[--iso->nfree];
  } else {
    if (iso->used == iso->cap) {
      iso->cap = iso->cap ? iso->cap * 2 : 1024;
      iso->sockets = realloc(iso->sockets, iso->cap * sizeof *iso->sockets);
      iso->free_slots = realloc(iso->free_slots, iso->cap * sizeof *iso->free_slots);
      if (!iso->sockets || !iso->free_slots) abort();
    }
    slot = iso->used++;
  }
  dart_socket *s = calloc(1, sizeof *s);
  if (!s) abort();
  s->fd = fd;
  s->listening = listening;
  iso->sockets[slot] = s;
  return slot;
}

static void socket_free(isolate *iso, uint32_t slot) {
  dart_socket *s = iso->sockets[slot];
  free(s->unsent);
  free(s);
  iso->sockets[slot] = NULL;
  iso->free_slots[iso->nfree++] = slot;
}

/* close(): the event handler closes the fd and answers "destroyed". */
static void close_socket(isolate *iso, dart_socket *s, uint32_t slot) {
  if (s->closing) return;
  s->closing = true;
  iso->closes++;
  send_to_event_handler(iso, s->fd, slot, 1 << CMD_CLOSE);
}

static void return_tokens(isolate *iso, dart_socket *s, uint32_t slot, int batch) {
  if (s->closing || s->tokens != batch) return;
  send_to_event_handler(iso, s->fd, slot, (1 << CMD_RETURN_TOKENS) | s->tokens);
  iso->token_returns++;
  s->tokens = 0;
}

/* Counts an OS error, except a reset or a broken pipe: the load client ends
 * every run by resetting its connections. */
static void count_error(isolate *iso, int err) {
  if (err != ECONNRESET && err != EPIPE) iso->errors++;
}

static int64_t socket_available(isolate *iso, int fd) {
  int n = 0;
  iso->fionreads++;
  if (ioctl(fd, FIONREAD, &n) < 0) return 1; /* let the read report the error */
  return n;
}

/* Socket_Read: a buffer of len bytes, read(2), a right-sized copy if short.
 * NULL when nothing was read; *err = errno on an error, else 0. */
static uint8_t *socket_read(isolate *iso, int fd, size_t len, size_t *got, int *err) {
  uint8_t *buf = malloc(len);
  if (!buf) abort();
  iso->reads++;
  ssize_t r;
  do r = read(fd, buf, len);
  while (r < 0 && errno == EINTR);
  *got = r > 0 ? (size_t)r : 0;
  *err = r < 0 && errno != EAGAIN ? errno : 0;
  if (r <= 0) {
    free(buf);
    return NULL;
  }
  if ((size_t)r < len) {
    uint8_t *fit = malloc((size_t)r);
    if (!fit) abort();
    memcpy(fit, buf, (size_t)r);
    free(buf);
    buf = fit;
  }
  return buf;
}

/* read(null): exactly `available` bytes at a time until FIONREAD says 0, the
 * chunks copied into one list (BytesBuilder.toBytes). NULL if nothing came;
 * *err as for socket_read. */
static uint8_t *read_available(isolate *iso, dart_socket *s, size_t *len, int *err) {
  uint8_t *chunks[64];
  size_t sizes[64], n = 0, total = 0;
  *err = 0;
  do {
    assert(s->available > 0);
    uint8_t *c = socket_read(iso, s->fd, (size_t)s->available, &sizes[n], err);
    if (c == NULL) {
      s->available = 0; /* nothing there after all: wait for the next event */
      break;
    }
    chunks[n] = c;
    total += sizes[n++];
    s->available = socket_available(iso, s->fd);
  } while (s->available > 0 && total <= READ_GATHER_MAX && n < 64);
  *len = total;
  if (total == 0) return NULL;
  uint8_t *list = malloc(total);
  if (!list) abort();
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(list + off, chunks[i], sizes[i]);
    off += sizes[i];
    free(chunks[i]);
  }
  return list;
}

/* Socket_WriteList: write(2) from the list. Returns bytes taken, -1 on error. */
static ssize_t socket_write(isolate *iso, int fd, const uint8_t *p, size_t len) {
  iso->writes++;
  ssize_t w;
  do w = write(fd, p, len);
  while (w < 0 && errno == EINTR);
  if (w < 0 && errno == EAGAIN) return 0;
  return w;
}

/* The user's echo: write it back; what the kernel does not take waits for a
 * write event, with reading paused. Takes ownership of list. */
static void echo(isolate *iso, dart_socket *s, uint32_t slot, uint8_t *list, size_t len) {
  ssize_t w = socket_write(iso, s->fd, list, len);
  if (w < 0) {
    count_error(iso, errno);
    free(list);
    close_socket(iso, s, slot);
    return;
  }
  if ((size_t)w == len) {
    free(list);
    return;
  }
  iso->short_writes++;
  s->unsent = list;
  s->unsent_len = len;
  s->unsent_off = (size_t)w;
  s->read_paused = true;
}

/* The user's read handler (_Socket's onData): one read(null), then echo. */
static void on_data(isolate *iso, dart_socket *s, uint32_t slot) {
  size_t len;
  int err;
  uint8_t *list = read_available(iso, s, &len, &err);
  if (err != 0) { /* reportError: the socket closes */
    free(list);
    count_error(iso, err);
    close_socket(iso, s, slot);
    return;
  }
  if (list == NULL) return;
  if (g_sink) free(list);
  else echo(iso, s, slot, list, len);
}

/* issueReadEvent's microtask: read while FIONREAD promised bytes; at 0 with
 * the read side closed, the socket is closed (the user's onDone). */
static void issue_read_event(isolate *iso, dart_socket *s, uint32_t slot) {
  while (!s->closing && !s->read_paused) {
    if (s->available == 0) {
      if (s->closed_read) close_socket(iso, s, slot);
      return;
    }
    on_data(iso, s, slot);
  }
}

/* A write event: flush what the echo left; once flushed, reading resumes. */
static bool on_writable(isolate *iso, dart_socket *s, uint32_t slot) {
  if (s->unsent == NULL) return false;
  ssize_t w = socket_write(iso, s->fd, s->unsent + s->unsent_off, s->unsent_len - s->unsent_off);
  if (w < 0) {
    count_error(iso, errno);
    close_socket(iso, s, slot);
    return false;
  }
  s->unsent_off += (size_t)w;
  if (s->unsent_off < s->unsent_len) return false;
  free(s->unsent);
  s->unsent = NULL;
  s->read_paused = false;
  return true; /* readEventsEnabled = true: issue a read event */
}

/* ServerSocket::Accept: accept(2), FD_CLOEXEC and O_NONBLOCK by fcntl. */
static int accept_one(int listen_fd) {
  int fd;
  do fd = accept(listen_fd, NULL, NULL);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return -1;
  fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/* The listener's read handler: one accept per read event received; each new
 * socket sends its event mask (setListening(read: true, write: true)). */
static void accept_connections(isolate *iso, dart_socket *l, uint32_t slot) {
  while (l->connections > 0 && !l->closing) {
    l->connections--;
    l->tokens++;
    return_tokens(iso, l, slot, LISTENER_TOKEN_BATCH);
    int fd = accept_one(l->fd);
    if (fd < 0) {
      if (errno != EAGAIN) iso->errors++;
      return;
    }
    iso->accepts++;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint32_t s = socket_new(iso, fd, false);
    send_to_event_handler(iso, fd, s, (1 << CMD_SET_EVENT_MASK) | (1 << EV_IN) | (1 << EV_OUT));
  }
}

/* multiplex(): one message from the event handler. Returns whether a read
 * event is issued (the microtask that runs after the message). */
static bool multiplex(isolate *iso, dart_socket *s, uint32_t slot, int events) {
  bool issue_read = false;
  for (int bit = EV_IN; bit <= EV_DESTROYED; bit++) {
    if (!(events & (1 << bit)) || (s->closing && bit != EV_DESTROYED)) continue;
    if (bit == EV_IN && !s->closed_read) {
      if (s->listening) {
        s->connections++;
        accept_connections(iso, s, slot);
      } else {
        s->available = socket_available(iso, s->fd);
        issue_read = true;
      }
    } else if (bit == EV_OUT) {
      issue_read |= on_writable(iso, s, slot);
    } else if (bit == EV_ERROR) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len); /* nativeGetError */
      close_socket(iso, s, slot);
    } else if (bit == EV_CLOSE && !s->closed_read && !s->listening) {
      s->closed_read = true;
      issue_read = true;
    } else if (bit == EV_DESTROYED) {
      assert(s->closing);
      socket_free(iso, slot);
      return false;
    }
  }
  if (!s->listening) {
    s->tokens++;
    return_tokens(iso, s, slot, CONN_TOKEN_BATCH);
  }
  return issue_read;
}

static void on_message(isolate *iso, const fd_completion *c) {
  iso->messages++;
  uint32_t slot = (uint32_t)c->request_id;
  assert(slot < iso->used && iso->sockets[slot] != NULL);
  dart_socket *s = iso->sockets[slot];
  if (multiplex(iso, s, slot, (int)(c->result & EVENT_MASK))) issue_read_event(iso, s, slot);
}

static void *isolate_main(void *arg) {
  isolate *iso = arg;
  fd_completion batch[BATCH_MAX];
  for (;;) {
    size_t n = fake_dart_next_batch(iso->port, -1, batch, BATCH_MAX);
    if (n == 0) break; /* port closed */
    iso->batches++;
    for (size_t i = 0; i < n; i++) {
      on_message(iso, &batch[i]);
      fake_dart_release(&batch[i]);
    }
  }
  return NULL;
}

/* ================================================================ main */
/* ServerSocket_CreateBindListen: bound, listening, non-blocking. */
static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
    perror("dartio_model_server: bind/listen");
    exit(1);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static void event_handler_init(event_handler *eh, int64_t isolate_port) {
  eh->isolate_port = isolate_port;
  if (pipe2(eh->interrupt_fds, O_CLOEXEC) < 0) abort();
  fcntl(eh->interrupt_fds[0], F_SETFL, O_NONBLOCK);
  eh->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (eh->epoll_fd < 0 || epoll_ctl(eh->epoll_fd, EPOLL_CTL_ADD, eh->interrupt_fds[0], &ev) < 0) abort();
}

static void print_counters(const event_handler *eh, const isolate *iso) {
  fd_stats st;
  fake_dart_stats(&st);
  fprintf(stderr,
          "dartio_model_server: event handler: %llu epoll_waits, %llu events posted, %llu commands, "
          "%llu removals at 0 tokens, %llu re-adds; isolate: %llu messages in %llu wake-ups, %llu accepts, "
          "%llu FIONREADs, %llu reads, %llu writes (%llu short), %llu token returns, %llu closes, %llu errors; "
          "fake VM: %llu posts, %llu refused\n",
          (unsigned long long)eh->waits, (unsigned long long)eh->events_posted, (unsigned long long)eh->commands,
          (unsigned long long)eh->removals, (unsigned long long)eh->rearms, (unsigned long long)iso->messages,
          (unsigned long long)iso->batches, (unsigned long long)iso->accepts, (unsigned long long)iso->fionreads,
          (unsigned long long)iso->reads, (unsigned long long)iso->writes, (unsigned long long)iso->short_writes,
          (unsigned long long)iso->token_returns, (unsigned long long)iso->closes, (unsigned long long)iso->errors,
          (unsigned long long)st.posts, (unsigned long long)st.posts_refused);
}

int main(int argc, char **argv) {
  if (argc < 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
    fprintf(stderr, "usage: dartio_model_server PORT [echo|sink] [READ_BYTES (ignored)]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  g_sink = argc > 2 && strcmp(argv[2], "sink") == 0;
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* the threads inherit it: sigwait in main only */

  int listen_fd = listen_on(port);
  g_iso.port = fake_dart_open_port();
  event_handler_init(&g_eh, g_iso.port);
  g_iso.command_fd = g_eh.interrupt_fds[1];
  uint32_t listener = socket_new(&g_iso, listen_fd, true);
  /* ServerSocket.listen: setListening(read: true, write: false) */
  send_to_event_handler(&g_iso, listen_fd, listener,
                        (1 << CMD_SET_EVENT_MASK) | (1 << FLAG_LISTENING) | (1 << EV_IN));
  pthread_t eh_thread, iso_thread;
  pthread_create(&eh_thread, NULL, event_handler_main, &g_eh);
  pthread_create(&iso_thread, NULL, isolate_main, &g_iso);
  printf("ready %d dartio-model\n", port);
  fflush(stdout);

  int sig = 0;
  sigwait(&set, &sig);
  interrupt_message stop = {.fd = SHUTDOWN_FD};
  if (write(g_eh.interrupt_fds[1], &stop, sizeof stop) != (ssize_t)sizeof stop) abort();
  pthread_join(eh_thread, NULL); /* no more posts after this */
  fake_dart_close_port(g_iso.port);
  pthread_join(iso_thread, NULL);
  print_counters(&g_eh, &g_iso);
  return 0;
}
