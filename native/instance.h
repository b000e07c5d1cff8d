/*
 * instance.h -- the state of one running program (registers, gas, pc,
 * memory) shared by the interpreter and the host-facing accessors.
 */
#ifndef PVM_INSTANCE_H
#define PVM_INSTANCE_H

#include "memory.h"
#include "program.h"

struct pvm_instance {
    const pvm_program *prog;
    pvm_memory mem;
    uint64_t regs[PVM_NUM_REGS];
    int64_t gas;
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
};

int pvm_interp_run(pvm_instance *vm, uint32_t rec);

#endif
