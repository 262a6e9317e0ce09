// An echo server on the engine's Listener/Connection API.
//
//   dart run example/echo_server.dart [port]
import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:zig_tcp/zig_tcp.dart';

Future<void> main(List<String> args) async {
  final int port = args.isEmpty ? 7777 : int.parse(args.first);
  final Listener listener = await Listener.bind(InternetAddress.anyIPv4, port);
  print('echo server ($zigTcpBackendName) on port ${listener.port}');
  for (;;) {
    final Connection connection = await listener.accept();
    // Serve each connection concurrently.
    unawaited(serve(connection));
  }
}

Future<void> serve(Connection connection) async {
  try {
    for (;;) {
      final Uint8List? data = await connection.read();
      if (data == null) break; // the client shut down its side
      await connection.write(data);
    }
  } on SocketException catch (error) {
    print('connection error: $error');
  } finally {
    await connection.close();
  }
}
