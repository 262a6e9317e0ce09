/* backend_sim_internal.h -- what the files of the simulation backend share:
 * backend_sim.c (what ops do: submit, cancel, release, one pass),
 * backend_sim_control.c (lifetime, the lockstep poll, the control calls) and
 * backend_sim_report.c (PRNG, profiles, failures, trace). Not for the test:
 * it uses backend_sim.h. */
#ifndef ZIG_TCP_BACKEND_SIM_INTERNAL_H
#define ZIG_TCP_BACKEND_SIM_INTERNAL_H

#include <pthread.h>
#include <string.h>

#include "backend.h"
#include "backend_sim.h"

/* An op that only an event (a dial-in) or a cancel moves on. */
#define SIM_WAITS UINT64_MAX
/* A read delivers at most this much in one go: keeps the stream fill cheap. */
#define SIM_READ_CHUNK_MAX (256 * 1024)

typedef enum sim_mode {
  SIM_STEP,       /* each poll waits for sim_step */
  SIM_FREE_ARMED, /* sim_free_run called: free from the next wake on */
  SIM_FREE,
} sim_mode;

typedef enum sim_cancel_end {
  SIM_CANCEL_NONE,
  SIM_CANCEL_LATER, /* ends as cancelled when due */
  SIM_CANCEL_RACE,  /* completes normally when due: a completion crossing the cancel */
} sim_cancel_end;

typedef enum sim_connect_state {
  SIM_NOT_CONNECTING, /* accepted (or a listener) */
  SIM_CONNECTING,
  SIM_CONNECTED,
  SIM_CONNECT_FAILED,
} sim_connect_state;

/* The swarm knobs of one instance. */
typedef struct sim_knobs {
  uint32_t inline_pct;      /* a submit ends (or writes a first chunk) inside submit */
  uint32_t delay_max;       /* passes an op waits at most before it acts */
  uint32_t cancel_now_w, cancel_later_w, cancel_race_w;
  uint32_t release_now_pct;
  uint32_t accept_error_pct;
  uint32_t spontaneous_dial_pct;
  uint32_t full_read_pct, full_write_pct;
} sim_knobs;

/* In tcp_op.backend while submitted. */
typedef struct sim_op {
  uint64_t due_pass;
  sim_cancel_end cancel;
  bool accept_fails;
} sim_op;

/* Per socket, from adopt until its release is reported (tcp_sock.backend
 * holds the pointer). */
typedef struct sim_sock {
  qlink all_link; /* sim_backend.socks */
  int64_t handle;
  int family;
  bool listener, released;
  sim_profile profile;
  uint64_t read_offset; /* bytes reads delivered */
  uint64_t written;     /* bytes written and checked */
  bool write_shut, write_broken;
  sim_connect_state connect;
  uint32_t pending; /* ops of this socket the sim holds */
  uint32_t accepts_pending, dials;
  tcp_op *read_op, *write_op; /* in flight: one of each at most */
  uint64_t release_due;
} sim_sock;

typedef struct sim_backend {
  backend base;
  pthread_mutex_t mu;
  pthread_cond_t io_cond;   /* the I/O thread waits in poll */
  pthread_cond_t test_cond; /* the test thread waits in sim_step / sim_sync */
  sim_mode mode;
  bool in_poll, wake_pending, spontaneous;
  uint64_t grants, steps_run, passes;
  int64_t now_ms;
  pthread_t io_thread;
  bool io_thread_known;
  uint64_t run_seed;
  sim_rng rng;
  sim_knobs knobs;
  queue pending;   /* tcp_op.backend_link */
  queue releasing; /* tcp_sock.backend_link: released, report due */
  queue socks;     /* sim_sock.all_link: every record */
  tcp_op **due;    /* a pass's scratch */
  size_t due_cap;
} sim_backend;

_Static_assert(sizeof(sim_op) <= OP_BACKEND_BYTES, "sim_op must fit tcp_op.backend");
_Static_assert(sizeof(sim_sock *) <= SOCK_BACKEND_BYTES, "tcp_sock.backend holds a pointer");

static inline sim_backend *sim_self(backend *b) { return (sim_backend *)(void *)b; }
static inline sim_op *sim_op_of(tcp_op *op) { return (sim_op *)(void *)op->backend; }
static inline sim_sock *sim_sock_of_sock(tcp_sock *s) {
  sim_sock *ss;
  memcpy(&ss, s->backend, sizeof(ss));
  return ss;
}
static inline void sim_lock(sim_backend *sb) { pthread_mutex_lock(&sb->mu); }
static inline void sim_unlock(sim_backend *sb) { pthread_mutex_unlock(&sb->mu); }
static inline bool sim_on_io_thread(const sim_backend *sb) {
  return sb->io_thread_known && pthread_equal(sb->io_thread, pthread_self());
}

/* backend_sim_report.c. sim_fail records a contract violation (see
 * sim_failures). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
void sim_fail(const char *fmt, ...);
void sim_count_socks_live(int delta);
void sim_count(sim_counter c);
sim_knobs sim_knobs_from(sim_rng *r);

static inline void sim_check_io_thread(const sim_backend *sb, const char *call) {
  if (!sim_on_io_thread(sb)) sim_fail("%s called off the I/O thread", call);
}
/* In step mode another thread calls in only while the I/O thread waits in
 * poll (see LOCKSTEP in backend_sim.h). Lock held. */
static inline void sim_check_lockstep(const sim_backend *sb, const char *call) {
  if (sb->mode == SIM_STEP && !sim_on_io_thread(sb) && !sb->in_poll)
    sim_fail("lockstep broken: %s from another thread while the I/O thread runs", call);
}

/* backend_sim.c: the vtable's op entries and one pass. Lock held for the
 * last two. */
int32_t sim_adopt(backend *b, tcp_sock *s);
void sim_submit(backend *b, tcp_op *op);
void sim_cancel(backend *b, tcp_op *op);
void sim_release(backend *b, tcp_sock *s);
void sim_run_pass(sim_backend *sb, int64_t timeout_ms);
bool sim_has_work(const sim_backend *sb);

#endif /* ZIG_TCP_BACKEND_SIM_INTERNAL_H */
