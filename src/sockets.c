/* sockets.c -- the synchronous socket calls every backend shares: address
 * conversion, socket creation, listener setup (options that must precede
 * bind), source binding for connects, and the option/address accessors.
 * POSIX and Winsock differ only in a few names, handled here once. */
#include <string.h>

#include "os_socket.h"

#include "tcp.h"

#if defined(_WIN32)
#include <mstcpip.h>
#else
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>
#endif

int os_last_error(void) {
#if defined(_WIN32)
  return WSAGetLastError();
#else
  return errno;
#endif
}

int sockaddr_from_bytes(const uint8_t *addr, int32_t addr_len, int32_t port,
                        struct sockaddr_storage *out) {
  if (addr == NULL || port < 0 || port > 65535) return 0;
  memset(out, 0, sizeof(*out));
  if (addr_len == 4) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    memcpy(&v4->sin_addr, addr, 4);
    return (int)sizeof(*v4);
  }
  if (addr_len == 16 || addr_len == 20) {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    memcpy(&v6->sin6_addr, addr, 16);
    if (addr_len == 20) {
      uint32_t scope_id;
      memcpy(&scope_id, addr + 16, sizeof(scope_id)); /* host byte order: an interface index */
      v6->sin6_scope_id = scope_id;
    }
    return (int)sizeof(*v6);
  }
  return 0;
}

int64_t sockaddr_scope_id(const struct sockaddr_storage *sa) {
  if (sa->ss_family != AF_INET6) return 0;
  return (int64_t)((const struct sockaddr_in6 *)sa)->sin6_scope_id;
}

int32_t sockaddr_to_bytes(const struct sockaddr_storage *sa, uint8_t *addr_out, int32_t *port_out) {
  if (sa->ss_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
    if (addr_out) memcpy(addr_out, &v4->sin_addr, 4);
    if (port_out) *port_out = ntohs(v4->sin_port);
    return 4;
  }
  if (sa->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
    if (addr_out) memcpy(addr_out, &v6->sin6_addr, 16);
    if (port_out) *port_out = ntohs(v6->sin6_port);
    return 16;
  }
  return TCP_ERR_ADDRESS_FAMILY;
}

os_socket os_socket_open(int family, bool nonblocking, int *os_error) {
#if defined(_WIN32)
  (void)nonblocking;
  SOCKET fd = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                         WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (fd == INVALID_SOCKET) {
    *os_error = WSAGetLastError();
    return fd;
  }
  /* Windows makes IPv6 sockets v6-only by default, Linux does not: without
   * this, a connect to ::ffff:a.b.c.d fails on Windows only. Listeners set the
   * option again from tcp_listen's v6_only. Failure is ignored, as libuv and
   * Go ignore it ("Allow both IP versions even if the OS default is
   * otherwise. Note that some operating systems never admit this option."
   * -- Go, net/sockopt_windows.go): a host without IPv4 keeps the default. */
  if (family == AF_INET6) {
    DWORD off = 0;
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, (const char *)&off, (int)sizeof(off));
  }
  return fd;
#elif defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
  int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
  int fd = socket(family, type, IPPROTO_TCP);
  if (fd < 0) *os_error = errno;
  return fd;
#else
  /* macOS and older BSDs: no atomic flags on socket(); no MSG_NOSIGNAL either,
   * so the socket itself must never raise SIGPIPE. */
  int fd = socket(family, SOCK_STREAM, IPPROTO_TCP);
  if (fd < 0) {
    *os_error = errno;
    return -1;
  }
  int one = 1;
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
      (nonblocking && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
#ifdef SO_NOSIGPIPE
      || setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one)) != 0
#endif
  ) {
    *os_error = errno;
    close(fd);
    return -1;
  }
  (void)one;
  return fd;
#endif
}

void os_socket_close(os_socket fd) {
#if defined(_WIN32)
  closesocket(fd);
#else
  close(fd);
#endif
}

static int set_int_option(os_socket fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, (const char *)&value, sizeof(value)) != 0) return os_last_error();
  return 0;
}

int os_listen_setup(os_socket fd, const struct sockaddr_storage *addr, int addr_len, int backlog,
                    bool v6_only, bool shared) {
  int err;
#if defined(_WIN32)
  /* No option at all, as libuv and Go. Without one, Windows rebinds a port
   * whose old connections still live or sit in TIME_WAIT (what SO_REUSEADDR
   * gives on Unix), and a second listener on a port still fails
   * (WSAEADDRINUSE): since Windows Server 2003 another socket can take a bound
   * port only if its first owner set SO_REUSEADDR, which we never do ("the
   * first socket bound to the address and port *must* set SO_REUSEADDR" --
   * Microsoft's Winsock team, "Changes in Socket Bind"). SO_EXCLUSIVEADDRUSE
   * would add little beyond that and break restarts: "if a listening socket
   * with SO_EXCLUSIVEADDRUSE set accepts a connection and is then
   * subsequently closed, another socket (also with SO_EXCLUSIVEADDRUSE)
   * cannot bind to the same port as the first socket until the original
   * connection becomes inactive" (Using SO_REUSEADDR and SO_EXCLUSIVEADDRUSE,
   * Microsoft Learn); libuv: "SO_EXCLUSIVEADDRUSE is also not good here
   * because it does check all sockets, regardless of state" (src/win/tcp.c).
   * What is left: a process of the same user may bind a specific address on
   * a port we hold with the wildcard address (tcp.h, tcp_listen). */
  (void)shared;
#else
  /* Lets a restarted server rebind while old connections sit in TIME_WAIT;
   * on Linux/BSD it never lets two listeners share a port. */
  if ((err = set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1)) != 0) return err;
  if (shared) {
#ifdef SO_REUSEPORT
    if ((err = set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1)) != 0) return err;
#endif
  }
#endif
  if (addr->ss_family == AF_INET6) {
    if ((err = set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6_only ? 1 : 0)) != 0) return err;
  }
  if (bind(fd, (const struct sockaddr *)addr, addr_len) != 0) return os_last_error();
  if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0) return os_last_error();
  return 0;
}

int os_bind(os_socket fd, const struct sockaddr_storage *addr, int addr_len) {
  if (bind(fd, (const struct sockaddr *)addr, addr_len) != 0) return os_last_error();
  return 0;
}

int os_get_bool_option(os_socket fd, int option, int32_t *value_out) {
  int level = option == TCP_NODELAY ? IPPROTO_TCP : SOL_SOCKET;
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, level, option, (char *)&value, &len) != 0) return os_last_error();
  *value_out = value != 0;
  return 0;
}

int os_set_bool_option(os_socket fd, int option, bool enabled) {
  int level = option == TCP_NODELAY ? IPPROTO_TCP : SOL_SOCKET;
  return set_int_option(fd, level, option, enabled ? 1 : 0);
}

int os_get_address(os_socket fd, bool remote, struct sockaddr_storage *out) {
  socklen_t len = sizeof(*out);
  memset(out, 0, sizeof(*out));
  int rc = remote ? getpeername(fd, (struct sockaddr *)out, &len)
                  : getsockname(fd, (struct sockaddr *)out, &len);
  return rc != 0 ? os_last_error() : 0;
}

int os_shutdown_write(os_socket fd) {
#if defined(_WIN32)
  if (shutdown(fd, SD_SEND) != 0) return os_last_error();
#else
  if (shutdown(fd, SHUT_WR) != 0) return os_last_error();
#endif
  return 0;
}
