"""A trio executor: many concurrent export calls over a bounded pool of workers.

::

    import trio
    from executor import Engine, Linker, Module
    from executor.aio import Executor

    async def main() -> None:
        engine = Engine()
        module = Module(engine, "add.polkavm")
        linker = Linker()

        @linker.define("get_third_number")
        async def get_third_number(caller) -> int:   # plain or async def
            await trio.sleep(0.001)
            return 100

        async with Executor(engine, workers=4) as ex:
            assert await ex.call(module, "add", 1, 2, linker=linker, gas=10_000) == 103

    trio.run(main)

Each call runs on a fresh instance state (the module's initial memory image),
with the same results and the same typed errors as the synchronous
:meth:`Instance.call <executor.instance.Instance.call>`: :class:`~executor.errors.Trap`,
:class:`~executor.errors.OutOfGas`, :class:`~executor.errors.HostError`,
:class:`~executor.errors.MissingImport` (when linking), ...

**Workers and backpressure.**  The executor owns ``workers`` :class:`~executor.workers.Worker`
objects (default: one per core), each running one call at a time.  A call waits
(FIFO) for a free worker; nothing is dropped.

**Where the guest runs.**  In-process backends (the interpreter, the JIT with
``sandbox=None``) run on the trio loop thread itself, in the calling task
(:class:`~executor.workers.LoopWorker`): one cffi call per gas slice, sync host
functions served inline where the guest stopped (the synchronous API's cost),
and a real trio checkpoint whenever about 100 µs of work or 256 host calls have
gone by, so other tasks keep running (skipped while no other task could run:
no runnable task, passed deadline, ready descriptor or pending callback; see
:func:`~executor.workers.loop_idle`).  Such calls share the loop's one core;
parallelism across cores comes from sandbox worker processes (the JIT in a
Linux sandbox) or, for in-process compute, from
``worker_factory=lambda i: ThreadWorker(...)`` (a thread per worker, each call
and host call crossing threads).

**Host calls.**  An ``async def`` host function is awaited in the calling task
while the guest stays paused at its ``ecalli``; a plain one runs inline in the
calling task.  ``host_calls="worker"`` runs plain (sync) host functions on a
worker thread instead (:class:`~executor.workers.ThreadWorker`; they must then be
thread-safe).

**Cancellation and deadlines.**  A trio cancel scope around ``call`` (or
``deadline=``/``timeout=``, which raise :class:`DeadlineExceeded`) stops the call:

* during an async host function: at its next checkpoint (trio's own cancellation);
* while the guest runs, metered: at the next checkpoint between gas slices or
  sync host calls (``slice_gas``, default ``2**21`` gas, is the largest slice;
  on the loop thread slices shrink to about half a millisecond).  Slicing does
  not change results or gas (see :mod:`executor.workers`);
* while the guest runs, unmetered: it cannot be sliced, so it never runs on
  the loop: in-process it runs on its worker's helper thread, and a cancel
  *abandons* that worker (the call is cancelled at once, a new worker replaces
  the old one, and the old thread exits when its guest next stops -- a guest
  that never stops keeps its thread busy for the life of the process); in a
  Linux sandbox worker the process is killed.

In every case the worker is reset (or replaced) before another call uses it.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import outcome
import trio

from executor.engine import Engine, Module
from executor.errors import ExecutionError, PvmError, Trap
from executor.instance import DEFAULT_GAS, ModuleLike
from executor.linker import InstancePre, Linker
from executor.workers import (
    _K_FAILED,
    _K_FINISHED,
    _K_HOSTCALL,
    _K_INTERRUPTED,
    DEFAULT_SLICE_GAS,
    HostCallMode,
    Job,
    LoopWorker,
    SandboxWorker,
    Stop,
    ThreadWorker,
    Worker,
    WorkerHealth,
    begin_done,
    export_name,
    host_failure,
)

__all__ = [
    "CallResult",
    "DeadlineExceeded",
    "Executor",
    "ExecutorStats",
    "Worker",
    "WorkerFactory",
    "default_worker_count",
]

WorkerFactory = Callable[[int], Worker]
"""Makes worker number ``i`` (also for replacements)."""

_MAX_LINKS = 256


class DeadlineExceeded(PvmError, trio.TooSlowError):
    """A call passed its ``deadline``/``timeout`` (queueing time included)."""

    def __init__(self, function: str, deadline: float):
        self.function = function
        self.deadline = deadline
        super().__init__(f"call to {function} passed its deadline")


@dataclass(frozen=True)
class CallResult:
    """A finished call: ``value`` (``a0``), ``gas_used`` and ``gas_left``
    (both 0 without metering; host charges included)."""

    value: int
    gas_used: int
    gas_left: int


@dataclass(frozen=True)
class ExecutorStats:
    """Counters of an :class:`Executor`."""

    workers: int            # pool size
    free: int               # idle workers
    waiting: int            # calls waiting for a worker
    calls: int              # calls made (linked and checked)
    failed: int             # calls that raised (errors, cancellations, deadlines)
    cancelled: int          # calls that ended by cancellation (deadlines included)
    replaced: int           # workers replaced (abandoned, broken)
    recycling: int          # workers being reset or replaced after an unclean call
    health: tuple[WorkerHealth, ...]


def default_worker_count() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Link:
    __slots__ = ("module", "linker", "pre", "generation")

    def __init__(self, module: Module, linker: Linker | None, pre: InstancePre):
        self.module = module
        self.linker = linker
        self.pre = pre
        self.generation = -1 if linker is None else linker.generation


class Executor:
    """Runs export calls on a pool of workers from trio tasks (see the module docstring).

    ``engine``: modules called must come from it (or an engine of equal config).
    ``workers``: pool size (default :func:`default_worker_count`).
    ``worker_factory``: ``f(i) -> Worker`` (default: a
    :class:`~executor.workers.SandboxWorker` for an engine whose JIT runs in Linux
    sandbox workers, else a :class:`~executor.workers.LoopWorker`, with ``slice_gas``;
    with ``host_calls="worker"`` a :class:`~executor.workers.ThreadWorker`).
    """

    def __init__(self, engine: Engine, workers: int | None = None, *,
                 worker_factory: WorkerFactory | None = None,
                 slice_gas: int = DEFAULT_SLICE_GAS, host_calls: HostCallMode = "trio"):
        n = default_worker_count() if workers is None else workers
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        self.engine = engine
        self.size = n
        if host_calls not in ("trio", "worker"):
            raise ValueError(f"host_calls must be 'trio' or 'worker', got {host_calls!r}")
        if slice_gas < 1:
            raise ValueError(f"slice_gas must be >= 1, got {slice_gas}")
        if worker_factory is None:
            sandboxed = getattr(engine, "sandbox", None) == "linux"

            def worker_factory(i: int) -> Worker:
                if host_calls == "trio":
                    cls = SandboxWorker if sandboxed else LoopWorker
                    return cls(slice_gas=slice_gas, name=f"pvm-worker-{i}")
                return ThreadWorker(slice_gas=slice_gas, host_calls=host_calls,
                                    name=f"pvm-worker-{i}")
        self._factory = worker_factory
        self._workers: list[Worker] = []
        # free workers (the last one given back is taken first: its instances
        # and its spinning process are warm) and the calls waiting for one, FIFO
        self._free: list[Worker] = []
        self._waiters: deque[trio.lowlevel.Task] = deque()
        self._last_pre: tuple[Any, Any, int, InstancePre] | None = None
        self._nursery: trio.Nursery | None = None
        self._nursery_cm: Any = None
        self._links: OrderedDict[tuple[int, int], _Link] = OrderedDict()
        self._open = False
        self._closed = False
        self._next_index = n
        self._waiting = 0
        self._calls = 0
        self._failed = 0
        self._cancelled = 0
        self._replaced = 0
        self._recycling = 0
        self._settled = trio.Event()
        self._settled.set()

    # ---- lifecycle ----
    async def __aenter__(self) -> Executor:
        if self._open or self._closed:
            raise ExecutionError("an Executor can be entered once")
        self._nursery_cm = trio.open_nursery()
        self._nursery = await self._nursery_cm.__aenter__()
        try:
            workers = [self._factory(i) for i in range(self.size)]
            async with trio.open_nursery() as starting:
                for w in workers:
                    starting.start_soon(w.start)
            self._workers = workers
            self._free.extend(reversed(workers))
        except BaseException as exc:
            for w in self._workers:
                with trio.CancelScope(shield=True):
                    await w.aclose()
            await self._nursery_cm.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._open = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        self._open = False
        self._closed = True
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()   # pending replacements
        with trio.CancelScope(shield=True):
            for w in list(self._workers):
                await w.aclose()
        self._workers.clear()
        self._free.clear()
        while self._waiters:   # calls still waiting for a worker fail
            trio.lowlevel.reschedule(self._waiters.popleft(), outcome.Error(
                ExecutionError("the executor closed while the call waited for a worker")))
        result: bool | None = await self._nursery_cm.__aexit__(exc_type, exc, tb)
        return result

    # ---- calls ----
    async def call(self, module: Module | InstancePre, export: str | int, *args: int,
                   linker: Linker | None = None, gas: int | None = None,
                   deadline: float | None = None, timeout: float | None = None,
                   user_data: Any = None) -> int:
        """Calls ``export`` of ``module`` with register arguments; returns ``a0``.

        ``module`` is a :class:`~executor.module.Module` (imports resolved with
        ``linker``, once per module/linker pair, again after the linker changes)
        or an :class:`~executor.linker.InstancePre`.  ``gas`` is the budget
        (default ``DEFAULT_GAS``).  ``deadline`` (trio clock) and ``timeout``
        (seconds) bound the whole call, queueing included: past them it raises
        :class:`DeadlineExceeded`.  ``user_data`` is ``caller.user_data``."""
        if deadline is None and timeout is None and self._open:   # the common case, inline
            pre = self._pre(module, linker)
            job = Job(pre, _export_pc(pre.module, export),
                      _check_args(pre.module, args) if args else (), gas, export, user_data)
            got = self._begin_here(job)
            if got is None:
                return (await self._run(job)).value   # a FINISHED stop
            first = got[1]
            if first is not None and first.kind is _K_FINISHED:
                return first.value
            return (await self._run_rest(got[0], job, first)).value
        result = await self.call_result(module, export, *args, linker=linker, gas=gas,
                                        deadline=deadline, timeout=timeout,
                                        user_data=user_data)
        return result.value

    async def call_result(self, module: Module | InstancePre, export: str | int, *args: int,
                          linker: Linker | None = None, gas: int | None = None,
                          deadline: float | None = None, timeout: float | None = None,
                          user_data: Any = None) -> CallResult:
        """Like :meth:`call`, returning a :class:`CallResult` (value and gas)."""
        if not self._open:
            raise ExecutionError("the executor is not running (use 'async with Executor(...)')")
        pre = self._pre(module, linker)
        job = Job(pre, _export_pc(pre.module, export), _check_args(pre.module, args), gas,
                  export, user_data)
        if timeout is not None:
            until = trio.current_time() + timeout
            deadline = until if deadline is None else min(deadline, until)
        if deadline is None:
            got = self._begin_here(job)
            if got is None:
                stop = await self._run(job)
            elif got[1] is not None and got[1].kind is _K_FINISHED:
                stop = got[1]
            else:
                stop = await self._run_rest(got[0], job, got[1])
        else:
            with trio.CancelScope(deadline=deadline) as scope:
                stop = await self._run(job)
            if scope.cancelled_caught:
                raise DeadlineExceeded(export_name(job), deadline)
        if job.pre.module.gas_metering:
            used = (DEFAULT_GAS if job.gas is None else job.gas) - stop.gas_left
            return CallResult(stop.value, used, stop.gas_left)
        return CallResult(stop.value, 0, stop.gas_left)

    def _begin_here(self, job: Job) -> tuple[Worker, Stop | None] | None:
        """When a loop (or sandbox) worker is free and nobody waits: takes it and
        begins ``job`` in this task without an await; returns the worker and what
        ``begin_nowait`` returned (a FINISHED stop: the worker is free again, no
        coroutine was needed), else ``None`` (use :meth:`_run`)."""
        free = self._free
        if not free or self._waiters or type(free[-1]).begin is not _LOOP_BEGIN:
            return None
        worker = free.pop()
        self._calls += 1
        try:
            first: Stop | None = worker.begin_nowait(job)   # type: ignore[attr-defined]
        except BaseException as exc:
            self._count_failure(exc)
            self._release(worker, False)
            raise
        if first is not None and first.kind is _K_FINISHED:
            free.append(worker)   # nobody waits: no await since it was taken
        return worker, first

    async def _run(self, job: Job) -> Stop:
        """Runs ``job`` on a worker; returns its FINISHED stop or raises."""
        self._calls += 1
        free = self._free
        if free and not self._waiters:   # FIFO: a free worker only when nobody waits
            worker = free.pop()
        else:
            worker = await self._acquire()
        if type(worker).begin is _LOOP_BEGIN:   # the guest runs in this task: no layers
            try:
                first = worker.begin_nowait(job)   # type: ignore[attr-defined]
            except BaseException as exc:
                self._count_failure(exc)
                self._release(worker, False)
                raise
            return await self._run_rest(worker, job, first)
        return await self._run_rest(worker, job, _BEGIN)

    async def _run_rest(self, worker: Worker, job: Job, first: Stop | None) -> Stop:
        """:meth:`_run` once ``worker`` was taken for ``job`` and its
        ``begin_nowait`` returned ``first`` (``_BEGIN``: not a loop worker)."""
        clean = False
        try:
            if first is _BEGIN:
                stop: Stop = await worker.begin(job)
            elif begin_done(first):
                assert first is not None
                stop = first
            else:
                stop = await worker.begin_rest(job, first)   # type: ignore[attr-defined]
            while stop.kind is _K_HOSTCALL:
                await trio.lowlevel.checkpoint_if_cancelled()
                try:
                    await self._service(worker, job, stop)
                except PvmError as exc:
                    if exc.gas_left is None:    # what the guest had when its host call failed
                        exc.gas_left = worker.caller.gas
                    raise
                stop = await worker.resume()
            clean = stop.kind is not _K_INTERRUPTED
            if stop.kind is _K_FINISHED:
                return stop
            if stop.kind is _K_FAILED:
                assert stop.error is not None
                if stop.error.gas_left is None:
                    stop.error.gas_left = stop.gas_left
                raise stop.error
            await trio.lowlevel.checkpoint()   # INTERRUPTED: the pending cancel raises here
            raise ExecutionError("the call was interrupted")
        except BaseException as exc:
            self._count_failure(exc)
            raise
        finally:
            self._release(worker, clean)

    async def _acquire(self) -> Worker:
        """Waits (FIFO) until a worker is handed to this call."""
        task = trio.lowlevel.current_task()
        self._waiters.append(task)
        self._waiting += 1

        def abort(raise_cancel: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            self._waiters.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        try:
            worker: Worker = await trio.lowlevel.wait_task_rescheduled(abort)
            return worker
        except BaseException as exc:
            self._count_failure(exc)
            raise
        finally:
            self._waiting -= 1

    def _give(self, worker: Worker) -> None:
        """A clean worker goes to the first waiting call, else to the free list."""
        if self._waiters:
            trio.lowlevel.reschedule(self._waiters.popleft(), outcome.Value(worker))
        else:
            self._free.append(worker)

    def _count_failure(self, exc: BaseException) -> None:
        self._failed += 1
        if isinstance(exc, trio.Cancelled):
            self._cancelled += 1

    async def _service(self, worker: Worker, job: Job, stop: Stop) -> None:
        """Runs the host function of a HOSTCALL stop in this task."""
        pre = job.pre
        n = stop.hostcall
        caller = worker.caller
        caller.hostcall = n
        if n < len(pre.handlers):
            try:
                handler = pre.async_handlers[n]
                if handler is not None:
                    await handler(caller)
                else:
                    pre.handlers[n](caller)
            except Exception as exc:
                raise host_failure(exc, pre.names[n], export_name(job), stop.pc) from exc
            return
        fallback = pre.async_fallback or pre.fallback
        if fallback is None:
            raise Trap(stop.pc, export_name(job),
                       f"ecalli {n} is outside the import table ({len(pre.handlers)} imports)")
        try:
            if pre.async_fallback is not None:
                await pre.async_fallback(caller, n)
            else:
                fallback(caller, n)
        except Exception as exc:
            raise host_failure(exc, None, export_name(job), stop.pc) from exc

    def _release(self, worker: Worker, clean: bool) -> None:
        """Gives the worker back now when it is clean, else resets or replaces it
        in the background (so a cancelled caller returns at once)."""
        if self._closed:
            return
        if clean:
            self._give(worker)
            return
        assert self._nursery is not None
        if self._recycling == 0:
            self._settled = trio.Event()
        self._recycling += 1
        self._nursery.start_soon(self._recycle, worker)

    async def settle(self) -> None:
        """Waits until every worker given back after an unclean call (a host
        error, a cancellation, a crash) has been reset or replaced: afterwards
        ``stats().free`` counts them again."""
        await self._settled.wait()

    async def _recycle(self, worker: Worker) -> None:
        try:
            await self._recycle_one(worker)
        finally:
            self._recycling -= 1
            if self._recycling == 0:
                self._settled.set()

    async def _recycle_one(self, worker: Worker) -> None:
        if worker.health().alive:
            try:
                await worker.reset()
            except PvmError:
                pass
            else:
                if worker.health().alive:
                    self._give(worker)
                    return
        await worker.aclose()
        index = self._next_index
        self._next_index += 1
        new = self._factory(index)
        await new.start()
        self._replaced += 1
        self._workers = [new if w is worker else w for w in self._workers]
        if self._closed:
            await new.aclose()
            return
        self._give(new)

    # ---- linking ----
    def _pre(self, module: Module | InstancePre, linker: Linker | None) -> InstancePre:
        last = self._last_pre
        if last is not None and last[0] is module and last[1] is linker and (
                linker is None or last[2] == linker.generation):
            return last[3]
        pre = self._pre_lookup(module, linker)
        self._last_pre = (module, linker, -1 if linker is None else linker.generation, pre)
        return pre

    def _pre_lookup(self, module: Module | InstancePre, linker: Linker | None) -> InstancePre:
        key = (id(module), id(linker))
        link = self._links.get(key)
        if link is not None and link.module is module and link.linker is linker and (
                linker is None or link.generation == linker.generation):
            self._links.move_to_end(key)
            return link.pre
        if isinstance(module, InstancePre):
            if linker is not None:
                raise ExecutionError("give a linker with a Module, not with an InstancePre")
            self._check_engine(module.module)
            return module
        if not isinstance(module, Module):
            raise TypeError(f"expected a Module or an InstancePre, got {type(module).__name__}")
        key = (id(module), id(linker))
        link = self._links.get(key)
        if link is not None and link.module is module and link.linker is linker and (
                linker is None or link.generation == linker.generation):
            self._links.move_to_end(key)
            return link.pre
        self._check_engine(module)
        pre = (linker if linker is not None else Linker()).instantiate_pre(module)
        self._links[key] = _Link(module, linker, pre)
        while len(self._links) > _MAX_LINKS:
            self._links.popitem(last=False)
        return pre

    def _check_engine(self, module: ModuleLike) -> None:
        engine = getattr(module, "engine", None)
        if engine is not self.engine and getattr(engine, "config", None) != self.engine.config:
            raise ExecutionError("the module was built by an engine with another configuration "
                                 f"({getattr(engine, 'config', None)!r})")

    # ---- state ----
    def stats(self) -> ExecutorStats:
        """Pool size, queue and call counters, and each worker's health."""
        return ExecutorStats(self.size, len(self._free),
                             self._waiting, self._calls, self._failed, self._cancelled,
                             self._replaced, self._recycling,
                             tuple(w.health() for w in self._workers))

    def __repr__(self) -> str:
        return f"Executor({self.engine!r}, workers={self.size})"


_LOOP_BEGIN = LoopWorker.begin
_BEGIN = Stop(_K_INTERRUPTED)   # _run_rest: the worker is not a loop worker, begin() it


def _export_pc(module: ModuleLike, export: str | int) -> int:
    if export.__class__ is str:
        pc = module.exports.get(export)
        if pc is not None:
            return int(pc)
    if isinstance(export, str):
        return module.export_pc(export)
    if isinstance(export, int) and not isinstance(export, bool) and 0 <= export < 1 << 32:
        return export
    raise ExecutionError(f"invalid export {export!r}")


def _check_args(module: ModuleLike, args: tuple[Any, ...]) -> tuple[int, ...]:
    """The register values of ``args``, checked as :meth:`Instance.call` does."""
    if len(args) > 9:
        raise ExecutionError(f"too many arguments: {len(args)} > 9 registers")
    mask = (1 << 64) - 1 if module.is_64_bit else (1 << 32) - 1
    out = []
    for a in args:
        if a.__class__ is int and 0 <= a <= mask:
            out.append(a)
            continue
        if isinstance(a, bool):
            out.append(int(a))
            continue
        if not isinstance(a, int):
            raise TypeError(f"export arguments are ints, got {type(a).__name__}")
        if not -((mask + 1) >> 1) <= a <= mask:
            hint = " (declare it as u64 with typed_func)" if not module.is_64_bit else ""
            raise ExecutionError(f"argument {a} does not fit a {mask.bit_length()}-bit "
                                 f"register{hint}")
        out.append(a & mask)
    return tuple(out)
