/* stream.c -- read streams (tcp.h "streaming reads"): the core re-arms the
 * receive itself, one receive at a time through the socket's ordinary read
 * queue, as long as the window allows. Backends see ordinary reads; a stream
 * costs no Dart -> engine round trip per message.
 *
 * Every function: engine lock held. */
#include "engine.h"
#include "sock.h"

/* One receive asks for at most this much (and never more than the window
 * has room for). */
#define STREAM_RECEIVE_BYTES_MAX (64 * 1024)

static int64_t room(const tcp_sock *s) { return s->stream_acked + s->stream_window - s->stream_posted; }

/* The stream's final completion; the read side is free again. */
static void finish(tcp_sock *s, int64_t code, int64_t os_error) {
  ZT_ASSERT(s->stream != NULL && !s->stream_receiving && code <= 0);
  tcp_op *anchor = s->stream;
  s->stream = NULL;
  s->stream_stopping = false;
  sock_complete(anchor, code, code < 0 ? os_error : 0);
}

/* Queues the next receive when none is queued and the window has room. */
static void receive_next(tcp_sock *s) {
  if (s->stream == NULL || s->stream_receiving || s->stream_stopping || s->closing) return;
  int64_t bytes = room(s);
  if (bytes <= 0) return; /* the caller has not acknowledged: backpressure */
  tcp_op *op = op_new(OP_READ, s->stream->request_id);
  if (op == NULL) {
    finish(s, TCP_ERR_NO_MEMORY, 0);
    return;
  }
  op->stream_part = true;
  op->len = (size_t)(bytes < STREAM_RECEIVE_BYTES_MAX ? bytes : STREAM_RECEIVE_BYTES_MAX);
  s->stream_receiving = true;
  sock_queue_read(s, op);
}

void sock_stream_start(tcp_sock *s, tcp_op *anchor, int64_t window_bytes) {
  ASSERT_LOCKED();
  ZT_ASSERT(s->stream == NULL && !s->closing && anchor->kind == OP_READ_STREAM);
  ZT_ASSERT(window_bytes > 0);
  anchor->sock = s;
  anchor->dart_port = s->dart_port;
  s->stream = anchor;
  s->stream_window = window_bytes;
  s->stream_posted = s->stream_acked = 0;
  s->stream_stopping = false;
  receive_next(s);
}

int32_t sock_stream_ack(tcp_sock *s, int64_t bytes) {
  ASSERT_LOCKED();
  if (s->stream == NULL || s->stream_stopping) return TCP_ERR_INVALID_ARGUMENT;
  if (bytes <= 0 || bytes > s->stream_posted - s->stream_acked) return TCP_ERR_INVALID_ARGUMENT;
  s->stream_acked += bytes;
  receive_next(s);
  return TCP_OK;
}

int32_t sock_stream_stop(tcp_sock *s) {
  ASSERT_LOCKED();
  if (s->stream == NULL || s->stream_stopping) return TCP_ERR_INVALID_ARGUMENT;
  s->stream_stopping = true;
  if (s->stream_receiving) sock_stream_stop_receive(s);
  else finish(s, TCP_ERR_STOPPED, 0);
  return TCP_OK;
}

void sock_stream_receive_ended(tcp_sock *s, int64_t result, int64_t os_error) {
  ASSERT_LOCKED();
  ZT_ASSERT(s->stream != NULL && s->stream_receiving);
  s->stream_receiving = false;
  if (result > 0) {
    s->stream_posted += result;
    ZT_ASSERT(s->stream_posted - s->stream_acked <= s->stream_window); /* never past the window */
  }
  if (s->closing) finish(s, s->close_reason, 0);
  else if (result > 0 && s->stream_stopping) finish(s, TCP_ERR_STOPPED, 0);
  else if (result > 0) receive_next(s);
  else finish(s, result, os_error); /* end of stream, an error, or the stop's cancel */
}

void sock_stream_closing(tcp_sock *s) {
  ASSERT_LOCKED();
  ZT_ASSERT(s->closing);
  /* With a receive queued or in flight, its end finishes the stream. */
  if (s->stream != NULL && !s->stream_receiving) finish(s, s->close_reason, 0);
}
