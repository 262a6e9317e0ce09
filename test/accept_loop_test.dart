// The accept policy of ZigServerSocket (lib/src/accept_loop.dart), driven by
// fake accepts: the engine refuses an accept at once only when it is out of
// memory, which a test cannot bring about.

import 'dart:async';
import 'dart:io';

import 'package:test/test.dart';
import 'package:zig_tcp/src/accept_loop.dart';

/// A fake accept that fails [failures] times, then yields its call number.
/// Each call records whether the event loop ran since the previous call: it
/// posts a zero timer and the next call looks whether that timer fired.
final class FakeAccept {
  FakeAccept(this.failures, {this.synchronous = false});

  final int failures;

  /// Throw instead of returning a failed future.
  final bool synchronous;

  int calls = 0;
  bool _eventLoopRan = true;
  final List<bool> eventLoopRanBeforeCall = <bool>[];

  Future<int> call() {
    eventLoopRanBeforeCall.add(_eventLoopRan);
    _eventLoopRan = false;
    Timer.run(() => _eventLoopRan = true);
    calls++;
    if (calls <= failures) {
      final SocketException error = SocketException('refused $calls');
      if (synchronous) throw error;
      return Future<int>.error(error);
    }
    return Future<int>.value(calls);
  }
}

void main() {
  for (final bool synchronous in <bool>[false, true]) {
    test(
        'refused accepts (${synchronous ? 'thrown' : 'failed futures'}): '
        'one error, and the event loop runs before each retry', () async {
      final FakeAccept accept = FakeAccept(5, synchronous: synchronous);
      final List<int> accepted = <int>[];
      final List<Object> errors = <Object>[];
      await runAcceptLoop<int>(
          accept: accept.call,
          wanted: () => accepted.isEmpty,
          closed: () => false,
          alive: () => true,
          onAccepted: accepted.add,
          onError: (Object error, StackTrace _) => errors.add(error),
          onGone: () => fail('the listener is alive'),
          retryDelay: (int _) => Duration.zero);
      expect(accepted, <int>[6]);
      expect(errors, hasLength(1));
      expect((errors.single as SocketException).message, 'refused 1');
      // Before the fix the loop retried within the same run of microtasks:
      // every call after the first saw the previous call's timer pending.
      expect(accept.eventLoopRanBeforeCall, hasLength(6));
      expect(accept.eventLoopRanBeforeCall, everyElement(isTrue));
    });
  }

  test('a success ends a run of failures: the next failure is surfaced',
      () async {
    int calls = 0;
    Future<int> accept() {
      calls++;
      // fails, succeeds, fails, succeeds
      if (calls.isOdd) return Future<int>.error(SocketException('no $calls'));
      return Future<int>.value(calls);
    }

    final List<int> accepted = <int>[];
    final List<String> errors = <String>[];
    await runAcceptLoop<int>(
        accept: accept,
        wanted: () => accepted.length < 2,
        closed: () => false,
        alive: () => true,
        onAccepted: accepted.add,
        onError: (Object error, StackTrace _) =>
            errors.add((error as SocketException).message),
        onGone: () => fail('the listener is alive'),
        retryDelay: (int _) => Duration.zero);
    expect(accepted, <int>[2, 4]);
    expect(errors, <String>['no 1', 'no 3']);
  });

  test('a listener the engine lost: the error, then onGone, then the end',
      () async {
    final List<String> events = <String>[];
    await runAcceptLoop<int>(
        accept: () => Future<int>.error(SocketException('gone')),
        wanted: () => true,
        closed: () => false,
        alive: () => false,
        onAccepted: (int _) => events.add('accepted'),
        onError: (Object error, StackTrace _) =>
            events.add((error as SocketException).message),
        onGone: () => events.add('onGone'),
        retryDelay: (int _) => fail('no retry for a lost listener'));
    expect(events, <String>['gone', 'onGone']);
  });

  test('an accept cancelled by close is dropped', () async {
    bool isClosed = false;
    final List<Object> errors = <Object>[];
    await runAcceptLoop<int>(
        accept: () {
          isClosed = true; // the owner closed while this accept was pending
          return Future<int>.error(SocketException('closed'));
        },
        wanted: () => !isClosed,
        closed: () => isClosed,
        alive: () => true,
        onAccepted: (int _) => fail('nothing was accepted'),
        onError: (Object error, StackTrace _) => errors.add(error),
        onGone: () => fail('closed, not gone'),
        retryDelay: (int _) => fail('no retry after close'));
    expect(errors, isEmpty);
  });

  test('retry delays grow from 1 ms and stop at 1 s', () {
    expect(acceptRetryDelay(1), const Duration(milliseconds: 1));
    expect(acceptRetryDelay(2), const Duration(milliseconds: 2));
    expect(acceptRetryDelay(5), const Duration(milliseconds: 16));
    expect(acceptRetryDelay(10), const Duration(milliseconds: 512));
    expect(acceptRetryDelay(11), const Duration(seconds: 1));
    expect(acceptRetryDelay(1000), const Duration(seconds: 1));
  });
}
