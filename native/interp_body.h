/*
 * interp_body.h -- the interpreter loop, included by interp.c once per
 * variant.  Parameters (macros):
 *   INTERP_FN    function name
 *   INTERP_GAS   expression: is gas metering on
 *   INTERP_STEP  0/1: report a Step before every instruction
 * Token-threaded dispatch over pvm_rec records (program.h).
 */

static int INTERP_FN(pvm_instance *vm, uint32_t start_rec) {
    static const void *const labels[PVM_XOP_COUNT] = {
#define PVM_INSN(NAME, MN, FORM, R, L32, L64, J, FLAGS, PIPE, CLASS, W, SG) [PVM_OP_##NAME] = &&L_##NAME,
#include "isa.def"
#undef PVM_INSN
        [PVM_OP_INVALID] = &&L_XTRAP,
        [PVM_XOP_CHARGE] = &&L_XCHARGE,
        [PVM_XOP_TRAP] = &&L_XTRAP,
        [PVM_XOP_LOAD_IMM_TRAP] = &&L_XLOAD_IMM_TRAP,
        [PVM_XOP_MUL_UPPER_SS_32] = &&L_XMUL_UPPER_SS_32,
        [PVM_XOP_MUL_UPPER_UU_32] = &&L_XMUL_UPPER_UU_32,
        [PVM_XOP_MUL_UPPER_SU_32] = &&L_XMUL_UPPER_SU_32,
        [PVM_XOP_REVERSE_BYTE_32] = &&L_XREVERSE_BYTE_32,
        [PVM_XOP_SBRK_32] = &&L_XSBRK_32,
        [PVM_XOP_MEMSET_32] = &&L_XMEMSET_32,
    };
    const pvm_program *const prog = vm->prog;
    const pvm_interp_code *const ic = pvm_interp_code_of(prog);
    const pvm_rec *const recs = ic->recs;
    const pvm_rec *ip = recs + start_rec;
    uint64_t *const R = vm->regs;
    pvm_memory *const mem = &vm->mem;
    uint8_t *const base = mem->base;
    int64_t gas = vm->gas;
    uint32_t A;            /* effective address of the current access */
    int acc;
    int result;

#if INTERP_STEP
#define DISPATCH()                                                           \
    do {                                                                     \
        uint32_t idx_ = (uint32_t)(ip - recs);                               \
        if (idx_ != vm->step_skip) {                                         \
            vm->step_skip = idx_;                                            \
            uint32_t spc_ = ip->op == PVM_XOP_CHARGE ? ip[1].pc : ip->pc;    \
            vm->pc = vm->next_pc = spc_;                                     \
            vm->resume = idx_;                                           \
            result = PVM_INT_STEP;                                           \
            goto out;                                                        \
        }                                                                    \
        if (ip->op != PVM_XOP_CHARGE)                                        \
            vm->step_skip = PVM_NONE_U32;                                    \
        goto *labels[ip->op];                                                \
    } while (0)
#else
#define DISPATCH() goto *labels[ip->op]
#endif
#define NEXT() do { ip++; DISPATCH(); } while (0)
#define W32(v) ((uint64_t)(int64_t)(int32_t)(uint32_t)(v))
#define SX8(v) ((uint64_t)(int64_t)(int8_t)(uint8_t)(v))
#define SX16(v) ((uint64_t)(int64_t)(int16_t)(uint16_t)(v))
#define S64(v) ((int64_t)(v))
#define CHECK(addr, width, need)                                             \
    do {                                                                     \
        A = (addr);                                                          \
        if (PVM_UNLIKELY(!pvm_memory_fast_ok(mem, A, (width), (need)))) {    \
            acc = pvm_memory_guest_check(mem, A, (width), (need) == PVM_PERM_WRITE, \
                                         &vm->fault_page, &vm->fault_write); \
            if (acc != PVM_ACCESS_OK)                                        \
                goto access_fault;                                           \
        }                                                                    \
    } while (0)
#define ZX(v) ((uint64_t)(v))
#define IMM ((uint64_t)(int64_t)ip->i) /* the immediate, sign-extended */

    DISPATCH();

L_XCHARGE:
    if (INTERP_GAS) {
        int64_t cost = (int64_t)ip->t;
        if (PVM_UNLIKELY(gas < cost)) {
            vm->pc = vm->next_pc = ip->pc;
            vm->resume = (uint32_t)(ip - recs);
            result = PVM_INT_NOT_ENOUGH_GAS;
            goto out;
        }
        gas -= cost;
    }
#if INTERP_STEP
    vm->step_skip = (uint32_t)(ip - recs) + 1;
#endif
    NEXT();

L_XTRAP:
L_TRAP:
    vm->pc = ip->pc;
    result = PVM_INT_TRAP;
    goto out_trap;

L_FALLTHROUGH:
L_UNLIKELY:
    NEXT();

L_XLOAD_IMM_TRAP:
    R[ip->a] = IMM;
    vm->pc = ip->pc;
    result = PVM_INT_TRAP;
    goto out_trap;

L_ECALLI:
    vm->ecalli = ip->t;
    vm->pc = ip->pc;
    vm->next_pc = ip[1].pc;
    vm->resume = (uint32_t)(ip - recs) + 1;
    result = PVM_INT_ECALLI;
    goto out;

L_LOAD_IMM64:
    R[ip->a] = ((uint64_t)ip->t << 32) | (uint32_t)IMM;
    NEXT();
L_LOAD_IMM:
    R[ip->a] = IMM;
    NEXT();
L_MOVE_REG:
    R[ip->a] = R[ip->b];
    NEXT();

    /* ---- stores with immediate address / value ---- */
L_STORE_IMM_U8: CHECK(ip->t, 1, PVM_PERM_WRITE); { uint8_t v = (uint8_t)IMM; memcpy(base + A, &v, 1); } NEXT();
L_STORE_IMM_U16: CHECK(ip->t, 2, PVM_PERM_WRITE); { uint16_t v = (uint16_t)IMM; memcpy(base + A, &v, 2); } NEXT();
L_STORE_IMM_U32: CHECK(ip->t, 4, PVM_PERM_WRITE); { uint32_t v = (uint32_t)IMM; memcpy(base + A, &v, 4); } NEXT();
L_STORE_IMM_U64: CHECK(ip->t, 8, PVM_PERM_WRITE); { uint64_t v = IMM; memcpy(base + A, &v, 8); } NEXT();
L_STORE_IMM_INDIRECT_U8: CHECK((uint32_t)(R[ip->a] + ip->t + 0), 1, PVM_PERM_WRITE); { uint8_t v = (uint8_t)IMM; memcpy(base + A, &v, 1); } NEXT();
L_STORE_IMM_INDIRECT_U16: CHECK((uint32_t)(R[ip->a] + ip->t), 2, PVM_PERM_WRITE); { uint16_t v = (uint16_t)IMM; memcpy(base + A, &v, 2); } NEXT();
L_STORE_IMM_INDIRECT_U32: CHECK((uint32_t)(R[ip->a] + ip->t), 4, PVM_PERM_WRITE); { uint32_t v = (uint32_t)IMM; memcpy(base + A, &v, 4); } NEXT();
L_STORE_IMM_INDIRECT_U64: CHECK((uint32_t)(R[ip->a] + ip->t), 8, PVM_PERM_WRITE); { uint64_t v = IMM; memcpy(base + A, &v, 8); } NEXT();

    /* ---- stores from registers ---- */
L_STORE_U8: CHECK(ip->t, 1, PVM_PERM_WRITE); { uint8_t v = (uint8_t)R[ip->a]; memcpy(base + A, &v, 1); } NEXT();
L_STORE_U16: CHECK(ip->t, 2, PVM_PERM_WRITE); { uint16_t v = (uint16_t)R[ip->a]; memcpy(base + A, &v, 2); } NEXT();
L_STORE_U32: CHECK(ip->t, 4, PVM_PERM_WRITE); { uint32_t v = (uint32_t)R[ip->a]; memcpy(base + A, &v, 4); } NEXT();
L_STORE_U64: CHECK(ip->t, 8, PVM_PERM_WRITE); { uint64_t v = R[ip->a]; memcpy(base + A, &v, 8); } NEXT();
L_STORE_INDIRECT_U8: CHECK((uint32_t)(R[ip->b] + IMM), 1, PVM_PERM_WRITE); { uint8_t v = (uint8_t)R[ip->a]; memcpy(base + A, &v, 1); } NEXT();
L_STORE_INDIRECT_U16: CHECK((uint32_t)(R[ip->b] + IMM), 2, PVM_PERM_WRITE); { uint16_t v = (uint16_t)R[ip->a]; memcpy(base + A, &v, 2); } NEXT();
L_STORE_INDIRECT_U32: CHECK((uint32_t)(R[ip->b] + IMM), 4, PVM_PERM_WRITE); { uint32_t v = (uint32_t)R[ip->a]; memcpy(base + A, &v, 4); } NEXT();
L_STORE_INDIRECT_U64: CHECK((uint32_t)(R[ip->b] + IMM), 8, PVM_PERM_WRITE); { uint64_t v = R[ip->a]; memcpy(base + A, &v, 8); } NEXT();

    /* ---- loads ---- */
L_LOAD_U8: { CHECK(ip->t, 1, PVM_PERM_READ); uint8_t v; memcpy(&v, base + A, 1); R[ip->a] = v; NEXT(); }
L_LOAD_I8: { CHECK(ip->t, 1, PVM_PERM_READ); uint8_t v; memcpy(&v, base + A, 1); R[ip->a] = SX8(v); NEXT(); }
L_LOAD_U16: { CHECK(ip->t, 2, PVM_PERM_READ); uint16_t v; memcpy(&v, base + A, 2); R[ip->a] = v; NEXT(); }
L_LOAD_I16: { CHECK(ip->t, 2, PVM_PERM_READ); uint16_t v; memcpy(&v, base + A, 2); R[ip->a] = SX16(v); NEXT(); }
L_LOAD_U32: { CHECK(ip->t, 4, PVM_PERM_READ); uint32_t v; memcpy(&v, base + A, 4); R[ip->a] = v; NEXT(); }
L_LOAD_I32: { CHECK(ip->t, 4, PVM_PERM_READ); uint32_t v; memcpy(&v, base + A, 4); R[ip->a] = W32(v); NEXT(); }
L_LOAD_U64: { CHECK(ip->t, 8, PVM_PERM_READ); uint64_t v; memcpy(&v, base + A, 8); R[ip->a] = v; NEXT(); }
L_LOAD_INDIRECT_U8: { CHECK((uint32_t)(R[ip->b] + IMM), 1, PVM_PERM_READ); uint8_t v; memcpy(&v, base + A, 1); R[ip->a] = v; NEXT(); }
L_LOAD_INDIRECT_I8: { CHECK((uint32_t)(R[ip->b] + IMM), 1, PVM_PERM_READ); uint8_t v; memcpy(&v, base + A, 1); R[ip->a] = SX8(v); NEXT(); }
L_LOAD_INDIRECT_U16: { CHECK((uint32_t)(R[ip->b] + IMM), 2, PVM_PERM_READ); uint16_t v; memcpy(&v, base + A, 2); R[ip->a] = v; NEXT(); }
L_LOAD_INDIRECT_I16: { CHECK((uint32_t)(R[ip->b] + IMM), 2, PVM_PERM_READ); uint16_t v; memcpy(&v, base + A, 2); R[ip->a] = SX16(v); NEXT(); }
L_LOAD_INDIRECT_U32: { CHECK((uint32_t)(R[ip->b] + IMM), 4, PVM_PERM_READ); uint32_t v; memcpy(&v, base + A, 4); R[ip->a] = v; NEXT(); }
L_LOAD_INDIRECT_I32: { CHECK((uint32_t)(R[ip->b] + IMM), 4, PVM_PERM_READ); uint32_t v; memcpy(&v, base + A, 4); R[ip->a] = W32(v); NEXT(); }
L_LOAD_INDIRECT_U64: { CHECK((uint32_t)(R[ip->b] + IMM), 8, PVM_PERM_READ); uint64_t v; memcpy(&v, base + A, 8); R[ip->a] = v; NEXT(); }

    /* ---- control flow ---- */
L_JUMP:
    ip = recs + ip->t;
    DISPATCH();
L_LOAD_IMM_AND_JUMP:
    R[ip->a] = IMM;
    ip = recs + ip->t;
    DISPATCH();
L_JUMP_INDIRECT:
    A = (uint32_t)(R[ip->a] + IMM);
    goto dynamic_jump;
L_LOAD_IMM_AND_JUMP_INDIRECT:
    A = (uint32_t)(R[ip->b] + (uint64_t)(int64_t)(int32_t)ip->t);
    R[ip->a] = IMM;
    goto dynamic_jump;

#define BRANCH(cond) do { if (cond) { ip = recs + ip->t; DISPATCH(); } NEXT(); } while (0)
L_BRANCH_EQ_IMM: BRANCH(R[ip->a] == IMM);
L_BRANCH_NOT_EQ_IMM: BRANCH(R[ip->a] != IMM);
L_BRANCH_LESS_UNSIGNED_IMM: BRANCH(R[ip->a] < IMM);
L_BRANCH_LESS_SIGNED_IMM: BRANCH(S64(R[ip->a]) < S64(IMM));
L_BRANCH_GREATER_OR_EQUAL_UNSIGNED_IMM: BRANCH(R[ip->a] >= IMM);
L_BRANCH_GREATER_OR_EQUAL_SIGNED_IMM: BRANCH(S64(R[ip->a]) >= S64(IMM));
L_BRANCH_LESS_OR_EQUAL_SIGNED_IMM: BRANCH(S64(R[ip->a]) <= S64(IMM));
L_BRANCH_LESS_OR_EQUAL_UNSIGNED_IMM: BRANCH(R[ip->a] <= IMM);
L_BRANCH_GREATER_SIGNED_IMM: BRANCH(S64(R[ip->a]) > S64(IMM));
L_BRANCH_GREATER_UNSIGNED_IMM: BRANCH(R[ip->a] > IMM);
L_BRANCH_EQ: BRANCH(R[ip->a] == R[ip->b]);
L_BRANCH_NOT_EQ: BRANCH(R[ip->a] != R[ip->b]);
L_BRANCH_LESS_UNSIGNED: BRANCH(R[ip->a] < R[ip->b]);
L_BRANCH_LESS_SIGNED: BRANCH(S64(R[ip->a]) < S64(R[ip->b]));
L_BRANCH_GREATER_OR_EQUAL_UNSIGNED: BRANCH(R[ip->a] >= R[ip->b]);
L_BRANCH_GREATER_OR_EQUAL_SIGNED: BRANCH(S64(R[ip->a]) >= S64(R[ip->b]));

    /* ---- RRI arithmetic: R[a] = R[b] op imm ---- */
L_ADD_IMM_32: R[ip->a] = W32(R[ip->b] + IMM); NEXT();
L_ADD_IMM_64: R[ip->a] = R[ip->b] + IMM; NEXT();
L_AND_IMM: R[ip->a] = R[ip->b] & IMM; NEXT();
L_XOR_IMM: R[ip->a] = R[ip->b] ^ IMM; NEXT();
L_OR_IMM: R[ip->a] = R[ip->b] | IMM; NEXT();
L_MUL_IMM_32: R[ip->a] = W32((uint32_t)R[ip->b] * (uint32_t)IMM); NEXT();
L_MUL_IMM_64: R[ip->a] = R[ip->b] * IMM; NEXT();
L_SET_LESS_THAN_UNSIGNED_IMM: R[ip->a] = R[ip->b] < IMM; NEXT();
L_SET_LESS_THAN_SIGNED_IMM: R[ip->a] = S64(R[ip->b]) < S64(IMM); NEXT();
L_SET_GREATER_THAN_UNSIGNED_IMM: R[ip->a] = R[ip->b] > IMM; NEXT();
L_SET_GREATER_THAN_SIGNED_IMM: R[ip->a] = S64(R[ip->b]) > S64(IMM); NEXT();
L_SHIFT_LOGICAL_LEFT_IMM_32: R[ip->a] = W32((uint32_t)R[ip->b] << (IMM & 31)); NEXT();
L_SHIFT_LOGICAL_LEFT_IMM_64: R[ip->a] = R[ip->b] << (IMM & 63); NEXT();
L_SHIFT_LOGICAL_RIGHT_IMM_32: R[ip->a] = W32((uint32_t)R[ip->b] >> (IMM & 31)); NEXT();
L_SHIFT_LOGICAL_RIGHT_IMM_64: R[ip->a] = R[ip->b] >> (IMM & 63); NEXT();
L_SHIFT_ARITHMETIC_RIGHT_IMM_32: R[ip->a] = (uint64_t)(int64_t)((int32_t)(uint32_t)R[ip->b] >> (IMM & 31)); NEXT();
L_SHIFT_ARITHMETIC_RIGHT_IMM_64: R[ip->a] = (uint64_t)(S64(R[ip->b]) >> (IMM & 63)); NEXT();
L_NEGATE_AND_ADD_IMM_32: R[ip->a] = W32(IMM - R[ip->b]); NEXT();
L_NEGATE_AND_ADD_IMM_64: R[ip->a] = IMM - R[ip->b]; NEXT();
L_SHIFT_LOGICAL_LEFT_IMM_ALT_32: R[ip->a] = W32((uint32_t)IMM << (R[ip->b] & 31)); NEXT();
L_SHIFT_LOGICAL_LEFT_IMM_ALT_64: R[ip->a] = IMM << (R[ip->b] & 63); NEXT();
L_SHIFT_LOGICAL_RIGHT_IMM_ALT_32: R[ip->a] = W32((uint32_t)IMM >> (R[ip->b] & 31)); NEXT();
L_SHIFT_LOGICAL_RIGHT_IMM_ALT_64: R[ip->a] = IMM >> (R[ip->b] & 63); NEXT();
L_SHIFT_ARITHMETIC_RIGHT_IMM_ALT_32: R[ip->a] = (uint64_t)(int64_t)((int32_t)(uint32_t)IMM >> (R[ip->b] & 31)); NEXT();
L_SHIFT_ARITHMETIC_RIGHT_IMM_ALT_64: R[ip->a] = (uint64_t)(S64(IMM) >> (R[ip->b] & 63)); NEXT();
L_CMOV_IF_ZERO_IMM: if (R[ip->b] == 0) R[ip->a] = IMM; NEXT();
L_CMOV_IF_NOT_ZERO_IMM: if (R[ip->b] != 0) R[ip->a] = IMM; NEXT();
L_ROTATE_RIGHT_IMM_32: R[ip->a] = W32(rotr32((uint32_t)R[ip->b], (unsigned)IMM & 31)); NEXT();
L_ROTATE_RIGHT_IMM_ALT_32: R[ip->a] = W32(rotr32((uint32_t)IMM, (unsigned)R[ip->b] & 31)); NEXT();
L_ROTATE_RIGHT_IMM_64: R[ip->a] = rotr64(R[ip->b], (unsigned)IMM & 63); NEXT();
L_ROTATE_RIGHT_IMM_ALT_64: R[ip->a] = rotr64(IMM, (unsigned)R[ip->b] & 63); NEXT();

    /* ---- RRR: R[a] = R[b] op R[c] ---- */
L_ADD_32: R[ip->a] = W32(R[ip->b] + R[ip->c]); NEXT();
L_ADD_64: R[ip->a] = R[ip->b] + R[ip->c]; NEXT();
L_SUB_32: R[ip->a] = W32(R[ip->b] - R[ip->c]); NEXT();
L_SUB_64: R[ip->a] = R[ip->b] - R[ip->c]; NEXT();
L_AND: R[ip->a] = R[ip->b] & R[ip->c]; NEXT();
L_XOR: R[ip->a] = R[ip->b] ^ R[ip->c]; NEXT();
L_OR: R[ip->a] = R[ip->b] | R[ip->c]; NEXT();
L_MUL_32: R[ip->a] = W32((uint32_t)R[ip->b] * (uint32_t)R[ip->c]); NEXT();
L_MUL_64: R[ip->a] = R[ip->b] * R[ip->c]; NEXT();
L_MUL_UPPER_SIGNED_SIGNED: R[ip->a] = mulh_ss64(R[ip->b], R[ip->c]); NEXT();
L_MUL_UPPER_UNSIGNED_UNSIGNED: R[ip->a] = mulh_uu64(R[ip->b], R[ip->c]); NEXT();
L_MUL_UPPER_SIGNED_UNSIGNED: R[ip->a] = mulh_su64(R[ip->b], R[ip->c]); NEXT();
L_XMUL_UPPER_SS_32: R[ip->a] = W32((uint64_t)((int64_t)(int32_t)(uint32_t)R[ip->b] * (int64_t)(int32_t)(uint32_t)R[ip->c]) >> 32); NEXT();
L_XMUL_UPPER_UU_32: R[ip->a] = W32(((uint64_t)(uint32_t)R[ip->b] * (uint64_t)(uint32_t)R[ip->c]) >> 32); NEXT();
L_XMUL_UPPER_SU_32: R[ip->a] = W32((uint64_t)((int64_t)(int32_t)(uint32_t)R[ip->b] * (int64_t)(uint32_t)R[ip->c]) >> 32); NEXT();
L_SET_LESS_THAN_UNSIGNED: R[ip->a] = R[ip->b] < R[ip->c]; NEXT();
L_SET_LESS_THAN_SIGNED: R[ip->a] = S64(R[ip->b]) < S64(R[ip->c]); NEXT();
L_SHIFT_LOGICAL_LEFT_32: R[ip->a] = W32((uint32_t)R[ip->b] << (R[ip->c] & 31)); NEXT();
L_SHIFT_LOGICAL_LEFT_64: R[ip->a] = R[ip->b] << (R[ip->c] & 63); NEXT();
L_SHIFT_LOGICAL_RIGHT_32: R[ip->a] = W32((uint32_t)R[ip->b] >> (R[ip->c] & 31)); NEXT();
L_SHIFT_LOGICAL_RIGHT_64: R[ip->a] = R[ip->b] >> (R[ip->c] & 63); NEXT();
L_SHIFT_ARITHMETIC_RIGHT_32: R[ip->a] = (uint64_t)(int64_t)((int32_t)(uint32_t)R[ip->b] >> (R[ip->c] & 31)); NEXT();
L_SHIFT_ARITHMETIC_RIGHT_64: R[ip->a] = (uint64_t)(S64(R[ip->b]) >> (R[ip->c] & 63)); NEXT();
L_DIV_UNSIGNED_32: R[ip->a] = W32(divu32((uint32_t)R[ip->b], (uint32_t)R[ip->c])); NEXT();
L_DIV_UNSIGNED_64: R[ip->a] = divu64(R[ip->b], R[ip->c]); NEXT();
L_DIV_SIGNED_32: R[ip->a] = W32(divs32((uint32_t)R[ip->b], (uint32_t)R[ip->c])); NEXT();
L_DIV_SIGNED_64: R[ip->a] = divs64(R[ip->b], R[ip->c]); NEXT();
L_REM_UNSIGNED_32: R[ip->a] = W32(remu32((uint32_t)R[ip->b], (uint32_t)R[ip->c])); NEXT();
L_REM_UNSIGNED_64: R[ip->a] = remu64(R[ip->b], R[ip->c]); NEXT();
L_REM_SIGNED_32: R[ip->a] = W32(rems32((uint32_t)R[ip->b], (uint32_t)R[ip->c])); NEXT();
L_REM_SIGNED_64: R[ip->a] = rems64(R[ip->b], R[ip->c]); NEXT();
L_CMOV_IF_ZERO: if (R[ip->c] == 0) R[ip->a] = R[ip->b]; NEXT();
L_CMOV_IF_NOT_ZERO: if (R[ip->c] != 0) R[ip->a] = R[ip->b]; NEXT();
L_AND_INVERTED: R[ip->a] = R[ip->b] & ~R[ip->c]; NEXT();
L_OR_INVERTED: R[ip->a] = R[ip->b] | ~R[ip->c]; NEXT();
L_XNOR: R[ip->a] = ~(R[ip->b] ^ R[ip->c]); NEXT();
L_MAXIMUM: R[ip->a] = S64(R[ip->b]) > S64(R[ip->c]) ? R[ip->b] : R[ip->c]; NEXT();
L_MAXIMUM_UNSIGNED: R[ip->a] = R[ip->b] > R[ip->c] ? R[ip->b] : R[ip->c]; NEXT();
L_MINIMUM: R[ip->a] = S64(R[ip->b]) < S64(R[ip->c]) ? R[ip->b] : R[ip->c]; NEXT();
L_MINIMUM_UNSIGNED: R[ip->a] = R[ip->b] < R[ip->c] ? R[ip->b] : R[ip->c]; NEXT();
L_ROTATE_LEFT_32: R[ip->a] = W32(rotl32((uint32_t)R[ip->b], (unsigned)R[ip->c] & 31)); NEXT();
L_ROTATE_LEFT_64: R[ip->a] = rotl64(R[ip->b], (unsigned)R[ip->c] & 63); NEXT();
L_ROTATE_RIGHT_32: R[ip->a] = W32(rotr32((uint32_t)R[ip->b], (unsigned)R[ip->c] & 31)); NEXT();
L_ROTATE_RIGHT_64: R[ip->a] = rotr64(R[ip->b], (unsigned)R[ip->c] & 63); NEXT();

    /* ---- RR ---- */
L_COUNT_SET_BITS_32: R[ip->a] = (uint64_t)__builtin_popcount((uint32_t)R[ip->b]); NEXT();
L_COUNT_SET_BITS_64: R[ip->a] = (uint64_t)__builtin_popcountll(R[ip->b]); NEXT();
L_COUNT_LEADING_ZERO_BITS_32: { uint32_t v = (uint32_t)R[ip->b]; R[ip->a] = v ? (uint64_t)__builtin_clz(v) : 32; NEXT(); }
L_COUNT_LEADING_ZERO_BITS_64: { uint64_t v = R[ip->b]; R[ip->a] = v ? (uint64_t)__builtin_clzll(v) : 64; NEXT(); }
L_COUNT_TRAILING_ZERO_BITS_32: { uint32_t v = (uint32_t)R[ip->b]; R[ip->a] = v ? (uint64_t)__builtin_ctz(v) : 32; NEXT(); }
L_COUNT_TRAILING_ZERO_BITS_64: { uint64_t v = R[ip->b]; R[ip->a] = v ? (uint64_t)__builtin_ctzll(v) : 64; NEXT(); }
L_SIGN_EXTEND_8: R[ip->a] = SX8(R[ip->b]); NEXT();
L_SIGN_EXTEND_16: R[ip->a] = SX16(R[ip->b]); NEXT();
L_ZERO_EXTEND_16: R[ip->a] = R[ip->b] & 0xFFFF; NEXT();
L_REVERSE_BYTE: R[ip->a] = __builtin_bswap64(R[ip->b]); NEXT();
L_XREVERSE_BYTE_32: R[ip->a] = W32(__builtin_bswap32((uint32_t)R[ip->b])); NEXT();

L_SBRK:
L_XSBRK_32:
    R[ip->a] = pvm_exec_sbrk(vm, ip->op == PVM_XOP_SBRK_32, R[ip->b]);
    NEXT();

L_MEMSET:
L_XMEMSET_32: {
    int stop = pvm_exec_memset(vm, ip->op == PVM_XOP_MEMSET_32, &gas, INTERP_GAS);
    if (stop) {
        vm->pc = ip->pc;
        if (stop == PVM_INT_TRAP) {
            result = PVM_INT_TRAP;
            goto out_trap;
        }
        vm->next_pc = ip->pc;
        vm->resume = (uint32_t)(ip - recs);
#if INTERP_STEP
        vm->step_skip = vm->resume;
#endif
        result = stop;
        goto out;
    }
    NEXT();
}

dynamic_jump:
    if (A == PVM_ADDR_RETURN_TO_HOST) {
        vm->pc = ip->pc;
        vm->next_pc = PVM_NONE_U32;
        vm->resume = PVM_NONE_U32;
        result = PVM_INT_FINISHED;
        goto out;
    }
    if (A == 0 || (A & 1) || (A / 2 - 1) >= prog->jump_table_len ||
        ic->jt_rec[A / 2 - 1] == PVM_NONE_U32) {
        vm->pc = ip->pc;
        result = PVM_INT_TRAP;
        goto out_trap;
    }
    ip = recs + ic->jt_rec[A / 2 - 1];
    DISPATCH();

access_fault:
    vm->pc = ip->pc;
    if (acc == PVM_ACCESS_TRAP) {
        result = PVM_INT_TRAP;
        goto out_trap;
    }
    vm->next_pc = ip->pc;
    vm->resume = (uint32_t)(ip - recs);
#if INTERP_STEP
    vm->step_skip = vm->resume;
#endif
    result = PVM_INT_SEGFAULT;
    goto out;

out_trap:
    vm->next_pc = PVM_NONE_U32;
    vm->resume = PVM_NONE_U32;
out:
    vm->gas = gas;
    return result;
}

#undef DISPATCH
#undef NEXT
#undef W32
#undef SX8
#undef SX16
#undef S64
#undef CHECK
#undef ZX
#undef IMM
#undef BRANCH
