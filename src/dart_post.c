/* dart_post.c -- the one place that talks to the Dart VM: resolving
 * Dart_PostCObject from the DL API table, and posting completion batches.
 *
 * A batch is every completion found in one pass of the I/O thread. They are
 * grouped by destination port (keeping their order) and each group travels as
 * ONE message: a flat array [request_id, result, payload] * N, so a busy
 * isolate wakes once per batch instead of once per operation. */
#include <stdlib.h>
#include <string.h>

#include "dart_post.h"

#include "dart_api_dl.h"
#include "ops.h"
#include "tcp.h"
#include "zt_assert.h"

static dart_post_cobject_fn post_cobject;

int32_t dart_api_bind(void *dl_data) {
  const dart_api_dl_data *api = (const dart_api_dl_data *)dl_data;
  if (api == NULL || api->major != DART_DL_MAJOR_VERSION || api->minor < DART_DL_MINOR_VERSION_MIN ||
      api->functions == NULL)
    return TCP_ERR_DART_API;
  for (const dart_api_dl_entry *e = api->functions; e->name != NULL; e++) {
    if (strcmp(e->name, DART_POST_COBJECT_NAME) == 0) {
      post_cobject = (dart_post_cobject_fn)e->function;
      return post_cobject != NULL ? TCP_OK : TCP_ERR_DART_API;
    }
  }
  return TCP_ERR_DART_API;
}

/* Finalizer the VM runs when a read's Uint8List is garbage-collected. */
static void free_read_data(void *isolate_callback_data, void *peer) {
  (void)isolate_callback_data;
  free(peer);
}

/* Posts the n ops of one port as one message. Returns false if the message
 * could not be built (out of memory) or the port refused it; the ops' read
 * buffers are then still ours. */
static bool post_group(int64_t port, tcp_op **ops, size_t n) {
  size_t values_count = 3 * n;
  /* One allocation: the outer array, its value pointers, and the values. */
  size_t bytes = sizeof(dart_cobject) + values_count * sizeof(dart_cobject *) +
                 values_count * sizeof(dart_cobject);
  unsigned char *block = malloc(bytes);
  if (block == NULL) return false;
  dart_cobject *message = (dart_cobject *)block;
  dart_cobject **values = (dart_cobject **)(block + sizeof(dart_cobject));
  dart_cobject *items = (dart_cobject *)(block + sizeof(dart_cobject) + values_count * sizeof(dart_cobject *));
  for (size_t i = 0; i < n; i++) {
    tcp_op *op = ops[i];
    dart_cobject *id = &items[3 * i], *result = id + 1, *payload = id + 2;
    id->type = DART_COBJECT_INT64;
    id->value.as_int64 = op->request_id;
    result->type = DART_COBJECT_INT64;
    result->value.as_int64 = op->result;
    if (op->result < 0) {
      payload->type = DART_COBJECT_INT64;
      payload->value.as_int64 = op->os_error;
    } else if (op->kind == OP_READ && op->result > 0 && op->data_by_copy) {
      payload->type = DART_COBJECT_TYPED_DATA; /* the VM copies it; ours is recycled */
      payload->value.as_typed_data.type = DART_TYPED_DATA_UINT8;
      payload->value.as_typed_data.length = (intptr_t)op->result;
      payload->value.as_typed_data.values = op->data;
    } else if (op->kind == OP_READ && op->result > 0) {
      payload->type = DART_COBJECT_EXTERNAL_TYPED_DATA;
      payload->value.as_external_typed_data.type = DART_TYPED_DATA_UINT8;
      payload->value.as_external_typed_data.length = (intptr_t)op->result;
      payload->value.as_external_typed_data.data = op->data;
      payload->value.as_external_typed_data.peer = op->data;
      payload->value.as_external_typed_data.callback = free_read_data;
    } else {
      payload->type = DART_COBJECT_NULL;
    }
    values[3 * i] = id;
    values[3 * i + 1] = result;
    values[3 * i + 2] = payload;
  }
  message->type = DART_COBJECT_ARRAY;
  message->value.as_array.length = (intptr_t)values_count;
  message->value.as_array.values = values;
  bool posted = post_cobject(port, message);
  free(block);
  return posted;
}

/* Does a posted op's data now belong to the VM (external typed data)? */
static bool hands_over_data(const tcp_op *op) {
  return op->kind == OP_READ && op->result > 0 && !op->data_by_copy;
}

static tcp_op *op_at(const qlink *l) { return QUEUE_ENTRY(l, tcp_op, core_link); }

void dart_post_ops(const queue *list) {
  size_t n = list->len;
  if (n == 0) return;
  tcp_op **ops = malloc(n * sizeof(*ops));
  tcp_op **group = malloc(n * sizeof(*group));
  if (ops == NULL || group == NULL) {
    /* Cannot even group: post one at a time (no allocation beyond the message). */
    free(ops);
    free(group);
    for (const qlink *l = list->head; l != NULL; l = l->next) {
      tcp_op *op = op_at(l);
      if (post_group(op->dart_port, &op, 1) && hands_over_data(op)) op->data = NULL;
    }
    return;
  }
  size_t i = 0;
  for (const qlink *l = list->head; l != NULL; l = l->next) ops[i++] = op_at(l);
  ZT_ASSERT(i == n);
  /* Group by port in order of first appearance; O(n * ports), and there are
   * few ports (one per isolate). Order within a port is kept. */
  for (size_t first = 0; first < n; first++) {
    if (ops[first] == NULL) continue;
    int64_t port = ops[first]->dart_port;
    size_t count = 0;
    for (size_t j = first; j < n; j++) {
      if (ops[j] != NULL && ops[j]->dart_port == port) {
        ZT_ASSERT(ops[j]->state == OP_DONE);
        group[count++] = ops[j];
        ops[j] = NULL;
      }
    }
    /* On success the VM owns the read data (its finalizer frees it). */
    if (post_group(port, group, count))
      for (size_t j = 0; j < count; j++)
        if (hands_over_data(group[j])) group[j]->data = NULL;
  }
  free(ops);
  free(group);
}
