/*
 * host.c -- the host side of the Linux sandbox: starting workers from the
 * embedded zygote (a memfd, never a file on disk), the shared control page
 * and its futex protocol, loading JIT code into a worker, keeping the
 * worker's view of guest memory protections in step with the host's, and
 * running generated code there.
 *
 * Trust: the control page is shared memory the worker can write at any
 * time, so nothing the host needs to stay correct lives there.  The host
 * keeps its own copy of every field it sets (protection queue, code
 * offsets), writes them to the page just before a request, and reads back
 * only the results (registers, gas, exit site, fault offset), once each, into
 * locals that are range-checked before use.  A value out of range is a
 * protocol violation: the worker is killed and the call fails.
 *
 * Lifetime: workers are cloned by one long-lived spawner thread with
 * PR_SET_PDEATHSIG = SIGKILL, so they die when the host process dies however
 * it dies (the death signal follows the thread that forked, and that thread
 * lives as long as the process).  Every wait on a worker is bounded: besides
 * an optional wall-clock deadline, a worker that uses no CPU for the stall
 * timeout while the host waits on it (stopped, blocked, lost wake-up) is
 * killed.
 */
#define _GNU_SOURCE
#include "sandbox.h"
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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/prctl.h>
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
    clockid_t cpu_clock;          /* the worker's CPU-time clock (stall detection) */
    uint32_t protect_count;       /* host-private: queued protection records */
    uint64_t last_addr, last_len; /* host-private: the range of the last queued record */
    /* the last tenant's guest memory, kept mapped on this side with its initial
       image restored (pvm_memory_reset) after that tenant left: the next
       instance with the same memory layout and initial data takes it as it is
       (no mapping, no layout, no protection round trip) */
    pvm_memory parked;
    int has_parked;
    int ran;                      /* guest code ran since the instance was bound */
    uint32_t code_len, enter_off, exit_off; /* host-private copies of what RUN needs */
    /* the event loop's side (pvm_sandbox_set_async): the worker writes event_fd
       when it hands the page back while host_waiting == PVM_SBX_WAIT_EVENT;
       wait_fd (an epoll set of event_fd and a pidfd of the worker) becomes
       readable when that happens or when the worker dies */
    int event_fd, pid_fd, wait_fd;
    int async;                    /* runs return PVM_INT_PENDING instead of sleeping */
    int inflight;                 /* a RUN was posted and its result not collected */
    uint32_t spin_ns;             /* async: spin this long before PVM_INT_PENDING */
    uint32_t native_off;          /* async: where the in-flight RUN entered */
    int64_t gas_in;               /* async: the gas the in-flight RUN was given */
    uint64_t wait_start, progress_at, wait_cpu; /* async: bounds of the current wait */
    char error[160];
#ifdef PVM_SANDBOX_TESTING
    uint8_t tamper[64];           /* pvm_worker_test_tamper */
    uint32_t tamper_off, tamper_len;
#endif
};

_Static_assert(offsetof(pvm_sbx_ctl, regs) == PVM_VMCTX_REGS, "vmctx layout");
_Static_assert(offsetof(pvm_sbx_ctl, gas) == PVM_VMCTX_GAS, "vmctx layout");
_Static_assert(sizeof(pvm_sbx_ctl) <= PVM_SBX_CTL_SIZE, "control page size");
_Static_assert(offsetof(pvm_sbx_ctl, futex) == 2 * PVM_SBX_LINE &&
               offsetof(pvm_sbx_ctl, ready) + sizeof(uint32_t) == 3 * PVM_SBX_LINE,
               "the protocol fields fill one cache line");

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

static uint64_t cpu_ns(const pvm_worker *w) {
    struct timespec ts;
    if (clock_gettime(w->cpu_clock, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* True when the worker is running or waiting for a CPU (state R in
   /proc/PID/stat).  A worker starved of CPU by a loaded machine uses no CPU
   time yet is not stalled; only one that is stopped or asleep while the host
   waits on it is.  Read only when the stall timeout is about to fire. */
static int runnable(const pvm_worker *w) {
    char path[48], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)w->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the name may hold spaces and ')' */
    return p && p[1] == ' ' && p[2] == 'R';
}

/* Stall watchdog step: records progress (CPU time used, or runnable) and
   returns 1 when the worker made none for `stall_ns` (0 = never). */
static int stalled(const pvm_worker *w, uint64_t now, uint64_t stall_ns, uint64_t *cpu,
                   uint64_t *progress_at) {
    uint64_t c = cpu_ns(w);
    if (c != *cpu) {
        *cpu = c;
        *progress_at = now;
    }
    if (!stall_ns || now - *progress_at <= stall_ns)
        return 0;
    if (runnable(w)) {
        *progress_at = now;
        return 0;
    }
    return 1;
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

static void kill_worker(pvm_worker *w) {
    if (!w->dead) {
        kill(w->pid, SIGKILL);
        reap(w, 1);
    }
}

static void describe_death(pvm_worker *w, char *out, size_t len) {
    int st = w->exit_status;
    if (WIFSIGNALED(st))
        snprintf(out, len, "sandbox worker %d was killed by signal %d%s", (int)w->pid, WTERMSIG(st),
                 WTERMSIG(st) == SIGSYS ? " (a forbidden system call)" : "");
    else
        snprintf(out, len, "sandbox worker %d exited with status %d (init step %llu)", (int)w->pid,
                 WEXITSTATUS(st), (unsigned long long)__atomic_load_n(&w->ctl->worker_status, __ATOMIC_RELAXED));
}

enum { WAIT_OK = 0, WAIT_DIED = -1, WAIT_DEADLINE = -2, WAIT_STALLED = -3 };

/* The CPU this thread runs on (rdtscp's TSC_AUX, which Linux sets to it). */
static uint32_t this_cpu(void) {
    unsigned aux;
    (void)__builtin_ia32_rdtscp(&aux);
    return aux & 0xfff;
}

/* Whether the worker last ran on the CPU this thread runs on: then a spin
   for it only keeps it from running.  worker_cpu is the worker's word, a
   hint: a wrong value only ends the spin early or lets it run its bound. */
static int sharing_cpu(const pvm_worker *w) {
    return __atomic_load_n(&w->ctl->worker_cpu, __ATOMIC_RELAXED) == this_cpu();
}

/* Waits until the worker hands the page back (futex == DONE).  Bounded two
   ways: `deadline_ns` of wall-clock time (0 = none), and `stall_ns` without
   the worker using any CPU (0 = none).  Past either the worker is killed. */
static int wait_done(pvm_worker *w, uint64_t deadline_ns, uint64_t stall_ns) {
    for (unsigned spin = 0; spin < 4000; spin++) {
        if (__atomic_load_n(&w->ctl->futex, __ATOMIC_ACQUIRE) == PVM_SBX_DONE)
            return WAIT_OK;
        if ((spin & 15) == 0 && sharing_cpu(w))
            break;   /* the worker needs this CPU: sleep at once */
        __builtin_ia32_pause();
    }
    uint64_t start = now_ns(), progress_at = start, cpu = cpu_ns(w);
    for (;;) {
        uint32_t f = __atomic_load_n(&w->ctl->futex, __ATOMIC_ACQUIRE);
        if (f == PVM_SBX_DONE)
            return WAIT_OK;
        /* a dead worker is found here, before sleeping (not before every
           request: that would cost a system call per call) */
        if (reap(w, 0))
            return WAIT_DIED;
        struct timespec ts = {0, 20 * 1000 * 1000};
        __atomic_store_n(&w->ctl->host_waiting, PVM_SBX_WAIT_FUTEX, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&w->ctl->futex, __ATOMIC_SEQ_CST) == f)
            syscall(SYS_futex, &w->ctl->futex, FUTEX_WAIT, f, &ts, NULL, 0);
        __atomic_store_n(&w->ctl->host_waiting, PVM_SBX_WAIT_NONE, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&w->ctl->futex, __ATOMIC_ACQUIRE) == PVM_SBX_DONE)
            return WAIT_OK;
        uint64_t now = now_ns();
        if (deadline_ns && now - start > deadline_ns) {
            kill_worker(w);
            return WAIT_DEADLINE;
        }
        if (stalled(w, now, stall_ns, &cpu, &progress_at)) {
            kill_worker(w);
            return WAIT_STALLED;
        }
    }
}

/* Hands the page to the worker.  The worker spins for a while after each
   request before it sleeps; it is woken only when it sleeps (Dekker with its
   store of worker_waiting and load of futex, both sequentially consistent).
   A worker that lies about sleeping only stalls itself (and the stall
   watchdog kills it). */
static void post(pvm_worker *w, uint32_t command) {
    w->ctl->command = command;
    __atomic_store_n(&w->ctl->host_cpu, this_cpu(), __ATOMIC_RELAXED);
    __atomic_store_n(&w->ctl->futex, PVM_SBX_REQUEST, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&w->ctl->worker_waiting, __ATOMIC_SEQ_CST))
        syscall(SYS_futex, &w->ctl->futex, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* The page is back (futex == DONE): take it. */
static void collected(pvm_worker *w) {
#ifdef PVM_SANDBOX_TESTING
    if (w->tamper_len)
        memcpy((uint8_t *)w->ctl + w->tamper_off, w->tamper, w->tamper_len);
#endif
    __atomic_store_n(&w->ctl->futex, PVM_SBX_IDLE, __ATOMIC_RELEASE);
}

static int request(pvm_worker *w, uint32_t command, uint64_t deadline_ns, uint64_t stall_ns) {
    post(w, command);
    int r = wait_done(w, deadline_ns, stall_ns);
    if (r == WAIT_OK)
        collected(w);
    return r;
}

static void describe_wait(pvm_worker *w, int r, char *out, size_t len, const char *what) {
    if (r == WAIT_DEADLINE)
        snprintf(out, len, "deadline exceeded: the sandbox worker was killed (%s)", what);
    else if (r == WAIT_STALLED)
        snprintf(out, len, "sandbox worker %d stopped answering (no progress for the stall timeout "
                 "while %s): it was killed", (int)w->pid, what);
    else
        describe_death(w, out, len);
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

static void drop_parked(pvm_worker *w) {
    if (w->has_parked)
        pvm_memory_destroy(&w->parked);
    w->has_parked = 0;
}

static void worker_destroy(pvm_worker *w) {
    if (w->pid > 0)
        kill_worker(w);
    drop_parked(w);
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
    if (w->event_fd >= 0)
        close(w->event_fd);
    if (w->pid_fd >= 0)
        close(w->pid_fd);
    if (w->wait_fd >= 0)
        close(w->wait_fd);
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

/* ---- the spawner thread ----
   PR_SET_PDEATHSIG fires when the *thread* that cloned the worker exits, not
   the process.  Workers are therefore cloned by one thread that lives as long
   as the process (created on first use, all signals blocked), so a worker
   dies with its host however the host dies, and never earlier because the
   Python thread that asked for it finished. */
typedef struct {
    int ctl_fd, guest_fd, code_fd, go_rd, go_wr, zygote_fd, event_fd;
    pid_t pid;
    int err;
    int done;
} spawn_job;

static pthread_mutex_t spawn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spawn_posted = PTHREAD_COND_INITIALIZER;
static pthread_cond_t spawn_finished = PTHREAD_COND_INITIALIZER;
static spawn_job *spawn_pending;
static int spawner_started;
static pthread_once_t spawn_atfork_once = PTHREAD_ONCE_INIT;

/* In a forked child only the forking thread exists: start a new spawner there. */
static void spawn_after_fork(void) {
    pthread_mutex_init(&spawn_lock, NULL);
    pthread_cond_init(&spawn_posted, NULL);
    pthread_cond_init(&spawn_finished, NULL);
    spawn_pending = NULL;
    spawner_started = 0;
}

static void spawn_register_atfork(void) { pthread_atfork(NULL, NULL, spawn_after_fork); }

/* The clone itself; runs on the spawner thread.  The child only makes
   async-signal-safe calls until exec. */
static void spawn_clone(spawn_job *j) {
    long flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
                 CLONE_NEWUTS | CLONE_NEWCGROUP | SIGCHLD;
    pid_t pid = (pid_t)syscall(SYS_clone, flags, 0, 0, 0, 0);
    if (pid == 0) {
        /* dies with this thread, i.e. with the host process */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
            _exit(119);
        /* the spawner blocks every signal; the worker must not inherit that
           (a blocked synchronous SIGSEGV would bypass its fault handler) */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close(j->go_wr); /* so the read below sees EOF if the host is already gone */
        int a = fcntl(j->ctl_fd, F_DUPFD, 10), b = fcntl(j->guest_fd, F_DUPFD, 10);
        int c = fcntl(j->code_fd, F_DUPFD, 10), d = fcntl(j->go_rd, F_DUPFD, 10);
        int z = fcntl(j->zygote_fd, F_DUPFD, 10), e = fcntl(j->event_fd, F_DUPFD, 10);
        if (a < 0 || b < 0 || c < 0 || d < 0 || z < 0 || e < 0 || dup2(a, PVM_SBX_FD_CTL) < 0 ||
            dup2(b, PVM_SBX_FD_GUEST) < 0 || dup2(c, PVM_SBX_FD_CODE) < 0 || dup2(d, PVM_SBX_FD_GO) < 0 ||
            dup2(z, 7) < 0 || dup2(e, PVM_SBX_FD_EVENT) < 0)
            _exit(120);
        syscall(SYS_close_range, PVM_SBX_FD_EVENT + 1, ~0u, 0);
        char g = 0;
        if (read(PVM_SBX_FD_GO, &g, 1) != 1 || g != 'g')
            _exit(121);
        close(PVM_SBX_FD_GO);
        char *const argv[] = {(char *)"pvm-worker", NULL};
        char *const envp[] = {NULL};
        syscall(SYS_execveat, 7, "", argv, envp, AT_EMPTY_PATH);
        _exit(122);
    }
    j->pid = pid;
    j->err = pid < 0 ? errno : 0;
}

static void *spawner_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&spawn_lock);
    for (;;) {
        while (!spawn_pending)
            pthread_cond_wait(&spawn_posted, &spawn_lock);
        spawn_job *j = spawn_pending;
        spawn_clone(j);
        j->done = 1;
        spawn_pending = NULL;
        pthread_cond_broadcast(&spawn_finished);
    }
    return NULL;
}

/* Clones a worker on the spawner thread; returns its pid or -1 (errno-like
   code in *err). */
static pid_t spawn_on_spawner(spawn_job *j, int *err) {
    pthread_once(&spawn_atfork_once, spawn_register_atfork);
    pthread_mutex_lock(&spawn_lock);
    if (!spawner_started) {
        pthread_attr_t attr;
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        pthread_t t;
        int rc = pthread_create(&t, &attr, spawner_main, NULL);
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
            pthread_mutex_unlock(&spawn_lock);
            *err = rc;
            return -1;
        }
        spawner_started = 1;
    }
    while (spawn_pending) /* one clone at a time */
        pthread_cond_wait(&spawn_finished, &spawn_lock);
    j->done = 0;
    spawn_pending = j;
    pthread_cond_signal(&spawn_posted);
    while (!j->done)
        pthread_cond_wait(&spawn_finished, &spawn_lock);
    pthread_mutex_unlock(&spawn_lock);
    *err = j->err;
    return j->pid;
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
    w->pid = -1;
    w->pid_fd = w->wait_fd = -1;
    w->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->ctl_fd = shared_file("pvm-control", PVM_SBX_CTL_SIZE);
    w->guest_fd = shared_file("pvm-guest-memory", PVM_SBX_GUEST_SIZE);
    w->code_fd = shared_file("pvm-code", PVM_SBX_CODE_SIZE);
    if (w->ctl_fd < 0 || w->guest_fd < 0 || w->code_fd < 0 || w->event_fd < 0) {
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
    spawn_job job = {w->ctl_fd, w->guest_fd, w->code_fd, go[0], go[1], zfd, w->event_fd, -1, 0, 0};
    int clone_err = 0;
    pid_t pid = spawn_on_spawner(&job, &clone_err);
    close(go[0]);
    if (pid < 0) {
        close(go[1]);
        pvm_set_err(err, err_len, "cannot create the worker's namespaces (clone: %s)", strerror(clone_err));
        goto fail;
    }
    w->pid = pid;
    /* the child is not reaped before pidfd_open: the pid cannot have been reused */
    w->pid_fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (clock_getcpuclockid(pid, &w->cpu_clock) != 0)
        w->cpu_clock = CLOCK_MONOTONIC; /* never "stalled": only deadlines bound it */
    uid_t uid = getuid();
    gid_t gid = getgid();
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
    int r = wait_done(w, 10ull * 1000 * 1000 * 1000, PVM_SBX_DEFAULT_STALL_NS);
    if (r != WAIT_OK || !__atomic_load_n(&w->ctl->ready, __ATOMIC_RELAXED)) {
        if (r == WAIT_DIED)
            describe_death(w, err, err_len);
        else
            pvm_set_err(err, err_len, "the sandbox worker did not start (init step %llu)",
                        (unsigned long long)__atomic_load_n(&w->ctl->worker_status, __ATOMIC_RELAXED));
        goto fail;
    }
    __atomic_store_n(&w->ctl->futex, PVM_SBX_IDLE, __ATOMIC_RELEASE);
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

/* Sends the host's queue of protection changes (host-private until now). */
static int flush_protections(pvm_worker *w) {
    if (w->protect_count == 0)
        return 0;
    __atomic_store_n(&w->ctl->protect_count, w->protect_count, __ATOMIC_RELAXED);
    w->protect_count = 0;
    int r = request(w, PVM_SBX_CMD_PROTECT, 0, PVM_SBX_DEFAULT_STALL_NS);
    if (r != WAIT_OK)
        describe_wait(w, r, w->error, sizeof w->error, "changing memory protection");
    return r == WAIT_OK ? 0 : -1;
}

/* pvm_memory's hook: queue a protection change for the worker.  A change of
   the same range as the one queued just before replaces it (a reset makes
   read-only data writable for the host, fills it and protects it again: the
   worker needs only the last word).  Sent with the next RUN, or on its own
   when the queue is full. */
static int protect_hook(void *ctx, uint64_t addr, uint64_t len, int prot) {
    pvm_worker *w = ctx;
    if (w->dead)
        return -1;
    if (w->protect_count && w->last_addr == addr && w->last_len == len) {
        pvm_sbx_protect *p = &w->ctl->protect[w->protect_count - 1];
        p->addr = addr;
        p->len = len;
        p->prot = (uint32_t)prot;
        p->pad = 0;
        return 0;
    }
    if (w->protect_count >= PVM_SBX_MAX_PROTECT && flush_protections(w) != 0)
        return -1;
    pvm_sbx_protect *p = &w->ctl->protect[w->protect_count++];
    p->addr = addr;
    p->len = len;
    p->prot = (uint32_t)prot;
    p->pad = 0;
    w->last_addr = addr;
    w->last_len = len;
    return 0;
}

/* Whether the parked memory is what a fresh instance of this configuration
   and initial image would get. */
static int parked_fits(const pvm_worker *w, const pvm_instance_config *cfg, const uint8_t *ro,
                       uint32_t ro_len, const uint8_t *rw, uint32_t rw_len) {
    const pvm_memory *m = &w->parked;
    if (!w->has_parked || m->page_size != cfg->page_size || m->dynamic != cfg->dynamic_paging ||
        m->ro_init_len != ro_len || m->rw_init_len != rw_len)
        return 0;
    pvm_memory_map map;
    if (pvm_memory_map_build(cfg->page_size, cfg->ro_data_size, cfg->rw_data_size, cfg->stack_size,
                             cfg->aux_data_size, &map, NULL, 0) != 0 ||
        memcmp(&map, &m->map, sizeof map) != 0)
        return 0;
    return (!ro_len || memcmp(m->ro_init, ro, ro_len) == 0) &&
           (!rw_len || memcmp(m->rw_init, rw, rw_len) == 0);
}

static int sandbox_bind(pvm_instance *vm, pvm_worker *w, const pvm_instance_config *cfg,
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
    w->code_len = (uint32_t)c->code_len;
    w->enter_off = c->enter_off;
    w->exit_off = c->exit_off;
    w->error[0] = 0;
    if (parked_fits(w, cfg, ro, ro_len, rw, rw_len)) {
        /* the previous tenant's memory, already back to this initial image;
           the worker's protections describe it once the queued changes (if
           any) travel with the first RUN */
        vm->mem = w->parked;
        memset(&w->parked, 0, sizeof w->parked);
        w->has_parked = 0;
    } else {
        drop_parked(w);
        w->protect_count = 0;
        /* the previous tenant's memory: all of it dropped and protected again
           (the protections go with the first RUN) */
        if (fallocate(w->guest_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)PVM_SBX_GUEST_SIZE) != 0) {
            pvm_set_err(err, err_len, "cannot reset worker memory (errno %d)", errno);
            return -1;
        }
        if (protect_hook(w, 0, PVM_SBX_GUEST_SIZE - 0x10000ull, 0) != 0 ||
            pvm_memory_init_shared(&vm->mem, cfg, ro, ro_len, rw, rw_len, w->guest_fd, protect_hook, w,
                                   err, err_len) != 0) {
            if (w->error[0])
                pvm_set_err(err, err_len, "%s", w->error);
            return -1;
        }
    }
    memset(w->ctl->regs, 0, sizeof w->ctl->regs);
    w->ran = 0;
    w->busy = 1;
    w->refs++;
    vm->worker = w;
    vm->stall_ns = PVM_SBX_DEFAULT_STALL_NS;
    return 0;
}

static void sandbox_unbind(pvm_instance *vm) {
    pvm_worker *w = vm->worker;
    if (!w)
        return;
    if (w->inflight) /* abandoned mid-run: the worker cannot be reused */
        kill_worker(w);
    w->inflight = 0;
    w->async = 0;    /* the next instance starts in the blocking protocol */
    if (!w->dead) {
        __atomic_store_n(&w->ctl->host_waiting, PVM_SBX_WAIT_NONE, __ATOMIC_SEQ_CST);
        /* nothing of this instance may be visible to the next one: its
           memory is dropped (parked memory was reset to its initial image,
           which is the module's, not this instance's) */
        if (!w->has_parked)
            fallocate(w->guest_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)PVM_SBX_GUEST_SIZE);
        memset(w->ctl->regs, 0, sizeof w->ctl->regs);
        w->ctl->gas = 0;
    }
    w->busy = 0;
    vm->worker = NULL;
    if (--w->refs == 0)
        worker_destroy(w);
}

static int punch(pvm_worker *w, uint64_t addr, uint64_t len) {
    if (!len)
        return 0;
    return fallocate(w->guest_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)addr, (off_t)len);
}

/* Drops every page the guest could reach: the regions of a standard layout
   (with the heap), or all of memory with dynamic paging.  Done here, not left
   to the memory reset alone, so that a reset which restores only what it saw
   change could not carry a page the worker wrote over to the next tenant. */
static int drop_guest_pages(pvm_worker *w, pvm_memory *m) {
    /* the read-only data goes too: the next reset must lay it out again (it
       restores read-only data only once it changed) */
    m->ro_dirty = 1;
    if (m->dynamic)
        return punch(w, 0, PVM_SBX_GUEST_SIZE);
    const pvm_memory_map *mm = &m->map;
    uint64_t rw_len = m->rw_end > mm->rw_data_address ? (uint64_t)m->rw_end - mm->rw_data_address : 0;
    if (rw_len < mm->rw_data_size)
        rw_len = mm->rw_data_size;
    return punch(w, mm->ro_data_address, mm->ro_data_size) | punch(w, mm->rw_data_address, rw_len) |
           punch(w, mm->stack_address_low, mm->stack_size) | punch(w, mm->aux_data_address, mm->aux_data_size);
}

/* Frees an instance's guest memory, or parks it on its worker for the next
   instance of the same layout: every page the guest could reach dropped, then
   the initial image laid out again by the memory reset, so what is parked is
   the module's initial memory and nothing else. */
static void release_memory(pvm_instance *vm) {
    pvm_worker *w = vm->worker;
    if (w && !w->dead && !w->inflight && vm->mem.base && vm->mem.memfd == w->guest_fd) {
        drop_parked(w);
        /* an instance that never ran guest code left only the host's own
           writes, which the reset finds and restores: nothing to drop */
        if ((!w->ran || drop_guest_pages(w, &vm->mem) == 0) && pvm_memory_reset(&vm->mem) == 0 &&
            !w->dead) {
            w->parked = vm->mem;
            w->has_parked = 1;
            memset(&vm->mem, 0, sizeof vm->mem);
            return;
        }
    }
    pvm_memory_destroy(&vm->mem);
}

/* The worker broke the protocol: it is killed and the run fails. */
static int violation(pvm_instance *vm, pvm_worker *w, const char *what, unsigned long long value) {
    kill_worker(w);
    snprintf(vm->error, sizeof vm->error,
             "sandbox worker %d broke the protocol (%s: %llu); it was killed", (int)w->pid, what, value);
    vm->error_kind = PVM_ERROR_SANDBOX;
    vm->next_pc = NONE;
    return PVM_INT_ERROR;
}

static int sandbox_error(pvm_instance *vm, const char *text) {
    snprintf(vm->error, sizeof vm->error, "%s", text);
    vm->error_kind = PVM_ERROR_SANDBOX;
    vm->next_pc = NONE;
    return PVM_INT_ERROR;
}

static int wait_error(pvm_instance *vm, pvm_worker *w, int r) {
    describe_wait(w, r, vm->error, sizeof vm->error, "running guest code");
    vm->error_kind = PVM_ERROR_SANDBOX;
    vm->next_pc = NONE;
    return PVM_INT_ERROR;
}

/* Posts RUN at native_off: the queued protections travel with it (the worker
   applies them before it enters the code), registers, gas and the
   host-private code offsets are written just before.  Returns 0, or
   PVM_INT_ERROR. */
static int run_post(pvm_instance *vm, pvm_worker *w, uint32_t native_off) {
    pvm_sbx_ctl *ctl = w->ctl;
    memcpy(ctl->regs, vm->regs, sizeof vm->regs);
    ctl->gas = vm->gas;
    ctl->entry_off = native_off;
    ctl->code_len = w->code_len;
    ctl->enter_off = w->enter_off;
    ctl->exit_off = w->exit_off;
    ctl->protect_count = w->protect_count;
    w->protect_count = 0;
    w->gas_in = vm->gas;
    w->native_off = native_off;
    w->ran = 1;
    vm->jit_fault_kind = 0;
    vm->resume = NONE;
    post(w, PVM_SBX_CMD_RUN);
    return 0;
}

/* Takes the result of a finished RUN.  Everything comes from memory the
   worker can write: each field is read once, into host memory, and checked
   before it is used.  Returns the interrupt (>= 0), or -1 to enter the code
   again at *native_off (a host-side helper finished), or PVM_INT_ERROR. */
static int run_collect(pvm_instance *vm, pvm_worker *w, uint32_t *native_off) {
    pvm_sbx_ctl *ctl = w->ctl;
    const pvm_jit_code *code = vm->jit;
    int64_t gas_in = w->gas_in;
    uint64_t regs[PVM_NUM_REGS];
    for (int k = 0; k < PVM_NUM_REGS; k++)
        regs[k] = __atomic_load_n(&ctl->regs[k], __ATOMIC_RELAXED);
    int64_t gas_out = __atomic_load_n(&ctl->gas, __ATOMIC_RELAXED);
    uint32_t site = __atomic_load_n(&ctl->exit_site, __ATOMIC_RELAXED);
    uint64_t fault_off = __atomic_load_n(&ctl->fault_rip_off, __ATOMIC_RELAXED);
    uint32_t fault_sig = __atomic_load_n(&ctl->fault_signal, __ATOMIC_RELAXED);
    /* gas only goes down, and a charge that does not fit is given back,
       so the counter stays within [min(gas_in, 0), gas_in]; unmetered
       code never touches it */
    if (!pvm_jit_exit_valid(code, site))
        return violation(vm, w, "exit site", site);
    /* (an out-of-gas exit leaves the block's charge in the counter: the
       exit handling gives it back) */
    int64_t gas_back;
    if (__builtin_add_overflow(gas_out, (int64_t)pvm_jit_exit_refund(vm->prog, code, site), &gas_back) ||
        (code->metered ? (gas_back > gas_in || gas_back < (gas_in < 0 ? gas_in : 0)) : gas_out != gas_in))
        return violation(vm, w, "gas left out of range", (unsigned long long)gas_out);
    if (site == JIT_FAULT_SITE && (fault_off >= w->code_len || (fault_sig != SIGSEGV && fault_sig != SIGBUS)))
        return violation(vm, w, "fault offset", fault_off);
    memcpy(vm->regs, regs, sizeof vm->regs);
    vm->gas = gas_out;
    /* generated code faults only at its memory accesses */
    if (site == JIT_FAULT_SITE && pvm_jit_classify_fault(vm, (uint32_t)fault_off, vm->regs) != 0)
        return violation(vm, w, "fault outside a memory access, at code offset", fault_off);
    *native_off = w->native_off;
    int k = pvm_jit_exit(vm, site, native_off);
    return k >= 0 ? k : -1;
}

/* Async: spins up to spin_ns for DONE.  1 = done (page taken), 0 = not yet:
   the worker will write its eventfd when it is (host_waiting armed). */
static int async_poll(pvm_worker *w, uint32_t spin_ns) {
    uint64_t start = 0;
    for (unsigned n = 0;; n++) {
        if (__atomic_load_n(&w->ctl->futex, __ATOMIC_ACQUIRE) == PVM_SBX_DONE)
            break;
        if ((n & 63) == 0) {
            uint64_t t = now_ns();
            if (!start)
                start = t;
            else if (t - start >= spin_ns || sharing_cpu(w)) {
                /* arm, then look again (Dekker with the worker's store of
                   DONE and load of host_waiting) */
                __atomic_store_n(&w->ctl->host_waiting, PVM_SBX_WAIT_EVENT, __ATOMIC_SEQ_CST);
                if (__atomic_load_n(&w->ctl->futex, __ATOMIC_SEQ_CST) != PVM_SBX_DONE)
                    return 0;
                break;
            }
        }
        __builtin_ia32_pause();
    }
    __atomic_store_n(&w->ctl->host_waiting, PVM_SBX_WAIT_NONE, __ATOMIC_SEQ_CST);
    collected(w);
    return 1;
}

/* Async: posts RUNs and collects their results until an interrupt (>= 0),
   an error, or a RUN that is still going after the spin (PVM_INT_PENDING). */
static int async_drive(pvm_instance *vm, pvm_worker *w, uint32_t native_off) {
    for (;;) {
        run_post(vm, w, native_off);
        w->wait_start = now_ns();
        if (!async_poll(w, w->spin_ns)) {
            /* the stall watchdog's baseline, only for a run that outlasts the
               spin (reading the worker's CPU clock is a system call) */
            w->progress_at = now_ns();
            w->wait_cpu = cpu_ns(w);
            w->inflight = 1;
            return PVM_INT_PENDING;
        }
        int k = run_collect(vm, w, &native_off);
        if (k >= 0 || k == PVM_INT_ERROR)
            return k;
    }
}

static int sandbox_run(pvm_instance *vm, uint32_t insn, int mid) {
    uint32_t native_off = pvm_jit_entry_off(vm, insn, mid);
    pvm_worker *w = vm->worker;
    vm->error_kind = 0;
    if (w->inflight)
        return sandbox_error(vm, "a sandboxed run is still in progress (pvm_sandbox_continue it)");
    /* async: a worker that died is found before posting by waitpid only
       without a pidfd -- with one, its death makes the awaited descriptor
       readable and pvm_sandbox_continue reaps it (no system call per run) */
    if (w->dead || (w->async && w->pid_fd < 0 && reap(w, 0))) {
        describe_death(w, vm->error, sizeof vm->error);
        vm->error_kind = PVM_ERROR_SANDBOX;
        return PVM_INT_ERROR;
    }
    if (w->async)
        return async_drive(vm, w, native_off);
    for (;;) {
        run_post(vm, w, native_off);
        int r = wait_done(w, vm->deadline_ns, vm->stall_ns);
        if (r != WAIT_OK)
            return wait_error(vm, w, r);
        collected(w);
        int k = run_collect(vm, w, &native_off);
        if (k >= 0 || k == PVM_INT_ERROR)
            return k;
    }
}

int pvm_sandbox_set_async(pvm_instance *vm, uint32_t spin_ns) {
    pvm_worker *w = vm->worker;
    if (!w || w->inflight)
        return -1;
    w->async = spin_ns != 0;
    w->spin_ns = spin_ns;
    if (!w->async)
        return 0;
    uint64_t count;
    while (read(w->event_fd, &count, sizeof count) == (ssize_t)sizeof count) {
    } /* a stale wake-up from an earlier tenant */
    if (w->wait_fd < 0) {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
            return -1;
        struct epoll_event ev = {.events = EPOLLIN};
        ev.data.fd = w->event_fd;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, w->event_fd, &ev) != 0) {
            close(ep);
            return -1;
        }
        if (w->pid_fd >= 0) { /* readable once the worker is gone */
            ev.data.fd = w->pid_fd;
            if (epoll_ctl(ep, EPOLL_CTL_ADD, w->pid_fd, &ev) != 0) {
                close(ep);
                return -1;
            }
        }
        w->wait_fd = ep;
    }
    return w->wait_fd;
}

int pvm_sandbox_continue(pvm_instance *vm, uint32_t spin_ns) {
    pvm_worker *w = vm->worker;
    if (!w || !w->inflight)
        return sandbox_error(vm, "no sandboxed run is in progress");
    vm->error_kind = 0;
    uint64_t count;
    while (read(w->event_fd, &count, sizeof count) == (ssize_t)sizeof count) {
    } /* drained: readable again only after the next write */
    if (!async_poll(w, spin_ns)) {
        /* still running: bounded like every wait (deadline, stall watchdog) */
        int r = WAIT_OK;
        if (reap(w, 0))
            r = WAIT_DIED;
        else {
            uint64_t now = now_ns();
            if (vm->deadline_ns && now - w->wait_start > vm->deadline_ns) {
                kill_worker(w);
                r = WAIT_DEADLINE;
            } else if (stalled(w, now, vm->stall_ns, &w->wait_cpu, &w->progress_at)) {
                kill_worker(w);
                r = WAIT_STALLED;
            }
        }
        if (r == WAIT_OK)
            return PVM_INT_PENDING;
        w->inflight = 0;
        __atomic_store_n(&w->ctl->host_waiting, PVM_SBX_WAIT_NONE, __ATOMIC_SEQ_CST);
        return wait_error(vm, w, r);
    }
    w->inflight = 0;
    uint32_t native_off = 0;
    int k = run_collect(vm, w, &native_off);
    if (k >= 0 || k == PVM_INT_ERROR)
        return k;
    return async_drive(vm, w, native_off);
}

int pvm_sandbox_inflight(const pvm_instance *vm) { return vm->worker && vm->worker->inflight; }

/* ---- the backend ---- */

static int sandbox_instantiate(pvm_instance *vm, const pvm_instance_config *cfg, const pvm_image *img,
                               char *err, size_t err_len) {
    if (pvm_jit_prepare(vm, cfg, err, err_len) != 0)
        return -1;
    return sandbox_bind(vm, cfg->worker, cfg, img->ro, img->ro_len, img->rw, img->rw_len, err, err_len);
}

static void sandbox_release(pvm_instance *vm) {
    release_memory(vm);
    sandbox_unbind(vm);
}

const pvm_backend pvm_backend_sandbox = {
    .name = "sandbox",
    .instantiate = sandbox_instantiate,
    .release = sandbox_release,
    .run = sandbox_run,
    .reset = pvm_vm_reset,
    .read = pvm_vm_read,
    .write = pvm_vm_write,
    .sbrk = pvm_vm_sbrk,
};

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
    w->ran = 1;
    w->code_len = (uint32_t)len;
    w->enter_off = 0;
    w->exit_off = exit_off;
    w->ctl->code_len = (uint32_t)len;
    w->ctl->enter_off = 0;
    w->ctl->entry_off = 0;
    w->ctl->exit_off = exit_off;
    int r = request(w, PVM_SBX_CMD_RUN, 5ull * 1000 * 1000 * 1000, PVM_SBX_DEFAULT_STALL_NS);
    if (r != WAIT_OK) {
        kill_worker(w);
        *status = w->exit_status;
        return -1;
    }
    *status = 0;
    return (int)__atomic_load_n(&w->ctl->exit_site, __ATOMIC_RELAXED);
}

/* Test-only: plays a compromised worker.  `len` bytes at `offset` of the
   control page are overwritten every time the worker hands the page back,
   before the host reads it (as if the worker had written them last). */
int pvm_worker_test_tamper(pvm_worker *w, uint32_t offset, const uint8_t *bytes, uint32_t len) {
    if (offset > sizeof(pvm_sbx_ctl) || len > sizeof w->tamper || len > sizeof(pvm_sbx_ctl) - offset)
        return -1;
    memcpy(w->tamper, bytes, len);
    w->tamper_off = offset;
    w->tamper_len = len;
    return 0;
}
#endif

#ifdef PVM_SANDBOX_TESTING
/* Test-only: the control page's fields (name, offset, size), index 0.. until -1. */
int pvm_worker_test_field(int index, const char **name, uint32_t *offset, uint32_t *size) {
#define F(f) {#f, offsetof(pvm_sbx_ctl, f), sizeof(((pvm_sbx_ctl *)0)->f)}
    static const struct {
        const char *name;
        size_t offset, size;
    } fields[] = {F(regs), F(gas), F(futex), F(command), F(entry_off), F(enter_off), F(exit_off),
                  F(code_len), F(exit_site), F(fault_signal), F(fault_rip_off), F(protect_count),
                  F(ready), F(worker_waiting), F(host_waiting), F(host_cpu), F(worker_cpu),
                  F(worker_status), F(protect)};
#undef F
    if (index < 0 || (size_t)index >= sizeof fields / sizeof fields[0])
        return -1;
    *name = fields[index].name;
    *offset = (uint32_t)fields[index].offset;
    *size = (uint32_t)fields[index].size;
    return 0;
}
#endif
