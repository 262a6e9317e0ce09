/* handles.h -- the handle table (handles.c): slots with generations, so a
 * handle is a positive 64-bit id (slot | generation << 32) that a stale,
 * made-up or foreign value can never alias. The table outlives an engine
 * restart, so handles from before stay recognisably closed.
 *
 * Every call: engine lock held. */
#ifndef ZIG_TCP_HANDLES_H
#define ZIG_TCP_HANDLES_H

#include <stddef.h>
#include <stdint.h>

#include "sock.h"

/* Gives s a slot and a handle (s->slot, s->handle). TCP_OK or TCP_ERR_NO_MEMORY. */
int32_t handles_insert(tcp_sock *s);
/* The open socket behind handle, or NULL with *error = TCP_ERR_CLOSED (it was
 * ours and is closed or closing) or TCP_ERR_BAD_HANDLE (never issued). */
tcp_sock *handles_find(int64_t handle, int32_t *error);
/* The handle stops working now; the slot stays taken until handles_remove. */
void handles_retire(tcp_sock *s);
/* Frees s's slot (after handles_retire). */
void handles_remove(tcp_sock *s);
/* Sockets that have a slot (open, or closing and not yet released). */
size_t handles_live(void);
/* Iterates over sockets with a slot: *cursor starts at 0; NULL at the end. */
tcp_sock *handles_next(uint32_t *cursor);

#endif /* ZIG_TCP_HANDLES_H */
