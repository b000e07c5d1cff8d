"""Linux sandbox workers: processes started from the zygote (native/sandbox/)
that run JIT code for one instance at a time.

Each worker has new user, pid, mount, network, ipc, uts and cgroup
namespaces, an empty read-only root filesystem, no capabilities,
no_new_privs, tight rlimits and a seccomp filter allowing six system calls
(futex, rt_sigreturn, mprotect inside guest memory without PROT_EXEC, write
to its one descriptor -- an eventfd that wakes an event loop awaiting it --,
exit, exit_group).  Guest memory and JIT code are shared memory files: the host
reads and writes guest memory without copies; the code is mapped
read+execute in the worker and is never writable there.

:class:`SandboxPool` keeps workers pre-spawned and hands them to instances;
a worker is wiped (memory, registers, gas, code binding) before reuse and
replaced when it dies.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from executor.errors import SandboxError
from executor.native import errbuf, errstr, ffi, lib

__all__ = [
    "SandboxError", "SandboxPool", "SandboxProcess", "default_pool", "sandbox_unavailable_reason",
]


class SandboxProcess:
    """One sandbox worker process (not to be confused with the executor's
    :class:`executor.workers.Worker`, an execution slot of :mod:`executor.aio`;
    a :class:`~executor.workers.SandboxWorker` runs its guests in these).

    The native worker is reference counted: an instance bound to it keeps it
    alive, so Python may finalize the two in any order (they often die in
    the same garbage cycle)."""

    def __init__(self) -> None:
        err = errbuf()
        ptr = lib.pvm_worker_spawn(err, 256)
        if ptr == ffi.NULL:
            raise SandboxError(f"cannot start a sandbox worker: {errstr(err)}")
        self._ptr: Any = ptr
        self.pid = int(lib.pvm_worker_pid(ptr))
        # instance configurations naming this worker, by the shared
        # configuration they copy (executor.raw.RawInstance)
        self._configs: dict[Any, Any] = {}

    @property
    def alive(self) -> bool:
        return self._ptr is not None and bool(lib.pvm_worker_alive(self._ptr))

    def kill(self) -> None:
        if self._ptr is not None:
            lib.pvm_worker_kill(self._ptr)

    def close(self) -> None:
        """Drops this handle: the process is killed once no instance uses it."""
        ptr = getattr(self, "_ptr", None)  # None too if the spawn failed
        self._ptr = None
        self._configs = {}  # they name the native worker, freed below
        if ptr is not None:
            lib.pvm_worker_free(ptr)

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SandboxProcess pid={self.pid} {'alive' if self.alive else 'dead'}>"


class SandboxPool:
    """A bounded set of workers: at most ``size`` idle ones are kept for reuse
    (pre-spawned when ``prespawn``), and at most ``max_workers`` exist at once
    (each bound instance holds one; nested contract calls hold one per frame)."""

    def __init__(self, size: int = 2, *, prespawn: bool = True, max_workers: int = 64):
        self.size = size
        self.max_workers = max(max_workers, size)
        self._idle: list[SandboxProcess] = []
        self._lock = threading.Lock()
        self._lent: dict[int, SandboxProcess] = {}  # workers handed out and not returned
        self._starting = 0
        self._closed = False
        if prespawn:
            self.prespawn()

    def prespawn(self, count: int | None = None) -> None:
        """Starts idle workers until ``count`` (default ``size``) are idle or in use."""
        target = self.size if count is None else min(count, self.size)
        while True:
            with self._lock:
                if len(self._idle) + len(self._lent) >= target:
                    return
            w = SandboxProcess()
            with self._lock:
                self._idle.append(w)

    def acquire(self) -> SandboxProcess:
        with self._lock:
            while self._idle:
                w = self._idle.pop()
                if w.alive:
                    self._lent[id(w)] = w
                    return w
                w.close()
            if len(self._lent) + self._starting >= self.max_workers:
                raise SandboxError(f"sandbox worker limit reached ({self.max_workers} in use)")
            self._starting += 1
        try:
            w = SandboxProcess()
        finally:
            with self._lock:
                self._starting -= 1
        with self._lock:
            self._lent[id(w)] = w
        return w

    def release(self, worker: SandboxProcess) -> None:
        """Takes a lent worker back: kept idle for reuse if there is room, else
        closed.  Whether it still lives is asked when it is lent again
        (:meth:`acquire`), not here: that costs a system call, and one per
        instance is enough.  (The pool holds every lent worker, so a worker is
        never finalized before the instance using it gives it back, whatever
        order the garbage collector runs finalizers in.)"""
        with self._lock:
            self._lent.pop(id(worker), None)
            if worker._ptr is not None and len(self._idle) < self.size and not self._closed:
                self._idle.append(worker)
                return
        worker.close()

    @property
    def in_use(self) -> int:
        return len(self._lent)

    def close(self) -> None:
        """Closes the idle workers; lent ones are closed when given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for w in idle:
            w.close()

    def pids(self) -> list[int]:
        """Process ids of this pool's workers, idle and lent."""
        with self._lock:
            return [w.pid for w in self._idle] + [w.pid for w in self._lent.values()]


_default_pool: SandboxPool | None = None
_default_lock = threading.Lock()


def default_pool() -> SandboxPool:
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            # keeps enough idle workers for nested contract calls (depth 5) on
            # every core without respawning
            _default_pool = SandboxPool(size=max(8, 4 * (os.cpu_count() or 2)), prespawn=False)
            first_use = True
        else:
            first_use = False
    if first_use:
        # pre-spawn one worker per core on first use (not at import time)
        _default_pool.prespawn(os.cpu_count() or 2)
    return _default_pool


_reason_cache: list[str | None] = []


def sandbox_unavailable_reason() -> str | None:
    """Why sandbox workers cannot run here (None if they can); checked once."""
    if not _reason_cache:
        _reason_cache.append(_check())
    return _reason_cache[0]


def _check() -> str | None:
    err = errbuf()
    if not lib.pvm_jit_available(err, 256):
        return f"the JIT cannot run here: {errstr(err)}"
    try:
        w = SandboxProcess()
    except SandboxError as exc:
        return str(exc)
    w.close()
    return None
