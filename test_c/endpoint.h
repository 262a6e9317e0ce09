/*
 * endpoint.h -- one test body, two transports. The runner runs each
 * transport-neutral test (test_list.h, XT) once over TCP and once over Unix
 * domain sockets (names suffixed _tcp / _unix) and sets h_transport_now; the
 * test asks this header for "a fresh endpoint", listens on it, connects to it
 * and makes raw peers of the right family, and never names an address.
 *
 * TCP endpoints are 127.0.0.1 with an ephemeral port. Unix endpoints are new
 * paths in a temporary directory made once per run (mkdtemp under TMPDIR or
 * /tmp, short enough for every sun_path) and removed when the run ends; at the
 * end of each test every file left in it is removed (the engine removes its
 * listeners' files itself; tests that made a stale file leave it to this).
 */
#ifndef ZIG_TCP_ENDPOINT_H
#define ZIG_TCP_ENDPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "raw_socket.h"
#include "runner.h"
#include "tcp.h"

typedef struct h_endpoint {
  h_transport transport;
  int32_t port;     /* TCP: 127.0.0.1:port (0 in a fresh endpoint: any) */
  int32_t path_len; /* Unix: path_len bytes of path */
  uint8_t path[TCP_UNIX_PATH_BYTES_MAX + 1]; /* NUL-terminated too (for the OS calls of tests) */
} h_endpoint;

/* Skips the test when this engine has no Unix sockets (the reason names
 * why). Every Unix helper below calls it. */
void h_require_unix(void);
/* A fresh endpoint of the current transport (Unix: a new path, no file yet). */
h_endpoint h_fresh_endpoint(void);
/* A fresh Unix endpoint, whatever the current transport. */
h_endpoint h_fresh_unix_endpoint(void);
/* The endpoint listener listens on (TCP: with its real port). */
h_endpoint h_endpoint_of(int64_t listener);

/* Untracked calls for threads and error tests: what tcp_listen(_unix) /
 * tcp_connect(_unix) return. mode: a tcp_listen `shared` value. */
int64_t h_ep_listen(int64_t port, const h_endpoint *ep, int32_t backlog, int32_t mode);
int64_t h_ep_connect(int64_t port, int64_t request_id, const h_endpoint *ep, int64_t timeout_ms);

/* Tracked (tracked_calls.h): a listener on ep / on a fresh endpoint of the
 * current transport; a connect to ep (returns the request id). */
int64_t h_listen_at(int64_t port, const h_endpoint *ep, int32_t backlog, int32_t mode);
int64_t h_listen_any(int64_t port, int32_t backlog);
int64_t h_connect_to(int64_t port, const h_endpoint *ep, int64_t timeout_ms, int64_t *handle);
/* h_pair over the current transport. Returns the listener. */
int64_t h_pair_any(int64_t listen_port, int64_t client_port, int64_t *client, int64_t *server);

/* A blocking raw OS connection to ep (fails the test if there is none). */
raw_sock h_raw_connect(const h_endpoint *ep);
/* What a connect to an endpoint nobody listens on any more completes with:
 * TCP: refused; Unix: the file went with its listener (tcp.h). */
int32_t h_gone_endpoint_error(void);

#endif /* ZIG_TCP_ENDPOINT_H */
