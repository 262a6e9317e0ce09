part of 'engine.dart';

/// One read stream of a [Connection] (tcp.h "streaming reads"): the engine
/// receives on its own and posts the bytes as they arrive, never more than
/// [windowBytes] ahead of what was passed to [ack]. ZigSocket's
/// `Stream<Uint8List>` runs on it: it acknowledges what it delivers to an
/// unpaused listener, so a paused one stops the engine within the window and
/// TCP's flow control stops the peer.
///
/// Lives in the library's `src/` and is not exported by
/// `package:zig_tcp/zig_tcp.dart`.
final class ReadStream {
  ReadStream._(this._connection, this.windowBytes, this._onData, this._onEnd);

  /// Starts a read stream on [connection] (tcp_read_stream) with a window of
  /// [windowBytes] (1..TCP_READ_BYTES_MAX).
  ///
  /// [onData] gets each chunk, in stream order, while the engine's message
  /// is handled (synchronously). [onEnd] gets the end once, after every
  /// chunk: null at end of stream, or the [SocketException] of the error that
  /// ended the stream (TCP_ERR_CLOSED after [Connection.close], the engine's
  /// shutdown, a reset, ...). After [stop] neither is called again.
  ///
  /// Throws a [StateError] when a read stream already runs on the connection
  /// (TCP_ERR_BUSY) or the bytes of a stopped one still wait for
  /// [Connection.read]; a [SocketException] when the engine refuses
  /// otherwise (the connection is closed, ...).
  static ReadStream start(Connection connection, int windowBytes,
      {required void Function(Uint8List data) onData,
      required void Function(SocketException? error) onEnd}) {
    RangeError.checkValueInInterval(
        windowBytes, 1, TCP_READ_BYTES_MAX, 'windowBytes');
    if (connection._readGate != null || connection._hasUnread) {
      throw StateError('A stopped read stream\'s bytes still wait for '
          'Connection.read() on this connection');
    }
    final _IOService io = connection._io;
    final int requestId = io.newRequestId();
    final int rc = tcp_read_stream(connection._handle, requestId, windowBytes);
    if (rc == TCP_ERR_BUSY) {
      throw StateError('A read stream already runs on this connection');
    }
    if (rc < 0) throw _syncError(rc, 'Read failed');
    final ReadStream stream =
        ReadStream._(connection, windowBytes, onData, onEnd);
    io.expectStream(requestId, stream._onCompletion);
    return stream;
  }

  final Connection _connection;

  /// The most bytes the engine posts beyond those acknowledged.
  final int windowBytes;

  final void Function(Uint8List data) _onData;
  final void Function(SocketException? error) _onEnd;

  /// Bytes posted by the engine and not acknowledged yet (tcp.h: never more
  /// than the window).
  int _unackedBytes = 0;

  bool _stopped = false;
  bool _ended = false;

  /// Completes with the stream's final completion.
  final Completer<void> _final = Completer<void>();

  /// Neither stopped nor ended: acknowledgements still reach the engine.
  bool get isRunning => !_stopped && !_ended;

  /// The caller consumed [bytes] of the chunks it got (tcp_read_stream_ack):
  /// the engine may post that many more.
  void ack(int bytes) {
    assert(bytes > 0 && bytes <= _unackedBytes,
        'acknowledged $bytes of $_unackedBytes unacknowledged bytes');
    _unackedBytes -= bytes;
    if (!isRunning) return; // the engine refuses acknowledgements then
    // A refusal means the stream is over in the engine and its final
    // completion is on its way: it ended (TCP_ERR_INVALID_ARGUMENT), the
    // connection was closed (TCP_ERR_CLOSED) or the engine shut down. The
    // amount itself is checked above.
    tcp_read_stream_ack(_connection._handle, bytes);
  }

  /// Ends the stream (tcp_read_stream_stop). [undelivered] (chunks the caller
  /// got and did not consume, in order) and every chunk that arrives before
  /// the final completion go back to the connection: the next
  /// [Connection.read] calls return them first, then what the engine reads.
  /// Idempotent.
  void stop([Iterable<Uint8List> undelivered = const <Uint8List>[]]) {
    if (!_connection.isClosed) _connection._unread.addAll(undelivered);
    if (_stopped) return;
    _stopped = true;
    if (_ended) return;
    // Reads wait for the final completion: chunks may still arrive before it.
    assert(_connection._readGate == null);
    _connection._readGate = _final.future;
    // A refusal means no stream runs in the engine any more (it ended, or the
    // connection was closed): its final completion is already on its way.
    tcp_read_stream_stop(_connection._handle);
  }

  void _onCompletion(_Completion completion) {
    if (completion.result > 0) {
      final Uint8List data = completion.payload as Uint8List;
      _unackedBytes += data.length;
      assert(_unackedBytes <= windowBytes, 'the engine went past the window');
      if (!_stopped) {
        _onData(data);
      } else if (!_connection.isClosed) {
        _connection._unread.add(data);
      }
      return;
    }
    _ended = true;
    _final.complete();
    if (_stopped) {
      _keepEndForReads(completion);
      return;
    }
    _onEnd(completion.result == 0
        ? null
        : _socketError(completion.result, completion.osError, 'Read failed'));
  }

  /// A stopped stream's final completion: when the stream ended on its own
  /// (end of stream, an error) before the stop took effect, the reads after
  /// it report that end after the bytes it left.
  void _keepEndForReads(_Completion completion) {
    final Connection connection = _connection;
    final int result = completion.result;
    if (!connection.isClosed &&
        result != TCP_ERR_STOPPED &&
        result != TCP_ERR_CLOSED) {
      connection._unreadEnd = completion;
    }
    // No read came to wait for the final: none has to pass the gate now
    // unless bytes were left.
    if (identical(connection._readGate, _final.future) &&
        !connection._hasUnread) {
      connection._readGate = null;
    }
  }
}
