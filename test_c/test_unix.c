/*
 * test_unix.c -- what only Unix domain sockets have: path limits and bad
 * paths, a path in use, a stale socket file, abstract names (Linux), file
 * permissions, a peer that closes with data unread, the TCP-only calls'
 * TCP_ERR_NOT_TCP, the path accessors, the socket file's removal (and a
 * replaced file left alone), shared listeners on a path, connect errors. The
 * transport-neutral tests run over Unix sockets too (test_list.h, XT).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "harness.h"
#include "test_list.h"

#if defined(_WIN32)
/* These bodies use POSIX file calls (chmod, stat, fork, abstract names); on
 * Windows the transport-neutral _unix tests (test_list.h, XT) cover AF_UNIX. */
#define UNIX_TEST(name)                                                                       \
  void test_##name(void) {                                                                    \
    h_require_unix();                                                                         \
    SKIP("a Unix-specific test written with POSIX file calls: not ported to Windows yet");   \
  }
UNIX_TEST(unix_path_too_long)
UNIX_TEST(unix_path_bad_input)
UNIX_TEST(unix_path_in_use)
UNIX_TEST(unix_stale_socket_file)
UNIX_TEST(unix_abstract_name)
UNIX_TEST(unix_permission_denied)
UNIX_TEST(unix_peer_closes_with_data_unread)
UNIX_TEST(unix_not_tcp)
UNIX_TEST(unix_path_accessors)
UNIX_TEST(unix_socket_file_removed_on_close)
UNIX_TEST(unix_socket_file_replaced_is_kept)
UNIX_TEST(unix_socket_file_removed_at_shutdown)
UNIX_TEST(unix_shared_listeners)
UNIX_TEST(unix_connect_errors)
UNIX_TEST(unix_connect_full_backlog)
#else
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUN_PATH_BYTES ((int32_t)sizeof(((struct sockaddr_un *)0)->sun_path))

/* ---- helpers ------------------------------------------------------------------------ */
static bool is_socket_file(const h_endpoint *ep) {
  struct stat st;
  return lstat((const char *)ep->path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static bool exists(const h_endpoint *ep) {
  struct stat st;
  return lstat((const char *)ep->path, &st) == 0;
}

static void make_regular_file(const h_endpoint *ep) {
  int fd = open((const char *)ep->path, O_CREAT | O_EXCL | O_WRONLY, 0600);
  if (fd < 0) FAILF("creating %s: %s", (const char *)ep->path, strerror(errno));
  close(fd);
}

/* A raw socket bound on ep (not through the engine), or a failed test. */
static int raw_bound_unix(const h_endpoint *ep) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, ep->path, (size_t)ep->path_len);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int err = errno;
    close(fd);
    FAILF("bind %s: %s", (const char *)ep->path, strerror(err));
  }
  return fd;
}

/* A socket file nobody listens on: a raw socket bound there, then closed (what
 * a crashed server leaves behind). */
static void make_stale_socket_file(const h_endpoint *ep) {
  close(raw_bound_unix(ep));
  CHECK(is_socket_file(ep));
}

/* A connect to ep that must complete with want. */
static void expect_connect_result(const h_endpoint *ep, int32_t want) {
  int64_t port = h_port(), h = 0;
  CHECK_EQ(h_result(h_connect_to(port, ep, 0, &h)), want);
  h_close_wait(h);
}

/* A path in the run's directory padded with 'a's to exactly len bytes. */
static h_endpoint path_of_length(int32_t len) {
  h_endpoint ep = h_fresh_unix_endpoint();
  CHECK(ep.path_len + 1 < len && len <= TCP_UNIX_PATH_BYTES_MAX);
  ep.path[ep.path_len] = '-';
  for (int32_t i = ep.path_len + 1; i < len; i++) ep.path[i] = 'a';
  ep.path[len] = 0;
  ep.path_len = len;
  return ep;
}

/* A Unix pair on a fresh path. */
static int64_t unix_pair(h_endpoint *ep, int64_t *c, int64_t *s) {
  int64_t port = h_port();
  *ep = h_fresh_unix_endpoint();
  int64_t l = h_listen_at(port, ep, 0, 0);
  int64_t acc = h_accept(l);
  CHECK_EQ(h_result(h_connect_to(port, ep, 0, c)), 0);
  *s = h_accepted(acc);
  return l;
}

/* ---- path limits and bad input -------------------------------------------------------- */
void test_unix_path_too_long(void) {
  int64_t port = h_port();
  static const uint8_t big[TCP_UNIX_PATH_BYTES_MAX + 2] = {'/', 't'};
  /* A filesystem path may use sun_path but for the NUL after it. */
  h_endpoint longest = path_of_length(SUN_PATH_BYTES - 1);
  int64_t l = h_listen_at(port, &longest, 0, 0);
  CHECK(is_socket_file(&longest));
  expect_connect_result(&longest, 0);
  h_close_wait(l);
  h_endpoint too_long = path_of_length(SUN_PATH_BYTES);
  CHECK_EQ(tcp_listen_unix(port, too_long.path, too_long.path_len, 0, 0), TCP_ERR_PATH_TOO_LONG);
  CHECK_EQ(tcp_connect_unix(port, h_new_id(), too_long.path, too_long.path_len, 0), TCP_ERR_PATH_TOO_LONG);
  CHECK(!exists(&too_long));
  CHECK_EQ(tcp_listen_unix(port, big, (int32_t)sizeof big, 0, 0), TCP_ERR_PATH_TOO_LONG);
  CHECK_EQ(tcp_connect_unix(port, h_new_id(), big, (int32_t)sizeof big, 0), TCP_ERR_PATH_TOO_LONG);
#if defined(__linux__)
  /* An abstract name may use all of sun_path (no NUL is added). */
  uint8_t name[TCP_UNIX_PATH_BYTES_MAX + 1];
  memset(name, 'z', sizeof name);
  name[0] = 0;
  snprintf((char *)name + 1, 40, "zt-too-long-%d", (int)getpid());
  name[strlen((char *)name + 1) + 1] = 'z';
  int64_t al = tcp_listen_unix(port, name, SUN_PATH_BYTES, 0, 0);
  CHECK(al > 0);
  h_remember_port(al, port);
  h_endpoint abstract = {.transport = H_UNIX, .path_len = SUN_PATH_BYTES};
  memcpy(abstract.path, name, (size_t)SUN_PATH_BYTES);
  expect_connect_result(&abstract, 0);
  h_close_wait(al);
  CHECK_EQ(tcp_listen_unix(port, name, SUN_PATH_BYTES + 1, 0, 0), TCP_ERR_PATH_TOO_LONG);
  CHECK_EQ(tcp_connect_unix(port, h_new_id(), name, SUN_PATH_BYTES + 1, 0), TCP_ERR_PATH_TOO_LONG);
#endif
}

void test_unix_path_bad_input(void) {
  int64_t port = h_port();
  const int32_t INV = TCP_ERR_INVALID_ARGUMENT;
  h_endpoint ep = h_fresh_unix_endpoint();
  uint8_t with_nul[32];
  memcpy(with_nul, ep.path, 8);
  with_nul[4] = 0;
  with_nul[0] = '/';
  CHECK_EQ(tcp_listen_unix(port, NULL, 5, 0, 0), INV);
  CHECK_EQ(tcp_listen_unix(port, ep.path, 0, 0, 0), INV);
  CHECK_EQ(tcp_listen_unix(port, ep.path, -1, 0, 0), INV);
  CHECK_EQ(tcp_listen_unix(port, with_nul, 8, 0, 0), INV);
  CHECK_EQ(tcp_listen_unix(port, ep.path, ep.path_len, 0, TCP_LISTEN_REUSE_PORT), INV);
  CHECK_EQ(tcp_listen_unix(port, ep.path, ep.path_len, 0, 3), INV);
  CHECK_EQ(tcp_listen_unix(port, ep.path, ep.path_len, 0, -1), INV);
  CHECK(!exists(&ep));
  CHECK_EQ(tcp_connect_unix(port, h_new_id(), NULL, 5, 0), INV);
  CHECK_EQ(tcp_connect_unix(port, h_new_id(), ep.path, 0, 0), INV);
  CHECK_EQ(tcp_connect_unix(port, h_new_id(), ep.path, INT32_MIN, 0), INV);
  CHECK_EQ(tcp_connect_unix(port, h_new_id(), with_nul, 8, 0), INV);
#if !defined(__linux__)
  static const uint8_t abstract[] = {0, 'x'};
  CHECK_EQ(tcp_listen_unix(port, abstract, 2, 0, 0), TCP_ERR_UNSUPPORTED);
  CHECK_EQ(tcp_connect_unix(port, h_new_id(), abstract, 2, 0), TCP_ERR_UNSUPPORTED);
#endif
  /* refused calls post nothing: the tracker fails the test on any completion */
}

/* ---- a path in use, a stale file ----------------------------------------------------- */
void test_unix_path_in_use(void) {
  int64_t port = h_port();
  h_endpoint ep = h_fresh_unix_endpoint();
  int64_t l = h_listen_at(port, &ep, 0, 0);
  CHECK_EQ(tcp_listen_unix(port, ep.path, ep.path_len, 0, 0), TCP_ERR_ADDRESS_IN_USE);
  CHECK_EQ(tcp_listen_unix(port, ep.path, ep.path_len, 0, TCP_LISTEN_SHARED), TCP_ERR_ADDRESS_IN_USE);
  CHECK(is_socket_file(&ep)); /* the failed binds left the live listener's file alone */
  expect_connect_result(&ep, 0);
  h_close_wait(l);
  /* any other file is in the way too, and stays */
  h_endpoint file = h_fresh_unix_endpoint();
  make_regular_file(&file);
  CHECK_EQ(tcp_listen_unix(port, file.path, file.path_len, 0, 0), TCP_ERR_ADDRESS_IN_USE);
  CHECK(exists(&file) && !is_socket_file(&file));
}

void test_unix_stale_socket_file(void) {
  int64_t port = h_port();
  h_endpoint ep = h_fresh_unix_endpoint();
  make_stale_socket_file(&ep);
  /* dart:io refuses to bind over an existing file; the engine never removes
   * a file it did not create (tcp.h) */
  CHECK_EQ(tcp_listen_unix(port, ep.path, ep.path_len, 0, 0), TCP_ERR_ADDRESS_IN_USE);
  expect_connect_result(&ep, TCP_ERR_CONNECTION_REFUSED);
  CHECK(is_socket_file(&ep));
  /* once the caller removed it, the path is free */
  CHECK_EQ(unlink((const char *)ep.path), 0);
  int64_t l = h_listen_at(port, &ep, 0, 0);
  expect_connect_result(&ep, 0);
  h_close_wait(l);
  CHECK(!exists(&ep));
}

/* ---- abstract names ------------------------------------------------------------------- */
void test_unix_abstract_name(void) {
#if !defined(__linux__)
  SKIP("abstract Unix socket names exist on Linux and Android only");
#else
  int64_t port = h_port();
  h_endpoint ep = {.transport = H_UNIX};
  int n = snprintf((char *)ep.path + 1, sizeof ep.path - 1, "zt-abstract-%d-%p", (int)getpid(), (void *)&ep);
  ep.path_len = n + 1; /* the leading NUL counts */
  int64_t l = h_listen_at(port, &ep, 0, 0);
  CHECK_EQ(tcp_listen_unix(port, ep.path, ep.path_len, 0, 0), TCP_ERR_ADDRESS_IN_USE);
  uint8_t got[TCP_UNIX_PATH_BYTES_MAX];
  CHECK_EQ(tcp_local_path(l, got, sizeof got), ep.path_len);
  CHECK(memcmp(got, ep.path, (size_t)ep.path_len) == 0);
  int64_t acc = h_accept(l), c = 0;
  CHECK_EQ(h_result(h_connect_to(port, &ep, 0, &c)), 0);
  int64_t s = h_accepted(acc);
  CHECK_EQ(tcp_remote_path(c, got, sizeof got), ep.path_len);
  CHECK(memcmp(got, ep.path, (size_t)ep.path_len) == 0);
  uint8_t b = 0;
  h_write_all(c, "a", 1);
  h_read_exact(s, &b, 1);
  CHECK_EQ(b, 'a');
  /* a prefix of the name is another name */
  h_endpoint prefix = ep;
  prefix.path_len--;
  expect_connect_result(&prefix, TCP_ERR_CONNECTION_REFUSED);
  h_close_wait(l);
  expect_connect_result(&ep, TCP_ERR_CONNECTION_REFUSED); /* gone with its listener */
  h_close_wait(c);
  h_close_wait(s);
#endif
}

/* ---- permissions --------------------------------------------------------------------- */
/* In a child that is not root (root passes every permission check): a fresh
 * engine's connect to ep; exits with the negated result. */
static void connect_as_nobody(const h_endpoint *ep) {
  if (setgid(65534) != 0 || setuid(65534) != 0) _exit(100);
  if (tcp_init(fake_dart_api_data()) != TCP_OK) _exit(101);
  int64_t port = fake_dart_open_port();
  if (tcp_connect_unix(port, 7, ep->path, ep->path_len, 0) <= 0) _exit(102);
  fd_completion c;
  if (!fake_dart_next(port, h_timeout_ms, &c)) _exit(103);
  _exit((int)-c.result);
}

/* A raw listener on ep (the engine's would close with an engine shutdown). */
static int raw_listen_unix(const h_endpoint *ep) {
  int fd = raw_bound_unix(ep);
  if (listen(fd, 8) != 0) {
    int err = errno;
    close(fd);
    FAILF("raw listen on %s: %s", (const char *)ep->path, strerror(err));
  }
  return fd;
}

void test_unix_permission_denied(void) {
  int64_t port = h_port();
  h_endpoint ep = h_fresh_unix_endpoint();
  if (geteuid() != 0) {
    int64_t l = h_listen_at(port, &ep, 0, 0);
    CHECK_EQ(chmod((const char *)ep.path, 0), 0); /* connecting needs write permission */
    expect_connect_result(&ep, TCP_ERR_ACCESS_DENIED);
    h_close_wait(l);
    return;
  }
  /* Root passes every permission check: a child drops to nobody and connects
   * with an engine of its own (no I/O thread may be live across fork, so the
   * listener is a raw one that outlives the engine shutdown). The run's
   * directory is 0700: let others search it for the child's sake. */
  int lfd = raw_listen_unix(&ep);
  CHECK_EQ(chmod((const char *)ep.path, 0), 0);
  const char *slash = strrchr((const char *)ep.path, '/');
  char dir[sizeof ep.path];
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - (const char *)ep.path), (const char *)ep.path);
  CHECK_EQ(chmod(dir, 0711), 0);
  h_engine_shutdown();
  pid_t pid = fork();
  if (pid == 0) connect_as_nobody(&ep);
  int status = 0;
  pid_t waited = pid > 0 ? waitpid(pid, &status, 0) : -1;
  (void)chmod(dir, 0700);
  close(lfd);
  h_engine_init();
  CHECK(pid > 0 && waited == pid && WIFEXITED(status));
  CHECK_EQ(-WEXITSTATUS(status), TCP_ERR_ACCESS_DENIED);
  /* and with permission, the same connect goes through (the refusal was the mode's) */
  int lfd2 = -1;
  CHECK_EQ(unlink((const char *)ep.path), 0);
  lfd2 = raw_listen_unix(&ep);
  expect_connect_result(&ep, 0);
  close(lfd2);
}

/* ---- a peer that closes with data unread --------------------------------------------- */
void test_unix_peer_closes_with_data_unread(void) {
  h_endpoint ep;
  int64_t c, s;
  int64_t l = unix_pair(&ep, &c, &s);
  h_write_all(s, "bye", 3);
  h_write_all(c, "never read", 10); /* done: in s's receive queue (a Unix send queues to the peer) */
  h_close_wait(s);
  /* c reads everything s wrote, then the reset instead of end of stream (tcp.h) */
  uint8_t buf[3];
  h_read_exact(c, buf, 3);
  CHECK(memcmp(buf, "bye", 3) == 0);
  CHECK_EQ(h_result(h_read(c, 10)), TCP_ERR_CONNECTION_RESET);
  int64_t w = h_result(h_write(c, "x", 1));
  CHECK(w == TCP_ERR_BROKEN_PIPE || w == TCP_ERR_CONNECTION_RESET);
  h_close_wait(c);
  h_close_wait(l);
}

/* ---- TCP-only calls ------------------------------------------------------------------- */
static void check_not_tcp(int64_t h, bool connection) {
  uint8_t a[16];
  CHECK_EQ(tcp_local_address(h, a), TCP_ERR_NOT_TCP);
  CHECK_EQ(tcp_local_port(h), TCP_ERR_NOT_TCP);
  CHECK_EQ(tcp_local_scope_id(h), TCP_ERR_NOT_TCP);
  int32_t want = connection ? TCP_ERR_NOT_TCP : TCP_ERR_BAD_HANDLE; /* as for TCP: connections only */
  CHECK_EQ(tcp_remote_address(h, a), want);
  CHECK_EQ(tcp_remote_port(h), want);
  CHECK_EQ(tcp_remote_scope_id(h), want);
  CHECK_EQ(tcp_get_no_delay(h), want);
  CHECK_EQ(tcp_set_no_delay(h, 1), want);
  CHECK_EQ(tcp_get_keep_alive(h), want);
  CHECK_EQ(tcp_set_keep_alive(h, 1), want);
}

void test_unix_not_tcp(void) {
  h_endpoint ep;
  int64_t c, s;
  int64_t l = unix_pair(&ep, &c, &s);
  check_not_tcp(l, false);
  check_not_tcp(c, true);
  check_not_tcp(s, true);
  /* and the path calls on TCP sockets */
  int64_t port = h_port();
  int64_t tc, ts;
  int64_t tl = h_pair(port, port, H_LOOPBACK4, 4, &tc, &ts);
  uint8_t p[TCP_UNIX_PATH_BYTES_MAX];
  CHECK_EQ(tcp_local_path(tl, p, sizeof p), TCP_ERR_ADDRESS_FAMILY);
  CHECK_EQ(tcp_local_path(tc, p, sizeof p), TCP_ERR_ADDRESS_FAMILY);
  CHECK_EQ(tcp_remote_path(ts, p, sizeof p), TCP_ERR_ADDRESS_FAMILY);
  CHECK_EQ(tcp_remote_path(tl, p, sizeof p), TCP_ERR_BAD_HANDLE);
  /* the sockets still work after all those refusals */
  uint8_t b = 0;
  h_write_all(c, "k", 1);
  h_read_exact(s, &b, 1);
  CHECK_EQ(b, 'k');
  int64_t all[] = {c, s, l, tc, ts, tl};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) h_close_wait(all[i]);
}

/* ---- path accessors ------------------------------------------------------------------- */
static void check_path(int64_t h, bool remote, const h_endpoint *want) {
  uint8_t got[TCP_UNIX_PATH_BYTES_MAX];
  memset(got, 0xee, sizeof got);
  int32_t n = remote ? tcp_remote_path(h, got, sizeof got) : tcp_local_path(h, got, sizeof got);
  CHECK_EQ(n, want != NULL ? want->path_len : 0);
  if (want != NULL) CHECK(memcmp(got, want->path, (size_t)n) == 0);
}

void test_unix_path_accessors(void) {
  h_endpoint ep;
  int64_t c, s;
  int64_t l = unix_pair(&ep, &c, &s);
  check_path(l, false, &ep);  /* the listener's path */
  check_path(s, false, &ep);  /* an accepted connection's local path: the listener's */
  check_path(s, true, NULL);  /* its peer, the client, is unnamed */
  check_path(c, false, NULL); /* the client's own side: unnamed */
  check_path(c, true, &ep);   /* the client's peer: the listener's path */
  uint8_t got[TCP_UNIX_PATH_BYTES_MAX];
  CHECK_EQ(tcp_local_path(l, got, ep.path_len), ep.path_len); /* exactly enough room */
  CHECK_EQ(tcp_local_path(l, got, ep.path_len - 1), TCP_ERR_INVALID_ARGUMENT);
  CHECK_EQ(tcp_local_path(l, NULL, 100), TCP_ERR_INVALID_ARGUMENT);
  CHECK_EQ(tcp_local_path(l, got, -1), TCP_ERR_INVALID_ARGUMENT);
  CHECK_EQ(tcp_local_path(c, got, 0), 0); /* unnamed: fits in nothing */
  CHECK_EQ(tcp_remote_path(l, got, sizeof got), TCP_ERR_BAD_HANDLE);
  /* a shared listener's member answers with the group's path */
  int64_t port = h_port();
  h_endpoint shared_ep = h_fresh_unix_endpoint();
  int64_t m1 = h_listen_at(port, &shared_ep, 0, TCP_LISTEN_SHARED);
  int64_t m2 = h_listen_at(port, &shared_ep, 0, TCP_LISTEN_SHARED);
  check_path(m1, false, &shared_ep);
  check_path(m2, false, &shared_ep);
  h_close_wait(c);
  CHECK_EQ(tcp_local_path(c, got, sizeof got), TCP_ERR_CLOSED);
  int64_t rest[] = {s, l, m1, m2};
  for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) h_close_wait(rest[i]);
}

/* ---- the socket file ------------------------------------------------------------------ */
void test_unix_socket_file_removed_on_close(void) {
  h_endpoint ep;
  int64_t c, s;
  int64_t l = unix_pair(&ep, &c, &s);
  CHECK(is_socket_file(&ep));
  int64_t cl = h_close(l);
  CHECK(!exists(&ep)); /* at once: before the close completes */
  CHECK_EQ(h_result(cl), 0);
  /* the accepted connection does not own the file and goes on working */
  uint8_t b = 0;
  h_write_all(c, "q", 1);
  h_read_exact(s, &b, 1);
  CHECK_EQ(b, 'q');
  /* and the path may be listened on again at once */
  int64_t port = h_port();
  int64_t l2 = h_listen_at(port, &ep, 0, 0);
  expect_connect_result(&ep, 0);
  tcp_close_finalizer((void *)(intptr_t)l2); /* a finalizer's close removes it too */
  CHECK(!exists(&ep));
  h_close_wait(c);
  h_close_wait(s);
}

void test_unix_socket_file_replaced_is_kept(void) {
  int64_t port = h_port();
  h_endpoint ep = h_fresh_unix_endpoint();
  int64_t l = h_listen_at(port, &ep, 0, 0);
  /* someone removes the file and puts another one there: not the engine's */
  CHECK_EQ(unlink((const char *)ep.path), 0);
  make_regular_file(&ep);
  h_close_wait(l);
  CHECK(exists(&ep) && !is_socket_file(&ep));
  /* likewise a new server's socket file */
  CHECK_EQ(unlink((const char *)ep.path), 0);
  int64_t l2 = h_listen_at(port, &ep, 0, 0);
  CHECK_EQ(unlink((const char *)ep.path), 0);
  make_stale_socket_file(&ep);
  h_close_wait(l2);
  CHECK(is_socket_file(&ep));
}

void test_unix_socket_file_removed_at_shutdown(void) {
  int64_t port = h_port();
  h_endpoint a = h_fresh_unix_endpoint(), b = h_fresh_unix_endpoint();
  h_listen_at(port, &a, 0, 0);
  h_listen_at(port, &b, 0, TCP_LISTEN_SHARED);
  h_listen_at(port, &b, 0, TCP_LISTEN_SHARED);
  CHECK(is_socket_file(&a) && is_socket_file(&b));
  h_engine_shutdown();
  CHECK(!exists(&a));
  CHECK(!exists(&b));
  h_engine_init();
}

/* ---- shared listeners ----------------------------------------------------------------- */
void test_unix_shared_listeners(void) {
  int64_t pa = h_port(), pb = h_port();
  h_endpoint ep = h_fresh_unix_endpoint();
  int64_t m1 = h_listen_at(pa, &ep, 0, TCP_LISTEN_SHARED);
  CHECK_EQ(tcp_listen_unix(pa, ep.path, ep.path_len, 0, 0), TCP_ERR_ADDRESS_IN_USE); /* exclusive on a group */
  int64_t m2 = h_listen_at(pb, &ep, 0, TCP_LISTEN_SHARED);
  CHECK(m1 != m2);
  /* the first member's close leaves the file to the group */
  h_close_wait(m1);
  CHECK(is_socket_file(&ep));
  int64_t acc = h_accept(m2);
  expect_connect_result(&ep, 0);
  int64_t s = h_accepted(acc);
  h_close_wait(m2); /* the last member: the file goes */
  CHECK(!exists(&ep));
  h_close_wait(s);
  /* an exclusive listener's path refuses a shared one too */
  int64_t x = h_listen_at(pa, &ep, 0, 0);
  CHECK_EQ(tcp_listen_unix(pb, ep.path, ep.path_len, 0, TCP_LISTEN_SHARED), TCP_ERR_ADDRESS_IN_USE);
  h_close_wait(x);
}

/* ---- connect errors ------------------------------------------------------------------- */
void test_unix_connect_errors(void) {
  int64_t port = h_port();
  h_endpoint missing = h_fresh_unix_endpoint();
  expect_connect_result(&missing, TCP_ERR_ADDRESS_NOT_AVAILABLE); /* ENOENT */
  h_endpoint through_missing = missing;
  through_missing.path_len += snprintf((char *)through_missing.path + missing.path_len, 16, "/x");
  expect_connect_result(&through_missing, TCP_ERR_ADDRESS_NOT_AVAILABLE); /* a missing directory */
  CHECK_EQ(tcp_listen_unix(port, through_missing.path, through_missing.path_len, 0, 0),
           TCP_ERR_ADDRESS_NOT_AVAILABLE);
  h_endpoint file = h_fresh_unix_endpoint();
  make_regular_file(&file);
  expect_connect_result(&file, TCP_ERR_CONNECTION_REFUSED); /* not a socket */
  h_endpoint through_file = file;
  through_file.path_len += snprintf((char *)through_file.path + file.path_len, 16, "/x");
  expect_connect_result(&through_file, TCP_ERR_ADDRESS_NOT_AVAILABLE); /* ENOTDIR */
  /* a connect timeout on a Unix socket behaves as on TCP when it does not fire */
  int64_t l = h_listen_at(port, &missing, 0, 0);
  int64_t h = 0;
  CHECK_EQ(h_result(h_connect_to(port, &missing, 60000, &h)), 0);
  h_close_wait(h);
  h_close_wait(l);
}
/* A listener that accepts nothing: its backlog fills, and each backend does
 * what tcp.h says (uv: EAGAIN at once, as libuv; io_uring: the connect waits
 * until its deadline). Backlog 1 admits at most backlog + 1 connections. */
void test_unix_connect_full_backlog(void) {
  enum { N = 6 };
  int64_t port = h_port();
  h_endpoint ep = h_fresh_unix_endpoint();
  int64_t l = h_listen_at(port, &ep, 1, 0);
  int64_t id[N], h[N];
  for (int i = 0; i < N; i++) id[i] = h_connect_to(port, &ep, 300, &h[i]);
  bool uv = strcmp(tcp_backend_name(), "uv") == 0;
  int connected = 0, refused = 0;
  for (int i = 0; i < N; i++) {
    h_req *r = h_await(id[i]);
    if (r->c.result == 0) {
      connected++;
    } else if (uv) {
      CHECK_EQ(r->c.result, TCP_ERR_OS);
      CHECK_EQ(r->c.payload_int, EAGAIN);
      refused++;
    } else {
      CHECK_EQ(r->c.result, TCP_ERR_TIMED_OUT);
      refused++;
    }
  }
  CHECK(connected >= 1 && connected <= 2);
  CHECK_EQ(refused, N - connected);
  for (int i = 0; i < N; i++) h_close_wait(h[i]);
  h_close_wait(l);
}
#endif
