// ZigSocket's Stream on the engine's read stream (tcp.h "streaming reads"):
// backpressure through the window, order, cancel and one-shot reads after
// it, destroy, end of stream and errors behind the bytes a paused listener
// has not had yet.

import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:test/test.dart';
import 'package:zig_tcp/zig_tcp.dart';

import 'support.dart';

/// A ZigSocket (the receiver under test) connected over loopback to a
/// dart:io socket (the sender).
final class Peers {
  Peers._(this.server, this.socket, this.peer);

  final ServerSocket server;
  final ZigSocket socket;
  final Socket peer;

  static Future<Peers> connect() async {
    final ServerSocket server =
        await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
    final Future<Socket> accepted = server.first;
    final ZigSocket socket =
        await ZigSocket.connect(InternetAddress.loopbackIPv4, server.port);
    final Socket peer = await accepted;
    // Some tests end the receiver while the peer still writes: the peer's
    // sink then fails, which is not what they test.
    unawaited(peer.done.then<void>((_) {}, onError: (Object _) {}));
    return Peers._(server, socket, peer);
  }

  /// Sends [n] bytes of the test stream; the future completes once dart:io
  /// handed them all to the kernel, or fails if the connection broke.
  Future<void> send(int n) {
    peer.add(streamBytes(n));
    return peer.flush();
  }

  Future<void> close() async {
    socket.destroy();
    peer.destroy();
    await server.close();
  }
}

/// Many passes of the engine's I/O thread: a byte written and read back on
/// an engine connection pair of its own.
Future<void> engineRoundTrip() async {
  final Listener listener =
      await Listener.bind(InternetAddress.loopbackIPv4, 0);
  final Future<Connection> accepted = listener.accept();
  final Connection a =
      await Connection.connect(InternetAddress.loopbackIPv4, listener.port);
  final Connection b = await accepted;
  await a.write(<int>[1]);
  expect(await b.read(), <int>[1]);
  await a.close();
  await b.close();
  await listener.close();
}

/// Reads [connection] until [end] bytes of the test stream, starting at
/// byte [offset], arrived in order; returns the new offset.
Future<int> readStreamBytes(Connection connection, int offset, int end) async {
  while (offset < end) {
    final Uint8List? chunk = await connection.read();
    if (chunk == null) fail('end of stream at byte $offset of $end');
    expect(firstWrongByte(chunk, offset), chunk.length,
        reason: 'the read at byte $offset');
    offset += chunk.length;
  }
  return offset;
}

const int window = ZigSocket.readWindowBytes;

void main() {
  test('a paused subscription stops the sender; resume delivers every byte '
      'in order', () async {
    final Peers p = await Peers.connect();
    // Far more than the kernel's send and receive buffers hold besides the
    // window (Linux: at most 4 MiB + 6 MiB by default).
    const int total = 64 * 1024 * 1024;
    int delivered = 0;
    final Completer<void> all = Completer<void>();
    final StreamSubscription<Uint8List> sub =
        p.socket.listen((Uint8List chunk) {
      expect(firstWrongByte(chunk, delivered), chunk.length,
          reason: 'the chunk at byte $delivered');
      delivered += chunk.length;
      expect(p.socket.readBufferedBytes, lessThanOrEqualTo(window));
      if (delivered == total) all.complete();
    });
    // Paused before the first byte: everything the engine posts waits.
    sub.pause();
    bool flushed = false;
    final Future<void> flush = p.send(total).then<void>((_) {
      flushed = true;
    });
    await untilTrue(() {
      expect(p.socket.readBufferedBytes, lessThanOrEqualTo(window));
      return p.socket.readBufferedBytes == window;
    });
    await engineRoundTrip();
    // The engine stopped at the window, not a byte past it, and the sender
    // is held back by TCP: its 64 MiB have not all left.
    expect(p.socket.readBufferedBytes, window);
    expect(delivered, 0);
    expect(flushed, isFalse);
    sub.resume();
    await all.future;
    await flush;
    expect(flushed, isTrue);
    await sub.cancel();
    await p.close();
  });

  test('pausing and resuming while bytes arrive loses and reorders nothing',
      () async {
    final Peers p = await Peers.connect();
    const int total = 16 * 1024 * 1024;
    int delivered = 0;
    int chunks = 0;
    final Completer<void> ended = Completer<void>();
    late final StreamSubscription<Uint8List> sub;
    sub = p.socket.listen((Uint8List chunk) {
      expect(firstWrongByte(chunk, delivered), chunk.length,
          reason: 'the chunk at byte $delivered');
      delivered += chunk.length;
      expect(p.socket.readBufferedBytes, lessThanOrEqualTo(window));
      // Every third chunk pauses until a later event (a zero timer): the
      // chunks that arrive meanwhile wait and are delivered on resume.
      if (++chunks % 3 == 0) sub.pause(Future<void>(() {}));
    }, onDone: () {
      expect(delivered, total);
      ended.complete();
    });
    await p.send(total);
    await p.peer.close();
    await ended.future;
    await sub.cancel();
    await p.close();
  });

  test('the read stream starts on listen: before it one-shot reads work, '
      'while it runs they fail with a StateError', () async {
    final Peers p = await Peers.connect();
    final Connection connection = p.socket.connection;
    await p.send(1000);
    expect(await readStreamBytes(connection, 0, 1000), 1000);
    final List<int> got = <int>[];
    final StreamSubscription<Uint8List> sub = p.socket.listen(got.addAll);
    // The engine refuses the read (TCP_ERR_BUSY): the stream owns the reads.
    await expectLater(connection.read(), throwsStateError);
    p.peer.add(<int>[4, 5]);
    await p.peer.flush();
    await untilTrue(() => got.length == 2);
    expect(got, <int>[4, 5]);
    await sub.cancel();
    await p.close();
  });

  test('cancel, then Connection.read() goes on with the next bytes', () async {
    final Peers p = await Peers.connect();
    const int total = 1024 * 1024;
    int delivered = 0;
    final Completer<void> first = Completer<void>();
    late final StreamSubscription<Uint8List> sub;
    sub = p.socket.listen((Uint8List chunk) {
      expect(firstWrongByte(chunk, delivered), chunk.length);
      delivered += chunk.length;
      sub.pause();
      first.complete();
    });
    final Future<void> flushed = p.send(total);
    await first.future;
    // The window fills behind the paused listener.
    await untilTrue(() => p.socket.readBufferedBytes == window);
    await sub.cancel();
    expect(p.socket.readBufferedBytes, 0);
    // What waited for the listener, what was still on its way and what the
    // kernel holds come in stream order.
    expect(await readStreamBytes(p.socket.connection, delivered, total), total);
    await flushed;
    await p.peer.close();
    expect(await p.socket.connection.read(), isNull);
    // The stream side was cancelled: closing the sink closes the socket.
    await p.socket.close();
    expect(p.socket.connection.isClosed, isTrue);
    await p.close();
  });

  test('destroy while bytes stream in: no error, done completes', () async {
    final Peers p = await Peers.connect();
    final List<Object> errors = <Object>[];
    final Completer<void> ended = Completer<void>();
    int delivered = 0;
    p.socket.listen((Uint8List chunk) {
      delivered += chunk.length;
      // In the first chunk's callback, with more on their way: the final
      // completion of the engine stream is TCP_ERR_CLOSED, which must not
      // surface.
      p.socket.destroy();
    }, onError: errors.add, onDone: ended.complete);
    unawaited(p.send(16 * 1024 * 1024).then<void>((_) {}, onError: (Object _) {}));
    await ended.future;
    await p.socket.done;
    expect(errors, isEmpty);
    expect(delivered, greaterThan(0));
    await p.close();
  });

  test('destroy while paused: the bytes that waited come first, then done',
      () async {
    final Peers p = await Peers.connect();
    final List<Object> errors = <Object>[];
    final Completer<void> ended = Completer<void>();
    int delivered = 0;
    final StreamSubscription<Uint8List> sub =
        p.socket.listen((Uint8List chunk) {
      expect(firstWrongByte(chunk, delivered), chunk.length);
      delivered += chunk.length;
    }, onError: errors.add, onDone: ended.complete);
    sub.pause();
    unawaited(p.send(4 * window).then<void>((_) {}, onError: (Object _) {}));
    await untilTrue(() => p.socket.readBufferedBytes == window);
    p.socket.destroy();
    await p.socket.done;
    // As dart:io's destroy closes its controller behind the data it holds.
    expect(ended.isCompleted, isFalse);
    sub.resume();
    await ended.future;
    expect(delivered, window);
    expect(errors, isEmpty);
    await sub.cancel();
    await p.close();
  });

  test('end of stream while paused: done after every byte', () async {
    final Peers p = await Peers.connect();
    const int total = 100000; // less than the window: all of it waits
    final List<String> events = <String>[];
    int delivered = 0;
    final Completer<void> ended = Completer<void>();
    final StreamSubscription<Uint8List> sub =
        p.socket.listen((Uint8List chunk) {
      expect(firstWrongByte(chunk, delivered), chunk.length);
      delivered += chunk.length;
      events.add('data');
    }, onDone: () {
      events.add('done after $delivered');
      ended.complete();
    });
    sub.pause();
    await p.send(total);
    await p.peer.close(); // FIN behind the bytes
    await untilTrue(() => p.socket.readBufferedBytes == total);
    expect(events, isEmpty);
    sub.resume();
    await ended.future;
    expect(events.last, 'done after $total');
    expect(events.length, greaterThan(1));
    await sub.cancel();
    // Only the stream side ended; the sink works until it is closed.
    p.socket.add(<int>[1]);
    await p.socket.close();
    await p.close();
  });

  test('an error ends the stream after the bytes that waited, and reaches '
      'done at once', () async {
    final Listener listener =
        await Listener.bind(InternetAddress.loopbackIPv4, 0);
    final Future<Connection> accepted = listener.accept();
    final ZigSocket socket =
        await ZigSocket.connect(InternetAddress.loopbackIPv4, listener.port);
    final Connection peer = await accepted;
    await listener.close();
    final List<String> events = <String>[];
    int delivered = 0;
    final Completer<void> ended = Completer<void>();
    final StreamSubscription<Uint8List> sub =
        socket.listen((Uint8List chunk) {
      expect(firstWrongByte(chunk, delivered), chunk.length);
      delivered += chunk.length;
      events.add('data');
    }, onError: (Object error) {
      expect(error, isA<SocketException>());
      events.add('error after $delivered');
    }, onDone: () {
      events.add('done');
      ended.complete();
    });
    sub.pause();
    await peer.write(streamBytes(1000));
    await untilTrue(() => socket.readBufferedBytes == 1000);
    // The peer closes with bytes it did not read (it reads one of 1000, one
    // segment on loopback): its OS answers with a reset, which fails the
    // receive the engine stream has pending.
    socket.add(Uint8List(1000));
    await socket.flush();
    expect(await peer.read(1), hasLength(1));
    await peer.close();
    await expectLater(socket.done, throwsA(isA<SocketException>()));
    expect(events, isEmpty);
    sub.resume();
    await ended.future;
    expect(events.sublist(events.length - 2),
        <String>['error after 1000', 'done']);
    await sub.cancel();
    socket.destroy();
  });
}
