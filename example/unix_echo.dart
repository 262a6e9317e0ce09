// An echo server and client over a Unix domain socket, in one program: the
// server on a path in a new temporary directory, the client connecting to
// it with ZigSocket, as dart:io's Socket.connect takes a unix address.
//
//   dart run example/unix_echo.dart [message]
import 'dart:async';
import 'dart:convert';
import 'dart:io';

import 'package:zig_tcp/zig_tcp.dart';

Future<void> main(List<String> args) async {
  final String message = args.isEmpty ? 'hello over a Unix socket' : args[0];
  final Directory dir = Directory.systemTemp.createTempSync('zig_tcp_unix');
  final InternetAddress path = InternetAddress(
      '${dir.path}${Platform.pathSeparator}echo.sock',
      type: InternetAddressType.unix);
  final ZigServerSocket server = await ZigServerSocket.bind(path, 0);
  print('echo server ($zigTcpBackendName) on ${server.address.address}');
  // Each accepted socket echoes what it reads, then closes its side.
  final StreamSubscription<Socket> serving = server.listen(
      (Socket socket) => unawaited(socket.cast<List<int>>().pipe(socket)));
  final ZigSocket client = await ZigSocket.connect(path, 0);
  client.write(message);
  final List<Object?> results = await Future.wait<Object?>(<Future<Object?>>[
    utf8.decodeStream(client),
    client.close(), // sends end of stream; the server echoes and closes
  ]);
  print('echoed: ${results.first}');
  await serving.cancel(); // closes the server, which removes echo.sock
  dir.deleteSync(recursive: true);
}
