/* dart_post.h -- the one place that talks to the Dart VM (dart_post.c). */
#ifndef ZIG_TCP_DART_POST_H
#define ZIG_TCP_DART_POST_H

#include <stdint.h>

#include "queue.h"

/* Resolves Dart_PostCObject from NativeApi.initializeApiDLData's table. */
int32_t dart_api_bind(void *dl_data);
/* Posts every op of the queue (tcp_op.core_link, OP_DONE), grouped by port, one
 * message per port. Without the lock. The ops stay the caller's; a read whose
 * buffer now belongs to the VM (external typed data) has data = NULL. */
void dart_post_ops(const queue *ops);

#endif /* ZIG_TCP_DART_POST_H */
