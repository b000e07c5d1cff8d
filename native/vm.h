/*
 * vm.h -- the state of one instance (registers, gas, pc, memory) that every
 * backend runs on, and the backend interface instance.c holds: a small table
 * of operations the interpreter (interp.c), the in-process JIT
 * (jit/runtime.c) and the sandbox host (sandbox/host.c) each implement.
 * Backends call down into vm.c (host memory access, sbrk, reset, the
 * memset/sbrk instructions), never up into instance.c.
 */
#ifndef PVM_VM_H
#define PVM_VM_H

#include "memory.h"
#include "program.h"

/* Generated code reads and writes the guest registers and the gas counter at
   these offsets from the context pointer it is entered with; the instance
   starts with them, and so does the sandbox worker's control page. */
#define PVM_VMCTX_REGS 0
#define PVM_VMCTX_GAS (8 * PVM_NUM_REGS)

struct pvm_backend;

struct pvm_instance {
    uint64_t regs[PVM_NUM_REGS]; /* must stay first: PVM_VMCTX_REGS */
    int64_t gas;                 /* must follow: PVM_VMCTX_GAS */
    const pvm_program *prog;
    const struct pvm_backend *backend;
    pvm_memory mem;
    int gas_metering;
    int step_tracing;
    uint32_t pc;           /* pc of the last interruption, NONE if none */
    uint32_t next_pc;      /* where run() resumes, NONE if not set */
    uint32_t resume;       /* the backend's own resume point (interpreter: a record that
                              must not charge again; JIT: a native offset), NONE: enter
                              via next_pc */
    uint32_t step_skip;    /* record whose Step was already reported */
    uint32_t ecalli;
    uint32_t fault_page;
    int fault_write;
    char error[160];
    /* JIT state */
    struct pvm_jit_code *jit;   /* compiled code when the backend is the JIT */
    struct pvm_worker *worker;  /* sandbox worker running that code, or NULL (in-process) */
    uint64_t deadline_ns;       /* per-run wall-clock limit in the sandbox, 0 = none */
    uint64_t stall_ns;          /* sandbox: kill a worker idle this long while awaited, 0 = never */
    int error_kind;             /* PVM_ERROR_* of the last PVM_INT_ERROR */
    volatile uint32_t jit_fault_kind; /* set by the fault handler */
    int64_t call_gas;           /* the gas counter when the last call started */
    uint16_t jit_shadow;        /* registers the host set that the fault path must not extend (runtime.c) */
};

/* Guest data an instance starts with. */
typedef struct {
    const uint8_t *ro;
    uint32_t ro_len;
    const uint8_t *rw;
    uint32_t rw_len;
} pvm_image;

/* A backend: how an instance's program runs and where its memory lives. */
typedef struct pvm_backend {
    const char *name;
    /* Builds (or finds) the program's code for this backend and sets up the
       instance's memory. 0, or -1 with err set (nothing to release). */
    int (*instantiate)(pvm_instance *vm, const pvm_instance_config *cfg, const pvm_image *img,
                       char *err, size_t err_len);
    void (*release)(pvm_instance *vm);
    /* Runs until an interrupt.  insn == NONE: continue at vm->resume;
       otherwise enter at listing entry insn, at its block's gas charge
       (mid == 0) or, already paid, right at it (mid == 1). */
    int (*run)(pvm_instance *vm, uint32_t insn, int mid);
    /* Memory back to its initial contents. 0, or -1. */
    int (*reset)(pvm_instance *vm);
    int (*read)(const pvm_instance *vm, uint32_t addr, uint8_t *buf, uint32_t len);
    int (*write)(pvm_instance *vm, uint32_t addr, const uint8_t *buf, uint32_t len);
    uint32_t (*sbrk)(pvm_instance *vm, uint32_t size);
} pvm_backend;

/* vm.c: the operations every backend shares. */
int pvm_vm_read(const pvm_instance *vm, uint32_t addr, uint8_t *buf, uint32_t len);
int pvm_vm_write(pvm_instance *vm, uint32_t addr, const uint8_t *buf, uint32_t len);
uint32_t pvm_vm_sbrk(pvm_instance *vm, uint32_t size);
int pvm_vm_reset(pvm_instance *vm);
void pvm_vm_release(pvm_instance *vm);   /* frees the instance's guest memory */

/* The memset and sbrk instructions (isa.md 5.9, 5.10).  memset returns 0
   when done, else the interrupt that stopped it (registers are written back
   either way, so it is restartable). */
int pvm_exec_memset(pvm_instance *vm, int is32, int64_t *gas, int metered);
uint64_t pvm_exec_sbrk(pvm_instance *vm, int is32, uint64_t size);

#endif
