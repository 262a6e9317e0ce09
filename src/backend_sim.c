/* backend_sim.c -- the deterministic simulation backend (see backend_sim.h).
 *
 * An OS mechanism with no OS behind it: the core still makes real sockets
 * (tcp_listen binds and listens on loopback, tcp_connect makes an unconnected
 * socket), but no byte crosses them. An accept hands the core a fresh,
 * unconnected socket() so the core has a real fd to close later.
 *
 * Every op the core submits waits in one pending list (tcp_op.backend_link)
 * until a pass of poll -- or submit or cancel itself -- ends it; the order of
 * the ops a pass ends, the passes they wait, the sizes of reads and write
 * chunks and how a cancel ends are drawn from the instance's PRNG, whose knobs
 * are themselves drawn from the seed (swarm testing: a seed that rarely
 * completes inline, one that always races its cancels, ...).
 *
 * The sim also checks the core's side of backend.h: one read and one write
 * in flight per socket, reads and writes only once connected, cancel at most
 * once and only of an op the sim holds, release only with nothing in flight,
 * every written byte equal to the connection's write stream, in order. A
 * violation is recorded (sim_failures) for the test to fail the seed; the sim
 * cannot abort the test from the I/O thread.
 *
 * Threads: unlike a real backend, the sim's state is also touched by the test
 * thread (the control calls) and by adopt/wake/now_ms from callers, so one
 * mutex guards all of it; it is taken inside the engine lock (never the other
 * way round) and poll holds it only while the test thread waits. */
#if defined(ZIG_TCP_HAVE_SIM)

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend_sim_internal.h"
#include "byte_stream.h"

/* ---- records ------------------------------------------------------------------ */

static sim_sock *sock_of(tcp_op *op) { return sim_sock_of_sock(op->sock); }
static void set_sock_state(tcp_sock *s, sim_sock *ss) { memcpy(s->backend, &ss, sizeof(ss)); }

static void schedule(sim_backend *sb, tcp_op *op) {
  sim_op_of(op)->due_pass = sb->passes + 1 + sim_rng_below(&sb->rng, sb->knobs.delay_max);
}

static const char *kind_name(op_kind kind) {
  switch (kind) {
    case OP_CONNECT: return "connect";
    case OP_ACCEPT: return "accept";
    case OP_READ: return "read";
    case OP_WRITE: return "write";
    case OP_SHUTDOWN_WRITE: return "shutdown_write";
    default: return "?";
  }
}

/* ---- reporting an op (it leaves every list of the sim first) -------------------- */

static void forget(sim_backend *sb, tcp_op *op) {
  sim_sock *ss = sock_of(op);
  queue_remove(&sb->pending, &op->backend_link);
  ZT_ASSERT(ss->pending > 0);
  ss->pending--;
  if (ss->read_op == op) ss->read_op = NULL;
  if (ss->write_op == op) ss->write_op = NULL;
  if (op->kind == OP_ACCEPT) ss->accepts_pending--;
}

static void report_done(sim_backend *sb, tcp_op *op, int64_t result) {
  sim_trace("sim: request %lld done: %lld", (long long)op->request_id, (long long)result);
  forget(sb, op);
  sink_op_done(sb->base.sink, op, result);
}

static void report_error(sim_backend *sb, tcp_op *op, int os_error) {
  sim_trace("sim: request %lld failed: errno %d", (long long)op->request_id, os_error);
  forget(sb, op);
  sink_op_error(sb->base.sink, op, os_error);
}

static void report_cancelled(sim_backend *sb, tcp_op *op) {
  sim_trace("sim: request %lld cancelled", (long long)op->request_id);
  forget(sb, op);
  sink_op_cancelled(sb->base.sink, op);
}

/* ---- what each kind does when it acts ------------------------------------------- */

/* Bytes the peer still sends (UINT64_MAX: no end). */
static uint64_t read_left(const sim_sock *ss) {
  const sim_profile *p = &ss->profile;
  return p->read_end == SIM_READ_ENDLESS ? UINT64_MAX : p->read_end_offset - ss->read_offset;
}

/* Bytes the peer still takes (UINT64_MAX: no limit). */
static uint64_t write_room(const sim_sock *ss) {
  return ss->profile.write_limit == SIM_NO_LIMIT ? UINT64_MAX : ss->profile.write_limit - ss->written;
}

/* Can op still end on its own (else only its cancel ends it)? */
static bool can_end(const tcp_op *op, const sim_sock *ss) {
  switch (op->kind) {
    case OP_CONNECT: return ss->profile.connect != SIM_CONNECT_SILENT;
    case OP_READ: return read_left(ss) > 0 || ss->profile.read_end != SIM_READ_SILENT;
    case OP_WRITE:
      return ss->write_shut || ss->write_broken || ss->profile.write_end != SIM_WRITE_STALL ||
             write_room(ss) >= op->len - op->done;
    default: return true;
  }
}

/* False when the peer is silent: the read then waits for its cancel. */
static bool act_read(sim_backend *sb, tcp_op *op) {
  sim_sock *ss = sock_of(op);
  const sim_profile *p = &ss->profile;
  uint64_t left = read_left(ss);
  if (left == 0) {
    if (p->read_end == SIM_READ_SILENT) {
      sim_op_of(op)->due_pass = SIM_WAITS;
      return false;
    }
    if (p->read_end == SIM_READ_EOF) report_done(sb, op, 0);
    else report_error(sb, op, ECONNRESET);
    return true;
  }
  uint64_t most = op->len < SIM_READ_CHUNK_MAX ? op->len : SIM_READ_CHUNK_MAX;
  if (most > left) most = left;
  uint64_t n = sim_rng_chance(&sb->rng, sb->knobs.full_read_pct) ? most : sim_rng_range(&sb->rng, 1, most);
  /* The bytes become the op's as a real backend's do (ops.h): copied, or
   * the buffer they arrived in handed over; both ways, drawn. */
  uint8_t *buf = malloc((size_t)n);
  bool adopt = sim_rng_chance(&sb->rng, 50);
  if (buf != NULL) byte_stream_fill(p->read_seed, ss->read_offset, buf, (size_t)n);
  if (buf != NULL && adopt) {
    op_read_adopt(op, buf);
  } else {
    bool copied = buf != NULL && op_read_copy(op, buf, (size_t)n);
    free(buf);
    if (!copied) {
      report_error(sb, op, ENOMEM);
      return true;
    }
  }
  ss->read_offset += n;
  report_done(sb, op, (int64_t)n);
  return true;
}

/* One chunk of a write (all that is left when all_at_once); reports the op
 * when it is done or failed, else leaves it for a later pass -- or for its
 * cancel, once a stalled peer took all it will. False if no byte moved. */
static bool act_write(sim_backend *sb, tcp_op *op, bool all_at_once) {
  sim_sock *ss = sock_of(op);
  if (ss->write_shut || ss->write_broken) {
    report_error(sb, op, EPIPE);
    return true;
  }
  ZT_ASSERT(op->done < op->len);
  size_t left = op->len - op->done;
  size_t chunk = all_at_once || sim_rng_chance(&sb->rng, sb->knobs.full_write_pct)
                     ? left
                     : (size_t)sim_rng_range(&sb->rng, 1, left);
  uint64_t room = write_room(ss);
  if (chunk > room) chunk = (size_t)room;
  if (chunk == 0 && ss->profile.write_end == SIM_WRITE_STALL) {
    sim_op_of(op)->due_pass = SIM_WAITS;
    return false;
  }
  size_t wrong = byte_stream_first_diff(ss->profile.write_seed, ss->written, op->data + op->done, chunk);
  if (wrong != chunk)
    sim_fail("handle %lld: written byte %llu differs from the write stream (write %lld, byte %zu of %zu)",
             (long long)ss->handle, (unsigned long long)(ss->written + wrong), (long long)op->request_id,
             op->done + wrong, op->len);
  ss->written += chunk;
  op->done += chunk;
  if (op->done == op->len) {
    report_done(sb, op, (int64_t)op->len);
  } else if (ss->written == ss->profile.write_limit && ss->profile.write_end == SIM_WRITE_RESET) {
    ss->write_broken = true; /* the peer took all it will and reset */
    report_error(sb, op, ECONNRESET);
  } else {
    sim_count(SIM_C_SHORT_WRITES);
    schedule(sb, op); /* a stalled peer: the next act finds no room and waits */
  }
  return true;
}

static void act_connect(sim_backend *sb, tcp_op *op) {
  sim_sock *ss = sock_of(op);
  if (ss->profile.connect == SIM_CONNECT_REFUSED) {
    ss->connect = SIM_CONNECT_FAILED;
    report_error(sb, op, ECONNREFUSED);
    return;
  }
  ZT_ASSERT(ss->profile.connect == SIM_CONNECT_OK); /* a SILENT one never acts: only its cancel ends it */
  ss->connect = SIM_CONNECTED;
  report_done(sb, op, 0);
}

/* False when no peer dialled in (the accept keeps waiting). */
static bool act_accept(sim_backend *sb, tcp_op *op) {
  sim_sock *ss = sock_of(op);
  sim_op *so = sim_op_of(op);
  if (so->accept_fails) {
    report_error(sb, op, EMFILE);
    return true;
  }
  if (so->cancel != SIM_CANCEL_RACE) {
    if (ss->dials == 0) return false;
    ss->dials--;
  }
  int fd = socket(ss->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    report_error(sb, op, errno);
    return true;
  }
  sim_trace("sim: request %lld accepted a connection", (long long)op->request_id);
  forget(sb, op);
  sink_accept_done(sb->base.sink, op, fd);
  return true;
}

/* op acts (it is due, or ends inside submit/cancel). False if it could not. */
static bool act(sim_backend *sb, tcp_op *op) {
  sim_op *so = sim_op_of(op);
  if (so->cancel == SIM_CANCEL_LATER) {
    sim_count(SIM_C_CANCEL_LATER);
    report_cancelled(sb, op);
    return true;
  }
  bool race = so->cancel == SIM_CANCEL_RACE;
  if (race) sim_count(SIM_C_CANCEL_LOST_RACE);
  switch (op->kind) {
    case OP_READ: return act_read(sb, op);
    case OP_WRITE: return act_write(sb, op, race);
    case OP_CONNECT: act_connect(sb, op); return true;
    case OP_ACCEPT: return act_accept(sb, op);
    case OP_SHUTDOWN_WRITE:
      sock_of(op)->write_shut = true;
      report_done(sb, op, 0);
      return true;
    default: ZT_ASSERT(!"the core submits no other kind"); return false;
  }
}

/* ---- the vtable: submit, cancel, release ------------------------------------------ */

/* The core's side of the contract for a new op; records what it breaks. */
static void check_submit(const sim_sock *ss, const tcp_op *op) {
  long long h = (long long)ss->handle;
  if (qlink_queued(&op->backend_link)) sim_fail("handle %lld: %s submitted twice", h, kind_name(op->kind));
  if (ss->released) sim_fail("handle %lld: %s submitted after release", h, kind_name(op->kind));
  if (op->state != OP_SUBMITTED) sim_fail("handle %lld: op submitted in state %d", h, (int)op->state);
  bool io = op->kind == OP_READ || op->kind == OP_WRITE || op->kind == OP_SHUTDOWN_WRITE;
  if (io && ss->connect != SIM_NOT_CONNECTING && ss->connect != SIM_CONNECTED)
    sim_fail("handle %lld: %s submitted before its connect succeeded", h, kind_name(op->kind));
  if (op->kind == OP_READ && (ss->read_op != NULL || op->len == 0))
    sim_fail("handle %lld: a second read in flight, or a read of 0 bytes", h);
  if ((op->kind == OP_WRITE || op->kind == OP_SHUTDOWN_WRITE) && ss->write_op != NULL)
    sim_fail("handle %lld: a second write in flight (writes would interleave)", h);
  if (op->kind == OP_WRITE && (op->len == 0 || op->done != 0))
    sim_fail("handle %lld: write of %zu bytes submitted with %zu done", h, op->len, op->done);
  if (op->kind == OP_CONNECT && ss->connect != SIM_NOT_CONNECTING) sim_fail("handle %lld: a second connect", h);
  if ((op->kind == OP_ACCEPT) != ss->listener)
    sim_fail("handle %lld: %s on the wrong kind of socket", h, kind_name(op->kind));
}

static void start_op(sim_backend *sb, tcp_op *op, sim_sock *ss) {
  sim_op *so = sim_op_of(op);
  bool now = sim_rng_chance(&sb->rng, sb->knobs.inline_pct);
  switch (op->kind) {
    case OP_CONNECT:
      ss->connect = SIM_CONNECTING;
      if (ss->profile.connect == SIM_CONNECT_SILENT) return;
      break;
    case OP_ACCEPT:
      ss->accepts_pending++;
      so->accept_fails = sim_rng_chance(&sb->rng, sb->knobs.accept_error_pct);
      if (!so->accept_fails) {
        if (now) (void)act_accept(sb, op);
        return; /* waits for a dial-in */
      }
      break;
    case OP_READ: ss->read_op = op; break;
    default: ss->write_op = op; break;
  }
  if (now) (void)act(sb, op);
  else schedule(sb, op);
}

void sim_submit(backend *b, tcp_op *op) {
  sim_backend *sb = sim_self(b);
  sim_lock(sb);
  sim_check_io_thread(sb, "submit");
  sim_sock *ss = sock_of(op);
  check_submit(ss, op);
  memset(sim_op_of(op), 0, sizeof(sim_op));
  sim_op_of(op)->due_pass = SIM_WAITS;
  sim_trace("sim: submit %s of handle %lld: request %lld, %zu bytes", kind_name(op->kind), (long long)ss->handle,
            (long long)op->request_id, op->len);
  queue_push(&sb->pending, &op->backend_link);
  ss->pending++;
  start_op(sb, op, ss);
  if (!qlink_in(&op->backend_link, &sb->pending)) sim_count(SIM_C_ENDED_IN_SUBMIT);
  sim_unlock(sb);
}

void sim_cancel(backend *b, tcp_op *op) {
  sim_backend *sb = sim_self(b);
  sim_lock(sb);
  sim_check_io_thread(sb, "cancel");
  sim_op *so = sim_op_of(op);
  if (!qlink_in(&op->backend_link, &sb->pending) || !op->cancel_sent || so->cancel != SIM_CANCEL_NONE) {
    sim_fail("request %lld: cancel of an op the sim does not hold, or a second cancel", (long long)op->request_id);
    sim_unlock(sb);
    return;
  }
  const sim_knobs *k = &sb->knobs;
  uint64_t pick = sim_rng_below(&sb->rng, k->cancel_now_w + k->cancel_later_w + k->cancel_race_w);
  /* An op that cannot end on its own (a silent peer) cannot win a race. */
  bool stuck = !can_end(op, sock_of(op));
  sim_trace("sim: cancel request %lld (draw %llu)", (long long)op->request_id, (unsigned long long)pick);
  if (pick < k->cancel_now_w) {
    sim_count(SIM_C_CANCEL_AT_ONCE);
    report_cancelled(sb, op);
  } else {
    so->cancel = pick < k->cancel_now_w + k->cancel_later_w || stuck ? SIM_CANCEL_LATER : SIM_CANCEL_RACE;
    if (so->cancel == SIM_CANCEL_RACE && sim_rng_chance(&sb->rng, 30)) (void)act(sb, op);
    else schedule(sb, op);
  }
  sim_unlock(sb);
}

static void free_sock(sim_backend *sb, tcp_sock *s) {
  sim_sock *ss = sim_sock_of_sock(s);
  queue_remove(&sb->socks, &ss->all_link);
  set_sock_state(s, NULL);
  free(ss);
  sim_count_socks_live(-1);
  sim_trace("sim: handle %lld released", (long long)s->handle);
  sink_sock_released(sb->base.sink, s);
}

void sim_release(backend *b, tcp_sock *s) {
  sim_backend *sb = sim_self(b);
  sim_lock(sb);
  sim_check_io_thread(sb, "release");
  sim_sock *ss = sim_sock_of_sock(s);
  if (ss->released || ss->pending != 0)
    sim_fail("handle %lld: released twice, or with %u ops in flight", (long long)ss->handle, ss->pending);
  ss->released = true;
  os_socket_close(s->fd);
  s->fd = OS_SOCKET_INVALID;
  if (sim_rng_chance(&sb->rng, sb->knobs.release_now_pct)) {
    free_sock(sb, s);
  } else {
    sim_count(SIM_C_RELEASE_LATER);
    ss->release_due = sb->passes + 1 + sim_rng_below(&sb->rng, sb->knobs.delay_max);
    queue_push(&sb->releasing, &s->backend_link);
  }
  sim_unlock(sb);
}

/* ---- one pass ------------------------------------------------------------------------ */

static bool op_due(const sim_backend *sb, tcp_op *op) {
  sim_op *so = sim_op_of(op);
  if (so->due_pass != SIM_WAITS) return so->due_pass <= sb->passes;
  return op->kind == OP_ACCEPT && sock_of(op)->dials > 0;
}

/* Would a pass find something to do now or in a later pass on its own? */
bool sim_has_work(const sim_backend *sb) {
  if (!queue_empty(&sb->releasing)) return true;
  for (qlink *l = sb->pending.head; l != NULL; l = l->next) {
    tcp_op *op = QUEUE_ENTRY(l, tcp_op, backend_link);
    if (sim_op_of(op)->due_pass != SIM_WAITS || op_due(sb, op)) return true;
  }
  return false;
}

static bool grow_due(sim_backend *sb, size_t n) {
  if (n <= sb->due_cap) return true;
  size_t cap = sb->due_cap ? sb->due_cap : 64;
  while (cap < n) cap *= 2;
  tcp_op **grown = realloc(sb->due, cap * sizeof(*grown));
  if (grown == NULL) return false;
  sb->due = grown;
  sb->due_cap = cap;
  return true;
}

/* The due ops act in an order drawn from the PRNG. Returns how many acted. */
static size_t act_on_due_ops(sim_backend *sb) {
  if (!grow_due(sb, sb->pending.len)) return 0; /* out of memory: nothing this pass */
  size_t n = 0;
  for (qlink *l = sb->pending.head; l != NULL; l = l->next) {
    tcp_op *op = QUEUE_ENTRY(l, tcp_op, backend_link);
    if (op_due(sb, op)) sb->due[n++] = op;
  }
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)sim_rng_below(&sb->rng, i);
    tcp_op *t = sb->due[i - 1];
    sb->due[i - 1] = sb->due[j];
    sb->due[j] = t;
  }
  size_t acted = 0;
  for (size_t i = 0; i < n; i++) {
    tcp_op *op = sb->due[i];
    if (!act(sb, op)) continue;
    acted++;
    if (!qlink_in(&op->backend_link, &sb->pending)) sim_count(SIM_C_ENDED_IN_PASS);
  }
  return acted;
}

static size_t report_due_releases(sim_backend *sb) {
  size_t n = 0;
  qlink *l = sb->releasing.head;
  while (l != NULL) {
    qlink *next = l->next;
    tcp_sock *s = QUEUE_ENTRY(l, tcp_sock, backend_link);
    if (sim_sock_of_sock(s)->release_due <= sb->passes) {
      queue_remove(&sb->releasing, l);
      free_sock(sb, s);
      n++;
    }
    l = next;
  }
  return n;
}

/* Peers dial in on their own to listeners with accepts waiting. */
static void dial_spontaneously(sim_backend *sb) {
  for (qlink *l = sb->socks.head; l != NULL; l = l->next) {
    sim_sock *ss = QUEUE_ENTRY(l, sim_sock, all_link);
    if (ss->listener && !ss->released && ss->accepts_pending > ss->dials &&
        sim_rng_chance(&sb->rng, sb->knobs.spontaneous_dial_pct)) {
      ss->dials++;
      sim_count(SIM_C_DIALS);
    }
  }
}

void sim_run_pass(sim_backend *sb, int64_t timeout_ms) {
  bool woken = sb->wake_pending;
  sb->wake_pending = false;
  sb->passes++;
  int64_t start_ms = sb->now_ms;
  sb->now_ms += SIM_PASS_MS;
  if (sb->spontaneous && sb->mode == SIM_STEP) dial_spontaneously(sb);
  size_t acted = act_on_due_ops(sb) + report_due_releases(sb);
  /* Nothing happened, nothing will on its own and no caller woke the loop:
   * a real poll would sleep until the deadline it was given, so time jumps
   * there. (A wake means commands wait to be handed over: no jump.) */
  if (acted == 0 && !woken && timeout_ms > SIM_PASS_MS && !sim_has_work(sb)) {
    sb->now_ms = start_ms + timeout_ms;
    sim_count(SIM_C_TIME_JUMPS);
  }
  sim_trace("sim: pass %llu at %lld ms: %zu acted", (unsigned long long)sb->passes, (long long)sb->now_ms, acted);
}

/* ---- adopt ------------------------------------------------------------------------------ */

int32_t sim_adopt(backend *b, tcp_sock *s) {
  sim_backend *sb = sim_self(b);
  sim_sock *ss = calloc(1, sizeof(*ss));
  if (ss == NULL) return TCP_ERR_NO_MEMORY;
  sim_lock(sb);
  sim_check_lockstep(sb, "adopt");
  ss->handle = s->handle;
  ss->family = s->family;
  ss->listener = s->kind == SOCK_LISTENER;
  ss->profile = sim_profile_of(sb->run_seed, s->handle);
  queue_push(&sb->socks, &ss->all_link);
  set_sock_state(s, ss);
  sim_count_socks_live(+1);
  sim_trace("sim: adopt %s %lld", ss->listener ? "listener" : "connection", (long long)s->handle);
  sim_unlock(sb);
  return TCP_OK;
}

#endif /* ZIG_TCP_HAVE_SIM */
