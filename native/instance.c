/*
 * instance.c -- the public instance API: picks the backend an instance's
 * configuration asks for and holds its operation table (vm.h), host access
 * to registers, gas and memory, and the entry rules of run()
 * (execution.md 2, gas.md 3).  The top of the native layers: it calls down
 * into the backends, nothing calls up into it.
 */
#include "interp.h"
#include "jit/jit.h"
#include "sandbox/sandbox.h"

#include <stdlib.h>
#include <string.h>

#define NONE PVM_NONE_U32

/* The backend an instance's configuration asks for, NULL if none. */
static const pvm_backend *backend_for(const pvm_instance_config *cfg) {
    switch (cfg->backend) {
    case PVM_BACKEND_INTERPRETER: return &pvm_backend_interp;
    case PVM_BACKEND_JIT: return cfg->worker ? &pvm_backend_sandbox : &pvm_backend_jit;
    default: return NULL;
    }
}

pvm_instance *pvm_instance_new(const pvm_program *p, const pvm_instance_config *cfg,
                               const uint8_t *ro_data, uint32_t ro_len,
                               const uint8_t *rw_data, uint32_t rw_len,
                               char *err, size_t err_len) {
    if (!p || !cfg) {
        pvm_set_err(err, err_len, "missing program or configuration");
        return NULL;
    }
    const pvm_backend *be = backend_for(cfg);
    if (!be) {
        pvm_set_err(err, err_len, "unknown backend %d", cfg->backend);
        return NULL;
    }
    pvm_instance *vm = calloc(1, sizeof *vm);
    if (!vm) {
        pvm_set_err(err, err_len, "out of memory");
        return NULL;
    }
    vm->prog = p;
    vm->resume = NONE;
    pvm_image img = {ro_data, ro_len, rw_data, rw_len};
    if (be->instantiate(vm, cfg, &img, err, err_len) != 0) {
        free(vm);
        return NULL;
    }
    vm->backend = be;
    vm->gas_metering = cfg->gas_metering;
    vm->step_tracing = cfg->step_tracing;
    vm->pc = vm->next_pc = vm->resume = vm->step_skip = NONE;
    return vm;
}

void pvm_instance_free(pvm_instance *vm) {
    if (!vm)
        return;
    vm->backend->release(vm);
    free(vm);
}

int pvm_instance_reset_memory(pvm_instance *vm) {
    memset(vm->regs, 0, sizeof vm->regs);
    vm->pc = vm->next_pc = vm->resume = vm->step_skip = NONE;
    return vm->backend->reset(vm);
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
    vm->resume = NONE;
    vm->step_skip = NONE;
}

void pvm_instance_clear_next_pc(pvm_instance *vm) {
    vm->next_pc = NONE;
    vm->resume = NONE;
}

uint32_t pvm_instance_ecalli(const pvm_instance *vm) { return vm->ecalli; }
uint32_t pvm_instance_fault_address(const pvm_instance *vm) { return vm->fault_page; }
int pvm_instance_fault_is_write(const pvm_instance *vm) { return vm->fault_write; }

int pvm_instance_read(const pvm_instance *vm, uint32_t addr, uint8_t *buf, uint32_t len) {
    return vm->backend->read(vm, addr, buf, len);
}

int pvm_instance_write(pvm_instance *vm, uint32_t addr, const uint8_t *buf, uint32_t len) {
    return vm->backend->write(vm, addr, buf, len);
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

uint32_t pvm_instance_sbrk(pvm_instance *vm, uint32_t size) { return vm->backend->sbrk(vm, size); }

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
    uint32_t ii = pvm_program_insn_at(p, pc);
    if (ii == NONE || p->insn_block[ii] == NONE) {
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
    vm->error[0] = 0;
    if (vm->next_pc == NONE) {
        snprintf(vm->error, sizeof vm->error, "failed to run: next program counter is not set");
        return PVM_INT_ERROR;
    }
    if (vm->gas_metering && vm->gas < 0) {
        vm->pc = NONE;
        return PVM_INT_NOT_ENOUGH_GAS;
    }
    if (vm->resume != NONE)
        return vm->backend->run(vm, NONE, 0);
    uint32_t ii;
    int entered_mid_block;
    int k = enter_at_next_pc(vm, &ii, &entered_mid_block);
    if (k >= 0)
        return k;
    return vm->backend->run(vm, ii, entered_mid_block);
}

int64_t pvm_instance_resume(pvm_instance *vm) {
    int k = pvm_instance_run(vm);
    if (k == PVM_INT_ECALLI)
        return PVM_CALL_HOSTCALL + (int64_t)vm->ecalli;
    return k;
}

int64_t pvm_instance_enter(pvm_instance *vm, uint32_t pc) {
    pvm_instance_set_next_pc(vm, pc);
    vm->call_gas = vm->gas;
    return pvm_instance_resume(vm);
}

/* The registers at a call's start (execution.md 4): all zero but ra =
   return-to-host, sp = the stack top, a0, a1; on 32-bit code stored
   sign-extended as the core keeps them. */
static inline void call_registers(pvm_instance *vm, uint64_t arg0, uint64_t arg1) {
    uint64_t *r = vm->regs;
    memset(r, 0, sizeof vm->regs);
    if (vm->prog->is_64) {
        r[0] = PVM_ADDR_RETURN_TO_HOST;
        r[1] = vm->mem.map.stack_address_high;
        r[7] = arg0;
        r[8] = arg1;
    } else {
        r[0] = (uint64_t)(int64_t)(int32_t)(uint32_t)PVM_ADDR_RETURN_TO_HOST;
        r[1] = (uint64_t)(int64_t)(int32_t)(uint32_t)vm->mem.map.stack_address_high;
        r[7] = (uint64_t)(int64_t)(int32_t)(uint32_t)arg0;
        r[8] = (uint64_t)(int64_t)(int32_t)(uint32_t)arg1;
    }
}

int64_t pvm_instance_call(pvm_instance *vm, uint32_t pc, uint64_t arg0, uint64_t arg1) {
    call_registers(vm, arg0, arg1);
    return pvm_instance_enter(vm, pc);
}

int64_t pvm_instance_call_gas(const pvm_instance *vm) { return vm->call_gas; }

#define CALL_STOPPED (UINT64_MAX << PVM_CALL_STOPPED_BITS)

/* What pvm_instance_resume returned, with a0 folded in when finished. */
static inline uint64_t folded(const pvm_instance *vm, int64_t k) {
    if (PVM_LIKELY(k == PVM_INT_FINISHED)) {
        uint64_t a0 = vm->prog->is_64 ? vm->regs[7] : (uint64_t)(uint32_t)vm->regs[7];
        if (PVM_LIKELY(a0 < CALL_STOPPED))
            return a0;
    }
    return CALL_STOPPED + (uint64_t)k;
}

static uint64_t site_call(const pvm_call_site *s, uint64_t arg0, uint64_t arg1) {
    pvm_instance *vm = s->vm;
    call_registers(vm, arg0, arg1);
    vm->next_pc = s->pc;
    vm->resume = vm->step_skip = NONE;
    vm->call_gas = vm->gas;
    return folded(vm, pvm_instance_resume(vm));
}

uint64_t pvm_site_call0(const pvm_call_site *s) { return site_call(s, 0, 0); }
uint64_t pvm_site_call1(const pvm_call_site *s, uint64_t arg0) { return site_call(s, arg0, 0); }
uint64_t pvm_site_call2(const pvm_call_site *s, uint64_t arg0, uint64_t arg1) {
    return site_call(s, arg0, arg1);
}
uint64_t pvm_site_resume(pvm_instance *vm) { return folded(vm, pvm_instance_resume(vm)); }
