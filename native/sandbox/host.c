/*
 * host.c -- the host side of the Linux sandbox: starting workers from the
 * embedded zygote (a memfd, never a file on disk), the shared control page
 * and its futex protocol, loading JIT code into a worker, keeping the
 * worker's view of guest memory protections in step with the host's, and
 * running generated code there.
 */
#define _GNU_SOURCE
#include "../jit/jit.h"
#include "protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NONE PVM_NONE_U32

extern const unsigned char pvm_zygote_elf[];
extern const size_t pvm_zygote_elf_len;

struct pvm_worker {
    pid_t pid;
    int ctl_fd, guest_fd, code_fd;
    pvm_sbx_ctl *ctl;
    uint8_t *code;                /* host view of the code file (writable here only) */
    uint64_t loaded;              /* id of the code currently in the worker, 0 if none */
    int dead;
    int exit_status;              /* wait status once dead */
    int busy;                     /* bound to an instance */
    int refs;                     /* the owner (pvm_worker_free) + a bound instance */
    char error[160];
};

_Static_assert(offsetof(pvm_sbx_ctl, regs) == PVM_VMCTX_REGS, "vmctx layout");
_Static_assert(offsetof(pvm_sbx_ctl, gas) == PVM_VMCTX_GAS, "vmctx layout");
_Static_assert(sizeof(pvm_sbx_ctl) <= PVM_SBX_CTL_SIZE, "control page size");

static pthread_mutex_t zygote_lock = PTHREAD_MUTEX_INITIALIZER;
static int zygote_fd = -1;

static int zygote_memfd(void) {
    pthread_mutex_lock(&zygote_lock);
    if (zygote_fd < 0) {
        int fd = (int)syscall(SYS_memfd_create, "pvm-zygote", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd >= 0) {
            size_t done = 0;
            while (done < pvm_zygote_elf_len) {
                ssize_t n = write(fd, pvm_zygote_elf + done, pvm_zygote_elf_len - done);
                if (n <= 0)
                    break;
                done += (size_t)n;
            }
            if (done == pvm_zygote_elf_len &&
                fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0)
                zygote_fd = fd;
            else
                close(fd);
        }
    }
    pthread_mutex_unlock(&zygote_lock);
    return zygote_fd;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int reap(pvm_worker *w, int block) {
    if (w->dead)
        return 1;
    int status = 0;
    pid_t r = waitpid(w->pid, &status, block ? 0 : WNOHANG);
    if (r == w->pid) {
        w->dead = 1;
        w->exit_status = status;
        return 1;
    }
    return 0;
}

static void describe_death(pvm_worker *w, char *out, size_t len) {
    int st = w->exit_status;
    if (WIFSIGNALED(st))
        snprintf(out, len, "sandbox worker %d was killed by signal %d%s", (int)w->pid, WTERMSIG(st),
                 WTERMSIG(st) == SIGSYS ? " (a forbidden system call)" : "");
    else
        snprintf(out, len, "sandbox worker %d exited with status %d (init step %llu)", (int)w->pid,
                 WEXITSTATUS(st), (unsigned long long)w->ctl->worker_status);
}

/* Waits until the worker hands the page back (futex == DONE).  Returns 0,
   -1 if the worker died, -2 on the deadline (the worker is then killed). */
static int wait_done(pvm_worker *w, uint64_t deadline_ns) {
    uint64_t start = deadline_ns ? now_ns() : 0;
    for (unsigned spin = 0; spin < 4000; spin++) {
        if (__atomic_load_n(&w->ctl->futex, __ATOMIC_ACQUIRE) == PVM_SBX_DONE)
            return 0;
        __builtin_ia32_pause();
    }
    for (;;) {
        uint32_t f = __atomic_load_n(&w->ctl->futex, __ATOMIC_ACQUIRE);
        if (f == PVM_SBX_DONE)
            return 0;
        struct timespec ts = {0, 20 * 1000 * 1000};
        __atomic_store_n(&w->ctl->host_waiting, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&w->ctl->futex, __ATOMIC_SEQ_CST) == f)
            syscall(SYS_futex, &w->ctl->futex, FUTEX_WAIT, f, &ts, NULL, 0);
        __atomic_store_n(&w->ctl->host_waiting, 0, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&w->ctl->futex, __ATOMIC_ACQUIRE) == PVM_SBX_DONE)
            return 0;
        if (reap(w, 0))
            return -1;
        if (deadline_ns && now_ns() - start > deadline_ns) {
            kill(w->pid, SIGKILL);
            reap(w, 1);
            return -2;
        }
    }
}

static int request(pvm_worker *w, uint32_t command, uint64_t deadline_ns) {
    w->ctl->command = command;
    __atomic_store_n(&w->ctl->futex, PVM_SBX_REQUEST, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &w->ctl->futex, FUTEX_WAKE, 1, NULL, NULL, 0);
    int r = wait_done(w, deadline_ns);
    if (r == 0)
        w->ctl->futex = PVM_SBX_IDLE;
    return r;
}

static void worker_destroy(pvm_worker *w);

/* Drops the owner's reference.  An instance still bound to the worker keeps
   the structure alive until it unbinds (Python may collect the two in either
   order), so nothing here can be used after it is freed. */
void pvm_worker_free(pvm_worker *w) {
    if (!w)
        return;
    if (--w->refs > 0)
        return;
    worker_destroy(w);
}

static void worker_destroy(pvm_worker *w) {
    if (!w->dead) {
        kill(w->pid, SIGKILL);
        reap(w, 1);
    }
    if (w->ctl)
        munmap(w->ctl, PVM_SBX_CTL_SIZE);
    if (w->code)
        munmap(w->code, PVM_SBX_CODE_SIZE);
    if (w->ctl_fd >= 0)
        close(w->ctl_fd);
    if (w->guest_fd >= 0)
        close(w->guest_fd);
    if (w->code_fd >= 0)
        close(w->code_fd);
    free(w);
}

static int shared_file(const char *name, uint64_t size) {
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

pvm_worker *pvm_worker_spawn(char *err, size_t err_len) {
    int zfd = zygote_memfd();
    if (zfd < 0) {
        pvm_set_err(err, err_len, "cannot create the zygote memfd (errno %d)", errno);
        return NULL;
    }
    pvm_worker *w = calloc(1, sizeof *w);
    if (!w) {
        pvm_set_err(err, err_len, "out of memory");
        return NULL;
    }
    w->refs = 1;
    w->ctl_fd = shared_file("pvm-control", PVM_SBX_CTL_SIZE);
    w->guest_fd = shared_file("pvm-guest-memory", PVM_SBX_GUEST_SIZE);
    w->code_fd = shared_file("pvm-code", PVM_SBX_CODE_SIZE);
    if (w->ctl_fd < 0 || w->guest_fd < 0 || w->code_fd < 0) {
        pvm_set_err(err, err_len, "cannot create shared memory for a worker (errno %d)", errno);
        goto fail;
    }
    w->ctl = mmap(NULL, PVM_SBX_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, w->ctl_fd, 0);
    w->code = mmap(NULL, PVM_SBX_CODE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, w->code_fd, 0);
    if (w->ctl == MAP_FAILED || w->code == MAP_FAILED) {
        if (w->ctl == MAP_FAILED)
            w->ctl = NULL;
        if (w->code == MAP_FAILED)
            w->code = NULL;
        pvm_set_err(err, err_len, "cannot map worker shared memory (errno %d)", errno);
        goto fail;
    }
    w->ctl->futex = PVM_SBX_IDLE;
    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0) {
        pvm_set_err(err, err_len, "pipe failed (errno %d)", errno);
        goto fail;
    }
    uid_t uid = getuid();
    gid_t gid = getgid();
    long flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
                 CLONE_NEWUTS | CLONE_NEWCGROUP | SIGCHLD;
    pid_t pid = (pid_t)syscall(SYS_clone, flags, 0, 0, 0, 0);
    if (pid == 0) {
        /* child: only async-signal-safe calls from here to exec */
        int a = fcntl(w->ctl_fd, F_DUPFD, 10), b = fcntl(w->guest_fd, F_DUPFD, 10);
        int c = fcntl(w->code_fd, F_DUPFD, 10), d = fcntl(go[0], F_DUPFD, 10);
        int z = fcntl(zfd, F_DUPFD, 10);
        if (a < 0 || b < 0 || c < 0 || d < 0 || z < 0 || dup2(a, PVM_SBX_FD_CTL) < 0 ||
            dup2(b, PVM_SBX_FD_GUEST) < 0 || dup2(c, PVM_SBX_FD_CODE) < 0 || dup2(d, PVM_SBX_FD_GO) < 0 ||
            dup2(z, 7) < 0)
            _exit(120);
        syscall(SYS_close_range, 8, ~0u, 0);
        char g = 0;
        if (read(PVM_SBX_FD_GO, &g, 1) != 1 || g != 'g')
            _exit(121);
        close(PVM_SBX_FD_GO);
        char *const argv[] = {(char *)"pvm-worker", NULL};
        char *const envp[] = {NULL};
        syscall(SYS_execveat, 7, "", argv, envp, AT_EMPTY_PATH);
        _exit(122);
    }
    close(go[0]);
    if (pid < 0) {
        close(go[1]);
        pvm_set_err(err, err_len, "cannot create the worker's namespaces (clone: %s)", strerror(errno));
        goto fail;
    }
    w->pid = pid;
    char path[64], map[64];
    snprintf(path, sizeof path, "/proc/%d/setgroups", (int)pid);
    write_file(path, "deny");
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
    snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
    int mapped = write_file(path, map);
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
    mapped |= write_file(path, map);
    if (mapped != 0) {
        close(go[1]);
        pvm_set_err(err, err_len, "cannot write the worker's id maps (errno %d)", errno);
        goto fail;
    }
    if (write(go[1], "g", 1) != 1) {
        close(go[1]);
        pvm_set_err(err, err_len, "cannot start the worker");
        goto fail;
    }
    close(go[1]);
    int r = wait_done(w, 5ull * 1000 * 1000 * 1000);
    if (r != 0 || !w->ctl->ready) {
        if (r == -1)
            describe_death(w, err, err_len);
        else
            pvm_set_err(err, err_len, "the sandbox worker did not start (init step %llu)",
                        (unsigned long long)w->ctl->worker_status);
        goto fail;
    }
    w->ctl->futex = PVM_SBX_IDLE;
    return w;
fail:
    pvm_worker_free(w);
    return NULL;
}

int pvm_worker_pid(const pvm_worker *w) { return w ? (int)w->pid : -1; }
int pvm_worker_alive(pvm_worker *w) { return w && !reap(w, 0); }
int pvm_worker_kill(pvm_worker *w) {
    if (!w || w->dead)
        return -1;
    return kill(w->pid, SIGKILL);
}

/* ---- binding instances to workers ---- */

static int flush_protections(pvm_worker *w) {
    if (w->ctl->protect_count == 0)
        return 0;
    return request(w, PVM_SBX_CMD_PROTECT, 5ull * 1000 * 1000 * 1000);
}

/* pvm_memory's hook: queue a protection change for the worker */
static int protect_hook(void *ctx, uint64_t addr, uint64_t len, int prot) {
    pvm_worker *w = ctx;
    if (w->dead)
        return -1;
    pvm_sbx_ctl *c = w->ctl;
    if (c->protect_count == PVM_SBX_MAX_PROTECT && flush_protections(w) != 0)
        return -1;
    pvm_sbx_protect *p = &c->protect[c->protect_count++];
    p->addr = addr;
    p->len = len;
    p->prot = (uint32_t)prot;
    p->pad = 0;
    return 0;
}

int pvm_sandbox_bind(pvm_instance *vm, pvm_worker *w, const pvm_instance_config *cfg,
                     const uint8_t *ro, uint32_t ro_len, const uint8_t *rw, uint32_t rw_len,
                     char *err, size_t err_len) {
    if (w->dead || w->busy) {
        pvm_set_err(err, err_len, w->dead ? "the sandbox worker is dead" : "the sandbox worker is in use");
        return -1;
    }
    const pvm_jit_code *c = vm->jit;
    if (c->code_len > PVM_SBX_CODE_SIZE) {
        pvm_set_err(err, err_len, "the compiled program is too large for a worker (%zu bytes)", c->code_len);
        return -1;
    }
    if (w->loaded != c->id) {
        memcpy(w->code, c->code, c->code_len);
        w->loaded = c->id;
    }
    w->ctl->code_len = (uint32_t)c->code_len;
    w->ctl->enter_off = c->enter_off;
    w->ctl->exit_off = c->exit_off;
    w->ctl->protect_count = 0;
    /* the previous tenant's memory: all of it dropped and protected again */
    if (fallocate(w->guest_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)PVM_SBX_GUEST_SIZE) != 0) {
        pvm_set_err(err, err_len, "cannot reset worker memory (errno %d)", errno);
        return -1;
    }
    if (protect_hook(w, 0, PVM_SBX_GUEST_SIZE - 0x10000ull, 0) != 0 ||
        pvm_memory_init_shared(&vm->mem, cfg, ro, ro_len, rw, rw_len, w->guest_fd, protect_hook, w,
                               err, err_len) != 0)
        return -1;
    if (flush_protections(w) != 0) {
        pvm_set_err(err, err_len, "the sandbox worker did not accept the memory layout");
        pvm_memory_destroy(&vm->mem);
        return -1;
    }
    memset(w->ctl->regs, 0, sizeof w->ctl->regs);
    w->busy = 1;
    w->refs++;
    vm->worker = w;
    return 0;
}

void pvm_sandbox_unbind(pvm_instance *vm) {
    pvm_worker *w = vm->worker;
    if (!w)
        return;
    if (!w->dead) {
        /* nothing of this instance may be visible to the next one */
        fallocate(w->guest_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)PVM_SBX_GUEST_SIZE);
        memset(w->ctl->regs, 0, sizeof w->ctl->regs);
        w->ctl->gas = 0;
    }
    w->busy = 0;
    vm->worker = NULL;
    if (--w->refs == 0)
        worker_destroy(w);
}

int pvm_sandbox_run(pvm_instance *vm, uint32_t native_off) {
    pvm_worker *w = vm->worker;
    pvm_sbx_ctl *ctl = w->ctl;
    if (w->dead || reap(w, 0)) {
        describe_death(w, vm->error, sizeof vm->error);
        return PVM_INT_ERROR;
    }
    for (;;) {
        memcpy(ctl->regs, vm->regs, sizeof vm->regs);
        ctl->gas = vm->gas;
        ctl->entry_off = native_off;
        vm->jit_fault_kind = 0;
        vm->jit_resume = NONE;
        int r = request(w, PVM_SBX_CMD_RUN, vm->deadline_ns);
        if (r != 0) {
            if (r == -2)
                snprintf(vm->error, sizeof vm->error, "deadline exceeded: the sandbox worker was killed");
            else
                describe_death(w, vm->error, sizeof vm->error);
            vm->next_pc = NONE;
            return PVM_INT_ERROR;
        }
        memcpy(vm->regs, ctl->regs, sizeof vm->regs);
        vm->gas = ctl->gas;
        uint32_t site = ctl->exit_site;
        if (site == JIT_FAULT_SITE &&
            pvm_jit_classify_fault(vm, (uint32_t)ctl->fault_rip_off, vm->regs) != 0) {
            snprintf(vm->error, sizeof vm->error, "sandbox worker: unexpected fault (signal %u) at code offset %llu",
                     ctl->fault_signal, (unsigned long long)ctl->fault_rip_off);
            return PVM_INT_ERROR;
        }
        int k = pvm_jit_exit(vm, site, &native_off);
        if (k >= 0)
            return k;
    }
}

#ifdef PVM_SANDBOX_TESTING
/* Test-only (never in the default build): run raw machine code inside a
   worker, entered like generated code (rdi = control page).  Returns the
   worker's exit site, or -1 if the worker died (its status in *status). */
int pvm_worker_test_run_raw(pvm_worker *w, const uint8_t *code, size_t len, uint32_t exit_off,
                            int *status) {
    if (w->dead || len + 16 > PVM_SBX_CODE_SIZE || exit_off >= len)
        return -1;
    memcpy(w->code, code, len);
    w->loaded = 0;
    w->ctl->code_len = (uint32_t)len;
    w->ctl->enter_off = 0;
    w->ctl->entry_off = 0;
    w->ctl->exit_off = exit_off;
    int r = request(w, PVM_SBX_CMD_RUN, 5ull * 1000 * 1000 * 1000);
    if (r != 0) {
        reap(w, 1);
        *status = w->exit_status;
        return -1;
    }
    *status = 0;
    return (int)w->ctl->exit_site;
}
#endif
