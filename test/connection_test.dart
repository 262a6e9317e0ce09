// Connection / Listener tests, mirroring the C suite (test_c/suite.c).
// Run with `dart test` (the build hook compiles the engine first).

import 'dart:async';
import 'dart:ffi' show IntPtr, sizeOf;
import 'dart:io';
import 'dart:isolate';
import 'dart:typed_data';

import 'package:test/test.dart';
import 'package:zig_tcp/src/bindings.dart' show TCP_ERR_CLOSED;
import 'package:zig_tcp/zig_tcp.dart';

import 'support.dart';

/// Reads until [n] bytes arrived (fails at a premature end of stream).
Future<Uint8List> readExactly(Connection connection, int n) async {
  final BytesBuilder builder = BytesBuilder(copy: false);
  while (builder.length < n) {
    final Uint8List? chunk = await connection.read();
    if (chunk == null) {
      fail('end of stream after ${builder.length} of $n bytes');
    }
    builder.add(chunk);
  }
  return builder.takeBytes();
}

/// Reads until end of stream.
Future<Uint8List> readAll(Connection connection) async {
  final BytesBuilder builder = BytesBuilder(copy: false);
  for (;;) {
    final Uint8List? chunk = await connection.read();
    if (chunk == null) return builder.takeBytes();
    builder.add(chunk);
  }
}

/// A connected pair over loopback: (client, server side).
Future<List<Connection>> connectedPair() async {
  final Listener listener = await Listener.bind(InternetAddress.loopbackIPv4, 0);
  final Future<Connection> accepted = listener.accept();
  final Connection client =
      await Connection.connect(InternetAddress.loopbackIPv4, listener.port);
  final Connection server = await accepted;
  await listener.close();
  return <Connection>[client, server];
}

Uint8List pattern(int n) {
  final Uint8List data = Uint8List(n);
  for (int i = 0; i < n; i++) {
    data[i] = (i * 7 + (i >> 8)) & 0xff;
  }
  return data;
}

Future<String> isolateEcho(int port) async {
  final Connection c =
      await Connection.connect(InternetAddress.loopbackIPv4, port);
  await c.write('from isolate'.codeUnits);
  await c.closeWrite();
  final Uint8List reply = await readAll(c);
  await c.close();
  return String.fromCharCodes(reply);
}

// Closures sent with Isolate.run carry the variables they capture (in the VM,
// the whole context they were created in). These are built here, away from
// the tests' locals, so they capture an int and nothing else: a Listener or
// Connection holds a RawReceivePort, which cannot be sent.
Future<String> Function() isolateEchoTask(int port) => () => isolateEcho(port);

Future<int> Function() isolateOwnEchoTask(int size) =>
    () => isolateOwnEcho(size);

/// Connects to [port] and lets the Connection go without closing it; a
/// Dart Finalizer completes [collected] once the object is collected.
Future<void> connectAndDrop(int port, Completer<void> collected) async {
  final Connection connection =
      await Connection.connect(InternetAddress.loopbackIPv4, port);
  collectedFinalizer.attach(connection, collected);
}

final Finalizer<Completer<void>> collectedFinalizer =
    Finalizer<Completer<void>>((Completer<void> done) => done.complete());

/// Where [collectGarbageUntil] puts its garbage, so it is really allocated.
Object? garbageSink;

/// Allocates garbage until [collected] completes (no public API asks the VM
/// for a collection): small objects fill the new generation, a large one the
/// old. Each round yields to the event loop, where the finalizer's callback
/// runs. Fails after a bound.
Future<void> collectGarbageUntil(Future<void> collected) async {
  bool done = false;
  unawaited(collected.then((_) => done = true));
  for (int round = 0; round < 1000 && !done; round++) {
    garbageSink = <Uint8List>[for (int i = 0; i < 256; i++) Uint8List(1024)];
    garbageSink = Uint8List(4 << 20);
    await Future<void>.delayed(Duration.zero);
  }
  garbageSink = null;
  if (!done) fail('the dropped Connection was not collected');
}

/// Isolate entry of the keep-alive test: binds, reports the port and returns
/// with one accept pending. Serves that connection (one byte, then close),
/// closes the listener and reports 'served'; then nothing is pending.
Future<void> keepAliveIsolate(SendPort report) async {
  final Listener listener =
      await Listener.bind(InternetAddress.loopbackIPv4, 0);
  unawaited(listener.accept().then((Connection connection) async {
    await connection.write(<int>[7]);
    await connection.close();
    await listener.close();
    report.send('served');
  }));
  report.send(listener.port);
}

Future<int> isolateOwnEcho(int size) async {
  final List<Connection> pair = await connectedPair();
  final Uint8List data = pattern(size);
  final Future<void> written = pair[0].write(data);
  final Uint8List got = await readExactly(pair[1], size);
  await written;
  await pair[0].close();
  await pair[1].close();
  int same = 0;
  for (int i = 0; i < size; i++) {
    if (got[i] == data[i]) same++;
  }
  return same;
}

void main() {
  test('backend name is known', () {
    expect(zigTcpBackendName, isIn(<String>['io_uring', 'uv', 'iocp']));
  });

  test('echo', () async {
    final List<Connection> pair = await connectedPair();
    final Connection client = pair[0];
    final Connection server = pair[1];
    await client.write('hello'.codeUnits);
    final Uint8List got = await readExactly(server, 5);
    await server.write(got);
    expect(String.fromCharCodes(await readExactly(client, 5)), 'hello');
    expect(server.remotePort, client.port);
    expect(client.remotePort, server.port);
    expect(client.remoteAddress, InternetAddress.loopbackIPv4);
    expect(server.address, InternetAddress.loopbackIPv4);
    await client.close();
    await server.close();
  });

  test('large transfer (16 MiB, offset/count, non-Uint8List input)', () async {
    final List<Connection> pair = await connectedPair();
    const int size = 16 * 1024 * 1024;
    final Uint8List data = pattern(size + 10);
    final Future<void> written = pair[0].write(data, 10, size);
    final Uint8List got = await readExactly(pair[1], size);
    await written;
    expect(got, Uint8List.sublistView(data, 10, 10 + size));
    // A plain List<int> goes through Uint8List.fromList.
    await pair[0].write(<int>[1, 2, 3, 4], 1, 2);
    expect(await readExactly(pair[1], 2), <int>[2, 3]);
    await pair[0].close();
    await pair[1].close();
  });

  test('end of stream reads null', () async {
    final List<Connection> pair = await connectedPair();
    await pair[1].write(<int>[42]);
    await pair[1].close();
    expect(await pair[0].read(), <int>[42]);
    expect(await pair[0].read(), isNull);
    await pair[0].close();
  });

  test('closeWrite: peer sees end of stream, reading goes on', () async {
    final List<Connection> pair = await connectedPair();
    await pair[0].write('request'.codeUnits);
    await pair[0].closeWrite();
    expect(String.fromCharCodes(await readAll(pair[1])), 'request');
    await pair[1].write('response'.codeUnits);
    await pair[1].close();
    expect(String.fromCharCodes(await readAll(pair[0])), 'response');
    await pair[0].close();
  });

  test('connection refused', () async {
    final Listener listener =
        await Listener.bind(InternetAddress.loopbackIPv4, 0);
    final int port = listener.port;
    await listener.close();
    await expectLater(
        Connection.connect(InternetAddress.loopbackIPv4, port),
        throwsA(isA<SocketException>()
            .having((SocketException e) => e.port, 'port', port)
            // A refusal comes from the OS: osError is set and has a code
            // (`isNot(0)` on `osError?.errorCode` also passed for null).
            .having((SocketException e) => e.osError, 'osError',
                isA<OSError>().having(
                    (OSError o) => o.errorCode, 'errorCode', isNot(0)))));
  });

  test('a zero timeout fails even a connect to a listening port', () async {
    final Listener listener =
        await Listener.bind(InternetAddress.loopbackIPv4, 0);
    // The engine is asked to connect (the address is numeric, so at once),
    // but the timeout's zero timer was posted to the isolate's message queue
    // first and fires before the connect's completion can be handled; the
    // connect in flight is closed. Against a listening port only the
    // timeout can make this fail.
    await expectLater(
        Connection.connect(InternetAddress.loopbackIPv4, listener.port,
            timeout: Duration.zero),
        throwsA(isConnectTimedOut));
    await listener.close();
  });

  test('the timeout ends a connect that is never answered', () async {
    String why = '';
    final HangingDestination? hole =
        await HangingDestination.create(whyNot: (String r) => why = r);
    if (hole == null) {
      markTestSkipped(why);
      return;
    }
    // A connect left to the OS would wait for its SYN retries (minutes); the
    // error is the timeout's, not the OS's.
    await expectLater(
        Connection.connect(InternetAddress.loopbackIPv4, hole.port,
            timeout: const Duration(milliseconds: 300)),
        throwsA(isConnectTimedOut));
    await hole.close();
  });

  test('IPv6 loopback: connect, transfer, addresses', () async {
    final Listener listener;
    try {
      listener = await Listener.bind(InternetAddress.loopbackIPv6, 0);
    } on SocketException catch (error) {
      markTestSkipped('no IPv6 loopback here: $error');
      return;
    }
    expect(listener.address, InternetAddress.loopbackIPv6);
    final Future<Connection> accepted = listener.accept();
    // A numeric String is parsed, not looked up.
    final Connection client = await Connection.connect('::1', listener.port);
    final Connection server = await accepted;
    await client.write('over six'.codeUnits);
    expect(String.fromCharCodes(await readExactly(server, 8)), 'over six');
    await server.write(<int>[6]);
    expect(await readExactly(client, 1), <int>[6]);
    expect(client.remoteAddress, InternetAddress.loopbackIPv6);
    expect(client.remotePort, listener.port);
    expect(client.address, InternetAddress.loopbackIPv6);
    expect(server.remoteAddress, InternetAddress.loopbackIPv6);
    expect(server.remotePort, client.port);
    await client.close();
    await server.close();
    await listener.close();
  });

  test('a Connection collected without close() is closed by its finalizer',
      () async {
    final Listener listener =
        await Listener.bind(InternetAddress.loopbackIPv4, 0);
    final Future<Connection> accepted = listener.accept();
    final Completer<void> collected = Completer<void>();
    await connectAndDrop(listener.port, collected);
    final Connection server = await accepted;
    await collectGarbageUntil(collected.future);
    // The NativeFinalizer ran tcp_close_finalizer: the peer sees the end of
    // the stream (or a reset). Without it this read would never complete.
    final Object? end = await server.read().then<Object?>(
        (Uint8List? data) => data,
        onError: (Object error) => error);
    expect(end, anyOf(isNull, isA<SocketException>()));
    await server.close();
    await listener.close();
  },
      skip: sizeOf<IntPtr>() == 4
          ? 'the finalizer token is the 64-bit handle: 64-bit targets only'
          : false);

  test('a pending accept keeps an isolate alive; with nothing pending it exits',
      () async {
    final ReceivePort reports = ReceivePort();
    final ReceivePort exits = ReceivePort();
    final Completer<int> port = Completer<int>();
    final Completer<void> served = Completer<void>();
    final Completer<void> exited = Completer<void>();
    reports.listen((Object? message) {
      if (message is int) port.complete(message);
      if (message == 'served') served.complete();
    });
    exits.listen((Object? _) => exited.complete());
    await Isolate.spawn(keepAliveIsolate, reports.sendPort,
        onExit: exits.sendPort);
    final Connection client =
        await Connection.connect(InternetAddress.loopbackIPv4, await port.future);
    // The isolate's entry function returned right after reporting the port;
    // only its pending accept kept it running to serve this connection.
    expect(await client.read(), <int>[7]);
    expect(await client.read(), isNull);
    await served.future;
    // Nothing is pending any more: the isolate exits. (A port that kept it
    // alive regardless would leave this waiting until the test times out.)
    await exited.future;
    reports.close();
    exits.close();
    await client.close();
  });

  test('close while a read and an accept are pending', () async {
    // The engine posts the cancelled operation's completion before the
    // close's (tcp.h), so the read and accept futures fail while the test is
    // still awaiting close(). Their expectations are attached first: a future
    // that fails with nothing listening is an uncaught error, which fails the
    // test.
    final List<Connection> pair = await connectedPair();
    final Future<void> readFails = expectLater(
        pair[0].read(), throwsA(isA<SocketException>()));
    await pair[0].close();
    await readFails;
    await pair[1].close();

    final Listener listener =
        await Listener.bind(InternetAddress.loopbackIPv4, 0);
    final Future<void> acceptFails =
        expectLater(listener.accept(), throwsA(isA<SocketException>()));
    await listener.close();
    await acceptFails;
  });

  test('stale handle is rejected with "closed"', () async {
    final List<Connection> pair = await connectedPair();
    await pair[0].close();
    await expectLater(
        pair[0].read(),
        throwsA(isA<SocketException>().having((SocketException e) => e.message,
            'message', contains(zigTcpErrorMessage(TCP_ERR_CLOSED)))));
    expect(() => pair[0].port, throwsA(isA<SocketException>()));
    // close is idempotent
    await pair[0].close();
    await pair[1].close();
  });

  test('options', () async {
    final List<Connection> pair = await connectedPair();
    pair[0].noDelay = true;
    expect(pair[0].noDelay, isTrue);
    pair[0].noDelay = false;
    expect(pair[0].noDelay, isFalse);
    pair[0].keepAlive = true;
    expect(pair[0].keepAlive, isTrue);
    await pair[0].close();
    await pair[1].close();
  });

  test('two isolates: across isolates and each on its own', () async {
    final Listener listener =
        await Listener.bind(InternetAddress.loopbackIPv4, 0);
    final int port = listener.port;
    final Future<String> client = Isolate.run(isolateEchoTask(port));
    final Connection server = await listener.accept();
    final Uint8List got = await readAll(server);
    await server.write(got);
    await server.close();
    expect(await client, 'from isolate');
    await listener.close();

    final List<int> same = await Future.wait(<Future<int>>[
      Isolate.run(isolateOwnEchoTask(1 << 20)),
      Isolate.run(isolateOwnEchoTask(1 << 20)),
    ]);
    expect(same, <int>[1 << 20, 1 << 20]);
  });

  group('connect, as dart:io', () {
    test('the timeout covers the host lookup', () async {
      final Listener listener =
          await Listener.bind(InternetAddress.loopbackIPv4, 0);
      // 'localhost' must be looked up. The timeout's zero timer is posted to
      // the isolate's message queue before the lookup request is even sent,
      // so it expires first, whatever the lookup takes. Before the fix the
      // timeout started after the lookup.
      await expectLater(
          Connection.connect('localhost', listener.port,
              timeout: Duration.zero),
          throwsA(isConnectTimedOut));
      await listener.close();
    });

    test('cancel() during the host lookup fails the attempt at once',
        () async {
      final Listener listener =
          await Listener.bind(InternetAddress.loopbackIPv4, 0);
      final ConnectionAttempt attempt =
          Connection.startConnect('localhost', listener.port);
      attempt.cancel();
      final List<String> order = <String>[];
      final Completer<void> eventLoopRan = Completer<void>();
      Timer.run(() {
        order.add('event loop');
        eventLoopRan.complete();
      });
      await attempt.connection.then<void>((Connection connection) {
        order.add('connected');
        unawaited(connection.close());
      }, onError: (Object error) {
        order.add(isConnectCancelled.matches(error, <Object?, Object?>{})
            ? 'cancelled'
            : 'failed: $error');
      });
      await eventLoopRan.future;
      // Failed in the microtasks after cancel(), before any event (the
      // lookup's answer is one). Before the fix it waited for the lookup.
      expect(order, <String>['cancelled', 'event loop']);
      // Nothing connected later either: the listener's first connection is
      // this one.
      final Future<Connection> accepted = listener.accept();
      final Connection client =
          await Connection.connect(InternetAddress.loopbackIPv4, listener.port);
      final Connection server = await accepted;
      expect(server.remotePort, client.port);
      await client.close();
      await server.close();
      await listener.close();
    });

    test('when every address fails, the first attempt\'s error is reported',
        () async {
      final List<InternetAddress> addresses = await localhostAddresses();
      if (addresses.length < 2) {
        markTestSkipped('localhost has one address here: $addresses');
        return;
      }
      // A port nothing listens on (just released).
      final Listener probe =
          await Listener.bind(InternetAddress.loopbackIPv4, 0);
      final int port = probe.port;
      await probe.close();
      await expectLater(
          Connection.connect('localhost', port),
          throwsA(isA<SocketException>()
              .having((SocketException e) => e.address, 'address',
                  addresses.first)
              .having((SocketException e) => e.port, 'port', port)));
    });

    test('attempts overlap: a first address that never answers does not '
        'hold up the second', () async {
      final List<InternetAddress> addresses = await localhostAddresses();
      if (addresses.isEmpty ||
          addresses.first != InternetAddress.loopbackIPv4 ||
          !addresses.contains(InternetAddress.loopbackIPv6)) {
        markTestSkipped('localhost is not 127.0.0.1 then ::1 here: $addresses');
        return;
      }
      String why = '';
      final HangingDestination? hole =
          await HangingDestination.create(whyNot: (String r) => why = r);
      if (hole == null) {
        markTestSkipped(why);
        return;
      }
      final Listener six;
      try {
        six = await Listener.bind(InternetAddress.loopbackIPv6, hole.port,
            v6Only: true);
      } on SocketException catch (error) {
        await hole.close();
        markTestSkipped('no ::1 listener on port ${hole.port}: $error');
        return;
      }
      final Future<Connection> accepted = six.accept();
      // 127.0.0.1 is tried first and never answers; dart:io starts the next
      // attempt after 25 ms. Strictly one after another, the first attempt
      // would use up the whole timeout.
      final Connection client = await Connection.connect(
          'localhost', hole.port,
          timeout: const Duration(seconds: 10));
      final Connection server = await accepted;
      expect(client.remoteAddress, InternetAddress.loopbackIPv6);
      expect(server.remotePort, client.port);
      await client.close();
      await server.close();
      await six.close();
      await hole.close();
    });

    test('sourceAddress (a numeric String) and sourcePort pick the local end',
        () async {
      // All of 127.0.0.0/8 is loopback on Linux.
      final InternetAddress source = InternetAddress('127.0.0.2');
      final Listener probe = await Listener.bind(source, 0);
      final int sourcePort = probe.port; // just released
      await probe.close();
      final Listener listener =
          await Listener.bind(InternetAddress.loopbackIPv4, 0);
      final Future<Connection> accepted = listener.accept();
      final Connection client = await Connection.connect(
          InternetAddress.loopbackIPv4, listener.port,
          sourceAddress: '127.0.0.2', sourcePort: sourcePort);
      final Connection server = await accepted;
      expect(client.address, source);
      expect(client.port, sourcePort);
      expect(server.remoteAddress, source);
      expect(server.remotePort, sourcePort);
      await client.close();
      await server.close();
      await listener.close();
    }, testOn: 'linux');

    test('bad arguments throw at once; a String sourceAddress is never looked up',
        () {
      final InternetAddress here = InternetAddress.loopbackIPv4;
      expect(
          thrownAtOnce(
              () => Connection.connect(here, 80, sourceAddress: 'localhost')),
          isArgumentError);
      expect(
          thrownAtOnce(() => ZigSocket.connect(here, 80, sourceAddress: 'x')),
          isArgumentError);
      expect(thrownAtOnce(() => Connection.connect(here, 65536)),
          isArgumentError);
      expect(thrownAtOnce(() => Connection.connect(here, 80, sourcePort: -1)),
          isArgumentError);
      expect(thrownAtOnce(() => Connection.connect(42, 80)), isArgumentError);
    });
  });

  test('host names are resolved', () async {
    final Listener listener =
        await Listener.bind(InternetAddress.loopbackIPv4, 0);
    final Future<Connection> accepted = listener.accept();
    final Connection client = await Connection.connect('localhost', listener.port);
    final Connection server = await accepted;
    await client.close();
    await server.close();
    await listener.close();
  });
}
