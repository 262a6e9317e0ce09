/* engine.h -- engine lifetime and the engine lock (engine.c).
 *
 * One mutex guards every core structure: the handle table, sockets, ops, the
 * loop's queues. Callers' threads take it in every tcp.h call; the I/O thread
 * takes it between backend polls. */
#ifndef ZIG_TCP_ENGINE_H
#define ZIG_TCP_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "zt_assert.h"

void engine_lock(void);
void engine_unlock(void);
/* Does the calling thread hold the engine lock? (for asserts) */
bool engine_lock_held(void);
#define ASSERT_LOCKED() ZT_ASSERT(engine_lock_held())

/* Lock held: TCP_OK while the engine runs and is not stopping, else
 * TCP_ERR_NOT_INITIALIZED or TCP_ERR_SHUTDOWN. */
int32_t engine_state_error(void);
/* Lock held: tcp_shutdown is in progress. */
bool engine_stopping(void);
/* Lock held: the running backend instance. */
backend *engine_backend(void);

/* tcp_init / tcp_shutdown / tcp_backend_name, behind the tcp.h entry points. */
int32_t engine_start(void *dart_api_dl_data);
int32_t engine_stop(void);
const char *engine_backend_name(void);

#endif /* ZIG_TCP_ENGINE_H */
