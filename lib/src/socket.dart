// dart:io's Socket and ServerSocket interfaces on top of Connection and
// Listener, so code written for dart:io (HttpServer, HttpClient, ...) runs on
// the engine. See overrides.dart for switching dart:io over in a zone.

import 'dart:async';
import 'dart:collection';
import 'dart:convert';
import 'dart:io';
import 'dart:typed_data';

import 'accept_loop.dart';
import 'bindings.dart' show TCP_ERR_NOT_TCP;
import 'engine.dart';

/// A [Socket] on the zig_tcp engine.
///
/// The stream side runs on one engine read stream (tcp.h "streaming reads"),
/// started when the stream is listened to, as dart:io's `_Socket` enables
/// read events only then: the engine receives as soon as bytes arrive,
/// without a Dart call per chunk, and never more than [readWindowBytes]
/// ahead of what this socket acknowledged. A chunk is acknowledged when it is
/// delivered to a listener that is not paused. While the listener is paused
/// nothing is acknowledged: the chunks that still arrive wait here (at most
/// [readWindowBytes], see [readBufferedBytes]), the engine stops receiving,
/// the kernel's buffers fill and TCP's flow control stops the peer. Resuming
/// delivers the waiting chunks, in order, and acknowledges them.
///
/// The sink side passes each [add] to the engine at once (the engine copies
/// the bytes); [addStream] waits whenever more than 1 MiB is in flight.
///
/// The socket is fully closed (its engine handle released) once both sides
/// are done: the stream reached its end or its subscription was cancelled,
/// and the sink was closed. [destroy] closes both at once.
final class ZigSocket extends Stream<Uint8List> implements Socket {
  ZigSocket._(this._connection) {
    // Synchronous: a chunk given to an unpaused listener is delivered inside
    // add(), so it can be acknowledged right after.
    _controller = StreamController<Uint8List>(
        sync: true,
        onListen: _startReading,
        onResume: _onResume,
        onCancel: _onCancel);
    _done.future.ignore();
  }

  /// Wraps an engine [Connection] (it now belongs to the socket).
  factory ZigSocket.fromConnection(Connection connection) =>
      ZigSocket._(connection);

  /// Connects like [Socket.connect], on the engine (see
  /// [Connection.connect]: lookup, staggered attempts, timeout, scoped
  /// link-local addresses). Bad arguments throw at once, as in dart:io.
  static Future<ZigSocket> connect(Object host, int port,
          {Object? sourceAddress, int sourcePort = 0, Duration? timeout}) =>
      Connection.connect(host, port,
              sourceAddress: sourceAddress,
              sourcePort: sourcePort,
              timeout: timeout)
          .then<ZigSocket>(ZigSocket.fromConnection);

  /// Like [Socket.startConnect], on the engine: the task's `cancel()` also
  /// works while the host name is being looked up.
  static Future<ConnectionTask<Socket>> startConnect(Object host, int port,
      {Object? sourceAddress, int sourcePort = 0}) {
    final ConnectionAttempt attempt = Connection.startConnect(host, port,
        sourceAddress: sourceAddress, sourcePort: sourcePort);
    final Future<Socket> socket =
        attempt.connection.then<Socket>(ZigSocket.fromConnection);
    return Future<ConnectionTask<Socket>>.value(
        ConnectionTask.fromSocket<Socket>(socket, attempt.cancel));
  }

  /// The window of the socket's engine read stream: the most bytes the
  /// engine posts beyond those this socket acknowledged, so the most that
  /// waits in Dart for a paused listener.
  ///
  /// 256 KiB is four of the engine's receives (it asks the kernel for at most
  /// 64 KiB at a time, STREAM_RECEIVE_BYTES_MAX in src/stream.c): the I/O
  /// thread can go on receiving while the isolate handles and acknowledges
  /// earlier chunks, so an unpaused listener does not wait for an
  /// acknowledgement's round trip; and a paused socket holds at most 256 KiB
  /// in Dart. dart:io holds at most one read's worth for a
  /// paused listener: on Linux a read takes all the kernel has queued
  /// (`_NativeSocket.read` reads `available`, i.e. FIONREAD, bounded by the
  /// receive buffer, up to `tcp_rmem`'s 6 MiB by default), on Windows one
  /// 64 KiB buffer (`kBufferSize` in the VM's eventhandler_win.cc). An idle
  /// socket holds nothing in either.
  static const int readWindowBytes = 256 * 1024;

  static const int _highWater = 1024 * 1024;

  final Connection _connection;
  late final StreamController<Uint8List> _controller;
  final Completer<void> _done = Completer<void>();

  /// The underlying engine connection.
  Connection get connection => _connection;

  /// The engine read stream, from the first listen until it ends.
  ReadStream? _readStream;

  /// Chunks received while the listener was paused, in order, not yet
  /// delivered (nor acknowledged).
  final Queue<Uint8List> _waiting = Queue<Uint8List>();
  int _waitingBytes = 0;

  /// Inside [_deliverWaiting] (a listener may call back into the socket).
  bool _delivering = false;

  /// The stream side wants no more bytes: end of stream, cancel, destroy or
  /// an error.
  bool _readClosed = false;

  /// The stream's last events are due (a done, after an error if
  /// [_endError] is set) once the waiting chunks are delivered.
  bool _endDue = false;
  Object? _endError;
  StackTrace? _endErrorStack;

  bool _writeClosed = false;
  bool _closeCalled = false;
  bool _bound = false;

  /// destroy() was called, or an error closed the socket ([_error] is set).
  bool _destroyed = false;

  /// The error that closed the socket (a failed write, read or FIN), if any.
  Object? _error;
  StackTrace? _errorStack;

  Future<void> _lastWrite = Future<void>.value();
  int _bytesInFlight = 0;

  /// The running [addStream]: its source subscription (null once the source
  /// ended), its result, and whether the source is paused for backpressure.
  StreamSubscription<List<int>>? _source;
  Completer<void>? _sourceResult;
  bool _sourcePaused = false;

  @override
  Encoding encoding = utf8;

  // ---- Stream<Uint8List> ----------------------------------------------------

  @override
  StreamSubscription<Uint8List> listen(void Function(Uint8List event)? onData,
      {Function? onError, void Function()? onDone, bool? cancelOnError}) {
    return _controller.stream.listen(onData,
        onError: onError, onDone: onDone, cancelOnError: cancelOnError);
  }

  /// Bytes received from the engine that wait for the listener (it is
  /// paused): never more than [readWindowBytes].
  int get readBufferedBytes => _waitingBytes;

  /// Starts the engine read stream (once, on listen). A refusal (the
  /// connection is gone, e.g. after zigTcpShutdown) fails the socket, as a
  /// failed read does.
  void _startReading() {
    if (_readClosed) return;
    assert(_readStream == null);
    try {
      _readStream = ReadStream.start(_connection, readWindowBytes,
          onData: _onReadData, onEnd: _onReadEnd);
    } catch (error, stack) {
      _fail(error, stack);
    }
  }

  /// A chunk from the engine: delivered and acknowledged at once if the
  /// listener is not paused (and nothing waits before it), else it waits.
  void _onReadData(Uint8List data) {
    // After destroy or an error the socket's close ends the stream; its last
    // chunks have no reader.
    if (_readClosed) return;
    if (_waiting.isEmpty && !_controller.isPaused) {
      _controller.add(data); // delivered: the controller is synchronous
      _readStream?.ack(data.length);
      return;
    }
    _waiting.add(data);
    _waitingBytes += data.length;
    assert(_waitingBytes <= readWindowBytes);
  }

  /// The engine stream's end: end of stream (null) or an error. One after
  /// the stream side closed (destroy, an error) is the socket's own close.
  void _onReadEnd(SocketException? error) {
    if (_readClosed) return;
    if (error != null) {
      // A read error closes the socket and reaches the stream and done, as
      // in dart:io (`_Socket._onError`).
      _fail(error, StackTrace.current);
      return;
    }
    _readClosed = true;
    _endStream();
    _closeIfBothDone();
  }

  /// The listener resumed (dart:io: read events on again). The chunks that
  /// waited are delivered from a microtask: inside this callback the
  /// controller would queue them instead of delivering them.
  void _onResume() {
    if (_waiting.isNotEmpty || _endDue) scheduleMicrotask(_deliverWaiting);
  }

  /// Delivers the waiting chunks, acknowledging each, until the listener
  /// pauses again; then the stream's end if it is due.
  void _deliverWaiting() {
    if (_delivering) return;
    _delivering = true;
    while (_waiting.isNotEmpty &&
        _controller.hasListener &&
        !_controller.isPaused) {
      final Uint8List data = _waiting.removeFirst();
      _waitingBytes -= data.length;
      _controller.add(data);
      _readStream?.ack(data.length);
    }
    _delivering = false;
    if (_waiting.isEmpty && _endDue && !_controller.isClosed) {
      final Object? error = _endError;
      if (error != null) _controller.addError(error, _endErrorStack);
      unawaited(_controller.close());
    }
  }

  /// Ends the stream after the waiting chunks: with [error], then done (the
  /// first call decides).
  void _endStream([Object? error, StackTrace? stack]) {
    if (_endDue) return;
    _endDue = true;
    _endError = error;
    _endErrorStack = stack;
    _deliverWaiting();
  }

  /// The subscription was cancelled (dart:io shuts the receive side down):
  /// the engine stream stops, and what it received but did not deliver goes
  /// back to the connection, where a later [Connection.read] finds it.
  void _onCancel() {
    _readClosed = true;
    _readStream?.stop(_waiting);
    _waiting.clear();
    _waitingBytes = 0;
    _closeIfBothDone();
  }

  void _closeIfBothDone() {
    if (_readClosed && _writeClosed) unawaited(_connection.close());
  }

  // ---- IOSink ---------------------------------------------------------------

  @override
  void add(List<int> data) {
    if (_closeCalled) throw StateError('StreamSink is closed');
    if (_bound) throw StateError('StreamSink is bound to a stream');
    _submit(data);
  }

  void _submit(List<int> data) {
    if (_destroyed || data.isEmpty) return;
    final int length = data.length;
    _bytesInFlight += length;
    _lastWrite = _connection.write(data).then<void>((_) {
      _written(length);
    }, onError: (Object error, StackTrace stack) {
      _written(length);
      _fail(error, stack);
    });
  }

  void _written(int length) {
    _bytesInFlight -= length;
    if (_sourcePaused && _bytesInFlight <= _highWater ~/ 2) {
      _sourcePaused = false;
      _source?.resume();
    }
  }

  /// Closes the socket because of [error]. dart:io closes a socket on any
  /// error (`_NativeSocket.reportError` in
  /// sdk/lib/_internal/vm/bin/socket_patch.dart) and its `_Socket` passes the
  /// error to the stream and to the sink's consumer. Here likewise: the stream
  /// gets the error and ends, [done] completes with it, [flush] and
  /// [addStream] complete with it from now on, and later writes are dropped.
  void _fail(Object error, StackTrace stack) {
    if (_destroyed) return;
    // Marked first: the stream delivers the error synchronously, and a
    // listener that calls destroy() or add() then must find the socket failed.
    _destroyed = true;
    _error = error;
    _errorStack = stack;
    if (!_done.isCompleted) _done.completeError(error, stack);
    _endAddStream(error, stack);
    // After the chunks that wait for a paused listener, as dart:io's
    // controller queues its error behind its data.
    if (!_readClosed) _endStream(error, stack);
    _closeBoth();
  }

  /// Ends both directions and releases the engine handle (destroy, error).
  /// A running [addStream] ends at once, its source cancelled: dart:io's
  /// destroy stops the consumer (`_SocketStreamConsumer.stop` cancels its
  /// subscription) rather than waiting for the source's next event.
  /// The engine read stream ends with the close (its TCP_ERR_CLOSED is
  /// swallowed: [_readClosed] is set first); chunks that wait for a paused
  /// listener are still delivered, then done, as dart:io's destroy closes
  /// its controller behind the data it holds.
  void _closeBoth() {
    _destroyed = true;
    _readClosed = true;
    _writeClosed = true;
    _endAddStream();
    unawaited(_connection.close());
    _endStream();
  }

  /// Throws the error that closed the socket, if there is one.
  void _throwIfFailed() {
    final Object? error = _error;
    if (error != null) Error.throwWithStackTrace(error, _errorStack!);
  }

  @override
  void write(Object? object) {
    final String string = '$object';
    if (string.isEmpty) return;
    add(encoding.encode(string));
  }

  @override
  void writeAll(Iterable<Object?> objects, [String separator = '']) {
    write(objects.join(separator));
  }

  @override
  void writeln([Object? object = '']) {
    write('$object\n');
  }

  @override
  void writeCharCode(int charCode) {
    write(String.fromCharCode(charCode));
  }

  /// Fails the sink: [done] completes with [error] and the socket is
  /// destroyed (a TCP stream cannot carry an error event).
  @override
  void addError(Object error, [StackTrace? stackTrace]) {
    if (_closeCalled) throw StateError('StreamSink is closed');
    if (_bound) throw StateError('StreamSink is bound to a stream');
    if (!_done.isCompleted) _done.completeError(error, stackTrace);
    destroy();
  }

  /// Writes every chunk of [stream]; waits whenever more than 1 MiB is in
  /// flight. Throws a [StateError] at once (not through the returned future,
  /// as dart:io) when the sink is closed or another [addStream] is running.
  ///
  /// The future completes once the stream ended and its bytes were written,
  /// or with the error that closed the socket. On a sink that already failed
  /// it is [done], as in dart:io's `_StreamSinkImpl.addStream`
  /// (sdk/lib/io/io_sink.dart).
  @override
  Future<void> addStream(Stream<List<int>> stream) {
    if (_closeCalled) throw StateError('StreamSink is closed');
    if (_bound) throw StateError('StreamSink is already bound to a stream');
    if (_error != null) return done;
    // dart:io's consumer of a destroyed socket completes at once and never
    // listens to the stream (`_SocketStreamConsumer.addStream`, `_raw` null).
    if (_destroyed) return Future<void>.value();
    _bound = true;
    final Completer<void> result = Completer<void>();
    _sourceResult = result;
    final StreamSubscription<List<int>> source = stream.listen(_onSourceData,
        onError: _onSourceError, onDone: _onSourceDone, cancelOnError: true);
    // A synchronous stream may deliver data (and so ask for a pause) or end
    // inside listen, before _source is set.
    if (_sourceResult == result) {
      _source = source;
      if (_sourcePaused) source.pause();
    }
    return result.future;
  }

  void _onSourceData(List<int> chunk) {
    _submit(chunk);
    if (!_sourcePaused && _bytesInFlight > _highWater) {
      _sourcePaused = true;
      _source?.pause();
    }
  }

  /// An error of the source: as dart:io, the socket is destroyed and
  /// addStream completes with the error.
  void _onSourceError(Object error, StackTrace stack) {
    _source = null; // cancelOnError: the subscription is already cancelled
    _endAddStream(error, stack);
    destroy();
  }

  /// The source ended: addStream completes once its bytes were written.
  void _onSourceDone() {
    _source = null;
    final Completer<void>? result = _sourceResult;
    unawaited(_lastWrite.then<void>((_) {
      if (_sourceResult == result) _endAddStream(_error, _errorStack);
    }));
  }

  /// Completes the running addStream (if any) with [error] or normally, and
  /// cancels its source if that has not ended.
  void _endAddStream([Object? error, StackTrace? stack]) {
    final Completer<void>? result = _sourceResult;
    if (result == null) return;
    final StreamSubscription<List<int>>? source = _source;
    _sourceResult = null;
    _source = null;
    _sourcePaused = false;
    _bound = false;
    if (source != null) unawaited(source.cancel());
    if (error == null) {
      result.complete();
    } else {
      result.completeError(error, stack);
    }
  }

  /// Completes when every byte added so far has been written, or with the
  /// error that closed the socket (a failed write among them): dart:io's
  /// flush fails when the socket failed, and its HTTP code relies on that.
  /// After [destroy] it completes normally (the bytes were dropped).
  @override
  Future<void> flush() {
    if (_bound) throw StateError('StreamSink is bound to a stream');
    return _lastWrite.then<void>((_) => _throwIfFailed());
  }

  /// Closes the sending side once everything added was written (the peer
  /// sees end of stream). Returns [done].
  @override
  Future<void> close() {
    if (_bound) throw StateError('StreamSink is bound to a stream');
    if (!_closeCalled) {
      _closeCalled = true;
      unawaited(_closeWriteSide());
    }
    return done;
  }

  Future<void> _closeWriteSide() async {
    await _lastWrite;
    // After destroy() or an error, done is complete and the handle closed.
    if (_destroyed) return;
    try {
      await _connection.closeWrite();
    } catch (error, stack) {
      _fail(error, stack);
      return;
    }
    _writeClosed = true;
    if (!_done.isCompleted) _done.complete();
    _closeIfBothDone();
  }

  @override
  Future<void> get done => _done.future;

  // ---- Socket ---------------------------------------------------------------

  /// Closes both directions at once and releases the engine handle.
  ///
  /// As dart:io's `_Socket.destroy` (sdk/lib/_internal/vm/bin/socket_patch.dart)
  /// this stops the sink's consumer but does not close the sink: a later
  /// [add], [write] or [flush] is not an error and its bytes are dropped (its
  /// HTTP code writes to sockets it has destroyed). Only [close] makes the
  /// sink reject further data, as for any IOSink.
  @override
  void destroy() {
    if (_destroyed) return;
    _closeBoth();
    if (!_done.isCompleted) _done.complete();
  }

  /// The connection while the socket is open. Once it is closed (destroy,
  /// an error, or both directions done) the accessors and options throw
  /// `SocketException.closed()`, as dart:io's `_Socket` does once its raw
  /// socket is gone and `_NativeSocket` does while closing
  /// (sdk/lib/_internal/vm/bin/socket_patch.dart).
  Connection get _open {
    if (_connection.isClosed) throw const SocketException.closed();
    return _connection;
  }

  /// [SocketOption.tcpNoDelay] sets TCP_NODELAY. On a Unix socket it throws
  /// an [OSError], as dart:io's does: dart:io calls setsockopt(IPPROTO_TCP,
  /// TCP_NODELAY) on the AF_UNIX socket (`Socket_SetOption` in
  /// runtime/bin/socket.cc) and throws the OS's error, on Linux "Operation
  /// not supported", errno 95 (dart-lang/sdk#45977; dart:io's own HTTP code
  /// skips the option for unix addresses since). The engine refuses it
  /// without asking the OS (TCP_ERR_NOT_TCP); the [OSError] carries errno 95
  /// on Linux and Android, elsewhere the engine's message and
  /// [OSError.noErrorCode].
  @override
  bool setOption(SocketOption option, bool enabled) {
    final Connection connection = _open;
    if (option == SocketOption.tcpNoDelay) {
      if (connection.isUnix) throw _tcpOptionOnUnixError();
      connection.noDelay = enabled;
      return true;
    }
    return false;
  }

  static OSError _tcpOptionOnUnixError() {
    if (Platform.isLinux || Platform.isAndroid) {
      return const OSError('Operation not supported', 95); // EOPNOTSUPP
    }
    return OSError(zigTcpErrorMessage(TCP_ERR_NOT_TCP), OSError.noErrorCode);
  }

  @override
  Uint8List getRawOption(RawSocketOption option) {
    throw UnsupportedError('zig_tcp: raw socket options are not supported');
  }

  @override
  void setRawOption(RawSocketOption option) {
    throw UnsupportedError('zig_tcp: raw socket options are not supported');
  }

  @override
  int get port => _open.port;

  @override
  InternetAddress get address => _open.address;

  @override
  int get remotePort => _open.remotePort;

  @override
  InternetAddress get remoteAddress => _open.remoteAddress;

  /// SO_KEEPALIVE of the connection (a [SocketException] on a Unix socket).
  bool get keepAlive => _open.keepAlive;
  set keepAlive(bool enabled) => _open.keepAlive = enabled;
}

/// A [ServerSocket] on the zig_tcp engine.
///
/// Accepts only while the stream has an unpaused listener; connections that
/// arrive meanwhile wait in the OS backlog. Cancelling the subscription
/// closes the server socket, as with dart:io.
final class ZigServerSocket extends Stream<Socket> implements ServerSocket {
  ZigServerSocket._(this._listener)
      : port = _listener.port,
        address = _listener.address {
    _controller = StreamController<Socket>(
        sync: true,
        onListen: _startAccepting,
        onResume: _startAccepting,
        onCancel: close);
  }

  /// Binds like [ServerSocket.bind], on the engine (see [Listener.bind]).
  ///
  /// `shared: true` means what it means in dart:io: server sockets of this
  /// process, in any isolate, on the same address, port and [v6Only] share
  /// one OS listening socket and its connections are spread among those
  /// accepting (a ZigServerSocket accepts while its stream has an unpaused
  /// listener); closing one leaves the others working, and no other process
  /// can bind the port. A scoped link-local address (`fe80::1%eth0`) is
  /// bound on its interface, and [address] reports it with its scope.
  ///
  /// `InternetAddress(path, type: InternetAddressType.unix)` binds a Unix
  /// domain socket, as in dart:io (see [Listener.bind]: [port] is checked
  /// and ignored, [port] then reports 0, [address] is the address given, the
  /// socket file is removed on [close]); its sockets are Unix sockets.
  static Future<ZigServerSocket> bind(Object address, int port,
      {int backlog = 0, bool v6Only = false, bool shared = false}) async {
    final Listener listener = await Listener.bind(address, port,
        backlog: backlog, v6Only: v6Only, shared: shared);
    return ZigServerSocket._(listener);
  }

  final Listener _listener;
  late final StreamController<Socket> _controller;
  bool _accepting = false;
  bool _closed = false;

  /// The underlying engine listener.
  Listener get listener => _listener;

  @override
  final int port;

  @override
  final InternetAddress address;

  @override
  StreamSubscription<Socket> listen(void Function(Socket event)? onData,
      {Function? onError, void Function()? onDone, bool? cancelOnError}) {
    return _controller.stream.listen(onData,
        onError: onError, onDone: onDone, cancelOnError: cancelOnError);
  }

  void _startAccepting() {
    if (_accepting || _closed) return;
    _accepting = true;
    unawaited(_acceptLoop());
  }

  /// Accepts while the stream has an unpaused listener (see runAcceptLoop
  /// for what happens on failures). A listener the engine no longer has
  /// (the engine was shut down) closes the server socket.
  Future<void> _acceptLoop() async {
    await runAcceptLoop<Connection>(
        accept: _listener.accept,
        wanted: () =>
            !_closed && _controller.hasListener && !_controller.isPaused,
        closed: () => _closed,
        alive: _listenerAlive,
        onAccepted: _onAccepted,
        onError: _controller.addError,
        onGone: () => unawaited(close()));
    _accepting = false;
  }

  void _onAccepted(Connection connection) {
    if (_closed) {
      unawaited(connection.close());
      return;
    }
    _controller.add(ZigSocket.fromConnection(connection));
  }

  /// Whether the engine still knows the listener's handle.
  bool _listenerAlive() => _listener.isOpenInEngine;

  @override
  Future<ZigServerSocket> close() async {
    if (!_closed) {
      _closed = true;
      await _listener.close();
      if (!_controller.isClosed) unawaited(_controller.close());
    }
    return this;
  }
}
