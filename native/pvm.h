/*
 * pvm.h -- the one C interface of the native core, bound by cffi.
 *
 * The part between CFFI-BEGIN and CFFI-END is read verbatim by
 * executor/_build_native.py as the cdef, so it must stay free of
 * preprocessor directives.  Everything else in native/ is internal.
 */
#ifndef PVM_H
#define PVM_H

#include <stddef.h>
#include <stdint.h>

/* CFFI-BEGIN */

/* Instruction-set kinds, numbered as the blob version byte. */
enum {
    PVM_ISA_REVIVE_V1 = 0,
    PVM_ISA_LATEST32 = 1,
    PVM_ISA_LATEST64 = 2,
    PVM_ISA_JAM_V1 = 3,
    PVM_ISA_COUNT = 4
};

/* Operand classes (shared/spec/isa.md section 3). */
enum {
    PVM_FORM_A = 0, PVM_FORM_I, PVM_FORM_O, PVM_FORM_II, PVM_FORM_RI, PVM_FORM_RIO,
    PVM_FORM_RII, PVM_FORM_RR, PVM_FORM_RRI, PVM_FORM_RRO, PVM_FORM_RRII, PVM_FORM_RRR,
    PVM_FORM_RI64, PVM_FORM_COUNT
};

/* Instruction flags (isa.def). */
enum {
    PVM_F_TERM = 1, PVM_F_NOFALL = 2, PVM_F_LOAD = 4, PVM_F_STORE = 8, PVM_F_BRANCH = 16
};

/* What an instruction computes (isa.def's CLASS column): with the width and
   signedness columns, what every backend needs to know to implement it.
   EQ..GE are comparisons (branches, set_*); MIN/MAX select by one. */
enum {
    PVM_K_TRAP = 0, PVM_K_NOP, PVM_K_ECALL, PVM_K_MEMSET, PVM_K_SBRK, PVM_K_JUMP, PVM_K_MOV,
    PVM_K_LOAD, PVM_K_STORE, PVM_K_EQ, PVM_K_NE, PVM_K_LT, PVM_K_LE, PVM_K_GT, PVM_K_GE,
    PVM_K_ADD, PVM_K_SUB, PVM_K_MUL, PVM_K_MULH, PVM_K_DIV, PVM_K_REM, PVM_K_NEG_ADD,
    PVM_K_AND, PVM_K_OR, PVM_K_XOR, PVM_K_ANDN, PVM_K_ORN, PVM_K_XNOR, PVM_K_SHL, PVM_K_SHR,
    PVM_K_SAR, PVM_K_ROL, PVM_K_ROR, PVM_K_CMOV_Z, PVM_K_CMOV_NZ, PVM_K_MIN, PVM_K_MAX,
    PVM_K_POPCNT, PVM_K_CLZ, PVM_K_CTZ, PVM_K_EXT, PVM_K_BSWAP, PVM_K_COUNT
};

/* Signedness (isa.def's SG column): X none, U unsigned, S signed, SU
   signed by unsigned (mul_upper_signed_unsigned). */
enum { PVM_SG_X = 0, PVM_SG_U, PVM_SG_S, PVM_SG_SU };

/* One row of the instruction table. */
typedef struct {
    const char *mnemonic;
    uint8_t form;
    uint8_t flags;
    int16_t opcode[4];          /* per instruction set, -1 if absent */
    uint8_t cls;                /* PVM_K_* */
    uint8_t width;              /* bits: memory access, or operation (32: result sign-extended); 0 if none */
    uint8_t sign;               /* PVM_SG_* */
} pvm_insn_info;

int pvm_op_count(void);                              /* rows of isa.def; the op of `invalid` */
const pvm_insn_info *pvm_op_info(int op);            /* NULL if out of range */
int pvm_op_for_opcode(int isa, int opcode);          /* op, or pvm_op_count() if unknown */

/* A decoded instruction. */
typedef struct {
    uint32_t pc;        /* code offset */
    uint32_t len;       /* 1 + skip (1 for an implicit `invalid`) */
    uint16_t op;        /* row of isa.def, pvm_op_count() for `invalid` */
    uint8_t opcode;     /* raw opcode byte (0 for an implicit `invalid`) */
    uint8_t form;       /* operand class, PVM_FORM_A for `invalid` */
    uint8_t ra, rb, rd; /* registers, already clamped to 0..12 */
    uint8_t implicit;   /* 1: implicit `invalid` where execution would run off */
    int32_t imm1;       /* first immediate, sign-extended to 32 bits */
    int32_t imm2;       /* second immediate */
    uint32_t target;    /* absolute branch/jump target (forms O, RIO, RRO) */
    uint64_t imm64;     /* load_imm64 literal */
} pvm_insn;

/* Decodes the instruction at `pc` (its bitmask bit is not consulted for pc
   itself).  Never reads outside code[0..code_len) / bitmask[0..ceil(len/8)). */
void pvm_decode_one(int isa, const uint8_t *code, uint32_t code_len, const uint8_t *bitmask,
                    uint32_t pc, pvm_insn *out);
/* skip(pc) per isa.md 2.1. */
uint32_t pvm_skip(const uint8_t *bitmask, uint32_t code_len, uint32_t pc);
/* Unbounded walk (isa.md 2.4) for listings: every instruction start, plus an
   implicit `invalid` wherever execution could run off.  Writes at most `cap`
   entries and returns the number that exist. */
size_t pvm_decode_listing(int isa, const uint8_t *code, uint32_t code_len,
                          const uint8_t *bitmask, pvm_insn *out, size_t cap);

/* ---- memory map (execution.md 3.2): the one formula ---- */
typedef struct {
    uint32_t page_size;
    uint32_t ro_data_address, ro_data_size;
    uint32_t rw_data_address, rw_data_size;
    uint32_t stack_address_low, stack_address_high, stack_size;
    uint32_t aux_data_address, aux_data_size;
    uint32_t heap_base;
    uint32_t max_heap_size;
} pvm_memory_map;

/* Returns 0 on success, else writes a message into err. */
int pvm_memory_map_build(uint32_t page_size, uint32_t ro_data_size, uint32_t rw_data_size,
                         uint32_t stack_size, uint32_t aux_data_size, pvm_memory_map *out,
                         char *err, size_t err_len);

/* ---- programs ---- */
enum {
    PVM_PROG_JAM_FALLTHROUGH = 1,   /* JAM v0.4 profile: trailing `fallthrough` traps at L, +1 gas */
    PVM_PROG_VALIDATE_JAM = 2       /* JamV1 load-time validation (blob-format.md 3.3) */
};

typedef struct pvm_program pvm_program;

/* costs: pvm_op_count()+1 entries (the last one is `invalid`), or NULL for
   the naive model.  jump_table entries are code offsets. */
pvm_program *pvm_program_new(int isa, const uint8_t *code, uint32_t code_len,
                             const uint8_t *bitmask, uint32_t bitmask_len,
                             const uint32_t *jump_table, uint32_t jump_table_len,
                             const uint32_t *costs, uint32_t flags, char *err, size_t err_len);

/* Gas cost models (shared/spec/gas.md 2 and 9). */
enum {
    PVM_COST_SIMPLE = 0,     /* one cost per instruction, summed per block */
    PVM_COST_FULL = 1        /* the pipeline simulation of each block */
};
/* The full model's cache variants: the load latency in cycles. */
enum {
    PVM_CACHE_L1_HIT = 4,
    PVM_CACHE_L2_HIT = 25,
    PVM_CACHE_L3_HIT = 37
};
typedef struct {
    int kind;                     /* PVM_COST_* */
    const uint32_t *costs;        /* SIMPLE: as for pvm_program_new (NULL = naive) */
    uint32_t memory_access_cost;  /* FULL: load latency, 1..127 (PVM_CACHE_*) */
} pvm_cost_model;

/* pvm_program_new with any cost model (NULL = naive). */
pvm_program *pvm_program_new_with_model(int isa, const uint8_t *code, uint32_t code_len,
                                        const uint8_t *bitmask, uint32_t bitmask_len,
                                        const uint32_t *jump_table, uint32_t jump_table_len,
                                        const pvm_cost_model *model, uint32_t flags,
                                        char *err, size_t err_len);
void pvm_program_free(pvm_program *p);
/* Most bytes of machine code the JIT may emit for this program (default
   64 MiB, what a sandbox worker holds); compiling fails past it.  Takes
   effect for code compiled afterwards. */
void pvm_program_set_jit_code_limit(pvm_program *p, size_t bytes);
uint32_t pvm_program_instruction_count(const pvm_program *p);
uint32_t pvm_program_block_count(const pvm_program *p);
int pvm_program_is_64_bit(const pvm_program *p);
/* -1 if pc is not an instruction start inside a basic block, else the
   start of the enclosing block. */
int64_t pvm_program_block_start(const pvm_program *p, uint32_t pc);
/* Cost of the block starting at `start` (0 if not a block start). */
uint32_t pvm_program_block_cost(const pvm_program *p, uint32_t start);
int pvm_program_is_jump_target(const pvm_program *p, uint32_t pc);

/* ---- instances ---- */
enum {
    PVM_INT_FINISHED = 0,
    PVM_INT_TRAP = 1,
    PVM_INT_ECALLI = 2,
    PVM_INT_SEGFAULT = 3,
    PVM_INT_NOT_ENOUGH_GAS = 4,
    PVM_INT_STEP = 5,
    PVM_INT_ERROR = 6,       /* host misuse, see pvm_instance_error() */
    PVM_INT_PENDING = 7      /* sandbox, async mode: the worker still runs (pvm_sandbox_continue) */
};

enum {
    PVM_GAS_NONE = 0,
    PVM_GAS_SYNC = 1
};

enum {
    PVM_PERM_NONE = 0,
    PVM_PERM_READ = 1,
    PVM_PERM_WRITE = 2       /* read and write */
};

enum {
    PVM_BACKEND_INTERPRETER = 0,
    PVM_BACKEND_JIT = 1
};

/* A sandbox worker: a process started from the zygote in its own
   namespaces, behind seccomp, that runs JIT code for one instance at a time. */
typedef struct pvm_worker pvm_worker;

pvm_worker *pvm_worker_spawn(char *err, size_t err_len);
void pvm_worker_free(pvm_worker *w);          /* kills it if alive */
int pvm_worker_pid(const pvm_worker *w);
int pvm_worker_alive(pvm_worker *w);
int pvm_worker_kill(pvm_worker *w);           /* SIGKILL, for tests and deadlines */

typedef struct {
    uint32_t page_size;
    uint32_t ro_data_size, rw_data_size, stack_size, aux_data_size;
    int dynamic_paging;      /* 1: no regions, the host maps pages */
    int gas_metering;        /* PVM_GAS_* */
    int step_tracing;        /* interpreter only */
    int backend;             /* PVM_BACKEND_* */
    pvm_worker *worker;      /* JIT only: run inside this sandbox worker (NULL: in-process) */
} pvm_instance_config;

/* 1 if the in-process JIT can run here; else 0 and a reason. */
int pvm_jit_available(char *reason, size_t reason_len);
/* Re-installs the in-process JIT's SIGSEGV/SIGBUS/SIGILL/SIGFPE handlers
   (chaining whoever installed one since) before the next run on every
   thread; done by every in-process JIT instance creation. */
void pvm_jit_reclaim_signals(void);
/* Compiles the program for the JIT now (otherwise done at first instance);
   0 on success.  Returns the size of the machine code in *code_size. */
int pvm_program_compile_jit(pvm_program *p, int metered, size_t *code_size, char *err, size_t err_len);
/* For tools: the compiled machine code (NULL if not compiled) and the code
   offset where the instruction at `pc` begins (-1 if none). */
const uint8_t *pvm_program_jit_code(const pvm_program *p, int metered, size_t *len);
int64_t pvm_program_jit_offset(const pvm_program *p, int metered, uint32_t pc);
/* The layout of the compiled code (0 if not compiled): out[0] where the first
   instruction's code starts (before it: entry and exit routines), out[1] the
   out-of-line paths, out[2] the jump table (u32 entries up to the end). */
int pvm_program_jit_sections(const pvm_program *p, int metered, uint32_t *out);

typedef struct pvm_instance pvm_instance;

pvm_instance *pvm_instance_new(const pvm_program *p, const pvm_instance_config *cfg,
                               const uint8_t *ro_data, uint32_t ro_len,
                               const uint8_t *rw_data, uint32_t rw_len,
                               char *err, size_t err_len);
void pvm_instance_free(pvm_instance *vm);
/* Restores memory and heap to the initial image; registers to 0; no next pc. */
int pvm_instance_reset_memory(pvm_instance *vm);

int pvm_instance_run(pvm_instance *vm);            /* returns PVM_INT_* */

/* The host's call path in one C call each (execution.md 4).  Both return the
   interrupt kind, or PVM_CALL_HOSTCALL + the hostcall number for an ecalli.
   pvm_instance_call: registers zeroed except ra = return-to-host, sp = the
   stack top, a0 = arg0, a1 = arg1; then run from pc.  pvm_instance_enter: run
   from pc with the registers as they are.  pvm_instance_resume: run() again
   (after an ecalli, a page fault or a step). */
enum { PVM_CALL_HOSTCALL = 8 };
int64_t pvm_instance_call(pvm_instance *vm, uint32_t pc, uint64_t arg0, uint64_t arg1);
int64_t pvm_instance_enter(pvm_instance *vm, uint32_t pc);
int64_t pvm_instance_resume(pvm_instance *vm);
/* The same call path for a host that wants the result without another call:
   a call site (one per export of an instance, made once) and calls that return
   a0 (as an unsigned value of the ISA's width) when the guest finished with
   a0 < PVM_CALL_STOPPED, else PVM_CALL_STOPPED + what pvm_instance_call would
   have returned (so PVM_CALL_STOPPED + PVM_INT_FINISHED: finished with a0 >=
   PVM_CALL_STOPPED, read it from the registers).  PVM_CALL_STOPPED is
   2^64 - 2^PVM_CALL_STOPPED_BITS.  pvm_site_resume continues after a stop as
   pvm_instance_resume does.  Each call records the gas it starts with
   (pvm_instance_call_gas), so the host need not read it before the call. */
enum { PVM_CALL_STOPPED_BITS = 36 };
typedef struct pvm_call_site {
    pvm_instance *vm;
    uint32_t pc;
} pvm_call_site;
uint64_t pvm_site_call0(const pvm_call_site *s);
uint64_t pvm_site_call1(const pvm_call_site *s, uint64_t arg0);
uint64_t pvm_site_call2(const pvm_call_site *s, uint64_t arg0, uint64_t arg1);
uint64_t pvm_site_resume(pvm_instance *vm);
int64_t pvm_instance_call_gas(const pvm_instance *vm);
/* Wall-clock limit for one run() in a sandbox worker (0 = none); past it the
   worker is killed and run() returns PVM_INT_ERROR. */
void pvm_instance_set_deadline(pvm_instance *vm, uint64_t nanoseconds);
/* Sandbox: a worker that uses no CPU for this long while the host waits on it
   (stopped, blocked, a lost wake-up) is killed and run() returns
   PVM_INT_ERROR (0 = never; default PVM_SBX_DEFAULT_STALL_NS, 5 s). */
void pvm_instance_set_stall_timeout(pvm_instance *vm, uint64_t nanoseconds);
const char *pvm_instance_error(const pvm_instance *vm);
/* What the last PVM_INT_ERROR was: PVM_ERROR_SANDBOX = the sandbox worker died,
   stalled, passed its deadline or broke the protocol (and was killed). */
enum { PVM_ERROR_OTHER = 0, PVM_ERROR_SANDBOX = 1 };
int pvm_instance_error_kind(const pvm_instance *vm);
/* The event loop's protocol for an instance in a sandbox worker.  After
   pvm_sandbox_set_async(vm, spin_ns) (returns the descriptor to await, -1 if
   the instance is not sandboxed), run() spins up to spin_ns for the worker
   and then returns PVM_INT_PENDING instead of sleeping; once the descriptor
   is readable (the worker finished or died) or from time to time (the
   deadline and stall watchdog are checked there), pvm_sandbox_continue()
   finishes the run like run() would, or returns PVM_INT_PENDING again.
   spin_ns = 0 turns async mode off.  Nothing else may touch the instance
   while a run is in flight (pvm_sandbox_inflight). */
int pvm_sandbox_set_async(pvm_instance *vm, uint32_t spin_ns);
int pvm_sandbox_continue(pvm_instance *vm, uint32_t spin_ns);
int pvm_sandbox_inflight(const pvm_instance *vm);

uint64_t pvm_instance_reg(const pvm_instance *vm, int r);
void pvm_instance_set_reg(pvm_instance *vm, int r, uint64_t value);
int64_t pvm_instance_gas(const pvm_instance *vm);
void pvm_instance_set_gas(pvm_instance *vm, int64_t gas);
/* program counter of the last interruption; -1 when none */
int64_t pvm_instance_pc(const pvm_instance *vm);
int64_t pvm_instance_next_pc(const pvm_instance *vm);
void pvm_instance_set_next_pc(pvm_instance *vm, uint32_t pc);
void pvm_instance_clear_next_pc(pvm_instance *vm);
uint32_t pvm_instance_ecalli(const pvm_instance *vm);         /* hostcall number */
uint32_t pvm_instance_fault_address(const pvm_instance *vm);  /* page address of a segfault */
int pvm_instance_fault_is_write(const pvm_instance *vm);

/* Host memory access: 0 on success, -1 if any byte is inaccessible. Host
   writes ignore guest protection (they may write read-only data). */
int pvm_instance_read(const pvm_instance *vm, uint32_t addr, uint8_t *buf, uint32_t len);
int pvm_instance_write(pvm_instance *vm, uint32_t addr, const uint8_t *buf, uint32_t len);
int pvm_instance_is_accessible(const pvm_instance *vm, uint32_t addr, uint32_t len, int write);
/* Dynamic paging: map whole pages (zeroed) / change protection / unmap. */
int pvm_instance_map(pvm_instance *vm, uint32_t addr, uint32_t len, int perm);
int pvm_instance_protect(pvm_instance *vm, uint32_t addr, uint32_t len, int perm);
int pvm_instance_unmap(pvm_instance *vm, uint32_t addr, uint32_t len);
/* sbrk from the host: new heap top, or 0 on failure. */
uint32_t pvm_instance_sbrk(pvm_instance *vm, uint32_t size);
uint32_t pvm_instance_heap_size(const pvm_instance *vm);
const pvm_memory_map *pvm_instance_memory_map(const pvm_instance *vm);
/* Direct pointer to guest byte `addr` in the host mapping (valid while the
   instance lives; only for ranges that pvm_instance_is_accessible accepts). */
uint8_t *pvm_instance_memory_base(pvm_instance *vm);
/* The register file (13 x u64, Latest32 values kept sign-extended) and the
   gas counter, for hosts that access them directly between runs. */
uint64_t *pvm_instance_regs_ptr(pvm_instance *vm);
int64_t *pvm_instance_gas_ptr(pvm_instance *vm);

/* CFFI-END */

#ifdef PVM_SANDBOX_TESTING
/* Test-only (tests/sandbox), never in the default build: run raw machine code
   inside a worker; exit_off is where a fault inside that code continues. */
int pvm_worker_test_run_raw(pvm_worker *w, const uint8_t *code, size_t len, uint32_t exit_off,
                            int *status);
/* Test-only: plays a compromised worker by overwriting `len` (<= 64) bytes at
   `offset` of the control page each time the worker hands it back. */
int pvm_worker_test_tamper(pvm_worker *w, uint32_t offset, const uint8_t *bytes, uint32_t len);
/* Test-only: the control page's fields (name, offset, size); -1 past the last. */
int pvm_worker_test_field(int index, const char **name, uint32_t *offset, uint32_t *size);
#endif

#endif
