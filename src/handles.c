/* handles.c -- the handle table: slot + generation ids (see handles.h). */
#include "handles.h"

#include <stdlib.h>

#include "engine.h"

#define NO_SLOT UINT32_MAX
#define GENERATION_MAX 0x7fffffffu
#define SLOTS_FIRST 64u

typedef struct slot {
  tcp_sock *sock;      /* NULL when free */
  uint32_t generation; /* of the handle this slot issues next / issued last */
  uint32_t next_free;
} slot;

static struct {
  slot *slots;
  uint32_t len, cap, free_head;
  size_t live;
} H = {.free_head = NO_SLOT};

static int64_t handle_of(uint32_t index, uint32_t generation) {
  return ((int64_t)generation << 32) | (int64_t)index;
}

static bool grow(void) {
  uint32_t cap = H.cap ? H.cap * 2 : SLOTS_FIRST;
  if (cap <= H.cap) return false;
  slot *grown = realloc(H.slots, (size_t)cap * sizeof(slot));
  if (grown == NULL) return false;
  H.slots = grown;
  H.cap = cap;
  return true;
}

int32_t handles_insert(tcp_sock *s) {
  ASSERT_LOCKED();
  uint32_t index;
  if (H.free_head != NO_SLOT) {
    index = H.free_head;
    H.free_head = H.slots[index].next_free;
  } else {
    if (H.len == H.cap && !grow()) return TCP_ERR_NO_MEMORY;
    index = H.len++;
    H.slots[index].generation = 1;
    H.slots[index].sock = NULL;
  }
  ZT_ASSERT(H.slots[index].sock == NULL);
  H.slots[index].sock = s;
  s->slot = index;
  s->handle = handle_of(index, H.slots[index].generation);
  H.live++;
  return TCP_OK;
}

tcp_sock *handles_find(int64_t handle, int32_t *error) {
  ASSERT_LOCKED();
  uint64_t generation = (uint64_t)handle >> 32;
  uint64_t index = (uint64_t)handle & 0xffffffffu;
  if (handle <= 0 || generation == 0 || generation > GENERATION_MAX || index >= H.len) {
    *error = TCP_ERR_BAD_HANDLE;
    return NULL;
  }
  slot *sl = &H.slots[index];
  if (generation == sl->generation && sl->sock != NULL && !sl->sock->closing) {
    ZT_ASSERT(sl->sock->handle == handle);
    return sl->sock;
  }
  /* Generations only grow, and every one below the current was issued: an
   * older one is a closed handle, a newer one was never ours. */
  *error = generation < sl->generation ? TCP_ERR_CLOSED : TCP_ERR_BAD_HANDLE;
  return NULL;
}

void handles_retire(tcp_sock *s) {
  ASSERT_LOCKED();
  slot *sl = &H.slots[s->slot];
  ZT_ASSERT(sl->sock == s);
  ZT_ASSERT(handle_of(s->slot, sl->generation) == s->handle);
  sl->generation = sl->generation >= GENERATION_MAX ? 1 : sl->generation + 1;
}

void handles_remove(tcp_sock *s) {
  ASSERT_LOCKED();
  slot *sl = &H.slots[s->slot];
  ZT_ASSERT(sl->sock == s);
  ZT_ASSERT(handle_of(s->slot, sl->generation) != s->handle); /* retired first */
  ZT_ASSERT(H.live > 0);
  sl->sock = NULL;
  sl->next_free = H.free_head;
  H.free_head = s->slot;
  H.live--;
}

size_t handles_live(void) {
  ASSERT_LOCKED();
  return H.live;
}

tcp_sock *handles_next(uint32_t *cursor) {
  ASSERT_LOCKED();
  while (*cursor < H.len) {
    tcp_sock *s = H.slots[(*cursor)++].sock;
    if (s != NULL) return s;
  }
  return NULL;
}
