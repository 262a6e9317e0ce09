/* errors.h -- OS error codes to portable TCP_ERR_* codes (errors.c). */
#ifndef ZIG_TCP_ERRORS_H
#define ZIG_TCP_ERRORS_H

#include <stdint.h>

int32_t error_from_os(int64_t os_error);

#endif /* ZIG_TCP_ERRORS_H */
