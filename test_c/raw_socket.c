/*
 * raw_socket.c -- plain OS sockets for tests (see raw_socket.h).
 */
#include "raw_socket.h"

#include <string.h>

#if !defined(_WIN32)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include "runner.h"
#include "tracked_calls.h"

raw_sock raw_connect4(int32_t port) {
  raw_sock s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (s == RAW_INVALID) FAILF("socket() failed");
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  memcpy(&sa.sin_addr, H_LOOPBACK4, 4);
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
    raw_closesocket(s);
    FAILF("raw connect to 127.0.0.1:%d failed", (int)port);
  }
  return s;
}
