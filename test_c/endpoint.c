/*
 * endpoint.c -- endpoints of either transport for the suite (see endpoint.h).
 */
#include "endpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#endif

#include "tracked_calls.h"
#include "tracker.h"

#if defined(_WIN32)
#include <afunix.h>

/* 0 when this Windows makes AF_UNIX stream sockets (Windows 10 1803+), else
 * the WSA error of the probe: Wine 8 has no AF_UNIX provider at all
 * (WSAEAFNOSUPPORT), so the _unix tests are declared skips there. */
static int unix_probe_error(void) {
  static int probed = -1;
  if (probed >= 0) return probed;
  SOCKET s = socket(AF_UNIX, SOCK_STREAM, 0);
  probed = s == INVALID_SOCKET ? WSAGetLastError() : 0;
  if (s != INVALID_SOCKET) closesocket(s);
  return probed;
}

void h_require_unix(void) {
  int err = unix_probe_error();
  if (err != 0)
    SKIP("no AF_UNIX sockets on this Windows: socket(AF_UNIX) fails with WSA error %d (Wine 8 has no AF_UNIX; "
         "Windows 10 1803+ runs these)", err);
}

static char g_dir[MAX_PATH];
static unsigned g_next_path;

/* Removes every file in the run's directory (test end), then, at exit, it. */
static void clean_dir(void) {
  char pattern[MAX_PATH + 4], path[2 * MAX_PATH];
  snprintf(pattern, sizeof pattern, "%s\\*", g_dir);
  WIN32_FIND_DATAA found;
  HANDLE h = FindFirstFileA(pattern, &found);
  if (h == INVALID_HANDLE_VALUE) return;
  do {
    if (found.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) continue;
    snprintf(path, sizeof path, "%s\\%s", g_dir, found.cFileName);
    DeleteFileA(path); /* a socket file is a reparse point: DeleteFile removes the point itself */
  } while (FindNextFileA(h, &found));
  FindClose(h);
}

static void remove_dir(void) {
  clean_dir();
  RemoveDirectoryA(g_dir);
}

/* %TEMP%\zt-unix-PID, made once per run (short enough for sun_path's 108 bytes). */
static const char *unix_dir(void) {
  if (g_dir[0] != '\0') return g_dir;
  char tmp[MAX_PATH];
  DWORD n = GetTempPathA((DWORD)sizeof tmp, tmp);
  if (n == 0 || n > 60) FAILF("GetTempPathA: no temporary folder short enough for sun_path");
  snprintf(g_dir, sizeof g_dir, "%szt-unix-%lu", tmp, (unsigned long)GetCurrentProcessId());
  if (!CreateDirectoryA(g_dir, NULL) && GetLastError() != ERROR_ALREADY_EXISTS) {
    g_dir[0] = '\0';
    FAILF("CreateDirectoryA failed: %lu", (unsigned long)GetLastError());
  }
  atexit(remove_dir);
  return g_dir;
}

static h_endpoint new_unix_path(void) {
  h_require_unix();
  h_endpoint ep;
  memset(&ep, 0, sizeof ep);
  ep.transport = H_UNIX;
  int n = snprintf((char *)ep.path, sizeof ep.path, "%s\\s%u", unix_dir(), ++g_next_path);
  CHECK(n > 0 && n < (int)sizeof ep.path);
  ep.path_len = n;
  h_at_test_end(clean_dir);
  return ep;
}
#else
void h_require_unix(void) {}

static char g_dir[64];
static unsigned g_next_path;

/* Removes every file in the run's directory (test end), then, at exit, it. */
static void clean_dir(void) {
  DIR *d = opendir(g_dir);
  if (d == NULL) return;
  struct dirent *e;
  char path[sizeof g_dir + 300];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
    unlink(path);
  }
  closedir(d);
}

static void remove_dir(void) {
  clean_dir();
  rmdir(g_dir);
}

static const char *unix_dir(void) {
  if (g_dir[0] != '\0') return g_dir;
  const char *tmp = getenv("TMPDIR");
  /* sun_path is short (104 bytes on macOS): a long TMPDIR would not fit. */
  if (tmp == NULL || tmp[0] == '\0' || strlen(tmp) > 40) tmp = "/tmp";
  snprintf(g_dir, sizeof g_dir, "%s/zt-unix-XXXXXX", tmp);
  if (mkdtemp(g_dir) == NULL) {
    g_dir[0] = '\0';
    FAILF("mkdtemp failed: %s", strerror(errno));
  }
  atexit(remove_dir);
  return g_dir;
}

static h_endpoint new_unix_path(void) {
  h_endpoint ep;
  memset(&ep, 0, sizeof ep);
  ep.transport = H_UNIX;
  int n = snprintf((char *)ep.path, sizeof ep.path, "%s/s%u", unix_dir(), ++g_next_path);
  CHECK(n > 0 && n < (int)sizeof ep.path);
  ep.path_len = n;
  h_at_test_end(clean_dir);
  return ep;
}
#endif

h_endpoint h_fresh_unix_endpoint(void) { return new_unix_path(); }

h_endpoint h_fresh_endpoint(void) {
  if (h_transport_now == H_UNIX) return new_unix_path();
  h_endpoint ep;
  memset(&ep, 0, sizeof ep);
  ep.transport = H_TCP;
  return ep;
}

h_endpoint h_endpoint_of(int64_t listener) {
  h_endpoint ep;
  memset(&ep, 0, sizeof ep);
  ep.transport = h_transport_now;
  if (h_transport_now == H_TCP) {
    ep.port = tcp_local_port(listener);
    if (ep.port <= 0) FAILF("tcp_local_port: %d (%s)", (int)ep.port, h_code_name(ep.port));
  } else {
    ep.path_len = tcp_local_path(listener, ep.path, TCP_UNIX_PATH_BYTES_MAX);
    if (ep.path_len <= 0) FAILF("tcp_local_path: %d (%s)", (int)ep.path_len, h_code_name(ep.path_len));
  }
  return ep;
}

int64_t h_ep_listen(int64_t port, const h_endpoint *ep, int32_t backlog, int32_t mode) {
  if (ep->transport == H_UNIX) {
    h_require_unix();
    return tcp_listen_unix(port, ep->path, ep->path_len, backlog, mode);
  }
  return tcp_listen(port, H_LOOPBACK4, 4, ep->port, backlog, 1, mode);
}

int64_t h_ep_connect(int64_t port, int64_t request_id, const h_endpoint *ep, int64_t timeout_ms) {
  if (ep->transport == H_UNIX) {
    h_require_unix();
    return tcp_connect_unix(port, request_id, ep->path, ep->path_len, timeout_ms);
  }
  return tcp_connect(port, request_id, H_LOOPBACK4, 4, ep->port, NULL, 0, 0, timeout_ms);
}

int64_t h_listen_at(int64_t port, const h_endpoint *ep, int32_t backlog, int32_t mode) {
  int64_t l = h_ep_listen(port, ep, backlog, mode);
  if (l <= 0)
    FAILF("listen (%s, mode %d) returned %lld (%s), os error %d", ep->transport == H_UNIX ? "unix" : "tcp",
          (int)mode, (long long)l, h_code_name(l), (int)tcp_last_os_error());
  h_remember_port(l, port);
  return l;
}

int64_t h_listen_any(int64_t port, int32_t backlog) {
  h_endpoint ep = h_fresh_endpoint();
  return h_listen_at(port, &ep, backlog, 0);
}

int64_t h_connect_to(int64_t port, const h_endpoint *ep, int64_t timeout_ms, int64_t *handle) {
  int64_t id = h_new_id();
  int64_t h = h_ep_connect(port, id, ep, timeout_ms);
  if (h <= 0) FAILF("connect returned %lld (%s)", (long long)h, h_code_name(h));
  h_issue(id, port, K_CONNECT, h, 0);
  h_remember_port(h, port);
  if (handle) *handle = h;
  return id;
}

int64_t h_pair_any(int64_t listen_port, int64_t client_port, int64_t *client, int64_t *server) {
  int64_t l = h_listen_any(listen_port, 0);
  h_endpoint ep = h_endpoint_of(l);
  int64_t acc = h_accept(l);
  int64_t con = h_connect_to(client_port, &ep, 0, client);
  CHECK_EQ(h_result(con), 0);
  *server = h_accepted(acc);
  return l;
}

raw_sock h_raw_connect(const h_endpoint *ep) {
  if (ep->transport == H_TCP) return raw_connect4(ep->port);
#if defined(_WIN32)
  h_require_unix();
  raw_sock s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s == RAW_INVALID) FAILF("socket(AF_UNIX) failed: %d", WSAGetLastError());
  SOCKADDR_UN sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, ep->path, (size_t)ep->path_len);
  if (connect(s, (struct sockaddr *)&sa, (int)sizeof sa) != 0) {
    int err = WSAGetLastError();
    raw_closesocket(s);
    FAILF("raw connect to %s failed: WSA error %d", (const char *)ep->path, err);
  }
  return s;
#else
  raw_sock s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s == RAW_INVALID) FAILF("socket(AF_UNIX) failed");
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, ep->path, (size_t)ep->path_len);
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)ep->path_len);
  if (connect(s, (struct sockaddr *)&sa, len) != 0) {
    raw_closesocket(s);
    FAILF("raw connect to %s failed: %s", (const char *)ep->path, strerror(errno));
  }
  return s;
#endif
}

int32_t h_gone_endpoint_error(void) {
  return h_transport_now == H_UNIX ? TCP_ERR_ADDRESS_NOT_AVAILABLE : TCP_ERR_CONNECTION_REFUSED;
}
