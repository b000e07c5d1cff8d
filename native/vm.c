/*
 * vm.c -- what every backend does the same way to an instance's state: host
 * access to guest memory, sbrk, resetting memory, and the memset / sbrk
 * instructions.  The backends point their tables here or call these from
 * their own paths (the interpreter's handlers, the JIT's helper exits); the
 * memory itself is memory.c's.
 */
#include "vm.h"

#include <string.h>

int pvm_vm_read(const pvm_instance *vm, uint32_t addr, uint8_t *buf, uint32_t len) {
    if (!pvm_memory_host_accessible(&vm->mem, addr, len, 0))
        return -1;
    if (len)
        memcpy(buf, vm->mem.base + addr, len);
    return 0;
}

int pvm_vm_write(pvm_instance *vm, uint32_t addr, const uint8_t *buf, uint32_t len) {
    return pvm_memory_host_write(&vm->mem, addr, buf, len);
}

uint32_t pvm_vm_sbrk(pvm_instance *vm, uint32_t size) {
    if (vm->mem.dynamic)
        return 0; /* not available with dynamic paging (execution.md 3.4) */
    return pvm_memory_sbrk(&vm->mem, size);
}

int pvm_vm_reset(pvm_instance *vm) { return pvm_memory_reset(&vm->mem); }

void pvm_vm_release(pvm_instance *vm) { pvm_memory_destroy(&vm->mem); }

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
    if (is32)
        res = pvm_vm_sbrk(vm, (uint32_t)size);
    else
        res = pvm_vm_sbrk(vm, size > UINT32_MAX ? 0 : (uint32_t)size);
    return (uint64_t)(int64_t)(int32_t)res;
}
