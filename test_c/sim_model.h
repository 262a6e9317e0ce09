/*
 * sim_model.h -- what the simulation test expects of the engine (sim_model.c).
 *
 * The model follows every socket and every request the program made. Because
 * the test thread acts only while the engine's I/O thread waits in the sim's
 * poll, and drains every completion after each step, the model knows at every
 * call exactly which requests the engine has ended: so it predicts the return
 * code of each call (stale, made-up, wrong-kind handles, closed sockets,
 * failed connects, bad arguments) and, with the connection profiles
 * (sim_profile_of), the exact result of each completion: the bytes a read
 * returns at its offset, where a stream ends, which write the peer resets,
 * how a connect ends, that everything pending at a close completes with
 * TCP_ERR_CLOSED (TCP_ERR_SHUTDOWN at tcp_shutdown).
 *
 * A wrong prediction fails the seed (runner.h FAILF), as do the order rules:
 * per socket, reads complete in call order, writes and shutdown_write in call
 * order, a close after every other request of its socket and nothing after it.
 */
#ifndef ZIG_TCP_SIM_MODEL_H
#define ZIG_TCP_SIM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend_sim.h"
#include "tracker.h"

typedef enum m_kind { M_LISTENER, M_CONN } m_kind;
typedef enum m_connect { MC_ACCEPTED, MC_PENDING, MC_OK, MC_FAILED } m_connect;
typedef enum m_write_state { MW_OK, MW_SHUT, MW_BROKEN } m_write_state;

typedef struct m_sock {
  int64_t handle, port;
  m_kind kind;
  bool closed;          /* tcp_close, the finalizer or tcp_shutdown: the handle is dead */
  bool close_done;      /* its close completed: nothing of it may follow */
  int64_t close_reason; /* what its pending requests complete with */
  m_connect connect;
  int64_t connect_timeout_ms, connect_deadline_ms;
  bool saw_not_connected; /* a request ended NOT_CONNECTED before the connect's own completion */
  sim_profile profile;
  uint64_t read_offset;   /* bytes reads returned */
  uint64_t write_offset;  /* bytes the program handed to tcp_write (the stream offset of the next) */
  uint64_t written_ok;    /* bytes of writes that completed */
  m_write_state write_state;
  uint64_t reads_issued, reads_done, writes_issued, writes_done;
  uint32_t writes_in_core; /* writes and shutw not yet completed, except those ended at once */
  uint32_t reads_in_core;  /* reads and streams likewise */
  struct m_op **writes;    /* every write and shutw, in call order (writes[writes_done]: the next to end) */
  size_t cap_writes;
  /* Its read stream as the core sees it: the stream's request while the core
   * runs it (until its final completion ended), else NULL. */
  struct m_op *stream;
  bool stream_stopping;
  int64_t stream_window, stream_posted, stream_acked;
  uint32_t accepts_out;   /* accepts not yet completed */
  uint32_t requests_out;  /* every request not yet completed (connect, accept, read, write, shutw, close) */
} m_sock;

typedef struct m_op {
  int64_t id;
  op_kind_t kind;
  int32_t sock;       /* index of its socket */
  uint64_t seq;       /* read, stream / write: its place in its socket's queue */
  int64_t bytes_max;  /* read */
  uint64_t write_offset, write_len;
  /* The call itself ended it (a zero-length write with nothing ahead; a
   * stream stopped with no receive in flight): a close after the call does not
   * change its result, at_once_result. */
  bool ended_at_once;
  int64_t at_once_result;
} m_op;

/* Forgets everything (a new seed). */
void model_reset(uint64_t run_seed);
size_t model_socks(void);
m_sock *model_sock(size_t index);
/* The socket with this handle, or NULL (made up, or never seen). */
m_sock *model_find(int64_t handle);
m_sock *model_add(int64_t handle, int64_t port, m_kind kind);

/* The return code tcp.h promises for a call on handle: op is K_READ,
 * K_WRITE, K_SHUTW (a connection that can take I/O), K_ACCEPT (a listener),
 * K_CLOSE (anything open), or 0 for the accessors of a connection. */
int64_t model_expect_call(int64_t handle, op_kind_t op);
/* An accepted request: registers it with the tracker and the model; returns
 * the model's record. */
m_op *model_issue(int64_t request_id, m_sock *s, op_kind_t kind);

/* Read streams: the return codes of tcp_read_stream, _ack and _stop, and
 * what an accepted call changes. */
int64_t model_expect_stream(int64_t handle, int64_t window_bytes);
int64_t model_expect_ack(int64_t handle, int64_t bytes);
int64_t model_expect_stop(int64_t handle);
void model_stream_started(m_sock *s, m_op *stream, int64_t window_bytes);
void model_stream_acked(m_sock *s, int64_t bytes);
void model_stream_stopped(m_sock *s);

/* Takes every completion the fake VM holds on the ports and checks it. */
void model_drain(const int64_t *ports, size_t nports);
/* At tcp_shutdown: every open socket closes with TCP_ERR_SHUTDOWN. */
void model_shutdown(void);

/* Requests that must still complete on their own (liveness): all but those
 * that wait on a connect the peer never answers and that has no deadline.
 * *first gets one of them for the message. */
size_t model_must_complete(const m_op **first, const m_sock **first_sock);
/* Accepts the program still waits for on open listeners (to dial in). */
uint32_t model_accepts_waiting(const m_sock *s);

/* Counters of the run, for the summary: completions by how they ended. */
typedef enum m_outcome {
  MO_READ_DATA,
  MO_READ_EOF,
  MO_RESET,
  MO_WRITTEN,
  MO_CONNECTED,
  MO_ACCEPTED,
  MO_REFUSED,
  MO_TIMED_OUT,
  MO_NOT_CONNECTED,
  MO_BROKEN_PIPE,
  MO_CLOSED,
  MO_SHUTDOWN,
  MO_SHUT_WRITE,
  MO_CLOSE,
  MO_STREAM_DATA,
  MO_STOPPED,
  MO_OTHER,
  MO_COUNT,
} m_outcome;
extern const char *const m_outcome_names[MO_COUNT];

typedef struct model_stats {
  uint64_t completions, bytes_read, bytes_written;
  uint64_t outcomes[MO_COUNT];
} model_stats;
model_stats model_stats_get(void);

#endif /* ZIG_TCP_SIM_MODEL_H */
