part of 'engine.dart';

/// A listening TCP or Unix domain socket on the engine. Each [accept] yields
/// one [Connection]. A Listener that is garbage collected without [close] is
/// closed by a native finalizer.
final class Listener implements Finalizable {
  Listener._(this._handle, this._io, [this._unixAddress]) {
    _closeFinalizer.attach(this, Pointer<Void>.fromAddress(_handle),
        detach: this);
    _handleCountFinalizer.attach(this, _io, detach: this);
  }

  final int _handle;
  final _IOService _io;
  Future<void>? _closed;

  /// The address a Unix socket listener was bound with (null for TCP): what
  /// [address] returns, as dart:io's `_NativeSocket.localAddress`.
  final InternetAddress? _unixAddress;

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
  ///
  /// A Unix domain socket: [address] is `InternetAddress(path, type:
  /// InternetAddressType.unix)`, as in dart:io's `ServerSocket.bind`, which
  /// checks [port] (0..65535) and then ignores it, as it ignores [v6Only];
  /// [port] reports 0. The path is a file the OS creates; where a file
  /// exists already (another listener's, or a stale socket file) the bind
  /// fails with an address-in-use [SocketException] (dart:io: "File exists
  /// with given unix domain address"), and the file is left alone. Closing
  /// the listener (the last one of a shared group) removes the file, as
  /// dart:io does. A path that is a symbolic link is bound at the link's
  /// target, as dart:io does. On Linux and Android `'@name'` is an abstract
  /// name (no file), as in dart:io. [shared] works as for TCP, keyed by the
  /// path. A path too long for the OS's sun_path fails with a
  /// [SocketException] naming the limit. A String [address] is always a
  /// host name or numeric address, never a path, as in dart:io.
  static Future<Listener> bind(Object address, int port,
      {int backlog = 0, bool v6Only = false, bool shared = false}) async {
    if (port < 0 || port > 65535) {
      throw ArgumentError.value(port, 'port', 'must be in 0..65535');
    }
    if (address is InternetAddress &&
        address.type == InternetAddressType.unix) {
      return _bindUnix(address, port, backlog, shared);
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

  /// tcp_listen_unix on [address]'s path (see [bind]).
  static Listener _bindUnix(
      InternetAddress address, int port, int backlog, bool shared) {
    final Uint8List path = unixPathBytes(_bindTarget(address.address));
    final _IOService io = _IOService.instance;
    final int nativePort = io.nativePort;
    final int handle = tcp_listen_unix(nativePort, path.address, path.length,
        backlog, shared ? TCP_LISTEN_SHARED : 0);
    if (handle < 0) {
      final SocketException error = _syncError(
          handle, 'Failed to create server socket',
          address: address, port: port);
      io.maybeClose();
      throw error;
    }
    io.handleOpened();
    return Listener._(handle, io, address);
  }

  /// The path the OS binds for [path]: a symbolic link's target, as dart:io's
  /// `_NativeSocket.bind` does (`Link(path).targetSync()`); an abstract name
  /// names no file and is left as it is.
  static String _bindTarget(String path) {
    if (isAbstractPath(path)) return path;
    return FileSystemEntity.isLinkSync(path) ? Link(path).targetSync() : path;
  }

  /// Accepts one connection. A Unix socket listener's connections are Unix
  /// sockets whose [Connection.address] is this listener's [address], as in
  /// dart:io.
  Future<Connection> accept() async {
    final int requestId = _io.newRequestId();
    final int rc = tcp_accept(_handle, requestId);
    if (rc < 0) throw _syncError(rc, 'Accept failed');
    final _Completion done = await _io.expect(requestId, _kindAccept);
    if (done.result > 0) return Connection._(done.result, _io, _unixAddress);
    throw _socketError(done.result, done.osError, 'Accept failed');
  }

  /// Closes the listener; pending accepts fail with "closed". Calling it
  /// again returns the same future.
  Future<void> close() => _closed ??= _close();

  /// Whether [close] was called.
  bool get isClosed => _closed != null;

  Future<void> _close() => _closeHandle(this, _io, _handle);

  /// The bound address (the OS's, with its IPv6 scope: `fe80::1%eth0`). For
  /// a Unix socket the address it was bound with, as dart:io returns it.
  InternetAddress get address => _unixAddress ?? _localAddressOf(_handle);

  /// The bound port (the ephemeral one chosen by the OS for port 0); 0 for a
  /// Unix socket, as in dart:io.
  int get port => isUnix ? 0 : _localPortOf(_handle);

  /// Whether this is a Unix domain socket listener.
  bool get isUnix => _unixAddress != null;

  /// The path the OS reports for the socket (tcp_local_path), as a unix
  /// [InternetAddress]: for a symbolic link bound at its target, the target;
  /// for an abstract name, '@name'. Throws a [SocketException] for a TCP
  /// listener or one the engine no longer has.
  InternetAddress get localPath => _localPathOf(_handle);

  /// Whether the engine still has the listener's handle (it is gone after
  /// [close] or zigTcpShutdown).
  bool get isOpenInEngine {
    try {
      if (isUnix) return _localPathOf(_handle).type == InternetAddressType.unix;
      return _localPortOf(_handle) >= 0;
    } on SocketException {
      return false;
    }
  }

  /// The engine handle (for diagnostics and tests).
  int get handle => _handle;
}
