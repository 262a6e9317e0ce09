/* errors.h -- OS error codes to portable TCP_ERR_* codes (errors.c). */
#ifndef ZIG_TCP_ERRORS_H
#define ZIG_TCP_ERRORS_H

#include <stdint.h>

int32_t error_from_os(int64_t os_error);
/* The same for the OS error of a bind or a connect, where Windows reports
 * running out of ephemeral ports as WSAENOBUFS: TCP_ERR_ADDRESS_NOT_AVAILABLE,
 * like Linux's EADDRNOTAVAIL, instead of TCP_ERR_NO_MEMORY. */
int32_t error_from_os_at_bind(int64_t os_error);

#endif /* ZIG_TCP_ERRORS_H */
