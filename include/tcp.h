/*
 * tcp.h -- the whole public contract of the zig_tcp engine.
 *
 * One C API, three backends (io_uring on Linux with a libuv fallback, IOCP on
 * Windows, libuv elsewhere). tcp_backend_name() tells which one runs.
 *
 * THREADS
 *   The engine owns one background I/O thread per process. Every function in
 *   this header is thread-safe: any thread may call any function at any time
 *   (Dart isolates call from whatever thread runs them). Nothing here blocks on
 *   the network; only tcp_shutdown() waits (for the I/O thread to drain).
 *
 * TWO KINDS OF FUNCTION
 *   Synchronous: tcp_init, tcp_shutdown, tcp_backend_name, tcp_strerror,
 *   tcp_last_os_error, tcp_listen and tcp_listen_unix (bind + listen happen in
 *   the call), and the accessors (addresses, paths, ports, keepAlive, noDelay).
 *   They return their result.
 *
 *   Asynchronous: tcp_connect, tcp_connect_unix, tcp_accept, tcp_read, tcp_read_stream,
 *   tcp_write, tcp_shutdown_write, tcp_close. Each takes a caller-chosen
 *   request_id. (tcp_read_stream_ack and tcp_read_stream_stop are
 *   synchronous.)
 *     - If the call returns a negative error code, the request was refused and
 *       NO message will ever be posted for it.
 *     - Otherwise (0, or a new handle for tcp_connect) exactly ONE completion
 *       will be posted for request_id -- also when the socket is closed or the
 *       engine shuts down before the operation finishes. (A read stream posts
 *       DATA completions and then exactly one FINAL one: see "streaming
 *       reads".)
 *   Completions are never posted from inside the call that started the
 *   operation; they are always posted by the I/O thread. So every function may
 *   be called as a Dart "leaf" call.
 *
 * COMPLETION MESSAGES
 *   A completion is delivered with Dart_PostCObject to the native port that was
 *   given when the handle was made (tcp_listen / tcp_connect; accepted sockets
 *   inherit the listener's port). A message is a flat array of 3*N objects,
 *   N >= 1 triples back to back:
 *       [request_id_0, result_0, payload_0, request_id_1, result_1, payload_1, ...]
 *   Completions for the same port found in one pass of the I/O thread travel in
 *   one message. Within a port, completions are in the order the engine
 *   finished them; a close's completion always follows the completions of the
 *   operations it cancelled.
 *     request_id : int64, as given by the caller.
 *     result     : int64. >= 0 on success, a negative TCP_ERR_* code on error.
 *     payload    : on error, the OS error code (int64: errno on POSIX, the
 *                  WSA/Win32 code on Windows; 0 when the error did not come from
 *                  the OS). On a successful read with result > 0, a Uint8List
 *                  of exactly `result` bytes: up to TCP_READ_COPY_BYTES_MAX as
 *                  typed data (the VM copies it; the engine's read buffer is
 *                  reused at once), above that as external typed data (no
 *                  copy; the VM owns the buffer and frees it with its
 *                  finalizer). Otherwise null.
 *   Results per operation:
 *     connect        : 0 when connected.
 *     accept         : the new connection's handle (> 0).
 *     read           : > 0 bytes read (payload holds them); 0 = end of stream
 *                      (the peer shut down its write side); < 0 error.
 *     write          : the number of bytes written = bytes_len (always all of
 *                      them; short writes are resubmitted inside the engine).
 *     shutdown_write : 0 once every earlier write finished and FIN was sent.
 *     close          : 0 once every pending operation has completed and the OS
 *                      socket is closed. The handle is invalid from the moment
 *                      tcp_close returns 0.
 *   If the port is gone (Dart_PostCObject returns false), the message and any
 *   read data in it are freed by the engine; nothing leaks.
 *
 * ORDERING
 *   Reads on one socket are served one at a time in call order; writes and
 *   shutdown_write on one socket likewise (a later write never interleaves with
 *   an earlier one), and their completions arrive in call order, also when a
 *   close cancels them. Reads and writes run concurrently with each other.
 *
 * HANDLES
 *   A handle is a positive 64-bit id: a table slot plus a generation that
 *   changes every time the slot is reused. A closed, stale, made-up or foreign
 *   handle is detected and rejected with TCP_ERR_CLOSED (it was ours and has been
 *   closed) or TCP_ERR_BAD_HANDLE (never issued, or of the wrong kind); it can
 *   never reach another socket. There is no fixed cap on the number of handles.
 *
 * BUFFERS
 *   Every pointer argument is borrowed only for the duration of the call:
 *   tcp_write copies the bytes before it returns, so the caller may reuse or
 *   free its buffer at once. Read data is allocated by the engine and handed
 *   to the Dart VM in the completion message.
 *
 * ERRORS
 *   Every failure is a negative TCP_ERR_* code; tcp_strerror() names it. When a
 *   synchronous call fails because of the OS, tcp_last_os_error() returns the OS
 *   code on the calling thread (0 otherwise) until that thread's next call.
 *
 *   TCP_ERR_BACKEND_FAILED: the backend's OS mechanism failed for good -- with
 *   io_uring, the kernel dropped completions (EBADR, or a growing CQ overflow
 *   counter) or the ring itself broke (EBADFD, ENXIO, ...). Every operation in
 *   flight completes with it (payload: that OS code) and so does every later
 *   one; closes and tcp_shutdown still complete, nothing hangs. The memory of
 *   operations the kernel may still write into is kept for the life of the
 *   process. tcp_shutdown + tcp_init starts a fresh engine.
 */
#ifndef ZIG_TCP_H
#define ZIG_TCP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define TCP_API __declspec(dllexport)
#else
#define TCP_API __attribute__((visibility("default")))
#endif

/* ---- error codes (portable across backends) ---------------------------- */
/* The one error table: name, value, description. The constants below,
 * tcp_strerror's texts and the test suite's names all come from it; the Dart
 * bindings' constants are checked against it (tools/check_dart.py). */
#define TCP_ERRORS(X)                                                                               \
  X(TCP_OK, 0, "success")                                                                           \
  X(TCP_ERR_INVALID_ARGUMENT, -1, "invalid argument (null buffer, bad length, address or port)")   \
  X(TCP_ERR_BAD_HANDLE, -2, "not a handle of this engine, or the wrong kind of handle")            \
  X(TCP_ERR_CLOSED, -3, "socket closed")                         /* also: op cancelled by close */ \
  X(TCP_ERR_NOT_INITIALIZED, -4, "engine not initialized (call tcp_init first)")                   \
  X(TCP_ERR_SHUTDOWN, -5, "engine shut down")           /* the engine shut down before the op finished */ \
  X(TCP_ERR_NO_MEMORY, -6, "out of memory")                                                         \
  X(TCP_ERR_UNSUPPORTED, -7, "not supported by this backend or system")                            \
  X(TCP_ERR_DART_API, -8, "Dart DL API data missing or of an incompatible version")                \
  X(TCP_ERR_BACKEND_FAILED, -9, "the I/O backend failed irrecoverably (restart the engine)")       \
  X(TCP_ERR_BUSY, -10, "a read stream runs on this connection (tcp_read and a second stream wait for its end)") \
  X(TCP_ERR_STOPPED, -11, "read stream stopped by tcp_read_stream_stop")                            \
  X(TCP_ERR_NOT_TCP, -12, "a TCP/IP-only call on a Unix domain socket (noDelay, keepAlive, IP address or port)") \
  X(TCP_ERR_ADDRESS_IN_USE, -20, "address already in use")                                         \
  X(TCP_ERR_ADDRESS_NOT_AVAILABLE, -21, "address not available")  /* also no ephemeral port left: */ \
                                     /* EADDRNOTAVAIL; Windows: WSAENOBUFS from a bind or connect */ \
  X(TCP_ERR_CONNECTION_REFUSED, -22, "connection refused")                                         \
  X(TCP_ERR_CONNECTION_RESET, -23, "connection reset by peer") /* also Windows' WSAECONNABORTED: */ \
                    /* the connection died under the program (libuv maps it so too; see errors.c) */ \
  X(TCP_ERR_CONNECTION_ABORTED, -24, "connection aborted") /* Linux ECONNABORTED: killed locally */ \
  X(TCP_ERR_TIMED_OUT, -25, "timed out")     /* a connect deadline, or the OS gave up on the peer */ \
                 /* (retransmissions, keep-alive: ETIMEDOUT; Windows WSAETIMEDOUT, WSAENETRESET) */ \
  X(TCP_ERR_NETWORK_UNREACHABLE, -26, "network unreachable")                                       \
  X(TCP_ERR_HOST_UNREACHABLE, -27, "host unreachable")                                             \
  X(TCP_ERR_BROKEN_PIPE, -28, "broken pipe (connection shut down for writing)")                    \
  X(TCP_ERR_ACCESS_DENIED, -29, "permission denied")                                               \
  X(TCP_ERR_TOO_MANY_FILES, -30, "too many open files")                 /* EMFILE / ENFILE / WSAEMFILE */ \
  X(TCP_ERR_NOT_CONNECTED, -31, "socket not connected")                                            \
  X(TCP_ERR_ADDRESS_FAMILY, -32, "address family not supported")     /* e.g. no IPv6 on this host */ \
  X(TCP_ERR_PATH_TOO_LONG, -33, "Unix socket path longer than this system allows (sun_path)")      \
  X(TCP_ERR_OS, -99, "operating system error (see the OS error code)")

enum tcp_error {
#define TCP_ERROR_ENUM_(name, value, text) name = value,
  TCP_ERRORS(TCP_ERROR_ENUM_)
#undef TCP_ERROR_ENUM_
};

/* Largest bytes_max for one tcp_read and bytes_len for one tcp_write. */
#define TCP_READ_BYTES_MAX (64 * 1024 * 1024)
#define TCP_WRITE_BYTES_MAX (1024 * 1024 * 1024)
/* A read of at most this many bytes arrives as typed data (copied into the
 * isolate's heap); a larger one as external typed data (no copy). */
#define TCP_READ_COPY_BYTES_MAX 4096

/* ---- engine lifetime ----------------------------------------------------- */

/* Starts the engine. dart_api_dl_data is what Dart's
 * NativeApi.initializeApiDLData returns; the engine resolves Dart_PostCObject
 * from it. Idempotent and thread-safe: later calls while the engine runs return
 * TCP_OK and ignore their argument. After tcp_shutdown, tcp_init starts a fresh
 * engine (handles from before stay invalid). Returns TCP_OK or a TCP_ERR_*. */
TCP_API int32_t tcp_init(void *dart_api_dl_data);

/* Stops the engine: every open socket is closed, every pending operation
 * completes with TCP_ERR_SHUTDOWN (every pending close with TCP_OK), all those
 * messages are posted, then the I/O thread exits. Blocks until done. Must not
 * be called from a completion handler running on the I/O thread (there is none
 * in Dart). Returns TCP_OK, or TCP_ERR_NOT_INITIALIZED. */
TCP_API int32_t tcp_shutdown(void);

/* "io_uring", "uv" or "iocp" while the engine runs; NULL before tcp_init.
 * The returned string is static. */
TCP_API const char *tcp_backend_name(void);

/* A static, human-readable description of a TCP_ERR_* code (never NULL). */
TCP_API const char *tcp_strerror(int64_t code);

/* The OS error code behind the last failed synchronous call on this thread,
 * 0 if it did not come from the OS. */
TCP_API int32_t tcp_last_os_error(void);

/* ---- listeners ----------------------------------------------------------- */

/* Creates a listening socket, synchronously. addr is 4 (IPv4) or 16 (IPv6)
 * address bytes in network order, or 20: 16 IPv6 bytes followed by the IPv6
 * scope id as a uint32 in host byte order (the interface index of a link-local
 * address, e.g. if_nametoindex("eth0") for fe80::1%eth0; dart:io's
 * InternetAddress keeps it after the '%'); port 0 picks an ephemeral port (read it back
 * with tcp_local_port). backlog <= 0 means the OS default. v6_only applies to
 * IPv6 addresses. Completions of accepts go to dart_port. shared is one of:
 *   0                      an exclusive listener: another bind of the same
 *                          address and port fails with TCP_ERR_ADDRESS_IN_USE.
 *   TCP_LISTEN_SHARED      dart:io's `shared: true`: listeners of this process
 *                          (several isolates, several ports) on the same
 *                          address, port and v6_only share ONE OS listening
 *                          socket, and its connections go to whichever of them
 *                          has an accept waiting; each connection's
 *                          completions go to the port of the listener whose
 *                          accept took it. Closing one leaves the others
 *                          working; the OS socket closes with the last. Another
 *                          process cannot join (no SO_REUSEPORT). Every backend,
 *                          Windows included.
 *   TCP_LISTEN_REUSE_PORT  SO_REUSEPORT (Linux, macOS, BSD): separate OS
 *                          sockets, which other processes of the same user may
 *                          bind too; the kernel spreads connections. Windows:
 *                          TCP_ERR_UNSUPPORTED.
 * Any other value: TCP_ERR_INVALID_ARGUMENT.
 *
 * RE-LISTENING on a fixed port (a restarted server) succeeds on every OS once
 * no other listener holds the port, also while connections accepted by an old
 * listener on it are open or in TIME_WAIT: Linux, macOS and the BSDs through
 * SO_REUSEADDR (which never lets two listeners share a port there), Windows
 * with no option at all (its default since Windows 2000; SO_EXCLUSIVEADDRUSE
 * is not set because it refuses that bind until the old connections are gone,
 * which is also why libuv and Go set nothing). A second listener on a port
 * that is still listened on gets TCP_ERR_ADDRESS_IN_USE on every OS. One
 * Windows rule remains: another program of the same user may listen on a
 * specific address with a port this listener holds on the wildcard address,
 * and take the connections to that address (Microsoft: "Using SO_REUSEADDR
 * and SO_EXCLUSIVEADDRUSE").
 * Returns the listener handle (> 0) or a TCP_ERR_*. */
TCP_API int64_t tcp_listen(int64_t dart_port, const uint8_t *addr, int32_t addr_len, int32_t port,
                           int32_t backlog, int32_t v6_only, int32_t shared);

#define TCP_LISTEN_SHARED 1
#define TCP_LISTEN_REUSE_PORT 2

/* Accepts one connection. Completion result: the new connection's handle,
 * whose completions go to the listener's port. */
TCP_API int32_t tcp_accept(int64_t listener, int64_t request_id);

/* ---- connections ---------------------------------------------------------- */

/* Starts connecting to addr:port (addr as for tcp_listen, scope id included:
 * a link-local destination needs one). source_addr (likewise) may be
 * NULL (source_addr_len 0); with source_port 0 the OS picks the source port.
 * timeout_ms <= 0 means no timeout (the OS's own limit applies). The deadline
 * is the engine's own, the same on every backend: when it passes, the connect
 * is cancelled in the OS, and completes with TCP_ERR_TIMED_OUT (payload:
 * ETIMEDOUT / WSAETIMEDOUT) if it then ends cancelled; a connect that
 * succeeds or fails on its own at that moment reports its own result. Returns the new handle (> 0) at
 * once -- it may be closed while the connect is pending -- and the connect
 * completes later with 0 or an error. After a failed connect the handle must
 * still be closed. Completions go to dart_port.
 *
 * The same on every OS:
 *   - The unspecified address (0.0.0.0, ::, ::ffff:0.0.0.0) connects to this
 *     host (Linux picks its loopback address, the BSDs a local one; Windows
 *     refuses it, so there the engine converts it to loopback, as libuv does).
 *   - An IPv4-mapped address (::ffff:a.b.c.d) reaches the IPv4 host: on
 *     Windows the engine clears IPV6_V6ONLY on connect sockets; elsewhere the
 *     OS default decides (Linux and macOS allow it, FreeBSD's default
 *     net.inet6.ip6.v6only=1 does not).
 *   - A connect to a loopback port nobody listens on fails with
 *     TCP_ERR_CONNECTION_REFUSED at once (on Windows from 10 1709 on; older
 *     Windows retransmits the SYN for about 2 s first). */
TCP_API int64_t tcp_connect(int64_t dart_port, int64_t request_id, const uint8_t *addr,
                            int32_t addr_len, int32_t port, const uint8_t *source_addr,
                            int32_t source_addr_len, int32_t source_port, int64_t timeout_ms);

/* Reads up to bytes_max (1..TCP_READ_BYTES_MAX) bytes. */
TCP_API int32_t tcp_read(int64_t connection, int64_t request_id, int64_t bytes_max);

/* ---- streaming reads --------------------------------------------------------
 * A read stream receives continuously, without a tcp_read per message: the
 * engine re-arms the receive itself, on its own thread, as long as the
 * caller's window allows. This is how a Dart Stream<Uint8List> runs: a paused
 * subscription stops acknowledging, the window fills, the engine stops
 * receiving, the kernel's buffers fill and TCP's own window closes on the
 * sender -- backpressure end to end, and nothing buffered without bound.
 *
 * MESSAGES. A stream's request_id completes many times, unlike every other
 * request: zero or more DATA completions (result > 0, payload: exactly result
 * bytes, as for tcp_read), then exactly ONE FINAL completion (result <= 0):
 *     0                  end of stream (the peer shut down its write side)
 *     TCP_ERR_STOPPED    tcp_read_stream_stop
 *     TCP_ERR_CLOSED     tcp_close (the final comes before the close's completion)
 *     TCP_ERR_SHUTDOWN   tcp_shutdown
 *     TCP_ERR_NOT_CONNECTED  the connect it waited for failed
 *     any other error    the connection failed (payload: the OS code)
 * DATA completions come in stream order, the final after all of them. Bytes
 * never go past the window: at any moment the bytes posted minus the bytes
 * acknowledged are at most window_bytes.
 *
 * ORDER with one-shot reads: the stream takes the read side. Reads asked for
 * before it complete first (the stream starts after them); while it runs,
 * tcp_read and a second tcp_read_stream are refused with TCP_ERR_BUSY. Once
 * tcp_read_stream_stop has been called, tcp_read is accepted again and queues
 * behind the stream's last receive: no byte is lost or reordered (a receive
 * that races the stop delivers its bytes as a last DATA completion). Writes
 * are unaffected. */

/* Starts a read stream on a connection (also one still connecting) with a
 * window of window_bytes (1..TCP_READ_BYTES_MAX): the engine posts up to that
 * many bytes before the first tcp_read_stream_ack. Returns TCP_OK, or refuses
 * (TCP_ERR_BUSY when a stream runs; the usual codes otherwise). */
TCP_API int32_t tcp_read_stream(int64_t connection, int64_t request_id, int64_t window_bytes);

/* The caller consumed bytes of the stream (1 .. bytes posted and not yet
 * acknowledged): the window moves on by that much and receiving resumes if it
 * had stopped. Synchronous. TCP_ERR_INVALID_ARGUMENT for more than was posted,
 * or when no stream runs. */
TCP_API int32_t tcp_read_stream_ack(int64_t connection, int64_t bytes);

/* Ends the stream: its final completion (TCP_ERR_STOPPED) follows any DATA
 * completion already on its way. Synchronous; TCP_ERR_INVALID_ARGUMENT when no
 * stream runs (or it is already stopping). */
TCP_API int32_t tcp_read_stream_stop(int64_t connection);

/* Writes all bytes_len bytes (0..TCP_WRITE_BYTES_MAX); the engine copies them
 * before returning. bytes may be NULL only when bytes_len is 0. A zero-length
 * write completes with 0 in order with the other writes. */
TCP_API int32_t tcp_write(int64_t connection, int64_t request_id, const uint8_t *bytes,
                          int64_t bytes_len);

/* Half-closes: after all earlier writes finished, sends FIN. Reads go on. */
TCP_API int32_t tcp_shutdown_write(int64_t connection, int64_t request_id);

/* ---- Unix domain sockets ---------------------------------------------------
 * Stream sockets of the AF_UNIX family, as dart:io offers them through
 * InternetAddress(path, type: InternetAddressType.unix). A Unix listener's or
 * connection's handle works with every call above and below exactly as a TCP
 * one: tcp_accept (its connections are Unix sockets too), tcp_read,
 * tcp_read_stream (+ack, stop), tcp_write, tcp_shutdown_write, tcp_close,
 * tcp_close_finalizer, tcp_shutdown, ordering, exactly-once, stale handles
 * and connect timeouts. The TCP/IP-only calls -- tcp_get/set_no_delay,
 * tcp_get/set_keep_alive, tcp_local/remote_address, tcp_local/remote_scope_id,
 * tcp_local/remote_port -- return TCP_ERR_NOT_TCP on a Unix socket (dart:io
 * answers port 0 there: the Dart layer does that); tcp_local_path and
 * tcp_remote_path return TCP_ERR_ADDRESS_FAMILY on a TCP socket.
 *
 * Windows: AF_UNIX stream sockets exist from Windows 10 1803 on; where the OS
 * has none (older Windows, Wine 8), tcp_listen_unix and tcp_connect_unix
 * refuse with TCP_ERR_ADDRESS_FAMILY (tcp_last_os_error: WSAEAFNOSUPPORT)
 * and TCP keeps working.
 *
 * path: path_len bytes (no terminating NUL needed, none counted): a filesystem
 * path, or (Linux, Android) an abstract name: a leading NUL byte then the name,
 * path_len counting that NUL. A filesystem path must not contain a NUL byte
 * (TCP_ERR_INVALID_ARGUMENT), nor be empty (likewise; path NULL or path_len <
 * 0 too). Longer than the platform's sun_path allows (filesystem:
 * sizeof(sun_path) - 1, room for the NUL the OS wants; abstract:
 * sizeof(sun_path)) -> TCP_ERR_PATH_TOO_LONG. An abstract name where the OS
 * has none -> TCP_ERR_UNSUPPORTED. A relative path is relative to the
 * process's working directory at the time of the call.
 *
 * A PEER THAT CLOSES WITH DATA UNREAD. When one end closes while bytes it was
 * sent still wait unread in its receive queue, the other end first reads every
 * byte the closing end wrote before it closed, and then, instead of end of
 * stream, gets TCP_ERR_CONNECTION_RESET (Linux: the kernel marks the peer
 * ECONNRESET, net/unix/af_unix.c unix_release_sock) -- the same thing a TCP
 * reset looks like. Writes to a closed peer fail with TCP_ERR_BROKEN_PIPE or
 * TCP_ERR_CONNECTION_RESET; the process never gets SIGPIPE. */
#define TCP_UNIX_PATH_BYTES_MAX 108 /* the largest sun_path of any platform (Linux, Windows; macOS/BSD: 104) */

/* Like tcp_listen, on a Unix socket path. backlog as for tcp_listen. shared:
 * 0 or TCP_LISTEN_SHARED (dart:io's `shared: true`, as for TCP, keyed by the
 * path bytes: a second shared tcp_listen_unix of the same path joins the
 * first one's OS socket; an exclusive one, or a shared one on the path of an
 * exclusive listener, gets TCP_ERR_ADDRESS_IN_USE); TCP_LISTEN_REUSE_PORT or
 * anything else -> TCP_ERR_INVALID_ARGUMENT.
 *
 * THE SOCKET FILE. A path where a file exists already -- a live listener's, a
 * stale socket file a crashed server left, or any other file -> TCP_ERR_ADDRESS_IN_USE
 * (bind's EADDRINUSE), as in dart:io, which refuses to bind over an existing
 * file ("File exists with given unix domain address", runtime/bin/socket.cc,
 * ListeningSocketRegistry::CreateUnixDomainBindListen); the engine never
 * unlinks a file it did not create, so removing a stale file is the caller's
 * decision. A missing directory -> TCP_ERR_ADDRESS_NOT_AVAILABLE, no write
 * permission on the directory (or a read-only filesystem) ->
 * TCP_ERR_ACCESS_DENIED. The file gets the process's umask.
 * Closing the listener (tcp_close or tcp_close_finalizer of the last member of
 * a shared group, and tcp_shutdown) removes the socket file it created, at
 * once (before tcp_close returns: the path may be listened on again right
 * away), as dart:io does: ListeningSocketRegistry::CloseOneSafe, when the last
 * reference to a listening OS socket goes, "Unlink the socket file, if
 * os_socket contains unix domain sockets" (Utils::Unlink(sun_path); not for an
 * abstract name, which has no file). Unlike dart:io, the engine first checks
 * that the path still names the very socket file its bind made (the same
 * device and inode, recorded at bind): a file someone put in its place since
 * (a new server's socket, anything) is left alone. A process that dies
 * without closing leaves the file behind (as every Unix server does). Accepted
 * connections never own the file.
 * Returns the listener handle (> 0) or a TCP_ERR_*. */
TCP_API int64_t tcp_listen_unix(int64_t dart_port, const uint8_t *path, int32_t path_len, int32_t backlog,
                                int32_t shared);

/* Like tcp_connect, to a Unix socket path (no source address: the client
 * socket stays unnamed). Returns the handle at once; the connect completes
 * later with 0 or:
 *   TCP_ERR_CONNECTION_REFUSED     a socket file nobody listens on (a stale
 *                                  one), a file that is not a socket, an
 *                                  abstract name nobody listens on
 *                                  (ECONNREFUSED; ENOTSOCK on some systems)
 *   TCP_ERR_ADDRESS_NOT_AVAILABLE  no such file, or a path through a missing
 *                                  directory or a non-directory (ENOENT,
 *                                  ENOTDIR)
 *   TCP_ERR_ACCESS_DENIED          no write permission on the socket file or
 *                                  no search permission on a directory of the
 *                                  path (EACCES, EPERM)
 *   TCP_ERR_TIMED_OUT              timeout_ms passed (as for tcp_connect)
 * A LISTENER WHOSE BACKLOG IS FULL (it accepts too slowly): Linux refuses a
 * non-blocking AF_UNIX connect then with EAGAIN, which libuv hands to the
 * caller (uv_pipe_connect fails with every errno but EINPROGRESS). The uv
 * backend does the same: the connect completes at once with
 * TCP_ERR_OS, payload EAGAIN -- try again later. With io_uring the kernel's
 * connect waits for room instead, like a TCP connect whose SYN is dropped,
 * until the listener accepts or timeout_ms passes (TCP_ERR_TIMED_OUT).
 * timeout_ms <= 0: no timeout. After a failed connect the handle must still
 * be closed. Completions go to dart_port. */
TCP_API int64_t tcp_connect_unix(int64_t dart_port, int64_t request_id, const uint8_t *path, int32_t path_len,
                                 int64_t timeout_ms);

/* The local / remote path of a Unix socket into path_out (path_out_len bytes
 * of room; TCP_UNIX_PATH_BYTES_MAX always suffices): returns its length, the
 * path as bound, without a terminating NUL (0 for an unnamed socket, e.g. the
 * client side of a connection: tcp_local_path of a tcp_connect_unix handle and
 * tcp_remote_path of the connection its listener accepted; an abstract name
 * counts its leading NUL). A listener's and its accepted connections' local
 * path, and a client's remote path, are the listener's path.
 * TCP_ERR_INVALID_ARGUMENT when it does not fit (or path_out is NULL),
 * TCP_ERR_ADDRESS_FAMILY on a TCP socket; tcp_remote_path takes connections
 * only (TCP_ERR_BAD_HANDLE for a listener, as tcp_remote_address). */
TCP_API int32_t tcp_local_path(int64_t handle, uint8_t *path_out, int32_t path_out_len);
TCP_API int32_t tcp_remote_path(int64_t connection, uint8_t *path_out, int32_t path_out_len);

/* ---- both kinds ----------------------------------------------------------- */

/* Closes a listener or connection: every pending operation on it completes
 * with TCP_ERR_CLOSED, then the close completes with 0. A second close, or any
 * call with the handle afterwards, returns TCP_ERR_CLOSED. */
TCP_API int32_t tcp_close(int64_t handle, int64_t request_id);

/* For Dart's NativeFinalizer (signature void(void*)): the token is the handle
 * value cast to a pointer. Closes the handle like tcp_close but posts no
 * completion for the close itself (pending operations still complete). Does
 * nothing for a handle that is already closed or stale, so it can never close
 * a newer socket that reused the slot. 64-bit targets only. */
TCP_API void tcp_close_finalizer(void *token);

/* ---- synchronous accessors ------------------------------------------------- */

/* Copies the local / remote address into addr_out (room for 16 bytes) and
 * returns its length (4 or 16), or a TCP_ERR_*. Every accessor of this
 * section returns TCP_ERR_NOT_TCP on a Unix socket (tcp_local_path and
 * tcp_remote_path above are theirs). */
TCP_API int32_t tcp_local_address(int64_t handle, uint8_t *addr_out);
TCP_API int32_t tcp_remote_address(int64_t connection, uint8_t *addr_out);
/* The IPv6 scope id (interface index, >= 0; 0 for none and for IPv4) of the
 * local / remote address, or a TCP_ERR_*. */
TCP_API int64_t tcp_local_scope_id(int64_t handle);
TCP_API int64_t tcp_remote_scope_id(int64_t connection);
/* Returns the local / remote port (0..65535) or a TCP_ERR_*. */
TCP_API int32_t tcp_local_port(int64_t handle);
TCP_API int32_t tcp_remote_port(int64_t connection);

/* Return 1 (on) or 0 (off), or a TCP_ERR_*. */
TCP_API int32_t tcp_get_keep_alive(int64_t connection);
TCP_API int32_t tcp_get_no_delay(int64_t connection);
/* enabled != 0 turns the option on. Return TCP_OK or a TCP_ERR_*. */
TCP_API int32_t tcp_set_keep_alive(int64_t connection, int32_t enabled);
TCP_API int32_t tcp_set_no_delay(int64_t connection, int32_t enabled);

#ifdef __cplusplus
}
#endif

#endif /* ZIG_TCP_H */
