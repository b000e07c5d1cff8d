/*
 * runtime.c -- the in-process JIT backend: CPU feature checks, the
 * per-program code cache, entering the code with the GS base on the guest
 * region, servicing exits (shared with the sandbox backend), and a
 * SIGSEGV/SIGBUS handler that turns guest memory faults into Trap or
 * Segfault interrupts (and chains every other signal to whoever had it).
 */
#define _GNU_SOURCE
#include "jit.h"

#include <asm/prctl.h>
#include <cpuid.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define NONE PVM_NONE_U32

typedef uint32_t (*jit_enter_fn)(pvm_instance *vm, void *target);

/* initial-exec: a thread-local read or write is one %fs-relative access, not a
   call to __tls_get_addr (the general-dynamic model of a shared object), which
   cost ~100 instructions per run (callgrind); 24 bytes of the static TLS
   surplus glibc keeps for dlopen()ed objects. */
#define JIT_TLS __thread __attribute__((tls_model("initial-exec")))
static JIT_TLS pvm_instance *tls_vm;
static JIT_TLS uintptr_t tls_gs_base;
/* Our handlers are (re)installed, and whoever replaced them chained, when a
   thread runs JIT code for the first time, after a fault was chained, and
   after every in-process JIT instance creation anywhere in the process
   (pvm_jit_reclaim_signals bumps the epoch): never per run, which would cost
   a system call on every call and host call.  So a SIGSEGV handler installed
   after an instance was created (faulthandler.enable(), ...) is chained from
   the next instance creation on; pvm_jit_reclaim_signals() does it at once. */
static uint64_t handler_epoch = 1;
static JIT_TLS uint64_t checked_epoch;

/* cpuid traps to the hypervisor on a VM (slow): ask once per process. */
static int cpu_checked, cpu_ok;
static char cpu_reason[96];

static int cpu_check(char *reason, size_t len);

int pvm_jit_cpu_ok(char *reason, size_t len) {
    if (!__atomic_load_n(&cpu_checked, __ATOMIC_ACQUIRE)) {
        cpu_ok = cpu_check(cpu_reason, sizeof cpu_reason);
        __atomic_store_n(&cpu_checked, 1, __ATOMIC_RELEASE);
    }
    if (!cpu_ok)
        pvm_set_err(reason, len, "%s", cpu_reason);
    return cpu_ok;
}

static int cpu_check(char *reason, size_t len) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 23))) {
        pvm_set_err(reason, len, "the CPU lacks POPCNT");
        return 0;
    }
    if (!__get_cpuid(0x80000001, &a, &b, &c, &d) || !(c & (1u << 5))) {
        pvm_set_err(reason, len, "the CPU lacks LZCNT");
        return 0;
    }
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 3))) {
        pvm_set_err(reason, len, "the CPU lacks BMI1 (TZCNT)");
        return 0;
    }
    return 1;
}

/* ---- signals ---- */
static const int JIT_SIGNALS[4] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
static struct sigaction prev_action[4];
static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;

static int sig_index(int sig) {
    for (int k = 0; k < 4; k++)
        if (JIT_SIGNALS[k] == sig)
            return k;
    return -1;
}

static const int GREG_OF_HOST[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                                     REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};
static const int HOST_OF_GUEST[PVM_NUM_REGS] = {1, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* A fault that is not a guest memory access: give the signal back to
   whoever had it before us (faulthandler, a debugger's runtime, the default
   action).  We step aside first (our handler is re-installed at the next JIT
   run); if the previous handler hands the signal back to us, as faulthandler
   does after dumping its traceback, the default action is restored so the
   process ends the way it would have without us. */
static void fault_handler(int sig, siginfo_t *si, void *ucv);

static void chain(int sig, siginfo_t *si, void *uc) {
    int k = sig_index(sig);
    checked_epoch = 0;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    struct sigaction *o = k >= 0 ? &prev_action[k] : &dfl;
    sigaction(sig, o, NULL);
    if ((o->sa_flags & SA_SIGINFO) && o->sa_sigaction) {
        o->sa_sigaction(sig, si, uc);
    } else if (o->sa_handler != SIG_DFL && o->sa_handler != SIG_IGN && o->sa_handler) {
        o->sa_handler(sig);
    } else {
        if (si->si_code <= 0)
            raise(sig); /* sent by kill(): delivered with the default action on return */
        return;         /* a real fault: it happens again, now with the default action */
    }
    struct sigaction now;
    if (sigaction(sig, NULL, &now) == 0 && (now.sa_flags & SA_SIGINFO) &&
        now.sa_sigaction == fault_handler)
        sigaction(sig, &dfl, NULL);
}

/* ---- lazy sign extension (compile.c: sx_elide) on the slow paths ----

   At a fault at instruction ii, a register whose last write in the block
   was a 32-bit result left unextended (pvm_jit_pending_at) holds it zero-
   extended: its upper half is 0, and it is extended here before anyone
   sees it.  A register in that set with a non-zero upper half holds
   something else -- a value the host set when it entered mid-block, after
   that write -- and is left alone.  The one value a host can set that looks
   like an unextended result is a 32-bit pattern with bit 31 set and a zero
   upper half: sx_guard_entry gives such a register (pending where the host
   enters: the code writes it again before reading its upper half) its
   extension as an upper half for the run, marking it in vm->jit_shadow, and
   the fault path takes the marker off again if the register still holds
   that value (unextended results have a zero upper half, so they cannot be
   taken for it). */
static void sx_fault_regs(pvm_instance *vm, uint32_t ii, uint64_t *regs) {
    uint32_t lazy = pvm_jit_pending_at(vm->prog, ii);
    for (unsigned r = 0; r < PVM_NUM_REGS; r++) {
        if (!(lazy & (1u << r)))
            continue;
        uint64_t v = regs[r];
        if ((v >> 32) == 0)
            regs[r] = (uint64_t)(int64_t)(int32_t)v;
        else if ((vm->jit_shadow & (1u << r)) && (v >> 31) == 0x1FFFFFFFFu)
            regs[r] = v & 0xFFFFFFFFu;
    }
}

void pvm_jit_guard_entry(pvm_instance *vm, uint32_t insn) {
    const pvm_jit_code *c = vm->jit;
    vm->jit_shadow = 0;
    if (insn == NONE) { /* a resume: after a segfault, at its memory access */
        if (vm->jit_fault_kind != PVM_INT_SEGFAULT || !c->mem_count)
            return;
        uint32_t lo = 0, hi = c->mem_count;
        while (hi - lo > 1) {
            uint32_t mid = (lo + hi) / 2;
            if (c->mem_off[mid] <= vm->resume)
                lo = mid;
            else
                hi = mid;
        }
        if (c->mem_off[lo] != vm->resume)
            return;
        insn = c->mem_insn[lo];
    }
    uint32_t lazy = pvm_jit_pending_at(vm->prog, insn);
    for (unsigned r = 0; r < PVM_NUM_REGS; r++) {
        uint64_t v = vm->regs[r];
        if ((lazy & (1u << r)) && (v >> 31) == 1) {
            vm->regs[r] = (uint64_t)(int64_t)(int32_t)v;
            vm->jit_shadow |= (uint16_t)(1u << r);
        }
    }
}

int pvm_jit_classify_fault(pvm_instance *vm, uint32_t off, uint64_t *regs) {
    const pvm_jit_code *c = vm->jit;
    if (!c->mem_count)
        return -1;
    uint32_t lo = 0, hi = c->mem_count;
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (c->mem_off[mid] <= off)
            lo = mid;
        else
            hi = mid;
    }
    if (c->mem_off[lo] > off)
        return -1;
    uint32_t ii = c->mem_insn[lo];
    sx_fault_regs(vm, ii, regs);
    pvm_insn insn;
    pvm_program_insn(vm->prog, ii, &insn);
    const pvm_insn *in = &insn;
    unsigned op = in->op;
    uint32_t addr;
    switch (in->form) {
    case PVM_FORM_RII: addr = (uint32_t)regs[in->ra] + (uint32_t)in->imm1; break;
    case PVM_FORM_RRI: addr = (uint32_t)regs[in->rb] + (uint32_t)in->imm1; break;
    default: addr = (uint32_t)in->imm1; break;
    }
    int write = (pvm_isa_table[op].flags & PVM_F_STORE) != 0;
    uint32_t page = 0;
    int wp = 0;
    int k = pvm_memory_guest_check(&vm->mem, addr, pvm_isa_table[op].width / 8u, write, &page, &wp);
    vm->pc = in->pc;
    if (k == PVM_ACCESS_FAULT) {
        vm->fault_page = page;
        vm->fault_write = wp;
        vm->jit_fault_kind = PVM_INT_SEGFAULT;
        vm->resume = c->insn_off[ii];
    } else {
        vm->jit_fault_kind = PVM_INT_TRAP;
    }
    return 0;
}

static void fault_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    pvm_instance *vm = tls_vm;
    if (vm && vm->jit && (sig == SIGSEGV || sig == SIGBUS)) {
        const pvm_jit_code *c = vm->jit;
        uintptr_t rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
        uintptr_t base = (uintptr_t)c->code;
        if (rip >= base && rip < base + c->code_len) {
            uint64_t regs[PVM_NUM_REGS];
            for (unsigned r = 0; r < PVM_NUM_REGS; r++)
                regs[r] = (uint64_t)uc->uc_mcontext.gregs[GREG_OF_HOST[HOST_OF_GUEST[r]]];
            if (pvm_jit_classify_fault(vm, (uint32_t)(rip - base), regs) == 0) {
                for (unsigned r = 0; r < PVM_NUM_REGS; r++)
                    uc->uc_mcontext.gregs[GREG_OF_HOST[HOST_OF_GUEST[r]]] = (greg_t)regs[r];
                uc->uc_mcontext.gregs[REG_RDX] = JIT_FAULT_SITE;
                uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(base + c->exit_off);
                return;
            }
        }
    }
    chain(sig, si, ucv);
}

void pvm_jit_reclaim_signals(void) {
    __atomic_fetch_add(&handler_epoch, 1, __ATOMIC_RELEASE);
}

static int install_handlers(uint64_t epoch) {
    checked_epoch = epoch;
    for (int k = 0; k < 4; k++) {
        struct sigaction cur;
        if (sigaction(JIT_SIGNALS[k], NULL, &cur) != 0)
            return -1;
        if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == fault_handler)
            continue;
        pthread_mutex_lock(&handler_lock);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = fault_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        struct sigaction old;
        int rc = sigaction(JIT_SIGNALS[k], &sa, &old);
        if (rc == 0 && !((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == fault_handler))
            prev_action[k] = old; /* whoever installed after us keeps being chained */
        pthread_mutex_unlock(&handler_lock);
        if (rc != 0) {
            checked_epoch = 0;
            return -1;
        }
    }
    return 0;
}

/* Per run: one load and compare, inline; the work is in install_handlers. */
static inline int ensure_handlers(void) {
    uint64_t epoch = __atomic_load_n(&handler_epoch, __ATOMIC_ACQUIRE);
    if (PVM_LIKELY(checked_epoch == epoch))
        return 0;
    return install_handlers(epoch);
}

static int set_gs(uintptr_t base) {
    if (tls_gs_base == base)
        return 0;
    if (syscall(SYS_arch_prctl, ARCH_SET_GS, base) != 0)
        return -1;
    tls_gs_base = base;
    return 0;
}

int pvm_jit_exit(pvm_instance *vm, uint32_t site, uint32_t *native_off) {
    const pvm_jit_code *c = vm->jit;
    const pvm_program *p = vm->prog;
    if (site == JIT_FAULT_SITE) {
        if (vm->jit_fault_kind == PVM_INT_SEGFAULT) {
            vm->next_pc = vm->pc;
            return PVM_INT_SEGFAULT;
        }
        vm->next_pc = NONE;
        vm->resume = NONE;
        return PVM_INT_TRAP;
    }
    uint32_t oog = pvm_jit_oog_block(c, site);
    if (oog != NONE) {
        /* the block's charge did not fit: given back, the block charged
           again when the run resumes */
        vm->gas = (int64_t)((uint64_t)vm->gas + p->block_cost[oog]);
        vm->pc = vm->next_pc = p->insn_pc[oog];
        vm->resume = pvm_jit_charge_off(p, c, oog);
        return PVM_INT_NOT_ENOUGH_GAS;
    }
    if (site >= c->site_count) {
        snprintf(vm->error, sizeof vm->error, "internal JIT error: bad exit site %u", site);
        return PVM_INT_ERROR;
    }
    const pvm_jit_site *s = &c->sites[site];
    switch (s->kind) {
    case JIT_SITE_TRAP:
        vm->pc = s->pc;
        vm->next_pc = NONE;
        return PVM_INT_TRAP;
    case JIT_SITE_FINISHED:
        vm->pc = s->pc;
        vm->next_pc = NONE;
        return PVM_INT_FINISHED;
    case JIT_SITE_ECALLI:
        vm->pc = s->pc;
        vm->ecalli = s->arg;
        vm->next_pc = p->insn_pc[s->insn];
        vm->resume = s->resume_off;
        return PVM_INT_ECALLI;
    case JIT_SITE_OOG:
        vm->pc = vm->next_pc = s->pc;
        vm->resume = s->resume_off;
        return PVM_INT_NOT_ENOUGH_GAS;
    case JIT_SITE_HELPER: {
        uint32_t ii = s->insn;
        if (s->arg == PVM_OP_SBRK || s->arg == PVM_XOP_SBRK_32) {
            pvm_insn in; /* RR: rd = sbrk(ra) */
            pvm_program_insn(p, ii, &in);
            vm->regs[in.rd] = pvm_exec_sbrk(vm, s->arg == PVM_XOP_SBRK_32, vm->regs[in.ra]);
        } else {
            int stop = pvm_exec_memset(vm, s->arg == PVM_XOP_MEMSET_32, &vm->gas, c->metered);
            if (stop) {
                vm->pc = s->pc;
                if (stop == PVM_INT_TRAP) {
                    vm->next_pc = NONE;
                    return PVM_INT_TRAP;
                }
                vm->next_pc = s->pc;
                vm->resume = c->insn_off[ii];
                return stop;
            }
        }
        *native_off = c->insn_off[ii + 1];
        return -1;
    }
    default:
        snprintf(vm->error, sizeof vm->error, "internal JIT error: bad exit site %u", site);
        return PVM_INT_ERROR;
    }
}

static int jit_run(pvm_instance *vm, uint32_t insn, int mid) {
    const pvm_jit_code *c = vm->jit;
    uint32_t native_off = pvm_jit_entry_off(vm, insn, mid);
    if (ensure_handlers() != 0 || set_gs((uintptr_t)vm->mem.base) != 0) {
        snprintf(vm->error, sizeof vm->error, "cannot set up the JIT runtime (signal handler or GS base)");
        return PVM_INT_ERROR;
    }
    jit_enter_fn enter;
    uint8_t *entry = c->code + c->enter_off;
    memcpy(&enter, &entry, sizeof enter);
    for (;;) {
        vm->jit_fault_kind = 0;
        vm->resume = NONE;
        tls_vm = vm;
        uint32_t site = enter(vm, c->code + native_off);
        tls_vm = NULL;
        int k = pvm_jit_exit(vm, site, &native_off);
        if (k >= 0)
            return k;
    }
}

/* With PVM_PERF_MAP set, describe the generated code to `perf` (one symbol
   per basic block, named by its guest pc) in /tmp/perf-<pid>.map. */
static void write_perf_map(const pvm_program *p, const pvm_jit_code *c) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    uint32_t prev = NONE, prev_pc = 0;
    for (uint32_t i = 0; i < p->insn_count; i++) {
        uint32_t off = pvm_jit_charge_off(p, c, i);
        if (off == NONE)
            continue;
        if (prev != NONE)
            fprintf(f, "%lx %x pvm_block_%u\n", (unsigned long)(uintptr_t)(c->code + prev),
                    off - prev, prev_pc);
        prev = off;
        prev_pc = p->insn_pc[i];
    }
    if (prev != NONE)
        fprintf(f, "%lx %x pvm_block_%u\n", (unsigned long)(uintptr_t)(c->code + prev),
                (uint32_t)c->code_len - prev, prev_pc);
    fclose(f);
}

/* ---- per-program compiled code, built once per metering mode ---- */
static pthread_mutex_t compile_lock = PTHREAD_MUTEX_INITIALIZER;

static void jit_release_code(void *c) { pvm_jit_free(c); }

const pvm_jit_code *pvm_program_jit(const pvm_program *cp, int metered, char *err, size_t err_len) {
    pvm_program *p = (pvm_program *)cp;
    pvm_program_cache *slot = &p->cache[PVM_CACHE_JIT + (metered ? 1 : 0)];
    pthread_mutex_lock(&compile_lock);
    pvm_jit_code *c = slot->code;
    if (!c) {
        c = pvm_jit_compile(p, metered, err, err_len);
        if (c) {
            slot->release = jit_release_code;
            slot->code = c;
        }
        if (c && getenv("PVM_PERF_MAP"))
            write_perf_map(p, c);
    }
    pthread_mutex_unlock(&compile_lock);
    return c;
}

static const pvm_jit_code *compiled(const pvm_program *p, int metered) {
    return p->cache[PVM_CACHE_JIT + (metered ? 1 : 0)].code;
}

int pvm_jit_available(char *reason, size_t reason_len) {
#if defined(__x86_64__) && defined(__linux__)
    return pvm_jit_cpu_ok(reason, reason_len);
#else
    pvm_set_err(reason, reason_len, "the JIT targets x86-64 Linux");
    return 0;
#endif
}

int pvm_jit_prepare(pvm_instance *vm, const pvm_instance_config *cfg, char *err, size_t err_len) {
    char reason[128];
    if (!pvm_jit_available(reason, sizeof reason)) {
        pvm_set_err(err, err_len, "the JIT cannot run here: %s", reason);
        return -1;
    }
    if (cfg->step_tracing) {
        pvm_set_err(err, err_len, "step tracing runs on the interpreter, not the JIT");
        return -1;
    }
    vm->jit = (pvm_jit_code *)pvm_program_jit(vm->prog, cfg->gas_metering != PVM_GAS_NONE, err, err_len);
    return vm->jit ? 0 : -1;
}

/* ---- the in-process backend ---- */

static int jit_instantiate(pvm_instance *vm, const pvm_instance_config *cfg, const pvm_image *img,
                           char *err, size_t err_len) {
    if (pvm_jit_prepare(vm, cfg, err, err_len) != 0)
        return -1;
    if (pvm_memory_init(&vm->mem, cfg, img->ro, img->ro_len, img->rw, img->rw_len, err, err_len) != 0)
        return -1;
    pvm_jit_reclaim_signals();
    return 0;
}

const pvm_backend pvm_backend_jit = {
    .name = "jit",
    .instantiate = jit_instantiate,
    .release = pvm_vm_release,
    .run = jit_run,
    .reset = pvm_vm_reset,
    .read = pvm_vm_read,
    .write = pvm_vm_write,
    .sbrk = pvm_vm_sbrk,
};

/* ---- tools: the compiled code of a program ---- */

int pvm_program_compile_jit(pvm_program *p, int metered, size_t *code_size, char *err, size_t err_len) {
    const pvm_jit_code *c = pvm_program_jit(p, metered, err, err_len);
    if (!c)
        return -1;
    if (code_size)
        *code_size = c->code_len;
    return 0;
}

const uint8_t *pvm_program_jit_code(const pvm_program *p, int metered, size_t *len) {
    const pvm_jit_code *c = compiled(p, metered);
    if (!c)
        return NULL;
    if (len)
        *len = c->code_len;
    return c->code;
}

int64_t pvm_program_jit_offset(const pvm_program *p, int metered, uint32_t pc) {
    const pvm_jit_code *c = compiled(p, metered);
    if (!c)
        return -1;
    uint32_t i = pvm_program_insn_at(p, pc);
    if (i == NONE)
        return -1;
    uint32_t off = p->insn_block[i] == i ? pvm_jit_charge_off(p, c, i) : c->insn_off[i];
    return off == NONE ? -1 : (int64_t)off;
}

int pvm_program_jit_sections(const pvm_program *p, int metered, uint32_t *out) {
    const pvm_jit_code *c = compiled(p, metered);
    if (!c)
        return -1;
    out[0] = c->body_off;
    out[1] = c->cold_off;
    out[2] = c->table_off;
    return 0;
}
