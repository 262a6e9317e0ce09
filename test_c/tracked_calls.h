/*
 * tracked_calls.h -- engine calls for tests: each call must be accepted by the
 * engine (else the test fails) and its request is registered with the tracker
 * (tracker.h); plus the usual compositions (a connected pair, read exactly n
 * bytes, write and wait, close and wait).
 */
#ifndef ZIG_TCP_TRACKED_CALLS_H
#define ZIG_TCP_TRACKED_CALLS_H

#include <stddef.h>
#include <stdint.h>

#include "tracker.h"

extern const uint8_t H_LOOPBACK4[4];
extern const uint8_t H_LOOPBACK6[16];

int64_t h_listen(int64_t port, const uint8_t *addr, int32_t addr_len, int32_t backlog);
/* A listener on tcp_port (0: any) with a tcp_listen `shared` mode. */
int64_t h_listen_mode(int64_t port, const uint8_t *addr, int32_t addr_len, int32_t tcp_port, int32_t mode);
int64_t h_accept(int64_t listener);
/* Awaits an accept; fails unless it produced a handle, which it returns. */
int64_t h_accepted(int64_t accept_id);
/* Returns the request id; the new handle goes to *handle. */
int64_t h_connect(int64_t port, const uint8_t *addr, int32_t addr_len, int32_t tcp_port,
                  int64_t timeout_ms, int64_t *handle);
int64_t h_read(int64_t conn, int64_t max);
/* tcp_read_stream with a window; registered as a stream (tracker.h). */
int64_t h_stream(int64_t conn, int64_t window);
int64_t h_write(int64_t conn, const void *bytes, int64_t len);
int64_t h_shutw(int64_t conn);
int64_t h_close(int64_t handle);
/* Waits and returns the result. */
int64_t h_result(int64_t id);

/* A connected pair on loopback of the family of addr (4 or 16 bytes):
 * *client from tcp_connect on client_port, *server accepted on the listener's
 * port. Returns the listener. Fails the test on any error. */
int64_t h_pair(int64_t listen_port, int64_t client_port, const uint8_t *addr, int32_t addr_len,
               int64_t *client, int64_t *server);
/* Reads exactly n bytes into buf (several reads if needed). */
void h_read_exact(int64_t conn, uint8_t *buf, size_t n);
/* Writes n bytes and waits for the completion. */
void h_write_all(int64_t conn, const void *bytes, size_t n);
/* Closes and waits for the close to complete with 0. */
void h_close_wait(int64_t handle);
/* A read that must complete with 0 (end of stream). */
void h_expect_eof(int64_t conn);

#endif /* ZIG_TCP_TRACKED_CALLS_H */
