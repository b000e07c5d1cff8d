/*
 * emit_x64.h -- small x86-64 encoding helpers for the JIT.
 *
 * Guest memory is addressed as gs:[base32 + disp32] (GS segment base = the
 * guest's 4 GiB region, 0x67 prefix = 32-bit address arithmetic, so the
 * effective guest address wraps modulo 2^32 exactly as PolkaVM's does).
 */
#ifndef PVM_EMIT_X64_H
#define PVM_EMIT_X64_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { RAX = 0, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

/* condition codes */
enum { CC_O = 0, CC_NO, CC_B, CC_AE, CC_E, CC_NE, CC_BE, CC_A, CC_S, CC_NS, CC_P, CC_NP,
       CC_L, CC_GE, CC_LE, CC_G };

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int oom;      /* out of memory, or (mapped) past the limit */
    int mapped;   /* p is a fixed mapping of cap bytes that never grows */
} xbuf;

/* Writes go straight into a private mapping of `limit` bytes (only the pages
   written are ever backed); going past it sets oom. */
static inline int xb_map(xbuf *b, size_t limit) {
    size_t cap = (limit + 4095) & ~(size_t)4095;
    void *m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    b->p = m;
    b->cap = cap;
    b->len = 0;
    b->mapped = 1;
    return 0;
}

static inline void xb_unmap(xbuf *b) {
    if (b->p && b->mapped)
        munmap(b->p, b->cap);
    else
        free(b->p);
    b->p = NULL;
    b->cap = 0;
}

static inline void xb_reserve(xbuf *b, size_t n) {
    if (b->len + n <= b->cap)
        return;
    if (b->mapped) {
        b->oom = 1;
        return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *q = realloc(b->p, cap);
    if (!q) {
        b->oom = 1;
        return;
    }
    b->p = q;
    b->cap = cap;
}

static inline void xb_bytes(xbuf *b, const void *src, size_t n) {
    xb_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static inline void xb8(xbuf *b, unsigned v) { uint8_t x = (uint8_t)v; xb_bytes(b, &x, 1); }
static inline void xb32(xbuf *b, uint32_t v) { xb_bytes(b, &v, 4); }
static inline void xb64(xbuf *b, uint64_t v) { xb_bytes(b, &v, 8); }
static inline void xb_patch32(xbuf *b, size_t at, uint32_t v) {
    if (!b->oom)
        memcpy(b->p + at, &v, 4);
}

/* operand size */
enum { SZ8 = 1, SZ16 = 2, SZ32 = 4, SZ64 = 8 };

/* One instruction is assembled in a local buffer (which the compiler keeps
   out of memory: nothing can alias it) and copied into the code with one
   fixed-size copy and one bounds check, instead of a bounds check, a store
   and a reload of the buffer's length per byte. */
#define XI_MAX 32
typedef struct {
    uint8_t t[XI_MAX];
    unsigned n;
} xi;
#define XI_INIT {{0}, 0}
static inline void xi8(xi *i, unsigned v) { i->t[i->n++] = (uint8_t)v; }
static inline void xi32(xi *i, uint32_t v) {
    memcpy(i->t + i->n, &v, 4);
    i->n += 4;
}
static inline void xi_ops(xi *i, const uint8_t *op, int n) {
    for (int k = 0; k < n; k++)
        xi8(i, op[k]);
}
static inline void xi_put(xbuf *b, const xi *i) {
    if (b->len + XI_MAX <= b->cap) {
        memcpy(b->p + b->len, i->t, XI_MAX); /* the bytes past n are written over later */
        b->len += i->n;
    } else {
        xb_bytes(b, i->t, i->n);
    }
}

/* REX prefix for reg (ModRM.reg), rm (ModRM.rm / base), index */
static inline void xi_rex(xi *i, int w, int reg, int rm, int force) {
    unsigned rex = 0x40 | (w ? 8 : 0) | ((reg & 8) ? 4 : 0) | ((rm & 8) ? 1 : 0);
    if (rex != 0x40 || force)
        xi8(i, rex);
}
static inline void x_rex(xbuf *b, int w, int reg, int rm, int force) {
    xi i = XI_INIT;
    xi_rex(&i, w, reg, rm, force);
    xi_put(b, &i);
}

/* op reg, rm (register-direct).  opcode bytes in op[0..n). */
static inline void xi_rr(xi *i, int size, const uint8_t *op, int n, int reg, int rm) {
    if (size == SZ16)
        xi8(i, 0x66);
    /* byte registers spl/bpl/sil/dil need a REX prefix */
    int force = size == SZ8 && ((reg >= 4 && reg < 8) || (rm >= 4 && rm < 8));
    xi_rex(i, size == SZ64, reg, rm, force);
    xi_ops(i, op, n);
    xi8(i, 0xC0 | ((reg & 7) << 3) | (rm & 7));
}
static inline void x_rr(xbuf *b, int size, const uint8_t *op, int n, int reg, int rm) {
    xi i = XI_INIT;
    xi_rr(&i, size, op, n, reg, rm);
    xi_put(b, &i);
}

/* op reg, gs:[base32 + disp32]; base < 0 means absolute disp32 */
static inline void xi_mem(xi *i, int size, const uint8_t *op, int n, int reg, int base, int32_t disp) {
    xi8(i, 0x65); /* gs */
    if (size == SZ16)
        xi8(i, 0x66);
    xi8(i, 0x67); /* 32-bit addressing */
    int force = size == SZ8 && reg >= 4 && reg < 8;
    xi_rex(i, size == SZ64, reg, base < 0 ? 0 : base, force);
    xi_ops(i, op, n);
    if (base < 0) {
        xi8(i, 0x04 | ((reg & 7) << 3));
        xi8(i, 0x25);
        xi32(i, (uint32_t)disp);
        return;
    }
    /* the shortest displacement: none (except for a base of rbp / r13,
       whose mod 00 means disp32 alone), 8 bits, or 32 (the 8-bit one is
       sign-extended to 32 bits, so the 32-bit sum is the same) */
    unsigned mod = disp == 0 && (base & 7) != 5 ? 0x00 : disp >= -128 && disp <= 127 ? 0x40 : 0x80;
    xi8(i, mod | ((reg & 7) << 3) | (base & 7));
    if ((base & 7) == 4)
        xi8(i, 0x24); /* SIB: base rsp / r12, no index */
    if (mod == 0x40)
        xi8(i, (uint8_t)disp);
    else if (mod == 0x80)
        xi32(i, (uint32_t)disp);
}
static inline void x_mem(xbuf *b, int size, const uint8_t *op, int n, int reg, int base, int32_t disp) {
    xi i = XI_INIT;
    xi_mem(&i, size, op, n, reg, base, disp);
    xi_put(b, &i);
}

/* op reg, [rsp + disp8] (the JIT frame), 64-bit */
static inline void xi_frame(xi *i, const uint8_t *op, int n, int reg, int8_t disp, int w) {
    xi_rex(i, w, reg, RSP, 0);
    xi_ops(i, op, n);
    xi8(i, 0x44 | ((reg & 7) << 3));
    xi8(i, 0x24);
    xi8(i, (uint8_t)disp);
}
static inline void x_frame(xbuf *b, const uint8_t *op, int n, int reg, int8_t disp, int w) {
    xi i = XI_INIT;
    xi_frame(&i, op, n, reg, disp, w);
    xi_put(b, &i);
}

/* op reg, [base64 + disp32] (plain, no segment), 64-bit or 32-bit */
static inline void x_ptr(xbuf *b, int size, const uint8_t *op, int n, int reg, int base, int32_t disp) {
    xi i = XI_INIT;
    if (size == SZ16)
        xi8(&i, 0x66);
    xi_rex(&i, size == SZ64, reg, base, size == SZ8 && reg >= 4 && reg < 8);
    xi_ops(&i, op, n);
    xi8(&i, 0x80 | ((reg & 7) << 3) | (base & 7));
    if ((base & 7) == 4)
        xi8(&i, 0x24);
    xi32(&i, (uint32_t)disp);
    xi_put(b, &i);
}

static const uint8_t OP_MOV_RM_R[] = {0x89};
static const uint8_t OP_MOV_R_RM[] = {0x8B};
static const uint8_t OP_MOV8_RM_R[] = {0x88};

static inline void x_mov(xbuf *b, int size, int dst, int src) {
    if (size == SZ64 && dst == src)
        return;
    x_rr(b, size, OP_MOV_RM_R, 1, src, dst);
}

/* mov dst, imm (smallest encoding that yields the 64-bit value) */
static inline __attribute__((always_inline)) void x_mov_imm(xbuf *b, int dst, uint64_t v) {
    xi i = XI_INIT;
    if (v == 0) {
        static const uint8_t op[] = {0x31};
        xi_rr(&i, SZ32, op, 1, dst, dst); /* xor r32, r32 */
    } else if (v <= 0xFFFFFFFFu) {
        xi_rex(&i, 0, 0, dst, 0);
        xi8(&i, 0xB8 + (dst & 7));
        xi32(&i, (uint32_t)v);
    } else if ((int64_t)v >= INT32_MIN && (int64_t)v < 0) {
        xi_rex(&i, 1, 0, dst, 0);
        xi8(&i, 0xC7);
        xi8(&i, 0xC0 | (dst & 7));
        xi32(&i, (uint32_t)v);
    } else {
        xi_rex(&i, 1, 0, dst, 0);
        xi8(&i, 0xB8 + (dst & 7));
        xi32(&i, (uint32_t)v);
        xi32(&i, (uint32_t)(v >> 32));
    }
    xi_put(b, &i);
}

/* ALU group 1: /n = 0 add, 1 or, 4 and, 5 sub, 6 xor, 7 cmp */
enum { ALU_ADD = 0, ALU_OR = 1, ALU_AND = 4, ALU_SUB = 5, ALU_XOR = 6, ALU_CMP = 7 };

static inline void x_alu_rr(xbuf *b, int size, int alu, int dst, int src) {
    uint8_t op = (uint8_t)(alu * 8 + 1);
    x_rr(b, size, &op, 1, src, dst);
}

static inline void x_alu_imm(xbuf *b, int size, int alu, int dst, int32_t imm) {
    xi i = XI_INIT;
    if (imm >= -128 && imm <= 127) {
        static const uint8_t op[] = {0x83};
        xi_rr(&i, size, op, 1, alu, dst);
        xi8(&i, (uint8_t)imm);
    } else {
        static const uint8_t op[] = {0x81};
        xi_rr(&i, size, op, 1, alu, dst);
        xi32(&i, (uint32_t)imm);
    }
    xi_put(b, &i);
}

/* group 3 (F7 /n), one operand: not, neg, and the rdx:rax forms of mul,
   imul, div, idiv */
enum { GRP3_NOT = 2, GRP3_NEG = 3, GRP3_MUL = 4, GRP3_IMUL = 5, GRP3_DIV = 6, GRP3_IDIV = 7 };
static inline void x_grp3(xbuf *b, int size, int n, int rm) {
    static const uint8_t op[] = {0xF7};
    x_rr(b, size, op, 1, n, rm);
}

/* shifts: /n 0 rol, 1 ror, 4 shl, 5 shr, 7 sar */
enum { SH_ROL = 0, SH_ROR = 1, SH_SHL = 4, SH_SHR = 5, SH_SAR = 7 };
static inline void x_shift_imm(xbuf *b, int size, int n, int rm, unsigned amount) {
    static const uint8_t op[] = {0xC1};
    xi i = XI_INIT;
    xi_rr(&i, size, op, 1, n, rm);
    xi8(&i, amount);
    xi_put(b, &i);
}
static inline void x_shift_cl(xbuf *b, int size, int n, int rm) {
    static const uint8_t op[] = {0xD3};
    x_rr(b, size, op, 1, n, rm);
}

static inline void x_imul_rr(xbuf *b, int size, int dst, int src) {
    static const uint8_t op[] = {0x0F, 0xAF};
    x_rr(b, size, op, 2, dst, src);
}
static inline void x_imul_imm(xbuf *b, int size, int dst, int src, int32_t imm) {
    static const uint8_t op[] = {0x69};
    xi i = XI_INIT;
    xi_rr(&i, size, op, 1, dst, src);
    xi32(&i, (uint32_t)imm);
    xi_put(b, &i);
}

static inline void x_movsxd(xbuf *b, int dst, int src) { /* dst64 = sx(src32) */
    static const uint8_t op[] = {0x63};
    x_rr(b, SZ64, op, 1, dst, src);
}
static inline void x_movsx8(xbuf *b, int dst, int src) {
    static const uint8_t op[] = {0x0F, 0xBE};
    x_rex(b, 1, dst, src, 0);
    xb_bytes(b, op, 2);
    xb8(b, 0xC0 | ((dst & 7) << 3) | (src & 7));
}
static inline void x_movsx16(xbuf *b, int dst, int src) {
    static const uint8_t op[] = {0x0F, 0xBF};
    x_rr(b, SZ64, op, 2, dst, src);
}
static inline void x_movzx16(xbuf *b, int dst, int src) {
    static const uint8_t op[] = {0x0F, 0xB7};
    x_rr(b, SZ32, op, 2, dst, src);
}
static inline void x_movzx8(xbuf *b, int dst, int src) {
    static const uint8_t op[] = {0x0F, 0xB6};
    x_rex(b, 0, dst, src, src >= 4 && src < 8);
    xb_bytes(b, op, 2);
    xb8(b, 0xC0 | ((dst & 7) << 3) | (src & 7));
}


static inline void x_cmov(xbuf *b, int size, int cc, int dst, int src) {
    uint8_t op[2] = {0x0F, (uint8_t)(0x40 + cc)};
    x_rr(b, size, op, 2, dst, src);
}

static inline void x_test(xbuf *b, int size, int a, int c) {
    static const uint8_t op[] = {0x85};
    x_rr(b, size, op, 1, c, a);
}

static inline void x_bswap(xbuf *b, int size, int r) {
    x_rex(b, size == SZ64, 0, r, 0);
    xb8(b, 0x0F);
    xb8(b, 0xC8 + (r & 7));
}

/* F3 0F xx: the bit counts */
enum { F3_POPCNT = 0xB8, F3_TZCNT = 0xBC, F3_LZCNT = 0xBD };
static inline void x_f3(xbuf *b, int size, uint8_t opc, int dst, int src) {
    xb8(b, 0xF3);
    uint8_t op[2] = {0x0F, opc};
    x_rr(b, size, op, 2, dst, src);
}

/* BMI2 shlx/shrx/sarx dst, src, cnt (VEX.LZ.0F38 F7; pp selects the shift) */
static inline void x_shiftx(xbuf *b, int size, int sh, int dst, int src, int cnt) {
    unsigned pp = sh == SH_SHL ? 1 : sh == SH_SAR ? 2 : 3; /* 66, F3, F2 */
    xb8(b, 0xC4);
    xb8(b, (unsigned)((((~dst >> 3) & 1) << 7) | (1u << 6) | (((~src >> 3) & 1) << 5) | 0x02));
    xb8(b, (unsigned)(((size == SZ64) << 7) | (((~cnt) & 15) << 3) | pp));
    xb8(b, 0xF7);
    xb8(b, 0xC0 | ((dst & 7) << 3) | (src & 7));
}


/* lea dst, [base + index + disp] (index < 0: none), 64-bit or 32-bit result
   (the address arithmetic is 64-bit; a 32-bit result is its low half, zero-
   extended).  The shortest displacement; index is never rsp. */
static inline void x_lea(xbuf *b, int size, int dst, int base, int index, int32_t disp) {
    xi i = XI_INIT;
    unsigned rex = 0x40 | (size == SZ64 ? 8 : 0) | ((dst & 8) ? 4 : 0) | (index >= 0 && (index & 8) ? 2 : 0) |
                   ((base & 8) ? 1 : 0);
    if (rex != 0x40)
        xi8(&i, rex);
    xi8(&i, 0x8D);
    unsigned mod = disp == 0 && (base & 7) != 5 ? 0x00 : disp >= -128 && disp <= 127 ? 0x40 : 0x80;
    if (index >= 0) {
        xi8(&i, mod | ((dst & 7) << 3) | 4);
        xi8(&i, ((index & 7) << 3) | (base & 7)); /* SIB: scale 1 */
    } else {
        xi8(&i, mod | ((dst & 7) << 3) | (base & 7));
        if ((base & 7) == 4)
            xi8(&i, 0x24);
    }
    if (mod == 0x40)
        xi8(&i, (uint8_t)disp);
    else if (mod == 0x80)
        xi32(&i, (uint32_t)disp);
    xi_put(b, &i);
}

/* BMI2 rorx dst, src, imm (VEX.LZ.F2.0F3A F0 /r ib): rotate right, flags untouched */
static inline void x_rorx(xbuf *b, int size, int dst, int src, unsigned amount) {
    xi i = XI_INIT;
    xi8(&i, 0xC4);
    xi8(&i, (unsigned)((((~dst >> 3) & 1) << 7) | (1u << 6) | (((~src >> 3) & 1) << 5) | 0x03));
    xi8(&i, size == SZ64 ? 0xFB : 0x7B);
    xi8(&i, 0xF0);
    xi8(&i, 0xC0 | ((dst & 7) << 3) | (src & 7));
    xi8(&i, amount);
    xi_put(b, &i);
}

/* BMI1 andn dst, a, c: dst = ~a & c (VEX.LZ.0F38 F2 /r, a in vvvv) */
static inline void x_andn(xbuf *b, int size, int dst, int a, int c) {
    xi i = XI_INIT;
    xi8(&i, 0xC4);
    xi8(&i, (unsigned)((((~dst >> 3) & 1) << 7) | (1u << 6) | (((~c >> 3) & 1) << 5) | 0x02));
    xi8(&i, (unsigned)(((size == SZ64) << 7) | (((~a) & 15) << 3)));
    xi8(&i, 0xF2);
    xi8(&i, 0xC0 | ((dst & 7) << 3) | (c & 7));
    xi_put(b, &i);
}

/* setcc dst8 alone (the rest of dst unchanged) */
static inline void x_setcc8(xbuf *b, int cc, int dst) {
    xi i = XI_INIT;
    xi_rex(&i, 0, 0, dst, dst >= 4 && dst < 8);
    xi8(&i, 0x0F);
    xi8(&i, 0x90 + cc);
    xi8(&i, 0xC0 | (dst & 7));
    xi_put(b, &i);
}

/* jumps: return the offset of the rel32 to patch */
static inline size_t x_jcc(xbuf *b, int cc) {
    xi i = XI_INIT;
    xi8(&i, 0x0F);
    xi8(&i, 0x80 + cc);
    xi32(&i, 0);
    size_t at = b->len + 2;
    xi_put(b, &i);
    return at;
}
static inline size_t x_jmp(xbuf *b) {
    xi i = XI_INIT;
    xi8(&i, 0xE9);
    xi32(&i, 0);
    size_t at = b->len + 1;
    xi_put(b, &i);
    return at;
}
/* cdq (size 4) / cqo (size 8): rdx = the sign of rax, before idiv */
static inline void x_sign_rdx(xbuf *b, int size) {
    if (size == SZ64)
        xb8(b, 0x48); /* REX.W */
    xb8(b, 0x99);
}

/* cmp eax, imm32 (short form) */
static inline void x_cmp_eax_imm32(xbuf *b, uint32_t imm) {
    xb8(b, 0x3D);
    xb32(b, imm);
}


/* lea rdx, [rip + rel32]: returns the offset of the rel32 (from the end of
   the instruction, which is where it ends) */
static inline size_t x_lea_rdx_rip(xbuf *b, uint32_t rel) {
    xb8(b, 0x48);
    xb8(b, 0x8D);
    xb8(b, 0x15); /* ModRM: rdx, [rip + disp32] */
    size_t at = b->len;
    xb32(b, rel);
    return at;
}

/* mov eax, [rdx + rax*4] (a jump table entry) */
static inline void x_load_eax_rdx_rax4(xbuf *b) {
    xb8(b, 0x8B);
    xb8(b, 0x04); /* ModRM: eax, SIB */
    xb8(b, 0x82); /* SIB: scale 4, index rax, base rdx */
}

static inline void x_push(xbuf *b, int r) {
    x_rex(b, 0, 0, r, 0);
    xb8(b, 0x50 + (r & 7));
}
static inline void x_pop(xbuf *b, int r) {
    x_rex(b, 0, 0, r, 0);
    xb8(b, 0x58 + (r & 7));
}
static inline void x_ret(xbuf *b) { xb8(b, 0xC3); }
static inline void x_int3(xbuf *b) { xb8(b, 0xCC); }

static inline void x_jmp_reg(xbuf *b, int r) {
    x_rex(b, 0, 0, r, 0);
    xb8(b, 0xFF);
    xb8(b, 0xE0 | (r & 7));
}

#endif
