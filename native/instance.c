/*
 * instance.c -- creating instances, host access to registers, gas and
 * memory, and the entry rules of run() (execution.md 2, gas.md 3).
 */
#include "instance.h"
#include "jit/jit.h"

#include <stdlib.h>
#include <string.h>

#define NONE PVM_NONE_U32

pvm_instance *pvm_instance_new(const pvm_program *p, const pvm_instance_config *cfg,
                               const uint8_t *ro_data, uint32_t ro_len,
                               const uint8_t *rw_data, uint32_t rw_len,
                               char *err, size_t err_len) {
    if (!p || !cfg) {
        pvm_set_err(err, err_len, "missing program or configuration");
        return NULL;
    }
    pvm_instance *vm = calloc(1, sizeof *vm);
    if (!vm) {
        pvm_set_err(err, err_len, "out of memory");
        return NULL;
    }
    vm->prog = p;
    if (cfg->backend == PVM_BACKEND_JIT) {
        char reason[128];
        if (!pvm_jit_available(reason, sizeof reason)) {
            pvm_set_err(err, err_len, "the JIT cannot run here: %s", reason);
            free(vm);
            return NULL;
        }
        if (cfg->step_tracing) {
            pvm_set_err(err, err_len, "step tracing runs on the interpreter, not the JIT");
            free(vm);
            return NULL;
        }
        vm->jit = (struct pvm_jit_code *)pvm_program_jit(p, cfg->gas_metering != PVM_GAS_NONE, err, err_len);
        if (!vm->jit) {
            free(vm);
            return NULL;
        }
    } else if (cfg->backend != PVM_BACKEND_INTERPRETER) {
        pvm_set_err(err, err_len, "unknown backend %d", cfg->backend);
        free(vm);
        return NULL;
    }
    vm->jit_resume = NONE;
    if (cfg->worker) {
        if (cfg->backend != PVM_BACKEND_JIT) {
            pvm_set_err(err, err_len, "a sandbox worker runs JIT code only");
            free(vm);
            return NULL;
        }
        if (pvm_sandbox_bind(vm, cfg->worker, cfg, ro_data, ro_len, rw_data, rw_len, err, err_len) != 0) {
            free(vm);
            return NULL;
        }
    } else if (pvm_memory_init(&vm->mem, cfg, ro_data, ro_len, rw_data, rw_len, err, err_len) != 0) {
        free(vm);
        return NULL;
    }
    vm->gas_metering = cfg->gas_metering;
    vm->step_tracing = cfg->step_tracing;
    vm->pc = vm->next_pc = vm->resume_rec = vm->step_skip = NONE;
    return vm;
}

void pvm_instance_free(pvm_instance *vm) {
    if (!vm)
        return;
    pvm_memory_destroy(&vm->mem);
    pvm_sandbox_unbind(vm);
    free(vm);
}

int pvm_instance_reset_memory(pvm_instance *vm) {
    memset(vm->regs, 0, sizeof vm->regs);
    vm->pc = vm->next_pc = vm->resume_rec = vm->step_skip = vm->jit_resume = NONE;
    return pvm_memory_reset(&vm->mem);
}

const char *pvm_instance_error(const pvm_instance *vm) { return vm->error; }
void pvm_instance_set_deadline(pvm_instance *vm, uint64_t nanoseconds) { vm->deadline_ns = nanoseconds; }
void pvm_instance_set_stall_timeout(pvm_instance *vm, uint64_t nanoseconds) { vm->stall_ns = nanoseconds; }
int pvm_instance_error_kind(const pvm_instance *vm) { return vm->error_kind; }

uint64_t pvm_instance_reg(const pvm_instance *vm, int r) {
    if (r < 0 || r >= PVM_NUM_REGS)
        return 0;
    return vm->prog->is_64 ? vm->regs[r] : (uint64_t)(uint32_t)vm->regs[r];
}

void pvm_instance_set_reg(pvm_instance *vm, int r, uint64_t value) {
    if (r < 0 || r >= PVM_NUM_REGS)
        return;
    vm->regs[r] = vm->prog->is_64 ? value : (uint64_t)(int64_t)(int32_t)(uint32_t)value;
}

int64_t pvm_instance_gas(const pvm_instance *vm) { return vm->gas; }
void pvm_instance_set_gas(pvm_instance *vm, int64_t gas) { vm->gas = gas; }
int64_t pvm_instance_pc(const pvm_instance *vm) { return vm->pc == NONE ? -1 : (int64_t)vm->pc; }
int64_t pvm_instance_next_pc(const pvm_instance *vm) {
    return vm->next_pc == NONE ? -1 : (int64_t)vm->next_pc;
}

void pvm_instance_set_next_pc(pvm_instance *vm, uint32_t pc) {
    vm->next_pc = pc;
    vm->resume_rec = NONE;
    vm->jit_resume = NONE;
    vm->step_skip = NONE;
}

void pvm_instance_clear_next_pc(pvm_instance *vm) {
    vm->next_pc = NONE;
    vm->resume_rec = NONE;
    vm->jit_resume = NONE;
}

uint32_t pvm_instance_ecalli(const pvm_instance *vm) { return vm->ecalli; }
uint32_t pvm_instance_fault_address(const pvm_instance *vm) { return vm->fault_page; }
int pvm_instance_fault_is_write(const pvm_instance *vm) { return vm->fault_write; }

int pvm_instance_read(const pvm_instance *vm, uint32_t addr, uint8_t *buf, uint32_t len) {
    if (!pvm_memory_host_accessible(&vm->mem, addr, len, 0))
        return -1;
    if (len)
        memcpy(buf, vm->mem.base + addr, len);
    return 0;
}

int pvm_instance_write(pvm_instance *vm, uint32_t addr, const uint8_t *buf, uint32_t len) {
    return pvm_memory_host_write(&vm->mem, addr, buf, len);
}

int pvm_instance_is_accessible(const pvm_instance *vm, uint32_t addr, uint32_t len, int write) {
    return pvm_memory_host_accessible(&vm->mem, addr, len, write);
}

int pvm_instance_map(pvm_instance *vm, uint32_t addr, uint32_t len, int perm) {
    return pvm_memory_map_pages(&vm->mem, addr, len, perm);
}

int pvm_instance_protect(pvm_instance *vm, uint32_t addr, uint32_t len, int perm) {
    return pvm_memory_protect_pages(&vm->mem, addr, len, perm);
}

int pvm_instance_unmap(pvm_instance *vm, uint32_t addr, uint32_t len) {
    return pvm_memory_unmap_pages(&vm->mem, addr, len);
}

uint32_t pvm_instance_sbrk(pvm_instance *vm, uint32_t size) {
    if (vm->mem.dynamic)
        return 0;
    return pvm_memory_sbrk(&vm->mem, size);
}

uint32_t pvm_instance_heap_size(const pvm_instance *vm) { return vm->mem.heap_size; }
const pvm_memory_map *pvm_instance_memory_map(const pvm_instance *vm) { return &vm->mem.map; }
uint8_t *pvm_instance_memory_base(pvm_instance *vm) { return vm->mem.base; }
uint64_t *pvm_instance_regs_ptr(pvm_instance *vm) { return vm->regs; }
int64_t *pvm_instance_gas_ptr(pvm_instance *vm) { return &vm->gas; }

/* Entry from the host at next_pc (execution.md 2, gas.md 3): the pc must be an
   instruction inside a basic block; entering mid-block pays the whole block
   here, entering at a block start leaves the charge to the block itself.
   Returns an interrupt kind, or -1 with *insn and *mid set. */
static int enter_at_next_pc(pvm_instance *vm, uint32_t *insn, int *mid) {
    const pvm_program *p = vm->prog;
    uint32_t pc = vm->next_pc;
    uint32_t ii = pc < p->code_len ? p->pc_to_insn[pc] : NONE;
    if (ii == NONE || p->insn_block[ii] == NONE || p->insn_rec[ii] == NONE) {
        vm->pc = pc;
        return PVM_INT_TRAP;
    }
    uint32_t start = p->insn_block[ii];
    *insn = ii;
    *mid = start != ii;
    if (*mid && vm->gas_metering) {
        int64_t cost = p->block_cost[start];
        if (vm->gas < cost) {
            vm->pc = NONE;
            return PVM_INT_NOT_ENOUGH_GAS;
        }
        vm->gas -= cost;
    }
    return -1;
}

int pvm_instance_run(pvm_instance *vm) {
    const pvm_program *p = vm->prog;
    vm->error[0] = 0;
    if (vm->next_pc == NONE) {
        snprintf(vm->error, sizeof vm->error, "failed to run: next program counter is not set");
        return PVM_INT_ERROR;
    }
    if (vm->gas_metering && vm->gas < 0) {
        vm->pc = NONE;
        return PVM_INT_NOT_ENOUGH_GAS;
    }
    if (vm->jit && vm->jit_resume != NONE)
        return pvm_jit_run(vm, vm->jit_resume);
    if (!vm->jit && vm->resume_rec != NONE)
        return pvm_interp_run(vm, vm->resume_rec);
    uint32_t ii;
    int entered_mid_block;
    int k = enter_at_next_pc(vm, &ii, &entered_mid_block);
    if (k >= 0)
        return k;
    if (vm->jit)
        return pvm_jit_run(vm, entered_mid_block ? vm->jit->insn_off[ii] : vm->jit->charge_off[ii]);
    if (!entered_mid_block)
        return pvm_interp_run(vm, p->insn_rec[ii] - 1); /* the block's CHARGE record */
    vm->resume_rec = p->insn_rec[ii]; /* paid: a Step or retry must not charge again */
    return pvm_interp_run(vm, vm->resume_rec);
}

int pvm_exec_memset(pvm_instance *vm, int is32, int64_t *gas, int metered) {
    pvm_memory *mem = &vm->mem;
    uint64_t *R = vm->regs;
    uint32_t dst = (uint32_t)R[7];
    uint32_t count = (uint32_t)R[9];
    uint8_t byte = (uint8_t)R[8];
    uint32_t written = 0;
    int stop = 0;
    while (count > 0) {
        if (metered && *gas <= 0) {
            stop = PVM_INT_NOT_ENOUGH_GAS;
            break;
        }
        uint32_t n = count;
        if (metered && (uint64_t)*gas < n)
            n = (uint32_t)*gas;
        uint32_t room = mem->page_size - (dst & (mem->page_size - 1));
        if (n > room)
            n = room;
        if (!pvm_memory_fast_ok(mem, dst, 1, PVM_PERM_WRITE)) {
            int k = pvm_memory_guest_check(mem, dst, 1, 1, &vm->fault_page, &vm->fault_write);
            stop = k == PVM_ACCESS_FAULT ? PVM_INT_SEGFAULT : PVM_INT_TRAP;
            break;
        }
        memset(mem->base + dst, byte, n);
        dst += n;
        written += n;
        count -= n;
        if (metered)
            *gas -= n;
    }
    R[7] = R[7] + written;
    if (is32) {
        R[7] = (uint64_t)(int64_t)(int32_t)(uint32_t)R[7];
        R[9] = (uint64_t)(int64_t)(int32_t)count;
    } else {
        R[9] = count;
    }
    return stop;
}

uint64_t pvm_exec_sbrk(pvm_instance *vm, int is32, uint64_t size) {
    uint32_t res;
    if (vm->mem.dynamic)
        res = 0; /* not available with dynamic paging (execution.md 3.4) */
    else if (is32)
        res = pvm_memory_sbrk(&vm->mem, (uint32_t)size);
    else
        res = pvm_memory_sbrk(&vm->mem, size > UINT32_MAX ? 0 : (uint32_t)size);
    return (uint64_t)(int64_t)(int32_t)res;
}

int pvm_jit_available(char *reason, size_t reason_len) {
#if defined(__x86_64__) && defined(__linux__)
    return pvm_jit_cpu_ok(reason, reason_len);
#else
    pvm_set_err(reason, reason_len, "the JIT targets x86-64 Linux");
    return 0;
#endif
}

int pvm_program_compile_jit(pvm_program *p, int metered, size_t *code_size, char *err, size_t err_len) {
    const pvm_jit_code *c = pvm_program_jit(p, metered, err, err_len);
    if (!c)
        return -1;
    if (code_size)
        *code_size = c->code_len;
    return 0;
}

const uint8_t *pvm_program_jit_code(const pvm_program *p, int metered, size_t *len) {
    const pvm_jit_code *c = p->jit[metered ? 1 : 0];
    if (!c)
        return NULL;
    if (len)
        *len = c->code_len;
    return c->code;
}

int64_t pvm_program_jit_offset(const pvm_program *p, int metered, uint32_t pc) {
    const pvm_jit_code *c = p->jit[metered ? 1 : 0];
    if (!c || pc >= p->code_len)
        return -1;
    uint32_t i = p->pc_to_insn[pc];
    if (i == NONE)
        return -1;
    uint32_t off = p->insn_block[i] == i ? c->charge_off[i] : c->insn_off[i];
    return off == NONE ? -1 : (int64_t)off;
}
