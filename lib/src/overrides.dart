// Runs dart:io's socket entry points on the engine inside a zone, so code that
// uses Socket.connect / Socket.startConnect / ServerSocket.bind -- including
// dart:io's own HttpClient and HttpServer -- gets ZigSocket/ZigServerSocket.

import 'dart:io';

import 'socket.dart';

/// [IOOverrides] that route socket creation to the zig_tcp engine. Every
/// other dart:io facility keeps its default behaviour.
base class ZigTcpOverrides extends IOOverrides {
  @override
  Future<Socket> socketConnect(dynamic host, int port,
      {dynamic sourceAddress, int sourcePort = 0, Duration? timeout}) {
    return ZigSocket.connect(host as Object, port,
        sourceAddress: sourceAddress as Object?,
        sourcePort: sourcePort,
        timeout: timeout);
  }

  @override
  Future<ConnectionTask<Socket>> socketStartConnect(dynamic host, int port,
      {dynamic sourceAddress, int sourcePort = 0}) {
    return ZigSocket.startConnect(host as Object, port,
        sourceAddress: sourceAddress as Object?, sourcePort: sourcePort);
  }

  @override
  Future<ServerSocket> serverSocketBind(dynamic address, int port,
      {int backlog = 0, bool v6Only = false, bool shared = false}) {
    return ZigServerSocket.bind(address as Object, port,
        backlog: backlog, v6Only: v6Only, shared: shared);
  }
}

/// Runs [body] in a zone where dart:io's Socket.connect, Socket.startConnect
/// and ServerSocket.bind (and so HttpClient and HttpServer) use the engine.
R runWithZigTcp<R>(R Function() body) =>
    IOOverrides.runWithIOOverrides<R>(body, ZigTcpOverrides());
