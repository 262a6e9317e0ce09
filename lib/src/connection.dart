part of 'engine.dart';

/// A TCP connection on the engine: a thin, future-based wrapper of one
/// engine handle.
///
/// Reads are served one at a time in call order, and so are writes; reads and
/// writes run concurrently. A Connection that is garbage collected without
/// [close] is closed by a native finalizer.
final class Connection implements Finalizable {
  Connection._(this._handle, this._io) {
    _closeFinalizer.attach(this, Pointer<Void>.fromAddress(_handle),
        detach: this);
    _handleCountFinalizer.attach(this, _io, detach: this);
  }

  /// Bytes asked for by one [read] unless told otherwise.
  static const int defaultReadSize = 64 * 1024;

  final int _handle;
  final _IOService _io;
  Future<void>? _closed;

  /// Connects to [host] ([InternetAddress], or a [String] looked up with
  /// [InternetAddress.lookup]; each address is tried in turn) on [port].
  ///
  /// [sourceAddress] (an [InternetAddress] or a numeric [String]) and
  /// [sourcePort] pick the local end. [timeout] bounds the whole attempt,
  /// all addresses together.
  static Future<Connection> connect(Object host, int port,
          {Object? sourceAddress, int sourcePort = 0, Duration? timeout}) =>
      startConnect(host, port,
              sourceAddress: sourceAddress,
              sourcePort: sourcePort,
              timeout: timeout)
          .connection;

  /// Like [connect], but the returned attempt can be cancelled while the
  /// connection is being made.
  static ConnectionAttempt startConnect(Object host, int port,
      {Object? sourceAddress, int sourcePort = 0, Duration? timeout}) {
    final ConnectionAttempt attempt = ConnectionAttempt._();
    attempt.connection =
        attempt._run(host, port, sourceAddress, sourcePort, timeout);
    return attempt;
  }

  /// Reads up to [maxBytes] bytes (1..TCP_READ_BYTES_MAX). Completes with the
  /// bytes, or null at end of stream (the peer shut down its write side).
  Future<Uint8List?> read([int maxBytes = defaultReadSize]) async {
    RangeError.checkValueInInterval(
        maxBytes, 1, TCP_READ_BYTES_MAX, 'maxBytes');
    final int requestId = _io.newRequestId();
    final int rc = tcp_read(_handle, requestId, maxBytes);
    if (rc < 0) throw _syncError(rc, 'Read failed');
    final _Completion done = await _io.expect(requestId, _kindPlain);
    if (done.result > 0) return done.payload as Uint8List;
    if (done.result == 0) return null;
    throw _socketError(done.result, done.osError, 'Read failed');
  }

  /// Writes [count] bytes of [bytes] from [offset] (default: all of them).
  ///
  /// The engine copies the bytes before this method returns, so [bytes] may be
  /// changed at once; the future completes when they have been written.
  /// A [Uint8List] is passed to the engine without a copy in Dart; any other
  /// `List<int>` is converted once with [Uint8List.fromList].
  Future<void> write(List<int> bytes, [int offset = 0, int? count]) async {
    if (count != null) RangeError.checkNotNegative(count, 'count');
    final int end = RangeError.checkValidRange(offset,
        count == null ? null : offset + count, bytes.length, 'offset', 'count');
    final Uint8List data;
    int start;
    final int stop;
    if (bytes is Uint8List) {
      data = bytes;
      start = offset;
      stop = end;
    } else {
      data = Uint8List.fromList(
          offset == 0 && end == bytes.length ? bytes : bytes.sublist(offset, end));
      start = 0;
      stop = data.length;
    }
    // Submit everything now (in chunks of at most TCP_WRITE_BYTES_MAX); the
    // engine keeps the chunks in order.
    final List<Future<_Completion>> pending = <Future<_Completion>>[];
    do {
      final int n = math.min(stop - start, TCP_WRITE_BYTES_MAX);
      final int requestId = _io.newRequestId();
      final int rc = tcp_write(_handle, requestId,
          Uint8List.sublistView(data, start, start + n).address, n);
      if (rc < 0) throw _syncError(rc, 'Write failed');
      pending.add(_io.expect(requestId, _kindPlain));
      start += n;
    } while (start < stop);
    for (final Future<_Completion> future in pending) {
      final _Completion done = await future;
      if (done.result < 0) {
        throw _socketError(done.result, done.osError, 'Write failed');
      }
    }
  }

  /// Shuts down the sending side (FIN) once every earlier write finished.
  /// Reading goes on.
  Future<void> closeWrite() async {
    final int requestId = _io.newRequestId();
    final int rc = tcp_shutdown_write(_handle, requestId);
    if (rc < 0) throw _syncError(rc, 'Shutting down the write side failed');
    final _Completion done = await _io.expect(requestId, _kindPlain);
    if (done.result < 0) {
      throw _socketError(
          done.result, done.osError, 'Shutting down the write side failed');
    }
  }

  /// Closes the connection: pending reads and writes fail with "closed", then
  /// the future completes. Calling it again returns the same future.
  Future<void> close() => _closed ??= _close();

  /// Whether [close] was called.
  bool get isClosed => _closed != null;

  Future<void> _close() => _closeHandle(this, _io, _handle);

  /// The local address.
  InternetAddress get address => _localAddressOf(_handle);

  /// The local port.
  int get port => _localPortOf(_handle);

  /// The peer's address.
  InternetAddress get remoteAddress {
    final Uint8List buffer = Uint8List(16);
    final int n = tcp_remote_address(_handle, buffer.address);
    if (n < 0) throw _syncError(n, 'Getting the remote address failed');
    return InternetAddress.fromRawAddress(buffer.sublist(0, n));
  }

  /// The peer's port.
  int get remotePort {
    final int port = tcp_remote_port(_handle);
    if (port < 0) throw _syncError(port, 'Getting the remote port failed');
    return port;
  }

  /// SO_KEEPALIVE.
  bool get keepAlive {
    final int value = tcp_get_keep_alive(_handle);
    if (value < 0) throw _syncError(value, 'Getting keepAlive failed');
    return value != 0;
  }

  set keepAlive(bool enabled) {
    final int rc = tcp_set_keep_alive(_handle, enabled ? 1 : 0);
    if (rc < 0) throw _syncError(rc, 'Setting keepAlive failed');
  }

  /// TCP_NODELAY.
  bool get noDelay {
    final int value = tcp_get_no_delay(_handle);
    if (value < 0) throw _syncError(value, 'Getting noDelay failed');
    return value != 0;
  }

  set noDelay(bool enabled) {
    final int rc = tcp_set_no_delay(_handle, enabled ? 1 : 0);
    if (rc < 0) throw _syncError(rc, 'Setting noDelay failed');
  }

  /// The engine handle (for diagnostics and tests).
  int get handle => _handle;
}

/// One connect in progress ([Connection.startConnect]): resolves the host,
/// then tries each address in turn.
final class ConnectionAttempt {
  ConnectionAttempt._();

  /// Completes with the connection, or with a [SocketException] (also when
  /// the attempt was cancelled).
  late final Future<Connection> connection;

  bool _cancelled = false;
  Connection? _inFlight;

  /// Cancels the attempt: [connection] fails with "Connection attempt
  /// cancelled" (unless it already completed).
  void cancel() {
    _cancelled = true;
    final Connection? connection = _inFlight;
    _inFlight = null;
    if (connection != null) unawaited(connection.close());
  }

  static const SocketException _cancelledError =
      SocketException('Connection attempt cancelled');

  Future<Connection> _run(Object host, int port, Object? sourceAddress,
      int sourcePort, Duration? timeout) async {
    if (port < 0 || port > 65535) {
      throw ArgumentError.value(port, 'port', 'must be in 0..65535');
    }
    final Stopwatch clock = Stopwatch()..start();
    final List<InternetAddress> addresses = await _resolve(host, 'host');
    InternetAddress? source;
    if (sourceAddress != null) {
      source = (await _resolve(sourceAddress, 'sourceAddress')).first;
    }
    SocketException? lastError;
    for (final InternetAddress address in addresses) {
      if (_cancelled) throw _cancelledError;
      int timeoutMs = 0;
      if (timeout != null) {
        timeoutMs = timeout.inMilliseconds - clock.elapsedMilliseconds;
        if (timeoutMs <= 0) {
          throw _socketError(TCP_ERR_TIMED_OUT, 0, 'Connection failed',
              address: address, port: port);
        }
      }
      try {
        return await _connectOne(address, port, source, sourcePort, timeoutMs);
      } on SocketException catch (error) {
        if (_cancelled) throw _cancelledError;
        lastError = error;
      }
    }
    throw lastError!;
  }

  Future<Connection> _connectOne(InternetAddress address, int port,
      InternetAddress? source, int sourcePort, int timeoutMs) async {
    final _IOService io = _IOService.instance;
    final Uint8List raw = _rawAddress(address, 'host');
    final int requestId = io.newRequestId();
    final int nativePort = io.nativePort;
    final int handle;
    if (source == null) {
      handle = tcp_connect(nativePort, requestId, raw.address, raw.length,
          port, nullptr, 0, sourcePort, timeoutMs);
    } else {
      final Uint8List sourceRaw = _rawAddress(source, 'sourceAddress');
      handle = tcp_connect(nativePort, requestId, raw.address, raw.length,
          port, sourceRaw.address, sourceRaw.length, sourcePort, timeoutMs);
    }
    if (handle < 0) {
      final SocketException error = _syncError(handle, 'Connection failed',
          address: address, port: port);
      io.maybeClose();
      throw error;
    }
    io.handleOpened();
    final Connection connection = Connection._(handle, io);
    _inFlight = connection;
    final _Completion done = await io.expect(requestId, _kindPlain);
    _inFlight = null;
    if (done.result == TCP_OK && !_cancelled) return connection;
    // A failed (or cancelled) connect's handle must still be closed.
    await connection.close();
    if (_cancelled) throw _cancelledError;
    throw _socketError(done.result, done.osError, 'Connection failed',
        address: address, port: port);
  }
}
