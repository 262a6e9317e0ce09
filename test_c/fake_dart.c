/*
 * fake_dart.c -- the fake Dart VM (see fake_dart.h).
 *
 * One lock and one condition variable guard every port; waiters re-check
 * their own condition after each broadcast. That is plenty for tests, demos
 * and a benchmark with a handful of consumer threads.
 */
#include "fake_dart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- portable lock + condition variable + monotonic clock ------------------ */
#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

static SRWLOCK g_lock = SRWLOCK_INIT;
static CONDITION_VARIABLE g_cond = CONDITION_VARIABLE_INIT;


static void lock(void) { AcquireSRWLockExclusive(&g_lock); }
static void unlock(void) { ReleaseSRWLockExclusive(&g_lock); }
static void broadcast(void) { WakeAllConditionVariable(&g_cond); }
static uint64_t now_ms(void) { return (uint64_t)GetTickCount64(); }
/* Lock held. Waits for a broadcast or until deadline (UINT64_MAX: forever). */
static void wait_until(uint64_t deadline) {
  DWORD ms = INFINITE;
  if (deadline != UINT64_MAX) {
    uint64_t now = now_ms();
    uint64_t left = deadline > now ? deadline - now : 0;
    ms = left > 0x7ffffff0u ? 0x7ffffff0u : (DWORD)left;
  }
  SleepConditionVariableSRW(&g_cond, &g_lock, ms, 0);
}
#else
#include <errno.h>
#include <pthread.h>
#include <time.h>

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void sync_init_once(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&g_cond, &attr);
  pthread_condattr_destroy(&attr);
}
static void sync_init(void) { pthread_once(&g_once, sync_init_once); }
static void lock(void) {
  sync_init();
  pthread_mutex_lock(&g_lock);
}
static void unlock(void) { pthread_mutex_unlock(&g_lock); }
static void broadcast(void) { pthread_cond_broadcast(&g_cond); }
static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
static void wait_until(uint64_t deadline) {
  if (deadline == UINT64_MAX) {
    pthread_cond_wait(&g_cond, &g_lock);
    return;
  }
  struct timespec ts;
  ts.tv_sec = (time_t)(deadline / 1000u);
  ts.tv_nsec = (long)(deadline % 1000u) * 1000000L;
  pthread_cond_timedwait(&g_cond, &g_lock, &ts);
}
#endif

static uint64_t deadline_from(int64_t timeout_ms) {
  if (timeout_ms < 0) return UINT64_MAX;
  return now_ms() + (uint64_t)timeout_ms;
}

/* ---- state ---------------------------------------------------------------- */
typedef struct node {
  struct node *next;
  fd_completion c;
} node;

typedef struct port {
  bool open;
  node *head, *tail;
  uint64_t messages, triples, queued;
} port;

#define PORT_BASE 1000 /* Dart's ILLEGAL_PORT is 0: start well away from it */

static port *g_ports;      /* index = id - PORT_BASE */
static size_t g_nports, g_cap_ports;
static fd_stats g_stats;
static uint64_t g_seq, g_message_seq;
static char g_malformed[256];

static const dart_api_dl_entry g_entries[] = {
    {DART_POST_COBJECT_NAME, (void (*)(void))fake_dart_post_cobject},
    {NULL, NULL},
};
static const dart_api_dl_data g_api = {DART_DL_MAJOR_VERSION, 0, g_entries};

void *fake_dart_api_data(void) { return (void *)&g_api; }

/* Lock held. */
static port *find_port(int64_t id) {
  if (id < PORT_BASE) return NULL;
  uint64_t i = (uint64_t)(id - PORT_BASE);
  if (i >= g_nports) return NULL;
  return &g_ports[i];
}

/* ---- freeing payloads ------------------------------------------------------ */
/* Without the lock. Frees the bytes of c; counts a finalizer run. */
static void free_payload(fd_completion *c) {
  if (c->payload_kind != FD_PAYLOAD_BYTES) return;
  if (c->external_) {
    if (c->callback_ != NULL) c->callback_(NULL, c->peer_);
    lock();
    g_stats.finalizers_run++;
    g_stats.external_live--;
    unlock();
  } else {
    free(c->data);
  }
  c->payload_kind = FD_PAYLOAD_NULL;
  c->data = NULL;
  c->len = 0;
  c->external_ = false;
  c->callback_ = NULL;
  c->peer_ = NULL;
}

void fake_dart_release(fd_completion *c) {
  if (c != NULL) free_payload(c);
}

static void free_nodes(node *n) {
  while (n != NULL) {
    node *next = n->next;
    free_payload(&n->c);
    free(n);
    n = next;
  }
}

/* Frees copies made while parsing a message that was then refused: the caller
 * keeps its external data, so no finalizer runs. */
static void discard_copies(node *n) {
  while (n != NULL) {
    node *next = n->next;
    if (n->c.payload_kind == FD_PAYLOAD_BYTES && !n->c.external_) free(n->c.data);
    free(n);
    n = next;
  }
}

/* Runs the finalizer of every external typed data inside obj (for a malformed
 * message, whose data the fake VM took but cannot hand to anyone). Returns how
 * many ran. */
static uint64_t finalize_all(const dart_cobject *obj, int depth) {
  if (obj == NULL || depth > 64) return 0;
  switch (obj->type) {
    case DART_COBJECT_EXTERNAL_TYPED_DATA:
    case DART_COBJECT_UNMODIFIABLE_EXTERNAL_TYPED_DATA:
      if (obj->value.as_external_typed_data.callback != NULL)
        obj->value.as_external_typed_data.callback(NULL, obj->value.as_external_typed_data.peer);
      return 1;
    case DART_COBJECT_ARRAY: {
      uint64_t n = 0;
      for (intptr_t i = 0; i < obj->value.as_array.length; i++)
        if (obj->value.as_array.values != NULL)
          n += finalize_all(obj->value.as_array.values[i], depth + 1);
      return n;
    }
    default:
      return 0;
  }
}

static size_t typed_element_size(dart_typed_data_type t) {
  switch (t) {
    case DART_TYPED_DATA_BYTE_DATA:
    case DART_TYPED_DATA_INT8:
    case DART_TYPED_DATA_UINT8:
    case DART_TYPED_DATA_UINT8_CLAMPED: return 1;
    case DART_TYPED_DATA_INT16:
    case DART_TYPED_DATA_UINT16: return 2;
    case DART_TYPED_DATA_INT32:
    case DART_TYPED_DATA_UINT32:
    case DART_TYPED_DATA_FLOAT32: return 4;
    case DART_TYPED_DATA_INT64:
    case DART_TYPED_DATA_UINT64:
    case DART_TYPED_DATA_FLOAT64: return 8;
    case DART_TYPED_DATA_INT32X4:
    case DART_TYPED_DATA_FLOAT32X4:
    case DART_TYPED_DATA_FLOAT64X2: return 16;
    default: return 0;
  }
}

/* ---- parsing a posted message ------------------------------------------------ */
/* Copies message into a list of nodes. Returns NULL and fills why on a message
 * that is not a completion batch. Takes no ownership yet. */
static node *parse_message(const dart_cobject *msg, char *why, size_t why_len, uint32_t *count) {
  *count = 0;
  if (msg == NULL) {
    snprintf(why, why_len, "message is NULL");
    return NULL;
  }
  if (msg->type != DART_COBJECT_ARRAY) {
    snprintf(why, why_len, "message type %d, not an array", (int)msg->type);
    return NULL;
  }
  intptr_t len = msg->value.as_array.length;
  if (len <= 0 || len % 3 != 0) {
    snprintf(why, why_len, "array length %ld is not a positive multiple of 3", (long)len);
    return NULL;
  }
  if (msg->value.as_array.values == NULL) {
    snprintf(why, why_len, "array values pointer is NULL");
    return NULL;
  }
  node *head = NULL, *tail = NULL;
  uint32_t n = (uint32_t)(len / 3);
  for (uint32_t t = 0; t < n; t++) {
    dart_cobject *const *v = msg->value.as_array.values + (size_t)t * 3;
    if (v[0] == NULL || v[1] == NULL || v[2] == NULL) {
      snprintf(why, why_len, "triple %u has a NULL element", t);
      goto bad;
    }
    if (v[0]->type != DART_COBJECT_INT64) {
      snprintf(why, why_len, "triple %u: request_id has type %d, not int64", t, (int)v[0]->type);
      goto bad;
    }
    if (v[1]->type != DART_COBJECT_INT64) {
      snprintf(why, why_len, "triple %u: result has type %d, not int64", t, (int)v[1]->type);
      goto bad;
    }
    node *nd = (node *)calloc(1, sizeof(node));
    if (nd == NULL) {
      snprintf(why, why_len, "out of memory");
      goto bad;
    }
    if (tail) tail->next = nd; else head = nd;
    tail = nd;
    fd_completion *c = &nd->c;
    c->request_id = v[0]->value.as_int64;
    c->result = v[1]->value.as_int64;
    c->index_in_message = t;
    c->triples_in_message = n;
    const dart_cobject *p = v[2];
    c->payload_type = p->type;
    switch (p->type) {
      case DART_COBJECT_NULL: c->payload_kind = FD_PAYLOAD_NULL; break;
      case DART_COBJECT_INT32:
        c->payload_kind = FD_PAYLOAD_INT;
        c->payload_int = p->value.as_int32;
        break;
      case DART_COBJECT_INT64:
        c->payload_kind = FD_PAYLOAD_INT;
        c->payload_int = p->value.as_int64;
        break;
      case DART_COBJECT_EXTERNAL_TYPED_DATA:
      case DART_COBJECT_UNMODIFIABLE_EXTERNAL_TYPED_DATA: {
        size_t es = typed_element_size(p->value.as_external_typed_data.type);
        if (es == 0 || p->value.as_external_typed_data.length < 0 ||
            (p->value.as_external_typed_data.data == NULL &&
             p->value.as_external_typed_data.length > 0)) {
          snprintf(why, why_len, "triple %u: bad external typed data", t);
          goto bad;
        }
        c->payload_kind = FD_PAYLOAD_BYTES;
        c->data_type = p->value.as_external_typed_data.type;
        c->data = p->value.as_external_typed_data.data;
        c->len = (size_t)p->value.as_external_typed_data.length * es;
        c->external_ = true;
        c->peer_ = p->value.as_external_typed_data.peer;
        c->callback_ = p->value.as_external_typed_data.callback;
        break;
      }
      case DART_COBJECT_TYPED_DATA: {
        size_t es = typed_element_size(p->value.as_typed_data.type);
        if (es == 0 || p->value.as_typed_data.length < 0 ||
            (p->value.as_typed_data.values == NULL && p->value.as_typed_data.length > 0)) {
          snprintf(why, why_len, "triple %u: bad typed data", t);
          goto bad;
        }
        size_t bytes = (size_t)p->value.as_typed_data.length * es;
        c->payload_kind = FD_PAYLOAD_BYTES;
        c->data_type = p->value.as_typed_data.type;
        c->data = (uint8_t *)malloc(bytes ? bytes : 1);
        if (c->data == NULL) {
          c->payload_kind = FD_PAYLOAD_NULL;
          snprintf(why, why_len, "out of memory");
          goto bad;
        }
        if (bytes) memcpy(c->data, p->value.as_typed_data.values, bytes);
        c->len = bytes;
        c->external_ = false;
        break;
      }
      default: c->payload_kind = FD_PAYLOAD_OTHER; break;
    }
  }
  *count = n;
  return head;
bad:
  discard_copies(head);
  return NULL;
}

/* ---- Dart_PostCObject ------------------------------------------------------------ */
bool fake_dart_post_cobject(dart_port_id port_id, dart_cobject *message) {
  char why[sizeof g_malformed];
  why[0] = '\0';
  uint32_t n = 0;
  node *list = parse_message(message, why, sizeof why, &n);
  lock();
  port *p = find_port(port_id);
  if (p == NULL || !p->open) {
    g_stats.posts_refused++;
    broadcast();
    unlock();
    discard_copies(list);
    return false;
  }
  g_stats.posts++;
  if (list == NULL) {
    /* The VM accepted it, so it owns any external data in it: finalize now. */
    g_stats.malformed++;
    snprintf(g_malformed, sizeof g_malformed, "port %lld: %s", (long long)port_id, why);
    broadcast();
    unlock();
    uint64_t ran = finalize_all(message, 0);
    lock();
    g_stats.finalizers_run += ran;
    unlock();
    return true;
  }
  g_message_seq++;
  p->messages++;
  p->triples += n;
  p->queued += n;
  for (node *nd = list; nd != NULL; nd = nd->next) {
    nd->c.port = port_id;
    nd->c.seq = ++g_seq;
    nd->c.message_seq = g_message_seq;
    if (nd->c.payload_kind == FD_PAYLOAD_BYTES && nd->c.external_) g_stats.external_live++;
  }
  node *last = list;
  while (last->next != NULL) last = last->next;
  if (p->tail) p->tail->next = list; else p->head = list;
  p->tail = last;
  unlock();
  /* Wake after unlocking: a woken receiver on this CPU would otherwise preempt
   * the poster only to block on the lock it still holds (two extra switches). */
  broadcast();
  return true;
}

/* ---- ports ------------------------------------------------------------------------ */
int64_t fake_dart_open_port(void) {
  lock();
  if (g_nports == g_cap_ports) {
    size_t cap = g_cap_ports ? g_cap_ports * 2 : 16;
    port *np = (port *)realloc(g_ports, cap * sizeof(port));
    if (np == NULL) {
      unlock();
      return 0;
    }
    g_ports = np;
    g_cap_ports = cap;
  }
  port *p = &g_ports[g_nports];
  memset(p, 0, sizeof *p);
  p->open = true;
  int64_t id = PORT_BASE + (int64_t)g_nports;
  g_nports++;
  unlock();
  return id;
}

void fake_dart_close_port(int64_t id) {
  lock();
  port *p = find_port(id);
  node *drop = NULL;
  if (p != NULL && p->open) {
    p->open = false;
    drop = p->head;
    p->head = p->tail = NULL;
    p->queued = 0;
  }
  broadcast();
  unlock();
  free_nodes(drop);
}

size_t fake_dart_next_batch(int64_t id, int64_t timeout_ms, fd_completion *out, size_t max) {
  if (out == NULL || max == 0) return 0;
  uint64_t deadline = deadline_from(timeout_ms);
  size_t got = 0;
  lock();
  for (;;) {
    port *p = find_port(id);
    if (p == NULL || !p->open) break;
    if (p->head != NULL) {
      while (p->head != NULL && got < max) {
        node *nd = p->head;
        p->head = nd->next;
        if (p->head == NULL) p->tail = NULL;
        p->queued--;
        out[got++] = nd->c;
        free(nd);
      }
      break;
    }
    if (timeout_ms == 0 || (deadline != UINT64_MAX && now_ms() >= deadline)) break;
    wait_until(deadline);
  }
  unlock();
  return got;
}

bool fake_dart_next(int64_t id, int64_t timeout_ms, fd_completion *out) {
  return fake_dart_next_batch(id, timeout_ms, out, 1) == 1;
}

bool fake_dart_port_stats(int64_t id, fd_port_stats *out) {
  lock();
  port *p = find_port(id);
  if (p != NULL && out != NULL) {
    out->messages = p->messages;
    out->triples = p->triples;
    out->queued = p->queued;
    out->open = p->open;
  }
  unlock();
  return p != NULL;
}

void fake_dart_stats(fd_stats *out) {
  lock();
  *out = g_stats;
  unlock();
}

const char *fake_dart_last_malformed(void) { return g_malformed; }

bool fake_dart_wait_refused(uint64_t at_least, int64_t timeout_ms) {
  uint64_t deadline = deadline_from(timeout_ms);
  bool ok;
  lock();
  for (;;) {
    ok = g_stats.posts_refused >= at_least;
    if (ok || timeout_ms == 0 || (deadline != UINT64_MAX && now_ms() >= deadline)) break;
    wait_until(deadline);
  }
  unlock();
  return ok;
}

void fake_dart_reset(void) {
  lock();
  size_t n = g_nports;
  unlock();
  for (size_t i = 0; i < n; i++) fake_dart_close_port(PORT_BASE + (int64_t)i);
  lock();
  memset(&g_stats, 0, sizeof g_stats);
  g_malformed[0] = '\0';
  unlock();
}
