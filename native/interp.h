/*
 * interp.h -- the interpreter backend: its pre-decoded record stream, built
 * from the shared program analysis on the first interpreter instance of a
 * program, and its entry in the backend table.
 */
#ifndef PVM_INTERP_H
#define PVM_INTERP_H

#include "vm.h"

/* Record operations: the lowered ops of internal.h, plus a block's charge. */
#define PVM_XOP_CHARGE PVM_LOWERED_COUNT /* charge t gas for the block that follows */
#define PVM_XOP_COUNT (PVM_XOP_CHARGE + 1)

/* One pre-decoded record (16 bytes).  Operand use per op (pvm_operands):
     a, b, c : registers
     t       : target record index, or the 32-bit immediate / address / offset;
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

/* The interpreter's records of a program (its PVM_CACHE_INTERP slot). */
typedef struct {
    pvm_rec *recs;
    uint32_t rec_count;
    uint32_t *insn_rec;      /* per insn: record index, NONE if none */
    uint32_t *jt_rec;        /* per jump-table entry: CHARGE record of the target, NONE if invalid */
} pvm_interp_code;

static inline const pvm_interp_code *pvm_interp_code_of(const pvm_program *p) {
    return (const pvm_interp_code *)p->cache[PVM_CACHE_INTERP].code;
}

extern const pvm_backend pvm_backend_interp;

#endif
