/*
 * decode.c -- instruction boundaries and operand decoding
 * (shared/spec/isa.md sections 2 and 3).
 *
 * Everything here is a pure function of (isa, code, bitmask, pc) and never
 * reads outside code[0..code_len) or bitmask[0..ceil(code_len/8)).
 */
#include "decode.h"

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

void pvm_decode_one(int isa, const uint8_t *code, uint32_t code_len, const uint8_t *bitmask,
                    uint32_t pc, pvm_insn *out) {
    pvm_isa_init();
    if (pc >= code_len) {
        *out = (pvm_insn){.pc = pc, .len = 1, .op = PVM_OP_INVALID, .implicit = 1};
        return;
    }
    unsigned op = (isa >= 0 && isa < PVM_ISA_COUNT) ? pvm_opcode_map[isa][code[pc]] : PVM_OP_INVALID;
    pvm_decode_at(code, code_len, pc, pvm_skip(bitmask, code_len, pc), op, out);
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
