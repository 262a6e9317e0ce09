/*
 * hanging_destination.h -- an address whose SYNs are never answered, for the
 * connect-timeout tests: a veth peer inside a network namespace the test
 * creates, with an nftables rule dropping all its input (needs root, `ip`,
 * `nft`; removed again when the test ends), else a loopback listener whose
 * accept queue is full. TCP_SUITE_NO_NETNS=1 forces the listener.
 */
#ifndef ZIG_TCP_HANGING_DESTINATION_H
#define ZIG_TCP_HANGING_DESTINATION_H

#include <stdint.h>

/* Sets *addr (IPv4) and *tcp_port to a destination whose SYNs vanish; skips
 * the test when neither way works here. The fallback listener lives on port. */
void hanging_destination(int64_t port, uint8_t addr[4], int32_t *tcp_port);

#endif /* ZIG_TCP_HANGING_DESTINATION_H */
