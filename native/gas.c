/*
 * gas.c -- the "full" gas cost model: per basic block, a cycle-by-cycle
 * simulation of a small out-of-order CPU (shared/spec/gas.md section 9, with
 * the parameters of the reference PolkaVM 0.35).
 *
 * The model.  Instructions are decoded in order, at most 4 decode slots per
 * cycle (an instruction takes 1..4 slots), into a 32-entry reorder buffer.
 * An entry waits until the entries producing its source registers have
 * finished, then starts when the execution units it needs are free (4 ALU,
 * 4 load, 4 store, 1 multiply, 1 divide; at most 5 starts per cycle, oldest
 * first), runs for its latency, and retires in order.  A register move only
 * renames (no entry, one decode slot).  A block terminator waits until the
 * buffer is empty.  block cost = cycles - 3, at least 1.
 *
 * One cycle, in this order:
 *   1. retire the run of finished entries at the head of the buffer;
 *   2. start waiting entries (no pending dependencies, units available);
 *   3. advance executing entries: one cycle, or -- when nothing is being
 *      decoded and nothing retired this cycle (or the block is draining) --
 *      straight to the next completion; an entry whose count reaches 0
 *      releases its units, registers and dependants; one more cycle later it
 *      is finished and can retire;
 *   4. entries decoded during the cycle become waiting; decode slots refill.
 *
 * The per-instruction parameters are per class; the class of every
 * instruction is the PIPE column of isa.def.
 */
#include "gas.h"

#include <string.h>

enum { U_ALU, U_LOAD, U_STORE, U_MUL, U_DIV };
static const uint8_t UNITS_MAX[PVM_PIPE_UNITS] = {4, 4, 4, 1, 1};

#define DECODE_WIDTH 4u
#define MAX_STARTS_PER_CYCLE 5u
#define SLACK 3u
#define STORE_LATENCY 25
#define BRANCH_PREDICTED 1
#define BRANCH_MISPREDICTED 20
#define ROB_MASK (PVM_PIPE_ROB - 1u)

enum pipe_class {
    PC_END, PC_UNLIKELY, PC_HOST, PC_LOAD_IMM, PC_LOAD_IMM64, PC_JUMP, PC_JUMP_IND, PC_MOVE,
    PC_LOAD, PC_STORE, PC_BRANCH, PC_BIT1, PC_BIT2, PC_ALU2, PC_ALU2_W, PC_ALU3, PC_ALU3_W,
    PC_MUL_IMM32, PC_MUL_IMM64, PC_MUL32, PC_MUL64, PC_MULH, PC_MULHSU, PC_CMP, PC_SHIFT,
    PC_SHIFT_W, PC_SHIFT_ALT, PC_SHIFT_ALT32, PC_CMOV, PC_CMOV_IMM, PC_MINMAX, PC_XNOR, PC_ANDN,
    PC_NEG_ADD, PC_NEG_ADD32, PC_DIV, PC_COUNT
};

static const uint8_t OP_CLASS[PVM_OP_INVALID] = {
#define PVM_INSN(NAME, MN, FORM, R, L32, L64, J, FLAGS, PIPE, CLASS, W, SG) PC_##PIPE,
#include "isa.def"
#undef PVM_INSN
};

/* latency source */
enum { LAT_FIXED, LAT_LOAD, LAT_BRANCH };
/* one more decode slot when the destination differs from ... */
enum { EXTRA_NONE, EXTRA_UNLESS_DST_IS_SRC1, EXTRA_UNLESS_DST_IS_A_SRC };
/* which of the instruction's registers the model tracks */
enum {
    ROLE_NONE,      /* none */
    ROLE_DST_SRCS,  /* the first register is written, the others read */
    ROLE_SRCS,      /* all are read */
    ROLE_BASE       /* only the last one (the jump base) is read */
};

typedef struct {
    uint8_t latency, latency_kind;
    uint8_t decode, extra;
    uint8_t wide;   /* 64-bit programs: one more cycle and one more decode slot */
    uint8_t units[PVM_PIPE_UNITS];
    uint8_t role;
    uint8_t drains; /* ends the block */
} pipe_class_info;

#define ALU1 {1, 0, 0, 0, 0}
#define NOUNITS {0, 0, 0, 0, 0}

static const pipe_class_info CLASSES[PC_COUNT] = {
    [PC_END]        = {2, LAT_FIXED, 1, EXTRA_NONE, 0, NOUNITS, ROLE_NONE, 1},
    [PC_UNLIKELY]   = {40, LAT_FIXED, 1, EXTRA_NONE, 0, NOUNITS, ROLE_NONE, 0},
    [PC_HOST]       = {100, LAT_FIXED, 4, EXTRA_NONE, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_LOAD_IMM]   = {1, LAT_FIXED, 1, EXTRA_NONE, 0, NOUNITS, ROLE_DST_SRCS, 0},
    [PC_LOAD_IMM64] = {1, LAT_FIXED, 2, EXTRA_NONE, 0, NOUNITS, ROLE_DST_SRCS, 0},
    [PC_JUMP]       = {15, LAT_FIXED, 1, EXTRA_NONE, 0, NOUNITS, ROLE_NONE, 1},
    [PC_JUMP_IND]   = {22, LAT_FIXED, 1, EXTRA_NONE, 0, NOUNITS, ROLE_BASE, 1},
    [PC_MOVE]       = {0, LAT_FIXED, 1, EXTRA_NONE, 0, NOUNITS, ROLE_DST_SRCS, 0}, /* renames */
    [PC_LOAD]       = {0, LAT_LOAD, 1, EXTRA_NONE, 0, {1, 1, 0, 0, 0}, ROLE_DST_SRCS, 0},
    [PC_STORE]      = {STORE_LATENCY, LAT_FIXED, 1, EXTRA_NONE, 0, {1, 0, 1, 0, 0}, ROLE_SRCS, 0},
    [PC_BRANCH]     = {0, LAT_BRANCH, 1, EXTRA_NONE, 0, ALU1, ROLE_SRCS, 1},
    [PC_BIT1]       = {1, LAT_FIXED, 1, EXTRA_NONE, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_BIT2]       = {2, LAT_FIXED, 1, EXTRA_NONE, 0, {2, 0, 0, 0, 0}, ROLE_DST_SRCS, 0},
    [PC_ALU2]       = {1, LAT_FIXED, 1, EXTRA_UNLESS_DST_IS_SRC1, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_ALU2_W]     = {1, LAT_FIXED, 1, EXTRA_UNLESS_DST_IS_SRC1, 1, ALU1, ROLE_DST_SRCS, 0},
    [PC_ALU3]       = {1, LAT_FIXED, 1, EXTRA_UNLESS_DST_IS_A_SRC, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_ALU3_W]     = {1, LAT_FIXED, 1, EXTRA_UNLESS_DST_IS_A_SRC, 1, ALU1, ROLE_DST_SRCS, 0},
    [PC_MUL_IMM32]  = {4, LAT_FIXED, 2, EXTRA_UNLESS_DST_IS_SRC1, 0, {1, 0, 0, 1, 0}, ROLE_DST_SRCS, 0},
    [PC_MUL_IMM64]  = {3, LAT_FIXED, 1, EXTRA_UNLESS_DST_IS_SRC1, 0, {1, 0, 0, 1, 0}, ROLE_DST_SRCS, 0},
    [PC_MUL32]      = {4, LAT_FIXED, 2, EXTRA_UNLESS_DST_IS_A_SRC, 0, {1, 0, 0, 1, 0}, ROLE_DST_SRCS, 0},
    [PC_MUL64]      = {3, LAT_FIXED, 1, EXTRA_UNLESS_DST_IS_A_SRC, 0, {1, 0, 0, 1, 0}, ROLE_DST_SRCS, 0},
    [PC_MULH]       = {4, LAT_FIXED, 4, EXTRA_NONE, 0, {1, 0, 0, 1, 0}, ROLE_DST_SRCS, 0},
    [PC_MULHSU]     = {6, LAT_FIXED, 4, EXTRA_NONE, 0, {1, 0, 0, 1, 0}, ROLE_DST_SRCS, 0},
    [PC_CMP]        = {3, LAT_FIXED, 3, EXTRA_NONE, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_SHIFT]      = {1, LAT_FIXED, 2, EXTRA_UNLESS_DST_IS_SRC1, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_SHIFT_W]    = {1, LAT_FIXED, 2, EXTRA_UNLESS_DST_IS_SRC1, 1, ALU1, ROLE_DST_SRCS, 0},
    [PC_SHIFT_ALT]  = {1, LAT_FIXED, 3, EXTRA_NONE, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_SHIFT_ALT32] = {2, LAT_FIXED, 4, EXTRA_NONE, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_CMOV]       = {2, LAT_FIXED, 2, EXTRA_NONE, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_CMOV_IMM]   = {2, LAT_FIXED, 3, EXTRA_NONE, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_MINMAX]     = {3, LAT_FIXED, 2, EXTRA_UNLESS_DST_IS_A_SRC, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_XNOR]       = {2, LAT_FIXED, 2, EXTRA_UNLESS_DST_IS_A_SRC, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_ANDN]       = {2, LAT_FIXED, 3, EXTRA_NONE, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_NEG_ADD]    = {2, LAT_FIXED, 3, EXTRA_NONE, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_NEG_ADD32]  = {3, LAT_FIXED, 4, EXTRA_NONE, 0, ALU1, ROLE_DST_SRCS, 0},
    [PC_DIV]        = {60, LAT_FIXED, 4, EXTRA_NONE, 0, {1, 0, 0, 0, 1}, ROLE_DST_SRCS, 0},
};

static void reset_block(pvm_pipe *s) {
    /* every entry has finished and released its registers and units, so the
       per-entry arrays need no clearing: dispatch sets them */
    s->cycles = 0;
    s->decode_left = DECODE_WIDTH;
    s->in_flight = s->head = s->tail = 0;
    s->drained = false;
    memcpy(s->units_free, UNITS_MAX, sizeof s->units_free);
    s->decoding = s->waiting = s->executing = s->finished = 0;
    memset(s->producer, -1, sizeof s->producer);
}

void pvm_pipe_init(pvm_pipe *s, int isa, const uint8_t *code, uint32_t code_len,
                   uint32_t memory_access_cost) {
    memset(s, 0, sizeof *s);
    s->code = code;
    s->code_len = code_len;
    bool known = isa >= 0 && isa < PVM_ISA_COUNT;
    s->trap_byte = known ? pvm_isa_table[PVM_OP_TRAP].opcode[isa] : 0;
    int u = known ? pvm_isa_table[PVM_OP_UNLIKELY].opcode[isa] : -1;
    /* an instruction set without `unlikely` compares against byte 0xFF (the
       reference's placeholder for an opcode that does not exist) */
    s->unlikely_byte = u >= 0 ? u : 0xFF;
    s->wide = isa != PVM_ISA_LATEST32;
    if (memory_access_cost < 1)
        memory_access_cost = 1;
    if (memory_access_cost > 127)
        memory_access_cost = 127;
    s->load_latency = (int32_t)memory_access_cost;
    reset_block(s);
}

static inline uint32_t rotr32(uint32_t x, uint32_t n) {
    n &= 31u;
    return n ? (x >> n) | (x << (32u - n)) : x;
}

static inline uint32_t rotl32(uint32_t x, uint32_t n) {
    n &= 31u;
    return n ? (x << n) | (x >> (32u - n)) : x;
}

static bool fits(const pvm_pipe *s, uint32_t e) {
    for (unsigned u = 0; u < PVM_PIPE_UNITS; u++)
        if (s->need[e][u] > s->units_free[u])
            return false;
    return true;
}

/* One simulated cycle (see the top of the file). */
static void tick(pvm_pipe *s, bool draining, bool decoded_this_cycle) {
    /* 1. retire the finished entries at the head, in order */
    uint32_t run = ~rotr32(s->finished, s->head);
    uint32_t retired = run ? (uint32_t)__builtin_ctz(run) : PVM_PIPE_ROB;
    if (retired) {
        uint32_t mask = retired == PVM_PIPE_ROB ? 0xFFFFFFFFu : rotl32((1u << retired) - 1u, s->head);
        s->finished &= ~mask;
        s->in_flight -= retired;
        s->head = (s->head + retired) & ROB_MASK;
    }

    /* 2. start waiting entries with no pending dependencies, oldest first */
    uint32_t ready = 0;
    for (uint32_t m = s->waiting; m; m &= m - 1) {
        uint32_t e = (uint32_t)__builtin_ctz(m);
        if (!s->deps[e])
            ready |= 1u << e;
    }
    uint32_t started = 0;
    for (uint32_t r = rotr32(ready, s->head); r && started < MAX_STARTS_PER_CYCLE; r &= r - 1) {
        uint32_t e = (s->head + (uint32_t)__builtin_ctz(r)) & ROB_MASK;
        if (!fits(s, e))
            continue;
        for (unsigned u = 0; u < PVM_PIPE_UNITS; u++)
            s->units_free[u] = (uint8_t)(s->units_free[u] - s->need[e][u]);
        s->waiting &= ~(1u << e);
        s->executing |= 1u << e;
        started++;
    }

    /* 3. execute: one cycle, or fast-forward to the next completion */
    int32_t step = 1;
    if (!decoded_this_cycle && (draining || retired == 0) && s->executing) {
        int32_t soonest = INT32_MAX;
        for (uint32_t m = s->executing; m; m &= m - 1) {
            uint32_t e = (uint32_t)__builtin_ctz(m);
            if (s->left[e] < soonest)
                soonest = s->left[e];
        }
        if (soonest > 0)
            step = soonest;
    }
    uint32_t done = 0;      /* count reached 0 now: results available */
    uint32_t over = 0;      /* count passed 0: can retire */
    for (uint32_t m = s->executing; m; m &= m - 1) {
        uint32_t e = (uint32_t)__builtin_ctz(m);
        s->left[e] -= step;
        if (s->left[e] == 0)
            done |= 1u << e;
        else if (s->left[e] < 0)
            over |= 1u << e;
    }
    if (done) {
        for (uint32_t m = s->waiting | s->decoding; m; m &= m - 1) {
            uint32_t e = (uint32_t)__builtin_ctz(m);
            s->deps[e] &= ~done;
        }
        uint32_t regs = 0;
        for (uint32_t m = done; m; m &= m - 1) {
            uint32_t e = (uint32_t)__builtin_ctz(m);
            regs |= s->writes[e];
            s->writes[e] = 0;
            for (unsigned u = 0; u < PVM_PIPE_UNITS; u++) {
                s->units_free[u] = (uint8_t)(s->units_free[u] + s->need[e][u]);
                s->need[e][u] = 0;
            }
        }
        for (; regs; regs &= regs - 1)
            s->producer[__builtin_ctz(regs)] = -1;
    }
    s->executing &= ~over;
    s->finished |= over;

    /* 4. decode stage */
    if (decoded_this_cycle) {
        s->waiting |= s->decoding;
        s->decoding = 0;
        s->decode_left = DECODE_WIDTH;
    }
    s->cycles += (uint64_t)step;
}

/* Advances time until `slots` decode slots and a buffer entry are free. */
static void make_room(pvm_pipe *s, uint32_t slots) {
    if (s->decode_left >= slots && s->in_flight < PVM_PIPE_ROB)
        return;
    tick(s, false, true);
    /* each cycle retires or moves an entry closer to retiring; the bound only
       guards against a state the model cannot reach */
    for (uint32_t guard = 0; s->in_flight >= PVM_PIPE_ROB && guard < 1u << 16; guard++)
        tick(s, false, false);
}

static void drain(pvm_pipe *s) {
    s->drained = true;
    tick(s, true, true);
    for (uint32_t guard = 0; s->in_flight > 0 && guard < 1u << 16; guard++)
        tick(s, true, false);
}

static void dispatch(pvm_pipe *s, int dst, int src1, int src2, int32_t latency, uint32_t slots,
                     const uint8_t units[PVM_PIPE_UNITS]) {
    make_room(s, slots);
    uint32_t e = s->tail;
    s->tail = (s->tail + 1) & ROB_MASK;
    s->left[e] = latency;
    memcpy(s->need[e], units, PVM_PIPE_UNITS);
    uint32_t deps = 0;
    if (src1 >= 0 && s->producer[src1] >= 0)
        deps |= 1u << s->producer[src1];
    if (src2 >= 0 && s->producer[src2] >= 0)
        deps |= 1u << s->producer[src2];
    s->deps[e] = deps;
    s->writes[e] = 0;
    if (dst >= 0) {
        /* the register's previous producer (the only entry holding its bit)
           no longer provides it */
        int8_t old = s->producer[dst];
        if (old >= 0)
            s->writes[old] = (uint16_t)(s->writes[old] & ~(1u << dst));
        s->writes[e] = (uint16_t)(1u << dst);
        s->producer[dst] = (int8_t)e;
    }
    s->decoding |= 1u << e;
    s->in_flight++;
    s->decode_left -= slots;
}

/* A register move is a rename: dst now has src's producer (or is ready). */
static void rename_reg(pvm_pipe *s, int dst, int src) {
    make_room(s, 1);
    int8_t old = s->producer[dst];
    if (old >= 0)
        s->writes[old] = (uint16_t)(s->writes[old] & ~(1u << dst));
    int8_t now = s->producer[src];
    if (now >= 0)
        s->writes[now] = (uint16_t)(s->writes[now] | (1u << dst));
    s->producer[dst] = now;
    s->decode_left -= 1;
}

static bool predicted_at(const pvm_pipe *s, uint64_t at) {
    if (at >= s->code_len)
        return true;
    int b = s->code[at];
    return b == s->trap_byte || b == s->unlikely_byte;
}

void pvm_pipe_feed(pvm_pipe *s, const pvm_insn *in) {
    unsigned cls = in->op < PVM_OP_INVALID ? OP_CLASS[in->op] : PC_END;
    const pipe_class_info *c = &CLASSES[cls];

    int regs[3] = {-1, -1, -1};
    unsigned n = 0;
    switch (in->form) {
    case PVM_FORM_RRR: regs[0] = in->rd; regs[1] = in->ra; regs[2] = in->rb; n = 3; break;
    case PVM_FORM_RR: regs[0] = in->rd; regs[1] = in->ra; n = 2; break;
    case PVM_FORM_RRI:
    case PVM_FORM_RRO:
    case PVM_FORM_RRII: regs[0] = in->ra; regs[1] = in->rb; n = 2; break;
    case PVM_FORM_RI:
    case PVM_FORM_RIO:
    case PVM_FORM_RII:
    case PVM_FORM_RI64: regs[0] = in->ra; n = 1; break;
    default: break;
    }
    if (in->op >= PVM_OP_INVALID)
        n = 0;
    int dst = -1, src1 = -1, src2 = -1;
    switch (c->role) {
    case ROLE_DST_SRCS: dst = regs[0]; src1 = regs[1]; src2 = regs[2]; break;
    case ROLE_SRCS: src1 = regs[0]; src2 = regs[1]; break;
    case ROLE_BASE: src1 = n ? regs[n - 1] : -1; break;
    default: break;
    }

    if (cls == PC_MOVE) {
        if (dst >= 0 && src1 >= 0)
            rename_reg(s, dst, src1);
        return;
    }

    int32_t latency = c->latency;
    if (c->latency_kind == LAT_LOAD)
        latency = s->load_latency;
    else if (c->latency_kind == LAT_BRANCH)
        latency = predicted_at(s, (uint64_t)in->pc + in->len) || predicted_at(s, in->target)
                      ? BRANCH_PREDICTED : BRANCH_MISPREDICTED;
    uint32_t slots = c->decode;
    if (c->extra == EXTRA_UNLESS_DST_IS_SRC1 && dst != src1)
        slots++;
    else if (c->extra == EXTRA_UNLESS_DST_IS_A_SRC && dst != src1 && dst != src2)
        slots++;
    if (c->wide && s->wide) {
        latency++;
        slots++;
    }
    dispatch(s, dst, src1, src2, latency, slots, c->units);
    if (c->drains)
        drain(s);
}

uint32_t pvm_pipe_take_cost(pvm_pipe *s) {
    if (!s->drained) {
        pvm_insn inv;
        memset(&inv, 0, sizeof inv);
        inv.op = PVM_OP_INVALID;
        inv.form = PVM_FORM_A;
        pvm_pipe_feed(s, &inv);
    }
    uint64_t c = s->cycles;
    reset_block(s);
    if (c <= SLACK + 1)
        return 1;
    c -= SLACK;
    /* Unreachable bound, kept so a cost always fits the JIT's signed 32-bit
       immediate: the slowest code is a chain of dependent 2-byte `sbrk`s
       (100 cycles each), about 1.7e9 cycles for 32 MiB of code. */
    return c > INT32_MAX ? INT32_MAX : (uint32_t)c;
}
