/// TCP sockets on the zig_tcp native engine.
