// dart:io's own HttpServer and HttpClient running on the engine: inside
// runWithZigTcp, ServerSocket.bind and Socket.connect/startConnect create
// ZigServerSocket/ZigSocket.
//
//   dart run example/http_overrides.dart
import 'dart:convert';
import 'dart:io';

import 'package:zig_tcp/zig_tcp.dart';

Future<void> main() async {
  await runWithZigTcp(() async {
    final HttpServer server =
        await HttpServer.bind(InternetAddress.loopbackIPv4, 0);
    server.listen((HttpRequest request) async {
      request.response
        ..headers.contentType = ContentType.text
        ..write('hello from $zigTcpBackendName at ${request.uri.path}');
      await request.response.close();
    });

    final HttpClient client = HttpClient();
    final HttpClientRequest request =
        await client.getUrl(Uri.parse('http://127.0.0.1:${server.port}/hi'));
    final HttpClientResponse response = await request.close();
    print('${response.statusCode}: ${await utf8.decodeStream(response)}');
    client.close();
    await server.close();
  });
}
