/*
 * jit.h -- the x86-64 JIT: compiled code of a program and how it runs.
 *
 * compile.c turns a pvm_program into machine code (one pass over the
 * decoded instructions); runtime.c enters it, services its exits and turns
 * machine faults into Trap / Segfault interrupts, and is the in-process
 * backend; the sandbox backend (sandbox/host.c) runs the same code in a
 * worker and shares runtime.c's exit handling.
 *
 * The machine code is position independent (the jump table is read-only data
 * after the code, addressed RIP-relative, holding offsets from the code
 * start) and touches nothing but its context block (registers and gas at
 * PVM_VMCTX_*), its stack frame and GS-relative guest memory, so the same
 * bytes run in-process and inside a sandbox worker.
 */
#ifndef PVM_JIT_H
#define PVM_JIT_H

#include "../vm.h"

enum {
    JIT_SITE_TRAP = 1,     /* trap at pc */
    JIT_SITE_ECALLI,       /* host call arg at pc; resume at resume_off */
    JIT_SITE_FINISHED,     /* jump to the return-to-host address at pc */
    JIT_SITE_OOG,          /* block at pc could not be paid; resume at resume_off (its charge) */
    JIT_SITE_HELPER,       /* memset / sbrk done by C; insn = the instruction */
};

#define JIT_FAULT_SITE 0xFFFFFFFFu

/* A block's gas charge that does not fit jumps to the block's out-of-gas
   thunk, a 5-byte `call` of the one shared out-of-gas stub; the stub exits
   with edx = JIT_OOG_TAG | (offset of the thunk's end from the first
   thunk), i.e. JIT_OOG_TAG | 5 (k + 1) for thunk k, and leaves the charge
   in the counter: the exit handling gives it back (pvm_jit_oog_block,
   below).  Thunk k is block oog_insn[k]'s.  (Site ids are far below the tag;
   JIT_FAULT_SITE is no thunk's: 5 (k + 1) < 2^31 - 1.) */
#define JIT_OOG_TAG 0x80000000u
#define JIT_OOG_THUNK_LEN 5u

typedef struct {
    uint8_t kind;
    uint32_t pc;
    uint32_t arg;
    uint32_t insn;         /* instruction index (helpers), NONE otherwise */
    uint32_t resume_off;   /* native offset to resume at, NONE if none */
} pvm_jit_site;

typedef struct pvm_jit_code {
    uint8_t *code;         /* executable mapping (never writable once built) */
    size_t code_size;      /* bytes of the mapping */
    size_t code_len;       /* bytes used */
    uint32_t enter_off;    /* uint32_t enter(pvm_instance *vm, void *target) */
    uint32_t exit_off;     /* common exit: edx = site id */
    uint32_t *insn_off;    /* per instruction: native offset of its code, NONE if none */
    uint32_t charge_len;   /* bytes of the gas charge that opens every block (0 unmetered) */
    uint32_t body_off;     /* layout, for tools: the first instruction's code, */
    uint32_t cold_off;     /* the out-of-line paths, */
    uint32_t table_off;    /* the jump table (u32 entries to the end) */
    pvm_jit_site *sites;
    uint32_t site_count;
    uint32_t *mem_off;     /* sorted native offsets of memory-access instructions */
    uint32_t *mem_insn;    /* ... and their instruction indexes */
    uint32_t mem_count;
    uint32_t *oog_insn;    /* per out-of-gas thunk: the instruction index of its block */
    uint32_t oog_count;
    int metered;
    uint64_t id;           /* unique per compilation (identifies code loaded into a worker) */
} pvm_jit_code;

/* Native offset of the gas charge of block-start instruction i: right
   before its code (NONE if i starts no compiled block). */
static inline uint32_t pvm_jit_charge_off(const pvm_program *p, const pvm_jit_code *c, uint32_t i) {
    if (p->insn_block[i] != i || c->insn_off[i] == PVM_NONE_U32)
        return PVM_NONE_U32;
    return c->insn_off[i] - c->charge_len;
}

/* The block (instruction index) whose out-of-gas thunk exit `site` is, NONE
   if site is no such exit (it may come from a worker: checked). */
static inline uint32_t pvm_jit_oog_block(const pvm_jit_code *c, uint32_t site) {
    if (site == JIT_FAULT_SITE || !(site & JIT_OOG_TAG))
        return PVM_NONE_U32;
    uint32_t end = site & ~JIT_OOG_TAG;
    if (end == 0 || end % JIT_OOG_THUNK_LEN || end / JIT_OOG_THUNK_LEN > c->oog_count)
        return PVM_NONE_U32;
    return c->oog_insn[end / JIT_OOG_THUNK_LEN - 1];
}

/* Gas an exit through `site` gives back before anything else reads the
   counter: the charge of the block whose thunk it is (0 for other exits). */
static inline uint32_t pvm_jit_exit_refund(const pvm_program *p, const pvm_jit_code *c, uint32_t site) {
    uint32_t i = pvm_jit_oog_block(c, site);
    return i == PVM_NONE_U32 ? 0 : p->block_cost[i];
}

/* Whether `site` is an exit id the code can report (a site, a thunk's, or
   a fault). */
static inline int pvm_jit_exit_valid(const pvm_jit_code *c, uint32_t site) {
    return site == JIT_FAULT_SITE || site < c->site_count || pvm_jit_oog_block(c, site) != PVM_NONE_U32;
}

/* compile.c: the program's machine code (one pass over the shared analysis). */
pvm_jit_code *pvm_jit_compile(const pvm_program *p, int metered, char *err, size_t err_len);
void pvm_jit_free(pvm_jit_code *c);

/* runtime.c: the code of a program, compiled once per metering mode and
   kept in the program's cache. */
const pvm_jit_code *pvm_program_jit(const pvm_program *p, int metered, char *err, size_t err_len);
int pvm_jit_cpu_ok(char *reason, size_t len);
/* What instantiating JIT code needs, in-process or in a worker: the CPU
   check, the configuration check, the code (vm->jit).  0, or -1 with err. */
int pvm_jit_prepare(pvm_instance *vm, const pvm_instance_config *cfg, char *err, size_t err_len);
/* runtime.c: before the host enters generated code mid-block (insn, or
   NONE: the resume after a segfault), keeps the registers it set from being
   taken for unextended 32-bit results by the fault path. */
void pvm_jit_guard_entry(pvm_instance *vm, uint32_t insn);
/* Where generated code is entered for a backend's run(vm, insn, mid). */
static inline uint32_t pvm_jit_entry_off(pvm_instance *vm, uint32_t insn, int mid) {
    if (insn == PVM_NONE_U32) {
        if (vm->jit_fault_kind == PVM_INT_SEGFAULT)
            pvm_jit_guard_entry(vm, insn);
        return vm->resume;
    }
    if (!mid)
        return pvm_jit_charge_off(vm->prog, vm->jit, insn);
    pvm_jit_guard_entry(vm, insn);
    return vm->jit->insn_off[insn];
}
/* What an exit from generated code means: an interrupt kind, or -1 to
   continue at *native_off (after a helper ran).  Shared by both homes. */
int pvm_jit_exit(pvm_instance *vm, uint32_t site, uint32_t *native_off);
/* Classifies a fault at code offset `off` with guest registers `regs`:
   0 if it was a guest memory access (vm updated, and the registers whose
   sign extension the code had put off, pvm_jit_pending_at, extended in
   `regs`), -1 otherwise. */
int pvm_jit_classify_fault(pvm_instance *vm, uint32_t off, uint64_t *regs);
/* compile.c: the guest registers (bit r) whose last write in the block
   before instruction ii was a 32-bit result the code may have left
   unextended (zero-extended: its true value is the sign extension of the
   low half); recomputed from the block's instructions. */
uint32_t pvm_jit_pending_at(const pvm_program *p, uint32_t ii);

/* The in-process JIT backend. */
extern const pvm_backend pvm_backend_jit;

#endif
