/*
 * internal.h -- declarations shared by the native core's translation units.
 */
#ifndef PVM_INTERNAL_H
#define PVM_INTERNAL_H

#include "pvm.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#define PVM_LIKELY(x) __builtin_expect(!!(x), 1)
#define PVM_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Internal operation numbers: the rows of isa.def, `invalid`, then the
   lowered forms the program analysis gives an instruction in context
   (pvm_program_lower): every backend implements every one of them, and the
   JIT's lowering is a switch over this enum with no default, so a row
   without a lowering does not build. */
typedef enum pvm_op {
#define PVM_INSN(NAME, MN, FORM, R, L32, L64, J, FLAGS, PIPE, CLASS, W, SG) PVM_OP_##NAME,
#include "isa.def"
#undef PVM_INSN
    PVM_OP_INVALID,
    PVM_XOP_TRAP,            /* trap at pc (a jump or branch to an invalid target, ...) */
    PVM_XOP_LOAD_IMM_TRAP,   /* load_imm_and_jump to an invalid target: write, then trap */
    PVM_XOP_MUL_UPPER_SS_32, /* Latest32 forms of the 64-bit-only semantics */
    PVM_XOP_MUL_UPPER_UU_32,
    PVM_XOP_MUL_UPPER_SU_32,
    PVM_XOP_REVERSE_BYTE_32,
    PVM_XOP_SBRK_32,
    PVM_XOP_MEMSET_32,
} pvm_op;

#define PVM_OP_COUNT_WITH_INVALID (PVM_OP_INVALID + 1)
#define PVM_LOWERED_COUNT (PVM_XOP_MEMSET_32 + 1)

#define PVM_NUM_REGS 13
#define PVM_BITMASK_MAX 24u
#define PVM_ADDR_RETURN_TO_HOST 0xFFFF0000u
#define PVM_ADDRESS_SPACE_BOTTOM 0x10000u
#define PVM_ADDRESS_SPACE_TOP 0xFFFF0000u
#define PVM_MIN_PAGE_SIZE 0x1000u
#define PVM_MAX_PAGE_SIZE 0x10000u
#define PVM_MAX_CODE_SIZE (32u * 1024u * 1024u)
#define PVM_MAX_JUMP_TABLE_ENTRIES (16u * 1024u * 1024u)
/* Default bound on the machine code the JIT emits for one program: what a
   sandbox worker's code region holds (sandbox/protocol.h), so a program that
   compiles in-process also loads into a worker. */
#define PVM_JIT_CODE_LIMIT ((size_t)64 << 20)
#define PVM_FAULT_TRAP_THRESHOLD 0x4000u
#define PVM_NONE_U32 0xFFFFFFFFu

extern const pvm_insn_info pvm_isa_table[PVM_OP_INVALID];
/* opcode byte -> op, per instruction set (PVM_OP_INVALID if unknown). */
extern uint8_t pvm_opcode_map[PVM_ISA_COUNT][256];
void pvm_isa_init(void);

static inline bool pvm_bit(const uint8_t *bitmask, uint32_t i) {
    return (bitmask[i >> 3] >> (i & 7)) & 1;
}

void pvm_set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline bool pvm_op_is_term(unsigned op) {
    return op >= PVM_OP_INVALID || (pvm_isa_table[op].flags & PVM_F_TERM);
}
static inline bool pvm_op_can_fall(unsigned op) {
    return op < PVM_OP_INVALID && !(pvm_isa_table[op].flags & PVM_F_NOFALL);
}

#endif
