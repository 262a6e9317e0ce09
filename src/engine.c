/* engine.c -- engine lifetime: the engine lock, backend choice, starting and
 * stopping the I/O thread (see engine.h). */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "dart_post.h"
#include "handles.h"
#include "loop.h"
#include "platform.h"

#if !defined(_WIN32)
#include <signal.h>
#endif

/* lifecycle_mutex serialises tcp_init/tcp_shutdown; engine_mutex guards the core. */
static plat_mutex lifecycle_mutex = PLAT_MUTEX_INIT;
static plat_mutex engine_mutex = PLAT_MUTEX_INIT;
static _Thread_local bool lock_held;

static struct {
  bool running;  /* between a successful tcp_init and the end of tcp_shutdown */
  bool stopping; /* tcp_shutdown in progress */
  backend *backend;
} E;

void engine_lock(void) {
  ZT_ASSERT(!lock_held); /* not recursive */
  plat_lock(&engine_mutex);
  lock_held = true;
}

void engine_unlock(void) {
  ZT_ASSERT(lock_held);
  lock_held = false;
  plat_unlock(&engine_mutex);
}

bool engine_lock_held(void) { return lock_held; }

int32_t engine_state_error(void) {
  ASSERT_LOCKED();
  if (!E.running) return TCP_ERR_NOT_INITIALIZED;
  if (E.stopping) return TCP_ERR_SHUTDOWN;
  return TCP_OK;
}

bool engine_stopping(void) {
  ASSERT_LOCKED();
  return E.stopping;
}

backend *engine_backend(void) {
  ASSERT_LOCKED();
  ZT_ASSERT(E.backend != NULL);
  return E.backend;
}

static const backend_vtable *const backend_candidates[] = {
#if defined(_WIN32)
    &backend_iocp,
#else
#if defined(ZIG_TCP_HAVE_IO_URING)
    &backend_io_uring,
#endif
    &backend_uv,
#endif
#if defined(ZIG_TCP_HAVE_SIM)
    &backend_sim, /* only when forced: it is last and never fails to start */
#endif
};

/* Tries the backends in order of preference; ZIG_TCP_BACKEND=name forces one
 * (and then its failure is final). Without it, any failure to set up the
 * preferred backend (no io_uring, seccomp, an old kernel) falls through to the
 * next one. */
static int32_t create_backend(backend **out) {
  const char *forced = getenv("ZIG_TCP_BACKEND");
  if (forced != NULL && forced[0] == '\0') forced = NULL;
  int32_t rc = TCP_ERR_UNSUPPORTED;
  for (size_t i = 0; i < sizeof(backend_candidates) / sizeof(backend_candidates[0]); i++) {
    const backend_vtable *vt = backend_candidates[i];
#if defined(ZIG_TCP_HAVE_SIM)
    if (vt == &backend_sim && forced == NULL) continue;
#endif
    if (forced != NULL && strcmp(forced, vt->name) != 0) continue;
    rc = vt->create(loop_sink(), out);
    if (rc == TCP_OK) {
      ZT_ASSERT((*out)->vtable == vt && (*out)->sink == loop_sink());
      return TCP_OK;
    }
    if (forced != NULL) return rc;
  }
  return rc;
}

#if !defined(_WIN32)
/* Safety net: sends use MSG_NOSIGNAL, but libuv's writes do not. Only a
 * default disposition is changed; an application's handler is kept. */
static void ignore_sigpipe(void) {
  struct sigaction current;
  if (sigaction(SIGPIPE, NULL, &current) == 0 && current.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
}
#endif

int32_t engine_start(void *dart_api_dl_data) {
  plat_lock(&lifecycle_mutex);
  engine_lock();
  bool running = E.running;
  engine_unlock();
  int32_t rc = TCP_OK;
  if (running) goto out;
  rc = dart_api_bind(dart_api_dl_data);
  if (rc != TCP_OK) goto out;
#if !defined(_WIN32)
  ignore_sigpipe();
#endif
  backend *b = NULL;
  rc = create_backend(&b);
  if (rc != TCP_OK) goto out;
  engine_lock();
  E.backend = b;
  E.stopping = false;
  E.running = true;
  bool started = loop_start(b);
  if (!started) {
    E.running = false;
    E.backend = NULL;
  }
  engine_unlock();
  if (!started) {
    b->vtable->destroy(b);
    rc = TCP_ERR_NO_MEMORY;
  }
out:
  plat_unlock(&lifecycle_mutex);
  return rc;
}

int32_t engine_stop(void) {
  plat_lock(&lifecycle_mutex);
  engine_lock();
  if (!E.running) {
    engine_unlock();
    plat_unlock(&lifecycle_mutex);
    return TCP_ERR_NOT_INITIALIZED;
  }
  E.stopping = true;
  uint32_t cursor = 0;
  tcp_sock *s;
  while ((s = handles_next(&cursor)) != NULL)
    if (!s->closing) sock_begin_close(s, TCP_ERR_SHUTDOWN, NULL);
  loop_notify_stop();
  engine_unlock();
  loop_join();
  engine_lock();
  backend *b = E.backend;
  ZT_ASSERT(handles_live() == 0);
  E.running = false;
  E.stopping = false;
  E.backend = NULL;
  ops_free_pools();
  engine_unlock();
  b->vtable->destroy(b);
  plat_unlock(&lifecycle_mutex);
  return TCP_OK;
}

const char *engine_backend_name(void) {
  engine_lock();
  const char *name = E.running ? E.backend->vtable->name : NULL;
  engine_unlock();
  return name;
}
