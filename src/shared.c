/* shared.c -- shared listeners, as dart:io means `shared: true`: isolates of
 * one process that bind the same address and port share ONE OS listening
 * socket, and its connections are spread among them; another process cannot
 * join (no SO_REUSEPORT). Each tcp_listen with TCP_LISTEN_SHARED returns a
 * member handle; the first one creates the group's listener (hidden from
 * callers), later ones on the same address, port and v6_only join it (Unix
 * listeners: on the same path bytes, as dart:io keys them by sun_path). A
 * member's accepts run on the group's listener and complete on the member's
 * port, as do the connections they make. Closing a member ends its own accepts
 * and leaves the others working; the OS socket closes with the last member.
 * Backends never see members: this works the same on every backend.
 *
 * Every function: engine lock held. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "handles.h"
#include "loop.h"
#include "sock.h"

typedef struct group_entry {
  tcp_sock *listener;
  struct sockaddr_storage addr; /* TCP: as bound (the port is the real one); Unix: the path asked for */
  int addr_len;
  bool v6_only;
} group_entry;

static struct {
  group_entry *entries;
  size_t len, cap;
} G;

static bool same_address(const struct sockaddr_storage *a, int a_len, const struct sockaddr_storage *b, int b_len) {
  if (a->ss_family != b->ss_family) return false;
  if (a->ss_family == AF_UNIX) /* the path's bytes, an abstract name's length included */
    return a_len == b_len && memcmp(a, b, (size_t)a_len) == 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && memcmp(&x->sin_addr, &y->sin_addr, sizeof(x->sin_addr)) == 0;
  }
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
  return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
         memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

tcp_sock *shared_find(const struct sockaddr_storage *addr, int addr_len, bool v6_only) {
  ASSERT_LOCKED();
  for (size_t i = 0; i < G.len; i++) {
    group_entry *e = &G.entries[i];
    ZT_ASSERT(e->listener->in_group_table && !e->listener->closing);
    if (e->v6_only == v6_only && same_address(&e->addr, e->addr_len, addr, addr_len)) return e->listener;
  }
  return NULL;
}

bool shared_register(tcp_sock *listener, const struct sockaddr_storage *addr, int addr_len, bool v6_only) {
  ASSERT_LOCKED();
  ZT_ASSERT(addr_len > 0 && (size_t)addr_len <= sizeof(*addr));
  if (G.len == G.cap) {
    size_t cap = G.cap ? G.cap * 2 : 8;
    group_entry *grown = realloc(G.entries, cap * sizeof(*grown));
    if (grown == NULL) return false;
    G.entries = grown;
    G.cap = cap;
  }
  G.entries[G.len].listener = listener;
  G.entries[G.len].addr = *addr;
  G.entries[G.len].addr_len = addr_len;
  G.entries[G.len].v6_only = v6_only;
  G.len++;
  listener->hidden = true;
  listener->in_group_table = true;
  return true;
}

void shared_forget(tcp_sock *group) {
  ASSERT_LOCKED();
  if (!group->in_group_table) return;
  for (size_t i = 0; i < G.len; i++) {
    if (G.entries[i].listener != group) continue;
    G.entries[i] = G.entries[--G.len];
    group->in_group_table = false;
    break;
  }
  ZT_ASSERT(!group->in_group_table);
  if (G.len == 0) {
    free(G.entries);
    G.entries = NULL;
    G.cap = 0;
  }
}

tcp_sock *shared_join(tcp_sock *group, int64_t dart_port, int32_t *error) {
  ASSERT_LOCKED();
  ZT_ASSERT(group->in_group_table && !group->closing);
  tcp_sock *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    *error = TCP_ERR_NO_MEMORY;
    return NULL;
  }
  m->kind = SOCK_LISTENER;
  m->dart_port = dart_port;
  m->fd = group->fd; /* for the address accessors; the group outlives its members */
  m->family = group->family;
  m->group = group;
  int32_t rc = handles_insert(m);
  if (rc != TCP_OK) {
    free(m);
    *error = rc;
    return NULL;
  }
  group->group_members++;
  return m;
}

/* The member's accepts have all ended: its close completes; the group closes
 * with its last member. */
static void member_finish(tcp_sock *m) {
  tcp_sock *group = m->group;
  ZT_ASSERT(m->closing && m->member_accepts == 0 && group->group_members > 0);
  tcp_op *close_op = m->close_op;
  handles_remove(m);
  free(m);
  group->group_members--;
  if (group->group_members == 0 && !group->closing) {
    /* The last member's close completes once the OS socket is closed, as
     * every close does (tcp.h): the group's close carries it. */
    sock_begin_close(group, TCP_ERR_CLOSED, close_op);
  } else if (close_op != NULL) {
    sock_complete(close_op, 0, 0);
  }
}

void shared_member_closing(tcp_sock *m) {
  ASSERT_LOCKED();
  ZT_ASSERT(m->closing && m->group != NULL);
  for (qlink *l = m->group->accepts.head; l != NULL; l = l->next) {
    tcp_op *op = QUEUE_ENTRY(l, tcp_op, core_link);
    if (op->member == m && op->state != OP_QUEUED && !op->cancel_requested) loop_cancel(op);
  }
  if (m->member_accepts == 0) member_finish(m);
}

void shared_member_accept_ended(tcp_sock *m) {
  ASSERT_LOCKED();
  ZT_ASSERT(m->member_accepts > 0);
  m->member_accepts--;
  if (m->closing && m->member_accepts == 0) member_finish(m);
}
