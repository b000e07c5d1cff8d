/*
 * zygote.c -- the sandbox worker: a small freestanding static program (no
 * libc, raw system calls) that the host starts from a memfd inside fresh
 * user, pid, mount, network, ipc, uts and cgroup namespaces.
 *
 * It maps the three shared memory files it was given (control page, guest
 * memory, JIT code -- the code read+execute, never writable here), points the
 * GS base at guest memory, empties its filesystem view (pivot_root into an
 * empty tmpfs, then detaches the old root), sets tight rlimits, drops every
 * capability, sets no_new_privs and installs a seccomp filter that allows
 * only:
 *
 *   futex          wait for / signal the host
 *   rt_sigreturn   return from the fault handler
 *   mprotect       only inside guest memory, only PROT_READ/PROT_WRITE
 *   write          only to its eventfd (PVM_SBX_FD_EVENT, the one descriptor it
 *                  keeps): wakes an event loop awaiting the worker
 *   exit, exit_group
 *
 * Anything else kills the worker.  Then it serves commands from the control
 * page: apply guest page protections, and run JIT code until it exits.
 */
#include "protocol.h"

#include <stddef.h>

#define SYS_write 1
#define SYS_close 3
#define SYS_mmap 9
#define SYS_mprotect 10
#define SYS_rt_sigaction 13
#define SYS_rt_sigreturn 15
#define SYS_exit 60
#define SYS_chdir 80
#define SYS_mkdir 83
#define SYS_rmdir 84
#define SYS_capset 126
#define SYS_pivot_root 155
#define SYS_prctl 157
#define SYS_arch_prctl 158
#define SYS_mount 165
#define SYS_umount2 166
#define SYS_futex 202
#define SYS_exit_group 231
#define SYS_prlimit64 302
#define SYS_seccomp 317
#define SYS_close_range 436

#define PROT_NONE 0
#define PROT_READ 1
#define PROT_WRITE 2
#define PROT_EXEC 4
#define MAP_SHARED 1
#define MAP_FIXED_NOREPLACE 0x100000
#define ARCH_SET_GS 0x1001
#define MS_RDONLY 1
#define MS_NOSUID 2
#define MS_NODEV 4
#define MS_NOEXEC 8
#define MS_REMOUNT 32
#define MS_BIND 4096
#define MS_REC 16384
#define MS_PRIVATE (1 << 18)
#define MNT_DETACH 2
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define SIGBUS 7
#define SIGFPE 8
#define SIGSEGV 11
#define SIGILL 4
#define SA_SIGINFO 4
#define SA_RESTORER 0x04000000
#define PR_SET_PDEATHSIG 1
#define PR_SET_NO_NEW_PRIVS 38
#define PR_CAPBSET_DROP 24
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#define SECCOMP_SET_MODE_FILTER 1

/* ucontext_t offsets on x86-64 Linux: uc_mcontext.gregs starts at 40 */
#define UC_GREG(n) (40 + 8 * (n))
#define REG_RDX 12
#define REG_RIP 16

static inline long sys6(long n, long a, long b, long c, long d, long e, long f) {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

__attribute__((noreturn)) static void die(int code) {
    for (;;)
        sys6(SYS_exit_group, code, 0, 0, 0, 0, 0);
}

/* the compiler may emit calls to these */
void *memset(void *d, int c, size_t n);
void *memset(void *d, int c, size_t n) {
    unsigned char *p = d;
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}
void *memcpy(void *d, const void *s, size_t n);
void *memcpy(void *d, const void *s, size_t n) {
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

static pvm_sbx_ctl *const ctl = (pvm_sbx_ctl *)PVM_SBX_CTL_BASE;

/* ---- signals: a fault inside JIT code leaves through the exit routine ---- */
struct k_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
};

void pvm_zygote_restorer(void);
__asm__(".text\n"
        ".globl pvm_zygote_restorer\n"
        "pvm_zygote_restorer:\n"
        "  mov $15, %eax\n"
        "  syscall\n"
        "  hlt\n");

static void on_fault(int sig, void *info, void *ucv) {
    (void)info;
    unsigned char *uc = ucv;
    uint64_t *rip = (uint64_t *)(uc + UC_GREG(REG_RIP));
    uint64_t *rdx = (uint64_t *)(uc + UC_GREG(REG_RDX));
    if ((sig == SIGSEGV || sig == SIGBUS) && *rip >= PVM_SBX_CODE_BASE &&
        *rip < PVM_SBX_CODE_BASE + ctl->code_len) {
        ctl->fault_signal = (uint32_t)sig;
        ctl->fault_rip_off = *rip - PVM_SBX_CODE_BASE;
        *rdx = 0xFFFFFFFFu; /* the exit "site" of a fault */
        *rip = PVM_SBX_CODE_BASE + ctl->exit_off;
        return;
    }
    ctl->fault_signal = (uint32_t)sig;
    die(128 + sig);
}

static void install_handlers(void) {
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (unsigned k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
        struct k_sigaction sa;
        sa.handler = (void *)on_fault;
        sa.flags = SA_SIGINFO | SA_RESTORER;
        sa.restorer = (void *)pvm_zygote_restorer;
        sa.mask = ~0ul; /* block everything while handling */
        if (sys6(SYS_rt_sigaction, sigs[k], (long)&sa, 0, 8, 0, 0) != 0)
            die(30);
    }
}

/* ---- lock-down ---- */
static int empty_root(void) {
    static const char *const dirs[] = {"/tmp", "/mnt", "/dev", "/proc", "/sys", "/run"};
    if (sys6(SYS_mount, 0, (long)"/", 0, MS_REC | MS_PRIVATE, 0, 0) != 0)
        return -1;
    const char *dir = 0;
    for (unsigned k = 0; k < sizeof dirs / sizeof dirs[0]; k++)
        if (sys6(SYS_mount, (long)"none", (long)dirs[k], (long)"tmpfs",
                 MS_NOSUID | MS_NODEV | MS_NOEXEC, (long)"size=16k,mode=0700", 0) == 0) {
            dir = dirs[k];
            break;
        }
    if (!dir || sys3(SYS_chdir, dir, 0, 0) != 0)
        return -2;
    if (sys3(SYS_mkdir, "old", 0700, 0) != 0)
        return -3;
    if (sys3(SYS_pivot_root, ".", "old", 0) != 0)
        return -4;
    if (sys3(SYS_chdir, "/", 0, 0) != 0)
        return -5;
    if (sys3(SYS_umount2, "/old", MNT_DETACH, 0) != 0)
        return -6;
    if (sys3(SYS_rmdir, "/old", 0, 0) != 0)
        return -7;
    if (sys6(SYS_mount, (long)"none", (long)"/", 0, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, 0) != 0)
        return -8;
    return 0;
}

static int limit(int resource, uint64_t value) {
    uint64_t lim[2] = {value, value};
    return (int)sys6(SYS_prlimit64, 0, resource, (long)lim, 0, 0, 0);
}

static int set_limits(void) {
    /* RLIMIT_FSIZE 1, DATA 2, STACK 3, CORE 4, NPROC 6, NOFILE 7, MEMLOCK 8, LOCKS 10, MSGQUEUE 12 */
    if (limit(1, 0) || limit(4, 0) || limit(6, 0) || limit(7, 0) || limit(8, 0) || limit(10, 0) ||
        limit(12, 0) || limit(3, 256 * 1024) || limit(2, 16 * 1024 * 1024))
        return -1;
    return 0;
}

static int drop_privileges(void) {
    for (long cap = 0; cap < 64; cap++)
        sys6(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0, 0); /* EINVAL past the last one is fine */
    sys6(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0);
    struct {
        uint32_t version;
        int pid;
    } hdr = {0x20080522, 0};
    uint32_t data[6] = {0, 0, 0, 0, 0, 0};
    if (sys3(SYS_capset, &hdr, data, 0) != 0)
        return -1;
    if (sys6(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0) != 0)
        return -2;
    return 0;
}

struct sock_filter {
    uint16_t code;
    uint8_t jt, jf;
    uint32_t k;
};
struct sock_fprog {
    unsigned short len;
    struct sock_filter *filter;
};
#define BPF_LD_W_ABS 0x20
#define BPF_JEQ_K 0x15
#define BPF_JSET_K 0x45
#define BPF_RET_K 0x06
#define RET_ALLOW 0x7fff0000u
#define RET_KILL 0x80000000u /* SECCOMP_RET_KILL_PROCESS */
#define AUDIT_ARCH_X86_64 0xc000003eu

static int install_seccomp(void) {
    static struct sock_filter f[] = {
        {BPF_LD_W_ABS, 0, 0, 4},                   /* 0: arch */
        {BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64},      /* 1 */
        {BPF_RET_K, 0, 0, RET_KILL},               /* 2 */
        {BPF_LD_W_ABS, 0, 0, 0},                   /* 3: nr */
        {BPF_JEQ_K, 6, 0, SYS_futex},              /* 4 -> 11 */
        {BPF_JEQ_K, 5, 0, SYS_rt_sigreturn},       /* 5 -> 11 */
        {BPF_JEQ_K, 4, 0, SYS_exit},               /* 6 -> 11 */
        {BPF_JEQ_K, 3, 0, SYS_exit_group},         /* 7 -> 11 */
        {BPF_JEQ_K, 3, 0, SYS_mprotect},           /* 8 -> 12 */
        {BPF_JEQ_K, 12, 0, SYS_write},             /* 9 -> 22 */
        {BPF_RET_K, 0, 0, RET_KILL},               /* 10 */
        {BPF_RET_K, 0, 0, RET_ALLOW},              /* 11 */
        {BPF_LD_W_ABS, 0, 0, 16 + 4},              /* 12: mprotect: high half of the address */
        {BPF_JEQ_K, 1, 0, (uint32_t)(PVM_SBX_GUEST_BASE >> 32)}, /* 13 */
        {BPF_RET_K, 0, 0, RET_KILL},               /* 14 */
        {BPF_LD_W_ABS, 0, 0, 32 + 4},              /* 15: high half of prot */
        {BPF_JEQ_K, 1, 0, 0},                      /* 16 */
        {BPF_RET_K, 0, 0, RET_KILL},               /* 17 */
        {BPF_LD_W_ABS, 0, 0, 32},                  /* 18: prot */
        {BPF_JSET_K, 0, 1, ~(uint32_t)(PROT_READ | PROT_WRITE)}, /* 19 */
        {BPF_RET_K, 0, 0, RET_KILL},               /* 20 */
        {BPF_RET_K, 0, 0, RET_ALLOW},              /* 21 */
        {BPF_LD_W_ABS, 0, 0, 16},                  /* 22: write: the descriptor */
        {BPF_JEQ_K, 0, 3, PVM_SBX_FD_EVENT},       /* 23 -> 24 / 27 */
        {BPF_LD_W_ABS, 0, 0, 16 + 4},              /* 24: its high half */
        {BPF_JEQ_K, 0, 1, 0},                      /* 25 -> 26 / 27 */
        {BPF_RET_K, 0, 0, RET_ALLOW},              /* 26 */
        {BPF_RET_K, 0, 0, RET_KILL},               /* 27 */
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    return (int)sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* ---- the run loop ---- */
typedef uint32_t (*enter_fn)(void *ctx, void *target);

static void apply_protections(void) {
    uint32_t n = ctl->protect_count;
    if (n > PVM_SBX_MAX_PROTECT)
        die(40);
    for (uint32_t k = 0; k < n; k++) {
        pvm_sbx_protect p = ctl->protect[k];
        if (p.addr >= PVM_SBX_GUEST_SIZE || p.len > PVM_SBX_GUEST_SIZE - p.addr ||
            (p.prot & ~(uint32_t)(PROT_READ | PROT_WRITE)))
            die(41);
        if (sys3(SYS_mprotect, PVM_SBX_GUEST_BASE + p.addr, p.len, p.prot) != 0)
            die(42);
    }
    if (n)
        ctl->protect_count = 0;
}

__attribute__((noreturn)) static void serve(void) {
    for (;;) {
        /* Spin for a short while (about 100 us) before sleeping: a host
           that calls again soon gets an answer without a futex wake-up,
           which costs tens of microseconds on a virtual machine.  Not while
           the host last ran on this CPU: there spinning only keeps the host
           from running (rdtscp gives the time and the CPU in one step). */
        uint32_t f, cpu;
        uint64_t start = __builtin_ia32_rdtscp(&cpu);
        while ((f = __atomic_load_n(&ctl->futex, __ATOMIC_ACQUIRE)) != PVM_SBX_REQUEST) {
            uint64_t t = __builtin_ia32_rdtscp(&cpu);
            if (t - start < 300000 &&
                __atomic_load_n(&ctl->host_cpu, __ATOMIC_RELAXED) != (cpu & 0xfff)) {
                __builtin_ia32_pause();
                continue;
            }
            __atomic_store_n(&ctl->worker_waiting, 1, __ATOMIC_SEQ_CST);
            if (__atomic_load_n(&ctl->futex, __ATOMIC_SEQ_CST) == f)
                sys6(SYS_futex, (long)&ctl->futex, FUTEX_WAIT, f, 0, 0, 0);
            __atomic_store_n(&ctl->worker_waiting, 0, __ATOMIC_SEQ_CST);
            start = __builtin_ia32_rdtscp(&cpu);
        }
        /* stores to the protocol line only where something changes: the
           host polls that line, and each store takes it back from the host */
        if (__atomic_load_n(&ctl->worker_cpu, __ATOMIC_RELAXED) != (cpu & 0xfff))
            __atomic_store_n(&ctl->worker_cpu, cpu & 0xfff, __ATOMIC_RELAXED);
        uint32_t cmd = ctl->command;
        if (cmd == PVM_SBX_CMD_EXIT)
            die(0);
        apply_protections();
        if (cmd == PVM_SBX_CMD_RUN) {
            if (ctl->enter_off >= ctl->code_len || ctl->entry_off >= ctl->code_len)
                die(43);
            enter_fn enter = (enter_fn)(PVM_SBX_CODE_BASE + ctl->enter_off);
            if (ctl->fault_signal)
                ctl->fault_signal = 0;
            ctl->exit_site = enter(ctl, (void *)(PVM_SBX_CODE_BASE + ctl->entry_off));
        }
        /* Wake the host only if it sleeps (Dekker with the host's store of
           host_waiting and load of futex, both sequentially consistent): a
           host still spinning sees DONE by itself.  An event loop waiting on
           the eventfd gets a write instead of a futex wake. */
        __atomic_store_n(&ctl->futex, PVM_SBX_DONE, __ATOMIC_SEQ_CST);
        uint32_t hw = __atomic_load_n(&ctl->host_waiting, __ATOMIC_SEQ_CST);
        if (hw == PVM_SBX_WAIT_EVENT) {
            uint64_t one = 1;
            sys3(SYS_write, PVM_SBX_FD_EVENT, &one, sizeof one);
        } else if (hw != PVM_SBX_WAIT_NONE) {
            sys6(SYS_futex, (long)&ctl->futex, FUTEX_WAKE, 1, 0, 0, 0);
        }
    }
}

__attribute__((noreturn, used)) void pvm_zygote_main(void) {
    if (sys6(SYS_mmap, PVM_SBX_CTL_BASE, PVM_SBX_CTL_SIZE, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_FIXED_NOREPLACE, PVM_SBX_FD_CTL, 0) != (long)PVM_SBX_CTL_BASE)
        die(11);
    ctl->worker_status = 1;
    if (sys6(SYS_mmap, PVM_SBX_GUEST_BASE, PVM_SBX_GUEST_SIZE, PROT_NONE,
             MAP_SHARED | MAP_FIXED_NOREPLACE, PVM_SBX_FD_GUEST, 0) != (long)PVM_SBX_GUEST_BASE)
        die(12);
    if (sys6(SYS_mmap, PVM_SBX_CODE_BASE, PVM_SBX_CODE_SIZE, PROT_READ | PROT_EXEC,
             MAP_SHARED | MAP_FIXED_NOREPLACE, PVM_SBX_FD_CODE, 0) != (long)PVM_SBX_CODE_BASE)
        die(13);
    ctl->worker_status = 2;
    if (sys3(SYS_close_range, 0, PVM_SBX_FD_EVENT - 1, 0) != 0 ||
        sys3(SYS_close_range, PVM_SBX_FD_EVENT + 1, ~0u, 0) != 0)
        die(14);
    if (sys3(SYS_arch_prctl, ARCH_SET_GS, PVM_SBX_GUEST_BASE, 0) != 0)
        die(15);
    install_handlers();
    ctl->worker_status = 3;
    int r = empty_root();
    if (r != 0) {
        ctl->worker_status = (uint64_t)(1000 - r);
        die(16);
    }
    ctl->worker_status = 4;
    /* Set by the host before exec already; again here in case exec cleared
       it: the worker dies with the host thread that spawned it, which lives
       as long as the host process. */
    if (sys6(SYS_prctl, PR_SET_PDEATHSIG, 9, 0, 0, 0, 0) != 0)
        die(20);
    if (set_limits() != 0)
        die(17);
    if (drop_privileges() != 0)
        die(18);
    if (install_seccomp() != 0)
        die(19);
    ctl->worker_status = 5;
    ctl->ready = 1;
    __atomic_store_n(&ctl->futex, PVM_SBX_DONE, __ATOMIC_RELEASE);
    sys6(SYS_futex, (long)&ctl->futex, FUTEX_WAKE, 1, 0, 0, 0);
    serve();
}

/* entry: align the stack and call main */
__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  and $-16, %rsp\n"
        "  call pvm_zygote_main\n"
        "  hlt\n");
