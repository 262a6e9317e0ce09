/* zt_assert.h -- executable invariants.
 *
 * ZT_ASSERT(cond) is on in Debug, ReleaseSafe, the sanitizer and fuzz builds
 * (build.zig defines ZIG_TCP_ASSERTS=0 only for ReleaseFast). A failed
 * invariant prints where it failed and aborts: a broken invariant in an I/O
 * engine means memory is about to be reused wrongly, and stopping is safer than
 * going on. */
#ifndef ZIG_TCP_ZT_ASSERT_H
#define ZIG_TCP_ZT_ASSERT_H

#ifndef ZIG_TCP_ASSERTS
#define ZIG_TCP_ASSERTS 1
#endif

#if defined(__GNUC__) || defined(__clang__)
__attribute__((noreturn))
#endif
void zt_assert_fail(const char *expr, const char *file, int line);

#if ZIG_TCP_ASSERTS
#define ZT_ASSERT(cond) ((cond) ? (void)0 : zt_assert_fail(#cond, __FILE__, __LINE__))
#else
#define ZT_ASSERT(cond) ((void)0)
#endif

#endif /* ZIG_TCP_ZT_ASSERT_H */
