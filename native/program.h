/*
 * program.h -- a validated program: the analysis every backend shares
 * (instruction starts, basic blocks, valid jump targets, gas per block, the
 * lowered form and the operands of each instruction).  Backends keep what
 * they build from it (interpreter records, machine code) in its cache
 * slots; nothing here depends on their formats.
 */
#ifndef PVM_PROGRAM_H
#define PVM_PROGRAM_H

#include "decode.h"

#include <sys/mman.h>

/* Faults in, with one call, the whole pages of [p, p + len) (memory just
   allocated that a walk is about to write through): a page fault per 4 KiB
   written costs 2-3 us on this kind of VM, about 30 % less when the kernel
   fills the range in one go.  Only a hint, for ranges of 64 KiB and more. */
static inline void pvm_prefault(void *p, size_t len) {
#ifdef MADV_POPULATE_WRITE
    uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t e = ((uintptr_t)p + len) & ~(uintptr_t)4095;
    if (e >= a + 65536)
        (void)madvise((void *)a, e - a, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)len;
#endif
}

/* Per-instruction flags of the shared analysis. */
enum { PVM_IF_TARGET = 1, PVM_IF_IMPLICIT = 2 };

/* Code a backend built from a program (the interpreter's records, the JIT's
   machine code), kept with the program and released with it through the
   backend's own function: the analysis knows nothing of its format. */
enum { PVM_CACHE_INTERP = 0, PVM_CACHE_JIT = 1 /* + metered: 1 unmetered, 2 metered */, PVM_CACHE_COUNT = 3 };
typedef struct {
    void *code;
    void (*release)(void *code);
} pvm_program_cache;

/* The program analysis every backend shares (isa.md 6.1, gas.md 2): the
   listing (every instruction start plus an implicit `invalid` wherever
   execution could run off), basic blocks, valid jump targets and gas per
   block.  About 13 bytes per instruction plus 0.2 per code byte; the operands
   are decoded again from the code where a backend needs them. */
struct pvm_program {
    int isa;
    int is_64;
    uint32_t flags;
    uint8_t *code;
    uint32_t code_len;
    uint8_t *bitmask;
    uint32_t *jump_table;
    uint32_t jump_table_len;
    uint32_t costs[PVM_OP_COUNT_WITH_INVALID]; /* simple model (all 1 under the full one) */
    int cost_kind;           /* PVM_COST_SIMPLE or PVM_COST_FULL */
    uint32_t memory_access_cost; /* full model: load latency */
    uint32_t invalid_block_cost; /* cost of a block that is just an `invalid` */

    uint32_t insn_count;     /* listing entries */
    uint32_t *insn_pc;       /* per insn: its code offset */
    uint8_t *insn_flags;     /* per insn: PVM_IF_* */
    uint32_t *insn_block;    /* per insn: insn index of its block start, NONE if unreachable */
    uint32_t *block_cost;    /* per insn: cost of the block it starts (0 if not a start) */
    uint64_t *starts;        /* listing positions as a bitmap (code_len + 64 bits) */
    uint32_t *starts_rank;   /* per 64-bit word of `starts`: set bits before it */
    uint32_t block_count;
    uint32_t real_count;
    size_t jit_code_limit;   /* most bytes of machine code the JIT may emit */

    pvm_program_cache cache[PVM_CACHE_COUNT]; /* built by the backends on first use */
};

/* Set bits of x, without a library call (the core is built for any
   x86-64, so __builtin_popcountll is a call to libgcc's table version). */
static inline uint32_t pvm_popcount64(uint64_t x) {
    x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
    x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
    x = (x + (x >> 4)) & UINT64_C(0x0F0F0F0F0F0F0F0F);
    return (uint32_t)((x * UINT64_C(0x0101010101010101)) >> 56);
}

/* Insn index of the real instruction starting at pc, NONE if none. */
static inline uint32_t pvm_program_insn_at(const pvm_program *p, uint32_t pc) {
    if (pc >= p->code_len || !pvm_bit(p->bitmask, pc))
        return PVM_NONE_U32;
    uint32_t w = pc >> 6;
    uint64_t below = p->starts[w] & ((UINT64_C(1) << (pc & 63)) - 1);
    return p->starts_rank[w] + pvm_popcount64(below);
}

/* Decodes listing entry i (an implicit entry is an `invalid` of length 1). */
void pvm_program_insn(const pvm_program *p, uint32_t i, pvm_insn *out);

/* pvm_program_insn for a backend walking the listing in order: the same
   result, with the length taken from the listing (the next entry starts at
   the next bitmask bit after pc, or right after the instruction when that
   is an implicit `invalid`; skip is capped at 24, isa.md 2.1) instead of
   searched for in the bitmask again. */
static inline void pvm_program_decode(const pvm_program *p, uint32_t i, pvm_insn *out) {
    uint32_t pc = p->insn_pc[i];
    if (p->insn_flags[i] & PVM_IF_IMPLICIT) {
        *out = (pvm_insn){.pc = pc, .len = 1, .op = PVM_OP_INVALID, .implicit = 1};
        return;
    }
    uint32_t next = i + 1 < p->insn_count ? p->insn_pc[i + 1] : p->code_len;
    uint32_t skip = next - pc - 1;
    if (skip > PVM_BITMASK_MAX)
        skip = PVM_BITMASK_MAX;
    pvm_decode_at(p->code, p->code_len, pc, skip, pvm_opcode_map[p->isa][p->code[pc]], out);
}

/* Insn index of a valid jump target at pc (isa.md 6.1), NONE if pc is none. */
static inline uint32_t pvm_program_target(const pvm_program *p, uint32_t pc) {
    uint32_t i = pvm_program_insn_at(p, pc);
    if (i == PVM_NONE_U32 || !(p->insn_flags[i] & PVM_IF_TARGET))
        return PVM_NONE_U32;
    return i;
}

/* Whether an instruction really starts at next(o) (isa.md 2.2). */
static inline bool pvm_next_valid(const pvm_program *p, const pvm_insn *in) {
    uint64_t n = (uint64_t)in->pc + in->len;
    if (n >= p->code_len)
        return false;
    if (in->len - 1 == PVM_BITMASK_MAX && !pvm_bit(p->bitmask, (uint32_t)n))
        return false;
    return true;
}

/* What a backend runs for a reachable instruction: its op, or one of the
   lowered PVM_XOP_* forms (a trap for an invalid static target, the Latest32
   variants ...); *target gets the insn index of a static jump/branch target.
   Shared by the interpreter and the JIT (inline: the JIT calls it for every
   instruction).  pvm_lower_op: the op's Latest32 form where it has one. */
/* (a table, not a switch: the JIT asks for every instruction of a Latest32
   program, and the switch was a chain of six compares) */
static const uint8_t PVM_LOWER_32[PVM_OP_INVALID] = {
    [PVM_OP_MUL_UPPER_SIGNED_SIGNED] = PVM_XOP_MUL_UPPER_SS_32,
    [PVM_OP_MUL_UPPER_UNSIGNED_UNSIGNED] = PVM_XOP_MUL_UPPER_UU_32,
    [PVM_OP_MUL_UPPER_SIGNED_UNSIGNED] = PVM_XOP_MUL_UPPER_SU_32,
    [PVM_OP_REVERSE_BYTE] = PVM_XOP_REVERSE_BYTE_32,
    [PVM_OP_SBRK] = PVM_XOP_SBRK_32,
    [PVM_OP_MEMSET] = PVM_XOP_MEMSET_32,
};
_Static_assert(PVM_LOWERED_COUNT <= 256, "the lowered forms fit PVM_LOWER_32's bytes");

static inline pvm_op pvm_lower_op(const pvm_program *p, pvm_op op) {
    if (p->is_64 || (unsigned)op >= PVM_OP_INVALID || !PVM_LOWER_32[op])
        return op;
    return (pvm_op)PVM_LOWER_32[op];
}

static inline pvm_op pvm_program_lower(const pvm_program *p, const pvm_insn *in, uint32_t *target) {
    *target = PVM_NONE_U32;
    pvm_op op = (pvm_op)in->op;
    if (op >= PVM_OP_INVALID)
        return PVM_XOP_TRAP;
    if (op == PVM_OP_JUMP || op == PVM_OP_LOAD_IMM_AND_JUMP) {
        uint32_t t = pvm_program_target(p, in->target);
        if (t == PVM_NONE_U32)
            return op == PVM_OP_JUMP ? PVM_XOP_TRAP : PVM_XOP_LOAD_IMM_TRAP;
        *target = t;
        return op;
    }
    if (pvm_isa_table[op].flags & PVM_F_BRANCH) {
        uint32_t t = pvm_program_target(p, in->target);
        uint32_t f = pvm_next_valid(p, in) ? pvm_program_target(p, in->pc + in->len) : PVM_NONE_U32;
        if (t == PVM_NONE_U32 || f == PVM_NONE_U32)
            return PVM_XOP_TRAP;
        *target = t;
        return op;
    }
    if (op == PVM_OP_FALLTHROUGH && !pvm_next_valid(p, in)) {
        uint64_t nx = (uint64_t)in->pc + in->len;
        if (nx >= p->code_len && !(p->flags & PVM_PROG_JAM_FALLTHROUGH))
            return PVM_XOP_TRAP; /* PolkaVM 0.35: trap at the fallthrough itself */
    }
    return pvm_lower_op(p, op);
}

/* A `fallthrough` whose next(o) is no instruction falls into a one-instruction
   `invalid` block there (JAM trailer / gap). */
static inline bool pvm_falls_into_invalid(const pvm_program *p, const pvm_insn *in, pvm_op lowered) {
    return lowered == PVM_OP_FALLTHROUGH && !pvm_next_valid(p, in);
}

/* An instruction's operands in the one shape every backend reads them in,
   whatever its form (isa.md 3):
     a, b, c : registers -- RRR: a=rd b=ra c=rb; RR: a=rd b=ra; otherwise
               a=ra b=rb
     imm     : the value immediate, sign-extended to 64 bits (RI, RIO, RRI,
               RRII: the first immediate; II, RII: the second; RI64: the
               literal)
     addr    : the 32-bit address / offset / host call number immediate (I,
               II, RI, RII, RRI: the first immediate; RRII: the second) */
typedef struct {
    uint8_t a, b, c;
    uint64_t imm;
    uint32_t addr;
} pvm_operands;

static inline void pvm_insn_operands(const pvm_insn *in, pvm_operands *o) {
    uint64_t sx1 = (uint64_t)(int64_t)in->imm1, sx2 = (uint64_t)(int64_t)in->imm2;
    o->a = o->b = o->c = 0;
    o->imm = 0;
    o->addr = 0;
    switch (in->form) {
    case PVM_FORM_I: o->addr = (uint32_t)in->imm1; break;
    case PVM_FORM_II: o->addr = (uint32_t)in->imm1; o->imm = sx2; break;
    case PVM_FORM_RI: o->a = in->ra; o->imm = sx1; o->addr = (uint32_t)in->imm1; break;
    case PVM_FORM_RIO: o->a = in->ra; o->imm = sx1; break;
    case PVM_FORM_RII: o->a = in->ra; o->addr = (uint32_t)in->imm1; o->imm = sx2; break;
    case PVM_FORM_RR: o->a = in->rd; o->b = in->ra; break;
    case PVM_FORM_RRI: o->a = in->ra; o->b = in->rb; o->imm = sx1; o->addr = (uint32_t)in->imm1; break;
    case PVM_FORM_RRO: o->a = in->ra; o->b = in->rb; break;
    case PVM_FORM_RRII: o->a = in->ra; o->b = in->rb; o->imm = sx1; o->addr = (uint32_t)in->imm2; break;
    case PVM_FORM_RRR: o->a = in->rd; o->b = in->ra; o->c = in->rb; break;
    case PVM_FORM_RI64: o->a = in->ra; o->imm = in->imm64; break;
    default: break; /* A, O: none */
    }
}

/* The table row of op (NULL for `invalid` and the lowered forms). */
static inline const pvm_insn_info *pvm_op_row(pvm_op op) {
    return (unsigned)op < PVM_OP_INVALID ? &pvm_isa_table[op] : NULL;
}

#endif
