/*
 * isa.c -- the instruction table compiled from isa.def, and the per-ISA
 * opcode maps derived from it.
 */
#include "internal.h"

#include <string.h>

const pvm_insn_info pvm_isa_table[PVM_OP_INVALID] = {
#define PVM_INSN(NAME, MN, FORM, R, L32, L64, J, FLAGS, PIPE, CLASS, W, SG) \
    {MN, PVM_FORM_##FORM, (uint8_t)(FLAGS), {R, L32, L64, J}, PVM_K_##CLASS, W, PVM_SG_##SG},
#include "isa.def"
#undef PVM_INSN
};

uint8_t pvm_opcode_map[PVM_ISA_COUNT][256];
static int isa_ready;

void pvm_isa_init(void) {
    if (isa_ready)
        return;
    memset(pvm_opcode_map, PVM_OP_INVALID, sizeof pvm_opcode_map);
    for (int op = 0; op < PVM_OP_INVALID; op++)
        for (int isa = 0; isa < PVM_ISA_COUNT; isa++) {
            int code = pvm_isa_table[op].opcode[isa];
            if (code >= 0)
                pvm_opcode_map[isa][code] = (uint8_t)op;
        }
    isa_ready = 1;
}

int pvm_op_count(void) { return PVM_OP_INVALID; }

const pvm_insn_info *pvm_op_info(int op) {
    if (op < 0 || op >= PVM_OP_INVALID)
        return NULL;
    return &pvm_isa_table[op];
}

int pvm_op_for_opcode(int isa, int opcode) {
    if (isa < 0 || isa >= PVM_ISA_COUNT || opcode < 0 || opcode > 255)
        return PVM_OP_INVALID;
    pvm_isa_init();
    return pvm_opcode_map[isa][opcode];
}

void pvm_set_err(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}
