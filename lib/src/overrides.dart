// Runs dart:io's socket entry points on the engine inside a zone, so code that
// uses Socket.connect / Socket.startConnect / ServerSocket.bind -- including
// dart:io's own HttpClient and HttpServer -- gets ZigSocket/ZigServerSocket.

import 'dart:io';

import 'socket.dart';

/// [IOOverrides] that route socket creation to the zig_tcp engine and pass
/// everything else (files, directories, links, stat, watch, stdio, exit) to
/// the overrides that were in force where this object was made: those of the
/// enclosing zone, or dart:io's own behaviour if there were none.
///
/// This is what dart:io's own `IOOverrides.runZoned` does for the functions
/// it is not given (its `_IOOverridesScope` falls back to `_previous`, in
/// sdk/lib/io/overrides.dart); `IOOverrides.runWithIOOverrides` alone would
/// replace them, and a test's file mocks would be lost inside
/// [runWithZigTcp]. An override that a newer SDK adds to [IOOverrides] is not
/// delegated until this class learns it (it gets dart:io's default).
base class ZigTcpOverrides extends IOOverrides {
  /// Delegates non-socket calls to [previous], by default
  /// [IOOverrides.current] at the time of the call to this constructor.
  ZigTcpOverrides({IOOverrides? previous})
      : _previous = previous ?? IOOverrides.current;

  final IOOverrides? _previous;

  // ---- sockets: the engine ---------------------------------------------------

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

  // ---- everything else: the enclosing overrides ------------------------------

  @override
  Directory createDirectory(String path) =>
      _previous?.createDirectory(path) ?? super.createDirectory(path);

  @override
  Directory getCurrentDirectory() =>
      _previous?.getCurrentDirectory() ?? super.getCurrentDirectory();

  @override
  void setCurrentDirectory(String path) {
    final IOOverrides? previous = _previous;
    if (previous != null) {
      previous.setCurrentDirectory(path);
    } else {
      super.setCurrentDirectory(path);
    }
  }

  @override
  Directory getSystemTempDirectory() =>
      _previous?.getSystemTempDirectory() ?? super.getSystemTempDirectory();

  @override
  File createFile(String path) =>
      _previous?.createFile(path) ?? super.createFile(path);

  @override
  Future<FileStat> stat(String path) =>
      _previous?.stat(path) ?? super.stat(path);

  @override
  FileStat statSync(String path) =>
      _previous?.statSync(path) ?? super.statSync(path);

  @override
  Future<bool> fseIdentical(String path1, String path2) =>
      _previous?.fseIdentical(path1, path2) ??
      super.fseIdentical(path1, path2);

  @override
  bool fseIdenticalSync(String path1, String path2) =>
      _previous?.fseIdenticalSync(path1, path2) ??
      super.fseIdenticalSync(path1, path2);

  @override
  Future<FileSystemEntityType> fseGetType(String path, bool followLinks) =>
      _previous?.fseGetType(path, followLinks) ??
      super.fseGetType(path, followLinks);

  @override
  FileSystemEntityType fseGetTypeSync(String path, bool followLinks) =>
      _previous?.fseGetTypeSync(path, followLinks) ??
      super.fseGetTypeSync(path, followLinks);

  @override
  Stream<FileSystemEvent> fsWatch(String path, int events, bool recursive) =>
      _previous?.fsWatch(path, events, recursive) ??
      super.fsWatch(path, events, recursive);

  @override
  bool fsWatchIsSupported() =>
      _previous?.fsWatchIsSupported() ?? super.fsWatchIsSupported();

  @override
  Link createLink(String path) =>
      _previous?.createLink(path) ?? super.createLink(path);

  @override
  Stdin get stdin => _previous?.stdin ?? super.stdin;

  @override
  Stdout get stdout => _previous?.stdout ?? super.stdout;

  @override
  Stdout get stderr => _previous?.stderr ?? super.stderr;

  /// `IOOverrides.exit` exists from Dart 3.10 on (`@Since("3.10")`), the
  /// package's lowest SDK.
  @override
  Never exit(int code) {
    final IOOverrides? previous = _previous;
    if (previous != null) previous.exit(code);
    super.exit(code);
  }
}

/// Runs [body] in a zone where dart:io's Socket.connect, Socket.startConnect
/// and ServerSocket.bind (and so HttpClient and HttpServer) use the engine.
/// Unix domain socket addresses (`InternetAddress(path, type:
/// InternetAddressType.unix)`) go to the engine too, with dart:io's rules
/// (see [ZigServerSocket.bind] and [ZigSocket.connect]).
/// Every other override of the enclosing zone (file mocks, stdio, exit, ...)
/// stays in force.
R runWithZigTcp<R>(R Function() body) =>
    IOOverrides.runWithIOOverrides<R>(body, ZigTcpOverrides());
