/*
 * program.h -- a validated program: the shared analysis (instruction
 * starts, basic blocks, valid jump targets, gas per block) and, built on
 * demand, the pre-decoded record stream the interpreter runs.
 */
#ifndef PVM_PROGRAM_H
#define PVM_PROGRAM_H

#include "internal.h"

/* Extra record operations beyond the instructions of isa.def. */
enum pvm_xop {
    PVM_XOP_CHARGE = PVM_OP_COUNT_WITH_INVALID, /* charge i gas for the block that follows */
    PVM_XOP_TRAP,            /* trap at pc */
    PVM_XOP_LOAD_IMM_TRAP,   /* load_imm_and_jump to an invalid target: write, then trap */
    PVM_XOP_MUL_UPPER_SS_32, /* Latest32 forms of the 64-bit-only semantics */
    PVM_XOP_MUL_UPPER_UU_32,
    PVM_XOP_MUL_UPPER_SU_32,
    PVM_XOP_REVERSE_BYTE_32,
    PVM_XOP_SBRK_32,
    PVM_XOP_MEMSET_32,
    PVM_XOP_COUNT
};

/* One pre-decoded record (16 bytes).  Operand use per op:
     a, b, c : registers (RRR: a=rd b=ra c=rb; RRI: a=ra b=rb; RR: a=rd b=ra)
     t       : target record index, or a 32-bit immediate / address / offset;
               the block cost of a CHARGE; the upper half of a load_imm64
     i       : 32-bit immediate, sign-extended to 64 bits on use (the lower
               half of a load_imm64) */
typedef struct {
    uint8_t op;
    uint8_t a, b, c;
    uint32_t pc;
    uint32_t t;
    int32_t i;
} pvm_rec;
_Static_assert(PVM_XOP_COUNT <= 256, "record ops fit a byte");
_Static_assert(sizeof(pvm_rec) == 16, "records are 16 bytes");

/* Per-instruction flags of the shared analysis. */
enum { PVM_IF_TARGET = 1, PVM_IF_IMPLICIT = 2 };

/* The interpreter's records, built on the first interpreter instance. */
typedef struct {
    pvm_rec *recs;
    uint32_t rec_count;
    uint32_t *insn_rec;      /* per insn: record index, NONE if none */
    uint32_t *jt_rec;        /* per jump-table entry: CHARGE record of the target, NONE if invalid */
} pvm_interp_code;

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

    pvm_interp_code *interp; /* built on first use (pvm_program_interp) */
    struct pvm_jit_code *jit[2]; /* JIT code (unmetered, metered), built on first use */
};

void pvm_jit_free(struct pvm_jit_code *c);

/* Insn index of the real instruction starting at pc, NONE if none. */
static inline uint32_t pvm_program_insn_at(const pvm_program *p, uint32_t pc) {
    if (pc >= p->code_len || !pvm_bit(p->bitmask, pc))
        return PVM_NONE_U32;
    uint32_t w = pc >> 6;
    uint64_t below = p->starts[w] & ((UINT64_C(1) << (pc & 63)) - 1);
    return p->starts_rank[w] + (uint32_t)__builtin_popcountll(below);
}

/* Decodes listing entry i (an implicit entry is an `invalid` of length 1). */
void pvm_program_insn(const pvm_program *p, uint32_t i, pvm_insn *out);

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
   PVM_XOP_* forms (a trap for an invalid static target, the Latest32
   variants ...); *target gets the insn index of a static jump/branch target.
   Shared by the interpreter's records and the JIT. */
unsigned pvm_program_lower(const pvm_program *p, const pvm_insn *in, uint32_t *target);

/* A `fallthrough` whose next(o) is no instruction falls into a one-instruction
   `invalid` block there (JAM trailer / gap). */
static inline bool pvm_falls_into_invalid(const pvm_program *p, const pvm_insn *in, unsigned lowered) {
    return lowered == PVM_OP_FALLTHROUGH && !pvm_next_valid(p, in);
}

/* The interpreter's records, built once (thread-safe). NULL on failure. */
const pvm_interp_code *pvm_program_interp(const pvm_program *p, char *err, size_t err_len);

#endif
