/*
 * test_list.h -- every test of the C suite, in the order the suite runs them:
 * the one place that names them (in the spirit of libuv's test/test-list.h).
 * X(name) stands for `void test_name(void)`, defined in one of the topic files
 * test_lifecycle.c, test_data.c, test_close_cancel.c, test_errors.c,
 * test_options.c, test_isolates.c, test_streams.c, test_backend_faults.c,
 * test_portability.c and test_iocp.c. suite.c makes the runner's table of it.
 */
#ifndef ZIG_TCP_TEST_LIST_H
#define ZIG_TCP_TEST_LIST_H

#define TCP_SUITE_TESTS(X) \
  X(lifecycle) \
  X(strerror) \
  X(concurrent_init) \
  X(request_ids_full_range) \
  X(echo_ipv4) \
  X(echo_ipv6) \
  X(accept_several_pending) \
  X(connect_source_address) \
  X(transfer_16mib_both_ways) \
  X(many_connections) \
  X(eof_after_peer_close) \
  X(read_after_eof) \
  X(shutdown_write_half_close) \
  X(connection_refused) \
  X(address_in_use) \
  X(listen_shared) \
  X(listen_reuse_port) \
  X(listen_shared_two_ports) \
  X(ipv6_scope_id) \
  X(connect_timeout) \
  X(close_while_read_pending) \
  X(close_while_next_read_pending) \
  X(close_while_accept_pending) \
  X(close_while_connect_pending) \
  X(close_while_write_pending) \
  X(stale_and_bad_handles) \
  X(close_finalizer) \
  X(zero_length_write) \
  X(read_in_chunks) \
  X(reads_in_call_order) \
  X(reset_by_peer) \
  X(many_small_writes_batched) \
  X(port_gone) \
  X(two_isolates) \
  X(threads_as_isolates) \
  X(shutdown_with_pending) \
  X(keepalive_nodelay) \
  X(bad_input) \
  X(stream_in_order) \
  X(stream_window_backpressure) \
  X(stream_stop_then_read) \
  X(stream_close) \
  X(stream_shutdown) \
  X(stream_while_connecting) \
  X(stream_bad_input) \
  X(uring_lost_completions) \
  X(uring_ring_broken) \
  X(uring_transient_busy) \
  X(connect_unspecified_is_loopback) \
  X(connect_v4_mapped) \
  X(connect_source_port_only) \
  X(relisten_while_connections_live) \
  X(refused_loopback_connect_is_prompt) \
  X(iocp_cancel_misses) \
  X(iocp_accept_context_failure) \
  X(iocp_error_mapping) \
  X(idle_reads_hold_no_buffer) \
  X(iocp_spurious_readable) \
  X(iocp_spurious_readable_always)

#define TCP_SUITE_DECLARE(name) void test_##name(void);
TCP_SUITE_TESTS(TCP_SUITE_DECLARE)
#undef TCP_SUITE_DECLARE

#endif /* ZIG_TCP_TEST_LIST_H */
