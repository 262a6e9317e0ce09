// An echo client using ZigSocket, the engine's dart:io Socket.
//
//   dart run example/echo_client.dart [host] [port] [message]
import 'dart:convert';
import 'dart:io';

import 'package:zig_tcp/zig_tcp.dart';

Future<void> main(List<String> args) async {
  final String host = args.isNotEmpty ? args[0] : '127.0.0.1';
  final int port = args.length > 1 ? int.parse(args[1]) : 7777;
  final String message = args.length > 2 ? args[2] : 'hello, zig_tcp';
  final ZigSocket socket = await ZigSocket.connect(host, port,
      timeout: const Duration(seconds: 5));
  socket.setOption(SocketOption.tcpNoDelay, true);
  socket.write(message);
  // Wait for both together: if the connection fails, the reply and close()
  // both fail, and an error of a future nobody is listening to would be
  // reported as uncaught. Future.wait listens to both.
  final List<Object?> results = await Future.wait<Object?>(<Future<Object?>>[
    utf8.decodeStream(socket),
    socket.close(), // sends FIN; the server echoes and closes
  ]);
  print('echoed: ${results.first}');
}

