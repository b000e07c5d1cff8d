/*
 * protocol.h -- what the host and a sandbox worker share: fixed addresses in
 * the worker, the control page layout and the futex protocol.
 *
 * Every byte of the control page can be written by the worker at any time.
 * The host treats it as a mailbox, never as its own state: see host.c.
 *
 * Included by the host (host.c) and by the freestanding worker (zygote.c),
 * so it uses nothing but fixed-width integers.
 */
#ifndef PVM_SANDBOX_PROTOCOL_H
#define PVM_SANDBOX_PROTOCOL_H

#include <stdint.h>

/* Where the worker maps things (all fixed, chosen far from anything the
   kernel places by itself). */
#define PVM_SBX_GUEST_BASE 0x100000000ull      /* 4 GiB of guest memory + guard */
#define PVM_SBX_GUEST_SIZE (0x100000000ull + 0x10000ull)
#define PVM_SBX_CODE_BASE 0x300000000ull       /* JIT code, read+execute */
#define PVM_SBX_CODE_SIZE (64ull << 20)
#define PVM_SBX_CTL_BASE 0x400000000ull        /* this control page */
#define PVM_SBX_CTL_SIZE 0x10000ull

/* File descriptors the worker is started with. */
#define PVM_SBX_FD_CTL 3
#define PVM_SBX_FD_GUEST 4
#define PVM_SBX_FD_CODE 5
#define PVM_SBX_FD_GO 6        /* (before exec only) the host writes one byte once the id maps are set */
#define PVM_SBX_FD_EVENT 8     /* an eventfd: the worker writes it when it hands the page back
                                  while the host awaits it (host_waiting == PVM_SBX_WAIT_EVENT);
                                  the only descriptor the worker keeps, the only one it may write */

/* futex word states */
#define PVM_SBX_IDLE 0         /* the host owns the page */
#define PVM_SBX_REQUEST 1      /* the worker owns it: do `command` */
#define PVM_SBX_DONE 2         /* the worker finished; the host owns it again */

/* host_waiting: how the host waits for DONE (the worker wakes it accordingly) */
#define PVM_SBX_WAIT_NONE 0    /* spinning, or not waiting: no wake-up needed */
#define PVM_SBX_WAIT_FUTEX 1   /* asleep in FUTEX_WAIT on `futex` */
#define PVM_SBX_WAIT_EVENT 2   /* awaiting the eventfd (an event loop): write it */

/* commands */
#define PVM_SBX_CMD_RUN 1      /* apply protections, then enter code at entry_off */
#define PVM_SBX_CMD_PROTECT 2  /* apply protections only */
#define PVM_SBX_CMD_EXIT 3

#define PVM_SBX_MAX_PROTECT 256

/* A worker the host waits on that uses no CPU for this long is killed. */
#define PVM_SBX_DEFAULT_STALL_NS (5ull * 1000 * 1000 * 1000)

typedef struct {
    uint64_t addr, len;       /* guest address range */
    uint32_t prot, pad;       /* PROT_READ | PROT_WRITE subset, never PROT_EXEC */
} pvm_sbx_protect;

/* Cache lines: a hand-off moves the registers and gas (the first two lines,
   where the generated code's context wants them) and the one protocol line.
   Everything a request or its answer writes, and both words each side polls
   (futex; host_cpu and worker_cpu), share that line, so posting a request or
   handing the page back moves it once, instead of bouncing two half-used
   lines the other side is polling between each store. */
#define PVM_SBX_LINE 64

typedef struct {
    /* vmctx: the generated code's registers and gas (PVM_VMCTX_*) */
    uint64_t regs[13];
    int64_t gas;
    uint8_t pad_vmctx[2 * PVM_SBX_LINE - 14 * 8];
    /* the protocol line (64 bytes) */
    uint32_t futex;
    uint32_t command;
    uint32_t entry_off;       /* native offset to enter */
    uint32_t enter_off;       /* offset of the entry trampoline in the code */
    uint32_t exit_off;        /* offset of the common exit routine */
    uint32_t code_len;        /* bytes of code currently loaded */
    uint32_t exit_site;       /* result of RUN */
    uint32_t fault_signal;    /* signal that stopped guest code (0 if none) */
    uint64_t fault_rip_off;   /* offset in the code of a faulting access */
    uint32_t protect_count;
    uint32_t worker_waiting;  /* the worker sleeps in FUTEX_WAIT: wake it */
    uint32_t host_waiting;    /* PVM_SBX_WAIT_*: how the host waits for DONE */
    /* The CPU each side last ran on (from rdtscp), so neither spins for the
       other while both share one CPU: there the spinner only keeps its partner
       from running.  A hint only: a wrong value makes a side sleep early or
       spin its bounded while. */
    uint32_t host_cpu;
    uint32_t worker_cpu;
    uint32_t ready;           /* set by the worker once it is locked down (fills the line) */
    /* start-up only */
    uint64_t worker_status;   /* diagnostics: how far initialisation got */
    pvm_sbx_protect protect[PVM_SBX_MAX_PROTECT];
} pvm_sbx_ctl;

#endif
