/* platform.h -- the few OS primitives the core needs: a mutex, a thread, a
 * monotonic clock. POSIX and Windows differ only here. */
#ifndef ZIG_TCP_PLATFORM_H
#define ZIG_TCP_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

#if defined(_WIN32)
#include <windows.h>
typedef SRWLOCK plat_mutex;
#define PLAT_MUTEX_INIT SRWLOCK_INIT
typedef HANDLE plat_thread;
#else
#include <pthread.h>
typedef pthread_mutex_t plat_mutex;
#define PLAT_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
typedef pthread_t plat_thread;
#endif

void plat_lock(plat_mutex *m);
void plat_unlock(plat_mutex *m);
/* Starts body(arg) on a new thread that takes none of the process's signals. */
bool plat_thread_start(plat_thread *thread, void (*body)(void *), void *arg);
void plat_thread_join(plat_thread thread);
/* Milliseconds of a monotonic clock. */
int64_t plat_now_ms(void);
/* Lets another thread of this CPU run. */
void plat_yield(void);
/* Gives memory the allocator holds free back to the OS (glibc: malloc_trim);
 * a no-op where the allocator does that by itself. */
void plat_release_free_memory(void);

#endif /* ZIG_TCP_PLATFORM_H */
