/*
 * test_list.h -- every test of the C suite, in the order the suite runs them:
 * the one place that names them (in the spirit of libuv's test/test-list.h).
 * X(name) stands for `void test_name(void)`, defined in one of the topic files
 * test_lifecycle.c, test_data.c, test_close_cancel.c, test_errors.c,
 * test_options.c, test_isolates.c, test_streams.c, test_backend_faults.c,
 * test_portability.c, test_iocp.c and test_unix.c. suite.c makes the runner's
 * table of it.
 * X(name): a test that runs once (TCP, or its own sockets). XT(name): a
 * transport-neutral test, run twice -- as name_tcp over TCP and as name_unix
 * over Unix domain sockets (endpoint.h): one body, two transports.
 */
#ifndef ZIG_TCP_TEST_LIST_H
#define ZIG_TCP_TEST_LIST_H

#define TCP_SUITE_TESTS(X, XT) \
  X(lifecycle) \
  X(strerror) \
  XT(concurrent_init) \
  X(request_ids_full_range) \
  X(echo_ipv4) \
  X(echo_ipv6) \
  XT(accept_several_pending) \
  X(connect_source_address) \
  XT(transfer_16mib_both_ways) \
  XT(many_connections) \
  XT(eof_after_peer_close) \
  XT(read_after_eof) \
  XT(shutdown_write_half_close) \
  X(connection_refused) \
  X(address_in_use) \
  X(listen_shared) \
  X(listen_reuse_port) \
  XT(listen_shared_two_ports) \
  X(ipv6_scope_id) \
  X(connect_timeout) \
  X(connect_timeouts_short) \
  XT(close_while_read_pending) \
  XT(close_while_next_read_pending) \
  XT(close_while_accept_pending) \
  X(close_while_connect_pending) \
  XT(close_while_write_pending) \
  XT(stale_and_bad_handles) \
  XT(close_finalizer) \
  XT(zero_length_write) \
  XT(read_in_chunks) \
  XT(reads_in_call_order) \
  X(reset_by_peer) \
  XT(many_small_writes_batched) \
  XT(port_gone) \
  XT(two_isolates) \
  XT(threads_as_isolates) \
  XT(shutdown_with_pending) \
  X(keepalive_nodelay) \
  X(bad_input) \
  XT(stream_in_order) \
  XT(stream_window_backpressure) \
  XT(stream_stop_then_read) \
  XT(stream_stopped_behind_read) \
  XT(stream_stop_races_receive) \
  XT(stream_close) \
  XT(stream_shutdown) \
  XT(stream_while_connecting) \
  XT(stream_bad_input) \
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
  X(iocp_spurious_readable_always) \
  X(iocp_unix_without_provider) \
  X(unix_path_too_long) \
  X(unix_path_bad_input) \
  X(unix_path_in_use) \
  X(unix_stale_socket_file) \
  X(unix_abstract_name) \
  X(unix_permission_denied) \
  X(unix_peer_closes_with_data_unread) \
  X(unix_not_tcp) \
  X(unix_path_accessors) \
  X(unix_socket_file_removed_on_close) \
  X(unix_socket_file_replaced_is_kept) \
  X(unix_socket_file_removed_at_shutdown) \
  X(unix_shared_listeners) \
  X(unix_connect_errors) \
  X(unix_connect_full_backlog)

#define TCP_SUITE_DECLARE(name) void test_##name(void);
TCP_SUITE_TESTS(TCP_SUITE_DECLARE, TCP_SUITE_DECLARE)
#undef TCP_SUITE_DECLARE

#endif /* ZIG_TCP_TEST_LIST_H */
