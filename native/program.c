/*
 * program.c -- builds a pvm_program: decodes the code once, finds basic
 * blocks and valid jump targets (isa.md 6.1), computes gas per block
 * (gas.md 2) and lowers everything into the record stream of interp.c.
 */
#include "program.h"

#include "gas.h"

#include <stdlib.h>
#include <string.h>

#define NONE PVM_NONE_U32


static uint32_t valid_target_rec(const pvm_program *p, uint32_t t) {
    if (t >= p->code_len)
        return NONE;
    uint32_t idx = p->pc_to_insn[t];
    if (idx == NONE || !p->insn_target[idx] || p->insn_rec[idx] == NONE)
        return NONE;
    return p->insn_rec[idx] - 1; /* its CHARGE record */
}

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
    free(p->insns);
    free(p->pc_to_insn);
    free(p->insn_block);
    free(p->insn_rec);
    free(p->insn_target);
    free(p->block_cost);
    free(p->recs);
    free(p->jt_rec);
    pvm_jit_free(p->jit[0]);
    pvm_jit_free(p->jit[1]);
    free(p);
}

static unsigned lower_op(const pvm_program *p, unsigned op) {
    if (p->is_64)
        return op;
    switch (op) {
    case PVM_OP_MUL_UPPER_SIGNED_SIGNED: return PVM_XOP_MUL_UPPER_SS_32;
    case PVM_OP_MUL_UPPER_UNSIGNED_UNSIGNED: return PVM_XOP_MUL_UPPER_UU_32;
    case PVM_OP_MUL_UPPER_SIGNED_UNSIGNED: return PVM_XOP_MUL_UPPER_SU_32;
    case PVM_OP_REVERSE_BYTE: return PVM_XOP_REVERSE_BYTE_32;
    case PVM_OP_SBRK: return PVM_XOP_SBRK_32;
    case PVM_OP_MEMSET: return PVM_XOP_MEMSET_32;
    default: return op;
    }
}

static void fill_rec(pvm_rec *r, const pvm_insn *in, unsigned op) {
    memset(r, 0, sizeof *r);
    r->op = (uint16_t)op;
    r->pc = in->pc;
    uint64_t sx1 = (uint64_t)(int64_t)in->imm1;
    uint64_t sx2 = (uint64_t)(int64_t)in->imm2;
    switch (in->form) {
    case PVM_FORM_I: r->t = (uint32_t)in->imm1; break;
    case PVM_FORM_II: r->t = (uint32_t)in->imm1; r->i = sx2; break;
    case PVM_FORM_RI: r->a = in->ra; r->i = sx1; r->t = (uint32_t)in->imm1; break;
    case PVM_FORM_RIO: r->a = in->ra; r->i = sx1; break;
    case PVM_FORM_RII: r->a = in->ra; r->t = (uint32_t)in->imm1; r->i = sx2; break;
    case PVM_FORM_RR: r->a = in->rd; r->b = in->ra; break;
    case PVM_FORM_RRI: r->a = in->ra; r->b = in->rb; r->i = sx1; r->t = (uint32_t)in->imm1; break;
    case PVM_FORM_RRO: r->a = in->ra; r->b = in->rb; break;
    case PVM_FORM_RRII: r->a = in->ra; r->b = in->rb; r->i = sx1; r->t = (uint32_t)in->imm2; break;
    case PVM_FORM_RRR: r->a = in->rd; r->b = in->ra; r->c = in->rb; break;
    case PVM_FORM_RI64: r->a = in->ra; r->i = in->imm64; break;
    default: break;
    }
}

/* Gas of every block (gas.md 2 and 9), and of a lone `invalid` block. */
static void compute_block_costs(pvm_program *p) {
    uint32_t n = p->insn_count;
    if (p->cost_kind == PVM_COST_SIMPLE) {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t b = p->insn_block[i];
            if (b != NONE)
                p->block_cost[b] += p->costs[p->insns[i].op >= PVM_OP_INVALID ? PVM_OP_INVALID : p->insns[i].op];
        }
        p->invalid_block_cost = p->costs[PVM_OP_INVALID];
        return;
    }
    /* A block's instructions are consecutive in the listing. */
    pvm_pipe sim;
    pvm_pipe_init(&sim, p->isa, p->code, p->code_len, p->memory_access_cost);
    for (uint32_t i = 0; i < n; i++) {
        if (p->insn_block[i] != i)
            continue;
        uint32_t j = i;
        for (; j < n && p->insn_block[j] == i; j++)
            pvm_pipe_feed(&sim, &p->insns[j]);
        p->block_cost[i] = pvm_pipe_take_cost(&sim);
        i = j - 1;
    }
    pvm_insn inv;
    memset(&inv, 0, sizeof inv);
    inv.op = PVM_OP_INVALID;
    pvm_pipe_feed(&sim, &inv);
    p->invalid_block_cost = pvm_pipe_take_cost(&sim);
}

pvm_program *pvm_program_new(int isa, const uint8_t *code, uint32_t code_len,
                             const uint8_t *bitmask, uint32_t bitmask_len,
                             const uint32_t *jump_table, uint32_t jump_table_len,
                             const uint32_t *costs, uint32_t flags, char *err, size_t err_len) {
    pvm_cost_model m = {PVM_COST_SIMPLE, costs, 0};
    return pvm_program_new_with_model(isa, code, code_len, bitmask, bitmask_len, jump_table,
                                      jump_table_len, &m, flags, err, err_len);
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

    /* 1. decode the listing (at most one instruction per byte, plus an
       implicit invalid after each, so 2 * code_len + 1 bounds it) */
    size_t cap = (size_t)code_len * 2 + 1;
    p->insns = malloc(cap * sizeof(pvm_insn));
    if (!p->insns)
        goto oom;
    size_t n = pvm_decode_listing(isa, p->code, code_len, p->bitmask, p->insns, cap);
    pvm_insn *shrunk = realloc(p->insns, (n ? n : 1) * sizeof(pvm_insn));
    if (shrunk)
        p->insns = shrunk;
    p->pc_to_insn = malloc((code_len ? code_len : 1) * sizeof(uint32_t));
    p->insn_block = malloc((n ? n : 1) * sizeof(uint32_t));
    p->insn_rec = malloc((n ? n : 1) * sizeof(uint32_t));
    p->insn_target = calloc(n ? n : 1, 1);
    p->block_cost = calloc(n ? n : 1, sizeof(uint32_t));
    if (!p->insns || !p->pc_to_insn || !p->insn_block || !p->insn_rec || !p->insn_target || !p->block_cost)
        goto oom;
    p->insn_count = (uint32_t)n;
    memset(p->pc_to_insn, 0xFF, (code_len ? code_len : 1) * sizeof(uint32_t));

    /* 2. blocks and jump targets.  An implicit invalid belongs to the block
       of the instruction before it only if that one is not a terminator. */
    uint32_t prev_real = NONE, cur_block = NONE;
    for (uint32_t i = 0; i < n; i++) {
        pvm_insn *in = &p->insns[i];
        p->insn_rec[i] = NONE;
        if (in->implicit) {
            bool owned = i > 0 && !p->insns[i - 1].implicit && pvm_op_can_fall(p->insns[i - 1].op) &&
                         !pvm_op_is_term(p->insns[i - 1].op) && p->insns[i - 1].pc + p->insns[i - 1].len == in->pc;
            p->insn_block[i] = owned ? p->insn_block[i - 1] : NONE;
            continue;
        }
        p->real_count++;
        p->pc_to_insn[in->pc] = i;
        uint32_t block = NONE;
        bool target = false;
        if (in->pc == 0) {
            block = i;
            target = true;
        } else if (prev_real != NONE) {
            const pvm_insn *pv = &p->insns[prev_real];
            if (in->pc - pv->pc - 1 <= PVM_BITMASK_MAX) {
                if (pvm_op_is_term(pv->op)) {
                    block = i;
                    target = pv->op < PVM_OP_INVALID;
                } else {
                    block = cur_block;
                }
            }
        }
        p->insn_block[i] = block;
        p->insn_target[i] = target && block != NONE;
        cur_block = block;
        prev_real = i;
    }
    for (uint32_t i = 0; i < n; i++)
        if (p->insn_block[i] == i)
            p->block_count++;
    compute_block_costs(p);

    /* 3. records: upper bound = 2 per instruction + 2 per JAM trailer */
    cap = 2 * n + 4;
    p->recs = malloc(cap * sizeof(pvm_rec));
    if (!p->recs)
        goto oom;
    uint32_t r = 0;
    for (uint32_t i = 0; i < n; i++) {
        const pvm_insn *in = &p->insns[i];
        if (p->insn_block[i] == NONE)
            continue;
        if (p->insn_block[i] == i) {
            pvm_rec *c = &p->recs[r++];
            memset(c, 0, sizeof *c);
            c->op = PVM_XOP_CHARGE;
            c->pc = in->pc;
            c->i = p->block_cost[i];
        }
        p->insn_rec[i] = r;
        fill_rec(&p->recs[r], in, in->op >= PVM_OP_INVALID ? PVM_XOP_TRAP : lower_op(p, in->op));
        r++;
    }
    p->rec_count = r;

    /* 4. resolve static control flow now that every record index is known */
    for (uint32_t i = 0; i < n; i++) {
        const pvm_insn *in = &p->insns[i];
        if (p->insn_rec[i] == NONE || in->op >= PVM_OP_INVALID)
            continue;
        pvm_rec *rc = &p->recs[p->insn_rec[i]];
        const pvm_insn_info *info = &pvm_isa_table[in->op];
        if (in->op == PVM_OP_JUMP || in->op == PVM_OP_LOAD_IMM_AND_JUMP) {
            uint32_t t = valid_target_rec(p, in->target);
            if (t == NONE)
                rc->op = in->op == PVM_OP_JUMP ? PVM_XOP_TRAP : PVM_XOP_LOAD_IMM_TRAP;
            else
                rc->t = t;
        } else if (info->flags & PVM_F_BRANCH) {
            uint32_t t = valid_target_rec(p, in->target);
            uint32_t f = pvm_next_valid(p, in) ? valid_target_rec(p, in->pc + in->len) : NONE;
            if (t == NONE || f == NONE)
                rc->op = PVM_XOP_TRAP;
            else
                rc->t = t;
        } else if (in->op == PVM_OP_FALLTHROUGH && !pvm_next_valid(p, in)) {
            uint64_t nx = (uint64_t)in->pc + in->len;
            if (nx >= code_len && !(flags & PVM_PROG_JAM_FALLTHROUGH))
                rc->op = PVM_XOP_TRAP; /* PolkaVM 0.35: trap at the fallthrough itself */
        }
    }
    /* JAM trailer / gap after a fallthrough: a one-instruction invalid block
       at next(o), appended after the fallthrough's record. The fallthrough
       record falls into it, so it must directly follow: rebuild if needed. */
    {
        uint32_t extra = 0;
        for (uint32_t i = 0; i < n; i++)
            if (p->insn_rec[i] != NONE && p->recs[p->insn_rec[i]].op == PVM_OP_FALLTHROUGH &&
                !pvm_next_valid(p, &p->insns[i]))
                extra++;
        if (extra) {
            pvm_rec *nr = malloc(((size_t)r + 2 * extra) * sizeof(pvm_rec));
            uint32_t *remap = malloc(((size_t)r + 1) * sizeof(uint32_t));
            if (!nr || !remap) {
                free(nr);
                free(remap);
                goto oom;
            }
            uint32_t w = 0;
            for (uint32_t k = 0; k < r; k++) {
                remap[k] = w;
                nr[w++] = p->recs[k];
                const pvm_rec *o = &p->recs[k];
                if (o->op == PVM_OP_FALLTHROUGH) {
                    uint32_t ii = p->pc_to_insn[o->pc];
                    if (!pvm_next_valid(p, &p->insns[ii])) {
                        uint32_t nx = o->pc + p->insns[ii].len;
                        pvm_rec c = {0}, t = {0};
                        c.op = PVM_XOP_CHARGE;
                        c.pc = nx;
                        c.i = p->invalid_block_cost;
                        t.op = PVM_XOP_TRAP;
                        t.pc = nx;
                        nr[w++] = c;
                        nr[w++] = t;
                    }
                }
            }
            remap[r] = w;
            for (uint32_t k = 0; k < w; k++) {
                unsigned op = nr[k].op;
                if (op == PVM_OP_JUMP || op == PVM_OP_LOAD_IMM_AND_JUMP ||
                    (op < PVM_OP_INVALID && (pvm_isa_table[op].flags & PVM_F_BRANCH)))
                    nr[k].t = remap[nr[k].t];
            }
            for (uint32_t i = 0; i < n; i++)
                if (p->insn_rec[i] != NONE)
                    p->insn_rec[i] = remap[p->insn_rec[i]];
            free(p->recs);
            free(remap);
            p->recs = nr;
            p->rec_count = r = w;
        }
    }
    /* a sentinel so that falling past the last record traps */
    {
        pvm_rec *nr = realloc(p->recs, ((size_t)r + 1) * sizeof(pvm_rec));
        if (!nr)
            goto oom;
        p->recs = nr;
        memset(&p->recs[r], 0, sizeof(pvm_rec));
        p->recs[r].op = PVM_XOP_TRAP;
        p->recs[r].pc = code_len;
    }

    /* 5. jump table */
    p->jt_rec = malloc((jump_table_len ? jump_table_len : 1) * sizeof(uint32_t));
    if (!p->jt_rec)
        goto oom;
    for (uint32_t k = 0; k < jump_table_len; k++)
        p->jt_rec[k] = valid_target_rec(p, p->jump_table[k]);
    return p;
oom:
    pvm_set_err(err, err_len, "out of memory while building the program");
    pvm_program_free(p);
    return NULL;
}

uint32_t pvm_program_instruction_count(const pvm_program *p) { return p->real_count; }
uint32_t pvm_program_block_count(const pvm_program *p) { return p->block_count; }
int pvm_program_is_64_bit(const pvm_program *p) { return p->is_64; }

int64_t pvm_program_block_start(const pvm_program *p, uint32_t pc) {
    if (pc >= p->code_len)
        return -1;
    uint32_t i = p->pc_to_insn[pc];
    if (i == NONE || p->insn_block[i] == NONE)
        return -1;
    return p->insns[p->insn_block[i]].pc;
}

uint32_t pvm_program_block_cost(const pvm_program *p, uint32_t start) {
    if (start >= p->code_len)
        return 0;
    uint32_t i = p->pc_to_insn[start];
    if (i == NONE || p->insn_block[i] != i)
        return 0;
    return p->block_cost[i];
}

int pvm_program_is_jump_target(const pvm_program *p, uint32_t pc) {
    if (pc >= p->code_len)
        return 0;
    uint32_t i = p->pc_to_insn[pc];
    return i != NONE && p->insn_target[i];
}
