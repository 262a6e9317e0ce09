/* os_socket.h -- the synchronous socket calls every backend shares (sockets.c):
 * address conversion, socket creation, listener setup, options, addresses.
 * POSIX and Winsock differ only inside sockets.c. */
#ifndef ZIG_TCP_OS_SOCKET_H
#define ZIG_TCP_OS_SOCKET_H

#include <stdbool.h>
#include <stdint.h>

#include "tcp.h"

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#include <afunix.h>
typedef SOCKET os_socket;
#define OS_SOCKET_INVALID INVALID_SOCKET
/* The OS code a backend reports for an operation it abandoned on cancel(). */
#define OS_ERROR_CANCELLED 995 /* ERROR_OPERATION_ABORTED */
#define OS_ERROR_TIMED_OUT WSAETIMEDOUT
#define OS_ERROR_NO_MEMORY ERROR_NOT_ENOUGH_MEMORY
#else
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
typedef int os_socket;
#define OS_SOCKET_INVALID (-1)
#define OS_ERROR_CANCELLED ECANCELED
#define OS_ERROR_TIMED_OUT ETIMEDOUT
#define OS_ERROR_NO_MEMORY ENOMEM
#endif

/* Build a sockaddr from 4 / 16 address bytes, or 20 (IPv6 + its uint32 scope
 * id in host byte order), + port. Returns the length, or 0. */
int sockaddr_from_bytes(const uint8_t *addr, int32_t addr_len, int32_t port, struct sockaddr_storage *out);
/* 4 or 16 (bytes copied into addr_out, port into *port_out; either may be
 * NULL), or TCP_ERR_ADDRESS_FAMILY. */
int32_t sockaddr_to_bytes(const struct sockaddr_storage *sa, uint8_t *addr_out, int32_t *port_out);
/* The IPv6 scope id (an interface index) of sa; 0 for none or IPv4. */
int64_t sockaddr_scope_id(const struct sockaddr_storage *sa);
/* A Unix socket address (AF_UNIX) from path bytes, checked as tcp.h says
 * (tcp_listen_unix): TCP_OK with its length in *len_out, or the TCP_ERR_*. */
int32_t sockaddr_from_unix_path(const uint8_t *path, int32_t path_len, struct sockaddr_storage *out, int *len_out);
/* The path of a Unix address of sa_len bytes (as getsockname gave it) into
 * out: its length (0: unnamed; an abstract name counts its leading NUL), or
 * TCP_ERR_INVALID_ARGUMENT when it does not fit in out_len bytes. */
int32_t sockaddr_to_unix_path(const struct sockaddr_storage *sa, int sa_len, uint8_t *out, int32_t out_len);
/* Is this address family one the engine's sockets speak TCP on? */
static inline bool family_is_tcp(int family) { return family == AF_INET || family == AF_INET6; }

/* The socket file a Unix listener's bind created: its path and identity
 * (device + inode; on Windows volume serial + file index), so that the engine
 * removes that file and no other one put in its place since. */
typedef struct os_unix_file {
  uint64_t dev, ino;
  char path[TCP_UNIX_PATH_BYTES_MAX + 1];
} os_unix_file;
/* Bind + listen on a Unix address. For a filesystem path, *file_out gets the
 * file's record (the caller owns it; os_unix_file_remove); NULL for an
 * abstract name. Returns 0 or the OS error; on failure no file is left. */
int os_unix_listen_setup(os_socket fd, const struct sockaddr_storage *addr, int addr_len, int backlog,
                         os_unix_file **file_out);
/* Removes the socket file if its path still names that very file, and frees
 * the record (NULL: nothing). */
void os_unix_file_remove(os_unix_file *file);

/* A stream socket of family (TCP for AF_INET/AF_INET6, AF_UNIX otherwise),
 * close-on-exec, blocking unless nonblocking. */
os_socket os_socket_open(int family, bool nonblocking, int *os_error);
void os_socket_close(os_socket fd);
/* The calling thread's last OS socket error (errno / WSAGetLastError). */
int os_last_error(void);
/* The following return 0 or the OS error code. */
/* Listener options that must precede bind, then bind + listen. */
int os_listen_setup(os_socket fd, const struct sockaddr_storage *addr, int addr_len, int backlog, bool v6_only,
                    bool shared);
int os_bind(os_socket fd, const struct sockaddr_storage *addr, int addr_len);
/* option: SO_KEEPALIVE or TCP_NODELAY. */
int os_get_bool_option(os_socket fd, int option, int32_t *value_out);
int os_set_bool_option(os_socket fd, int option, bool enabled);
/* The local / peer address; its length into *len_out unless NULL. */
int os_get_address(os_socket fd, bool remote, struct sockaddr_storage *out, int *len_out);
int os_shutdown_write(os_socket fd);

#endif /* ZIG_TCP_OS_SOCKET_H */
