/*
 * sandbox.h -- the sandbox backend: JIT code (jit/) run inside a worker
 * process started from the zygote, guest memory in a memfd shared with it.
 * The worker-facing API (pvm_worker_*, pvm_sandbox_set_async / continue /
 * inflight) is public, in pvm.h; the wire format between host and worker is
 * protocol.h.  Built on jit/ (the code and its exit handling) and vm.h;
 * nothing below calls into it.
 */
#ifndef PVM_SANDBOX_H
#define PVM_SANDBOX_H

#include "../jit/jit.h"

/* Instances whose configuration names a worker (cfg->worker) run here. */
extern const pvm_backend pvm_backend_sandbox;

#endif
