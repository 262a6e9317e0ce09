/* errors.c -- OS error codes to portable TCP_ERR_* codes, and their names.
 * Written once for every backend: POSIX errno (io_uring, libuv on Unix, whose
 * errors are -errno) and Winsock / Win32 codes (IOCP). */
#include "engine.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <errno.h>
#endif

int32_t error_from_os(int64_t os_error) {
  switch (os_error) {
#if defined(_WIN32)
    case WSAEADDRINUSE: return TCP_ERR_ADDRESS_IN_USE;
    case WSAEADDRNOTAVAIL: return TCP_ERR_ADDRESS_NOT_AVAILABLE;
    case WSAECONNREFUSED:
    case ERROR_CONNECTION_REFUSED: return TCP_ERR_CONNECTION_REFUSED;
    case WSAECONNRESET:
    case ERROR_NETNAME_DELETED: return TCP_ERR_CONNECTION_RESET;
    case WSAECONNABORTED:
    case ERROR_CONNECTION_ABORTED: return TCP_ERR_CONNECTION_ABORTED;
    case WSAETIMEDOUT:
    case ERROR_SEM_TIMEOUT: return TCP_ERR_TIMED_OUT;
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
#else
    case EADDRINUSE: return TCP_ERR_ADDRESS_IN_USE;
    case EADDRNOTAVAIL: return TCP_ERR_ADDRESS_NOT_AVAILABLE;
    case ECONNREFUSED: return TCP_ERR_CONNECTION_REFUSED;
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
#endif
    default: return TCP_ERR_OS;
  }
}

TCP_API const char *tcp_strerror(int64_t code) {
  switch (code) {
    case TCP_OK: return "success";
    case TCP_ERR_INVALID_ARGUMENT: return "invalid argument (null buffer, bad length, address or port)";
    case TCP_ERR_BAD_HANDLE: return "not a handle of this engine, or the wrong kind of handle";
    case TCP_ERR_CLOSED: return "socket closed";
    case TCP_ERR_NOT_INITIALIZED: return "engine not initialized (call tcp_init first)";
    case TCP_ERR_SHUTDOWN: return "engine shut down";
    case TCP_ERR_NO_MEMORY: return "out of memory";
    case TCP_ERR_UNSUPPORTED: return "not supported by this backend or system";
    case TCP_ERR_DART_API: return "Dart DL API data missing or of an incompatible version";
    case TCP_ERR_ADDRESS_IN_USE: return "address already in use";
    case TCP_ERR_ADDRESS_NOT_AVAILABLE: return "address not available";
    case TCP_ERR_CONNECTION_REFUSED: return "connection refused";
    case TCP_ERR_CONNECTION_RESET: return "connection reset by peer";
    case TCP_ERR_CONNECTION_ABORTED: return "connection aborted";
    case TCP_ERR_TIMED_OUT: return "timed out";
    case TCP_ERR_NETWORK_UNREACHABLE: return "network unreachable";
    case TCP_ERR_HOST_UNREACHABLE: return "host unreachable";
    case TCP_ERR_BROKEN_PIPE: return "broken pipe (connection shut down for writing)";
    case TCP_ERR_ACCESS_DENIED: return "permission denied";
    case TCP_ERR_TOO_MANY_FILES: return "too many open files";
    case TCP_ERR_NOT_CONNECTED: return "socket not connected";
    case TCP_ERR_ADDRESS_FAMILY: return "address family not supported";
    case TCP_ERR_OS: return "operating system error (see the OS error code)";
    default: return code >= 0 ? "success" : "unknown error";
  }
}
