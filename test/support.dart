// Helpers shared by the Dart tests (not a test file itself).

import 'dart:io';
import 'dart:typed_data';

import 'package:test/test.dart';
import 'package:zig_tcp/zig_tcp.dart';

/// dart:io's error for a connect whose timeout expired
/// (`_NativeSocket.connect`: no OS error).
final Matcher isConnectTimedOut = isA<SocketException>()
    .having((SocketException e) => e.message, 'message',
        startsWith('Connection timed out'))
    .having((SocketException e) => e.osError, 'osError', isNull);

/// dart:io's error for a cancelled connect.
final Matcher isConnectCancelled = isA<SocketException>().having(
    (SocketException e) => e.message,
    'message',
    startsWith('Connection attempt cancelled'));

/// What [call] threw synchronously (a returned future is ignored), or null.
/// `throwsA` cannot tell: it also accepts a returned future that fails.
Object? thrownAtOnce(Object? Function() call) {
  try {
    final Object? result = call();
    if (result is Future<Object?>) result.ignore();
  } catch (error) {
    return error;
  }
  return null;
}

/// A loopback port whose SYNs are never answered: a listener with a backlog
/// of 1 whose accept queue is full, so the kernel drops further SYNs (Linux
/// does, as the C suite's full_backlog relies on). The queue is filled by
/// connecting until a connect times out; a loopback connect to a listener
/// with room never takes 2 s.
final class HangingDestination {
  HangingDestination._(this._listener, this._queued);

  final Listener _listener;
  final List<Connection> _queued;

  int get port => _listener.port;

  /// The destination, or null where a full accept queue answers with a
  /// reset instead (Windows), with the reason in [whyNot].
  static Future<HangingDestination?> create(
      {void Function(String reason)? whyNot}) async {
    final Listener listener =
        await Listener.bind(InternetAddress.loopbackIPv4, 0, backlog: 1);
    final List<Connection> queued = <Connection>[];
    String reason = 'the accept queue did not fill up in 64 connects';
    for (int i = 0; i < 64; i++) {
      try {
        queued.add(await Connection.connect(
            InternetAddress.loopbackIPv4, listener.port,
            timeout: const Duration(seconds: 2)));
      } on SocketException catch (error) {
        if (isConnectTimedOut.matches(error, <Object?, Object?>{})) {
          return HangingDestination._(listener, queued);
        }
        reason = 'a full accept queue answers with: $error';
        break;
      }
    }
    await HangingDestination._(listener, queued).close();
    whyNot?.call(reason);
    return null;
  }

  Future<void> close() async {
    for (final Connection connection in _queued) {
      await connection.close();
    }
    await _listener.close();
  }
}

/// The addresses 'localhost' has, in the order Connection.connect tries them
/// (dart:io's staggered lookup: the IPv4 ones first).
Future<List<InternetAddress>> localhostAddresses() async {
  final List<InternetAddress> found = <InternetAddress>[];
  for (final InternetAddressType type in <InternetAddressType>[
    InternetAddressType.IPv4,
    InternetAddressType.IPv6
  ]) {
    try {
      found.addAll(await InternetAddress.lookup('localhost', type: type));
    } on SocketException {
      // no address of this family
    }
  }
  return found;
}

/// Lets the event loop run until [condition] holds. Each round waits for a
/// zero timer, which the VM queues behind the messages already in the
/// isolate's queue (the engine's completions among them), so every round
/// handles what the engine posted meanwhile. It ends on the condition, not
/// on a duration; the test's timeout bounds it.
Future<void> untilTrue(bool Function() condition) async {
  while (!condition()) {
    await Future<void>.delayed(Duration.zero);
  }
}

/// Byte [i] of the test streams: position-dependent, so a lost, doubled or
/// reordered chunk shows.
int streamByte(int i) => (i * 7 + (i >> 8) + (i >> 16)) & 0xff;

/// The first [n] bytes of the test stream.
Uint8List streamBytes(int n) {
  final Uint8List data = Uint8List(n);
  for (int i = 0; i < n; i++) {
    data[i] = streamByte(i);
  }
  return data;
}

/// The index in [chunk] of the first byte that is not the test stream's
/// byte at [offset] + index, or chunk.length when all are right.
int firstWrongByte(List<int> chunk, int offset) {
  for (int i = 0; i < chunk.length; i++) {
    if (chunk[i] != streamByte(offset + i)) return i;
  }
  return chunk.length;
}
