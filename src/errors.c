/* errors.c -- OS error codes to portable TCP_ERR_* codes, and their names.
 * Written once for every backend: POSIX errno (io_uring, libuv on Unix, whose
 * errors are -errno) and Winsock / Win32 codes (IOCP). */
#include "errors.h"

#include "tcp.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <errno.h>
#endif

/* One table per OS family (they share no code). */
#if defined(_WIN32)
int32_t error_from_os(int64_t os_error) {
  switch (os_error) {
    case WSAEADDRINUSE: return TCP_ERR_ADDRESS_IN_USE;
    case WSAEADDRNOTAVAIL: return TCP_ERR_ADDRESS_NOT_AVAILABLE;
    case WSAECONNREFUSED:
    case ERROR_CONNECTION_REFUSED: return TCP_ERR_CONNECTION_REFUSED;
    case WSAECONNRESET:
    case ERROR_NETNAME_DELETED:
    /* "An established connection was aborted by the software in your host
     * computer, possibly due to a data transmission time-out or protocol
     * error" (Winsock error codes, Microsoft Learn): the connection died
     * under the program, most often a send to a peer that closed. Unix
     * reports those as ECONNRESET or EPIPE; libuv turns WSAECONNABORTED into
     * UV_ECONNRESET "to be consistent with Unix" (src/win/tcp.c). Linux's
     * ECONNABORTED stays TCP_ERR_CONNECTION_ABORTED below: there it means a
     * connection the local host killed on purpose (ss -K, SOCK_DESTROY) or one
     * aborted before accept, never a peer gone. */
    case WSAECONNABORTED:
    case ERROR_CONNECTION_ABORTED: return TCP_ERR_CONNECTION_RESET;
    case WSAETIMEDOUT:
    case ERROR_SEM_TIMEOUT:
    /* "The connection has been broken due to keep-alive activity detecting a
     * failure while the operation was in progress" (Winsock error codes):
     * Linux reports a keep-alive failure as ETIMEDOUT. */
    case WSAENETRESET: return TCP_ERR_TIMED_OUT;
    case WSAENETUNREACH:
    case WSAENETDOWN:
    case ERROR_NETWORK_UNREACHABLE: return TCP_ERR_NETWORK_UNREACHABLE;
    case WSAEHOSTUNREACH:
    case WSAEHOSTDOWN:
    case ERROR_HOST_UNREACHABLE: return TCP_ERR_HOST_UNREACHABLE;
    case WSAESHUTDOWN: return TCP_ERR_BROKEN_PIPE;
    case WSAEACCES: return TCP_ERR_ACCESS_DENIED;
    case WSAEMFILE: return TCP_ERR_TOO_MANY_FILES;
    case WSAENOTCONN: return TCP_ERR_NOT_CONNECTED;
    case WSAEAFNOSUPPORT:
    case WSAEPFNOSUPPORT: return TCP_ERR_ADDRESS_FAMILY;
    case WSAENOBUFS:
    case ERROR_NOT_ENOUGH_MEMORY: return TCP_ERR_NO_MEMORY;
    case ERROR_OPERATION_ABORTED: return TCP_ERR_CLOSED;
    case WSAEINVAL: return TCP_ERR_INVALID_ARGUMENT;
    case WSANOTINITIALISED: return TCP_ERR_NOT_INITIALIZED;
    default: return TCP_ERR_OS;
  }
}
#else
int32_t error_from_os(int64_t os_error) {
  switch (os_error) {
    case EADDRINUSE: return TCP_ERR_ADDRESS_IN_USE;
    case EADDRNOTAVAIL:
    /* Unix socket paths (tcp.h, tcp_connect_unix, tcp_listen_unix): no such
     * file, or a path through a missing directory or a non-directory. */
    case ENOENT:
    case ENOTDIR: return TCP_ERR_ADDRESS_NOT_AVAILABLE;
    case ECONNREFUSED:
    /* A connect to a path that names no socket: Linux says ECONNREFUSED, some
     * BSDs ENOTSOCK. The engine's own fds are always sockets, so ENOTSOCK can
     * come from nothing else. */
    case ENOTSOCK: return TCP_ERR_CONNECTION_REFUSED;
    case ENAMETOOLONG: return TCP_ERR_PATH_TOO_LONG;
    case EROFS: return TCP_ERR_ACCESS_DENIED; /* a Unix listener on a read-only filesystem */
    case ECONNRESET: return TCP_ERR_CONNECTION_RESET;
    case ECONNABORTED: return TCP_ERR_CONNECTION_ABORTED;
    case ETIMEDOUT: return TCP_ERR_TIMED_OUT;
    case ENETUNREACH:
    case ENETDOWN: return TCP_ERR_NETWORK_UNREACHABLE;
    case EHOSTUNREACH:
#ifdef EHOSTDOWN
    case EHOSTDOWN:
#endif
      return TCP_ERR_HOST_UNREACHABLE;
    case EPIPE: return TCP_ERR_BROKEN_PIPE;
    case EACCES:
    case EPERM: return TCP_ERR_ACCESS_DENIED;
    case EMFILE:
    case ENFILE: return TCP_ERR_TOO_MANY_FILES;
    case ENOTCONN: return TCP_ERR_NOT_CONNECTED;
    case EAFNOSUPPORT:
    case EPFNOSUPPORT: return TCP_ERR_ADDRESS_FAMILY;
    case ENOMEM:
    case ENOBUFS: return TCP_ERR_NO_MEMORY;
    case ECANCELED: return TCP_ERR_CLOSED;
    case EINVAL: return TCP_ERR_INVALID_ARGUMENT;
    default: return TCP_ERR_OS;
  }
}
#endif

int32_t error_from_os_at_bind(int64_t os_error) {
#if defined(_WIN32)
  /* "If you try to set up TCP connections from ports that are greater than
   * 5000, the local computer responds with the following WSAENOBUFS (10055)
   * error message" (Microsoft KB 196271): WSAENOBUFS at bind or connect is
   * how Windows says the ephemeral ports ran out. */
  if (os_error == WSAENOBUFS) return TCP_ERR_ADDRESS_NOT_AVAILABLE;
#endif
  return error_from_os(os_error);
}

TCP_API const char *tcp_strerror(int64_t code) {
  switch (code) {
#define TCP_ERROR_TEXT_(name, value, text) \
  case name: return text;
    TCP_ERRORS(TCP_ERROR_TEXT_)
#undef TCP_ERROR_TEXT_
    default: return code >= 0 ? "success" : "unknown error";
  }
}
