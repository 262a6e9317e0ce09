// `shared: true` in dart:io's meaning (tcp.h TCP_LISTEN_SHARED): listeners of
// this process, in any isolate, on one address, port and v6Only share ONE OS
// listening socket; each connection goes to a listener with an accept
// waiting; closing one leaves the others working; the OS socket closes with
// the last; no other socket can bind the port. Mirrors the C suite's
// test_listen_shared_two_ports (test_c/test_options.c), across isolates.

import 'dart:async';
import 'dart:ffi' show Uint8ListAddress;
import 'dart:io';
import 'dart:isolate';
import 'dart:typed_data';

import 'package:test/test.dart';
import 'package:zig_tcp/src/bindings.dart'
    show
        TCP_ERR_ADDRESS_IN_USE,
        TCP_ERR_CONNECTION_REFUSED,
        TCP_LISTEN_REUSE_PORT,
        tcp_listen;
import 'package:zig_tcp/zig_tcp.dart';

/// What the main isolate's listener writes to the connection it serves.
const int mainByte = 0x41; // 'A'

/// What the member isolate's listener writes to the connection it serves.
const int memberByte = 0x42; // 'B'

final Matcher isAddressInUse = isA<SocketException>()
    .having((SocketException e) => e.message, 'message',
        contains(zigTcpErrorMessage(TCP_ERR_ADDRESS_IN_USE)))
    .having((SocketException e) => e.osError, 'osError', isNotNull);

final Matcher isRefused = isA<SocketException>().having(
    (SocketException e) => e.message,
    'message',
    contains(zigTcpErrorMessage(TCP_ERR_CONNECTION_REFUSED)));

/// The member isolate: binds 127.0.0.1:[port] with `shared: true`, reports
/// `[its port, its command port]`, then obeys commands one at a time:
/// 'accept' issues ONE accept, reports 'accepting' (the engine has the
/// accept from then on: Listener.accept calls tcp_accept before its first
/// await), and once a connection came writes [memberByte], closes it and
/// reports 'served'; 'close' closes the listener, reports 'closed' and ends
/// the isolate's work.
Future<void> sharedMember(List<Object> args) async {
  final int port = args[0] as int;
  final SendPort report = args[1] as SendPort;
  final Listener listener = await Listener.bind(
      InternetAddress.loopbackIPv4, port,
      shared: true);
  final ReceivePort commands = ReceivePort();
  report.send(<Object>[listener.port, commands.sendPort]);
  await for (final Object? command in commands) {
    if (command == 'accept') {
      final Future<Connection> accepted = listener.accept();
      report.send('accepting');
      final Connection connection = await accepted;
      await connection.write(<int>[memberByte]);
      await connection.close();
      report.send('served');
    } else if (command == 'close') {
      await listener.close();
      report.send('closed');
      commands.close();
    }
  }
}

/// The main isolate's side of a member isolate: its reports in order, and
/// its uncaught errors, which fail the next wait.
final class SharedMember {
  SharedMember._();

  final ReceivePort _reports = ReceivePort();
  final RawReceivePort _errors = RawReceivePort();
  late final StreamIterator<Object?> _inbox = StreamIterator<Object?>(_reports);
  final Completer<Object?> _failed = Completer<Object?>();
  late final SendPort _commands;

  /// The port the member's listener reports.
  late final int port;

  static Future<SharedMember> spawn(int port) async {
    final SharedMember member = SharedMember._();
    member._errors.handler = (Object? error) {
      if (!member._failed.isCompleted) {
        member._failed.completeError(
            StateError('the member isolate failed: $error'));
      }
    };
    await Isolate.spawn<List<Object>>(
        sharedMember, <Object>[port, member._reports.sendPort],
        onError: member._errors.sendPort);
    final List<Object?> hello = await member.next() as List<Object?>;
    member.port = hello[0] as int;
    member._commands = hello[1] as SendPort;
    return member;
  }

  void send(String command) => _commands.send(command);

  /// The next report; fails if the isolate failed first.
  Future<Object?> next() =>
      Future.any<Object?>(<Future<Object?>>[_nextReport(), _failed.future]);

  Future<Object?> _nextReport() async {
    if (!await _inbox.moveNext()) throw StateError('the report port closed');
    return _inbox.current;
  }

  void dispose() {
    _reports.close();
    _errors.close();
  }
}

/// The one byte a served connection gets before its end.
Future<int> firstByte(Connection connection) async {
  final Uint8List? data = await connection.read(1);
  if (data == null) fail('end of stream before the server wrote');
  return data[0];
}

void main() {
  test('two isolates share one port: each serves one of two connections; '
      'closing one leaves the other; the last close frees the port', () async {
    final Listener mine =
        await Listener.bind(InternetAddress.loopbackIPv4, 0, shared: true);
    final int port = mine.port;
    final SharedMember member = await SharedMember.spawn(port);
    addTearDown(member.dispose);
    expect(member.port, port);

    // Each isolate has exactly one accept waiting, so of the two
    // connections each takes one, whichever comes first: every connection
    // is served by a different isolate, and both isolates get one.
    final Future<Connection> acceptedHere = mine.accept();
    member.send('accept');
    expect(await member.next(), 'accepting');
    final Connection c1 =
        await Connection.connect(InternetAddress.loopbackIPv4, port);
    final Connection c2 =
        await Connection.connect(InternetAddress.loopbackIPv4, port);
    final Connection servedHere = await acceptedHere;
    await servedHere.write(<int>[mainByte]);
    await servedHere.close();
    expect(await member.next(), 'served');
    expect(<int>[await firstByte(c1), await firstByte(c2)],
        unorderedEquals(<int>[mainByte, memberByte]));

    // Closing this isolate's listener leaves the member's working.
    await mine.close();
    member.send('accept');
    expect(await member.next(), 'accepting');
    final Connection c3 =
        await Connection.connect(InternetAddress.loopbackIPv4, port);
    expect(await firstByte(c3), memberByte);
    expect(await member.next(), 'served');

    // The last listener's close closes the OS socket: nobody listens.
    member.send('close');
    expect(await member.next(), 'closed');
    await expectLater(
        Connection.connect(InternetAddress.loopbackIPv4, port),
        throwsA(isRefused));
    for (final Connection c in <Connection>[c1, c2, c3]) {
      await c.close();
    }
  });

  test('a bind without shared on a shared port fails with address in use; '
      'so do another OS socket and a SO_REUSEPORT one', () async {
    final Listener shared =
        await Listener.bind(InternetAddress.loopbackIPv4, 0, shared: true);
    final int port = shared.port;
    await expectLater(Listener.bind(InternetAddress.loopbackIPv4, port),
        throwsA(isAddressInUse));
    await expectLater(ZigServerSocket.bind(InternetAddress.loopbackIPv4, port),
        throwsA(isAddressInUse));
    // A shared bind with another v6Only is another group, so another OS
    // socket (dart:io refuses it with its own message).
    await expectLater(
        Listener.bind(InternetAddress.loopbackIPv4, port,
            v6Only: true, shared: true),
        throwsA(isAddressInUse));
    if (!Platform.isWindows) {
      // Another OS socket, as another process would make: dart:io's own
      // shared bind (its registry knows nothing of ours) ...
      await expectLater(
          ServerSocket.bind(InternetAddress.loopbackIPv4, port, shared: true),
          throwsA(isA<SocketException>()));
      // ... and one with SO_REUSEPORT, which could join a SO_REUSEPORT
      // listener of the same user, but the shared one has no SO_REUSEPORT.
      // (Windows has no SO_REUSEPORT: TCP_ERR_UNSUPPORTED there.)
      final RawReceivePort completions = RawReceivePort();
      final Uint8List loopback = InternetAddress.loopbackIPv4.rawAddress;
      final int handle = tcp_listen(completions.sendPort.nativePort,
          loopback.address, loopback.length, port, 0, 0, TCP_LISTEN_REUSE_PORT);
      completions.close();
      expect(handle, TCP_ERR_ADDRESS_IN_USE);
    }
    // A second shared bind joins (and gets the same port).
    final Listener joined = await Listener.bind(
        InternetAddress.loopbackIPv4, port,
        shared: true);
    expect(joined.port, port);
    await joined.close();
    await shared.close();
  });

  test('ZigServerSocket: shared servers in one isolate; closing one leaves '
      'the other', () async {
    final ZigServerSocket first = await ZigServerSocket.bind(
        InternetAddress.loopbackIPv4, 0,
        shared: true);
    final int port = first.port;
    final ZigServerSocket second = await ZigServerSocket.bind(
        InternetAddress.loopbackIPv4, port,
        shared: true);
    expect(second.port, port);

    // Only the first accepts (nobody listens to the second's stream yet),
    // so it gets the connection.
    final Completer<Socket> toFirst = Completer<Socket>();
    final StreamSubscription<Socket> subscription =
        first.listen(toFirst.complete);
    final Connection c1 =
        await Connection.connect(InternetAddress.loopbackIPv4, port);
    final Socket s1 = await toFirst.future;
    expect(s1.remotePort, c1.port);
    // Cancelling closes the first server socket (as dart:io's does); the
    // listener's close completes after its pending accept ended.
    await subscription.cancel();
    await first.listener.close();

    // The port still listens: the second takes the next connection.
    final Future<Socket> toSecond = second.first;
    final Connection c2 =
        await Connection.connect(InternetAddress.loopbackIPv4, port);
    final Socket s2 = await toSecond;
    expect(s2.remotePort, c2.port);
    // `first` cancelled the second's subscription, which closed it: the
    // last one, so the port is free once its listener's close completed.
    await second.listener.close();
    await expectLater(
        Connection.connect(InternetAddress.loopbackIPv4, port),
        throwsA(isRefused));
    s1.destroy();
    s2.destroy();
    await c1.close();
    await c2.close();
  });
}
