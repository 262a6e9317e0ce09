part of 'engine.dart';

/// A TCP or Unix domain socket connection on the engine: a thin,
/// future-based wrapper of one engine handle.
///
/// Reads are served one at a time in call order, and so are writes; reads and
/// writes run concurrently. While a read stream runs on the connection (a
/// ZigSocket whose stream is listened to), [read] fails with a
/// [StateError]. A Connection that is garbage collected without [close] is
/// closed by a native finalizer.
final class Connection implements Finalizable {
  Connection._(this._handle, this._io, [this._unixAddress]) {
    _closeFinalizer.attach(this, Pointer<Void>.fromAddress(_handle),
        detach: this);
    _handleCountFinalizer.attach(this, _io, detach: this);
  }

  /// Bytes asked for by one [read] unless told otherwise.
  static const int defaultReadSize = 64 * 1024;

  final int _handle;
  final _IOService _io;
  Future<void>? _closed;

  /// For a Unix socket (null for TCP) what dart:io's `_NativeSocket` keeps as
  /// its `localAddress` and returns as `address`: the address connected to,
  /// or for an accepted connection the listener's address.
  final InternetAddress? _unixAddress;

  /// Bytes a stopped [ReadStream] received that nobody consumed, in stream
  /// order; [read] returns them before asking the engine for more.
  final Queue<Uint8List> _unread = Queue<Uint8List>();

  /// How a stopped read stream ended when it ended on its own (end of stream
  /// or an error raced the stop): [read] reports it after [_unread].
  _Completion? _unreadEnd;

  /// Non-null from a read stream's stop until the reads after it consumed
  /// what it left: every [read] then waits for this future (the previous
  /// read's turn, or the stream's final completion) before it runs, so the
  /// reads keep their call order.
  Future<void>? _readGate;

  /// Connects to [host] on [port], as dart:io's `Socket.connect` does.
  ///
  /// [host] is an [InternetAddress] or a [String]: a numeric address, or a
  /// host name looked up with [InternetAddress.lookup] (IPv4 first, IPv6 10 ms
  /// later). Attempts to several addresses overlap: the next one starts when
  /// the previous failed or after 25 ms (loopback) / 250 ms (others), and the
  /// first to connect wins; when all fail, the first attempt's error is
  /// reported. [sourceAddress] (an [InternetAddress] or a numeric [String],
  /// never looked up) and [sourcePort] pick the local end. [timeout] bounds
  /// everything, the lookup included.
  ///
  /// A link-local IPv6 destination (or source) needs its scope, as in
  /// dart:io: `InternetAddress('fe80::1%eth0')`, `'fe80::1%2'`, or a String
  /// with the URI escape `'fe80::1%25eth0'`. The interface index reaches the
  /// engine with the address (a name is resolved with if_nametoindex).
  ///
  /// Bad arguments throw an [ArgumentError] at once, as in dart:io, and so
  /// does a String [host] with a '%' that is not a link-local address (a
  /// [FormatException], dart:io's `escapeLinkLocalAddress`).
  ///
  /// A Unix domain socket: [host] is `InternetAddress(path, type:
  /// InternetAddressType.unix)` (on Linux and Android `'@name'` is an
  /// abstract name), as in dart:io, which checks [port] and then ignores it.
  /// A String [host] is never a path. As in dart:io's `startConnect`, a unix
  /// [sourceAddress] with a String [host] throws a [SocketException] at
  /// once, and a source of the other family fails the connect with
  /// "Address family not supported by protocol family, ...". A unix
  /// [sourceAddress] for a unix [host] (dart:io binds the client to that
  /// path) throws an [UnsupportedError]: the engine does not bind clients.
  static Future<Connection> connect(Object host, int port,
          {Object? sourceAddress, int sourcePort = 0, Duration? timeout}) =>
      startConnect(host, port,
              sourceAddress: sourceAddress,
              sourcePort: sourcePort,
              timeout: timeout)
          .connection;

  /// Like [connect], but the returned attempt can be cancelled, also while
  /// the host name is being looked up.
  static ConnectionAttempt startConnect(Object host, int port,
      {Object? sourceAddress, int sourcePort = 0, Duration? timeout}) {
    // dart:io unescapes a String host before it checks the ports.
    final Object target = host is String ? unescapeScopedHost(host) : host;
    _checkPort(port, 'port');
    _checkPort(sourcePort, 'sourcePort');
    if (target is InternetAddress) {
      if (!isUnixAddress(target)) engineAddress(target, 'host');
    } else if (target is! String) {
      throw ArgumentError.value(
          host, 'host', 'must be an InternetAddress or a String');
    }
    final InternetAddress? source = _sourceAddressOf(sourceAddress);
    _checkUnixSource(target, source);
    final ConnectionAttempt attempt = ConnectionAttempt._(target, port, source,
        source == null || isUnixAddress(source)
            ? null
            : engineAddress(source, 'sourceAddress'),
        sourcePort);
    attempt._start(timeout);
    return attempt;
  }

  /// Reads up to [maxBytes] bytes (1..TCP_READ_BYTES_MAX), one engine read
  /// (tcp_read). Completes with the bytes, or null at end of stream (the peer
  /// shut down its write side).
  ///
  /// While a read stream runs on this connection (the stream of a
  /// ZigSocket on it is listened to) the engine refuses the read
  /// (TCP_ERR_BUSY) and the future fails with a [StateError]: cancel that
  /// subscription first. After the cancel, reads carry on exactly where the
  /// stream stopped: the bytes the stream received but did not deliver come
  /// first, nothing is lost or reordered.
  Future<Uint8List?> read([int maxBytes = defaultReadSize]) async {
    RangeError.checkValueInInterval(
        maxBytes, 1, TCP_READ_BYTES_MAX, 'maxBytes');
    final Future<void>? gate = _readGate;
    if (gate == null && !_hasUnread) return _readFromEngine(maxBytes);
    // A read stream was stopped: what it left comes first, and the reads
    // take turns until it is consumed.
    final Completer<void> turn = Completer<void>();
    _readGate = turn.future;
    try {
      if (gate != null) await gate;
      if (_hasUnread) return _takeUnread(maxBytes);
      return await _readFromEngine(maxBytes);
    } finally {
      turn.complete();
      // The last read in line, with nothing left over: reads go straight to
      // the engine again.
      if (identical(_readGate, turn.future) && !_hasUnread) _readGate = null;
    }
  }

  Future<Uint8List?> _readFromEngine(int maxBytes) async {
    final int requestId = _io.newRequestId();
    final int rc = tcp_read(_handle, requestId, maxBytes);
    if (rc == TCP_ERR_BUSY) {
      throw StateError('Connection.read() while a read stream runs on the '
          'connection (the stream of a ZigSocket on it is listened to): '
          'cancel that subscription first');
    }
    if (rc < 0) throw _syncError(rc, 'Read failed');
    final _Completion done = await _io.expect(requestId, _kindPlain);
    if (done.result > 0) return done.payload as Uint8List;
    if (done.result == 0) return null;
    throw _socketError(done.result, done.osError, 'Read failed');
  }

  bool get _hasUnread => _unread.isNotEmpty || _unreadEnd != null;

  /// The next bytes (at most [maxBytes]) a stopped read stream left, or,
  /// once they are consumed, the end it reached: null at end of stream, an
  /// exception for an error.
  Uint8List? _takeUnread(int maxBytes) {
    if (_unread.isNotEmpty) {
      final Uint8List first = _unread.removeFirst();
      if (first.length <= maxBytes) return first;
      _unread.addFirst(Uint8List.sublistView(first, maxBytes));
      return Uint8List.sublistView(first, 0, maxBytes);
    }
    final _Completion end = _unreadEnd!;
    _unreadEnd = null;
    if (end.result == 0) return null;
    throw _socketError(end.result, end.osError, 'Read failed');
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

  Future<void> _close() {
    // Nobody can read them any more.
    _unread.clear();
    _unreadEnd = null;
    return _closeHandle(this, _io, _handle);
  }

  /// The local address (the OS's, with its IPv6 scope: `fe80::1%eth0`). For
  /// a Unix socket what dart:io returns: the address connected to, or for an
  /// accepted connection its listener's address ([localPath] has the OS's).
  InternetAddress get address => _unixAddress ?? _localAddressOf(_handle);

  /// The local port; 0 for a Unix socket, as in dart:io.
  int get port => isUnix ? 0 : _localPortOf(_handle);

  /// The peer's address (with its IPv6 scope: `fe80::1%eth0`). For a Unix
  /// socket the peer's path as the OS reports it, as in dart:io: the
  /// listener's path on the connecting side, '' (an unnamed socket) on the
  /// accepting side; '@name' for an abstract name.
  InternetAddress get remoteAddress =>
      isUnix ? _remotePathOf(_handle) : _remoteAddressOf(_handle);

  /// Whether this is a Unix domain socket connection.
  bool get isUnix => _unixAddress != null;

  /// The local path the OS reports for a Unix socket (tcp_local_path), as a
  /// unix [InternetAddress]: '' for an unnamed socket (the connecting side),
  /// the listener's path on the accepting side. Throws a [SocketException]
  /// on a TCP connection.
  InternetAddress get localPath => _localPathOf(_handle);

  /// The peer's port; 0 for a Unix socket, as in dart:io.
  int get remotePort {
    if (isUnix) return 0;
    final int port = tcp_remote_port(_handle);
    if (port < 0) throw _syncError(port, 'Getting the remote port failed');
    return port;
  }

  /// SO_KEEPALIVE. On a Unix socket a [SocketException] (the engine's
  /// TCP_ERR_NOT_TCP), as are [noDelay]'s.
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

/// Throws an [ArgumentError] unless [port] is in 0..65535.
void _checkPort(int port, String name) {
  if (port < 0 || port > 65535) {
    throw ArgumentError.value(port, name, 'must be in 0..65535');
  }
}

/// dart:io's `_NativeSocket.startConnect`: a String host is an internet
/// host, which a unix source can never reach (a [SocketException], thrown
/// at once). A unix source for a unix host is dart:io's bind-then-connect,
/// which the engine has no call for.
void _checkUnixSource(Object target, InternetAddress? source) {
  if (!isUnixAddress(source)) return;
  if (target is String) {
    throw const SocketException(
        'Cannot connect to an internet host using a unix domain socket');
  }
  if (isUnixAddress(target)) {
    throw UnsupportedError('zig_tcp: a Unix socket connect cannot be bound '
        'to a source path (sourceAddress)');
  }
}

/// The error dart:io's `tryConnectToResolvedAddresses` reports for a connect
/// to [address] from a [source] of the other family (a unix one to an IP
/// address, an IP one to a unix path), or null when the families fit.
SocketException? _sourceFamilyError(
    InternetAddress address, InternetAddress? source) {
  if (source == null) return null;
  final bool unixTarget = isUnixAddress(address);
  if (unixTarget == isUnixAddress(source)) return null;
  // The message is dart:io's: Linux's text, then the details.
  final String wanted = unixTarget
      ? '${InternetAddressType.unix}'
      : '${InternetAddressType.IPv4} or ${InternetAddressType.IPv6}';
  return SocketException(
      'Address family not supported by protocol family, '
      'sourceAddress.type must be $wanted but was ${source.type}',
      address: address);
}

/// The source address of a connect. As dart:io's `_NativeSocket.startConnect`
/// (sdk/lib/_internal/vm/bin/socket_patch.dart), a String must be a numeric
/// address (`InternetAddress(string)` throws an [ArgumentError] otherwise):
/// it is never looked up. Its scope, if any, is checked by the caller.
InternetAddress? _sourceAddressOf(Object? sourceAddress) {
  if (sourceAddress == null) return null;
  final InternetAddress address;
  if (sourceAddress is InternetAddress) {
    address = sourceAddress;
  } else if (sourceAddress is String) {
    address = InternetAddress(sourceAddress);
  } else {
    throw ArgumentError.value(sourceAddress, 'sourceAddress',
        'must be an InternetAddress or a numeric String');
  }
  return address;
}

/// One connect in progress ([Connection.startConnect]), modelled on dart:io's
/// `_NativeSocket.startConnect` / `tryConnectToResolvedAddresses`
/// (sdk/lib/_internal/vm/bin/socket_patch.dart): addresses are tried as they
/// arrive from the lookup, each attempt starting when the previous one failed
/// or its stagger delay passed, so attempts overlap; the first to connect
/// wins and every other is closed.
final class ConnectionAttempt {
  ConnectionAttempt._(this._host, this._port, this._source,
      this._sourceBytes, this._sourcePort);

  /// dart:io's delay between the starts of two attempts (`_retryDuration`,
  /// `_retryDurationLoopback`).
  static const Duration _stagger = Duration(milliseconds: 250);
  static const Duration _staggerLoopback = Duration(milliseconds: 25);

  /// dart:io's delay of the IPv6 lookup after the IPv4 one
  /// (`staggeredLookup`'s `concurrentLookupDelay`).
  static const Duration _ipv6LookupDelay = Duration(milliseconds: 10);

  /// As given (a String after [unescapeScopedHost]): dart:io's error
  /// messages name it so.
  final Object _host;
  final int _port;
  final InternetAddress? _source;

  /// [_source] in the engine's form (with its scope id, if any).
  final Uint8List? _sourceBytes;
  final int _sourcePort;
  final Completer<Connection> _result = Completer<Connection>();

  /// Addresses looked up but not tried yet.
  final Queue<InternetAddress> _waiting = Queue<InternetAddress>();

  /// Connects in flight, with the index of their attempt (0 = first).
  final Map<Connection, int> _connecting = <Connection, int>{};
  int _attempts = 0;
  bool _lookupDone = false;
  bool _finished = false;
  Timer? _staggerTimer;
  Timer? _timeoutTimer;
  Timer? _ipv6LookupTimer;

  /// The error of the earliest attempt that failed so far.
  SocketException? _firstError;
  StackTrace? _firstErrorStack;
  int _firstErrorIndex = 0;

  /// The error of a failed lookup (reported only if no address was found).
  Object? _lookupError;
  StackTrace? _lookupErrorStack;

  /// Completes with the connection, or with a [SocketException]: the first
  /// attempt's error when every address failed, the lookup's error when it
  /// found nothing, `Connection timed out, host: H, port: P` when the timeout
  /// expired, or `Connection attempt cancelled, host: H, port: P` after
  /// [cancel] (the messages are dart:io's).
  Future<Connection> get connection => _result.future;

  /// Cancels the attempt, also during the host lookup: [connection] fails at
  /// once (unless it already completed) and every connect in flight is
  /// closed. As in dart:io's `onCancel`, an attempt that already failed is
  /// reported instead of the cancellation.
  void cancel() {
    if (_finished) return;
    _fail(
        _firstError ??
            SocketException(
                'Connection attempt cancelled, host: $_host, port: $_port'),
        _firstErrorStack ?? StackTrace.current);
  }

  void _start(Duration? timeout) {
    if (timeout != null) _timeoutTimer = Timer(timeout, _onTimeout);
    final Object host = _host;
    final InternetAddress? literal =
        host is InternetAddress ? host : InternetAddress.tryParse(host as String);
    if (literal != null) {
      _lookupDone = true;
      _addAddresses(<InternetAddress>[literal]);
    } else {
      _lookUp(host as String);
    }
  }

  /// dart:io's `Socket.connect` puts `Future.timeout` around the whole task,
  /// lookup included; on expiry it cancels the task and throws this message
  /// (no OS error).
  void _onTimeout() {
    if (_finished) return;
    _fail(SocketException('Connection timed out, host: $_host, port: $_port'),
        StackTrace.current);
  }

  /// Looks [host] up as dart:io's `staggeredLookup` does: IPv4 first, IPv6
  /// a little later (not at all when the source address is IPv4); addresses
  /// are tried as each lookup delivers them.
  void _lookUp(String host) {
    final bool both = _source?.type != InternetAddressType.IPv4;
    int pending = both ? 2 : 1;
    Future<void> lookUp(InternetAddressType type) async {
      try {
        _addAddresses(await InternetAddress.lookup(host, type: type));
      } catch (error, stack) {
        _lookupError ??= error;
        _lookupErrorStack ??= stack;
      }
      pending--;
      if (pending == 0) {
        _lookupDone = true;
        _failIfExhausted();
      }
    }

    unawaited(lookUp(InternetAddressType.IPv4));
    if (both) {
      _ipv6LookupTimer = Timer(_ipv6LookupDelay,
          () => unawaited(lookUp(InternetAddressType.IPv6)));
    }
  }

  void _addAddresses(List<InternetAddress> addresses) {
    if (_finished) return;
    _waiting.addAll(addresses);
    // A running stagger timer starts the next attempt when it fires.
    if (_staggerTimer == null) _connectNext();
  }

  /// Starts the next attempt now (the previous failed, or its stagger delay
  /// passed), then arms the stagger timer for the one after.
  void _connectNext() {
    _staggerTimer?.cancel();
    _staggerTimer = null;
    if (_finished) return;
    while (_waiting.isNotEmpty) {
      final InternetAddress address = _waiting.removeFirst();
      if (_tryConnect(address, _attempts++)) {
        _staggerTimer = Timer(
            address.isLoopback ? _staggerLoopback : _stagger, _connectNext);
        return;
      }
    }
    _failIfExhausted();
  }

  /// Issues the connect to [address]; false if the engine refused it at once,
  /// its scope names no interface, or the source address is of the other
  /// family (the error is recorded).
  bool _tryConnect(InternetAddress address, int index) {
    final Uint8List? raw = _destinationBytes(address, index);
    if (raw == null) return false;
    final bool unix = isUnixAddress(address);
    final _IOService io;
    try {
      io = _IOService.instance;
    } on SocketException catch (error, stack) {
      _recordError(index, error, stack);
      return false;
    }
    final int requestId = io.newRequestId();
    final int handle = _issueConnect(io.nativePort, requestId, raw, unix);
    if (handle < 0) {
      final SocketException error = _syncError(handle, 'Connection failed',
          address: address, port: _port);
      io.maybeClose();
      _recordError(index, error, StackTrace.current);
      return false;
    }
    io.handleOpened();
    final Connection connection =
        Connection._(handle, io, unix ? address : null);
    _connecting[connection] = index;
    unawaited(io.expect(requestId, _kindPlain).then<void>((_Completion done) =>
        _connectDone(connection, address, index, done)));
    return true;
  }

  /// The engine's form of [address] (a unix path's bytes, or the IP address
  /// with its scope), or null when it cannot be connected to: its scope
  /// names no interface, or the source address is of the other family (the
  /// error is recorded).
  Uint8List? _destinationBytes(InternetAddress address, int index) {
    final SocketException? familyError = _sourceFamilyError(address, _source);
    if (familyError != null) {
      _recordError(index, familyError, StackTrace.current);
      return null;
    }
    if (isUnixAddress(address)) return unixPathBytes(address.address);
    try {
      return engineAddress(address, 'host');
    } on ArgumentError catch (error, stack) {
      // A looked-up address whose interface name the OS no longer knows.
      _recordError(
          index,
          SocketException('Connection failed: ${error.message}',
              address: address, port: _port),
          stack);
      return null;
    }
  }

  /// tcp_connect_unix or tcp_connect to [raw]: the handle, or the engine's
  /// refusal (< 0). `.address` of typed data is only allowed directly as a
  /// leaf call's argument, hence a call per case.
  int _issueConnect(int nativePort, int requestId, Uint8List raw, bool unix) {
    final Uint8List? source = _sourceBytes;
    if (unix) {
      // dart:io ignores the ports of a unix connect.
      return tcp_connect_unix(
          nativePort, requestId, raw.address, raw.length, 0);
    }
    if (source == null) {
      return tcp_connect(nativePort, requestId, raw.address, raw.length,
          _port, nullptr, 0, _sourcePort, 0);
    }
    return tcp_connect(nativePort, requestId, raw.address, raw.length, _port,
        source.address, source.length, _sourcePort, 0);
  }

  void _connectDone(
      Connection connection, InternetAddress address, int index, _Completion done) {
    _connecting.remove(connection);
    if (done.result == TCP_OK && !_finished) {
      _finish();
      _result.complete(connection);
      return;
    }
    // A failed connect's handle must still be closed (tcp.h), and so must
    // one that lost to another attempt, a cancel or the timeout.
    unawaited(connection.close());
    if (_finished) return;
    _recordError(
        index,
        _socketError(done.result, done.osError, 'Connection failed',
            address: address, port: _port),
        StackTrace.current);
    _connectNext();
  }

  /// Keeps the error of the earliest attempt. dart:io keeps the first error
  /// to arrive (`error ??= e`), which is the first attempt's unless a later
  /// attempt fails sooner; by index the result does not depend on timing.
  void _recordError(int index, SocketException error, StackTrace stack) {
    if (_firstError != null && _firstErrorIndex <= index) return;
    _firstError = error;
    _firstErrorStack = stack;
    _firstErrorIndex = index;
  }

  /// Fails the attempt once nothing is left to try or waiting to complete.
  void _failIfExhausted() {
    if (_finished || !_lookupDone) return;
    if (_waiting.isNotEmpty || _connecting.isNotEmpty) return;
    final SocketException? first = _firstError;
    if (first != null) {
      _fail(first, _firstErrorStack!);
    } else if (_lookupError != null) {
      _fail(_lookupError!, _lookupErrorStack!);
    } else {
      _fail(SocketException("Failed host lookup: '$_host'"), StackTrace.current);
    }
  }

  void _fail(Object error, StackTrace stack) {
    _finish();
    _result.completeError(error, stack);
  }

  /// Stops everything: timers, the addresses not tried, the connects in
  /// flight (their completions come later and find [_finished] set).
  void _finish() {
    assert(!_finished);
    _finished = true;
    _staggerTimer?.cancel();
    _timeoutTimer?.cancel();
    _ipv6LookupTimer?.cancel();
    _waiting.clear();
    for (final Connection connection in _connecting.keys) {
      unawaited(connection.close());
    }
    _connecting.clear();
  }
}
