/* ops.h -- operation records: one per asynchronous request (connect, accept,
 * read, write, shutdown_write, close), in a record slab; the read data helpers.
 *
 * LIFE OF AN OP (op->state; every change under the engine lock)
 *   OP_QUEUED     in its socket's queue, not started (reads and writes wait for
 *                 the one ahead of them)
 *   OP_STARTED    counted in flight on its socket, waiting in the loop's
 *                 command queue for the I/O thread to hand it to the backend
 *   OP_SUBMITTED  the backend owns it until it reports it to the sink
 *   OP_DONE       result set, waiting in the loop's done queue to be posted
 * A close's op is never started: it waits in tcp_sock.close_op. */
#ifndef ZIG_TCP_OPS_H
#define ZIG_TCP_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os_socket.h"
#include "queue.h"

typedef enum op_kind {
  OP_CONNECT,
  OP_ACCEPT,
  OP_READ,
  OP_WRITE,
  OP_SHUTDOWN_WRITE,
  OP_CLOSE,
  OP_READ_STREAM, /* a stream's anchor: never started; its completion is the stream's final */
} op_kind;

typedef enum op_state {
  OP_FREE,
  OP_QUEUED,
  OP_STARTED,
  OP_SUBMITTED,
  OP_DONE,
} op_state;

typedef struct tcp_sock tcp_sock;
typedef struct tcp_op tcp_op;

/* Backend scratch space inside every op, so no backend allocates per op:
 * IOCP keeps its OVERLAPPED and AcceptEx address buffers here (144 bytes);
 * io_uring needs 40 and uv 1, and every idle connection's pending read pays
 * for this space (measured: 96 bytes of the ~1 KiB an idle connection costs). */
#if defined(_WIN32)
#define OP_BACKEND_BYTES 144
#else
#define OP_BACKEND_BYTES 48
#endif
/* A write of up to this many bytes, and a read that returned up to this many,
 * keeps its bytes inside the op: a small message costs no allocation. 128:
 * every request/response message of the benchmark fits, and an idle
 * connection's pending read record stays small (tcp.h: receive at scale). */
#define OP_INLINE_BYTES 128
#define OP_NO_DEADLINE UINT32_MAX

struct tcp_op {
  qlink core_link;    /* its socket's queue, then the loop's done queue */
  qlink command_link; /* the loop's command queue (waiting for submit or cancel) */
  qlink backend_link; /* the backend's own lists while submitted, then the sink */
  op_kind kind;
  op_state state;
  bool cancel_requested;   /* a close or the deadline wants it to end */
  bool cancel_sent;        /* backend->cancel was called (at most once) */
  bool ended_by_cancel;    /* the backend reported that it ended because of cancel */
  bool timed_out;          /* connect: its deadline passed */
  bool quarantined;        /* the backend lost track of it: its memory is never reused */
  bool data_by_copy;       /* read: data is an exact-size copy, posted as typed data */
  bool stream_part;        /* read: one receive of its socket's read stream */
  int64_t request_id;
  int64_t dart_port;       /* where the completion goes */
  tcp_sock *sock;          /* NULL once completed (the socket may be gone) */
  /* The outcome: set by the backend through the sink, or by the core. */
  int64_t result;          /* >= 0 success value, < 0 a TCP_ERR_* code */
  int64_t os_error;
  uint8_t *data;           /* read: the bytes read (set by the backend when they arrive);
                              write: engine copy; either may point to inline_data */
  size_t len;              /* read: bytes_max; write: total bytes */
  /* What one kind alone needs shares its space (every idle connection's
   * pending read pays for the record: tcp.h, receive at scale); read a member
   * only for its kind. */
  union {
    struct {                   /* OP_CONNECT */
      int64_t timeout_ms;      /* 0 = none */
      int64_t deadline_ms;     /* when it times out (loop clock) */
      uint32_t deadline_index; /* slot in the loop's deadline heap, or OP_NO_DEADLINE */
      int addr_len;
    };
    struct {                   /* OP_ACCEPT */
      tcp_sock *member;        /* on a shared listener: the member it was asked on */
      os_socket accepted_fd;   /* the new connection's OS socket */
    };
    struct {                   /* OP_READ, OP_WRITE, OP_SHUTDOWN_WRITE */
      uint32_t seq;            /* its place in its socket's queue (tcp_sock.reads_issued ...) */
      size_t done;             /* write: bytes written so far (the backend's) */
    };
  };
  _Alignas(16) unsigned char backend[OP_BACKEND_BYTES];
  union { /* last: op_new does not clear it */
    uint8_t inline_data[OP_INLINE_BYTES]; /* read / write: small payloads */
    struct sockaddr_storage addr;         /* connect: destination */
  };
};

/* All of the following: engine lock held. */
/* A cleared op in state OP_QUEUED, or NULL when out of memory. */
tcp_op *op_new(op_kind kind, int64_t request_id);
/* Frees what op owns and keeps the record for reuse. op must be in no queue. */
void op_free(tcp_op *op);
/* After the I/O thread stopped: free every pooled op. */
void ops_free_pools(void);

/* For backends (any thread, no lock: they touch only op). A read's bytes
 * become the op's: op_read_copy copies n > 0 bytes (into the op itself when
 * they fit, else into an exact-size allocation; false when out of memory),
 * op_read_adopt takes buf (from malloc, at least n bytes) as it is. */
bool op_read_copy(tcp_op *op, const uint8_t *src, size_t n);
void op_read_adopt(tcp_op *op, uint8_t *buf);

/* RECORD SLABS: fixed-size records that live as long as a connection (op
 * records, the uv backend's per-socket state), packed into 64 KiB blocks of
 * their own, outside malloc's arenas. Measured (10,000 connections, each
 * echoing 32 KiB then idling; uv backend): with such records malloc'd one by
 * one between the 32 KiB buffers of the busy time, each record split a freed
 * buffer, the next buffer no longer fit the hole, and the arenas grew by up to
 * ~29 KiB per connection; malloc_trim then gives the holes back, but the pages
 * the scattered records sit on stay (+190..600 B per idle connection). In
 * blocks of their own the records stay dense and the busy time's buffers
 * leave nothing behind. A block goes back to the OS once empty (one empty
 * block is kept, so a connection opened and closed in a loop maps nothing).
 * No locking: the owner serialises every call. Under AddressSanitizer (and
 * on Windows) records are plain malloc'd, so ASan still sees every misuse. */
typedef struct slab_block slab_block;
typedef struct record_slab {
  size_t record_bytes; /* set before first use: a multiple of 16 */
  slab_block *partial; /* blocks with a free record (doubly linked) */
  slab_block *spare;   /* one empty block kept for reuse, or NULL */
} record_slab;

#define RECORD_SLAB_INIT(type) {.record_bytes = (sizeof(type) + 15) & ~(size_t)15}

/* An uninitialised record of slab->record_bytes (16-aligned), or NULL. */
void *slab_alloc(record_slab *slab);
void slab_free(record_slab *slab, void *record);
/* Unmaps the spare block (every record must be free, or quarantined). */
void slab_release_spare(record_slab *slab);

#endif /* ZIG_TCP_OPS_H */
