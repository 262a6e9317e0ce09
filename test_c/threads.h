/*
 * threads.h -- the least of threads for tests that call the engine from
 * several threads at once: start one, join it. POSIX threads or Win32.
 *
 *   THREAD_FN(name) { ... THREAD_RETURN; }   defines a thread body taking `arg`
 */
#ifndef ZIG_TCP_THREADS_H
#define ZIG_TCP_THREADS_H

#include <stdbool.h>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
typedef HANDLE h_thread;
typedef DWORD(WINAPI *h_thread_fn)(LPVOID);
#define THREAD_FN(name) static DWORD WINAPI name(LPVOID arg)
#define THREAD_RETURN return 0
static inline bool thread_start(h_thread *t, h_thread_fn fn, void *arg) {
  *t = CreateThread(NULL, 0, fn, arg, 0, NULL);
  return *t != NULL;
}
static inline void thread_join(h_thread t) {
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
}
#else
#include <pthread.h>
typedef pthread_t h_thread;
typedef void *(*h_thread_fn)(void *);
#define THREAD_FN(name) static void *name(void *arg)
#define THREAD_RETURN return NULL
static inline bool thread_start(h_thread *t, h_thread_fn fn, void *arg) {
  return pthread_create(t, NULL, fn, arg) == 0;
}
static inline void thread_join(h_thread t) { pthread_join(t, NULL); }
#endif

#endif /* ZIG_TCP_THREADS_H */
