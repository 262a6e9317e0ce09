part of 'engine.dart';

/// What a completion means for the bookkeeping of open handles.
const int _kindPlain = 0;

/// An accept: a result > 0 is a new handle on this isolate's port.
const int _kindAccept = 1;

/// A close: the handle is gone once the completion arrives.
const int _kindClose = 2;

/// A read stream (tcp_read_stream): its request id completes many times.
const int _kindStream = 3;

/// One completion triple from the engine.
final class _Completion {
  _Completion(this.result, this.payload);

  /// >= 0 on success, a negative TCP_ERR_* code on error.
  final int result;

  /// On error the OS error code; read data for a successful read; else null.
  final Object? payload;

  /// The OS error code of a failed operation (0 if none).
  int get osError {
    final Object? p = payload;
    return p is int ? p : 0;
  }
}

/// A request the engine accepted: one completion for a future, or, for a
/// read stream, many completions for a callback.
final class _Request {
  _Request(this.kind)
      : completer = Completer<_Completion>(),
        onStream = null;

  _Request.stream(void Function(_Completion completion) this.onStream)
      : kind = _kindStream,
        completer = null;

  final int kind;

  /// Completes with the one completion (every kind but [_kindStream]).
  final Completer<_Completion>? completer;

  /// Gets every completion of a read stream: DATA ones (result > 0) and the
  /// final one (result <= 0), in the engine's order.
  final void Function(_Completion completion)? onStream;
}

/// The per-isolate link to the engine (static fields are per isolate).
///
/// A RawReceivePort receives the engine's completion messages: flat lists
/// [requestId, result, payload, requestId, result, payload, ...]. Each
/// completes the Completer registered for its request id, except for a read
/// stream (tcp.h "streaming reads"): its id completes many times, so its DATA
/// completions go to its callback and the id stays registered until its
/// final completion.
///
/// Handles remember the port they were created with (accepted connections the
/// listener's), so the port stays open while any handle of this isolate is
/// open, or while any request is pending. It keeps the isolate alive only
/// while requests are pending, like dart:io does with pending socket work (a
/// running read stream is pending until its final completion, so a ZigSocket
/// whose stream is listened to keeps the isolate alive, paused or not). When
/// neither is left the port is closed; the next connect/bind opens a new one.
final class _IOService {
  _IOService._();

  static _IOService? _instance;

  /// This isolate's service. Makes sure the engine runs: tcp_init is
  /// idempotent (tcp.h: while the engine runs it returns TCP_OK and ignores
  /// its argument), and calling it on every connect attempt and bind, not
  /// only on first use, restarts the engine after [zigTcpShutdown] (from this
  /// or any other isolate).
  static _IOService get instance {
    final int rc = tcp_init(NativeApi.initializeApiDLData);
    if (rc != TCP_OK) {
      throw _syncError(rc, 'Starting the zig_tcp engine failed');
    }
    return _instance ??= _IOService._();
  }

  RawReceivePort? _port;
  final Map<int, _Request> _pending = <int, _Request>{};
  int _nextRequestId = 1;
  int _openHandles = 0;

  /// The native port to create a handle with; opens the port if needed.
  /// The caller must follow with [handleOpened] or [maybeClose].
  int get nativePort {
    RawReceivePort? port = _port;
    if (port == null) {
      port = RawReceivePort(_onMessage, 'zig_tcp');
      port.keepIsolateAlive = false;
      _port = port;
    }
    return port.sendPort.nativePort;
  }

  /// A request id not used by any pending request of this isolate.
  int newRequestId() => _nextRequestId++;

  /// Registers a request the engine accepted (the call returned >= 0); the
  /// future completes with its completion.
  Future<_Completion> expect(int requestId, int kind) {
    assert(kind != _kindStream && !_pending.containsKey(requestId));
    final _Request request = _Request(kind);
    _pending[requestId] = request;
    _update();
    return request.completer!.future;
  }

  /// Registers a read stream the engine accepted (tcp_read_stream returned
  /// 0): [onCompletion] gets each of its completions, synchronously, while
  /// the message is handled; the request stays registered (and keeps the
  /// port open) until the final one (result <= 0).
  void expectStream(
      int requestId, void Function(_Completion completion) onCompletion) {
    assert(!_pending.containsKey(requestId));
    _pending[requestId] = _Request.stream(onCompletion);
    _update();
  }

  /// A handle was created on this isolate's port (tcp_connect, tcp_listen).
  void handleOpened() {
    _openHandles++;
  }

  /// A handle went away without a close completion (refused close, or the
  /// object was garbage collected and the native finalizer closed it).
  void handleClosed() {
    _openHandles--;
    _update();
  }

  /// Closes the port if nothing needs it (after a refused handle creation).
  void maybeClose() {
    _update();
  }

  void _onMessage(Object? message) {
    final List<Object?> list = message as List<Object?>;
    for (int i = 0; i + 2 < list.length; i += 3) {
      final int requestId = list[i] as int;
      final _Request? request = _pending[requestId];
      if (request == null) continue;
      final _Completion completion =
          _Completion(list[i + 1] as int, list[i + 2]);
      final void Function(_Completion)? onStream = request.onStream;
      if (onStream != null) {
        // A stream's DATA completions keep its id; the final one ends it.
        if (completion.result <= 0) _pending.remove(requestId);
        _deliverStream(onStream, completion);
        continue;
      }
      _pending.remove(requestId);
      // Count handles here, not in the awaiting code, so the port can never
      // close between a completion and its continuation.
      if (request.kind == _kindAccept && completion.result > 0) {
        _openHandles++;
      } else if (request.kind == _kindClose) {
        _openHandles--;
      }
      request.completer!.complete(completion);
    }
    _update();
  }

  /// Runs a stream's callback. It may run a listener's code synchronously
  /// (ZigSocket's controller is synchronous); an exception escaping it must
  /// not lose the rest of the message, so it goes to the zone as uncaught.
  void _deliverStream(
      void Function(_Completion) onStream, _Completion completion) {
    try {
      onStream(completion);
    } catch (error, stack) {
      Zone.current.handleUncaughtError(error, stack);
    }
  }

  void _update() {
    final RawReceivePort? port = _port;
    if (port == null) return;
    if (_pending.isEmpty && _openHandles <= 0) {
      _openHandles = 0;
      port.close();
      _port = null;
    } else {
      port.keepIsolateAlive = _pending.isNotEmpty;
    }
  }
}
