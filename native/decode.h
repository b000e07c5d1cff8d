/*
 * decode.h -- the operand decoder (shared/spec/isa.md section 3), inline so
 * that a backend walking the listing decodes in its own loop.  decode.c's
 * pvm_decode_one is this plus finding skip(pc) in the bitmask; the JIT gets
 * skip from the program's listing instead (pvm_program_decode, program.h).
 */
#ifndef PVM_DECODE_H
#define PVM_DECODE_H

#include "internal.h"

#include <string.h>

/* imm(p, l): l-byte little-endian integer, sign-extended from 8*l bits. */
static inline int32_t pvm_read_imm(const uint8_t *b, unsigned p, unsigned l) {
    if (l == 0)
        return 0;
    uint32_t v; /* b holds 24 bytes, p + 4 <= 24: read 4, keep l */
    memcpy(&v, b + p, 4);
    if (l == 4)
        return (int32_t)v;
    /* sign-extend without relying on implementation-defined shifts */
    uint32_t sign = 1u << (8 * l - 1);
    v &= (1u << (8 * l)) - 1;
    return (int32_t)((v ^ sign) - sign);
}

static inline uint8_t pvm_reg_of(uint8_t x) {
    x &= 0xF;
    return x > 12 ? 12 : x;
}

static inline unsigned pvm_clamp4(int64_t x) {
    return x < 0 ? 0 : x > 4 ? 4 : (unsigned)x;
}

/* The two immediates of the II, RII / RIO and RRII forms (isa.md 3): the
   byte at operand offset k holds the first one's length in its low three
   bits (`nib`: that byte, or its high nibble for RII / RIO), clamped to 4;
   the first immediate follows it, the second takes the rest of the
   instruction, clamped to 4. */
static inline void pvm_read_two_imms(const uint8_t *b, unsigned k, uint8_t nib, uint32_t skip, pvm_insn *out) {
    unsigned l1 = nib & 7u;
    if (l1 > 4)
        l1 = 4;
    unsigned l2 = pvm_clamp4((int64_t)skip - l1 - k - 1);
    out->imm1 = pvm_read_imm(b, k + 1, l1);
    out->imm2 = pvm_read_imm(b, k + 1 + l1, l2);
}

/* Decodes the instruction at pc < code_len whose skip(pc) is `skip`, with
   op = its op (pvm_opcode_map).  Reads code[pc .. min(pc + 17, code_len))
   only; operand bytes past the code end read as zero. */
static inline void pvm_decode_at(const uint8_t *code, uint32_t code_len, uint32_t pc, uint32_t skip,
                                 unsigned op, pvm_insn *out) {
    *out = (pvm_insn){.pc = pc, .len = 1 + skip, .op = (uint16_t)op, .opcode = code[pc]};
    if (op >= PVM_OP_INVALID) {
        out->form = PVM_FORM_A;
        return;
    }
    /* operand bytes: at most 16 after the opcode (the fields below read the
       first 10), zero past the code end */
    uint8_t pad[24];
    const uint8_t *b;
    uint32_t avail = code_len - pc - 1;
    if (avail >= 16) {
        b = code + pc + 1;
    } else {
        memset(pad, 0, sizeof pad);
        memcpy(pad, code + pc + 1, avail < 16 ? avail : 16);
        b = pad;
    }
    unsigned form = pvm_isa_table[op].form;
    out->form = (uint8_t)form;
    switch (form) {
    case PVM_FORM_A:
        break;
    case PVM_FORM_I:
        out->imm1 = pvm_read_imm(b, 0, skip < 4 ? skip : 4);
        break;
    case PVM_FORM_O:
        out->imm1 = pvm_read_imm(b, 0, skip < 4 ? skip : 4);
        out->target = pc + (uint32_t)out->imm1;
        break;
    case PVM_FORM_II:
        pvm_read_two_imms(b, 0, b[0], skip, out);
        break;
    case PVM_FORM_RI:
        out->ra = pvm_reg_of(b[0]);
        out->imm1 = pvm_read_imm(b, 1, pvm_clamp4((int64_t)skip - 1));
        break;
    case PVM_FORM_RIO:
    case PVM_FORM_RII:
        out->ra = pvm_reg_of(b[0]);
        pvm_read_two_imms(b, 0, (uint8_t)(b[0] >> 4), skip, out);
        if (form == PVM_FORM_RIO)
            out->target = pc + (uint32_t)out->imm2;
        break;
    case PVM_FORM_RR:
        out->rd = pvm_reg_of(b[0]);
        out->ra = pvm_reg_of(b[0] >> 4);
        break;
    case PVM_FORM_RRI:
    case PVM_FORM_RRO:
        out->ra = pvm_reg_of(b[0]);
        out->rb = pvm_reg_of(b[0] >> 4);
        out->imm1 = pvm_read_imm(b, 1, pvm_clamp4((int64_t)skip - 1));
        if (form == PVM_FORM_RRO)
            out->target = pc + (uint32_t)out->imm1;
        break;
    case PVM_FORM_RRII:
        out->ra = pvm_reg_of(b[0]);
        out->rb = pvm_reg_of(b[0] >> 4);
        pvm_read_two_imms(b, 1, b[1], skip, out);
        break;
    case PVM_FORM_RRR:
        out->ra = pvm_reg_of(b[0]);
        out->rb = pvm_reg_of(b[0] >> 4);
        out->rd = pvm_reg_of(b[1]);
        break;
    case PVM_FORM_RI64:
        out->ra = pvm_reg_of(b[0]);
        for (unsigned i = 0; i < 8; i++)
            out->imm64 |= (uint64_t)b[1 + i] << (8 * i);
        break;
    default:
        break;
    }
}

#endif
