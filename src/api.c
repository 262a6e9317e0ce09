/* api.c -- every tcp.h entry point: argument checks (before any lookup, so bad
 * input never reaches a socket), handle lookup, and the hand-off to the
 * per-socket state machine (sock.c). */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "errors.h"
#include "handles.h"
#include "loop.h"
#include "sock.h"

static _Thread_local int32_t last_os_error;

/* Records an OS failure of a synchronous call and maps it. */
static int32_t fail_os(int os_error) {
  last_os_error = os_error;
  return error_from_os(os_error);
}

/* The same for a bind (or connect): Windows reports running out of ephemeral
 * ports there as WSAENOBUFS (errors.c). */
static int32_t fail_os_bind(int os_error) {
  last_os_error = os_error;
  return error_from_os_at_bind(os_error);
}

/* Without the lock: refuse early, before any socket call (on Windows a socket
 * call before tcp_init would fail with a confusing WSANOTINITIALISED). */
static int32_t current_state_error(void) {
  engine_lock();
  int32_t state = engine_state_error();
  engine_unlock();
  return state;
}

/* Lock held. The open socket behind handle, or NULL with *error set. */
static tcp_sock *lookup(int64_t handle, int32_t *error) {
  int32_t state = engine_state_error();
  if (state != TCP_OK) {
    *error = state;
    return NULL;
  }
  tcp_sock *s = handles_find(handle, error);
  if (s != NULL && s->hidden) { /* a shared listener group's own socket */
    *error = TCP_ERR_BAD_HANDLE;
    return NULL;
  }
  return s;
}

static tcp_sock *lookup_kind(int64_t handle, sock_kind kind, int32_t *error) {
  tcp_sock *s = lookup(handle, error);
  if (s != NULL && s->kind != kind) {
    *error = TCP_ERR_BAD_HANDLE;
    return NULL;
  }
  return s;
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

/* Lock held. An op for the socket a lookup returned: NULL when the lookup
 * failed (*error already says why) or, with TCP_ERR_NO_MEMORY, when out of
 * memory. */
static tcp_op *op_new_for(tcp_sock *s, op_kind kind, int64_t request_id, int32_t *error) {
  if (s == NULL) return NULL;
  tcp_op *op = op_new(kind, request_id);
  if (op == NULL) *error = TCP_ERR_NO_MEMORY;
  return op;
}

/* ---- engine lifetime ------------------------------------------------------ */

TCP_API int32_t tcp_init(void *dart_api_dl_data) { return engine_start(dart_api_dl_data); }
TCP_API int32_t tcp_shutdown(void) { return engine_stop(); }
TCP_API const char *tcp_backend_name(void) { return engine_backend_name(); }
TCP_API int32_t tcp_last_os_error(void) { return last_os_error; }

/* ---- listeners and connections ------------------------------------------- */

/* Lock held: a new member of the group on addr, or 0 when there is none. */
static int64_t join_group(int64_t dart_port, const struct sockaddr_storage *addr, int addr_len, bool v6_only) {
  tcp_sock *group = shared_find(addr, addr_len, v6_only);
  if (group == NULL) return 0;
  int32_t error = TCP_OK;
  tcp_sock *member = shared_join(group, dart_port, &error);
  return member != NULL ? member->handle : error;
}

/* join_group with the lock taken here. */
static int64_t join_group_locked(int64_t dart_port, const struct sockaddr_storage *addr, int addr_len, bool v6_only) {
  engine_lock();
  int64_t joined = engine_state_error() == TCP_OK ? join_group(dart_port, addr, addr_len, v6_only) : 0;
  engine_unlock();
  return joined;
}

/* Lock held: registers the listening socket fd, bound to what was asked
 * (asked, asked_len). For a shared listener it becomes a new group -- keyed by
 * the address as bound for TCP (the real port), by the path asked for Unix --
 * and the caller gets its first member. The listener takes unix_file (the
 * socket file to remove at its close; NULL for TCP). Returns the handle, or an
 * error (fd and unix_file are then still the caller's). */
static int64_t listener_register(int64_t dart_port, os_socket fd, const struct sockaddr_storage *asked, int asked_len,
                                 bool v6_only, int32_t shared, os_unix_file *unix_file) {
  int32_t error = engine_state_error();
  tcp_sock *s = error == TCP_OK ? sock_create(SOCK_LISTENER, dart_port, fd, asked->ss_family, &error) : NULL;
  if (s == NULL) return error;
  if (shared != TCP_LISTEN_SHARED) {
    s->unix_file = unix_file;
    return s->handle;
  }
  struct sockaddr_storage key = *asked;
  int key_len = asked_len;
  int os_error = family_is_tcp(asked->ss_family) ? os_get_address(fd, false, &key, &key_len) : 0;
  tcp_sock *member = NULL;
  if (os_error == 0 && shared_register(s, &key, key_len, v6_only)) member = shared_join(s, dart_port, &error);
  if (member != NULL) {
    s->unix_file = unix_file;
    return member->handle;
  }
  s->fd = OS_SOCKET_INVALID; /* not ours to close: the caller closes fd */
  sock_begin_close(s, TCP_ERR_CLOSED, NULL);
  return os_error != 0 ? fail_os(os_error) : TCP_ERR_NO_MEMORY;
}

TCP_API int64_t tcp_listen(int64_t dart_port, const uint8_t *addr, int32_t addr_len, int32_t port,
                           int32_t backlog, int32_t v6_only, int32_t shared) {
  last_os_error = 0;
  struct sockaddr_storage sa;
  int sa_len = sockaddr_from_bytes(addr, addr_len, port, &sa);
  if (sa_len == 0) return TCP_ERR_INVALID_ARGUMENT;
  if (shared != 0 && shared != TCP_LISTEN_SHARED && shared != TCP_LISTEN_REUSE_PORT) return TCP_ERR_INVALID_ARGUMENT;
#if defined(_WIN32)
  if (shared == TCP_LISTEN_REUSE_PORT) return TCP_ERR_UNSUPPORTED; /* no SO_REUSEPORT on Windows */
#endif
  int32_t state = current_state_error();
  if (state != TCP_OK) return state;
  bool joinable = shared == TCP_LISTEN_SHARED && port != 0;
  if (joinable) {
    int64_t joined = join_group_locked(dart_port, &sa, sa_len, v6_only != 0);
    if (joined != 0) return joined;
  }
  /* The syscalls run outside the engine lock; only registration needs it. */
  int os_error = 0;
  os_socket fd = os_socket_open(sa.ss_family, false, &os_error);
  if (fd == OS_SOCKET_INVALID) return fail_os(os_error);
  os_error = os_listen_setup(fd, &sa, sa_len, backlog, v6_only != 0, shared == TCP_LISTEN_REUSE_PORT);
  if (os_error != 0) {
    os_socket_close(fd);
    /* Another thread may have made the group between our look and our bind. */
    if (joinable && error_from_os(os_error) == TCP_ERR_ADDRESS_IN_USE) {
      int64_t joined = join_group_locked(dart_port, &sa, sa_len, v6_only != 0);
      if (joined != 0) return joined;
    }
    return fail_os(os_error);
  }
  engine_lock();
  int64_t handle = listener_register(dart_port, fd, &sa, sa_len, v6_only != 0, shared, NULL);
  engine_unlock();
  if (handle < 0) os_socket_close(fd);
  return handle;
}

TCP_API int64_t tcp_listen_unix(int64_t dart_port, const uint8_t *path, int32_t path_len, int32_t backlog,
                                int32_t shared) {
  last_os_error = 0;
  struct sockaddr_storage sa;
  int sa_len = 0;
  int32_t rc = sockaddr_from_unix_path(path, path_len, &sa, &sa_len);
  if (rc != TCP_OK) return rc;
  if (shared != 0 && shared != TCP_LISTEN_SHARED) return TCP_ERR_INVALID_ARGUMENT; /* no SO_REUSEPORT for paths */
  if ((rc = current_state_error()) != TCP_OK) return rc;
  if (shared == TCP_LISTEN_SHARED) {
    int64_t joined = join_group_locked(dart_port, &sa, sa_len, false);
    if (joined != 0) return joined;
  }
  int os_error = 0;
  os_socket fd = os_socket_open(AF_UNIX, false, &os_error);
  if (fd == OS_SOCKET_INVALID) return fail_os(os_error);
  os_unix_file *file = NULL;
  os_error = os_unix_listen_setup(fd, &sa, sa_len, backlog, &file);
  if (os_error != 0) {
    os_socket_close(fd);
    /* The group's first member may have bound the path since we looked. */
    if (shared == TCP_LISTEN_SHARED && error_from_os(os_error) == TCP_ERR_ADDRESS_IN_USE) {
      int64_t joined = join_group_locked(dart_port, &sa, sa_len, false);
      if (joined != 0) return joined;
    }
    return fail_os(os_error);
  }
  engine_lock();
  int64_t handle = listener_register(dart_port, fd, &sa, sa_len, false, shared, file);
  engine_unlock();
  if (handle < 0) {
    os_socket_close(fd);
    os_unix_file_remove(file);
  }
  return handle;
}

TCP_API int32_t tcp_accept(int64_t listener, int64_t request_id) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup_kind(listener, SOCK_LISTENER, &error);
  tcp_op *op = op_new_for(s, OP_ACCEPT, request_id, &error);
  if (op != NULL) sock_add_accept(s, op);
  engine_unlock();
  return error;
}

/* The connect's source address: none, the given one, or the wildcard address
 * of the peer's family with a source port alone. Returns its length, 0 for
 * none, -1 for bad input. */
static int connect_source(const struct sockaddr_storage *peer, const uint8_t *source_addr, int32_t source_addr_len,
                          int32_t source_port, struct sockaddr_storage *source) {
  if (source_addr != NULL || source_addr_len != 0) {
    int len = sockaddr_from_bytes(source_addr, source_addr_len, source_port, source);
    return len == 0 || source->ss_family != peer->ss_family ? -1 : len;
  }
  if (source_port == 0) return 0;
  static const uint8_t any[16] = {0};
  int len = sockaddr_from_bytes(any, peer->ss_family == AF_INET ? 4 : 16, source_port, source);
  return len == 0 ? -1 : len;
}

/* Lock held: registers the connect of fd; returns the handle or an error. */
static int64_t connect_register(int64_t dart_port, int64_t request_id, os_socket fd, bool source_bound,
                                const struct sockaddr_storage *peer, int peer_len, int64_t timeout_ms) {
  int32_t error = engine_state_error();
  if (error != TCP_OK) return error;
  if (timeout_ms > 0 && !loop_deadline_reserve()) return TCP_ERR_NO_MEMORY;
  tcp_op *op = op_new(OP_CONNECT, request_id);
  if (op == NULL) return TCP_ERR_NO_MEMORY;
  tcp_sock *s = sock_create(SOCK_CONNECTION, dart_port, fd, peer->ss_family, &error);
  if (s == NULL) {
    op_free(op);
    return error;
  }
  s->source_bound = source_bound;
  memcpy(&op->addr, peer, sizeof(*peer));
  op->addr_len = peer_len;
  op->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
  sock_add_connect(s, op);
  return s->handle;
}

TCP_API int64_t tcp_connect(int64_t dart_port, int64_t request_id, const uint8_t *addr, int32_t addr_len,
                            int32_t port, const uint8_t *source_addr, int32_t source_addr_len,
                            int32_t source_port, int64_t timeout_ms) {
  last_os_error = 0;
  struct sockaddr_storage peer, source;
  int peer_len = sockaddr_from_bytes(addr, addr_len, port, &peer);
  if (peer_len == 0 || port == 0) return TCP_ERR_INVALID_ARGUMENT;
  int source_len = connect_source(&peer, source_addr, source_addr_len, source_port, &source);
  if (source_len < 0) return TCP_ERR_INVALID_ARGUMENT;
  int32_t state = current_state_error();
  if (state != TCP_OK) return state;
  int os_error = 0;
  os_socket fd = os_socket_open(peer.ss_family, false, &os_error);
  if (fd == OS_SOCKET_INVALID) return fail_os(os_error);
  if (source_len != 0 && (os_error = os_bind(fd, &source, source_len)) != 0) {
    os_socket_close(fd);
    return fail_os_bind(os_error);
  }
  engine_lock();
  int64_t handle = connect_register(dart_port, request_id, fd, source_len != 0, &peer, peer_len, timeout_ms);
  engine_unlock();
  if (handle < 0) os_socket_close(fd);
  return handle;
}

TCP_API int64_t tcp_connect_unix(int64_t dart_port, int64_t request_id, const uint8_t *path, int32_t path_len,
                                 int64_t timeout_ms) {
  last_os_error = 0;
  struct sockaddr_storage peer;
  int peer_len = 0;
  int32_t rc = sockaddr_from_unix_path(path, path_len, &peer, &peer_len);
  if (rc != TCP_OK) return rc;
  if ((rc = current_state_error()) != TCP_OK) return rc;
  int os_error = 0;
  os_socket fd = os_socket_open(AF_UNIX, false, &os_error);
  if (fd == OS_SOCKET_INVALID) return fail_os(os_error);
  /* No source binding: a Unix client stays unnamed, as in dart:io's connect. */
  engine_lock();
  int64_t handle = connect_register(dart_port, request_id, fd, false, &peer, peer_len, timeout_ms);
  engine_unlock();
  if (handle < 0) os_socket_close(fd);
  return handle;
}

TCP_API int32_t tcp_read(int64_t connection, int64_t request_id, int64_t bytes_max) {
  last_os_error = 0;
  if (bytes_max <= 0 || bytes_max > TCP_READ_BYTES_MAX) return TCP_ERR_INVALID_ARGUMENT;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup_io(connection, &error);
  if (s != NULL && s->stream != NULL && !s->stream_stopping) {
    s = NULL;
    error = TCP_ERR_BUSY;
  }
  tcp_op *op = op_new_for(s, OP_READ, request_id, &error);
  if (op != NULL) {
    op->len = (size_t)bytes_max; /* no buffer until bytes arrive */
    sock_add_read(s, op);
  }
  engine_unlock();
  return error;
}

TCP_API int32_t tcp_read_stream(int64_t connection, int64_t request_id, int64_t window_bytes) {
  last_os_error = 0;
  if (window_bytes <= 0 || window_bytes > TCP_READ_BYTES_MAX) return TCP_ERR_INVALID_ARGUMENT;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup_io(connection, &error);
  if (s != NULL && s->stream != NULL) {
    s = NULL;
    error = TCP_ERR_BUSY;
  }
  tcp_op *op = op_new_for(s, OP_READ_STREAM, request_id, &error);
  if (op != NULL) sock_stream_start(s, op, window_bytes);
  engine_unlock();
  return error;
}

TCP_API int32_t tcp_read_stream_ack(int64_t connection, int64_t bytes) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup_kind(connection, SOCK_CONNECTION, &error);
  if (s != NULL) error = sock_stream_ack(s, bytes);
  engine_unlock();
  return error;
}

TCP_API int32_t tcp_read_stream_stop(int64_t connection) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup_kind(connection, SOCK_CONNECTION, &error);
  if (s != NULL) error = sock_stream_stop(s);
  engine_unlock();
  return error;
}

TCP_API int32_t tcp_write(int64_t connection, int64_t request_id, const uint8_t *bytes, int64_t bytes_len) {
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
  tcp_op *op = op_new_for(s, OP_WRITE, request_id, &error);
  if (op != NULL) {
    if (copy != NULL) {
      op->data = copy;
    } else if (bytes_len > 0) {
      op->data = op->inline_data;
      memcpy(op->data, bytes, (size_t)bytes_len);
    }
    op->len = (size_t)bytes_len;
    sock_add_write(s, op);
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
  tcp_op *op = op_new_for(s, OP_SHUTDOWN_WRITE, request_id, &error);
  if (op != NULL) sock_add_write(s, op);
  engine_unlock();
  return error;
}

TCP_API int32_t tcp_close(int64_t handle, int64_t request_id) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup(handle, &error);
  tcp_op *op = op_new_for(s, OP_CLOSE, request_id, &error);
  if (op != NULL) {
    op->dart_port = s->dart_port; /* a close op waits in s->close_op, in no queue */
    sock_begin_close(s, TCP_ERR_CLOSED, op);
  }
  engine_unlock();
  return error;
}

TCP_API void tcp_close_finalizer(void *token) {
  int64_t handle = (int64_t)(intptr_t)token;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = lookup(handle, &error);
  if (s != NULL) sock_begin_close(s, TCP_ERR_CLOSED, NULL);
  engine_unlock();
}

/* ---- synchronous accessors ------------------------------------------------ */

/* The local or remote address of handle into *sa (its length in *sa_len):
 * TCP_OK or an error -- TCP_ERR_NOT_TCP when a TCP address is asked of a
 * Unix socket, TCP_ERR_ADDRESS_FAMILY when a path is asked of a TCP one. */
static int32_t query_address(int64_t handle, bool remote, bool tcp, struct sockaddr_storage *sa, int *sa_len) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK;
  tcp_sock *s = remote ? lookup_kind(handle, SOCK_CONNECTION, &error) : lookup(handle, &error);
  if (s != NULL && family_is_tcp(s->family) != tcp) {
    error = tcp ? TCP_ERR_NOT_TCP : TCP_ERR_ADDRESS_FAMILY;
    s = NULL;
  }
  int os_error = s ? os_get_address(s->fd, remote, sa, sa_len) : 0;
  engine_unlock();
  if (s == NULL) return error;
  if (os_error != 0) return fail_os(os_error);
  return TCP_OK;
}

static int32_t address_of(int64_t handle, bool remote, uint8_t *addr_out, int32_t *port_out) {
  struct sockaddr_storage sa;
  int sa_len = 0;
  int32_t rc = query_address(handle, remote, true, &sa, &sa_len);
  return rc != TCP_OK ? rc : sockaddr_to_bytes(&sa, addr_out, port_out);
}

static int64_t scope_id_of(int64_t handle, bool remote) {
  struct sockaddr_storage sa;
  int sa_len = 0;
  int32_t rc = query_address(handle, remote, true, &sa, &sa_len);
  return rc != TCP_OK ? rc : sockaddr_scope_id(&sa);
}

static int32_t path_of(int64_t handle, bool remote, uint8_t *path_out, int32_t path_out_len) {
  if (path_out == NULL || path_out_len < 0) return TCP_ERR_INVALID_ARGUMENT;
  struct sockaddr_storage sa;
  int sa_len = 0;
  int32_t rc = query_address(handle, remote, false, &sa, &sa_len);
  return rc != TCP_OK ? rc : sockaddr_to_unix_path(&sa, sa_len, path_out, path_out_len);
}

TCP_API int32_t tcp_local_path(int64_t handle, uint8_t *path_out, int32_t path_out_len) {
  return path_of(handle, false, path_out, path_out_len);
}

TCP_API int32_t tcp_remote_path(int64_t connection, uint8_t *path_out, int32_t path_out_len) {
  return path_of(connection, true, path_out, path_out_len);
}

TCP_API int64_t tcp_local_scope_id(int64_t handle) { return scope_id_of(handle, false); }
TCP_API int64_t tcp_remote_scope_id(int64_t connection) { return scope_id_of(connection, true); }

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

/* Lock held. A connection with TCP options (noDelay, keepAlive). */
static tcp_sock *lookup_tcp_connection(int64_t connection, int32_t *error) {
  tcp_sock *s = lookup_kind(connection, SOCK_CONNECTION, error);
  if (s != NULL && !family_is_tcp(s->family)) {
    *error = TCP_ERR_NOT_TCP;
    return NULL;
  }
  return s;
}

static int32_t get_option(int64_t connection, int option) {
  last_os_error = 0;
  engine_lock();
  int32_t error = TCP_OK, value = 0;
  tcp_sock *s = lookup_tcp_connection(connection, &error);
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
  tcp_sock *s = lookup_tcp_connection(connection, &error);
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
