/*
 * decode.c -- instruction boundaries and operand decoding
 * (shared/spec/isa.md sections 2 and 3).
 *
 * Everything here is a pure function of (isa, code, bitmask, pc) and never
 * reads outside code[0..code_len) or bitmask[0..ceil(code_len/8)).
 */
#include "internal.h"

#include <string.h>

uint32_t pvm_skip(const uint8_t *bitmask, uint32_t code_len, uint32_t pc) {
    /* Read the 32 bits of the bitmask that follow pc (bits past the code end
       count as set), then find the first set one. */
    uint32_t start = pc + 1;
    if (start >= code_len)
        return 0;
    uint32_t byte = start >> 3, shift = start & 7;
    uint32_t nbytes = (code_len + 7) >> 3;
    uint64_t window = 0;
    if (byte + 8 <= nbytes) {
        memcpy(&window, bitmask + byte, 8); /* little-endian: byte k at bits 8k */
        window &= (UINT64_C(1) << 40) - 1;  /* the 5 bytes the slow path reads */
    } else {
        for (uint32_t k = 0; k < 5 && byte + k < nbytes; k++)
            window |= (uint64_t)bitmask[byte + k] << (8 * k);
    }
    window >>= shift;
    uint64_t avail = code_len - start; /* bits that belong to real code */
    if (avail < 32)
        window |= ~UINT64_C(0) << avail;
    window |= UINT64_C(1) << PVM_BITMASK_MAX;
    return (uint32_t)__builtin_ctzll(window);
}

/* imm(p, l): l-byte little-endian integer, sign-extended from 8*l bits. */
static inline int32_t read_imm(const uint8_t *b, unsigned p, unsigned l) {
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

static inline uint8_t reg(uint8_t x) {
    x &= 0xF;
    return x > 12 ? 12 : x;
}

static inline unsigned clamp4(int64_t x) {
    return x < 0 ? 0 : x > 4 ? 4 : (unsigned)x;
}

void pvm_decode_one(int isa, const uint8_t *code, uint32_t code_len, const uint8_t *bitmask,
                    uint32_t pc, pvm_insn *out) {
    pvm_isa_init();
    memset(out, 0, sizeof *out);
    out->pc = pc;
    if (pc >= code_len) {
        out->len = 1;
        out->op = PVM_OP_INVALID;
        out->implicit = 1;
        return;
    }
    uint32_t skip = pvm_skip(bitmask, code_len, pc);
    out->len = 1 + skip;
    out->opcode = code[pc];
    unsigned op = (isa >= 0 && isa < PVM_ISA_COUNT) ? pvm_opcode_map[isa][code[pc]] : PVM_OP_INVALID;
    out->op = (uint16_t)op;
    if (op >= PVM_OP_INVALID) {
        out->form = PVM_FORM_A;
        return;
    }
    /* operand bytes: at most 16 after the opcode, zero past the code end */
    uint8_t b[24];
    uint32_t avail = code_len - pc - 1;
    if (avail >= 16) {
        memcpy(b, code + pc + 1, 16);
        memset(b + 16, 0, 8);
    } else {
        memset(b, 0, sizeof b);
        memcpy(b, code + pc + 1, avail);
    }
    unsigned form = pvm_isa_table[op].form;
    out->form = (uint8_t)form;
    unsigned l1, l2;
    switch (form) {
    case PVM_FORM_A:
        break;
    case PVM_FORM_I:
        out->imm1 = read_imm(b, 0, skip < 4 ? skip : 4);
        break;
    case PVM_FORM_O:
        out->imm1 = read_imm(b, 0, skip < 4 ? skip : 4);
        out->target = pc + (uint32_t)out->imm1;
        break;
    case PVM_FORM_II:
        l1 = b[0] & 7;
        if (l1 > 4)
            l1 = 4;
        l2 = clamp4((int64_t)skip - l1 - 1);
        out->imm1 = read_imm(b, 1, l1);
        out->imm2 = read_imm(b, 1 + l1, l2);
        break;
    case PVM_FORM_RI:
        out->ra = reg(b[0]);
        out->imm1 = read_imm(b, 1, clamp4((int64_t)skip - 1));
        break;
    case PVM_FORM_RIO:
    case PVM_FORM_RII:
        out->ra = reg(b[0]);
        l1 = (b[0] >> 4) & 7;
        if (l1 > 4)
            l1 = 4;
        l2 = clamp4((int64_t)skip - l1 - 1);
        out->imm1 = read_imm(b, 1, l1);
        out->imm2 = read_imm(b, 1 + l1, l2);
        if (form == PVM_FORM_RIO)
            out->target = pc + (uint32_t)out->imm2;
        break;
    case PVM_FORM_RR:
        out->rd = reg(b[0]);
        out->ra = reg(b[0] >> 4);
        break;
    case PVM_FORM_RRI:
    case PVM_FORM_RRO:
        out->ra = reg(b[0]);
        out->rb = reg(b[0] >> 4);
        out->imm1 = read_imm(b, 1, clamp4((int64_t)skip - 1));
        if (form == PVM_FORM_RRO)
            out->target = pc + (uint32_t)out->imm1;
        break;
    case PVM_FORM_RRII:
        out->ra = reg(b[0]);
        out->rb = reg(b[0] >> 4);
        l1 = b[1] & 7;
        if (l1 > 4)
            l1 = 4;
        l2 = clamp4((int64_t)skip - l1 - 2);
        out->imm1 = read_imm(b, 2, l1);
        out->imm2 = read_imm(b, 2 + l1, l2);
        break;
    case PVM_FORM_RRR:
        out->ra = reg(b[0]);
        out->rb = reg(b[0] >> 4);
        out->rd = reg(b[1]);
        break;
    case PVM_FORM_RI64:
        out->ra = reg(b[0]);
        for (unsigned i = 0; i < 8; i++)
            out->imm64 |= (uint64_t)b[1 + i] << (8 * i);
        break;
    default:
        break;
    }
}

/* Position after `pc` where the next instruction must start, and whether an
   instruction really starts there (isa.md 2.2). */
static bool next_is_valid(const uint8_t *bitmask, uint32_t code_len, uint32_t next, uint32_t skip) {
    if (next >= code_len)
        return false;
    if (skip == PVM_BITMASK_MAX && !pvm_bit(bitmask, next))
        return false;
    return true;
}

static uint32_t next_set_bit(const uint8_t *bitmask, uint32_t code_len, uint32_t from) {
    uint32_t i = from;
    while (i < code_len) {
        if ((i & 7) == 0 && bitmask[i >> 3] == 0) {
            i += 8;
            continue;
        }
        if (pvm_bit(bitmask, i))
            return i;
        i++;
    }
    return code_len;
}

size_t pvm_decode_listing(int isa, const uint8_t *code, uint32_t code_len,
                          const uint8_t *bitmask, pvm_insn *out, size_t cap) {
    size_t n = 0;
    uint32_t pc = next_set_bit(bitmask, code_len, 0);
    if (code_len > 0 && pc != 0) {
        /* bit 0 clear: an invalid instruction at 0 */
        if (n < cap) {
            memset(&out[n], 0, sizeof out[n]);
            out[n].pc = 0;
            out[n].len = 1;
            out[n].op = PVM_OP_INVALID;
            out[n].implicit = 1;
        }
        n++;
    }
    while (pc < code_len) {
        pvm_insn insn;
        pvm_decode_one(isa, code, code_len, bitmask, pc, &insn);
        if (n < cap)
            out[n] = insn;
        n++;
        uint32_t next = pc + insn.len;
        uint32_t skip = insn.len - 1;
        bool can_fall = insn.op < PVM_OP_INVALID && !(pvm_isa_table[insn.op].flags & PVM_F_NOFALL);
        if (can_fall && !next_is_valid(bitmask, code_len, next, skip)) {
            if (n < cap) {
                memset(&out[n], 0, sizeof out[n]);
                out[n].pc = next;
                out[n].len = 1;
                out[n].op = PVM_OP_INVALID;
                out[n].implicit = 1;
            }
            n++;
        }
        pc = next_set_bit(bitmask, code_len, pc + 1);
    }
    return n;
}
