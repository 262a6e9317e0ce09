/* sock.c -- the per-socket state machine (see sock.h). */
#include "sock.h"

#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "handles.h"
#include "loop.h"

/* Socket records live as long as their connection: in a slab, off the
 * arenas the busy time's buffers churn (ops.h, record slabs). Engine lock.
 * Its one spare block stays for the next engine of the process. */
static record_slab sock_records = RECORD_SLAB_INIT(tcp_sock);

tcp_sock *sock_create(sock_kind kind, int64_t dart_port, os_socket fd, int family, int32_t *error) {
  ASSERT_LOCKED();
  tcp_sock *s = slab_alloc(&sock_records);
  if (s == NULL) {
    *error = TCP_ERR_NO_MEMORY;
    return NULL;
  }
  memset(s, 0, sizeof(*s));
  s->kind = kind;
  s->dart_port = dart_port;
  s->fd = fd;
  s->family = family;
  s->connected = kind == SOCK_CONNECTION; /* sock_add_connect clears it */
  int32_t rc = handles_insert(s);
  if (rc != TCP_OK) {
    slab_free(&sock_records, s);
    *error = rc;
    return NULL;
  }
  backend *b = engine_backend();
  rc = b->vtable->adopt(b, s);
  if (rc != TCP_OK) {
    handles_retire(s);
    handles_remove(s);
    slab_free(&sock_records, s);
    *error = rc;
    return NULL;
  }
  return s;
}

static void attach(tcp_op *op, tcp_sock *s) {
  ZT_ASSERT(op->state == OP_QUEUED);
  ZT_ASSERT(!s->closing);
  op->sock = s;
  op->dart_port = s->dart_port;
}

static void start(tcp_op *op) {
  ZT_ASSERT(op->state == OP_QUEUED);
  op->state = OP_STARTED;
  op->sock->inflight++;
  loop_submit(op);
}

/* The op's final outcome: posted soon, and the op leaves its socket. */
void sock_complete(tcp_op *op, int64_t result, int64_t os_error) {
  ZT_ASSERT(op->state != OP_DONE && op->state != OP_FREE);
  ZT_ASSERT(!qlink_queued(&op->core_link));
  op->result = result;
  op->os_error = os_error;
  op->sock = NULL; /* the socket may be freed before the post */
  loop_complete(op);
}

/* Reads and writes end strictly in call order, also when a close cancels them. */
static void note_ended_in_order(tcp_sock *s, tcp_op *op) {
  if (op->kind == OP_READ) {
    ZT_ASSERT(op->seq == s->reads_ended);
    s->reads_ended++;
  } else if (op->kind == OP_WRITE || op->kind == OP_SHUTDOWN_WRITE) {
    ZT_ASSERT(op->seq == s->writes_ended);
    s->writes_ended++;
  }
}

static queue *queue_of(tcp_sock *s, op_kind kind) {
  switch (kind) {
    case OP_READ: return &s->reads;
    case OP_WRITE:
    case OP_SHUTDOWN_WRITE: return &s->writes;
    case OP_ACCEPT: return &s->accepts;
    default: return NULL;
  }
}

/* A stream's receive that carries no bytes is not posted: the stream's final
 * completion speaks for it. */
static void discard(tcp_op *op) {
  op->state = OP_DONE;
  op_free(op);
}

/* An op that was never started leaves its queue with code. */
static void end_unstarted(tcp_sock *s, tcp_op *op, int64_t code) {
  ZT_ASSERT(op->state == OP_QUEUED);
  queue_remove(queue_of(s, op->kind), &op->core_link);
  note_ended_in_order(s, op);
  if (op->stream_part) {
    discard(op);
    sock_stream_receive_ended(s, code, 0);
    return;
  }
  sock_complete(op, code, 0);
}

/* Every op of q that was never started ends with code, in order. */
static void end_all_unstarted(tcp_sock *s, queue *q, int64_t code) {
  qlink *l = q->head;
  while (l != NULL) {
    qlink *next = l->next;
    tcp_op *op = QUEUE_ENTRY(l, tcp_op, core_link);
    if (op->state == OP_QUEUED) end_unstarted(s, op, code);
    l = next;
  }
}

/* Starts the next read if none is in flight. No read holds a buffer while it
 * waits: the backend provides one only when bytes are there. */
static void pump_reads(tcp_sock *s) {
  while (!s->closing && s->connected && !queue_empty(&s->reads)) {
    tcp_op *op = QUEUE_ENTRY(s->reads.head, tcp_op, core_link);
    if (op->state != OP_QUEUED) return;
    /* A stream stopped while its receive waited behind other reads: it ends
     * here, and a tcp_read queued behind it (accepted once stopping) is next. */
    if (op->stream_part && s->stream_stopping) {
      end_unstarted(s, op, TCP_ERR_STOPPED);
      continue;
    }
    start(op);
    return;
  }
}

void sock_queue_read(tcp_sock *s, tcp_op *op) {
  attach(op, s);
  op->seq = s->reads_issued++;
  queue_push(&s->reads, &op->core_link);
  pump_reads(s);
}

bool sock_stream_stop_receive(tcp_sock *s) {
  ZT_ASSERT(s->stream_receiving && !queue_empty(&s->reads));
  tcp_op *op = QUEUE_ENTRY(s->reads.tail, tcp_op, core_link);
  ZT_ASSERT(op->stream_part);
  if (op->state != OP_QUEUED) {
    if (!op->cancel_requested) loop_cancel(op);
  } else if (&op->core_link == s->reads.head) {
    end_unstarted(s, op, TCP_ERR_STOPPED);
  } /* else pump_reads ends it when its turn comes */
  return true;
}

/* Starts the head of the write queue; a zero-length write completes here, in
 * its turn (the OS is never asked to send nothing). */
static void pump_writes(tcp_sock *s) {
  while (!s->closing && s->connected && !queue_empty(&s->writes)) {
    tcp_op *op = QUEUE_ENTRY(s->writes.head, tcp_op, core_link);
    if (op->state != OP_QUEUED) return;
    if (op->kind == OP_WRITE && op->len == 0) {
      end_unstarted(s, op, 0);
      continue;
    }
    start(op);
    return;
  }
}

void sock_add_read(tcp_sock *s, tcp_op *op) {
  ASSERT_LOCKED();
  ZT_ASSERT(op->kind == OP_READ && s->kind == SOCK_CONNECTION);
  ZT_ASSERT(s->stream == NULL || s->stream_stopping); /* tcp_read is refused while a stream runs */
  sock_queue_read(s, op);
}

void sock_add_write(tcp_sock *s, tcp_op *op) {
  ASSERT_LOCKED();
  ZT_ASSERT((op->kind == OP_WRITE || op->kind == OP_SHUTDOWN_WRITE) && s->kind == SOCK_CONNECTION);
  attach(op, s);
  op->seq = s->writes_issued++;
  queue_push(&s->writes, &op->core_link);
  pump_writes(s);
}

void sock_add_accept(tcp_sock *s, tcp_op *op) {
  ASSERT_LOCKED();
  ZT_ASSERT(op->kind == OP_ACCEPT && s->kind == SOCK_LISTENER);
  tcp_sock *listener = s->group != NULL ? s->group : s; /* a member accepts on its group */
  attach(op, listener);
  if (s->group != NULL) {
    op->member = s;
    op->dart_port = s->dart_port;
    s->member_accepts++;
  }
  queue_push(&listener->accepts, &op->core_link);
  start(op);
}

void sock_add_connect(tcp_sock *s, tcp_op *op) {
  ASSERT_LOCKED();
  ZT_ASSERT(op->kind == OP_CONNECT && s->kind == SOCK_CONNECTION && s->connect_op == NULL);
  attach(op, s);
  s->connected = false;
  s->connect_op = op;
  start(op);
  if (op->timeout_ms > 0) loop_deadline_arm(op);
}

static void request_release(tcp_sock *s) {
  ZT_ASSERT(s->closing && s->inflight == 0 && !s->release_requested);
  s->release_requested = true;
  loop_release(s);
}

static void cancel_if_started(tcp_op *op) {
  if (op->state != OP_QUEUED && !op->cancel_requested) loop_cancel(op);
}

static void cancel_started(queue *q) {
  for (qlink *l = q->head; l != NULL; l = l->next) cancel_if_started(QUEUE_ENTRY(l, tcp_op, core_link));
}

void sock_begin_close(tcp_sock *s, int32_t reason, tcp_op *close_op) {
  ASSERT_LOCKED();
  ZT_ASSERT(!s->closing);
  s->closing = true;
  s->close_reason = reason;
  s->close_op = close_op;
  handles_retire(s);
  if (s->group != NULL) {
    shared_member_closing(s); /* a member owns no OS socket */
    return;
  }
  shared_forget(s);
  /* dart:io removes the file when the listener closes; at once, so that the
   * path may be listened on again as soon as tcp_close returns. */
  os_unix_file_remove(s->unix_file);
  s->unix_file = NULL;
  /* An op queued behind one in flight ends only after it (sock_op_ended). */
  end_all_unstarted(s, &s->accepts, reason);
  if (queue_empty(&s->reads) || QUEUE_ENTRY(s->reads.head, tcp_op, core_link)->state == OP_QUEUED)
    end_all_unstarted(s, &s->reads, reason);
  if (queue_empty(&s->writes) || QUEUE_ENTRY(s->writes.head, tcp_op, core_link)->state == OP_QUEUED)
    end_all_unstarted(s, &s->writes, reason);
  cancel_started(&s->reads);
  cancel_started(&s->writes);
  cancel_started(&s->accepts);
  if (s->connect_op != NULL) cancel_if_started(s->connect_op);
  sock_stream_closing(s);
  if (s->inflight == 0) request_release(s);
}

/* The code an ended op completes with. */
static int64_t outcome(const tcp_op *op, const tcp_sock *s, int64_t *os_error) {
  if (op->kind == OP_ACCEPT && op->member != NULL && op->member->closing) {
    *os_error = 0;
    return op->member->close_reason;
  }
  if (s->closing) {
    *os_error = 0;
    return s->close_reason;
  }
  *os_error = op->os_error;
  if (op->ended_by_cancel && op->timed_out) {
    *os_error = OS_ERROR_TIMED_OUT;
    return TCP_ERR_TIMED_OUT;
  }
  if (op->ended_by_cancel && op->stream_part) {
    *os_error = 0;
    return TCP_ERR_STOPPED;
  }
  /* Only a close, a deadline or a stream's stop cancels an op; all are above. */
  ZT_ASSERT(!op->ended_by_cancel);
  return op->result;
}

/* A read's data (exactly result bytes, from the backend): up to
 * TCP_READ_COPY_BYTES_MAX it is posted as typed data the VM copies (and freed
 * after the post), above that handed to the VM as external typed data. */
static void settle_read_data(tcp_op *op, int64_t result) {
  if (op->quarantined) return; /* the OS may still write into the buffer: it stays with the op */
  ZT_ASSERT(result <= 0 || op->data != NULL);
  if (result <= 0) {
    if (op->data != op->inline_data) free(op->data);
    op->data = NULL;
  } else if (result <= TCP_READ_COPY_BYTES_MAX) {
    op->data_by_copy = true;
  }
}

/* An accept's result: the new connection's handle, or an error (fd closed). */
static int64_t settle_accept(tcp_op *op, tcp_sock *listener, int64_t result) {
  os_socket fd = op->accepted_fd;
  op->accepted_fd = OS_SOCKET_INVALID;
  if (result < 0 || listener->closing) {
    if (fd != OS_SOCKET_INVALID) os_socket_close(fd);
    return result;
  }
  ZT_ASSERT(fd != OS_SOCKET_INVALID);
  int32_t error = TCP_OK;
  /* The connection's completions go where the accept's went (a shared
   * listener's member may be another isolate than the group's first). */
  tcp_sock *s = sock_create(SOCK_CONNECTION, op->dart_port, fd, listener->family, &error);
  if (s == NULL) {
    os_socket_close(fd);
    return error;
  }
  return s->handle;
}

static void settle_connect(tcp_op *op, tcp_sock *s, int64_t result) {
  ZT_ASSERT(s->connect_op == op);
  s->connect_op = NULL;
  loop_deadline_disarm(op);
  if (s->closing) return;
  if (result == 0) {
    s->connected = true;
    return;
  }
  end_all_unstarted(s, &s->reads, TCP_ERR_NOT_CONNECTED);
  end_all_unstarted(s, &s->writes, TCP_ERR_NOT_CONNECTED);
}

void sock_op_ended(tcp_op *op) {
  ASSERT_LOCKED();
  tcp_sock *s = op->sock;
  const op_kind kind = op->kind;
  ZT_ASSERT(op->state == OP_SUBMITTED || (op->state == OP_STARTED && op->ended_by_cancel));
  ZT_ASSERT(s->inflight > 0);
  s->inflight--;
  int64_t os_error = 0;
  int64_t result = outcome(op, s, &os_error);
  queue *q = queue_of(s, op->kind);
  if (q != NULL) queue_remove(q, &op->core_link);
  note_ended_in_order(s, op);
  if (op->kind == OP_READ) settle_read_data(op, result);
  if (op->kind == OP_ACCEPT) result = settle_accept(op, s, result);
  if (op->kind == OP_CONNECT) settle_connect(op, s, result);
  if (op->stream_part) {
    if (result > 0) sock_complete(op, result, 0); /* a DATA completion of the stream */
    else discard(op);
    sock_stream_receive_ended(s, result, os_error);
  } else {
    tcp_sock *member = op->kind == OP_ACCEPT ? op->member : NULL;
    sock_complete(op, result, result < 0 ? os_error : 0);
    if (member != NULL) shared_member_accept_ended(member);
  }
  if (!s->closing) {
    pump_reads(s);
    pump_writes(s);
    return;
  }
  /* Closing: what waited behind this op ends now, in order. (kind, not
   * op->kind: a stream's empty receive was freed above.) */
  if (kind == OP_READ) end_all_unstarted(s, &s->reads, s->close_reason);
  if (kind == OP_WRITE || kind == OP_SHUTDOWN_WRITE) end_all_unstarted(s, &s->writes, s->close_reason);
  if (s->inflight == 0 && !s->release_requested) request_release(s);
}

void sock_released(tcp_sock *s) {
  ASSERT_LOCKED();
  ZT_ASSERT(s->closing && s->release_requested && s->inflight == 0);
  ZT_ASSERT(queue_empty(&s->reads) && queue_empty(&s->writes) && queue_empty(&s->accepts));
  ZT_ASSERT(s->connect_op == NULL && s->stream == NULL && s->unix_file == NULL);
  ZT_ASSERT(s->group_members == 0 && !s->in_group_table); /* a group outlives its members */
  ZT_ASSERT(s->reads_ended == s->reads_issued && s->writes_ended == s->writes_issued);
  if (s->close_op != NULL) sock_complete(s->close_op, 0, 0);
  handles_remove(s);
  slab_free(&sock_records, s);
}
