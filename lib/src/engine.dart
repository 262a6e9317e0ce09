// The thin Dart layer over the engine: one _IOService per isolate, plus
// Connection and Listener, which own one engine handle each.
//
// Every async operation follows tcp.h's rule: a negative return value means
// the request was refused and no completion will come (we throw at once);
// otherwise exactly one completion arrives for the request id, on the port
// the handle was created with. A read stream (read_stream.dart) is the one
// exception: DATA completions, then exactly one final completion.

import 'dart:async';
import 'dart:collection';
import 'dart:ffi';
import 'dart:io';
import 'dart:isolate';
import 'dart:math' as math;
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

import 'bindings.dart';
import 'scope.dart';
import 'unix_path.dart';

part 'io_service.dart';
part 'connection.dart';
part 'listener.dart';
part 'read_stream.dart';

/// The engine backend in use: "io_uring", "uv" or "iocp".
///
/// Starts the engine for this isolate if it is not running yet.
String get zigTcpBackendName {
  _IOService.instance;
  final Pointer<Utf8> name = tcp_backend_name();
  return name.address == 0 ? 'none' : name.toDartString();
}

/// The engine's description of a TCP_ERR_* code.
String zigTcpErrorMessage(int code) => tcp_strerror(code).toDartString();

/// Closes every engine socket of the process and stops the I/O thread
/// (tcp_shutdown). Meant for tests and process teardown: sockets of every
/// isolate are closed. A later connect or bind (in any isolate) starts a
/// fresh engine; handles from before stay invalid.
void zigTcpShutdown() {
  tcp_shutdown();
}

/// A [SocketException] for engine error [code] (a negative TCP_ERR_*). Its
/// [SocketException.osError] carries the OS error code [osCode] when there is
/// one, and is null (as in dart:io) when the error did not come from the OS
/// ([osCode] 0).
SocketException _socketError(int code, int osCode, String what,
    {InternetAddress? address, int? port}) {
  final String message = zigTcpErrorMessage(code);
  return SocketException('$what: $message',
      osError: osCode == 0 ? null : OSError(message, osCode),
      address: address,
      port: port);
}

/// The exception for a synchronous call that just returned [code]. Must be
/// called right after that call: tcp_last_os_error is per thread and only
/// valid until the thread's next engine call.
SocketException _syncError(int code, String what,
    {InternetAddress? address, int? port}) {
  final int osCode = tcp_last_os_error();
  return _socketError(code, osCode, what, address: address, port: port);
}

/// Resolves [host] (an [InternetAddress] or a [String]: a numeric address,
/// scoped or not, or a host name looked up with [InternetAddress.lookup]).
/// A String goes through [unescapeScopedHost] first, as dart:io's bind does.
Future<List<InternetAddress>> _resolve(Object? host, String name) async {
  if (host is InternetAddress) return <InternetAddress>[host];
  if (host is String) {
    final String unescaped = unescapeScopedHost(host);
    final InternetAddress? literal = InternetAddress.tryParse(unescaped);
    if (literal != null) return <InternetAddress>[literal];
    final List<InternetAddress> found = await InternetAddress.lookup(unescaped);
    if (found.isEmpty) {
      throw SocketException('Failed host lookup: \'$unescaped\'');
    }
    return found;
  }
  throw ArgumentError.value(
      host, name, 'must be an InternetAddress or a String');
}

/// Closes handles whose Dart object was garbage collected without close().
/// The token is the handle value; a stale handle is ignored by the engine.
final NativeFinalizer _closeFinalizer = NativeFinalizer(
    Native.addressOf<NativeFunction<Void Function(Pointer<Void>)>>(
        tcp_close_finalizer));

/// Tells the isolate's _IOService that a collected handle is gone.
final Finalizer<_IOService> _handleCountFinalizer =
    Finalizer<_IOService>((_IOService io) => io.handleClosed());

/// Closes the engine handle owned by [owner] (a Connection or a Listener):
/// detaches its finalizers, then waits for the close completion. If the engine
/// refuses the close (the handle is already gone, e.g. after zigTcpShutdown),
/// no completion comes and only the isolate's handle count is updated.
Future<void> _closeHandle(Object owner, _IOService io, int handle) async {
  _closeFinalizer.detach(owner);
  _handleCountFinalizer.detach(owner);
  final int requestId = io.newRequestId();
  final int rc = tcp_close(handle, requestId);
  if (rc < 0) {
    io.handleClosed();
    return;
  }
  await io.expect(requestId, _kindClose);
}

/// The local address of [handle] (tcp_local_address), with its IPv6 scope
/// (tcp_local_scope_id) when it has one: `fe80::1%eth0`, as dart:io prints
/// a scoped address (see scope.dart).
InternetAddress _localAddressOf(int handle) {
  const String what = 'Getting the local address failed';
  final Uint8List buffer = Uint8List(16);
  final int n = tcp_local_address(handle, buffer.address);
  if (n < 0) throw _syncError(n, what);
  final int scopeId = n == 16 ? tcp_local_scope_id(handle) : 0;
  if (scopeId < 0) throw _syncError(scopeId, what);
  return addressFromEngine(buffer.sublist(0, n), scopeId);
}

/// The peer's address of [connection] (tcp_remote_address), with its IPv6
/// scope (tcp_remote_scope_id) when it has one.
InternetAddress _remoteAddressOf(int connection) {
  const String what = 'Getting the remote address failed';
  final Uint8List buffer = Uint8List(16);
  final int n = tcp_remote_address(connection, buffer.address);
  if (n < 0) throw _syncError(n, what);
  final int scopeId = n == 16 ? tcp_remote_scope_id(connection) : 0;
  if (scopeId < 0) throw _syncError(scopeId, what);
  return addressFromEngine(buffer.sublist(0, n), scopeId);
}

/// The path the OS reports for Unix socket [handle] (tcp_local_path), as a
/// unix [InternetAddress]: '' for an unnamed socket.
InternetAddress _localPathOf(int handle) {
  final Uint8List buffer = Uint8List(TCP_UNIX_PATH_BYTES_MAX);
  final int n = tcp_local_path(handle, buffer.address, buffer.length);
  if (n < 0) throw _syncError(n, 'Getting the local address failed');
  return unixAddressFromEngine(Uint8List.sublistView(buffer, 0, n));
}

/// The peer's path of Unix socket [connection] (tcp_remote_path), as dart:io
/// makes `remoteAddress` of a unix socket: '' for an unnamed peer (a
/// connecting client), else its sun_path ('@name' for an abstract one).
InternetAddress _remotePathOf(int connection) {
  final Uint8List buffer = Uint8List(TCP_UNIX_PATH_BYTES_MAX);
  final int n = tcp_remote_path(connection, buffer.address, buffer.length);
  if (n < 0) throw _syncError(n, 'Getting the remote address failed');
  return unixAddressFromEngine(Uint8List.sublistView(buffer, 0, n));
}

/// The local port of [handle] (tcp_local_port).
int _localPortOf(int handle) {
  final int port = tcp_local_port(handle);
  if (port < 0) throw _syncError(port, 'Getting the local port failed');
  return port;
}
