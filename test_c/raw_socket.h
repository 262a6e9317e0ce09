/*
 * raw_socket.h -- plain OS sockets for tests: peers that the engine does not
 * own, so that nothing but the test (or an engine shutdown) ends what they
 * take part in.
 */
#ifndef ZIG_TCP_RAW_SOCKET_H
#define ZIG_TCP_RAW_SOCKET_H

#include <stdint.h>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
typedef SOCKET raw_sock;
#define RAW_INVALID INVALID_SOCKET
#define raw_closesocket closesocket
#else
#include <unistd.h>
typedef int raw_sock;
#define RAW_INVALID (-1)
#define raw_closesocket close
#endif

/* A blocking TCP connection to 127.0.0.1:port (fails the test if there is none). */
raw_sock raw_connect4(int32_t port);

#endif /* ZIG_TCP_RAW_SOCKET_H */
