/*
 * engine.h -- the internal contract between the shared core (engine.c,
 * sockets.c, errors.c, dart_post.c) and one OS backend (backend_*.c).
 *
 * The core owns: the handle table, socket and operation records, per-socket
 * read/write queues, the close/cancel protocol, completion batching and
 * posting, error mapping, address conversion and the synchronous socket calls.
 * A backend owns only what is specific to its OS mechanism: starting an
 * operation, cancelling it, closing the OS socket, and running the I/O thread.
 *
 * LOCKING: one engine mutex (engine_lock/engine_unlock) guards every core
 * structure. The core calls backend->start/cancel/release with it held; the
 * backend calls engine_op_* with it held. Completions are queued under the
 * lock and posted to Dart by engine_flush(), which the I/O thread calls
 * WITHOUT the lock at the end of each pass.
 */
#ifndef ZIG_TCP_ENGINE_H
#define ZIG_TCP_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcp.h"

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET os_socket;
#define OS_SOCKET_INVALID INVALID_SOCKET
#else
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
typedef int os_socket;
#define OS_SOCKET_INVALID (-1)
#endif

typedef enum op_kind {
  OP_CONNECT,
  OP_ACCEPT,
  OP_READ,
  OP_WRITE,
  OP_SHUTDOWN_WRITE,
  OP_CLOSE,
} op_kind;

typedef enum sock_kind {
  SOCK_LISTENER,
  SOCK_CONNECTION,
} sock_kind;

typedef struct tcp_sock tcp_sock;
typedef struct tcp_op tcp_op;

/* Backend scratch space inside every op / socket, so most backends need no
 * extra allocation: IOCP keeps its OVERLAPPED and AcceptEx address buffers
 * here; libuv's per-socket handles do not fit, so the uv backend keeps a
 * pointer to its own allocation in tcp_sock.backend. */
#define OP_BACKEND_BYTES 320
#define SOCK_BACKEND_BYTES 256
/* A write of up to this many bytes, and a read that returned up to this many,
 * keeps its bytes inside the op: a small message costs no allocation. */
#define OP_INLINE_BYTES 256

struct tcp_op {
  tcp_op *next;              /* queue link (per-socket queue or completion list) */
  op_kind kind;
  bool started;              /* handed to the backend (in flight in the OS) */
  bool wants_completion;     /* false for a finalizer's close */
  int64_t request_id;
  tcp_sock *sock;
  int64_t dart_port;         /* where the completion goes */
  /* completion, filled by engine_op_* */
  int64_t result;
  int64_t os_error;
  uint8_t *data;             /* read: engine-owned buffer (set when started); write: engine copy;
                                either may point to inline_data */
  bool data_by_copy;         /* read: data is an exact-size copy, posted as typed data the VM copies */
  size_t len;                /* read: capacity; write: total bytes */
  size_t done;               /* write: bytes written so far; read: bytes read */
  int64_t timeout_ms;        /* connect */
  struct sockaddr_storage addr; /* connect: destination */
  int addr_len;
  _Alignas(16) unsigned char backend[OP_BACKEND_BYTES];
  uint8_t inline_data[OP_INLINE_BYTES]; /* last: op_take does not clear it */
};

struct tcp_sock {
  sock_kind kind;
  uint32_t slot;             /* index in the handle table */
  int64_t handle;            /* the id handed out (slot | generation << 32) */
  int64_t dart_port;
  os_socket fd;
  int family;                /* AF_INET / AF_INET6 */
  bool closing;              /* tcp_close or shutdown seen: no new ops */
  bool released;             /* backend->release called */
  bool connected;            /* reads/writes may start (false while connecting) */
  int32_t close_reason;      /* TCP_ERR_CLOSED or TCP_ERR_SHUTDOWN */
  int inflight;              /* ops handed to the backend and not yet done */
  tcp_op *read_queue, *read_queue_tail;    /* head is in flight when started */
  tcp_op *write_queue, *write_queue_tail;  /* writes + shutdown_write, in order */
  tcp_op *accept_queue, *accept_queue_tail;/* accepts: all may be in flight */
  tcp_op *connect_op;        /* the pending connect, if any */
  tcp_op *close_op;          /* the pending close, if any */
  _Alignas(16) unsigned char backend[SOCK_BACKEND_BYTES];
};

typedef struct backend_vtable {
  const char *name;
  /* Set up the OS mechanism (ring, loop, port). Called without the lock,
   * before the I/O thread starts. Return TCP_OK or a TCP_ERR_* (with
   * TCP_ERR_UNSUPPORTED the core may fall back to another backend). */
  int32_t (*init)(void);
  /* Body of the I/O thread: process OS completions until stop is asked and
   * engine_drained() is true; call engine_flush() after each pass. */
  void (*run)(void);
  /* Lock held, any thread: wake the I/O thread so it calls engine_flush()
   * and notices a stop request soon. */
  void (*wake)(void);
  /* Lock held. Begin op in the OS (OP_CONNECT, OP_ACCEPT, OP_READ, or an
   * OP_WRITE of len > 0: the core itself runs shutdown_write, zero-length
   * writes and close). Completion is reported later through engine_op_done /
   * engine_accept_done, from any thread. For OP_CONNECT the socket is created
   * (and bound if a source was given) by the core; op->addr is the peer. A
   * backend whose OS API needs a bound socket (ConnectEx) binds it. */
  void (*start)(tcp_op *op);
  /* Lock held. Ask the OS to abandon an in-flight op; its completion is still
   * reported (with any result) through engine_op_done -- never from inside
   * cancel() itself. Called at most once per op. */
  void (*cancel)(tcp_op *op);
  /* Lock held, no op in flight. Called on the socket's own tcp_sock right after
   * it is created (accept/connect/listen), to attach backend state. */
  int32_t (*adopt)(tcp_sock *s);
  /* Lock held, no op in flight. Close the OS socket, then call
   * engine_sock_released(s) (now, or later from the I/O thread). */
  void (*release)(tcp_sock *s);
  /* After run() returned and the thread was joined: free OS resources. */
  void (*destroy)(void);
} backend_vtable;

/* ---- provided by the core to backends ---------------------------------- */
void engine_lock(void);
void engine_unlock(void);

/* Lock held. An in-flight op finished with result (>= 0) or failed with an OS
 * error code (result < 0 means: os_error holds the OS code; the core maps it). */
void engine_op_done(tcp_op *op, int64_t result, int64_t os_error);
/* Lock held. An accept produced fd. Returns the new socket, or NULL if the
 * listener is closing / out of memory: then the core has closed fd itself. */
tcp_sock *engine_accept_done(tcp_op *op, os_socket fd);
/* Lock held. The backend finished releasing s (OS socket closed). */
void engine_sock_released(tcp_sock *s);

/* Without the lock, on the I/O thread: post every queued completion. */
void engine_flush(void);
/* Lock held: true once stop was asked and no socket or op remains. */
bool engine_drained(void);
/* Lock held: completions are queued for the next engine_flush. */
bool engine_done_pending(void);
/* Lock held: true once tcp_shutdown asked the I/O thread to stop. */
bool engine_stopping(void);

/* ---- shared socket helpers (sockets.c) ------------------------------------ */
/* Build a sockaddr from 4/16 address bytes + port. Returns the length, or 0. */
int sockaddr_from_bytes(const uint8_t *addr, int32_t addr_len, int32_t port,
                        struct sockaddr_storage *out);
/* Create a TCP socket of family (CLOEXEC; blocking unless nonblocking). */
os_socket os_socket_open(int family, bool nonblocking, int *os_error);
void os_socket_close(os_socket fd);
/* The calling thread's last OS socket error (errno / WSAGetLastError). */
int os_last_error(void);
/* 4 or 16 (bytes copied into addr_out, port into *port_out; either may be
 * NULL), or TCP_ERR_ADDRESS_FAMILY. */
int32_t sockaddr_to_bytes(const struct sockaddr_storage *sa, uint8_t *addr_out, int32_t *port_out);
/* The following return 0 or the OS error code. */
/* Listener options that must precede bind, then bind + listen. */
int os_listen_setup(os_socket fd, const struct sockaddr_storage *addr, int addr_len, int backlog,
                    bool v6_only, bool shared);
int os_bind(os_socket fd, const struct sockaddr_storage *addr, int addr_len);
/* option: SO_KEEPALIVE or TCP_NODELAY. */
int os_get_bool_option(os_socket fd, int option, int32_t *value_out);
int os_set_bool_option(os_socket fd, int option, bool enabled);
int os_get_address(os_socket fd, bool remote, struct sockaddr_storage *out);
int os_shutdown_write(os_socket fd);

/* ---- error mapping (errors.c) ------------------------------------------- */
int32_t error_from_os(int64_t os_error);

/* ---- core internals (engine.c <-> dart_post.c) ---------------------------- */
/* Resolve Dart_PostCObject from NativeApi.initializeApiDLData's table. */
int32_t dart_api_bind(void *dl_data);
/* Post every op on the list (linked by ->next), grouped by port. Called
 * without the lock. The ops stay the caller's; a read whose buffer now belongs
 * to the VM (external typed data) has data = NULL. */
void dart_post_ops(tcp_op *list);

/* ---- the backends ------------------------------------------------------- */
#if defined(_WIN32)
extern const backend_vtable backend_iocp;
#else
extern const backend_vtable backend_uv;
#if defined(__linux__)
extern const backend_vtable backend_io_uring;
#endif
#endif

#endif /* ZIG_TCP_ENGINE_H */
