/*
 * dart_api_dl.h -- zig_tcp's own declarations of the small part of the Dart
 * "dynamic linking" (DL) API ABI that the engine uses. Written from the
 * published Dart SDK headers (runtime/include/dart_api_dl.h, dart_native_api.h,
 * dart_api.h) as the reference; only layouts and values matter for the ABI.
 *
 * NativeApi.initializeApiDLData (dart:ffi) returns a pointer to a
 * dart_api_dl_data: a version pair and a NULL-terminated table of
 * {name, function} entries. The engine looks up the functions it needs by name.
 */
#ifndef ZIG_TCP_DART_API_DL_H
#define ZIG_TCP_DART_API_DL_H

#include <stdbool.h>
#include <stdint.h>

/* The DL API major version the engine is written against; a table with another
 * major version is refused. Minor versions only add entries. */
#define DART_DL_MAJOR_VERSION 2
#define DART_DL_MINOR_VERSION_MIN 0

typedef int64_t dart_port_id; /* Dart_Port */

typedef struct dart_api_dl_entry {
  const char *name;
  void (*function)(void);
} dart_api_dl_entry;

typedef struct dart_api_dl_data {
  int major;
  int minor;
  const dart_api_dl_entry *functions; /* ends with an entry whose name is NULL */
} dart_api_dl_data;

/* Dart_CObject_Type: the order is part of the ABI. */
typedef enum dart_cobject_type {
  DART_COBJECT_NULL = 0,
  DART_COBJECT_BOOL,
  DART_COBJECT_INT32,
  DART_COBJECT_INT64,
  DART_COBJECT_DOUBLE,
  DART_COBJECT_STRING,
  DART_COBJECT_ARRAY,
  DART_COBJECT_TYPED_DATA,
  DART_COBJECT_EXTERNAL_TYPED_DATA,
  DART_COBJECT_SEND_PORT,
  DART_COBJECT_CAPABILITY,
  DART_COBJECT_NATIVE_POINTER,
  DART_COBJECT_UNSUPPORTED,
  DART_COBJECT_UNMODIFIABLE_EXTERNAL_TYPED_DATA,
  DART_COBJECT_NUMBER_OF_TYPES
} dart_cobject_type;

/* Dart_TypedData_Type: the order is part of the ABI. */
typedef enum dart_typed_data_type {
  DART_TYPED_DATA_BYTE_DATA = 0,
  DART_TYPED_DATA_INT8,
  DART_TYPED_DATA_UINT8,
  DART_TYPED_DATA_UINT8_CLAMPED,
  DART_TYPED_DATA_INT16,
  DART_TYPED_DATA_UINT16,
  DART_TYPED_DATA_INT32,
  DART_TYPED_DATA_UINT32,
  DART_TYPED_DATA_INT64,
  DART_TYPED_DATA_UINT64,
  DART_TYPED_DATA_FLOAT32,
  DART_TYPED_DATA_FLOAT64,
  DART_TYPED_DATA_INT32X4,
  DART_TYPED_DATA_FLOAT32X4,
  DART_TYPED_DATA_FLOAT64X2,
  DART_TYPED_DATA_INVALID
} dart_typed_data_type;

/* Dart_HandleFinalizer: called by the VM when external typed data dies. */
typedef void (*dart_handle_finalizer)(void *isolate_callback_data, void *peer);

typedef struct dart_cobject {
  dart_cobject_type type;
  union {
    bool as_bool;
    int32_t as_int32;
    int64_t as_int64;
    double as_double;
    const char *as_string;
    struct {
      dart_port_id id;
      dart_port_id origin_id;
    } as_send_port;
    struct {
      int64_t id;
    } as_capability;
    struct {
      intptr_t length;
      struct dart_cobject **values;
    } as_array;
    struct {
      dart_typed_data_type type;
      intptr_t length;
      const uint8_t *values;
    } as_typed_data;
    struct {
      dart_typed_data_type type;
      intptr_t length;
      uint8_t *data;
      void *peer;
      dart_handle_finalizer callback;
    } as_external_typed_data;
    struct {
      intptr_t ptr;
      intptr_t size;
      dart_handle_finalizer callback;
    } as_native_pointer;
  } value;
} dart_cobject;

/* Dart_PostCObject: deep-copies message into port's queue. Returns false if the
 * port is closed; then external typed data in the message stays owned by the
 * caller (its finalizer will never run). Thread-safe. */
typedef bool (*dart_post_cobject_fn)(dart_port_id port, dart_cobject *message);
#define DART_POST_COBJECT_NAME "Dart_PostCObject"

#endif /* ZIG_TCP_DART_API_DL_H */
