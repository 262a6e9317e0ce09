/*
 * sim_no_uv.c -- the simulation test's engine has no libuv. engine.c names
 * backend_uv among the candidates on every Unix target, so this stands in for
 * it: a backend that never starts. The test forces ZIG_TCP_BACKEND=sim, so
 * it is never even tried.
 */
#include "backend.h"

static int32_t no_uv_create(backend_sink *sink, backend **out) {
  (void)sink;
  (void)out;
  return TCP_ERR_UNSUPPORTED;
}

const backend_vtable backend_uv = {
    .name = "uv",
    .create = no_uv_create,
};
