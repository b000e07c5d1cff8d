/*
 * program.h -- a validated program: decoded instructions, basic blocks,
 * valid jump targets, gas per block, and the pre-decoded record stream the
 * interpreter runs.  Shared by every backend.
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

/* One pre-decoded record (24 bytes).  Operand use per op:
     a, b, c : registers (RRR: a=rd b=ra c=rb; RRI: a=ra b=rb; RR: a=rd b=ra)
     t       : target record index, or a 32-bit immediate / address / offset
     i       : 64-bit immediate (sign-extended) or block cost */
typedef struct {
    uint16_t op;
    uint8_t a, b, c;
    uint8_t pad;
    uint32_t pc;
    uint32_t t;
    uint32_t pad2;
    uint64_t i;
} pvm_rec;

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

    pvm_insn *insns;         /* listing order: every instruction start + implicit invalids */
    uint32_t insn_count;
    uint32_t *pc_to_insn;    /* code_len entries: insn index of a real instruction start, else NONE */
    uint32_t *insn_block;    /* per insn: insn index of its block start, NONE if unreachable */
    uint32_t *insn_rec;      /* per insn: record index, NONE if none */
    uint8_t *insn_target;    /* per insn: 1 if a valid jump target */
    uint32_t *block_cost;    /* per insn: cost of the block it starts (0 if not a start) */
    uint32_t block_count;
    uint32_t real_count;

    pvm_rec *recs;
    uint32_t rec_count;
    uint32_t *jt_rec;        /* per jump-table entry: CHARGE record of the target, NONE if invalid */

    struct pvm_jit_code *jit[2]; /* JIT code (unmetered, metered), built on first use */
};

void pvm_jit_free(struct pvm_jit_code *c);

/* Whether an instruction really starts at next(o) (isa.md 2.2). */
static inline bool pvm_next_valid(const pvm_program *p, const pvm_insn *in) {
    uint64_t n = (uint64_t)in->pc + in->len;
    if (n >= p->code_len)
        return false;
    if (in->len - 1 == PVM_BITMASK_MAX && !pvm_bit(p->bitmask, (uint32_t)n))
        return false;
    return true;
}

#endif
