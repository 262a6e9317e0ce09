// TCP sockets for Dart on the zig_tcp native engine (C built with Zig:
// io_uring on Linux, IOCP on Windows, libuv elsewhere).
//
// Two levels:
//  * [Connection] and [Listener]: thin, future-based wrappers of engine
//    handles (`read()`, `write()`, `accept()`, ...).
//  * [ZigSocket] and [ZigServerSocket]: dart:io's [Socket] and
//    [ServerSocket] interfaces on top of them, and [runWithZigTcp], which
//    makes dart:io itself (HttpClient, HttpServer, ...) use the engine.

export 'src/engine.dart'
    show
        Connection,
        ConnectionAttempt,
        Listener,
        zigTcpBackendName,
        zigTcpErrorMessage,
        zigTcpShutdown;
export 'src/overrides.dart' show ZigTcpOverrides, runWithZigTcp;
export 'src/socket.dart' show ZigServerSocket, ZigSocket;
