/*
 * instance.h -- the state of one running program (registers, gas, pc,
 * memory) shared by the interpreter and the host-facing accessors.
 */
#ifndef PVM_INSTANCE_H
#define PVM_INSTANCE_H

#include "memory.h"
#include "program.h"

/* Generated code reads and writes the guest registers and the gas counter at
   these offsets from the context pointer it is entered with; the instance
   starts with them, and so does the sandbox worker's control page. */
#define PVM_VMCTX_REGS 0
#define PVM_VMCTX_GAS (8 * PVM_NUM_REGS)

struct pvm_instance {
    uint64_t regs[PVM_NUM_REGS]; /* must stay first: PVM_VMCTX_REGS */
    int64_t gas;                 /* must follow: PVM_VMCTX_GAS */
    const pvm_program *prog;
    pvm_memory mem;
    int gas_metering;
    int step_tracing;
    uint32_t pc;           /* pc of the last interruption, NONE if none */
    uint32_t next_pc;      /* where run() resumes, NONE if not set */
    uint32_t resume_rec;   /* record to resume at without charging, NONE: enter via next_pc */
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
    uint32_t jit_resume;        /* native offset to resume at, NONE: enter via next_pc */
    volatile uint32_t jit_fault_kind; /* set by the fault handler */
};

int pvm_interp_run(pvm_instance *vm, uint32_t rec);

/* Shared by every backend: the memset and sbrk instructions (isa.md 5.9,
   5.10).  memset returns 0 when done, else the interrupt that stopped it
   (registers are written back either way, so it is restartable). */
int pvm_exec_memset(pvm_instance *vm, int is32, int64_t *gas, int metered);
uint64_t pvm_exec_sbrk(pvm_instance *vm, int is32, uint64_t size);

#endif
