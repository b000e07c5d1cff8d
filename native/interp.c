/*
 * interp.c -- the interpreter backend: the record stream it runs (built
 * once per program from the shared analysis), token-threaded dispatch over
 * it in three variants of one loop (interp_body.h: gas metered, unmetered,
 * step tracing), and its backend table.
 */
#include "interp.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NONE PVM_NONE_U32

static void fill_rec(pvm_rec *r, const pvm_insn *in, pvm_op op) {
    pvm_operands o;
    pvm_insn_operands(in, &o);
    memset(r, 0, sizeof *r);
    r->op = (uint8_t)op;
    r->pc = in->pc;
    r->a = o.a;
    r->b = o.b;
    r->c = o.c;
    r->i = (int32_t)(uint32_t)o.imm;
    r->t = in->form == PVM_FORM_RI64 ? (uint32_t)(o.imm >> 32) : o.addr;
}

static void interp_free(void *code) {
    pvm_interp_code *ic = code;
    if (!ic)
        return;
    free(ic->recs);
    free(ic->insn_rec);
    free(ic->jt_rec);
    free(ic);
}

/* The interpreter's records: a CHARGE record before every block, one record
   per reachable instruction, a CHARGE + TRAP pair after a fallthrough into an
   invalid block, and a final TRAP sentinel. */
static pvm_interp_code *build_interp(const pvm_program *p) {
    uint32_t n = p->insn_count;
    pvm_interp_code *ic = calloc(1, sizeof *ic);
    if (!ic)
        return NULL;
    ic->insn_rec = malloc((n ? n : 1) * sizeof(uint32_t));
    ic->jt_rec = malloc((p->jump_table_len ? p->jump_table_len : 1) * sizeof(uint32_t));
    if (!ic->insn_rec || !ic->jt_rec)
        goto oom;
    /* 1. number the records */
    uint64_t r = 0;
    for (uint32_t i = 0; i < n; i++) {
        ic->insn_rec[i] = NONE;
        if (p->insn_block[i] == NONE)
            continue;
        if (p->insn_block[i] == i)
            r++;
        ic->insn_rec[i] = (uint32_t)r++;
        if (!(p->insn_flags[i] & PVM_IF_IMPLICIT) && p->code[p->insn_pc[i]] ==
                (uint8_t)pvm_isa_table[PVM_OP_FALLTHROUGH].opcode[p->isa]) {
            pvm_insn in;
            uint32_t t;
            pvm_program_insn(p, i, &in);
            if (pvm_falls_into_invalid(p, &in, pvm_program_lower(p, &in, &t)))
                r += 2;
        }
    }
    if (r >= NONE)
        goto oom;
    ic->rec_count = (uint32_t)r;
    ic->recs = malloc(((size_t)r + 1) * sizeof(pvm_rec));
    if (!ic->recs)
        goto oom;
    /* 2. fill them */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = ic->insn_rec[i];
        if (k == NONE)
            continue;
        pvm_insn in;
        pvm_program_insn(p, i, &in);
        if (p->insn_block[i] == i) {
            pvm_rec *c = &ic->recs[k - 1];
            memset(c, 0, sizeof *c);
            c->op = PVM_XOP_CHARGE;
            c->pc = in.pc;
            c->t = p->block_cost[i];
        }
        uint32_t t;
        pvm_op op = pvm_program_lower(p, &in, &t);
        fill_rec(&ic->recs[k], &in, op);
        if (t != NONE)
            ic->recs[k].t = ic->insn_rec[t] - 1; /* the target's CHARGE record */
        if (pvm_falls_into_invalid(p, &in, op)) {
            pvm_rec *c = &ic->recs[k + 1], *tr = &ic->recs[k + 2];
            memset(c, 0, 2 * sizeof *c);
            c->op = PVM_XOP_CHARGE;
            c->pc = in.pc + in.len;
            c->t = p->invalid_block_cost;
            tr->op = PVM_XOP_TRAP;
            tr->pc = in.pc + in.len;
        }
    }
    /* a sentinel so that falling past the last record traps */
    memset(&ic->recs[r], 0, sizeof(pvm_rec));
    ic->recs[r].op = PVM_XOP_TRAP;
    ic->recs[r].pc = p->code_len;
    for (uint32_t k = 0; k < p->jump_table_len; k++) {
        uint32_t t = pvm_program_target(p, p->jump_table[k]);
        ic->jt_rec[k] = t == NONE ? NONE : ic->insn_rec[t] - 1;
    }
    return ic;
oom:
    interp_free(ic);
    return NULL;
}

static pthread_mutex_t interp_lock = PTHREAD_MUTEX_INITIALIZER;

static const pvm_interp_code *program_interp(const pvm_program *cp, char *err, size_t err_len) {
    pvm_program *p = (pvm_program *)cp;
    pthread_mutex_lock(&interp_lock);
    pvm_interp_code *ic = p->cache[PVM_CACHE_INTERP].code;
    if (!ic) {
        ic = build_interp(p);
        if (ic) {
            p->cache[PVM_CACHE_INTERP].release = interp_free;
            p->cache[PVM_CACHE_INTERP].code = ic;
        } else {
            pvm_set_err(err, err_len, "out of memory while building the interpreter's records");
        }
    }
    pthread_mutex_unlock(&interp_lock);
    return ic;
}


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

static int interp_at(pvm_instance *vm, uint32_t rec) {
    if (vm->step_tracing)
        return interp_stepping(vm, rec);
    vm->step_skip = PVM_NONE_U32;
    if (vm->gas_metering)
        return interp_metered(vm, rec);
    return interp_unmetered(vm, rec);
}

static int interp_run(pvm_instance *vm, uint32_t insn, int mid) {
    if (insn == NONE)
        return interp_at(vm, vm->resume);
    const uint32_t *insn_rec = pvm_interp_code_of(vm->prog)->insn_rec;
    if (!mid)
        return interp_at(vm, insn_rec[insn] - 1); /* the block's CHARGE record */
    vm->resume = insn_rec[insn]; /* paid: a Step or retry must not charge again */
    return interp_at(vm, vm->resume);
}

static int interp_instantiate(pvm_instance *vm, const pvm_instance_config *cfg, const pvm_image *img,
                              char *err, size_t err_len) {
    if (!program_interp(vm->prog, err, err_len))
        return -1;
    if (cfg->worker) {
        pvm_set_err(err, err_len, "a sandbox worker runs JIT code only");
        return -1;
    }
    return pvm_memory_init(&vm->mem, cfg, img->ro, img->ro_len, img->rw, img->rw_len, err, err_len);
}

const pvm_backend pvm_backend_interp = {
    .name = "interpreter",
    .instantiate = interp_instantiate,
    .release = pvm_vm_release,
    .run = interp_run,
    .reset = pvm_vm_reset,
    .read = pvm_vm_read,
    .write = pvm_vm_write,
    .sbrk = pvm_vm_sbrk,
};
