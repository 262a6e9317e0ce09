part of 'engine.dart';

/// A listening TCP socket on the engine. Each [accept] yields one
/// [Connection]. A Listener that is garbage collected without [close] is
/// closed by a native finalizer.
final class Listener implements Finalizable {
  Listener._(this._handle, this._io) {
    _closeFinalizer.attach(this, Pointer<Void>.fromAddress(_handle),
        detach: this);
    _handleCountFinalizer.attach(this, _io, detach: this);
  }

  final int _handle;
  final _IOService _io;
  Future<void>? _closed;

  /// Binds and listens on [address] ([InternetAddress], or a [String]: a
  /// numeric address, else the first result of [InternetAddress.lookup])
  /// and [port] (0: ephemeral).
  ///
  /// A link-local IPv6 address needs its scope, as in dart:io:
  /// `InternetAddress('fe80::1%eth0')`, `'fe80::1%2'`, or a String with the
  /// URI escape `'fe80::1%25eth0'`; the interface index reaches the engine
  /// with the address (a name is resolved with if_nametoindex). A String
  /// with a '%' that is not a link-local address fails with a
  /// [FormatException], as in dart:io.
  ///
  /// [backlog] 0 means the OS default. [v6Only] applies to IPv6 addresses.
  ///
  /// [shared] means what it means in dart:io: listeners of this process, in
  /// this isolate or others, that bind the same address, port and [v6Only]
  /// with `shared: true` share ONE OS listening socket, and each connection
  /// goes to one of them that has an accept waiting (its completions then go
  /// to that listener's isolate). Closing one leaves the others working; the
  /// OS socket closes with the last. Another process cannot bind the port
  /// (no SO_REUSEPORT), and neither can a bind without `shared` in this
  /// process: it fails with an address-in-use [SocketException]. With port 0
  /// a bind always makes a new socket; the others join it with the port it
  /// got. Every backend, Windows included.
  static Future<Listener> bind(Object address, int port,
      {int backlog = 0, bool v6Only = false, bool shared = false}) async {
    if (port < 0 || port > 65535) {
      throw ArgumentError.value(port, 'port', 'must be in 0..65535');
    }
    final InternetAddress bindAddress =
        (await _resolve(address, 'address')).first;
    final Uint8List raw = engineAddress(bindAddress, 'address');
    final _IOService io = _IOService.instance;
    final int nativePort = io.nativePort;
    final int handle = tcp_listen(nativePort, raw.address, raw.length, port,
        backlog, v6Only ? 1 : 0, shared ? TCP_LISTEN_SHARED : 0);
    if (handle < 0) {
      final SocketException error = _syncError(
          handle, 'Failed to create server socket',
          address: bindAddress, port: port);
      io.maybeClose();
      throw error;
    }
    io.handleOpened();
    return Listener._(handle, io);
  }

  /// Accepts one connection.
  Future<Connection> accept() async {
    final int requestId = _io.newRequestId();
    final int rc = tcp_accept(_handle, requestId);
    if (rc < 0) throw _syncError(rc, 'Accept failed');
    final _Completion done = await _io.expect(requestId, _kindAccept);
    if (done.result > 0) return Connection._(done.result, _io);
    throw _socketError(done.result, done.osError, 'Accept failed');
  }

  /// Closes the listener; pending accepts fail with "closed". Calling it
  /// again returns the same future.
  Future<void> close() => _closed ??= _close();

  /// Whether [close] was called.
  bool get isClosed => _closed != null;

  Future<void> _close() => _closeHandle(this, _io, _handle);

  /// The bound address (the OS's, with its IPv6 scope: `fe80::1%eth0`).
  InternetAddress get address => _localAddressOf(_handle);

  /// The bound port (the ephemeral one chosen by the OS for port 0).
  int get port => _localPortOf(_handle);

  /// The engine handle (for diagnostics and tests).
  int get handle => _handle;
}
