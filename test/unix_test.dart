// Unix domain sockets (issue 15; tcp.h tcp_listen_unix / tcp_connect_unix /
// tcp_local_path / tcp_remote_path) through Connection/Listener and
// ZigSocket/ZigServerSocket, with dart:io's addresses:
// `InternetAddress(path, type: InternetAddressType.unix)`, port 0. What
// dart:io does for each case is quoted in lib/src/listener.dart,
// lib/src/connection.dart, lib/src/socket.dart and lib/src/unix_path.dart.
// Every test makes its socket files in a temporary directory it deletes.

import 'dart:async';
import 'dart:convert';
import 'dart:io';
import 'dart:isolate';
import 'dart:typed_data';

import 'package:test/test.dart';
import 'package:zig_tcp/src/bindings.dart'
    show
        TCP_ERR_ADDRESS_IN_USE,
        TCP_ERR_NOT_TCP,
        TCP_ERR_PATH_TOO_LONG,
        TCP_UNIX_PATH_BYTES_MAX;
import 'package:zig_tcp/src/unix_path.dart';
import 'package:zig_tcp/zig_tcp.dart';

import 'support.dart';

/// Why the abstract-name tests skip where they do.
const String noAbstractNames =
    'abstract Unix socket names exist on Linux and Android only';

/// What the member isolate's listener writes to the connection it serves.
const int memberByte = 0x42;

/// What the main isolate's listener writes to the connection it serves.
const int mainByte = 0x41;

InternetAddress unixAddress(String path) =>
    InternetAddress(path, type: InternetAddressType.unix);

/// A temporary directory for one test's socket files, deleted after it.
Directory scratch() {
  final Directory dir = Directory.systemTemp.createTempSync('zt_unix');
  addTearDown(() {
    if (dir.existsSync()) dir.deleteSync(recursive: true);
  });
  return dir;
}

/// The socket address [name] in [dir].
InternetAddress socketIn(Directory dir, [String name = 's.sock']) =>
    unixAddress('${dir.path}${Platform.pathSeparator}$name');

/// Whether anything (a socket file included) exists at [path].
bool exists(String path) =>
    FileSystemEntity.typeSync(path, followLinks: false) !=
    FileSystemEntityType.notFound;

/// An abstract name no other test run uses at the same time.
int _abstractNames = 0;
String abstractName() => '@zig_tcp_test_${pid}_${_abstractNames++}';

/// A SocketException whose message has the engine's text for [code].
Matcher engineError(int code) => isA<SocketException>().having(
    (SocketException e) => e.message,
    'message',
    contains(zigTcpErrorMessage(code)));

/// Reads until [n] bytes arrived (fails at a premature end of stream).
Future<Uint8List> readExactly(Connection connection, int n) async {
  final BytesBuilder builder = BytesBuilder(copy: false);
  while (builder.length < n) {
    final Uint8List? chunk = await connection.read();
    if (chunk == null) fail('end of stream after ${builder.length} of $n');
    builder.add(chunk);
  }
  return builder.takeBytes();
}

/// A connected pair on [listener]: (connecting side, accepting side).
Future<List<Connection>> connectedPair(
    Listener listener, InternetAddress path) async {
  final Future<Connection> accepted = listener.accept();
  final Connection client = await Connection.connect(path, 0);
  return <Connection>[client, await accepted];
}

void main() {
  group('unix_path', pathTests);
  group('Connection / Listener', connectionTests);
  group('abstract names', abstractTests,
      skip: abstractNamesSupported ? false : noAbstractNames);
  group('ZigSocket / ZigServerSocket', socketTests);
  group('shared listeners', sharedTests);
}

// ---- path encoding (no engine) -----------------------------------------------

void pathTests() {
  test('a filesystem path is its UTF-8, and reads back as the same text', () {
    const String path = '/tmp/zt/sök.sock';
    expect(unixPathBytes(path), utf8.encode(path));
    expect(unixPathText(Uint8List.fromList(utf8.encode(path))), path);
    expect(unixAddressFromEngine(Uint8List.fromList(utf8.encode(path))),
        unixAddress(path));
  });

  test('an unnamed socket reads back as the empty unix address', () {
    final InternetAddress unnamed = unixAddressFromEngine(Uint8List(0));
    expect(unnamed.type, InternetAddressType.unix);
    expect(unnamed.address, '');
  });

  test("'@name' is an abstract name where the OS has them: NUL, the name, "
      'NUL padding to sun_path, as dart:io passes it', () {
    final Uint8List raw = unixPathBytes('@ab', abstractNames: true);
    expect(raw.length, abstractNameBytes);
    expect(raw.sublist(0, 3), <int>[0, 0x61, 0x62]);
    expect(raw.skip(3), everyElement(0));
    expect(unixPathText(raw), '@ab');
    // Elsewhere '@' is the first character of a file name.
    expect(unixPathBytes('@ab', abstractNames: false), utf8.encode('@ab'));
  });

  test('an abstract name too long to pad goes unpadded (the engine refuses '
      'it)', () {
    final String name = '@${'n' * abstractNameBytes}';
    final Uint8List raw = unixPathBytes(name, abstractNames: true);
    expect(raw.length, abstractNameBytes + 1);
    expect(raw[0], 0);
    expect(unixPathText(raw), name);
  });
}

// ---- Connection / Listener ------------------------------------------------------

void connectionTests() {
  test('echo over a path; the socket file exists while listening and the '
      'close removes it', () async {
    final InternetAddress path = socketIn(scratch());
    final Listener listener = await Listener.bind(path, 0);
    expect(exists(path.address), isTrue);
    if (!Platform.isWindows) {
      expect(FileSystemEntity.typeSync(path.address),
          FileSystemEntityType.unixDomainSock);
    }
    final List<Connection> pair = await connectedPair(listener, path);
    final Connection client = pair[0], server = pair[1];
    const int total = 300 * 1000;
    final Future<void> sent = client.write(streamBytes(total));
    final Uint8List received = await readExactly(server, total);
    await sent;
    expect(firstWrongByte(received, 0), total);
    final Future<void> echoed = server.write(received);
    expect(firstWrongByte(await readExactly(client, total), 0), total);
    await echoed;
    await client.closeWrite();
    expect(await server.read(), isNull);
    await client.close();
    await server.close();
    await listener.close();
    expect(exists(path.address), isFalse);
  });

  test('address, remoteAddress and ports as dart:io reports them', () async {
    final InternetAddress path = socketIn(scratch());
    final Listener listener = await Listener.bind(path, 0);
    expect(listener.isUnix, isTrue);
    expect(listener.address, path);
    expect(listener.port, 0);
    expect(listener.localPath, path);
    final List<Connection> pair = await connectedPair(listener, path);
    final Connection client = pair[0], server = pair[1];
    // dart:io's `address` is the address connected to / the listener's.
    for (final Connection c in pair) {
      expect(c.isUnix, isTrue);
      expect(c.address, path);
      expect(c.address.type, InternetAddressType.unix);
      expect(c.port, 0);
      expect(c.remotePort, 0);
    }
    // The OS's view: the connecting side is unnamed.
    expect(client.remoteAddress, path);
    expect(client.localPath, unixAddress(''));
    expect(server.remoteAddress, unixAddress(''));
    expect(server.localPath, path);
    for (final Connection c in pair) {
      await c.close();
    }
    await listener.close();
  });

  test('a port is checked and then ignored, and so is v6Only, as in dart:io',
      () async {
    final InternetAddress path = socketIn(scratch());
    await expectLater(Listener.bind(path, 70000), throwsArgumentError);
    expect(thrownAtOnce(() => Connection.connect(path, -1)), isArgumentError);
    final Listener listener = await Listener.bind(path, 4242, v6Only: true);
    expect(listener.port, 0);
    final Future<Connection> accepted = listener.accept();
    final Connection client = await Connection.connect(path, 4242);
    final Connection server = await accepted;
    expect(client.remotePort, 0);
    await client.close();
    await server.close();
    await listener.close();
  });

  test('noDelay and keepAlive are TCP-only: TCP_ERR_NOT_TCP', () async {
    final InternetAddress path = socketIn(scratch());
    final Listener listener = await Listener.bind(path, 0);
    final List<Connection> pair = await connectedPair(listener, path);
    for (final Connection c in pair) {
      expect(() => c.noDelay, throwsA(engineError(TCP_ERR_NOT_TCP)));
      expect(() => c.noDelay = true, throwsA(engineError(TCP_ERR_NOT_TCP)));
      expect(() => c.keepAlive, throwsA(engineError(TCP_ERR_NOT_TCP)));
      expect(() => c.keepAlive = true, throwsA(engineError(TCP_ERR_NOT_TCP)));
      // The connection still works.
      await c.write(<int>[7]);
    }
    expect(await pair[0].read(1), <int>[7]);
    expect(await pair[1].read(1), <int>[7]);
    for (final Connection c in pair) {
      await c.close();
    }
    await listener.close();
  });

  test('a path longer than sun_path: TCP_ERR_PATH_TOO_LONG on bind and '
      'connect; the longest that fits works', () async {
    final Directory dir = scratch();
    // sun_path less the NUL the OS wants: 107 bytes on Linux and Windows,
    // 103 on macOS and the BSDs.
    final int longest = (Platform.isMacOS || Platform.isIOS)
        ? 103
        : TCP_UNIX_PATH_BYTES_MAX - 1;
    final int room = longest - dir.path.length - 1;
    if (room < 1) {
      markTestSkipped('the temporary directory ${dir.path} leaves no room');
      return;
    }
    final InternetAddress fits = socketIn(dir, 'f' * room);
    final InternetAddress tooLong = socketIn(dir, 'f' * (room + 1));
    expect(utf8.encode(fits.address).length, longest);
    await expectLater(Listener.bind(tooLong, 0),
        throwsA(engineError(TCP_ERR_PATH_TOO_LONG)));
    await expectLater(Connection.connect(tooLong, 0),
        throwsA(engineError(TCP_ERR_PATH_TOO_LONG)));
    expect(exists(tooLong.address), isFalse);
    final Listener listener = await Listener.bind(fits, 0);
    final List<Connection> pair = await connectedPair(listener, fits);
    expect(pair[0].remoteAddress, fits);
    for (final Connection c in pair) {
      await c.close();
    }
    await listener.close();
  });

  test('a path in use: a live listener or any other file gives address in '
      'use, and the file is left alone', () async {
    final Directory dir = scratch();
    final InternetAddress path = socketIn(dir);
    final Listener first = await Listener.bind(path, 0);
    await expectLater(
        Listener.bind(path, 0), throwsA(engineError(TCP_ERR_ADDRESS_IN_USE)));
    await expectLater(Listener.bind(path, 0, shared: true),
        throwsA(engineError(TCP_ERR_ADDRESS_IN_USE)));
    // The first listener still serves.
    final List<Connection> pair = await connectedPair(first, path);
    for (final Connection c in pair) {
      await c.close();
    }
    await first.close();
    expect(exists(path.address), isFalse);

    final File plain = File('${dir.path}${Platform.pathSeparator}plain')
      ..writeAsStringSync('not a socket');
    await expectLater(Listener.bind(unixAddress(plain.path), 0),
        throwsA(engineError(TCP_ERR_ADDRESS_IN_USE)));
    expect(plain.readAsStringSync(), 'not a socket');
  });

  test('a connect to a path nobody listens on, or to a file that is no '
      'socket, fails with "Connection failed" naming the address', () async {
    final Directory dir = scratch();
    final InternetAddress nobody = socketIn(dir, 'nobody');
    final File plain = File('${dir.path}${Platform.pathSeparator}plain')
      ..writeAsStringSync('x');
    for (final InternetAddress target in <InternetAddress>[
      nobody,
      unixAddress(plain.path)
    ]) {
      await expectLater(
          Connection.connect(target, 0),
          throwsA(isA<SocketException>()
              .having((SocketException e) => e.message, 'message',
                  startsWith('Connection failed'))
              .having((SocketException e) => e.address, 'address', target)));
    }
    expect(exists(nobody.address), isFalse);
  });

  test('a symbolic link to a free path is bound at its target, as dart:io '
      'does', () async {
    final Directory dir = scratch();
    final InternetAddress target = socketIn(dir, 'target.sock');
    final InternetAddress link = socketIn(dir, 'link.sock');
    Link(link.address).createSync(target.address);
    final Listener listener = await Listener.bind(link, 0);
    expect(listener.address, link);
    expect(listener.localPath, target);
    final List<Connection> pair = await connectedPair(listener, target);
    for (final Connection c in pair) {
      await c.close();
    }
    await listener.close();
    expect(exists(target.address), isFalse);
  }, skip: Platform.isWindows ? 'symbolic links need privileges there' : false);

  test("dart:io's source-address rules for unix sockets", () async {
    final Directory dir = scratch();
    final InternetAddress path = socketIn(dir);
    // A String host is an internet host: a unix source never reaches it.
    expect(
        thrownAtOnce(() =>
            Connection.connect('127.0.0.1', 80, sourceAddress: path)),
        isA<SocketException>().having((SocketException e) => e.message,
            'message',
            'Cannot connect to an internet host using a unix domain socket'));
    // The engine does not bind a unix client to a source path.
    expect(
        thrownAtOnce(() => Connection.connect(path, 0,
            sourceAddress: socketIn(dir, 'client.sock'))),
        isUnsupportedError);
    // A source of the other family fails the connect.
    final Matcher familyError = isA<SocketException>().having(
        (SocketException e) => e.message,
        'message',
        startsWith('Address family not supported by protocol family'));
    await expectLater(
        Connection.connect(path, 0, sourceAddress: InternetAddress.loopbackIPv4),
        throwsA(familyError));
    await expectLater(
        Connection.connect(InternetAddress.loopbackIPv4, 1,
            sourceAddress: path),
        throwsA(familyError));
  });
}

// ---- abstract names ------------------------------------------------------------

void abstractTests() {
  test("'@name': no file, the peer and the listener report '@name', the "
      'name is free again after the close', () async {
    final InternetAddress name = unixAddress(abstractName());
    final Listener listener = await Listener.bind(name, 0);
    expect(exists(name.address), isFalse);
    expect(listener.address, name);
    expect(listener.localPath, name);
    final List<Connection> pair = await connectedPair(listener, name);
    expect(pair[0].remoteAddress, name);
    expect(pair[1].localPath, name);
    await pair[0].write(<int>[1, 2, 3]);
    expect(await readExactly(pair[1], 3), <int>[1, 2, 3]);
    for (final Connection c in pair) {
      await c.close();
    }
    await expectLater(
        Listener.bind(name, 0), throwsA(engineError(TCP_ERR_ADDRESS_IN_USE)));
    await listener.close();
    final Listener again = await Listener.bind(name, 0);
    await again.close();
  });

  test('a dart:io server and a zig_tcp client meet on one abstract name, '
      'and the other way round', () async {
    final InternetAddress first = unixAddress(abstractName());
    final ServerSocket dartIo = await ServerSocket.bind(first, 0);
    final Future<Socket> acceptedByDartIo = dartIo.first;
    final Connection client = await Connection.connect(first, 0);
    // Both dart:io sockets are destroyed below, which closes their sinks.
    // ignore: close_sinks
    final Socket served = await acceptedByDartIo;
    served.add(<int>[9]);
    await served.flush();
    expect(await client.read(1), <int>[9]);
    served.destroy();
    await client.close();

    final InternetAddress second = unixAddress(abstractName());
    final Listener listener = await Listener.bind(second, 0);
    final Future<Connection> accepted = listener.accept();
    // ignore: close_sinks
    final Socket dartIoClient = await Socket.connect(second, 0);
    final Connection server = await accepted;
    await server.write(<int>[5]);
    expect(await dartIoClient.first, <int>[5]);
    dartIoClient.destroy();
    await server.close();
    await listener.close();
  });
}

// ---- ZigSocket / ZigServerSocket --------------------------------------------------

void socketTests() {
  test('ZigServerSocket and ZigSocket over a path: echo, addresses as in '
      'dart:io, the file removed on close', () async {
    final InternetAddress path = socketIn(scratch());
    final ZigServerSocket server = await ZigServerSocket.bind(path, 0);
    expect(server.port, 0);
    expect(server.address, path);
    final Completer<Socket> accepted = Completer<Socket>();
    final StreamSubscription<Socket> subscription =
        server.listen(accepted.complete);
    final ZigSocket client = await ZigSocket.connect(path, 0);
    // Its pipe closes it.
    // ignore: close_sinks
    final Socket served = await accepted.future;
    expect(client.address, path);
    expect(client.remoteAddress, path);
    expect(served.address, path);
    expect(served.remoteAddress, unixAddress(''));
    for (final Socket s in <Socket>[client, served]) {
      expect(s.port, 0);
      expect(s.remotePort, 0);
    }
    unawaited(served.cast<List<int>>().pipe(served));
    const int total = 200 * 1000;
    client.add(streamBytes(total));
    unawaited(client.close());
    final BytesBuilder echoed = BytesBuilder(copy: false);
    await client.forEach(echoed.add);
    expect(echoed.length, total);
    expect(firstWrongByte(echoed.takeBytes(), 0), total);
    await subscription.cancel();
    await server.listener.close();
    expect(exists(path.address), isFalse);
  });

  test('setOption(tcpNoDelay) on a unix socket throws an OSError, as '
      "dart:io's does", () async {
    final InternetAddress path = socketIn(scratch());
    final ZigServerSocket server = await ZigServerSocket.bind(path, 0);
    final Future<Socket> accepted = server.first;
    // Both are destroyed below, which closes their sinks.
    // ignore: close_sinks
    final ZigSocket client = await ZigSocket.connect(path, 0);
    // ignore: close_sinks
    final Socket served = await accepted;
    for (final Socket s in <Socket>[client, served]) {
      final Object? error =
          thrownAtOnce(() => s.setOption(SocketOption.tcpNoDelay, true));
      expect(error, isA<OSError>());
      if (Platform.isLinux || Platform.isAndroid) {
        expect((error! as OSError).errorCode, 95); // EOPNOTSUPP
      }
    }
    expect(() => client.keepAlive, throwsA(engineError(TCP_ERR_NOT_TCP)));
    client.destroy();
    served.destroy();
  });

  test('a paused listener stops the sender; resume delivers every byte in '
      'order', () async {
    final InternetAddress path = socketIn(scratch());
    final Listener listener = await Listener.bind(path, 0);
    final Future<Connection> accepted = listener.accept();
    // Destroyed at the end, which closes its sink.
    // ignore: close_sinks
    final ZigSocket client = await ZigSocket.connect(path, 0);
    final Connection server = await accepted;
    await listener.close();
    const int window = ZigSocket.readWindowBytes;
    // Far more than the window and the kernel's buffers hold.
    const int total = 4 * 1024 * 1024;
    bool sent = false;
    final Future<void> sending =
        server.write(streamBytes(total)).then((_) => sent = true);
    int received = 0;
    final Completer<void> done = Completer<void>();
    late final StreamSubscription<Uint8List> sub;
    sub = client.listen((Uint8List chunk) {
      expect(firstWrongByte(chunk, received), chunk.length);
      received += chunk.length;
      expect(client.readBufferedBytes, lessThanOrEqualTo(window));
      if (received == chunk.length) sub.pause();
    }, onDone: done.complete);
    await untilTrue(() => client.readBufferedBytes == window);
    expect(sent, isFalse);
    sub.resume();
    await sending;
    await server.close();
    await done.future;
    expect(received, total);
    await sub.cancel();
    client.destroy();
  });

  test('runWithZigTcp: ServerSocket.bind, Socket.connect and '
      'Socket.startConnect on a unix address use the engine', () async {
    final InternetAddress path = socketIn(scratch());
    await runWithZigTcp(() async {
      final ServerSocket server = await ServerSocket.bind(path, 0);
      expect(server, isA<ZigServerSocket>());
      expect(server.port, 0);
      final StreamIterator<Socket> accepted = StreamIterator<Socket>(server);
      // Both are destroyed below, which closes their sinks.
      // ignore: close_sinks
      final Socket viaConnect = await Socket.connect(path, 0);
      expect(viaConnect, isA<ZigSocket>());
      final ConnectionTask<Socket> task = await Socket.startConnect(path, 0);
      // ignore: close_sinks
      final Socket viaTask = await task.socket;
      expect(viaTask, isA<ZigSocket>());
      for (int i = 0; i < 2; i++) {
        expect(await accepted.moveNext(), isTrue);
        expect(accepted.current.remoteAddress, unixAddress(''));
        accepted.current.destroy();
      }
      viaConnect.destroy();
      viaTask.destroy();
      await accepted.cancel();
      await server.close();
    });
    expect(exists(path.address), isFalse);
  });

  test('HttpServer on a unix address and HttpClient through a '
      'connectionFactory, via runWithZigTcp', () async {
    final InternetAddress path = socketIn(scratch());
    await runWithZigTcp(() async {
      final HttpServer server = await HttpServer.bind(path, 0);
      expect(server.port, 0);
      server.listen((HttpRequest request) async {
        request.response.write('${request.method} ${request.uri.path}');
        await request.response.close();
      });
      final HttpClient client = HttpClient()
        ..connectionFactory = (Uri uri, String? proxyHost, int? proxyPort) =>
            Socket.startConnect(path, 0);
      for (int i = 0; i < 2; i++) {
        final HttpClientRequest request =
            await client.getUrl(Uri.parse('http://localhost/unix/$i'));
        final HttpClientResponse response = await request.close();
        expect(response.statusCode, 200);
        expect(await utf8.decodeStream(response), 'GET /unix/$i');
      }
      client.close(force: true);
      await server.close(force: true);
    });
  });
}

// ---- shared listeners ------------------------------------------------------------

/// The member isolate: binds [args]'s path with `shared: true`, reports its
/// command port, then obeys: 'accept' issues ONE accept, reports
/// 'accepting', and once a connection came writes [memberByte], closes it
/// and reports 'served'; 'close' closes the listener and reports 'closed'.
Future<void> unixMember(List<Object> args) async {
  final Listener listener =
      await Listener.bind(unixAddress(args[0] as String), 0, shared: true);
  final SendPort report = args[1] as SendPort;
  final ReceivePort commands = ReceivePort();
  report.send(commands.sendPort);
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

/// The main isolate's side of a member isolate: its reports in order, its
/// uncaught errors failing the next wait.
final class UnixMember {
  UnixMember._();

  final ReceivePort _reports = ReceivePort();
  final RawReceivePort _errors = RawReceivePort();
  late final StreamIterator<Object?> _inbox = StreamIterator<Object?>(_reports);
  final Completer<Object?> _failed = Completer<Object?>();
  late final SendPort _commands;

  static Future<UnixMember> spawn(String path) async {
    final UnixMember member = UnixMember._();
    member._errors.handler = (Object? error) {
      if (!member._failed.isCompleted) {
        member._failed.completeError(StateError('the member failed: $error'));
      }
    };
    await Isolate.spawn<List<Object>>(
        unixMember, <Object>[path, member._reports.sendPort],
        onError: member._errors.sendPort);
    member._commands = await member.next() as SendPort;
    return member;
  }

  void send(String command) => _commands.send(command);

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

Future<int> firstByte(Connection connection) async {
  final Uint8List? data = await connection.read(1);
  if (data == null) fail('end of stream before the server wrote');
  return data[0];
}

void sharedTests() {
  test('two isolates share one path: a connection goes to the one accepting; '
      'the file stays until the last close', () async {
    final InternetAddress path = socketIn(scratch());
    final Listener mine = await Listener.bind(path, 0, shared: true);
    final UnixMember member = await UnixMember.spawn(path.address);
    addTearDown(member.dispose);
    // A bind without shared on a shared path is refused.
    await expectLater(
        Listener.bind(path, 0), throwsA(engineError(TCP_ERR_ADDRESS_IN_USE)));

    // Only the member has an accept waiting: it serves the connection.
    member.send('accept');
    expect(await member.next(), 'accepting');
    final Connection c1 = await Connection.connect(path, 0);
    expect(await firstByte(c1), memberByte);
    expect(await member.next(), 'served');

    // The member's close leaves this isolate's listener, and the file.
    member.send('close');
    expect(await member.next(), 'closed');
    expect(exists(path.address), isTrue);
    final Future<Connection> acceptedHere = mine.accept();
    final Connection c2 = await Connection.connect(path, 0);
    final Connection servedHere = await acceptedHere;
    await servedHere.write(<int>[mainByte]);
    expect(await firstByte(c2), mainByte);
    await servedHere.close();

    // The last close removes the file: nobody listens there any more.
    await mine.close();
    expect(exists(path.address), isFalse);
    await expectLater(
        Connection.connect(path, 0), throwsA(isA<SocketException>()));
    await c1.close();
    await c2.close();
  });
}
