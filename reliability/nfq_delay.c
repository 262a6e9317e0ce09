/*
 * nfq_delay.c -- delays every packet of an NFQUEUE queue by a fixed time
 * (the kernel here has no netem). Used by tools/faults.sh inside its own
 * network namespace:  nfq_delay QUEUE_NUM DELAY_MS
 * Packets are released in arrival order once DELAY_MS has passed; SIGTERM
 * releases what is held and exits. Prints "nfq_delay: N packets delayed".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define HELD_MAX 65536

static struct {
  uint32_t id;
  int64_t due_us;
} held[HELD_MAX];
static size_t head, count;
static int64_t delay_us;
static uint64_t delayed, passed_at_once;
static struct nfq_q_handle *qh;
static volatile sig_atomic_t stop;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int on_packet(struct nfq_q_handle *q, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg;
  (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (ph == NULL) return 0;
  uint32_t id = ntohl(ph->packet_id);
  if (count == HELD_MAX) { /* no room: let it through now rather than drop it */
    passed_at_once++;
    return nfq_set_verdict(q, id, NF_ACCEPT, 0, NULL);
  }
  size_t tail = (head + count) % HELD_MAX;
  held[tail].id = id;
  held[tail].due_us = now_us() + delay_us;
  count++;
  delayed++;
  return 0;
}

static void release_due(int64_t now) {
  while (count > 0 && held[head].due_us <= now) {
    nfq_set_verdict(qh, held[head].id, NF_ACCEPT, 0, NULL);
    head = (head + 1) % HELD_MAX;
    count--;
  }
}

static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: nfq_delay QUEUE_NUM DELAY_MS\n");
    return 2;
  }
  delay_us = (int64_t)atol(argv[2]) * 1000;
  struct nfq_handle *h = nfq_open();
  if (h == NULL) {
    perror("nfq_open");
    return 1;
  }
  nfq_unbind_pf(h, AF_INET);
  nfq_bind_pf(h, AF_INET);
  qh = nfq_create_queue(h, (uint16_t)atoi(argv[1]), on_packet, NULL);
  if (qh == NULL || nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
    perror("nfq_create_queue");
    return 1;
  }
  nfq_set_queue_maxlen(qh, HELD_MAX);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  int fd = nfq_fd(h);
  char buf[65536] __attribute__((aligned));
  fprintf(stderr, "nfq_delay: queue %s, %s ms\n", argv[1], argv[2]);
  while (!stop) {
    int64_t now = now_us();
    int timeout = count > 0 ? (int)((held[head].due_us - now + 999) / 1000) : 200;
    if (timeout < 0) timeout = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout) > 0) {
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break; /* EAGAIN, or ENOBUFS (the kernel dropped some): go on */
        nfq_handle_packet(h, buf, (int)n);
      }
    }
    release_due(now_us());
  }
  release_due(INT64_MAX);
  fprintf(stderr, "nfq_delay: %llu packets delayed, %llu passed at once\n", (unsigned long long)delayed,
          (unsigned long long)passed_at_once);
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}
