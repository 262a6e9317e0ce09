// The engine's C API (include/tcp.h), one @Native external function per C
// function, with the same names and exact FFI types. tools/check_dart.py
// verifies this file against tcp.h (names, types, arity, isLeaf, constants,
// asset id), so keep it mechanical: no logic here.
//
// Type mapping: int64_t -> Int64, int32_t -> Int32, void* -> Pointer<Void>,
// (const) uint8_t* -> Pointer<Uint8>, const char* -> Pointer<Utf8>.
//
// Every function is a leaf call (tcp.h: completions are never posted from
// inside a call) except tcp_init, which may start the engine's I/O thread
// (the Dart layer calls it on every connect and bind; it returns at once
// while the engine runs), and tcp_shutdown, which blocks until the I/O thread
// drained.

// ignore_for_file: non_constant_identifier_names, constant_identifier_names

import 'dart:ffi';

import 'package:ffi/ffi.dart';

/// The asset id under which hook/build.dart registers the engine library.
const String zigTcpAssetId = 'package:zig_tcp/src/bindings.dart';

// ---- error codes (tcp.h) ----------------------------------------------------
const int TCP_OK = 0;
const int TCP_ERR_INVALID_ARGUMENT = -1;
const int TCP_ERR_BAD_HANDLE = -2;
const int TCP_ERR_CLOSED = -3;
const int TCP_ERR_NOT_INITIALIZED = -4;
const int TCP_ERR_SHUTDOWN = -5;
const int TCP_ERR_NO_MEMORY = -6;
const int TCP_ERR_UNSUPPORTED = -7;
const int TCP_ERR_DART_API = -8;
const int TCP_ERR_BACKEND_FAILED = -9;
const int TCP_ERR_BUSY = -10;
const int TCP_ERR_STOPPED = -11;
const int TCP_ERR_NOT_TCP = -12;
const int TCP_ERR_ADDRESS_IN_USE = -20;
const int TCP_ERR_ADDRESS_NOT_AVAILABLE = -21;
const int TCP_ERR_CONNECTION_REFUSED = -22;
const int TCP_ERR_CONNECTION_RESET = -23;
const int TCP_ERR_CONNECTION_ABORTED = -24;
const int TCP_ERR_TIMED_OUT = -25;
const int TCP_ERR_NETWORK_UNREACHABLE = -26;
const int TCP_ERR_HOST_UNREACHABLE = -27;
const int TCP_ERR_BROKEN_PIPE = -28;
const int TCP_ERR_ACCESS_DENIED = -29;
const int TCP_ERR_TOO_MANY_FILES = -30;
const int TCP_ERR_NOT_CONNECTED = -31;
const int TCP_ERR_ADDRESS_FAMILY = -32;
const int TCP_ERR_PATH_TOO_LONG = -33;
const int TCP_ERR_OS = -99;

/// tcp_listen's `shared`: dart:io's shared listeners (one OS socket for the
/// listeners of this process on one address and port).
const int TCP_LISTEN_SHARED = 1;

/// tcp_listen's `shared`: SO_REUSEPORT (not on Windows).
const int TCP_LISTEN_REUSE_PORT = 2;

/// The largest sun_path of any platform (Linux, Windows; macOS/BSD: 104):
/// room enough for tcp_local_path / tcp_remote_path, and the most bytes a
/// path passed to tcp_listen_unix / tcp_connect_unix can have.
const int TCP_UNIX_PATH_BYTES_MAX = 108;

/// Largest bytes_max for one tcp_read.
const int TCP_READ_BYTES_MAX = 64 * 1024 * 1024;

/// Largest bytes_len for one tcp_write.
const int TCP_WRITE_BYTES_MAX = 1024 * 1024 * 1024;

/// A read of at most this many bytes arrives as typed data copied into the
/// isolate's heap; a larger one as external typed data (no copy). Both are a
/// `Uint8List` on the Dart side.
const int TCP_READ_COPY_BYTES_MAX = 4096;

// ---- engine lifetime ----------------------------------------------------------

@Native<Int32 Function(Pointer<Void>)>(
    symbol: 'tcp_init', assetId: zigTcpAssetId, isLeaf: false)
external int tcp_init(Pointer<Void> dart_api_dl_data);

@Native<Int32 Function()>(
    symbol: 'tcp_shutdown', assetId: zigTcpAssetId, isLeaf: false)
external int tcp_shutdown();

@Native<Pointer<Utf8> Function()>(
    symbol: 'tcp_backend_name', assetId: zigTcpAssetId, isLeaf: true)
external Pointer<Utf8> tcp_backend_name();

@Native<Pointer<Utf8> Function(Int64)>(
    symbol: 'tcp_strerror', assetId: zigTcpAssetId, isLeaf: true)
external Pointer<Utf8> tcp_strerror(int code);

@Native<Int32 Function()>(
    symbol: 'tcp_last_os_error', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_last_os_error();

// ---- listeners ----------------------------------------------------------------

@Native<Int64 Function(Int64, Pointer<Uint8>, Int32, Int32, Int32, Int32, Int32)>(
    symbol: 'tcp_listen', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_listen(int dart_port, Pointer<Uint8> addr, int addr_len,
    int port, int backlog, int v6_only, int shared);

/// Like tcp_listen, on a Unix socket path (path_len bytes, no NUL counted;
/// an abstract name is a leading NUL byte and the name, Linux only).
@Native<Int64 Function(Int64, Pointer<Uint8>, Int32, Int32, Int32)>(
    symbol: 'tcp_listen_unix', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_listen_unix(int dart_port, Pointer<Uint8> path, int path_len,
    int backlog, int shared);

@Native<Int32 Function(Int64, Int64)>(
    symbol: 'tcp_accept', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_accept(int listener, int request_id);

// ---- connections --------------------------------------------------------------

@Native<
        Int64 Function(Int64, Int64, Pointer<Uint8>, Int32, Int32,
            Pointer<Uint8>, Int32, Int32, Int64)>(
    symbol: 'tcp_connect', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_connect(
    int dart_port,
    int request_id,
    Pointer<Uint8> addr,
    int addr_len,
    int port,
    Pointer<Uint8> source_addr,
    int source_addr_len,
    int source_port,
    int timeout_ms);

/// Like tcp_connect, to a Unix socket path.
@Native<Int64 Function(Int64, Int64, Pointer<Uint8>, Int32, Int64)>(
    symbol: 'tcp_connect_unix', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_connect_unix(int dart_port, int request_id,
    Pointer<Uint8> path, int path_len, int timeout_ms);

@Native<Int32 Function(Int64, Int64, Int64)>(
    symbol: 'tcp_read', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_read(int connection, int request_id, int bytes_max);

/// Starts a read stream (tcp.h "streaming reads"): DATA completions
/// (result > 0) for request_id, never more than the window ahead of
/// [tcp_read_stream_ack], then one final completion (result <= 0).
@Native<Int32 Function(Int64, Int64, Int64)>(
    symbol: 'tcp_read_stream', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_read_stream(int connection, int request_id, int window_bytes);

@Native<Int32 Function(Int64, Int64)>(
    symbol: 'tcp_read_stream_ack', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_read_stream_ack(int connection, int bytes);

@Native<Int32 Function(Int64)>(
    symbol: 'tcp_read_stream_stop', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_read_stream_stop(int connection);

@Native<Int32 Function(Int64, Int64, Pointer<Uint8>, Int64)>(
    symbol: 'tcp_write', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_write(
    int connection, int request_id, Pointer<Uint8> bytes, int bytes_len);

@Native<Int32 Function(Int64, Int64)>(
    symbol: 'tcp_shutdown_write', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_shutdown_write(int connection, int request_id);

// ---- both kinds ---------------------------------------------------------------

@Native<Int32 Function(Int64, Int64)>(
    symbol: 'tcp_close', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_close(int handle, int request_id);

@Native<Void Function(Pointer<Void>)>(
    symbol: 'tcp_close_finalizer', assetId: zigTcpAssetId, isLeaf: true)
external void tcp_close_finalizer(Pointer<Void> token);

// ---- synchronous accessors ----------------------------------------------------

@Native<Int32 Function(Int64, Pointer<Uint8>)>(
    symbol: 'tcp_local_address', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_local_address(int handle, Pointer<Uint8> addr_out);

@Native<Int32 Function(Int64, Pointer<Uint8>)>(
    symbol: 'tcp_remote_address', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_remote_address(int connection, Pointer<Uint8> addr_out);

/// The local / remote path of a Unix socket into path_out (path_out_len
/// bytes of room): its length (0 for an unnamed socket; an abstract name
/// counts its leading NUL), TCP_ERR_ADDRESS_FAMILY on a TCP socket.
@Native<Int32 Function(Int64, Pointer<Uint8>, Int32)>(
    symbol: 'tcp_local_path', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_local_path(
    int handle, Pointer<Uint8> path_out, int path_out_len);

@Native<Int32 Function(Int64, Pointer<Uint8>, Int32)>(
    symbol: 'tcp_remote_path', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_remote_path(
    int connection, Pointer<Uint8> path_out, int path_out_len);

@Native<Int32 Function(Int64)>(
    symbol: 'tcp_local_port', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_local_port(int handle);

@Native<Int32 Function(Int64)>(
    symbol: 'tcp_remote_port', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_remote_port(int connection);

/// The IPv6 scope id (interface index; 0 for none and for IPv4) of the local
/// / remote address. Addresses passed to tcp_listen / tcp_connect carry one as
/// 4 more bytes (20 in all, host byte order).
@Native<Int64 Function(Int64)>(
    symbol: 'tcp_local_scope_id', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_local_scope_id(int handle);

@Native<Int64 Function(Int64)>(
    symbol: 'tcp_remote_scope_id', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_remote_scope_id(int connection);

@Native<Int32 Function(Int64)>(
    symbol: 'tcp_get_keep_alive', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_get_keep_alive(int connection);

@Native<Int32 Function(Int64)>(
    symbol: 'tcp_get_no_delay', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_get_no_delay(int connection);

@Native<Int32 Function(Int64, Int32)>(
    symbol: 'tcp_set_keep_alive', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_set_keep_alive(int connection, int enabled);

@Native<Int32 Function(Int64, Int32)>(
    symbol: 'tcp_set_no_delay', assetId: zigTcpAssetId, isLeaf: true)
external int tcp_set_no_delay(int connection, int enabled);
