/*
 * compile.c -- PolkaVM -> x86-64, one pass over the decoded program.
 *
 * Driven by the instruction table: each instruction is lowered by the one
 * case of emit_insn() for its op (internal.h's pvm_op: the rows of isa.def
 * and the lowered forms of program.c), reading its operand width,
 * signedness and operation class from its row.  The switch has no default
 * and this file is built with -Wswitch-enum -Werror (the pragma below), so
 * an op without a lowering is a build error, never a trap at run time.
 *
 * Adding an instruction (followed once with a probe row: the build failed
 * at both places named in step 2 until both lowerings existed; the probe
 * was then taken out again):
 *   1. one row in native/isa.def: name, mnemonic, operand form, opcode per
 *      instruction set, flags, gas pipeline class, operation class, width,
 *      signedness (what the columns mean: the comment at its top);
 *   2. build (`make build`): it fails here, "enumeration value
 *      'PVM_OP_<NAME>' not handled in switch", and in interp_body.h, "label
 *      'L_<NAME>' used but not defined";
 *   3. one lowering here: a `case PVM_OP_<NAME>:` in emit_insn (or the op
 *      added to the case list of its class), and the interpreter's
 *      L_<NAME> handler in interp_body.h;
 *   4. a vector or assembler test of its semantics, and the differential
 *      fuzzer (tools/difffuzz.py) over both backends.
 *
 * Register assignment: the 13 guest registers live in rcx rbx rbp rsi rdi
 * r8..r15; rax and rdx are scratch; rsp points at a small frame holding the
 * instance pointer [rsp+0], the gas counter [rsp+8] and a spare slot.
 * Guest memory is reached through the GS segment (emit_x64.h), so every
 * access is confined to the instance's 4 GiB reservation by construction and
 * faults on pages the guest may not touch (the host protection mirrors the
 * guest's permissions, memory.c).
 *
 * Every way out of generated code goes through one exit routine with a
 * "site" number in edx; the site table says what happened (trap, ecalli,
 * finish, out of gas, helper) and where to resume.  A block's failed gas
 * charge is the exception: it jumps to the block's 5-byte thunk, which
 * calls the one shared out-of-gas stub, whose exit id names the thunk
 * (jit.h, JIT_OOG_TAG; emit_oog_thunks).
 */
#include "jit.h"
#include "emit_x64.h"

/* A lowering missing from emit_insn's switch must not build. */
#pragma GCC diagnostic error "-Wswitch"
#pragma GCC diagnostic error "-Wswitch-enum"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NONE PVM_NONE_U32

_Static_assert(offsetof(pvm_instance, regs) == PVM_VMCTX_REGS, "vmctx layout");
_Static_assert(offsetof(pvm_instance, gas) == PVM_VMCTX_GAS, "vmctx layout");

static const int HREG[PVM_NUM_REGS] = {RCX, RBX, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15};
#define H(r) HREG[(r)]

/* machine code per guest instruction, for prefaulting the code buffer
   (metered: doom.polkavm and quake.polkavm 12.4) */
#define JIT_BYTES_PER_INSN_GUESS 13u

#define FRAME_CTX 0
#define FRAME_GAS 8
#define FRAME_SPARE 16
#define FRAME_SIZE 24

/* Compile-time bookkeeping is kept small (offsets fit 32 bits: the code
   is bounded by the program's jit_code_limit). */
typedef struct {
    uint32_t at;
    uint32_t target_insn;
} label_fix;

typedef struct {
    uint32_t at;
    uint32_t site;
    uint32_t cost; /* gas to give back before exiting (out-of-gas stubs) */
} cold_req;

typedef struct {
    const pvm_program *p;
    pvm_jit_code *c;
    xbuf b;
    label_fix *fix;
    size_t nfix, capfix;
    cold_req *cold;
    size_t ncold, capcold;
    size_t sites_cap;
    uint32_t *tabfix;   /* rel32s of `lea rdx, [rip + jump table]` */
    size_t ntabfix, captabfix;
    uint32_t *oog_at;   /* per out-of-gas thunk: the rel32 of the `js` to it */
    size_t capoog;      /* room in oog_at */
    size_t oog_room;    /* room in both oog_at and c->oog_insn */
    uint32_t charge_insn; /* the block whose charge is being emitted, NONE if none */
    int metered;
    int oom;
    size_t huge;        /* bytes of the code buffer asked for as huge pages */
} jctx;

#define GROW(arr, n, cap, extra)                                                    \
    do {                                                                            \
        if ((n) + (extra) > (cap)) {                                                \
            size_t nc = (cap) ? (cap) * 2 : 256;                                    \
            while (nc < (n) + (extra))                                              \
                nc *= 2;                                                            \
            void *q = realloc((arr), nc * sizeof(*(arr)));                          \
            if (!q) {                                                               \
                j->oom = 1;                                                         \
                break;                                                              \
            }                                                                       \
            (arr) = q;                                                              \
            (cap) = nc;                                                             \
        }                                                                           \
    } while (0)

static inline __attribute__((always_inline)) uint32_t add_site(jctx *j, int kind, uint32_t pc, uint32_t arg, uint32_t insn, uint32_t resume) {
    GROW(j->c->sites, j->c->site_count, j->sites_cap, 1);
    if (j->oom)
        return 0;
    pvm_jit_site *s = &j->c->sites[j->c->site_count];
    s->kind = (uint8_t)kind;
    s->pc = pc;
    s->arg = arg;
    s->insn = insn;
    s->resume_off = resume;
    return j->c->site_count++;
}

static inline __attribute__((always_inline)) void jump_to_insn(jctx *j, size_t at, uint32_t target_insn) {
    GROW(j->fix, j->nfix, j->capfix, 1);
    if (j->oom)
        return;
    j->fix[j->nfix].at = (uint32_t)at;
    j->fix[j->nfix].target_insn = target_insn;
    j->nfix++;
}

static inline __attribute__((always_inline)) void jump_to_cold(jctx *j, size_t at, uint32_t site, uint32_t cost) {
    GROW(j->cold, j->ncold, j->capcold, 1);
    if (j->oom)
        return;
    j->cold[j->ncold].at = (uint32_t)at;
    j->cold[j->ncold].site = site;
    j->cold[j->ncold].cost = cost;
    j->ncold++;
}

static void patch_rel(xbuf *b, size_t at, size_t target) {
    xb_patch32(b, at, (uint32_t)((int64_t)target - (int64_t)(at + 4)));
}

/* mov edx, site ; jmp exit */
static void exit_via(jctx *j, uint32_t site) {
    x_mov_imm(&j->b, RDX, site);
    size_t at = x_jmp(&j->b);
    patch_rel(&j->b, at, j->c->exit_off);
}

/* jcc to a cold stub exiting through `site` */
static void jcc_exit(jctx *j, int cc, uint32_t site) {
    size_t at = x_jcc(&j->b, cc);
    jump_to_cold(j, at, site, 0);
}

static void emit_prologue_epilogue(jctx *j) {
    xbuf *b = &j->b;
    static const int saved[] = {RBX, RBP, R12, R13, R14, R15};
    /* enter(vm = rdi, target = rsi) */
    j->c->enter_off = (uint32_t)b->len;
    for (int k = 0; k < 6; k++)
        x_push(b, saved[k]);
    x_alu_imm(b, SZ64, ALU_SUB, RSP, FRAME_SIZE);
    static const uint8_t mov_st[] = {0x89}, mov_ld[] = {0x8B};
    x_frame(b, mov_st, 1, RDI, FRAME_CTX, 1);
    x_ptr(b, SZ64, mov_ld, 1, RAX, RDI, PVM_VMCTX_GAS);
    x_frame(b, mov_st, 1, RAX, FRAME_GAS, 1);
    x_mov(b, SZ64, RAX, RSI);
    for (int r = 0; r < PVM_NUM_REGS; r++)
        if (H(r) != RDI)
            x_ptr(b, SZ64, mov_ld, 1, H(r), RDI, (int32_t)(PVM_VMCTX_REGS + 8 * r));
    for (int r = 0; r < PVM_NUM_REGS; r++)
        if (H(r) == RDI)
            x_ptr(b, SZ64, mov_ld, 1, RDI, RDI, (int32_t)(PVM_VMCTX_REGS + 8 * r));
    x_jmp_reg(b, RAX);

    /* exit: edx = site */
    j->c->exit_off = (uint32_t)b->len;
    x_frame(b, mov_st, 1, RDX, FRAME_SPARE, 1);
    x_frame(b, mov_ld, 1, RAX, FRAME_CTX, 1);
    for (int r = 0; r < PVM_NUM_REGS; r++)
        x_ptr(b, SZ64, mov_st, 1, H(r), RAX, (int32_t)(PVM_VMCTX_REGS + 8 * r));
    x_frame(b, mov_ld, 1, RDX, FRAME_GAS, 1);
    x_ptr(b, SZ64, mov_st, 1, RDX, RAX, PVM_VMCTX_GAS);
    x_frame(b, mov_ld, 1, RAX, FRAME_SPARE, 1);
    x_alu_imm(b, SZ64, ALU_ADD, RSP, FRAME_SIZE);
    for (int k = 5; k >= 0; k--)
        x_pop(b, saved[k]);
    x_ret(b);
}

/* The jcc at `at` (of a gas charge of `cost` at resume_off, for the block at
   pc) to where running out of gas goes: for a block start's charge, the
   block's out-of-gas thunk (its exit gives the charge back, jit.h); for
   another (the one-instruction invalid block after a `fallthrough`) a site
   and a cold stub giving it back itself. */
static inline void oog_jump(jctx *j, size_t at, uint32_t pc, uint32_t cost, uint32_t resume_off) {
    pvm_jit_code *c = j->c;
    if (j->charge_insn != NONE && c->oog_count < j->oog_room) {
        j->oog_at[c->oog_count] = (uint32_t)at;
        c->oog_insn[c->oog_count++] = j->charge_insn;
        return;
    }
    uint32_t site = add_site(j, JIT_SITE_OOG, pc, 0, NONE, resume_off);
    jump_to_cold(j, at, site, cost);
}

/* gas charge at a block start: sub [rsp+8], cost ; js cold(oog) -- always
   CHARGE_LEN bytes, so a block's charge is found from its code's offset */
#define CHARGE_LEN 15
static const uint8_t OP_ALU_IMM32[] = {0x81}; /* group 1, imm32 */

static void emit_charge(jctx *j, uint32_t pc, uint32_t cost, uint32_t resume_off) {
    if (!j->metered)
        return;
    xbuf *b = &j->b;
    x_frame(b, OP_ALU_IMM32, 1, ALU_SUB, FRAME_GAS, 1);
    xb32(b, cost);
    size_t at = x_jcc(b, CC_S);
    oog_jump(j, at, pc, cost, resume_off);
}

/* Emits a guest load of the row's width and signedness into host register
   dst (the result always fills all 64 bits). */
static void emit_load(xbuf *b, const pvm_insn_info *row, int dst, int base, int32_t disp) {
    static const uint8_t movzx8[] = {0x0F, 0xB6}, movsx8[] = {0x0F, 0xBE}, movzx16[] = {0x0F, 0xB7},
                         movsx16[] = {0x0F, 0xBF}, mov[] = {0x8B}, movsxd[] = {0x63};
    int sx = row->sign == PVM_SG_S;
    switch (row->width) {
    case 8: x_mem(b, sx ? SZ64 : SZ32, sx ? movsx8 : movzx8, 2, dst, base, disp); break;
    case 16: x_mem(b, sx ? SZ64 : SZ32, sx ? movsx16 : movzx16, 2, dst, base, disp); break;
    case 32: x_mem(b, sx ? SZ64 : SZ32, sx ? movsxd : mov, 1, dst, base, disp); break;
    default: x_mem(b, SZ64, mov, 1, dst, base, disp); break; /* 64 */
    }
}

/* x86 operand size of a table width in bits */
static int size_of_bits(unsigned bits) { return (int)bits / 8; }

static void emit_store_reg(xbuf *b, const pvm_insn_info *row, int src, int base, int32_t disp) {
    static const uint8_t mov8[] = {0x88}, mov[] = {0x89};
    int size = size_of_bits(row->width);
    x_mem(b, size, size == SZ8 ? mov8 : mov, 1, src, base, disp);
}

static void emit_store_imm(xbuf *b, const pvm_insn_info *row, uint64_t imm, int base, int32_t disp) {
    static const uint8_t c6[] = {0xC6}, c7[] = {0xC7};
    int size = size_of_bits(row->width);
    if (size == SZ8) {
        x_mem(b, SZ8, c6, 1, 0, base, disp);
        xb8(b, (uint8_t)imm);
    } else if (size == SZ16) {
        x_mem(b, SZ16, c7, 1, 0, base, disp);
        uint16_t v = (uint16_t)imm;
        xb_bytes(b, &v, 2);
    } else {
        x_mem(b, size, c7, 1, 0, base, disp); /* 64: the imm32 sign-extended */
        xb32(b, (uint32_t)imm);
    }
}

/* rd = W32 of eax */
static void w32_from_rax(xbuf *b, int dst) { x_movsxd(b, dst, RAX); }

/* 64-bit or 32-bit binary ALU: dst = a OP c (32-bit results sign-extended) */
/* is32: a 32-bit operation; sx: its result sign-extended to 64 bits (0 when
   nothing sees the upper half before it is written again: sx_elide) */
static void alu3(xbuf *b, int is32, int sx, int alu, int dst, int a, int c) {
    int size = is32 ? SZ32 : SZ64;
    int commutes = alu != ALU_SUB;
    if (dst == c && dst != a && commutes) {
        int t = a;
        a = c;
        c = t;
    }
    if (dst == a) {
        x_alu_rr(b, size, alu, dst, c);
    } else if (dst != c && alu == ALU_ADD) {
        x_lea(b, size, dst, a, c, 0); /* three operands in one */
    } else if (dst != c) {
        x_mov(b, size, dst, a);
        x_alu_rr(b, size, alu, dst, c);
    } else {
        /* dst = c != a, a subtraction: dst = -c + a */
        x_grp3(b, size, GRP3_NEG, dst);
        x_alu_rr(b, size, ALU_ADD, dst, a);
    }
    if (sx)
        x_movsxd(b, dst, dst);
}

static void alu_imm(xbuf *b, int is32, int sx, int alu, int dst, int a, int32_t imm) {
    int size = is32 ? SZ32 : SZ64;
    if (alu == ALU_ADD && dst != a) {
        x_lea(b, size, dst, a, -1, imm);
    } else {
        if (dst != a)
            x_mov(b, size, dst, a);
        x_alu_imm(b, size, alu, dst, imm);
    }
    if (sx)
        x_movsxd(b, dst, dst);
}

static int have_bmi2;

/* dst = value (host reg src) shifted by amount (host reg amt); sh = SH_*.
   BMI2's shlx/shrx/sarx when the CPU has them, else through CL. */
static void shift_var(xbuf *b, int is32, int sx, int sh, int dst, int src, int amt) {
    if (have_bmi2 && (sh == SH_SHL || sh == SH_SHR || sh == SH_SAR)) {
        x_shiftx(b, is32 ? SZ32 : SZ64, sh, dst, src, amt);
        if (sx)
            x_movsxd(b, dst, dst);
        return;
    }
    x_mov(b, SZ64, RAX, src);
    int saved = 0;
    if (amt != RCX) {
        x_mov(b, SZ64, RDX, RCX);
        x_mov(b, SZ64, RCX, amt);
        saved = 1;
    }
    x_shift_cl(b, is32 ? SZ32 : SZ64, sh, RAX);
    if (saved)
        x_mov(b, SZ64, RCX, RDX);
    if (sx)
        w32_from_rax(b, dst);
    else
        x_mov(b, is32 ? SZ32 : SZ64, dst, RAX);
}

/* dst = the flags' condition cc (0 / 1), after the compare `cmp` emits:
   dst cleared before it when the compare does not read dst, else through al */
static void set_cc_rr_or_imm(xbuf *b, int cc, int dst, int reads_dst, void (*cmp)(xbuf *, int, int, int32_t), int a,
                             int c, int32_t imm) {
    if (!reads_dst) {
        x_mov_imm(b, dst, 0); /* xor dst32, dst32: before the flags are set */
        cmp(b, a, c, imm);
        x_setcc8(b, cc, dst);
    } else {
        cmp(b, a, c, imm);
        x_setcc8(b, cc, RAX);
        x_movzx8(b, dst, RAX);
    }
}

static void cmp_rr_(xbuf *b, int a, int c, int32_t imm) {
    (void)imm;
    x_alu_rr(b, SZ64, ALU_CMP, a, c);
}

static void set_cc_cmp_rr(xbuf *b, int cc, int dst, int a, int c) {
    set_cc_rr_or_imm(b, cc, dst, dst == a || dst == c, cmp_rr_, a, c, 0);
}

/* cmp a, imm -- as test a, a when imm is 0 (the same CF, OF, SF, ZF) */
static void cmp_imm(xbuf *b, int a, int32_t imm) {
    if (imm == 0)
        x_test(b, SZ64, a, a);
    else
        x_alu_imm(b, SZ64, ALU_CMP, a, imm);
}

static void cmp_imm_(xbuf *b, int a, int c, int32_t imm) {
    (void)c;
    cmp_imm(b, a, imm);
}

static void set_cc_cmp_imm(xbuf *b, int cc, int dst, int a, int32_t imm) {
    set_cc_rr_or_imm(b, cc, dst, dst == a, cmp_imm_, a, 0, imm);
}

/* division and remainder (isa.md 5.4: never trap): signed or not, the
   quotient or the remainder */
static void emit_div(xbuf *b, int is32, int sgn, int rem, int dst, int a, int c) {
    int size = is32 ? SZ32 : SZ64;
    x_test(b, size, c, c);
    size_t jz = x_jcc(b, CC_E);
    size_t jovf = 0, jovf2 = 0;
    if (sgn) {
        x_alu_imm(b, size, ALU_CMP, c, -1);
        jovf = x_jcc(b, CC_NE);
        if (is32) {
            x_mov(b, SZ64, RAX, a);
            x_alu_imm(b, SZ32, ALU_CMP, RAX, INT32_MIN);
        } else {
            x_mov_imm(b, RAX, (uint64_t)INT64_MIN);
            x_alu_rr(b, SZ64, ALU_CMP, a, RAX);
        }
        jovf2 = x_jcc(b, CC_E);
        patch_rel(b, jovf, b->len);
    }
    x_mov(b, SZ64, RAX, a);
    if (sgn) {
        x_sign_rdx(b, size);
        x_grp3(b, size, GRP3_IDIV, c);
    } else {
        x_mov_imm(b, RDX, 0);
        x_grp3(b, size, GRP3_DIV, c);
    }
    int res = rem ? RDX : RAX;
    if (is32)
        x_movsxd(b, dst, res);
    else
        x_mov(b, SZ64, dst, res);
    size_t jdone = x_jmp(b);
    /* divisor zero */
    patch_rel(b, jz, b->len);
    if (rem) {
        if (is32)
            x_movsxd(b, dst, a);
        else
            x_mov(b, SZ64, dst, a);
    } else {
        x_mov_imm(b, dst, UINT64_MAX);
    }
    size_t jdone2 = 0;
    if (sgn) {
        jdone2 = x_jmp(b);
        /* MIN / -1 */
        patch_rel(b, jovf2, b->len);
        if (rem)
            x_mov_imm(b, dst, 0);
        else if (is32)
            x_movsxd(b, dst, a);
        else
            x_mov(b, SZ64, dst, a);
    }
    patch_rel(b, jdone, b->len);
    if (sgn)
        patch_rel(b, jdone2, b->len);
}

/* The x86 condition of a comparison class, [class][signed]. */
static const uint8_t CC_OF[PVM_K_COUNT][2] = {
    [PVM_K_EQ] = {CC_E, CC_E},   [PVM_K_NE] = {CC_NE, CC_NE}, [PVM_K_LT] = {CC_B, CC_L},
    [PVM_K_LE] = {CC_BE, CC_LE}, [PVM_K_GT] = {CC_A, CC_G},   [PVM_K_GE] = {CC_AE, CC_GE},
};
static int cc_of(unsigned cls, unsigned sign) { return CC_OF[cls][sign == PVM_SG_S]; }

/* The x86 group-1 operation of an ALU class, and the shift/rotate of a shift class. */
static const uint8_t ALU_OF[PVM_K_COUNT] = {
    [PVM_K_ADD] = ALU_ADD, [PVM_K_SUB] = ALU_SUB, [PVM_K_AND] = ALU_AND, [PVM_K_OR] = ALU_OR,
    [PVM_K_XOR] = ALU_XOR,
};
static const uint8_t SHIFT_OF[PVM_K_COUNT] = {
    [PVM_K_SHL] = SH_SHL, [PVM_K_SHR] = SH_SHR, [PVM_K_SAR] = SH_SAR, [PVM_K_ROL] = SH_ROL,
    [PVM_K_ROR] = SH_ROR,
};
/* The F3 0F bit count of a counting class. */
static const uint8_t BITCOUNT_OF[PVM_K_COUNT] = {
    [PVM_K_POPCNT] = F3_POPCNT, [PVM_K_CLZ] = F3_LZCNT, [PVM_K_CTZ] = F3_TZCNT,
};

/* dynamic jump to the guest address a: eax = a - 2 (32-bit) on entry
   (pc for traps / finish).  a = 2 (k + 1) is jump table entry k; rotating
   a - 2 right by one gives k for an even a and, for an odd a (and for a = 0,
   as 0xFFFFFFFE), at least 0x7FFFFFFF: past any table, so one unsigned
   compare rejects them all. */
static void emit_dynamic_jump(jctx *j, uint32_t pc) {
    xbuf *b = &j->b;
    uint32_t trap = add_site(j, JIT_SITE_TRAP, pc, 0, NONE, NONE);
    uint32_t fin = add_site(j, JIT_SITE_FINISHED, pc, 0, NONE, NONE);
    x_cmp_eax_imm32(b, PVM_ADDR_RETURN_TO_HOST - 2u);
    jcc_exit(j, CC_E, fin);
    x_shift_imm(b, SZ32, SH_ROR, RAX, 1);
    _Static_assert(PVM_ADDR_RETURN_TO_HOST % 2 == 0, "the host return address is even");
    _Static_assert(PVM_MAX_JUMP_TABLE_ENTRIES < 0x7FFFFFFFu, "odd addresses rotate past any table");
    x_cmp_eax_imm32(b, j->p->jump_table_len); /* unsigned: index past the table */
    jcc_exit(j, CC_AE, trap);
    /* rdx = the jump table (rel32 patched once the table's place is known) */
    size_t tab = x_lea_rdx_rip(b, 0);
    GROW(j->tabfix, j->ntabfix, j->captabfix, 1);
    if (!j->oom)
        j->tabfix[j->ntabfix++] = (uint32_t)tab;
    /* eax = the target's offset from the code start, 0 if invalid */
    x_load_eax_rdx_rax4(b);
    x_test(b, SZ32, RAX, RAX);
    jcc_exit(j, CC_E, trap);
    /* rdx = the code start (rip-relative back to offset 0) */
    x_lea_rdx_rip(b, (uint32_t)(-(int64_t)(b->len + 7)));
    x_alu_rr(b, SZ64, ALU_ADD, RAX, RDX);
    x_jmp_reg(b, RAX);
}

/* Lazy sign extension.  PolkaVM sign-extends every 32-bit result to 64
   bits; the `movsxd` is left out where nothing can see the upper half
   before the register is written again within its block (sx_elide): the
   register then holds the result zero-extended (x86 32-bit operations clear
   the upper half), its low half right.  What sees the upper half
   ("demands" it, sx_effect): a 64-bit read (64-bit operations, compares,
   a 64-bit store's value), the end of the block (blocks start and end
   canonical: jump targets, out-of-gas, dynamic jumps) and anything that may
   exit (ecalli, traps, helpers).  What does not: the operands of 32-bit
   operations (low halves), addresses (32-bit address arithmetic), the
   values of 8/16/32-bit stores -- and memory accesses, which may fault with
   such a register unextended: the fault path (pvm_jit_classify_fault)
   re-derives from the guest pc which registers may be (pvm_jit_pending_at)
   and extends them before the state is visible.  The host may also enter
   mid-block (a call at any instruction, a resume after a segfault) with
   registers it set: pvm_jit_guard_entry (runtime.c) keeps the fault path
   from mistaking those for unextended results.  The analysis reads the
   code bytes the way the decoder does (no decoding: compile time), and the
   compiler and the fault path run the same functions. */
typedef struct {
    uint16_t demand; /* registers whose upper half the instruction (or what follows it) sees */
    uint16_t write;  /* registers it overwrites with a full 64-bit value */
    uint16_t def32;  /* the register a 32-bit operation writes (its operands read on 32 bits) */
    uint8_t lazy;    /* def32 of an op whose lowering may leave the result unextended (SX) */
} sx_eff;

#define SX_ALL ((uint16_t)((1u << PVM_NUM_REGS) - 1))

/* The 32-bit operations whose lowering ends in `if (SX) movsxd` (or the
   shift_var / alu3 / alu_imm equivalent).  The others (32-bit sar by an
   immediate, division, bit counts) always produce the extended value. */
static int sx_lazy_op(pvm_op op) {
    switch ((unsigned)op) {
    case PVM_OP_ADD_IMM_32: case PVM_OP_ADD_32: case PVM_OP_SUB_32: case PVM_OP_MUL_IMM_32:
    case PVM_OP_MUL_32: case PVM_OP_NEGATE_AND_ADD_IMM_32: case PVM_OP_SHIFT_LOGICAL_LEFT_IMM_32:
    case PVM_OP_SHIFT_LOGICAL_RIGHT_IMM_32: case PVM_OP_ROTATE_RIGHT_IMM_32:
    case PVM_OP_SHIFT_LOGICAL_LEFT_IMM_ALT_32: case PVM_OP_SHIFT_LOGICAL_RIGHT_IMM_ALT_32:
    case PVM_OP_SHIFT_ARITHMETIC_RIGHT_IMM_ALT_32: case PVM_OP_ROTATE_RIGHT_IMM_ALT_32:
    case PVM_OP_SHIFT_LOGICAL_LEFT_32: case PVM_OP_SHIFT_LOGICAL_RIGHT_32:
    case PVM_OP_SHIFT_ARITHMETIC_RIGHT_32: case PVM_OP_ROTATE_LEFT_32: case PVM_OP_ROTATE_RIGHT_32:
        return 1;
    default:
        return 0;
    }
}

/* What an op does to the upper halves, by class (sx_class_of). */
enum {
    SXC_ALL = 0,    /* sees everything: traps, helpers, ecalli, jumps, branches, Latest32 lowered forms */
    SXC_LOAD,       /* A = [B + imm] or [imm]: the base read on 32 bits */
    SXC_STORE,      /* an 8/16/32-bit value, or no register value: nothing seen */
    SXC_STORE64,    /* a 64-bit value in A (RI, RRI; B the base) */
    SXC_WRITE,      /* A = an immediate */
    SXC_DEF32,      /* a 32-bit operation: its operands' low halves read */
    SXC_DEF32_LAZY, /* ... whose lowering may leave its result unextended (sx_lazy_op) */
    SXC_SOURCES,    /* all of A from its sources (by form), read in 64 bits */
    SXC_NAMED,      /* anything else (a conditional move keeps A): every register it names */
};

static uint8_t sx_class_of(pvm_op op) {
    const pvm_insn_info *row = pvm_op_row(op);
    if (!row || (row->flags & (PVM_F_TERM | PVM_F_BRANCH)) || row->cls == PVM_K_ECALL ||
        row->cls == PVM_K_MEMSET || row->cls == PVM_K_SBRK)
        return SXC_ALL;
    if (row->flags & PVM_F_LOAD)
        return SXC_LOAD;
    if (row->flags & PVM_F_STORE) /* the value: A in RI and RRI; RII: A the base */
        return row->width == 64 && (row->form == PVM_FORM_RI || row->form == PVM_FORM_RRI) ? SXC_STORE64
                                                                                             : SXC_STORE;
    if (op == PVM_OP_LOAD_IMM || op == PVM_OP_LOAD_IMM64)
        return SXC_WRITE;
    if (row->width == 32)
        return sx_lazy_op(op) ? SXC_DEF32_LAZY : SXC_DEF32;
    switch (row->cls) {
    case PVM_K_MOV: case PVM_K_ADD: case PVM_K_SUB: case PVM_K_MUL: case PVM_K_NEG_ADD: case PVM_K_SHL:
    case PVM_K_SHR: case PVM_K_SAR: case PVM_K_ROL: case PVM_K_ROR: case PVM_K_MULH:
    case PVM_K_DIV: case PVM_K_REM: case PVM_K_AND: case PVM_K_OR: case PVM_K_XOR:
    case PVM_K_ANDN: case PVM_K_ORN: case PVM_K_XNOR: case PVM_K_LT: case PVM_K_GT:
    case PVM_K_MIN: case PVM_K_MAX: case PVM_K_POPCNT: case PVM_K_CLZ: case PVM_K_CTZ:
    case PVM_K_EXT: case PVM_K_BSWAP:
        return SXC_SOURCES;
    default:
        return SXC_NAMED;
    }
}

/* sx_class_of per lowered op, built once */
static uint8_t sx_class[PVM_LOWERED_COUNT];
static pthread_once_t sx_class_once = PTHREAD_ONCE_INIT;
static void sx_class_init(void) {
    for (unsigned op = 0; op < PVM_LOWERED_COUNT; op++)
        sx_class[op] = sx_class_of((pvm_op)op);
}

/* What instruction k does to the upper halves, read from its code bytes
   the way the decoder reads them (the op of its opcode byte, lowered as
   pvm_program_lower lowers an instruction that is neither a jump nor a
   branch -- those see everything anyway -- and its register nibbles). */
static void sx_effect(const pvm_program *p, uint32_t k, sx_eff *e) {
    e->demand = e->write = e->def32 = 0;
    e->lazy = 0;
    if ((p->insn_flags[k] & PVM_IF_IMPLICIT) || k + 1 >= p->insn_count || p->insn_block[k + 1] != p->insn_block[k]) {
        e->demand = SX_ALL; /* a trap, or the end of the block */
        return;
    }
    uint32_t pc = p->insn_pc[k];
    pvm_op raw = (pvm_op)pvm_opcode_map[p->isa][p->code[pc]];
    pvm_op op = (unsigned)raw < PVM_OP_INVALID ? pvm_lower_op(p, raw) : PVM_XOP_TRAP;
    unsigned cls = sx_class[op];
    if (cls == SXC_ALL) {
        e->demand = SX_ALL;
        return;
    }
    if (cls == SXC_STORE)
        return;
    uint8_t b0 = pc + 1 < p->code_len ? p->code[pc + 1] : 0;
    /* pvm_insn_operands: RRR a = rd (2nd byte), b = ra, c = rb (1st byte);
       RR, RRI, RRO, RRII a = low nibble, b = high nibble; RI.. a = low nibble */
    unsigned form = pvm_isa_table[op].form;
    uint16_t a, bb = (uint16_t)(1u << pvm_reg_of((uint8_t)(b0 >> 4))), c = 0;
    if (form == PVM_FORM_RRR) {
        a = (uint16_t)(1u << pvm_reg_of(pc + 2 < p->code_len ? p->code[pc + 2] : 0));
        c = bb;
        bb = (uint16_t)(1u << pvm_reg_of(b0));
    } else {
        a = (uint16_t)(1u << pvm_reg_of(b0));
    }
    switch (cls) {
    case SXC_LOAD: case SXC_WRITE: e->write = a; return;
    case SXC_STORE64: e->demand = a; return;
    case SXC_DEF32: e->def32 = a; return;
    case SXC_DEF32_LAZY: e->def32 = a; e->lazy = 1; return;
    case SXC_SOURCES:
        e->demand = form == PVM_FORM_RRR ? (uint16_t)(bb | c)
                    : (form == PVM_FORM_RR || form == PVM_FORM_RRI) ? bb : 0;
        e->write = a;
        return;
    default: /* SXC_NAMED */
        e->demand = form == PVM_FORM_RRR ? (uint16_t)(a | bb | c)
                    : (form == PVM_FORM_RR || form == PVM_FORM_RRI || form == PVM_FORM_RRO ||
                       form == PVM_FORM_RRII) ? (uint16_t)(a | bb)
                    : (form == PVM_FORM_RI || form == PVM_FORM_RIO || form == PVM_FORM_RII ||
                       form == PVM_FORM_RI64) ? a : 0;
        return;
    }
}

/* Whether the 32-bit result instruction k writes into its register (the
   def32 of sx_effect) may stay unextended: the register is written again
   within the next SX_SCAN instructions of the block before anything sees
   its upper half (a bound on the look-ahead: compile time). */
#define SX_SCAN 4
static int sx_elide(const pvm_program *p, uint32_t k, uint16_t r) {
    uint32_t end = k + 1 + SX_SCAN;
    for (uint32_t nx = k + 1; nx < end && nx < p->insn_count && p->insn_block[nx] == p->insn_block[k]; nx++) {
        sx_eff e;
        sx_effect(p, nx, &e);
        if (e.demand & r)
            return 0;
        if ((e.write | e.def32) & r)
            return 1;
    }
    return 0;
}

uint32_t pvm_jit_pending_at(const pvm_program *p, uint32_t ii) {
    if (ii >= p->insn_count || p->insn_block[ii] == NONE)
        return 0; /* sx_class was built by the compilation of the code (signal-safe here) */
    uint16_t s = 0;
    for (uint32_t k = p->insn_block[ii]; k < ii; k++) {
        sx_eff e;
        sx_effect(p, k, &e);
        s &= (uint16_t)~(e.demand | e.write | e.def32);
        if (e.lazy && sx_elide(p, k, e.def32))
            s |= e.def32;
    }
    return s;
}

static void emit_insn(jctx *j, uint32_t ii, const pvm_insn *in) {
    const pvm_program *p = j->p;
    xbuf *b = &j->b;
    uint32_t target_insn;
    pvm_op op = pvm_program_lower(p, in, &target_insn);
    /* the row of the instruction (its width, signedness and class); the
       lowered forms (no row) state theirs in their cases */
    const pvm_insn_info *row = pvm_op_row(op);
    pvm_operands o;
    pvm_insn_operands(in, &o);
    int A = H(o.a), B = H(o.b), C = H(o.c);
    uint64_t ival = o.imm;          /* the value immediate, sign-extended */
    int32_t imm = (int32_t)o.imm;   /* ... as an x86 imm32 / displacement */
    int32_t addr = (int32_t)o.addr; /* the address / offset immediate */
    int is32 = row && row->width == 32; /* 32-bit operation: result sign-extended */
    int size = is32 ? SZ32 : SZ64;
    uint32_t pc = in->pc;
    /* the result of a 32-bit operation in A sign-extended, unless nothing
       sees its upper half before A is written again (sx_elide; evaluated
       where a lowering would extend) */
#define SX (is32 && !(sx_lazy_op(op) && sx_elide(p, ii, (uint16_t)(1u << o.a))))

    switch (op) {
    /* traps and control */
    case PVM_OP_TRAP:
    case PVM_OP_INVALID:
    case PVM_XOP_TRAP:
        exit_via(j, add_site(j, JIT_SITE_TRAP, pc, 0, NONE, NONE));
        break;
    case PVM_XOP_LOAD_IMM_TRAP:
        x_mov_imm(b, A, ival);
        exit_via(j, add_site(j, JIT_SITE_TRAP, pc, 0, NONE, NONE));
        break;
    case PVM_OP_FALLTHROUGH:
        if (pvm_falls_into_invalid(p, in, op)) {
            /* the one-instruction invalid block at next(o) */
            uint32_t n = pc + in->len;
            uint32_t here = (uint32_t)b->len;
            emit_charge(j, n, p->invalid_block_cost, here);
            exit_via(j, add_site(j, JIT_SITE_TRAP, n, 0, NONE, NONE));
        }
        break;
    case PVM_OP_UNLIKELY:
        break;
    case PVM_OP_ECALLI: {
        uint32_t next = ii + 1; /* resume offset patched when the next insn is emitted */
        uint32_t site = add_site(j, JIT_SITE_ECALLI, pc, o.addr, next, NONE);
        exit_via(j, site);
        break;
    }
    /* done by C in the runtime (vm.c), with the op saying which */
    case PVM_OP_MEMSET:
    case PVM_XOP_MEMSET_32:
    case PVM_OP_SBRK:
    case PVM_XOP_SBRK_32:
        exit_via(j, add_site(j, JIT_SITE_HELPER, pc, op, ii, NONE));
        break;
    case PVM_OP_LOAD_IMM:
    case PVM_OP_LOAD_IMM64:
        x_mov_imm(b, A, ival);
        break;
    case PVM_OP_MOVE_REG:
        x_mov(b, SZ64, A, B);
        break;

    /* memory: width and signedness from the row */
    case PVM_OP_LOAD_U8: case PVM_OP_LOAD_I8: case PVM_OP_LOAD_U16: case PVM_OP_LOAD_I16:
    case PVM_OP_LOAD_U32: case PVM_OP_LOAD_I32: case PVM_OP_LOAD_U64:
        emit_load(b, row, A, -1, addr);
        break;
    case PVM_OP_LOAD_INDIRECT_U8: case PVM_OP_LOAD_INDIRECT_I8: case PVM_OP_LOAD_INDIRECT_U16:
    case PVM_OP_LOAD_INDIRECT_I16: case PVM_OP_LOAD_INDIRECT_U32: case PVM_OP_LOAD_INDIRECT_I32:
    case PVM_OP_LOAD_INDIRECT_U64:
        emit_load(b, row, A, B, imm);
        break;
    case PVM_OP_STORE_U8: case PVM_OP_STORE_U16: case PVM_OP_STORE_U32: case PVM_OP_STORE_U64:
        emit_store_reg(b, row, A, -1, addr);
        break;
    case PVM_OP_STORE_INDIRECT_U8: case PVM_OP_STORE_INDIRECT_U16: case PVM_OP_STORE_INDIRECT_U32:
    case PVM_OP_STORE_INDIRECT_U64:
        emit_store_reg(b, row, A, B, imm);
        break;
    case PVM_OP_STORE_IMM_U8: case PVM_OP_STORE_IMM_U16: case PVM_OP_STORE_IMM_U32:
    case PVM_OP_STORE_IMM_U64:
        emit_store_imm(b, row, ival, -1, addr);
        break;
    case PVM_OP_STORE_IMM_INDIRECT_U8: case PVM_OP_STORE_IMM_INDIRECT_U16:
    case PVM_OP_STORE_IMM_INDIRECT_U32: case PVM_OP_STORE_IMM_INDIRECT_U64:
        emit_store_imm(b, row, ival, A, addr);
        break;

    /* jumps and branches: the condition from the row's class and signedness */
    case PVM_OP_JUMP:
        jump_to_insn(j, x_jmp(b), target_insn);
        break;
    case PVM_OP_LOAD_IMM_AND_JUMP:
        x_mov_imm(b, A, ival);
        jump_to_insn(j, x_jmp(b), target_insn);
        break;
    case PVM_OP_JUMP_INDIRECT:
        x_lea(b, SZ32, RAX, A, -1, (int32_t)((uint32_t)imm - 2u));
        emit_dynamic_jump(j, pc);
        break;
    case PVM_OP_LOAD_IMM_AND_JUMP_INDIRECT:
        x_lea(b, SZ32, RAX, B, -1, (int32_t)((uint32_t)addr - 2u));
        x_mov_imm(b, A, ival);
        emit_dynamic_jump(j, pc);
        break;
    case PVM_OP_BRANCH_EQ: case PVM_OP_BRANCH_NOT_EQ: case PVM_OP_BRANCH_LESS_UNSIGNED:
    case PVM_OP_BRANCH_LESS_SIGNED: case PVM_OP_BRANCH_GREATER_OR_EQUAL_UNSIGNED:
    case PVM_OP_BRANCH_GREATER_OR_EQUAL_SIGNED:
        x_alu_rr(b, SZ64, ALU_CMP, A, B);
        jump_to_insn(j, x_jcc(b, cc_of(row->cls, row->sign)), target_insn);
        break;
    case PVM_OP_BRANCH_EQ_IMM: case PVM_OP_BRANCH_NOT_EQ_IMM: case PVM_OP_BRANCH_LESS_UNSIGNED_IMM:
    case PVM_OP_BRANCH_LESS_SIGNED_IMM: case PVM_OP_BRANCH_GREATER_OR_EQUAL_UNSIGNED_IMM:
    case PVM_OP_BRANCH_GREATER_OR_EQUAL_SIGNED_IMM: case PVM_OP_BRANCH_LESS_OR_EQUAL_SIGNED_IMM:
    case PVM_OP_BRANCH_LESS_OR_EQUAL_UNSIGNED_IMM: case PVM_OP_BRANCH_GREATER_SIGNED_IMM:
    case PVM_OP_BRANCH_GREATER_UNSIGNED_IMM:
        cmp_imm(b, A, imm);
        jump_to_insn(j, x_jcc(b, cc_of(row->cls, row->sign)), target_insn);
        break;

    /* ALU, A = B op imm / A = B op C: operation and width from the row */
    case PVM_OP_ADD_IMM_32: case PVM_OP_ADD_IMM_64: case PVM_OP_AND_IMM: case PVM_OP_XOR_IMM:
    case PVM_OP_OR_IMM:
        if (row->cls == PVM_K_AND && (imm == 0xFF || imm == 0xFFFF)) {
            /* the low byte / half-word, zero-extended: one instruction, any registers */
            if (imm == 0xFF)
                x_movzx8(b, A, B);
            else
                x_movzx16(b, A, B);
            break;
        }
        alu_imm(b, is32, SX, ALU_OF[row->cls], A, B, imm);
        break;
    case PVM_OP_ADD_32: case PVM_OP_ADD_64: case PVM_OP_SUB_32: case PVM_OP_SUB_64: case PVM_OP_AND:
    case PVM_OP_XOR: case PVM_OP_OR:
        alu3(b, is32, SX, ALU_OF[row->cls], A, B, C);
        break;
    case PVM_OP_MUL_IMM_32:
        x_imul_imm(b, SZ32, A, B, imm);
        if (SX)
            x_movsxd(b, A, A);
        break;
    case PVM_OP_MUL_IMM_64:
        x_imul_imm(b, SZ64, A, B, imm);
        break;
    case PVM_OP_MUL_32: case PVM_OP_MUL_64:
        if (A == B) {
            x_imul_rr(b, size, A, C);
        } else if (A == C) {
            x_imul_rr(b, size, A, B);
        } else {
            x_mov(b, size, A, B);
            x_imul_rr(b, size, A, C);
        }
        if (SX)
            x_movsxd(b, A, A);
        break;
    case PVM_OP_NEGATE_AND_ADD_IMM_32: case PVM_OP_NEGATE_AND_ADD_IMM_64:
        if (A != B) { /* A = imm, less B */
            x_mov_imm(b, A, ival);
            x_alu_rr(b, size, ALU_SUB, A, B);
            if (SX)
                x_movsxd(b, A, A);
            break;
        }
        if (ival == (uint64_t)(int64_t)imm) { /* A = -A + imm */
            x_grp3(b, size, GRP3_NEG, A);
            x_alu_imm(b, size, ALU_ADD, A, imm);
            if (SX)
                x_movsxd(b, A, A);
            break;
        }
        x_mov_imm(b, RAX, ival);
        x_alu_rr(b, size, ALU_SUB, RAX, B);
        if (is32)
            w32_from_rax(b, A);
        else
            x_mov(b, SZ64, A, RAX);
        break;
    case PVM_OP_SET_LESS_THAN_UNSIGNED_IMM: case PVM_OP_SET_LESS_THAN_SIGNED_IMM:
    case PVM_OP_SET_GREATER_THAN_UNSIGNED_IMM: case PVM_OP_SET_GREATER_THAN_SIGNED_IMM:
        set_cc_cmp_imm(b, cc_of(row->cls, row->sign), A, B, imm);
        break;
    case PVM_OP_SET_LESS_THAN_UNSIGNED: case PVM_OP_SET_LESS_THAN_SIGNED:
        set_cc_cmp_rr(b, cc_of(row->cls, row->sign), A, B, C);
        break;

    /* shifts and rotates: A = B sh imm; ALT: A = imm sh B; A = B sh C */
    case PVM_OP_SHIFT_LOGICAL_LEFT_IMM_32: case PVM_OP_SHIFT_LOGICAL_RIGHT_IMM_32:
    case PVM_OP_SHIFT_ARITHMETIC_RIGHT_IMM_32: case PVM_OP_ROTATE_RIGHT_IMM_32:
    case PVM_OP_SHIFT_LOGICAL_LEFT_IMM_64: case PVM_OP_SHIFT_LOGICAL_RIGHT_IMM_64:
    case PVM_OP_SHIFT_ARITHMETIC_RIGHT_IMM_64: case PVM_OP_ROTATE_RIGHT_IMM_64:
    {
        unsigned amount = (unsigned)imm & (row->width - 1u);
        int sh = SHIFT_OF[row->cls];
        if (sh == SH_ROR && have_bmi2 && A != B) {
            x_rorx(b, size, A, B, amount); /* three operands, no copy */
        } else if (is32 && sh == SH_SAR) {
            /* the sign extension first: the 64-bit arithmetic shift of it
               is the shifted value, already sign-extended */
            x_movsxd(b, A, B);
            x_shift_imm(b, SZ64, SH_SAR, A, amount);
            break;
        } else {
            if (A != B)
                x_mov(b, size, A, B);
            x_shift_imm(b, size, sh, A, amount);
        }
        /* a 32-bit logical right shift by 1..31 clears bit 31: the x86
           zero extension is then the sign extension */
        if (is32 && !(sh == SH_SHR && amount != 0) && SX)
            x_movsxd(b, A, A);
        break;
    }
    case PVM_OP_SHIFT_LOGICAL_LEFT_IMM_ALT_32: case PVM_OP_SHIFT_LOGICAL_RIGHT_IMM_ALT_32:
    case PVM_OP_SHIFT_ARITHMETIC_RIGHT_IMM_ALT_32: case PVM_OP_ROTATE_RIGHT_IMM_ALT_32:
    case PVM_OP_SHIFT_LOGICAL_LEFT_IMM_ALT_64: case PVM_OP_SHIFT_LOGICAL_RIGHT_IMM_ALT_64:
    case PVM_OP_SHIFT_ARITHMETIC_RIGHT_IMM_ALT_64: case PVM_OP_ROTATE_RIGHT_IMM_ALT_64:
        x_mov_imm(b, RAX, ival);
        shift_var(b, is32, SX, SHIFT_OF[row->cls], A, RAX, B);
        break;
    case PVM_OP_SHIFT_LOGICAL_LEFT_32: case PVM_OP_SHIFT_LOGICAL_RIGHT_32:
    case PVM_OP_SHIFT_ARITHMETIC_RIGHT_32: case PVM_OP_ROTATE_LEFT_32: case PVM_OP_ROTATE_RIGHT_32:
    case PVM_OP_SHIFT_LOGICAL_LEFT_64: case PVM_OP_SHIFT_LOGICAL_RIGHT_64:
    case PVM_OP_SHIFT_ARITHMETIC_RIGHT_64: case PVM_OP_ROTATE_LEFT_64: case PVM_OP_ROTATE_RIGHT_64:
        shift_var(b, is32, SX, SHIFT_OF[row->cls], A, B, C);
        break;

    /* conditional moves, min / max */
    case PVM_OP_CMOV_IF_ZERO_IMM: case PVM_OP_CMOV_IF_NOT_ZERO_IMM:
        x_mov_imm(b, RAX, ival);
        x_test(b, SZ64, B, B);
        x_cmov(b, SZ64, row->cls == PVM_K_CMOV_Z ? CC_E : CC_NE, A, RAX);
        break;
    case PVM_OP_CMOV_IF_ZERO: case PVM_OP_CMOV_IF_NOT_ZERO:
        x_test(b, SZ64, C, C);
        x_cmov(b, SZ64, row->cls == PVM_K_CMOV_Z ? CC_E : CC_NE, A, B);
        break;
    case PVM_OP_MAXIMUM: case PVM_OP_MAXIMUM_UNSIGNED: case PVM_OP_MINIMUM: case PVM_OP_MINIMUM_UNSIGNED:
        /* A = B if B > C (max) / B < C (min), else C */
    {
        int cc = cc_of(row->cls == PVM_K_MAX ? PVM_K_GT : PVM_K_LT, row->sign);
        if (A == B) {
            x_alu_rr(b, SZ64, ALU_CMP, B, C);
            x_cmov(b, SZ64, cc ^ 1, A, C); /* the opposite condition: A = C */
        } else {
            x_mov(b, SZ64, A, C);
            x_alu_rr(b, SZ64, ALU_CMP, B, C);
            x_cmov(b, SZ64, cc, A, B);
        }
        break;
    }

    /* multiply high (the Latest32 forms on the low 32 bits) */
    case PVM_OP_MUL_UPPER_SIGNED_SIGNED: case PVM_OP_MUL_UPPER_UNSIGNED_UNSIGNED:
        x_mov(b, SZ64, RAX, B);
        x_grp3(b, SZ64, row->sign == PVM_SG_S ? GRP3_IMUL : GRP3_MUL, C);
        x_mov(b, SZ64, A, RDX);
        break;
    case PVM_OP_MUL_UPPER_SIGNED_UNSIGNED: {
        /* unsigned high half, less C when B is negative */
        x_mov(b, SZ64, RAX, B);
        x_grp3(b, SZ64, GRP3_MUL, C);
        x_test(b, SZ64, B, B);
        size_t at = x_jcc(b, CC_NS);
        x_alu_rr(b, SZ64, ALU_SUB, RDX, C);
        patch_rel(b, at, b->len);
        x_mov(b, SZ64, A, RDX);
        break;
    }
    case PVM_XOP_MUL_UPPER_SS_32:
    case PVM_XOP_MUL_UPPER_UU_32:
    case PVM_XOP_MUL_UPPER_SU_32: {
        /* the 64-bit product of the 32-bit operands, its upper half */
        int sb = op != PVM_XOP_MUL_UPPER_UU_32, sc = op == PVM_XOP_MUL_UPPER_SS_32;
        if (sb)
            x_movsxd(b, RAX, B);
        else
            x_mov(b, SZ32, RAX, B);
        if (sc)
            x_movsxd(b, RDX, C);
        else
            x_mov(b, SZ32, RDX, C);
        x_imul_rr(b, SZ64, RAX, RDX);
        x_shift_imm(b, SZ64, sb ? SH_SAR : SH_SHR, RAX, 32);
        w32_from_rax(b, A);
        break;
    }

    /* division and remainder */
    case PVM_OP_DIV_UNSIGNED_32: case PVM_OP_DIV_SIGNED_32: case PVM_OP_REM_UNSIGNED_32:
    case PVM_OP_REM_SIGNED_32: case PVM_OP_DIV_UNSIGNED_64: case PVM_OP_DIV_SIGNED_64:
    case PVM_OP_REM_UNSIGNED_64: case PVM_OP_REM_SIGNED_64:
        emit_div(b, is32, row->sign == PVM_SG_S, row->cls == PVM_K_REM, A, B, C);
        break;

    /* bitwise with an inverted operand */
    case PVM_OP_AND_INVERTED: case PVM_OP_OR_INVERTED: {
        /* A = B op ~C */
        if (row->cls == PVM_K_ANDN && have_bmi2) {
            x_andn(b, SZ64, A, C, B); /* BMI1 (checked with BMI2) */
            break;
        }
        int t = A == B ? RAX : A;
        x_mov(b, SZ64, t, C);
        x_grp3(b, SZ64, GRP3_NOT, t);
        x_alu_rr(b, SZ64, row->cls == PVM_K_ANDN ? ALU_AND : ALU_OR, A == B ? A : t, A == B ? t : B);
        break;
    }
    case PVM_OP_XNOR:
        alu3(b, 0, 0, ALU_XOR, A, B, C);
        x_grp3(b, SZ64, GRP3_NOT, A);
        break;

    /* RR: A = f(B) */
    case PVM_OP_COUNT_SET_BITS_32: case PVM_OP_COUNT_SET_BITS_64:
    case PVM_OP_COUNT_LEADING_ZERO_BITS_32: case PVM_OP_COUNT_LEADING_ZERO_BITS_64:
    case PVM_OP_COUNT_TRAILING_ZERO_BITS_32: case PVM_OP_COUNT_TRAILING_ZERO_BITS_64:
        x_f3(b, size, BITCOUNT_OF[row->cls], A, B);
        break;
    case PVM_OP_SIGN_EXTEND_8: case PVM_OP_SIGN_EXTEND_16: case PVM_OP_ZERO_EXTEND_16:
        if (row->sign != PVM_SG_S)
            x_movzx16(b, A, B); /* the one zero extension: 16 bits */
        else if (row->width == 8)
            x_movsx8(b, A, B);
        else
            x_movsx16(b, A, B);
        break;
    case PVM_OP_REVERSE_BYTE:
        x_mov(b, SZ64, A, B);
        x_bswap(b, SZ64, A);
        break;
    case PVM_XOP_REVERSE_BYTE_32:
        x_mov(b, SZ32, RAX, B);
        x_bswap(b, SZ32, RAX);
        w32_from_rax(b, A);
        break;
    }
#undef SX
}

void pvm_jit_free(pvm_jit_code *c) {
    if (!c)
        return;
    if (c->code)
        munmap(c->code, c->code_size);
    free(c->insn_off);
    free(c->sites);
    free(c->mem_off);
    free(c->mem_insn);
    free(c->oog_insn);
    free(c);
}

#include <cpuid.h>

static int cpu_has_bmi2(void) {
    unsigned a, b, c, d;
    if (getenv("PVM_JIT_NO_BMI2"))
        return 0;
    /* BMI2 (shlx, shrx, sarx, rorx) and BMI1 (andn): both or neither */
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 8)) && (b & (1u << 3));
}

#define HUGE_PAGE ((size_t)2 << 20)

/* The code buffer: a private reservation of the code size limit, written in
   place (only the pages written are ever backed) and made executable at the
   end.  The pages the code will most likely use (`guess` bytes) are faulted
   in with one call: one page fault per 4 KiB written costs more than the
   writing.  When the guess reaches 2 MiB, the reservation starts on a 2 MiB
   boundary and the guess rounded to whole 2 MiB pieces is asked for as
   transparent huge pages (one fault and one clearing per 2 MiB instead of
   512: doom.polkavm's 2.6 MB of code took 1.6 ms of page faults in 4 KiB
   pages, 0.2 ms in huge pages).  Both are hints: a kernel without them faults
   4 KiB pages in one by one as they are written. */
static int map_code(xbuf *b, size_t limit, size_t guess, size_t *huge_out) {
    size_t cap = (limit + 4095) & ~(size_t)4095;
    if (guess > cap)
        guess = cap;
    size_t huge = (guess + HUGE_PAGE / 2) & ~(HUGE_PAGE - 1); /* to the nearest 2 MiB */
    if (huge > (cap & ~(HUGE_PAGE - 1)))
        huge = cap & ~(HUGE_PAGE - 1);
    size_t extra = huge ? HUGE_PAGE : 0; /* room to align the start */
    void *m = mmap(NULL, cap + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    uint8_t *start = m;
    if (extra) {
        uintptr_t a = ((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
        start = (uint8_t *)a;
        size_t head = (size_t)(start - (uint8_t *)m);
        if (head)
            munmap(m, head);
        if (extra - head)
            munmap(start + cap, extra - head);
#ifdef MADV_HUGEPAGE
        (void)madvise(start, huge, MADV_HUGEPAGE);
#endif
    }
    *huge_out = huge;
    b->p = start;
    b->cap = cap;
    b->len = 0;
    b->mapped = 1;
#ifdef MADV_POPULATE_WRITE
    guess = huge > guess ? huge : (guess + 4095) & ~(size_t)4095;
    if (guess)
        (void)madvise(start, guess, MADV_POPULATE_WRITE);
#endif
    return 0;
}

/* The compile-time tables (cold stubs, jump fix-ups, jump table fix-ups)
   are handed from one compilation to the next: a fresh allocation of this
   size is a fresh mapping, and every 4 KiB page written in it is a page
   fault (2-3 us each on this kind of VM: ~0.5 ms for doom.polkavm's
   ~0.9 MB).  At most one set is kept, the largest yet (freed never: it
   is reused for the life of the process). */
static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    label_fix *fix;
    size_t capfix;
    cold_req *cold;
    size_t capcold;
    uint32_t *tabfix;
    size_t captabfix;
    uint32_t *oog_at;
    size_t capoog;
} scratch;

static void take_scratch(jctx *j) {
    pthread_mutex_lock(&scratch_lock);
    j->fix = scratch.fix;
    j->capfix = scratch.capfix;
    j->cold = scratch.cold;
    j->capcold = scratch.capcold;
    j->tabfix = scratch.tabfix;
    j->captabfix = scratch.captabfix;
    j->oog_at = scratch.oog_at;
    j->capoog = scratch.capoog;
    memset(&scratch, 0, sizeof scratch);
    pthread_mutex_unlock(&scratch_lock);
}

/* Gives each table back to the scratch set if it is larger than the one
   there (another compilation may have given one back meanwhile). */
#define GIVE_BACK(name, cap)                                                        \
    do {                                                                            \
        if (j->cap > scratch.cap) {                                                 \
            free(scratch.name);                                                     \
            scratch.name = j->name;                                                 \
            scratch.cap = j->cap;                                                   \
        } else {                                                                    \
            free(j->name);                                                          \
        }                                                                           \
        j->name = NULL;                                                             \
        j->cap = 0;                                                                 \
    } while (0)

static void free_ctx(jctx *j) {
    xb_unmap(&j->b);
    pthread_mutex_lock(&scratch_lock);
    GIVE_BACK(fix, capfix);
    GIVE_BACK(cold, capcold);
    GIVE_BACK(tabfix, captabfix);
    GIVE_BACK(oog_at, capoog);
    pthread_mutex_unlock(&scratch_lock);
}

/* The shared out-of-gas stub and the blocks' thunks after it (jit.h):
     stub:    pop rdx                      ; the end of thunk k
              lea rax, [rip + thunks]
              sub edx, eax                 ; 5 (k + 1)
              or edx, JIT_OOG_TAG
              jmp exit
     thunk k: call stub                    ; the `js` of block k's charge lands here */
#define OOG_STUB_LEN 21u
static void emit_oog_thunks(jctx *j) {
    pvm_jit_code *c = j->c;
    xbuf *b = &j->b;
    if (!c->oog_count || b->oom)
        return;
    size_t stub = b->len, thunks = stub + OOG_STUB_LEN;
    size_t need = OOG_STUB_LEN + (size_t)c->oog_count * JIT_OOG_THUNK_LEN;
    if (need > b->cap - b->len) {
        b->oom = 1;
        return;
    }
    uint8_t *q = b->p + stub;
    int32_t rel = (int32_t)(thunks - (stub + 8));
    int32_t to_exit = (int32_t)((int64_t)c->exit_off - (int64_t)(stub + OOG_STUB_LEN));
    uint32_t tag = JIT_OOG_TAG;
    q[0] = 0x5A;                               /* pop rdx */
    q[1] = 0x48, q[2] = 0x8D, q[3] = 0x05;     /* lea rax, [rip + rel32] */
    memcpy(q + 4, &rel, 4);
    q[8] = 0x29, q[9] = 0xC2;                  /* sub edx, eax */
    q[10] = 0x81, q[11] = 0xCA;                /* or edx, imm32 */
    memcpy(q + 12, &tag, 4);
    q[16] = 0xE9;                              /* jmp rel32 */
    memcpy(q + 17, &to_exit, 4);
    uint8_t *t = b->p + thunks;
    const uint32_t *at = j->oog_at;
    for (uint32_t k = 0; k < c->oog_count; k++, t += JIT_OOG_THUNK_LEN) {
        size_t here = thunks + (size_t)k * JIT_OOG_THUNK_LEN;
        uint32_t js = (uint32_t)(here - (at[k] + 4)), call = (uint32_t)(stub - (here + JIT_OOG_THUNK_LEN));
        memcpy(b->p + at[k], &js, 4);
        t[0] = 0xE8; /* call rel32 */
        memcpy(t + 1, &call, 4);
    }
    b->len = stub + need;
}

pvm_jit_code *pvm_jit_compile(const pvm_program *p, int metered, char *err, size_t err_len) {
    have_bmi2 = cpu_has_bmi2();
    pthread_once(&sx_class_once, sx_class_init);
    jctx jj;
    jctx *j = &jj;
    memset(j, 0, sizeof *j);
    j->charge_insn = NONE;
    take_scratch(j);
    j->p = p;
    j->metered = metered;
    pvm_jit_code *c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    j->c = c;
    c->metered = metered;
    uint32_t n = p->insn_count;
    size_t mem_count = 0;
    c->insn_off = malloc((n ? n : 1) * sizeof(uint32_t));
    if (!c->insn_off)
        goto oom;
    pvm_prefault(c->insn_off, (size_t)n * sizeof(uint32_t));
    memset(c->insn_off, 0xFF, (n ? n : 1) * sizeof(uint32_t));
    c->charge_len = metered ? CHARGE_LEN : 0;
    if (map_code(&j->b, p->jit_code_limit, (size_t)n * JIT_BYTES_PER_INSN_GUESS, &j->huge) != 0) {
        pvm_set_err(err, err_len, "cannot reserve memory for JIT code");
        goto fail;
    }
    size_t mem_cap = 0, mem_insn_cap = 0;
    /* Room for what a program of this size typically needs (every block has
       an out-of-gas site and stub; real programs have under one static jump
       per four instructions and one memory access per two), so the arrays
       are not copied over and over as they grow; unused room is never
       touched, and the kept tables are shrunk at the end. */
    {
        size_t exits = (size_t)n / 16 + 64;
        GROW(c->sites, 0, j->sites_cap, exits);
        GROW(j->cold, 0, j->capcold, exits);
        GROW(j->fix, 0, j->capfix, (size_t)n / 4 + 64);
        GROW(c->mem_off, 0, mem_cap, (size_t)n / 2 + 64);
        /* an out-of-gas thunk per block (metered) */
        size_t blocks = metered ? p->block_count : 0;
        GROW(j->oog_at, 0, j->capoog, blocks);
        if (j->oom)
            goto oom;
        c->mem_insn = malloc(mem_cap * sizeof(uint32_t));
        c->oog_insn = malloc((blocks ? blocks : 1) * sizeof(uint32_t));
        if (!c->mem_insn || !c->oog_insn)
            goto oom;
        mem_insn_cap = mem_cap;
        j->oog_room = blocks;
    }

    emit_prologue_epilogue(j);
    c->body_off = (uint32_t)j->b.len;
    for (uint32_t i = 0; i < n && !j->oom && !j->b.oom; i++) {
        if (p->insn_block[i] == NONE)
            continue;
        pvm_insn in;
        pvm_program_decode(p, i, &in);
        if (p->insn_block[i] == i) {
            size_t at = j->b.len;
            j->charge_insn = i;
            emit_charge(j, in.pc, p->block_cost[i], (uint32_t)at);
            j->charge_insn = NONE;
            if (j->b.len - at != c->charge_len && !j->b.oom) {
                pvm_set_err(err, err_len, "internal JIT error: gas charge of %zu bytes", j->b.len - at);
                goto fail;
            }
        }
        c->insn_off[i] = (uint32_t)j->b.len;
        unsigned op = in.op;
        if (op < PVM_OP_INVALID && (pvm_isa_table[op].cls == PVM_K_LOAD || pvm_isa_table[op].cls == PVM_K_STORE)) {
            GROW(c->mem_off, mem_count, mem_cap, 1);
            if (j->oom)
                break;
            if (mem_cap != mem_insn_cap) {
                uint32_t *q = realloc(c->mem_insn, mem_cap * sizeof(uint32_t));
                if (!q) {
                    j->oom = 1;
                    break;
                }
                c->mem_insn = q;
                mem_insn_cap = mem_cap;
            }
            c->mem_off[mem_count] = (uint32_t)j->b.len;
            c->mem_insn[mem_count] = i;
            c->mem_count = (uint32_t)++mem_count;
        }
        emit_insn(j, i, &in);
    }
    /* a final trap so nothing ever runs past the end */
    uint32_t end_site = add_site(j, JIT_SITE_TRAP, p->code_len, 0, NONE, NONE);
    exit_via(j, end_site);
    /* cold stubs */
    c->cold_off = (uint32_t)j->b.len;
    for (size_t k = 0; k < j->ncold && !j->b.oom; k++) {
        patch_rel(&j->b, j->cold[k].at, j->b.len);
        if (j->cold[k].cost) {
            x_frame(&j->b, OP_ALU_IMM32, 1, ALU_ADD, FRAME_GAS, 1);
            xb32(&j->b, j->cold[k].cost);
        }
        exit_via(j, j->cold[k].site);
    }
    emit_oog_thunks(j);
    /* the jump table: u32 offsets from the code start, read-only data after the code */
    while (j->b.len % 4 && !j->b.oom)
        x_int3(&j->b);
    size_t table_at = j->b.len;
    c->table_off = (uint32_t)table_at;
    for (uint32_t k = 0; k < p->jump_table_len && !j->b.oom; k++) {
        uint32_t ii = pvm_program_target(p, p->jump_table[k]);
        uint32_t off = ii == NONE ? NONE : pvm_jit_charge_off(p, c, ii);
        xb32(&j->b, off == NONE ? 0 : off);
    }
    if (j->b.oom && !j->oom) {
        pvm_set_err(err, err_len, "the program compiles to more than %zu bytes of machine code "
                    "(the JIT's code size limit)", p->jit_code_limit);
        goto fail;
    }
    if (j->oom)
        goto oom;
    for (size_t k = 0; k < j->ntabfix; k++)
        patch_rel(&j->b, j->tabfix[k], table_at);
    /* static jumps */
    for (size_t k = 0; k < j->nfix; k++) {
        uint32_t t = j->fix[k].target_insn;
        uint32_t off = t == NONE ? NONE : pvm_jit_charge_off(p, c, t);
        if (off == NONE) {
            pvm_set_err(err, err_len, "internal JIT error: unresolved jump target");
            goto fail;
        }
        patch_rel(&j->b, j->fix[k].at, off);
    }
    /* resume points of ecalli sites: the next instruction's code */
    for (uint32_t s = 0; s < c->site_count; s++) {
        pvm_jit_site *st = &c->sites[s];
        if (st->kind == JIT_SITE_ECALLI) {
            uint32_t nx = st->insn;
            st->resume_off = nx < n ? c->insn_off[nx] : NONE;
            if (st->resume_off == NONE) {
                pvm_set_err(err, err_len, "internal JIT error: ecalli without a successor");
                goto fail;
            }
        }
    }
    /* the code: executable and never writable again; the unused rest of the
       reservation goes back */
    c->code_len = j->b.len;
    c->code_size = (c->code_len + 4095) & ~(size_t)4095;
    /* code ending in the second half of its last huge page keeps all of it:
       unmapping or protecting part of a huge page splits it into 4 KiB
       pages, which cost doom.polkavm (1.97 MB of code) 0.7-2.7 ms of CPU
       per compile (C driver, by turns); at most 1 MiB stays mapped unused */
    if (j->huge && c->code_size < j->huge && (c->code_size & (HUGE_PAGE - 1)) > HUGE_PAGE / 2)
        c->code_size = (c->code_size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    if (c->code_size < j->b.cap)
        munmap(j->b.p + c->code_size, j->b.cap - c->code_size);
    j->b.cap = c->code_size;
    if (mprotect(j->b.p, c->code_size, PROT_READ | PROT_EXEC) != 0) {
        pvm_set_err(err, err_len, "cannot make JIT code executable");
        goto fail;
    }
    c->code = j->b.p;
    j->b.p = NULL;
    j->b.cap = 0;
    /* shrink the tables to what was used */
    if (c->site_count) {
        pvm_jit_site *q = realloc(c->sites, c->site_count * sizeof *q);
        if (q)
            c->sites = q;
    }
    if (c->mem_count) {
        uint32_t *q = realloc(c->mem_off, c->mem_count * sizeof *q);
        if (q)
            c->mem_off = q;
        q = realloc(c->mem_insn, c->mem_count * sizeof *q);
        if (q)
            c->mem_insn = q;
    }
    static uint64_t next_id = 1;
    c->id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
    free_ctx(j);
    return c;
oom:
    pvm_set_err(err, err_len, "out of memory while compiling");
fail:
    free_ctx(j);
    pvm_jit_free(c);
    return NULL;
}
