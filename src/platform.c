/* platform.c -- mutex, thread, clock and the assert handler, per OS. */
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>

#include "zt_assert.h"

void zt_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "zig_tcp: invariant violated: %s (%s:%d)\n", expr, file, line);
  fflush(stderr);
  abort();
}

typedef struct thread_start {
  void (*body)(void *);
  void *arg;
} thread_start;

#if defined(_WIN32)
#include <process.h>

void plat_lock(plat_mutex *m) { AcquireSRWLockExclusive(m); }
void plat_unlock(plat_mutex *m) { ReleaseSRWLockExclusive(m); }

static unsigned __stdcall thread_main(void *p) {
  thread_start start = *(thread_start *)p;
  free(p);
  start.body(start.arg);
  return 0;
}

bool plat_thread_start(plat_thread *thread, void (*body)(void *), void *arg) {
  thread_start *start = malloc(sizeof(*start));
  if (start == NULL) return false;
  start->body = body;
  start->arg = arg;
  uintptr_t t = _beginthreadex(NULL, 0, thread_main, start, 0, NULL);
  if (t == 0) {
    free(start);
    return false;
  }
  *thread = (HANDLE)t;
  return true;
}

void plat_thread_join(plat_thread thread) {
  WaitForSingleObject(thread, INFINITE);
  CloseHandle(thread);
}

int64_t plat_now_ms(void) { return (int64_t)GetTickCount64(); }
void plat_yield(void) { SwitchToThread(); }
void plat_release_free_memory(void) {}

#else
#include <sched.h>
#include <signal.h>
#include <time.h>

void plat_lock(plat_mutex *m) { pthread_mutex_lock(m); }
void plat_unlock(plat_mutex *m) { pthread_mutex_unlock(m); }

static void *thread_main(void *p) {
  thread_start start = *(thread_start *)p;
  free(p);
  start.body(start.arg);
  return NULL;
}

bool plat_thread_start(plat_thread *thread, void (*body)(void *), void *arg) {
  thread_start *start = malloc(sizeof(*start));
  if (start == NULL) return false;
  start->body = body;
  start->arg = arg;
  /* The I/O thread must not take the application's signals. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  bool ok = pthread_create(thread, NULL, thread_main, start) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!ok) free(start);
  return ok;
}

void plat_thread_join(plat_thread thread) { pthread_join(thread, NULL); }

int64_t plat_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void plat_yield(void) { sched_yield(); }

#if defined(__GLIBC__)
#include <malloc.h>
void plat_release_free_memory(void) { malloc_trim(0); }
#else
void plat_release_free_memory(void) {}
#endif
#endif
