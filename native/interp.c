/*
 * interp.c -- the interpreter: token-threaded dispatch over the records
 * built by program.c.  Three variants of one loop (interp_body.h): gas
 * metered, unmetered, and step tracing.
 */
#include "instance.h"

#include <string.h>

static inline uint32_t rotr32(uint32_t v, unsigned n) { return n ? (v >> n) | (v << (32 - n)) : v; }
static inline uint32_t rotl32(uint32_t v, unsigned n) { return n ? (v << n) | (v >> (32 - n)) : v; }
static inline uint64_t rotr64(uint64_t v, unsigned n) { return n ? (v >> n) | (v << (64 - n)) : v; }
static inline uint64_t rotl64(uint64_t v, unsigned n) { return n ? (v << n) | (v >> (64 - n)) : v; }

/* Division and remainder never trap (isa.md 5.4). */
static inline uint32_t divu32(uint32_t a, uint32_t b) { return b ? a / b : UINT32_MAX; }
static inline uint32_t remu32(uint32_t a, uint32_t b) { return b ? a % b : a; }
static inline uint64_t divu64(uint64_t a, uint64_t b) { return b ? a / b : UINT64_MAX; }
static inline uint64_t remu64(uint64_t a, uint64_t b) { return b ? a % b : a; }
static inline uint32_t divs32(uint32_t a, uint32_t b) {
    int32_t x = (int32_t)a, y = (int32_t)b;
    if (y == 0)
        return UINT32_MAX;
    if (x == INT32_MIN && y == -1)
        return a;
    return (uint32_t)(x / y);
}
static inline uint32_t rems32(uint32_t a, uint32_t b) {
    int32_t x = (int32_t)a, y = (int32_t)b;
    if (y == 0)
        return a;
    if (x == INT32_MIN && y == -1)
        return 0;
    return (uint32_t)(x % y);
}
static inline uint64_t divs64(uint64_t a, uint64_t b) {
    int64_t x = (int64_t)a, y = (int64_t)b;
    if (y == 0)
        return UINT64_MAX;
    if (x == INT64_MIN && y == -1)
        return a;
    return (uint64_t)(x / y);
}
static inline uint64_t rems64(uint64_t a, uint64_t b) {
    int64_t x = (int64_t)a, y = (int64_t)b;
    if (y == 0)
        return a;
    if (x == INT64_MIN && y == -1)
        return 0;
    return (uint64_t)(x % y);
}

static inline uint64_t mulh_uu64(uint64_t a, uint64_t b) {
    return (uint64_t)(((unsigned __int128)a * b) >> 64);
}
static inline uint64_t mulh_ss64(uint64_t a, uint64_t b) {
    __int128 p = (__int128)(int64_t)a * (__int128)(int64_t)b;
    return (uint64_t)((unsigned __int128)p >> 64);
}
static inline uint64_t mulh_su64(uint64_t a, uint64_t b) {
    __int128 p = (__int128)(int64_t)a * (__int128)(unsigned __int128)b;
    return (uint64_t)((unsigned __int128)p >> 64);
}

#define INTERP_FN interp_metered
#define INTERP_GAS 1
#define INTERP_STEP 0
#include "interp_body.h"
#undef INTERP_FN
#undef INTERP_GAS
#undef INTERP_STEP

#define INTERP_FN interp_unmetered
#define INTERP_GAS 0
#define INTERP_STEP 0
#include "interp_body.h"
#undef INTERP_FN
#undef INTERP_GAS
#undef INTERP_STEP

#define INTERP_FN interp_stepping
#define INTERP_GAS (vm->gas_metering)
#define INTERP_STEP 1
#include "interp_body.h"
#undef INTERP_FN
#undef INTERP_GAS
#undef INTERP_STEP

int pvm_interp_run(pvm_instance *vm, uint32_t rec) {
    if (vm->step_tracing)
        return interp_stepping(vm, rec);
    vm->step_skip = PVM_NONE_U32;
    if (vm->gas_metering)
        return interp_metered(vm, rec);
    return interp_unmetered(vm, rec);
}
