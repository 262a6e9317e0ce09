/* sockets.c -- the synchronous socket calls every backend shares: address
 * conversion, socket creation, listener setup (options that must precede
 * bind), source binding for connects, and the option/address accessors.
 * POSIX and Winsock differ only in a few names, handled here once. */
#include <string.h>

#include "os_socket.h"

#include "tcp.h"
#include "zt_assert.h"

#if defined(_WIN32)
#include <mstcpip.h>
#include <stddef.h>
#include <stdlib.h>
#else
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
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

/* ---- Unix domain socket addresses ------------------------------------------ */

/* Linux and Android have an abstract namespace (a leading NUL byte). */
#if defined(__linux__)
#define OS_HAS_ABSTRACT_UNIX 1
#else
#define OS_HAS_ABSTRACT_UNIX 0
#endif

#define SUN_PATH_OFFSET ((int)offsetof(struct sockaddr_un, sun_path))
#define SUN_PATH_BYTES ((int32_t)sizeof(((struct sockaddr_un *)0)->sun_path))

_Static_assert(sizeof(struct sockaddr_un) <= sizeof(struct sockaddr_storage), "sockaddr_un fits the storage");
_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) <= TCP_UNIX_PATH_BYTES_MAX,
               "TCP_UNIX_PATH_BYTES_MAX holds every path");

int32_t sockaddr_from_unix_path(const uint8_t *path, int32_t path_len, struct sockaddr_storage *out, int *len_out) {
  if (path == NULL || path_len <= 0) return TCP_ERR_INVALID_ARGUMENT;
  bool abstract = path[0] == 0;
  if (abstract && !OS_HAS_ABSTRACT_UNIX) return TCP_ERR_UNSUPPORTED;
  /* A filesystem path needs room for the NUL the OS expects after it. */
  if (path_len > (abstract ? SUN_PATH_BYTES : SUN_PATH_BYTES - 1)) return TCP_ERR_PATH_TOO_LONG;
  if (!abstract && memchr(path, 0, (size_t)path_len) != NULL) return TCP_ERR_INVALID_ARGUMENT;
  memset(out, 0, sizeof(*out));
  struct sockaddr_un *un = (struct sockaddr_un *)out;
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path, path, (size_t)path_len);
  /* An abstract name is exactly its bytes (its length tells where it ends);
   * a path's NUL is counted, as libuv and Go do. */
  *len_out = SUN_PATH_OFFSET + path_len + (abstract ? 0 : 1);
  return TCP_OK;
}

int32_t sockaddr_to_unix_path(const struct sockaddr_storage *sa, int sa_len, uint8_t *out, int32_t out_len) {
  ZT_ASSERT(sa->ss_family == AF_UNIX);
  const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
  int32_t room = sa_len - SUN_PATH_OFFSET;
  if (room > SUN_PATH_BYTES) room = SUN_PATH_BYTES;
  if (room <= 0) return 0; /* unnamed */
  int32_t len = room;
  if (un->sun_path[0] != 0) { /* a filesystem path ends at its NUL, if the OS counted one */
    const char *nul = memchr(un->sun_path, 0, (size_t)room);
    if (nul != NULL) len = (int32_t)(nul - un->sun_path);
  }
#if defined(_WIN32)
  else {
    len = 0; /* Windows has no abstract names: a leading NUL is an unnamed socket */
  }
#endif
  if (len > out_len) return TCP_ERR_INVALID_ARGUMENT;
  if (len > 0) memcpy(out, un->sun_path, (size_t)len);
  return len;
}

/* The identity of the file at path: 0, or the OS error. */
static int file_identity(const char *path, uint64_t *dev, uint64_t *ino) {
#if defined(_WIN32)
  /* A socket file is a reparse point: open the point itself, not its target. */
  HANDLE h = CreateFileA(path, FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                         OPEN_EXISTING, FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, NULL);
  if (h == INVALID_HANDLE_VALUE) return (int)GetLastError();
  BY_HANDLE_FILE_INFORMATION info;
  BOOL ok = GetFileInformationByHandle(h, &info);
  int err = ok ? 0 : (int)GetLastError();
  CloseHandle(h);
  if (err != 0) return err;
  *dev = info.dwVolumeSerialNumber;
  *ino = ((uint64_t)info.nFileIndexHigh << 32) | info.nFileIndexLow;
  return 0;
#else
  struct stat st;
  if (lstat(path, &st) != 0) return errno;
  *dev = (uint64_t)st.st_dev;
  *ino = (uint64_t)st.st_ino;
  return 0;
#endif
}

static void file_unlink(const char *path) {
#if defined(_WIN32)
  (void)DeleteFileA(path);
#else
  (void)unlink(path);
#endif
}

void os_unix_file_remove(os_unix_file *file) {
  if (file == NULL) return;
  uint64_t dev = 0, ino = 0;
  /* Someone may have removed it and put another file there: leave that. */
  if (file_identity(file->path, &dev, &ino) == 0 && dev == file->dev && ino == file->ino) file_unlink(file->path);
  free(file);
}

/* The record of the file bind just made at un's path: 0, or the OS error. */
static int record_bound_file(const struct sockaddr_un *un, os_unix_file **file_out) {
  os_unix_file *file = calloc(1, sizeof(*file));
  if (file == NULL) return OS_ERROR_NO_MEMORY;
  memcpy(file->path, un->sun_path, sizeof(un->sun_path)); /* NUL-terminated: checked at build */
  int err = file_identity(file->path, &file->dev, &file->ino);
  if (err != 0) {
    free(file);
    return err;
  }
  *file_out = file;
  return 0;
}

int os_unix_listen_setup(os_socket fd, const struct sockaddr_storage *addr, int addr_len, int backlog,
                         os_unix_file **file_out) {
  ZT_ASSERT(addr->ss_family == AF_UNIX);
  const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
  *file_out = NULL;
  /* No SO_REUSEADDR: it means nothing for AF_UNIX; bind itself refuses a path
   * where any file exists (EADDRINUSE). */
  if (bind(fd, (const struct sockaddr *)addr, addr_len) != 0) return os_last_error();
  if (un->sun_path[0] != 0) { /* an abstract name has no file to remove later */
    int err = record_bound_file(un, file_out);
    if (err != 0) {
      file_unlink(un->sun_path); /* ours: bind made it a moment ago */
      return err;
    }
  }
  if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0) {
    int err = os_last_error();
    os_unix_file_remove(*file_out);
    *file_out = NULL;
    return err;
  }
  return 0;
}

/* ---- sockets ------------------------------------------------------------------ */

os_socket os_socket_open(int family, bool nonblocking, int *os_error) {
  int protocol = family_is_tcp(family) ? IPPROTO_TCP : 0;
#if defined(_WIN32)
  (void)nonblocking;
  SOCKET fd = WSASocketW(family, SOCK_STREAM, protocol, NULL, 0,
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
  int fd = socket(family, type, protocol);
  if (fd < 0) *os_error = errno;
  return fd;
#else
  /* macOS and older BSDs: no atomic flags on socket(); no MSG_NOSIGNAL either,
   * so the socket itself must never raise SIGPIPE. */
  int fd = socket(family, SOCK_STREAM, protocol);
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

int os_get_address(os_socket fd, bool remote, struct sockaddr_storage *out, int *len_out) {
  socklen_t len = sizeof(*out);
  memset(out, 0, sizeof(*out));
  int rc = remote ? getpeername(fd, (struct sockaddr *)out, &len)
                  : getsockname(fd, (struct sockaddr *)out, &len);
  if (rc != 0) return os_last_error();
  if (len_out != NULL) *len_out = (int)len;
  return 0;
}

int os_shutdown_write(os_socket fd) {
#if defined(_WIN32)
  if (shutdown(fd, SD_SEND) != 0) return os_last_error();
#else
  if (shutdown(fd, SHUT_WR) != 0) return os_last_error();
#endif
  return 0;
}
