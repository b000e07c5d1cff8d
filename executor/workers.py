"""Execution workers for :mod:`executor.aio`: the :class:`Worker` protocol and
its implementations:

* :class:`LoopWorker` (the default for in-process backends): the guest runs on
  the trio loop thread in the calling task, one cffi call per gas slice, sync
  host functions inline, a real trio checkpoint every ~100 µs of work or 256
  host calls (skipped while nothing else could run, :func:`loop_idle`);
* :class:`SandboxWorker` (the default for the JIT in a Linux sandbox): the same,
  with the guest in a worker process driven through its shared control page (a
  bounded spin in C, then an fd the loop awaits), so guests run on other cores;
* :class:`ThreadWorker` (``host_calls="worker"``, or on request): a dedicated
  Python thread per worker; every step crosses threads (tens of µs).

A worker is one execution slot.  The executor drives a call step by step from
a trio task::

    stop = await worker.begin(job)           # fresh state, run to the first stop
    while stop.kind is StopKind.HOSTCALL:    # guest paused at an ecalli
        ...service import stop.hostcall with worker.caller (sync or async)...
        stop = await worker.resume()         # continue after the host call
    # FINISHED (stop.value, stop.gas_left), FAILED (stop.error) or INTERRUPTED

Everything between ``begin`` and the final stop is one *call*.  A call that
ends any other way (cancelled, a host function raised, ``begin``/``resume``
raised) leaves the worker dirty: the executor calls :meth:`Worker.reset`
before reusing it, and replaces it when reset fails or :meth:`Worker.health`
says it is no longer alive.

Cancellation: :meth:`Worker.interrupt` may be called from any thread while a
``begin``/``resume`` is running; the guest then stops at the next safe point
and the step returns ``INTERRUPTED``.  A worker that cannot stop its guest
(:attr:`Worker.interruptible` is false for the call) lets the executor abandon
it instead.

**Gas slices** (how the workers make metered guests interruptible
without C changes): the C core charges gas per basic block, and a synchronous
``NotEnoughGas`` leaves the gas counter unchanged with the pc at the start of
the block that could not be paid (a resumable stop; memset, charged per byte,
stops with its progress in its registers and resumes the same way).  So the
worker gives the guest at most ``slice_gas`` at a time and holds the rest of
the caller's budget back; when a slice runs out it adds the held-back gas again
and calls ``run()`` once more.  That continues exactly as if the whole budget
had been there from the start: same result, same gas used, the same
``OutOfGas`` (pc and gas left) when the real budget runs out.  Between slices
the worker checks for an interrupt request.  Host functions always see the
true remaining gas (the held-back part is added back before every stop).  A
block that costs more than a slice gets a doubled slice until it fits.
Unmetered guests cannot be sliced: they stop only at host calls.
"""

from __future__ import annotations

import abc
import enum
import itertools
import queue
import select
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import outcome
import trio

from executor.caller import Caller
from executor.errors import ExecutionError, GuestFault, HostError, PvmError, SandboxError, Trap
from executor.hostfn import ARG_REGS
from executor.instance import DEFAULT_GAS, Instance
from executor.native import lib
from executor.raw import InterruptKind

try:  # trio's private run queue: its length in ~0.1 us, where the public
    # trio.lowlevel.current_statistics() costs ~4 us (see _others_runnable)
    from trio._core import _run as _trio_run
    _SystemClock: type = _trio_run.SystemClock
except (ImportError, AttributeError):  # pragma: no cover - another trio: no extra spin,
    _trio_run = None  # type: ignore[assignment]  # no checkpoint skipped
    _SystemClock = type(None)

if TYPE_CHECKING:
    from executor.linker import InstancePre

DEFAULT_SLICE_GAS = 1 << 21
"""Gas per slice: about 5 ms of interpreter time and 0.4 ms of JIT time."""

HostCallMode = Literal["trio", "worker"]

_FINISHED = int(InterruptKind.FINISHED)
_ECALLI = int(InterruptKind.ECALLI)
_NOT_ENOUGH_GAS = int(InterruptKind.NOT_ENOUGH_GAS)
_SIGN32 = 1 << 31
_HIGH32 = ((1 << 64) - 1) ^ ((1 << 32) - 1)


class StopKind(enum.Enum):
    """Why a :meth:`Worker.begin`/:meth:`Worker.resume` step returned."""

    HOSTCALL = "hostcall"        # paused at an ecalli: service it, then resume()
    FINISHED = "finished"        # the export returned: value, gas_left
    FAILED = "failed"            # Trap / OutOfGas / HostError ...: error
    INTERRUPTED = "interrupted"  # interrupt() was honoured; the call is over


# the kinds as module constants: an enum member lookup costs ten times a global
_K_HOSTCALL = StopKind.HOSTCALL
_K_FINISHED = StopKind.FINISHED
_K_FAILED = StopKind.FAILED
_K_INTERRUPTED = StopKind.INTERRUPTED


class Stop:
    """One step's outcome (see :class:`StopKind`)."""

    __slots__ = ("kind", "hostcall", "pc", "value", "gas_left", "error")

    def __init__(self, kind: StopKind, hostcall: int = -1, pc: int | None = None,
                 value: int = 0, gas_left: int = 0, error: PvmError | None = None):
        self.kind = kind
        self.hostcall = hostcall
        self.pc = pc
        self.value = value
        self.gas_left = gas_left
        self.error = error

    def __repr__(self) -> str:
        return (f"Stop({self.kind.value}, hostcall={self.hostcall}, pc={self.pc}, "
                f"value={self.value}, gas_left={self.gas_left}, error={self.error!r})")


_INTERRUPTED = Stop(_K_INTERRUPTED)


class Job(NamedTuple):
    """One export call: what :meth:`Worker.begin` needs (immutable).

    ``pre`` names the module and its resolved imports, ``pc`` the export,
    ``args`` the argument-register values (already validated and masked, at
    most 9), ``gas`` the budget (``DEFAULT_GAS`` when ``None``), ``export``
    the name used in error messages, ``user_data`` what host functions see as
    ``caller.user_data``."""

    pre: InstancePre
    pc: int
    args: tuple[int, ...]
    gas: int | None
    export: str | int
    user_data: Any = None


@dataclass(frozen=True)
class WorkerHealth:
    """A worker's state as the executor sees it."""

    name: str
    alive: bool          # usable for another call (after reset when dirty)
    busy: bool           # a begin/resume step is running
    calls: int           # calls begun
    interrupted: int     # steps that ended INTERRUPTED
    detail: str = ""


class Worker(abc.ABC):
    """One execution slot of :class:`executor.aio.Executor` (see the module docstring).

    Implementations: :class:`ThreadWorker` (in-process, a dedicated thread).  A
    sandboxed process worker provides the same methods: ``begin``/``resume``
    forward the job and the resume request to the process and wait for its next
    stop without blocking the trio loop; :attr:`caller` is a
    :class:`~executor.caller.Caller` whose registers, memory and gas reach the
    paused guest; :meth:`interrupt` stops the guest (for a process: a flag in
    the shared control page or a kill); :meth:`reset` restores a clean process
    (or raises, to be replaced); :meth:`health` reports a dead process.
    """

    name: str = "worker"

    @abc.abstractmethod
    async def start(self) -> None:
        """Makes the worker ready (starts its thread or process).  Called once,
        inside the trio run that will use it."""

    @abc.abstractmethod
    async def begin(self, job: Job) -> Stop:
        """Starts ``job`` on fresh instance state and runs it to its first stop."""

    @abc.abstractmethod
    async def resume(self) -> Stop:
        """Continues the guest after a ``HOSTCALL`` stop was serviced."""

    @property
    @abc.abstractmethod
    def caller(self) -> Caller:
        """The host functions' view of the guest paused at a ``HOSTCALL`` stop
        (valid until the next ``resume``/``reset``)."""

    @abc.abstractmethod
    def interruptible(self, job: Job) -> bool:
        """Whether :meth:`interrupt` can stop ``job``'s guest while it runs
        (not only at its host calls)."""

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Asks a running step to stop soon (thread-safe, never blocks); the step
        then returns ``INTERRUPTED``.  Idempotent; a no-op when idle."""

    @abc.abstractmethod
    async def reset(self) -> None:
        """Drops an unfinished call so the worker can take another; raises when
        the worker cannot be made clean (the executor then replaces it)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Releases the worker (joins its thread / ends its process)."""

    @abc.abstractmethod
    def health(self) -> WorkerHealth:
        """The worker's current state."""


def host_failure(exc: Exception, symbol: str | None, function: str, pc: int | None) -> PvmError:
    """The error a call fails with when a host function (``symbol``; ``None`` for
    the fallback) raised ``exc``: a :class:`~executor.errors.Trap` for a
    :class:`~executor.errors.GuestFault`, else :class:`~executor.errors.HostError`
    (the same messages as :meth:`Instance.call <executor.instance.Instance.call>`)."""
    if symbol is None:
        if isinstance(exc, GuestFault):
            return Trap(pc, function, f"host fallback: {exc}")
        return HostError(f"the host fallback raised {type(exc).__name__}: {exc}",
                         function=function, pc=pc)
    if isinstance(exc, GuestFault):
        return Trap(pc, function, f"host function {symbol!r}: {exc}")
    return HostError(f"host function {symbol!r} raised {type(exc).__name__}: {exc}",
                     symbol=symbol, function=function, pc=pc)


def export_name(job: Job) -> str:
    """The export's name for error messages (``<pc N>`` for a bare pc)."""
    if isinstance(job.export, str):
        return job.export
    for name, pc in job.pre.module.exports.items():
        if pc == job.export:
            return name
    return f"<pc {job.export}>"


class InstanceCache:
    """The instances a worker keeps: one per linked module (:class:`InstancePre`),
    at most ``max_instances``, the least recently used closed first (with
    ``close``).  Each call starts from the module's initial memory image, so a
    kept instance is as good as a fresh one."""

    __slots__ = ("max_instances", "_close", "_entries")

    def __init__(self, max_instances: int, close: Callable[[Instance], None]):
        self.max_instances = max(1, max_instances)
        self._close = close
        self._entries: OrderedDict[int, tuple[InstancePre, Instance]] = OrderedDict()

    def get(self, pre: InstancePre,
            setup: Callable[[Instance], None] | None = None) -> tuple[Instance, bool]:
        """An instance of ``pre`` and whether it is new (``setup`` runs on a new one
        first; if it raises, the instance is closed and the error propagates)."""
        key = id(pre)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is pre:
            self._entries.move_to_end(key)
            return entry[1], False
        inst = pre.instantiate()
        if setup is not None:
            try:
                setup(inst)
            except BaseException:
                inst.raw.close()
                raise
        self._entries[key] = (pre, inst)
        while len(self._entries) > self.max_instances:
            _, (_, old) = self._entries.popitem(last=False)
            self._close(old)
        return inst, True

    def discard(self, inst: Instance) -> None:
        """Forgets ``inst`` and closes it (its sandbox process died, say)."""
        for key, (_, cached) in list(self._entries.items()):
            if cached is inst:
                del self._entries[key]
        self._close(inst)

    def clear(self) -> None:
        """Closes every kept instance."""
        for _, inst in self._entries.values():
            self._close(inst)
        self._entries.clear()


def _close_raw(inst: Instance) -> None:
    inst.raw.close()


_names = itertools.count()


class ThreadWorker(Worker):
    """An in-process worker: instances of the C core run on one dedicated thread.

    The trio side hands a step to the thread through a queue and parks the
    calling task; the thread runs the guest (the C core releases the GIL, so
    workers run in parallel) and reschedules the task through the trio token.
    The same thread always runs this worker's instances (the JIT keeps
    per-thread state).

    ``slice_gas``: gas per slice of a metered guest (see the module docstring).
    ``host_calls``: ``"trio"`` (default) services every host call in the calling
    trio task; ``"worker"`` runs plain (sync) host functions directly on the
    worker thread, without the round trip to the trio loop (they must then be
    thread-safe); async ones are still awaited in the trio task.
    ``max_instances``: instances kept per worker (one per module/linker pair,
    least recently used dropped first).  Each call starts from the module's
    initial memory image (``reset_memory``), as on a fresh instance.
    """

    def __init__(self, *, slice_gas: int = DEFAULT_SLICE_GAS, host_calls: HostCallMode = "trio",
                 max_instances: int = 8, name: str | None = None):
        if slice_gas < 1:
            raise ValueError(f"slice_gas must be >= 1, got {slice_gas}")
        if host_calls not in ("trio", "worker"):
            raise ValueError(f"host_calls must be 'trio' or 'worker', got {host_calls!r}")
        self.name = name or f"pvm-worker-{next(_names)}"
        self.slice_gas = slice_gas
        self.host_calls = host_calls
        self.max_instances = max(1, max_instances)
        self._queue: queue.SimpleQueue[tuple[Callable[[], Stop], trio.lowlevel.Task, object]
                                       | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._ticket: object | None = None     # the step whose result is awaited
        self._interrupt = False
        self._abandoned = False
        self._closed = False
        self._instances = InstanceCache(self.max_instances, _close_raw)
        self._inst: Instance | None = None
        self._job: Job | None = None
        self._reserve = 0       # gas held back from the instance (slicing)
        self._slice = slice_gas
        self._dirty = False     # a call began and did not reach a final stop
        self._calls = 0
        self._interrupted = 0

    # ---- lifecycle ----
    async def start(self) -> None:
        if self._thread is not None:
            return
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.Thread(target=self._thread_main, name=self.name, daemon=True)
        self._thread.start()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        thread = self._thread
        if thread is not None and not self._abandoned:
            # polled rather than joined from trio's thread cache, whose idle
            # threads would outlive the executor by seconds
            delay = 1e-4
            while thread.is_alive():
                await trio.sleep(delay)
                delay = min(2 * delay, 0.01)
            thread.join()
        if not self._abandoned:
            self._drop_instances()

    def _drop_instances(self) -> None:
        self._instances.clear()
        self._inst = None

    def health(self) -> WorkerHealth:
        thread = self._thread
        alive = (not self._closed and not self._abandoned and thread is not None
                 and thread.is_alive())
        detail = "abandoned (its guest could not be interrupted)" if self._abandoned else ""
        return WorkerHealth(self.name, alive, self._ticket is not None, self._calls,
                            self._interrupted, detail)

    # ---- the thread ----
    def _thread_main(self) -> None:
        get = self._queue.get
        token = self._token
        assert token is not None
        deliver = self._deliver
        while True:
            item = get()
            if item is None:
                break
            fn, task, ticket = item
            result = outcome.capture(fn)
            try:
                token.run_sync_soon(deliver, task, ticket, result)
            except trio.RunFinishedError:
                break
            if self._abandoned:
                break
        if self._abandoned:  # nobody else will touch the instances now
            self._drop_instances()

    def _deliver(self, task: trio.lowlevel.Task, ticket: object,
                 result: outcome.Outcome[Stop]) -> None:
        if self._ticket is ticket:
            self._ticket = None
            trio.lowlevel.reschedule(task, result)

    async def _step(self, fn: Callable[[], Stop], interruptible: bool) -> Stop:
        if self._closed or self._abandoned or self._thread is None:
            raise ExecutionError(f"{self.name} is not running")
        if self._ticket is not None:
            raise ExecutionError(f"{self.name} is already running a step")
        task = trio.lowlevel.current_task()
        ticket = object()
        self._ticket = ticket
        self._interrupt = False
        self._queue.put((fn, task, ticket))

        def abort(raise_cancel: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            if interruptible:   # the guest stops at the next slice boundary (or is killed)
                self.interrupt()
                return trio.lowlevel.Abort.FAILED
            self._interrupt = True   # an unmetered guest stops at its next host call at best
            # The guest cannot be stopped: give up on this worker (its thread
            # finishes the guest, then exits) and let the task go now.
            self._abandoned = True
            self._ticket = None
            self._queue.put(None)
            return trio.lowlevel.Abort.SUCCEEDED

        stop: Stop = await trio.lowlevel.wait_task_rescheduled(abort)
        return stop

    # ---- steps ----
    def interruptible(self, job: Job) -> bool:
        """Metered guests stop at the next gas slice; unmetered ones only when
        they run in a Linux sandbox worker (whose process is then killed)."""
        module = job.pre.module
        return module.gas_metering or getattr(getattr(module, "engine", None), "sandbox",
                                              None) == "linux"

    def interrupt(self) -> None:
        self._interrupt = True
        inst = self._inst
        if inst is not None and not inst._metered and self._ticket is not None:
            sandbox = getattr(inst.raw, "worker", None)
            if sandbox is not None:  # an unmetered guest in a sandbox process: kill it
                sandbox.kill()

    @property
    def caller(self) -> Caller:
        if self._inst is None:
            raise ExecutionError(f"{self.name} has no call in progress")
        return self._inst.caller

    async def begin(self, job: Job) -> Stop:
        self._calls += 1
        self._dirty = True
        stop = await self._step(lambda: self._t_begin(job), self.interruptible(job))
        return self._settle(stop)

    async def resume(self) -> Stop:
        if self._job is None:
            raise ExecutionError(f"{self.name} has no call to resume")
        stop = await self._step(self._t_run, self.interruptible(self._job))
        return self._settle(stop)

    def _settle(self, stop: Stop) -> Stop:
        kind = stop.kind
        if kind is _K_INTERRUPTED:
            self._interrupted += 1
        elif kind is not _K_HOSTCALL:
            self._dirty = False
            self._job = None
        return stop

    async def reset(self) -> None:
        if self._abandoned or self._closed:
            raise ExecutionError(f"{self.name} cannot be reset: "
                                 f"{'abandoned' if self._abandoned else 'closed'}")
        if self._ticket is not None:
            raise ExecutionError(f"{self.name} cannot be reset while a step runs")
        # The next begin() restores the initial memory image and registers;
        # dropping the job is all that is needed here.
        inst = self._inst
        if inst is not None:
            inst._busy = False
            inst.caller.user_data = None
        self._job = None
        self._reserve = 0
        self._dirty = False

    # ---- in the worker thread ----
    def _t_begin(self, job: Job) -> Stop:
        inst, fresh = self._instances.get(job.pre)
        if self._inst is not None and self._inst is not inst:
            self._inst._busy = False
        self._inst = inst
        self._job = job
        _prepare(inst, job, fresh)
        self._reserve = 0
        self._slice = self.slice_gas
        return self._t_run()

    def _t_run(self) -> Stop:
        inst = self._inst
        job = self._job
        assert inst is not None and job is not None
        ops, h = inst._ops, inst._h
        run = ops.pvm_instance_run
        metered = inst._metered
        gv = inst._gv
        inline = self.host_calls == "worker"
        while True:
            if self._interrupt:
                return _INTERRUPTED
            armed = 0
            if metered:  # arm one slice, hold the rest of the budget back
                g = gv[0] if gv is not None else int(ops.pvm_instance_gas(h))
                if g > self._slice:
                    armed = self._slice
                    self._reserve = g - armed
                    if gv is not None:
                        gv[0] = armed
                    else:
                        ops.pvm_instance_set_gas(h, armed)
            kind = run(h)
            if self._reserve:  # the instance holds the true remaining gas again
                g = gv[0] if gv is not None else int(ops.pvm_instance_gas(h))
                total = g + self._reserve
                self._reserve = 0
                if gv is not None:
                    gv[0] = total
                else:
                    ops.pvm_instance_set_gas(h, total)
                if kind == _NOT_ENOUGH_GAS:  # the slice ran out, not the budget
                    if g == armed:  # no block fitted in the slice: the next one is bigger
                        self._slice = max(self._slice, 2 * armed)
                    continue
            if kind == _ECALLI:
                n = int(ops.pvm_instance_ecalli(h))
                v = int(ops.pvm_instance_pc(h))
                pc = None if v < 0 else v
                if inline:
                    done = self._t_host_inline(inst, job, n, pc)
                    if done is _HANDLED:
                        continue
                    if done is not None:
                        inst._busy = False
                        return done
                return Stop(_K_HOSTCALL, hostcall=n, pc=pc)
            if kind == _FINISHED:
                if ops is lib:
                    inst.raw._finished = True
                inst._busy = False
                rv = inst._rv
                value = (rv[7] if rv is not None else int(ops.pvm_instance_reg(h, 7))) & inst._mask
                gas_left = int(ops.pvm_instance_gas(h)) if metered else 0
                return Stop(_K_FINISHED, value=value, gas_left=gas_left)
            try:
                inst._interrupt(kind, job.export)  # returns to resume (step, page mapped)
            except PvmError as exc:
                inst._busy = False
                if self._interrupt and getattr(inst.raw, "worker", None) is not None \
                        and not inst.raw.worker.alive:
                    self._discard(inst)  # its sandbox process was killed by interrupt()
                    return _INTERRUPTED
                return Stop(_K_FAILED, error=exc)

    def _discard(self, inst: Instance) -> None:
        self._instances.discard(inst)
        if self._inst is inst:
            self._inst = None

    def _t_host_inline(self, inst: Instance, job: Job, n: int, pc: int | None) -> Stop | None:
        """Runs a sync host call on this thread (``host_calls="worker"``).
        Returns ``_HANDLED`` to resume the guest, a ``FAILED`` stop when the host
        function raised, or ``None`` when the call must go to the trio task
        (an async host function)."""
        pre = job.pre
        caller = inst.caller
        if n < len(pre.handlers):
            if pre.async_handlers[n] is not None:
                return None
            caller.hostcall = n
            try:
                pre.handlers[n](caller)
            except Exception as exc:
                return _failed(host_failure(exc, pre.names[n], export_name(job), pc), exc)
            return _HANDLED
        if pre.async_fallback is not None:
            return None
        if pre.fallback is None:
            return _failed(Trap(pc, export_name(job), f"ecalli {n} is outside the import table "
                                                      f"({len(pre.handlers)} imports)"), None)
        caller.hostcall = n
        try:
            pre.fallback(caller, n)
        except Exception as exc:
            return _failed(host_failure(exc, None, export_name(job), pc), exc)
        return _HANDLED


_HANDLED = Stop(_K_HOSTCALL)


def _prepare(inst: Instance, job: Job, fresh: bool) -> None:
    """Sets ``inst`` up for ``job``: the initial memory image (unless ``fresh``),
    registers of the standard call sequence, the export's pc and the gas budget."""
    raw = inst.raw
    ops, h = inst._ops, inst._h
    if not fresh:
        ops.pvm_instance_reset_memory(h)
    rv = inst._rv
    args = job.args
    if rv is not None:
        rv[:] = inst._rv_template
        if inst.is_64_bit:
            for reg, v in zip(ARG_REGS, args, strict=False):
                rv[reg] = v
        else:  # Latest32 registers hold sign-extended values
            for reg, v in zip(ARG_REGS, args, strict=False):
                rv[reg] = v | _HIGH32 if v & _SIGN32 else v
        ops.pvm_instance_set_next_pc(h, job.pc)
        raw._finished = False
    else:
        raw.prepare_call(job.pc, args)
    if inst._metered:
        ops.pvm_instance_set_gas(h, DEFAULT_GAS if job.gas is None else job.gas)
    inst.caller.user_data = job.user_data
    inst._busy = True   # guards against re-entrant Instance.call from a host function


def _failed(error: PvmError, cause: BaseException | None) -> Stop:
    if cause is not None:
        error.__cause__ = cause
    return Stop(_K_FAILED, error=error)


DEFAULT_CHECKPOINT_INTERVAL = 100e-6
"""Seconds of guest or sync host-function work between two trio checkpoints."""

DEFAULT_CHECKPOINT_EVERY = 256
"""Sync host calls served inline between two trio checkpoints (at most)."""

_PENDING = int(lib.PVM_INT_PENDING)   # a sandboxed run still going (see SandboxWorker)
_HOSTCALL = int(lib.PVM_CALL_HOSTCALL)  # pvm_instance_call: 8 + hostcall number
_CALL = lib.pvm_instance_call           # registers of a call with <= 2 arguments, then run
_RESUME = lib.pvm_instance_resume       # run; an ecalli as _HOSTCALL + its number
_clock = time.perf_counter
_PENDING_STOP = Stop(_K_INTERRUPTED)   # internal marker, never returned to the executor
_USE_BEGIN = Stop(_K_INTERRUPTED)      # begin_nowait: use begin_rest (the helper thread)
_CHECKPOINT = Stop(_K_INTERRUPTED)     # internal: _drive owes the loop a checkpoint first


def begin_done(stop: Stop | None) -> bool:
    """Whether what :meth:`LoopWorker.begin_nowait` returned is the step's stop."""
    return stop is not None and stop is not _PENDING_STOP and stop is not _USE_BEGIN
_SLICE_TARGET = 0.5e-3      # aim for slices of about this many seconds (loop latency)
_MIN_SLICE = 1 << 12

# When this thread's event loop last got control back from a LoopWorker: shared
# by every worker on the thread, so k workers taking turns still yield every
# interval (not every k intervals).
_last_yield = threading.local()


def _yield_deadline_now(interval: float) -> float:
    """When the loop is owed a checkpoint (perf_counter seconds), no clock read
    unless this thread has none yet."""
    try:
        t: float = _last_yield.t
    except AttributeError:
        _last_yield.t = t = time.perf_counter()
    return t + interval


def _yield_deadline(now: float, interval: float) -> float:
    """When the loop is owed a checkpoint (perf_counter seconds)."""
    t: float | None = getattr(_last_yield, "t", None)
    if t is None:
        _last_yield.t = t = now
    return t + interval


class LoopWorker(Worker):
    """An in-process worker that runs its guests on the trio loop thread itself.

    No thread between the calling task and the guest: :meth:`begin`/:meth:`resume`
    run the C core directly (one cffi call per gas slice) in the calling task, and
    serve sync host functions inline, right where the guest stopped (the cost of
    the synchronous API).  The loop is given back at a real trio checkpoint
    whenever ``checkpoint_interval`` seconds of work (guest slices and sync host
    calls) or ``checkpoint_every`` host calls have gone by since it last had
    control, so other tasks keep running and cancellation, deadlines and
    ``KeyboardInterrupt`` act at the next slice boundary or host call.  When
    nothing else could run then (:func:`loop_idle`), the checkpoint -- a full
    scheduler pass -- is skipped (counted in ``idle_skips``).  An
    ``async def`` host function (or async fallback) ends the step with a
    ``HOSTCALL`` stop: the executor awaits it in the calling task.

    Gas slices are those of :class:`ThreadWorker` (results and gas unchanged);
    their size adapts between ``min(slice_gas, 4096)`` and ``slice_gas`` so a
    slice takes about half a millisecond of loop time.

    A guest without gas metering cannot be sliced: it could hold the loop
    forever.  Such calls go to a helper :class:`ThreadWorker` that this worker
    starts with itself (idle otherwise), with that worker's semantics: a cancel
    abandons the thread and the executor replaces this worker.

    ``max_instances`` instances are kept (one per module/linker pair, least
    recently used dropped first); each call starts from the module's initial
    memory image.
    """

    def __init__(self, *, slice_gas: int = DEFAULT_SLICE_GAS, max_instances: int = 8,
                 name: str | None = None,
                 checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
                 checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY):
        if slice_gas < 1:
            raise ValueError(f"slice_gas must be >= 1, got {slice_gas}")
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        self.name = name or f"pvm-worker-{next(_names)}"
        self.slice_gas = slice_gas
        self.max_instances = max(1, max_instances)
        self.checkpoint_interval = checkpoint_interval
        self.checkpoint_every = checkpoint_every
        self._helper: ThreadWorker | None = self._make_helper()
        self._delegated = False  # the current call runs on the helper thread
        self._instances = InstanceCache(self.max_instances, self._close_instance)
        self._inst: Instance | None = None
        self._inst_pre: InstancePre | None = None   # what self._inst was taken for
        self._job: Job | None = None
        self._ready = False      # started and not closed
        self._slice = min(slice_gas, DEFAULT_SLICE_GAS)
        self._min_slice = min(slice_gas, _MIN_SLICE)
        self._host_calls = 0     # sync host calls since the last checkpoint
        self._pending = (0, 0)   # gas before a sandboxed run that is still going, slice armed
        self._stepping = False
        self._interrupt = False
        self._started = False
        self._closed = False
        self._calls = 0
        self._interrupted = 0
        self.checkpoints = 0     # real trio checkpoints taken (statistics)
        self.idle_skips = 0      # checkpoints owed but skipped: the loop was idle (loop_idle)

    def _make_helper(self) -> ThreadWorker | None:
        """The thread that runs this worker's unmetered guests."""
        return ThreadWorker(slice_gas=self.slice_gas, max_instances=self.max_instances,
                            name=self.name)

    # ---- lifecycle ----
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._helper is not None:
            await self._helper.start()
        self._ready = not self._closed

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ready = False
        if self._helper is not None:
            await self._helper.aclose()
        self._instances.clear()
        self._inst = None
        self._inst_pre = None

    def _close_instance(self, inst: Instance) -> None:
        inst.raw.close()

    def health(self) -> WorkerHealth:
        helper = self._helper.health() if self._helper is not None else None
        alive = self._started and not self._closed and (helper is None or helper.alive)
        busy = self._stepping or (helper is not None and helper.busy)
        interrupted = self._interrupted + (helper.interrupted if helper is not None else 0)
        return WorkerHealth(self.name, alive, busy, self._calls, interrupted,
                            helper.detail if helper is not None else "")

    # ---- the protocol ----
    def interruptible(self, job: Job) -> bool:
        return job.pre.module.gas_metering or (
            self._helper is not None and self._helper.interruptible(job))

    def interrupt(self) -> None:
        if self._delegated and self._helper is not None:
            self._helper.interrupt()
        elif self._stepping:
            self._interrupt = True

    @property
    def caller(self) -> Caller:
        if self._delegated and self._helper is not None:
            return self._helper.caller
        if self._inst is None:
            raise ExecutionError(f"{self.name} has no call in progress")
        return self._inst.caller

    def begin_nowait(self, job: Job) -> Stop | None:
        """:meth:`begin` up to its first await, in the calling task: returns the
        first stop when the guest got there without waiting, else something
        :meth:`begin_rest` takes (``None``: the loop is owed a checkpoint first,
        or an internal marker).  ``stop = w.begin_nowait(job)`` then, unless
        ``stop`` is a final or ``HOSTCALL`` stop (:func:`begin_done`),
        ``stop = await w.begin_rest(job, stop)`` is ``await w.begin(job)``
        without the coroutine layers (the executor's fast path)."""
        if self._stepping or not self._ready:
            if not self._started or self._closed:
                raise ExecutionError(f"{self.name} is not running")
            raise ExecutionError(f"{self.name} is already running a step")
        pre = job.pre
        inst = self._inst
        if inst is not None and self._inst_pre is pre:   # the instance of the last call
            fresh = False
        else:
            if not pre.module.gas_metering and self._helper is not None:
                return _USE_BEGIN
            inst, fresh = self._instances.get(pre, self._setup_instance)
            if self._inst is not inst:
                if self._inst is not None:
                    self._inst._busy = False
                self._inst = inst
            self._inst_pre = pre
        self._calls += 1
        self._delegated = False
        self._job = job
        self._interrupt = False
        args = job.args
        rv = inst._rv
        gv = inst._gv
        ops = inst._ops
        if ops is not lib or rv is None or gv is None or len(args) > 2:
            _prepare(inst, job, fresh)
            return self._step(None)
        now = _clock()
        if now >= _yield_deadline_now(self.checkpoint_interval):
            if not loop_idle(now):   # owed a real checkpoint first
                _prepare(inst, job, fresh)
                return self._step(None)
            self.idle_skips += 1
            _last_yield.t = now
            self._host_calls = 0
        # The common case in one C call that sets the registers and runs
        # (pvm_instance_call), the first gas slice armed before it.
        h = inst._h
        if not fresh:
            ops.pvm_instance_reset_memory(h)
        metered = inst._metered
        if metered:
            g = DEFAULT_GAS if job.gas is None else job.gas
            armed = self._slice
            if g > armed:  # arm one slice, hold the rest of the budget back
                gv[0] = armed
            else:
                armed = 0
                gv[0] = g
        else:
            g = armed = 0
        inst.caller.user_data = job.user_data
        inst._busy = True
        raw = inst.raw
        raw._finished = False
        n = len(args)
        self._stepping = True
        try:
            r = _CALL(h, job.pc, args[0] if n else 0, args[1] if n == 2 else 0)
        finally:
            self._stepping = False
        if r == _FINISHED:
            gas_left = 0
            if metered:
                gas_left = gv[0]
                if armed:
                    gas_left += g - armed   # the true remaining gas again
                    gv[0] = gas_left
            raw._finished = True
            inst._busy = False
            self._job = None
            return Stop(_K_FINISHED, -1, None, rv[7] & inst._mask, gas_left)
        self._pending = (g, armed)
        if r == _PENDING:
            return _PENDING_STOP
        return self._step(_ECALLI if r >= _HOSTCALL else int(r))

    async def begin_rest(self, job: Job, stop: Stop | None) -> Stop:
        """Finishes a :meth:`begin_nowait` that returned ``stop`` (not done)."""
        if stop is _USE_BEGIN:
            self._calls += 1
            self._delegated = True
            assert self._helper is not None
            return await self._helper.begin(job)
        return await self._drive(stop)

    async def begin(self, job: Job) -> Stop:
        stop = self.begin_nowait(job)
        if stop is None or stop is _PENDING_STOP or stop is _USE_BEGIN:
            return await self.begin_rest(job, stop)
        return stop

    async def resume(self) -> Stop:
        if self._delegated and self._helper is not None:
            return await self._helper.resume()
        if self._job is None:
            raise ExecutionError(f"{self.name} has no call to resume")
        if self._stepping:
            raise ExecutionError(f"{self.name} is already running a step")
        return await self._drive(None, first=True)

    async def reset(self) -> None:
        if self._closed:
            raise ExecutionError(f"{self.name} cannot be reset: closed")
        if self._stepping:
            raise ExecutionError(f"{self.name} cannot be reset while a step runs")
        if self._delegated and self._helper is not None:
            self._delegated = False
            await self._helper.reset()
            return
        inst = self._inst
        if inst is not None:
            inst._busy = False
            inst.caller.user_data = None
        self._job = None

    # ---- running on the loop ----
    def _setup_instance(self, inst: Instance) -> None:
        """Prepares a new instance for this worker (nothing in-process)."""

    def _discard(self, inst: Instance) -> None:
        """Drops ``inst`` (its sandbox worker died)."""
        self._instances.discard(inst)
        if self._inst is inst:
            self._inst = None
            self._inst_pre = None

    def _step(self, resumed: int | None) -> Stop | None:
        """One :meth:`_run` with the bookkeeping of its stop."""
        self._stepping = True
        try:
            stop = self._run(resumed)
        finally:
            self._stepping = False
        if stop is not None and stop is not _PENDING_STOP:
            if stop.kind is _K_INTERRUPTED:
                self._interrupted += 1
            elif stop.kind is not _K_HOSTCALL:
                self._job = None
        return stop

    async def _drive(self, stop: Stop | None = None, first: bool = False) -> Stop:
        """Runs the guest in this task until a stop the executor must see,
        checkpointing in between as the budget says.  ``stop``: what a step
        already taken returned (``None`` with ``first``: nothing taken yet)."""
        if stop is None and not first:
            stop = _CHECKPOINT
        while True:
            if stop is None:
                stop = self._step(None)
            if stop is _PENDING_STOP:
                stop = self._step(await self._wait())
                continue
            if stop is not None and stop is not _CHECKPOINT:
                return stop
            now = _clock()
            if loop_idle(now):   # nothing else could run: no scheduler pass
                self.idle_skips += 1
                _last_yield.t = now
                self._host_calls = 0
                stop = None
                continue
            self.checkpoints += 1
            try:
                await trio.lowlevel.checkpoint()
            except BaseException:
                self._interrupted += 1   # cancelled (or interrupted) between two slices
                raise
            finally:
                _last_yield.t = _last_yield.real = time.perf_counter()
                self._host_calls = 0
            stop = None

    async def _wait(self) -> int:
        """Awaits the end of a run that returned ``_PENDING`` (sandbox workers)."""
        raise ExecutionError(f"{self.name}: a run of an in-process instance cannot be pending")

    def _run(self, resumed: int | None = None) -> Stop | None:
        """Slices and inline sync host calls until the guest stops for good, an
        async host function is due (a ``HOSTCALL`` stop), the loop is owed a
        checkpoint (``None``) or (sandboxed) the worker process is still busy
        (``_PENDING``: await it, then call again with the kind it ended with)."""
        inst = self._inst
        job = self._job
        assert inst is not None and job is not None
        ops, h = inst._ops, inst._h
        run = ops.pvm_instance_run
        # the hostcall number folded into the result (no second C call)
        resume = _RESUME if ops is lib else None
        n = -1
        gv = inst._gv
        pre = job.pre
        handlers = pre.handlers
        async_handlers = pre.async_handlers
        nhandlers = len(handlers)
        caller = inst.caller
        metered = inst._metered
        clock = time.perf_counter
        last = clock()
        deadline = _yield_deadline(last, self.checkpoint_interval)
        if resumed is None and last >= deadline:
            return None
        budget = self.checkpoint_every - self._host_calls  # host calls left before a checkpoint
        while True:
            if resumed is None:
                if self._interrupt:
                    inst._busy = False
                    return _INTERRUPTED
                if metered:
                    g = gv[0] if gv is not None else int(ops.pvm_instance_gas(h))
                    armed = self._slice
                    if g > armed:  # arm one slice, hold the rest of the budget back
                        if gv is not None:
                            gv[0] = armed
                        else:
                            ops.pvm_instance_set_gas(h, armed)
                    else:
                        armed = 0
                else:   # (sandboxed) unmetered: one run until it stops or is killed
                    g = armed = 0
                if resume is not None:
                    kind = resume(h)
                    if kind >= _HOSTCALL:
                        n = kind - _HOSTCALL
                        kind = _ECALLI
                else:
                    kind = run(h)
                if kind == _PENDING:
                    self._pending = (g, armed)
                    self._host_calls = self.checkpoint_every - budget
                    return _PENDING_STOP
            else:
                kind = resumed
                resumed = None
                g, armed = self._pending
            if armed:
                if gv is not None:
                    left = gv[0]
                    gv[0] = left + g - armed   # the true remaining gas again
                else:
                    left = int(ops.pvm_instance_gas(h))
                    ops.pvm_instance_set_gas(h, left + g - armed)
                if kind == _NOT_ENOUGH_GAS:  # the slice ran out, not the budget
                    now = clock()
                    if left == armed:   # no block fitted in the slice: the next one is bigger
                        self._slice = 2 * armed
                    elif now - last > 2 * _SLICE_TARGET and armed > self._min_slice:
                        self._slice = max(self._min_slice, armed >> 1)
                    elif now - last < _SLICE_TARGET / 2 and armed < self.slice_gas:
                        self._slice = min(self.slice_gas, 2 * armed)
                    if now >= deadline:
                        if not loop_idle(now):
                            self._host_calls = self.checkpoint_every - budget
                            return None
                        deadline = self._idle_skip(now)
                        budget = self.checkpoint_every
                    last = now
                    continue
            if kind == _ECALLI:
                if n < 0:
                    n = ops.pvm_instance_ecalli(h)
                if n < nhandlers and async_handlers[n] is None:
                    caller.hostcall = n
                    try:
                        handlers[n](caller)
                    except Exception as exc:
                        return self._host_failed(inst, job, exc, pre.names[n])
                elif n >= nhandlers and pre.async_fallback is None:
                    if pre.fallback is None:
                        inst._busy = False
                        return _failed(Trap(_pc(inst), export_name(job),
                                            f"ecalli {n} is outside the import table "
                                            f"({nhandlers} imports)"), None)
                    caller.hostcall = n
                    try:
                        pre.fallback(caller, n)
                    except Exception as exc:
                        return self._host_failed(inst, job, exc, None)
                else:  # an async host function: the executor awaits it
                    self._host_calls = self.checkpoint_every - budget
                    return Stop(_K_HOSTCALL, hostcall=int(n), pc=_pc(inst))
                n = -1
                budget -= 1
                last = clock()
                if budget <= 0 or last >= deadline:
                    if not loop_idle(last):
                        return None
                    deadline = self._idle_skip(last)
                    budget = self.checkpoint_every
                continue
            if kind == _FINISHED:
                self._host_calls = self.checkpoint_every - budget
                if ops is lib:
                    inst.raw._finished = True
                inst._busy = False
                rv = inst._rv
                value = (rv[7] if rv is not None else int(ops.pvm_instance_reg(h, 7))) & inst._mask
                return Stop(_K_FINISHED, -1, None, value,
                            int(ops.pvm_instance_gas(h)) if metered else 0)
            try:
                inst._interrupt(kind, job.export)  # returns to resume (step, page mapped)
            except PvmError as exc:
                inst._busy = False
                gas_left = int(ops.pvm_instance_gas(h)) if metered else 0
                if isinstance(exc, SandboxError):
                    self._discard(inst)   # its worker process is gone
                return Stop(_K_FAILED, error=exc, gas_left=gas_left)
            last = clock()

    def _idle_skip(self, now: float) -> float:
        """A checkpoint owed at ``now`` is skipped (:func:`loop_idle` said
        nothing else could run): returns when the next one is owed."""
        self.idle_skips += 1
        self._host_calls = 0
        _last_yield.t = now
        return now + self.checkpoint_interval

    @staticmethod
    def _host_failed(inst: Instance, job: Job, exc: Exception, symbol: str | None) -> Stop:
        inst._busy = False
        error = host_failure(exc, symbol, export_name(job), _pc(inst))
        error.gas_left = inst.caller.gas   # the guest's gas when its host call failed
        return _failed(error, exc)


def _pc(inst: Instance) -> int | None:
    v = int(inst._ops.pvm_instance_pc(inst._h))
    return None if v < 0 else v


DEFAULT_SPIN = 10e-6
"""Seconds the loop spins for a sandbox worker before it awaits its descriptor."""

DEFAULT_EXTRA_SPIN = 200e-6
"""At most this many more seconds the loop spins for a sandbox worker when no
other trio task is runnable and no other worker's run is awaited (adaptive:
about twice what runs lately took past the first spin; none once that average
passes this bound)."""

_EXTRA_SPIN_MIN = 20e-6


IDLE_MAX_GAP = 5e-3
"""A loop found idle (:func:`loop_idle`) still gets a real checkpoint at least
this often (seconds): a safety net for anything the idle check cannot see."""

_IDLE_MAX_TASKS = 64   # more tasks than this: no scan, a real checkpoint


def loop_idle(now: float) -> bool:
    """Whether a checkpoint the loop is owed now (``now``: ``perf_counter``)
    would let nothing but the calling task run, so it can be skipped: the
    calling task is not cancelled; no task is runnable (trio's run queue, and
    the tasks of the batch now running, which are no longer in that queue but
    still hold what resumes them); no ``run_sync_soon`` callback or
    ``KeyboardInterrupt`` is pending; no cancel-scope deadline or timer has
    passed; none of the descriptors trio waits on is ready (its epoll
    descriptor polled, without taking its events); and a real checkpoint was
    taken within :data:`IDLE_MAX_GAP`.  Otherwise -- also outside trio, with
    more than 64 tasks, or another trio -- ``False`` (take the checkpoint)."""
    try:
        ctx = _trio_run.GLOBAL_RUN_CONTEXT
        runner = ctx.runner
        if runner.runq or ctx.task._cancel_status.effectively_cancelled or runner.ki_pending:
            return False
        state = _last_yield
        if now - getattr(state, "real", now) > IDLE_MAX_GAP:
            return False
        entry = runner.entry_queue
        if entry.queue or entry.idempotent_queue:
            return False
        tasks = runner.tasks
        if len(tasks) > _IDLE_MAX_TASKS:
            return False
        for t in tasks:
            if t._next_send_fn is not None:   # in the batch now running
                return False
        heap = runner.deadlines._heap   # (deadline, id, scope); stale entries only
        if heap:                        # make this answer "not idle" more often
            clock = runner.clock
            at = (clock.offset + now  # type: ignore[attr-defined]
                  if type(clock) is _SystemClock else clock.current_time())
            if heap[0][0] <= at:
                return False
        io = runner.io_manager
        waiting = io._registered   # descriptors some task waits on
        if not waiting:
            return True
        poller = getattr(state, "poller", None)
        if poller is None or poller[0]() is not runner:   # (a weak reference: a finished
            p = select.poll()                             # run is not kept alive)
            p.register(io._epoll.fileno(), select.POLLIN)
            state.poller = poller = (weakref.ref(runner), p, entry.wakeup.wakeup_sock.fileno())
        if len(waiting) == 1 and poller[2] in waiting:
            # only the run_sync_soon task waits, and its queues are empty (a
            # signal's wake-up byte alone waits for IDLE_MAX_GAP at most)
            return True
        return not poller[1].poll(0)   # a system call: only when tasks wait on I/O
    except (AttributeError, OSError, ValueError):
        return False


def _others_runnable() -> bool:
    """Whether another trio task waits to run on this loop (then the loop must
    not spin for a worker).  Trio's run queue: a hint, as the tasks of the batch
    now running are no longer in it (so the extra spin also requires that no
    other worker's run is being awaited, and stays bounded); when it cannot be
    read, assume there is one (no spinning)."""
    try:
        return bool(_trio_run.GLOBAL_RUN_CONTEXT.runner.runq)
    except AttributeError:
        return True

_WATCHDOG_PERIOD = 0.25   # seconds between checks of a worker awaited for long (stall, death)
_RESET_TIMEOUT = 2.0      # a cancelled run that does not end by then: the process is killed


class SandboxWorker(LoopWorker):
    """A worker whose guests run in Linux sandbox processes (the JIT with
    ``sandbox="linux"``), driven from the trio loop thread with no thread in
    between.

    The calling task posts each run to the worker process through the shared
    control page and spins for it in C for at most ``spin`` seconds (a host
    call's round trip is a few microseconds); a run still going after that is
    awaited on a descriptor the trio loop polls (the worker writes an eventfd
    when it finishes; a pidfd reports its death), so any number of workers run
    guests on other cores while the loop serves the others' host calls.  When
    the loop has nothing else to do (no other task runnable, no other worker's
    run awaited) it first spins on for up to ``max_extra_spin`` seconds,
    adaptively: about twice what runs lately took past the first spin, and not
    at all once that average passes the bound (compute-bound calls).  The
    worker process spins about 100 µs after each stop before it sleeps, so
    the next request usually costs no wake-up.  Sync host functions run inline
    in the calling task, async ones are awaited, and checkpoints are taken as
    in :class:`LoopWorker`.

    Cancellation does not wait for the guest: the call returns at once and
    :meth:`reset` (in the executor's background) collects the run at its next
    gas-slice boundary -- or kills the process when the guest is unmetered or
    does not stop within a couple of seconds.  A worker process that dies
    fails only the call it runs (:class:`~executor.errors.SandboxError`); its
    instance is dropped and the next call gets a fresh process.
    """

    def __init__(self, *, spin: float = DEFAULT_SPIN, max_extra_spin: float = DEFAULT_EXTRA_SPIN,
                 **kwargs: Any):
        if max_extra_spin < 0:
            raise ValueError(f"max_extra_spin must be >= 0, got {max_extra_spin}")
        self.spin_ns = max(1, int(spin * 1e9))
        self.max_extra_spin = max_extra_spin
        self.late = 0.0          # average seconds a run went on after the first spin
        self.extra_spins = 0     # waits that spun on first (statistics)
        self._fds: dict[int, int] = {}
        self._abandoned: Instance | None = None   # cancelled mid-run, not collected yet
        super().__init__(**kwargs)

    def _make_helper(self) -> ThreadWorker | None:
        return None   # unmetered guests run in the sandbox too (a cancel kills the process)

    def interruptible(self, job: Job) -> bool:
        return True

    def _setup_instance(self, inst: Instance) -> None:
        fd = int(lib.pvm_sandbox_set_async(inst._h, self.spin_ns))
        if fd < 0:
            raise SandboxError(f"{self.name}: the instance does not run in a sandbox worker")
        self._fds[id(inst)] = fd

    def _close_instance(self, inst: Instance) -> None:
        self._fds.pop(id(inst), None)
        if self._abandoned is inst:
            self._abandoned = None
        inst.raw.close()   # a run still in flight: C kills the process first

    async def _wait(self) -> int:
        inst = self._inst
        assert inst is not None
        h = inst._h
        t0 = _clock()
        late = self.late
        loop = _last_yield
        others = getattr(loop, "pending", 0)   # other workers' runs the loop awaits
        if late < self.max_extra_spin and not others and loop_idle(t0):
            # Nothing else for the loop to do: spin on (in C, bounded) for about
            # as long as runs have lately taken past the first spin, rather
            # than pay a sleep, an eventfd write and a scheduler pass.
            self.extra_spins += 1
            kind = int(lib.pvm_sandbox_continue(
                h, int(min(self.max_extra_spin, 2 * late + _EXTRA_SPIN_MIN) * 1e9)))
            if kind != _PENDING:
                self._ran_late(t0)
                return kind
        fd = self._fds[id(inst)]
        spin = self.spin_ns
        loop.pending = others + 1
        try:
            while True:
                try:
                    with trio.move_on_after(_WATCHDOG_PERIOD):
                        await trio.lowlevel.wait_readable(fd)
                except BaseException:
                    self._abandoned = inst    # the guest goes on; reset() collects it
                    self._interrupted += 1
                    raise
                finally:
                    _last_yield.t = _last_yield.real = time.perf_counter()
                kind = int(lib.pvm_sandbox_continue(h, spin))
                if kind != _PENDING:
                    self._ran_late(t0)
                    return kind
        finally:
            loop.pending -= 1

    def _ran_late(self, t0: float) -> None:
        """A run awaited since ``t0`` (past the first spin) ended: the running
        average of how long runs go on after the first spin (weight 1/8)."""
        late = self.late
        self.late = late + (_clock() - t0 - late) * 0.125

    async def reset(self) -> None:
        inst = self._abandoned
        if inst is not None and not self._closed:
            self._abandoned = None
            await self._collect(inst)
        await super().reset()

    async def _collect(self, inst: Instance) -> None:
        """Ends the run a cancelled call left in the worker process: waits for
        its slice to end, or kills the process (unmetered, or too slow)."""
        h = inst._h
        if not inst._metered:
            inst.raw.worker.kill()
        fd = self._fds[id(inst)]
        with trio.move_on_after(_RESET_TIMEOUT):
            while lib.pvm_sandbox_inflight(h):
                with trio.move_on_after(_WATCHDOG_PERIOD):
                    await trio.lowlevel.wait_readable(fd)
                lib.pvm_sandbox_continue(h, self.spin_ns)
        if lib.pvm_sandbox_inflight(h) or not inst.raw.worker.alive:
            self._discard(inst)   # C kills a worker closed mid-run
