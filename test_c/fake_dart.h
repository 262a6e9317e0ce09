/*
 * fake_dart.h -- a stand-in for the Dart VM, for C programs that drive the
 * zig_tcp engine without Dart (the C suite, the demo, the benchmark).
 *
 * It provides what the engine needs from the VM: a DL API table
 * (dart_api_dl_data, major version 2) whose only entry is Dart_PostCObject,
 * and "native ports" that receive the posted messages.
 *
 * Posting behaves like the real VM:
 *   - the message is deep-copied during the call (the caller may free its
 *     dart_cobject structs as soon as the call returns);
 *   - posting to a closed or unknown port returns false and takes nothing:
 *     external typed data stays owned by the caller;
 *   - on success, external typed data belongs to the fake VM, which runs its
 *     finalizer -- callback(NULL, peer) -- once the program releases the
 *     completion (fake_dart_release), or when the port is closed / the fake VM
 *     is reset with the completion still queued.
 *
 * Messages are expected to be zig_tcp completion batches: a flat array of 3*N
 * objects [request_id int64, result int64, payload] (see tcp.h). Each message
 * is split into N completions queued on the port in order; the port also
 * counts messages and completions, so batching can be observed. A message of
 * any other shape is counted as malformed (fake_dart_stats), its external data
 * is finalized at once, and nothing is queued.
 *
 * All functions are thread-safe. Plain C11; POSIX threads or Win32 SRW locks.
 */
#ifndef ZIG_TCP_FAKE_DART_H
#define ZIG_TCP_FAKE_DART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dart_api_dl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fd_payload_kind {
  FD_PAYLOAD_NULL = 0, /* Dart null */
  FD_PAYLOAD_INT,      /* int32 / int64: payload_int */
  FD_PAYLOAD_BYTES,    /* typed data: data / len (see payload_type) */
  FD_PAYLOAD_OTHER,    /* anything else (bool, string, ...): not used by zig_tcp */
} fd_payload_kind;

typedef struct fd_completion {
  int64_t port;
  int64_t request_id;
  int64_t result;
  fd_payload_kind payload_kind;
  dart_cobject_type payload_type;  /* the Dart_CObject type the payload had */
  dart_typed_data_type data_type;  /* FD_PAYLOAD_BYTES: element type */
  int64_t payload_int;             /* FD_PAYLOAD_INT */
  uint8_t *data;                   /* FD_PAYLOAD_BYTES: the bytes (owned by the fake VM) */
  size_t len;                      /* FD_PAYLOAD_BYTES: length in bytes */
  uint64_t seq;                    /* arrival order of completions, across all ports, from 1 */
  uint64_t message_seq;            /* which message carried it (global count, from 1) */
  uint32_t index_in_message;       /* 0..triples-1 within that message */
  uint32_t triples_in_message;     /* N of that message */
  /* private: how to free data */
  bool external_;
  void *peer_;
  dart_handle_finalizer callback_;
} fd_completion;

typedef struct fd_port_stats {
  uint64_t messages;   /* accepted messages posted to this port */
  uint64_t triples;    /* completions they carried */
  uint64_t queued;     /* completions still waiting to be taken */
  bool open;
} fd_port_stats;

typedef struct fd_stats {
  uint64_t posts;          /* Dart_PostCObject calls that returned true */
  uint64_t posts_refused;  /* calls that returned false (port closed / unknown) */
  uint64_t malformed;      /* accepted messages that were not 3*N completion arrays */
  uint64_t finalizers_run; /* external typed data finalizers run by the fake VM */
  uint64_t external_live;  /* external typed data owned by the fake VM, not yet finalized */
} fd_stats;

/* The DL API data to pass to tcp_init (a static table; no setup needed). */
void *fake_dart_api_data(void);

/* The fake Dart_PostCObject itself, for programs building their own tables. */
bool fake_dart_post_cobject(dart_port_id port, dart_cobject *message);

/* Opens a new native port (ids are never reused within a process). */
int64_t fake_dart_open_port(void);

/* Closes a port: later posts to it are refused; completions still queued are
 * dropped and their external data finalized. Waiters on it return false.
 * Closing an unknown or closed port does nothing. */
void fake_dart_close_port(int64_t port);

/* Takes the next completion of port into *out. Waits up to timeout_ms
 * (0: do not wait; < 0: no limit). Returns false on timeout or if the port is
 * closed/unknown. A BYTES payload in *out must be given back with
 * fake_dart_release. */
bool fake_dart_next(int64_t port, int64_t timeout_ms, fd_completion *out);

/* Like fake_dart_next, but takes up to max completions already queued once at
 * least one is there. Returns how many (0 on timeout / closed port). */
size_t fake_dart_next_batch(int64_t port, int64_t timeout_ms, fd_completion *out, size_t max);

/* Frees the payload of a completion taken from a port (runs the finalizer of
 * external typed data). Safe to call twice and on a zeroed struct. */
void fake_dart_release(fd_completion *c);

/* Counters of one port. Returns false for an unknown port. */
bool fake_dart_port_stats(int64_t port, fd_port_stats *out);

/* Global counters (since start or the last fake_dart_reset). */
void fake_dart_stats(fd_stats *out);

/* A description of the last malformed message ("" if none). Static storage,
 * overwritten by the next malformed message. */
const char *fake_dart_last_malformed(void);

/* Waits until the global posts_refused counter reaches at_least. Returns false
 * on timeout (timeout_ms as for fake_dart_next). */
bool fake_dart_wait_refused(uint64_t at_least, int64_t timeout_ms);

/* Closes every port (finalizing queued data) and zeroes the global counters.
 * Only call when no engine is posting (e.g. after tcp_shutdown). */
void fake_dart_reset(void);

#ifdef __cplusplus
}
#endif

#endif /* ZIG_TCP_FAKE_DART_H */
