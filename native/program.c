/*
 * program.c -- builds a pvm_program: decodes the code once, finds basic
 * blocks and valid jump targets (isa.md 6.1), computes gas per block
 * (gas.md 2), and says how each instruction is lowered in its context
 * (pvm_program_lower) -- the analysis both backends build on.
 */
#include "program.h"

#include "gas.h"

#include <stdlib.h>
#include <string.h>

#define NONE PVM_NONE_U32

static int validate_jam(const pvm_program *p, char *err, size_t err_len) {
    if (p->code_len == 0 || !pvm_bit(p->bitmask, 0)) {
        pvm_set_err(err, err_len, "validation failed at offset 0");
        return -1;
    }
    uint32_t pc = 0;
    for (;;) {
        pvm_insn in;
        pvm_decode_one(p->isa, p->code, p->code_len, p->bitmask, pc, &in);
        if (in.op >= PVM_OP_INVALID) {
            pvm_set_err(err, err_len, "validation failed at offset %u", pc);
            return -1;
        }
        if (!pvm_next_valid(p, &in)) {
            if (pvm_op_can_fall(in.op)) {
                pvm_set_err(err, err_len, "validation failed at offset %u", pc + in.len);
                return -1;
            }
            return 0;
        }
        pc += in.len;
    }
}

void pvm_program_free(pvm_program *p) {
    if (!p)
        return;
    free(p->code);
    free(p->bitmask);
    free(p->jump_table);
    free(p->insn_pc);
    free(p->insn_flags);
    free(p->insn_block);
    free(p->block_cost);
    free(p->starts);
    free(p->starts_rank);
    for (int k = 0; k < PVM_CACHE_COUNT; k++)
        if (p->cache[k].code)
            p->cache[k].release(p->cache[k].code);
    free(p);
}

void pvm_program_insn(const pvm_program *p, uint32_t i, pvm_insn *out) {
    uint32_t pc = p->insn_pc[i];
    if (p->insn_flags[i] & PVM_IF_IMPLICIT) {
        memset(out, 0, sizeof *out);
        out->pc = pc;
        out->len = 1;
        out->op = PVM_OP_INVALID;
        out->implicit = 1;
        return;
    }
    pvm_decode_one(p->isa, p->code, p->code_len, p->bitmask, pc, out);
}

pvm_program *pvm_program_new(int isa, const uint8_t *code, uint32_t code_len,
                             const uint8_t *bitmask, uint32_t bitmask_len,
                             const uint32_t *jump_table, uint32_t jump_table_len,
                             const uint32_t *costs, uint32_t flags, char *err, size_t err_len) {
    pvm_cost_model m = {PVM_COST_SIMPLE, costs, 0};
    return pvm_program_new_with_model(isa, code, code_len, bitmask, bitmask_len, jump_table,
                                      jump_table_len, &m, flags, err, err_len);
}

/* The next bitmask bit after pc, code_len if none (the bits past the code
   end are zero: checked at load).  skip(pc) is this less pc + 1, capped at
   24 (isa.md 2.1), and the listing walk continues here (isa.md 2.4). */
static inline uint32_t next_start(const uint8_t *bm, uint32_t bm_len, uint32_t code_len, uint32_t pc) {
    uint32_t s = pc + 1;
    while (s < code_len) {
        uint32_t byte = s >> 3;
        uint64_t w = 0;
        if (byte + 8 <= bm_len) {
            memcpy(&w, bm + byte, 8); /* little-endian: byte k at bits 8k */
        } else {
            for (uint32_t k = 0; byte + k < bm_len; k++)
                w |= (uint64_t)bm[byte + k] << (8 * k);
        }
        w >>= s & 7;
        if (w) {
            uint32_t q = s + (uint32_t)__builtin_ctzll(w);
            return q < code_len ? q : code_len;
        }
        s = (byte + 8) * 8;
    }
    return code_len;
}

/* The gas analysis of one listing entry of block `block` (NONE: not
   reachable by falling through from a block start). */
typedef struct {
    pvm_pipe sim;
    uint32_t fed_block; /* full model: the block being fed */
} gas_walk;

static inline void gas_entry(pvm_program *p, int full, gas_walk *g, uint32_t *block_cost,
                             const uint32_t *costs, uint32_t block, unsigned op, const pvm_insn *in) {
    if (!full) {
        if (block != NONE)
            block_cost[block] += costs[op >= PVM_OP_INVALID ? PVM_OP_INVALID : op];
    } else if (block != NONE || g->fed_block != NONE) {
        if (block != g->fed_block) {
            if (g->fed_block != NONE)
                p->block_cost[g->fed_block] = pvm_pipe_take_cost(&g->sim);
            g->fed_block = block;
        }
        if (block != NONE)
            pvm_pipe_feed(&g->sim, in);
    }
}

/* The listing walk (isa.md 2.4, as pvm_decode_listing) with the block and
   gas analysis done on the fly: each real instruction is read once (its
   op, and where the next one starts), nothing but the per-instruction
   arrays is stored, and the operands are decoded only for the full gas
   model (the backends decode them as they build their code). */
static int analyse(pvm_program *p) {
    const uint32_t code_len = p->code_len;
    const uint8_t *bm = p->bitmask;
    const uint8_t *code = p->code;
    const uint8_t *map = pvm_opcode_map[p->isa];
    size_t words = ((size_t)code_len + 64) / 64 + 1;
    size_t real = 0;
    uint32_t bm_len = (code_len + 7) / 8, k8 = 0;
    for (; k8 + 8 <= bm_len; k8 += 8) {
        uint64_t w;
        memcpy(&w, bm + k8, 8);
        real += pvm_popcount64(w);
    }
    for (; k8 < bm_len; k8++)
        real += pvm_popcount64(bm[k8]);
    /* every real instruction adds at most one implicit invalid, plus one at 0 */
    size_t cap = 2 * real + 1;
    p->starts = calloc(words, sizeof(uint64_t));
    p->starts_rank = malloc(words * sizeof(uint32_t));
    p->insn_pc = malloc(cap * sizeof(uint32_t));
    p->insn_flags = malloc(cap);
    p->insn_block = malloc(cap * sizeof(uint32_t));
    p->block_cost = malloc(cap * sizeof(uint32_t));
    if (!p->starts || !p->starts_rank || !p->insn_pc || !p->insn_flags || !p->insn_block || !p->block_cost)
        return -1;
    /* the listing has at least `real` entries: their part of each array is
       written for sure */
    pvm_prefault(p->insn_pc, real * sizeof(uint32_t));
    pvm_prefault(p->insn_block, real * sizeof(uint32_t));
    pvm_prefault(p->block_cost, real * sizeof(uint32_t));
    pvm_prefault(p->insn_flags, real);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p->starts, bm, bm_len); /* byte k at bits 8k of its word */
#else
    for (uint32_t k = 0; k < bm_len; k++)
        p->starts[k >> 3] |= (uint64_t)bm[k] << (8 * (k & 7));
#endif

    gas_walk g;
    const int full = p->cost_kind == PVM_COST_FULL;
    uint32_t *const block_cost = p->block_cost;
    const uint32_t *const costs = p->costs;
    /* what the walk asks of an opcode byte, in one table lookup: its op
       ends a block, can fall through, is an instruction (OB_*), and its
       cost under the simple model */
    enum { OB_TERM = 1, OB_FALL = 2, OB_VALID = 4 };
    uint8_t ob[256];
    uint32_t ob_cost[256];
    for (unsigned k = 0; k < 256; k++) {
        unsigned op = map[k];
        ob[k] = (uint8_t)((pvm_op_is_term(op) ? OB_TERM : 0) | (pvm_op_can_fall(op) ? OB_FALL : 0) |
                          (op < PVM_OP_INVALID ? OB_VALID : 0));
        ob_cost[k] = costs[op >= PVM_OP_INVALID ? PVM_OP_INVALID : op];
    }
    /* simple model: the cost of the block being walked, kept here and
       stored when the walk leaves it (blocks are contiguous in the listing) */
    uint32_t run_block = NONE, run_cost = 0;
    g.fed_block = NONE;
    if (full)
        pvm_pipe_init(&g.sim, p->isa, code, code_len, p->memory_access_cost);
    pvm_insn in, imp;
    memset(&in, 0, sizeof in);

    /* the arrays and counters in locals: the core is built without strict
       aliasing, so a store through p->insn_pc would reload every field of p */
    uint32_t *const insn_pc = p->insn_pc, *const insn_block = p->insn_block;
    uint8_t *const insn_flags = p->insn_flags;
    uint64_t *const starts = p->starts;
    uint32_t n = 0, cur_block = NONE, real_count = 0, block_count = 0;
    /* the previous real instruction: its pc and OB_* bits */
    uint32_t pv_pc = 0;
    unsigned pv_ob = 0;
    bool have_prev = false;

    uint32_t pc = code_len && pvm_bit(bm, 0) ? 0 : next_start(bm, bm_len, code_len, 0);
    if (code_len > 0 && pc != 0) {
        /* bit 0 clear: an implicit invalid at 0, in no block */
        uint32_t i = n++;
        insn_pc[i] = 0;
        block_cost[i] = 0;
        insn_flags[i] = PVM_IF_IMPLICIT;
        insn_block[i] = NONE;
        starts[0] |= 1;
    }
    while (pc < code_len) {
        unsigned byte = code[pc], o = ob[byte];
        uint32_t q = next_start(bm, bm_len, code_len, pc);
        uint32_t len = q - pc > PVM_BITMASK_MAX + 1 ? PVM_BITMASK_MAX + 1 : q - pc;
        if (n + 2 > cap)
            return -1; /* cannot happen: the bound above is exact */
        uint32_t i = n++;
        insn_pc[i] = pc;
        block_cost[i] = 0;
        real_count++;
        uint32_t block = NONE;
        uint8_t fl = 0;
        if (pc == 0) {
            block = i;
            fl = PVM_IF_TARGET;
        } else if (have_prev && pc - pv_pc - 1 <= PVM_BITMASK_MAX) {
            if (pv_ob & OB_TERM) {
                block = i;
                fl = (pv_ob & OB_VALID) ? PVM_IF_TARGET : 0;
            } else {
                block = cur_block;
            }
        }
        cur_block = block;
        have_prev = true;
        pv_pc = pc;
        pv_ob = o;
        insn_block[i] = block;
        insn_flags[i] = fl;
        block_count += block == i;
        if (full) {
            unsigned op = map[byte];
            pvm_decode_at(code, code_len, pc, len - 1, op, &in);
            gas_entry(p, full, &g, block_cost, costs, block, op, &in);
        } else if (block != NONE) {
            if (block != run_block) {
                if (run_block != NONE)
                    block_cost[run_block] = run_cost;
                run_block = block;
                run_cost = 0;
            }
            run_cost += ob_cost[byte];
        }
        /* execution could run off it: an implicit invalid right after it
           (in its block unless it ends one) */
        if ((o & OB_FALL) && !(q == pc + len && q < code_len)) {
            uint32_t k = n++;
            uint32_t at = pc + len;
            insn_pc[k] = at;
            block_cost[k] = 0;
            insn_flags[k] = PVM_IF_IMPLICIT;
            uint32_t b = (o & OB_TERM) ? NONE : block;
            insn_block[k] = b;
            starts[at >> 6] |= UINT64_C(1) << (at & 63);
            if (full) {
                imp = (pvm_insn){.pc = at, .len = 1, .op = PVM_OP_INVALID, .implicit = 1};
                gas_entry(p, full, &g, block_cost, costs, b, PVM_OP_INVALID, &imp);
            } else if (b != NONE) {
                run_cost += costs[PVM_OP_INVALID]; /* b is the block being walked */
            }
        }
        pc = q;
    }
    if (run_block != NONE)
        block_cost[run_block] = run_cost;
    p->real_count = real_count;
    p->block_count = block_count;
    if (full && g.fed_block != NONE)
        p->block_cost[g.fed_block] = pvm_pipe_take_cost(&g.sim);
    if (full) {
        pvm_insn inv;
        memset(&inv, 0, sizeof inv);
        inv.op = PVM_OP_INVALID;
        pvm_pipe_feed(&g.sim, &inv);
        p->invalid_block_cost = pvm_pipe_take_cost(&g.sim);
    } else {
        p->invalid_block_cost = p->costs[PVM_OP_INVALID];
    }
    p->insn_count = n;
    uint32_t acc = 0;
    for (size_t w = 0; w < words; w++) {
        p->starts_rank[w] = acc;
        acc += pvm_popcount64(p->starts[w]);
    }
    return 0;
}

pvm_program *pvm_program_new_with_model(int isa, const uint8_t *code, uint32_t code_len,
                                        const uint8_t *bitmask, uint32_t bitmask_len,
                                        const uint32_t *jump_table, uint32_t jump_table_len,
                                        const pvm_cost_model *model, uint32_t flags,
                                        char *err, size_t err_len) {
    pvm_isa_init();
    pvm_cost_model naive = {PVM_COST_SIMPLE, NULL, 0};
    if (!model)
        model = &naive;
    if (model->kind != PVM_COST_SIMPLE && model->kind != PVM_COST_FULL) {
        pvm_set_err(err, err_len, "unknown cost model kind %d", model->kind);
        return NULL;
    }
    if (model->kind == PVM_COST_FULL &&
        (model->memory_access_cost < 1 || model->memory_access_cost > 127)) {
        pvm_set_err(err, err_len, "the memory access cost must be in 1..127, got %u",
                    model->memory_access_cost);
        return NULL;
    }
    const uint32_t *costs = model->kind == PVM_COST_SIMPLE ? model->costs : NULL;
    if (isa < 0 || isa >= PVM_ISA_COUNT) {
        pvm_set_err(err, err_len, "unknown instruction set %d", isa);
        return NULL;
    }
    if (code_len > PVM_MAX_CODE_SIZE) {
        pvm_set_err(err, err_len, "the code section is too long");
        return NULL;
    }
    if (jump_table_len > PVM_MAX_JUMP_TABLE_ENTRIES) {
        pvm_set_err(err, err_len, "the jump table section is too long");
        return NULL;
    }
    if ((uint64_t)bitmask_len != ((uint64_t)code_len + 7) / 8) {
        pvm_set_err(err, err_len, "the bitmask length doesn't match the code length");
        return NULL;
    }
    if (code_len % 8 && (bitmask[bitmask_len - 1] >> (code_len % 8))) {
        pvm_set_err(err, err_len, "the bitmask is padded with non-zero bits");
        return NULL;
    }
    pvm_program *p = calloc(1, sizeof *p);
    if (!p)
        goto oom;
    p->isa = isa;
    p->is_64 = isa != PVM_ISA_LATEST32;
    p->flags = flags;
    p->code_len = code_len;
    p->jit_code_limit = PVM_JIT_CODE_LIMIT;
    p->code = malloc(code_len ? code_len : 1);
    p->bitmask = malloc(bitmask_len ? bitmask_len : 1);
    p->jump_table = malloc(jump_table_len ? jump_table_len * sizeof(uint32_t) : 1);
    if (!p->code || !p->bitmask || !p->jump_table)
        goto oom;
    if (code_len)
        memcpy(p->code, code, code_len);
    if (bitmask_len)
        memcpy(p->bitmask, bitmask, bitmask_len);
    if (jump_table_len)
        memcpy(p->jump_table, jump_table, jump_table_len * sizeof(uint32_t));
    p->jump_table_len = jump_table_len;
    for (unsigned i = 0; i < PVM_OP_COUNT_WITH_INVALID; i++)
        p->costs[i] = costs ? costs[i] : 1;
    p->cost_kind = model->kind;
    p->memory_access_cost = model->memory_access_cost;

    if ((flags & PVM_PROG_VALIDATE_JAM) && validate_jam(p, err, err_len) != 0) {
        pvm_program_free(p);
        return NULL;
    }
    if (analyse(p) != 0)
        goto oom;
    return p;
oom:
    pvm_set_err(err, err_len, "out of memory while building the program");
    pvm_program_free(p);
    return NULL;
}

void pvm_program_set_jit_code_limit(pvm_program *p, size_t bytes) {
    /* offsets in the generated code are 32-bit */
    if (bytes > ((size_t)1 << 31))
        bytes = (size_t)1 << 31;
    p->jit_code_limit = bytes < 4096 ? 4096 : bytes;
}

uint32_t pvm_program_instruction_count(const pvm_program *p) { return p->real_count; }
uint32_t pvm_program_block_count(const pvm_program *p) { return p->block_count; }
int pvm_program_is_64_bit(const pvm_program *p) { return p->is_64; }

int64_t pvm_program_block_start(const pvm_program *p, uint32_t pc) {
    uint32_t i = pvm_program_insn_at(p, pc);
    if (i == NONE || p->insn_block[i] == NONE)
        return -1;
    return p->insn_pc[p->insn_block[i]];
}

uint32_t pvm_program_block_cost(const pvm_program *p, uint32_t start) {
    uint32_t i = pvm_program_insn_at(p, start);
    if (i == NONE || p->insn_block[i] != i)
        return 0;
    return p->block_cost[i];
}

int pvm_program_is_jump_target(const pvm_program *p, uint32_t pc) {
    return pvm_program_target(p, pc) != NONE;
}
