"""The trio executor (executor.aio) over every available backend: results and
errors equal to the synchronous API, async host functions, gas slices,
cancellation and deadlines, backpressure, isolation of failures and leaks."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import trio

from executor import (
    Caller,
    Config,
    Engine,
    ExecutionError,
    HostError,
    Linker,
    MissingImport,
    Module,
    OutOfGas,
    PvmError,
    Trap,
)
from executor.aio import CallResult, DeadlineExceeded, Executor
from executor.backends import available_backends
from executor.errors import GuestFault, SandboxError
from executor.instance import DEFAULT_GAS
from executor.tools.asm import assemble
from executor.workers import Job, Stop, StopKind, ThreadWorker, Worker, WorkerHealth
from tests.conftest import BLOBS
from tests.guests import RO_DATA, trampolines

BENCH = BLOBS / "c-guests" / "bench.polkavm"
ADD = BLOBS / "c-guests" / "add.polkavm"

MEMSET = assemble("""%isa = latest64
%stack_size = 4096
%rw_data_size = 65536
pub @fill:
    a0 = 0x20000
    a2 = 60000
    [a0..a0 + a2] = u8 a1
    a0 = a2
    ret
""")


ENGINES = available_backends() + (["jit-in-process"] if "jit" in available_backends() else [])


@pytest.fixture(params=available_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    """Every backend with its default configuration (the JIT in a Linux sandbox
    where available), and the JIT in-process."""
    if request.param == "jit-in-process":
        return Engine(Config(backend="jit", sandbox=None))
    return Engine(Config(backend=str(request.param)))


def sync_result(module: Module, export: str, *args: int, linker: Linker | None = None,
                gas: int | None = None) -> CallResult:
    inst = (linker or Linker()).instantiate(module)
    value = inst.call(export, *args, gas=DEFAULT_GAS if gas is None else gas)
    return CallResult(value, inst.gas_used, inst.gas)


def sync_error(module: Module, export: str, *args: int, linker: Linker | None = None,
               gas: int | None = None) -> PvmError:
    inst = (linker or Linker()).instantiate(module)
    with pytest.raises(PvmError) as info:
        inst.call(export, *args, gas=DEFAULT_GAS if gas is None else gas)
    return info.value


def same_error(a: BaseException, b: BaseException) -> None:
    assert type(a) is type(b)
    assert str(a) == str(b)
    for attr in ("pc", "gas", "symbol", "function"):
        assert getattr(a, attr, None) == getattr(b, attr, None), attr
    assert type(a.__cause__) is type(b.__cause__)


def trampoline_linker(*fns: Callable[..., Any]) -> Linker:
    linker = Linker()
    for i, fn in enumerate(fns):
        linker.define(f"host{i}", fn)
    return linker


# ---- results equal to the synchronous API ----

@pytest.mark.trio
async def test_results_and_gas_match_sync(engine: Engine) -> None:
    bench = Module(engine, BENCH)
    add = Module(engine, ADD)
    linker = Linker()
    linker.define("get_third_number", lambda caller: 100)
    async with Executor(engine, workers=2) as ex:
        for export, args in (("noop", ()), ("prime_sieve", (1,)), ("sha256_loop", (1000,))):
            assert await ex.call_result(bench, export, *args) == sync_result(bench, export, *args)
        assert await ex.call(add, "add", 1, 2, linker=linker) == 103
        assert await ex.call(add, "add", (1 << 64) - 1, 1, linker=linker, gas=10) == 100
        assert await ex.call_result(add, "add", 5, 6, linker=linker, gas=1000) == sync_result(
            add, "add", 5, 6, linker=linker, gas=1000)
        assert await ex.call(bench, bench.exports["noop"]) == 42   # export by pc


@pytest.mark.trio
async def test_each_call_starts_from_a_fresh_memory_image(engine: Engine) -> None:
    blob = assemble("""%isa = latest64
%stack_size = 4096
%rw_data_size = 4096
pub @bump:
    a1 = 0x20000
    a0 = u32 [a1]
    a0 = a0 + 1
    u32 [a1] = a0
    ret
""")
    module = Module(engine, blob)
    async with Executor(engine, workers=1) as ex:
        assert [await ex.call(module, "bump") for _ in range(3)] == [1, 1, 1]


@pytest.mark.trio
async def test_many_calls_on_few_workers_are_order_independent(engine: Engine) -> None:
    module = Module(engine, trampolines())

    async def host(caller: Caller, x: int) -> int:
        await trio.sleep(0.001 * (x % 3))
        return x * 2

    linker = trampoline_linker(host)
    results: dict[int, int] = {}
    async with Executor(engine, workers=3) as ex:
        async def one(i: int) -> None:
            results[i] = await ex.call(module, "h0", i, linker=linker)

        async with trio.open_nursery() as nursery:
            for i in range(300):
                nursery.start_soon(one, i)
        stats = ex.stats()
    assert results == {i: 2 * i for i in range(300)}
    assert stats.calls == 300 and stats.failed == 0 and stats.free == 3
    assert sum(h.calls for h in stats.health) == 300


# ---- host functions ----

@pytest.mark.trio
async def test_async_host_function_runs_in_the_calling_task(engine: Engine) -> None:
    module = Module(engine, trampolines(imports=("host0", "host1")))
    seen: list[tuple[str, Any]] = []
    linker = Linker()

    @linker.define("host0")
    async def host0(caller: Caller, a: int, b: int) -> int:
        seen.append((threading.current_thread().name, caller.user_data))
        await trio.sleep(0.01)                     # the guest waits at its ecalli
        return a + b + caller.read_u8(0x10000)     # RO_DATA[0] == 1

    @linker.define("host1", args=["bytes", "u32"], result="u64")
    async def host1(caller: Caller, data: bytes, k: int) -> int:
        await trio.sleep(0)
        return sum(data) * k

    async with Executor(engine, workers=2) as ex:
        assert await ex.call(module, "h0", 3, 4, linker=linker, user_data="ud") == 8
        assert await ex.call(module, "h1", 0x10000, len(RO_DATA), 10, linker=linker) == \
            10 * sum(RO_DATA)
        assert await ex.call(module, "loop", 5, linker=linker) == 5
    assert seen[0] == (threading.current_thread().name, "ud")
    assert len(seen) == 6


@pytest.mark.trio
async def test_async_raw_and_async_fallback(engine: Engine) -> None:
    module = Module(engine, trampolines(imports=("host0", "host1")))
    linker = Linker()

    @linker.define_raw("host0")
    async def raw(caller: Caller) -> None:
        await trio.sleep(0)
        caller.set_reg(7, caller.reg(7) + 1000)

    @linker.define_fallback
    async def fallback(caller: Caller, index: int) -> None:
        await trio.sleep(0)
        caller.set_reg(7, 7000 + index)

    async with Executor(engine, workers=1) as ex:
        assert await ex.call(module, "h0", 5, linker=linker) == 1005
        assert await ex.call(module, "h1", 5, linker=linker) == 7001     # undefined import
        assert await ex.call(module, "outside", linker=linker) == 7077   # ecalli 77


def test_sync_call_refuses_an_async_host_function(backend: str) -> None:
    engine = Engine(Config(backend=backend))
    module = Module(engine, trampolines())

    async def host(caller: Caller) -> int:
        return 1

    with pytest.raises(HostError) as info:
        trampoline_linker(host).instantiate(module).call("h0")
    assert isinstance(info.value.__cause__, TypeError)
    assert "executor.aio" in str(info.value)


@pytest.mark.trio
@pytest.mark.parametrize("host_calls", ["trio", "worker"])
async def test_host_call_modes(engine: Engine, host_calls: Any) -> None:
    module = Module(engine, trampolines(imports=("host0", "host1")))
    threads: list[str] = []

    def sync_host(caller: Caller, x: int) -> int:
        threads.append(threading.current_thread().name)
        return x + 1

    async def async_host(caller: Caller, x: int) -> int:
        threads.append(threading.current_thread().name)
        return x + 2

    linker = trampoline_linker(sync_host, async_host)
    async with Executor(engine, workers=2, host_calls=host_calls) as ex:
        assert await ex.call(module, "h0", 1, linker=linker) == 2
        assert await ex.call(module, "h1", 1, linker=linker) == 3
        assert await ex.call(module, "loop", 50, linker=linker) == 50
    me = threading.current_thread().name
    if host_calls == "trio":
        assert set(threads) == {me}
    else:
        assert threads[0].startswith("pvm-worker") and threads[1] == me


# ---- typed errors ----

def _boom(caller: Caller) -> int:
    raise KeyError("boom")


def _fault(caller: Caller) -> int:
    raise GuestFault("bad pointer")


async def _async_boom(caller: Caller) -> int:
    await trio.sleep(0)
    raise ValueError("async boom")


@pytest.mark.trio
@pytest.mark.parametrize("host_calls", ["trio", "worker"])
async def test_errors_match_sync(engine: Engine, host_calls: Any) -> None:
    module = Module(engine, trampolines(imports=("host0", "host1", "host2")))
    linker = trampoline_linker(_boom, _fault, _async_boom)
    bench = Module(engine, BENCH)
    cases: list[tuple[Module, str, tuple[int, ...], int | None]] = [
        (module, "bad", (), None),
        (module, "h0", (), None),
        (module, "h1", (), None),
        (module, "outside", (), None),
        (module, "spin", (), 1000),
        (bench, "prime_sieve", (1,), 5_000_000),
    ]
    async with Executor(engine, workers=2, host_calls=host_calls, slice_gas=4096) as ex:
        for mod, export, args, gas in cases:
            lk = linker if mod is module else None
            with pytest.raises(PvmError) as info:
                await ex.call(mod, export, *args, linker=lk, gas=gas)
            if export == "h2":
                continue
            same_error(info.value, sync_error(mod, export, *args, linker=lk, gas=gas))
        with pytest.raises(HostError) as host_info:
            await ex.call(module, "h2", linker=linker)
        assert host_info.value.symbol == "host2" and host_info.value.function == "h2"
        assert isinstance(host_info.value.__cause__, ValueError)
        with pytest.raises(ExecutionError):
            await ex.call(module, "nope", linker=linker)
        with pytest.raises(ExecutionError):
            await ex.call(module, "h0", -(1 << 64), linker=linker)
        with pytest.raises(MissingImport):
            await ex.call(module, "h0", linker=Linker())
        assert ex.stats().failed == len(cases) + 1


@pytest.mark.trio
async def test_a_failing_call_fails_only_itself_under_load(engine: Engine) -> None:
    module = Module(engine, trampolines(imports=("host0", "host1")))

    async def host0(caller: Caller, x: int) -> int:
        await trio.sleep(0)
        if x % 7 == 3:
            raise RuntimeError(f"no {x}")
        return x

    def host1(caller: Caller, x: int) -> int:
        if x % 5 == 1:
            raise GuestFault("nope")
        return x + 1

    linker = trampoline_linker(host0, host1)
    outcomes: dict[int, Any] = {}
    async with Executor(engine, workers=2) as ex:
        async def one(i: int) -> None:
            try:
                if i % 11 == 0:
                    outcomes[i] = await ex.call(module, "bad", linker=linker)
                elif i % 13 == 0:
                    outcomes[i] = await ex.call(module, "spin", linker=linker, gas=500)
                elif i % 2:
                    outcomes[i] = await ex.call(module, "h0", i, linker=linker)
                else:
                    outcomes[i] = await ex.call(module, "h1", i, linker=linker)
            except PvmError as exc:
                outcomes[i] = type(exc)

        async with trio.open_nursery() as nursery:
            for i in range(400):
                nursery.start_soon(one, i)
        await ex.settle()           # host errors give their worker back after a reset
        stats = ex.stats()
        assert stats.free == 2 and stats.recycling == 0 and stats.replaced == 0
    for i, got in outcomes.items():
        if i % 11 == 0:
            assert got is Trap
        elif i % 13 == 0:
            assert got is OutOfGas
        elif i % 2:
            assert got == (HostError if i % 7 == 3 else i)
        else:
            assert got == (Trap if i % 5 == 1 else i + 1)
    assert len(outcomes) == 400


# ---- gas slices ----

@pytest.mark.trio
@pytest.mark.parametrize("slice_gas", [1, 7, 1000, 1 << 16])
async def test_gas_slices_do_not_change_results_or_gas(engine: Engine, slice_gas: int) -> None:
    bench = Module(engine, BENCH)
    fill = Module(engine, MEMSET)
    async with Executor(engine, workers=1, slice_gas=slice_gas) as ex:
        if slice_gas >= 1000:
            assert await ex.call_result(bench, "prime_sieve", 1) == sync_result(
                bench, "prime_sieve", 1)
        iters = 20 if slice_gas >= 1000 else 2
        assert await ex.call_result(bench, "sha256_loop", iters) == sync_result(
            bench, "sha256_loop", iters)
        assert await ex.call_result(fill, "fill") == sync_result(fill, "fill")
        for gas in (0, 1, 3, 4, 30_000, 60_004, 60_005):
            if gas >= 60_005:
                assert await ex.call_result(fill, "fill", gas=gas) == sync_result(
                    fill, "fill", gas=gas)
                continue
            with pytest.raises(OutOfGas) as info:
                await ex.call(fill, "fill", gas=gas)
            same_error(info.value, sync_error(fill, "fill", gas=gas))
        for gas in (100, 4037, 4038, 4068, 4069):
            if gas >= 4069:
                assert await ex.call_result(bench, "sha256_loop", 1, gas=gas) == sync_result(
                    bench, "sha256_loop", 1, gas=gas)
                continue
            with pytest.raises(OutOfGas) as info:
                await ex.call(bench, "sha256_loop", 1, gas=gas)
            same_error(info.value, sync_error(bench, "sha256_loop", 1, gas=gas))


@pytest.mark.trio
async def test_host_functions_see_the_true_gas_between_slices(engine: Engine) -> None:
    module = Module(engine, trampolines())

    def make(log: list[int]) -> Callable[[Caller], None]:
        def host(caller: Caller) -> None:
            log.append(caller.gas)
            caller.charge(500)
        return host

    sync_log: list[int] = []
    inst = trampoline_linker(make(sync_log)).instantiate(module)
    inst.call("loop", 30, gas=25_000)
    async_log: list[int] = []
    linker = trampoline_linker(make(async_log))
    async with Executor(engine, workers=1, slice_gas=3) as ex:
        r = await ex.call_result(module, "loop", 30, linker=linker, gas=25_000)
        assert r == CallResult(30, inst.gas_used, inst.gas)
        assert async_log == sync_log
        with pytest.raises(OutOfGas) as info:   # a host charge takes the last gas
            await ex.call(module, "loop", 30, linker=linker, gas=10_000)
        same_error(info.value, sync_error(module, "loop", 30,
                                          linker=trampoline_linker(make([])), gas=10_000))


# ---- cancellation and deadlines ----

@pytest.mark.trio
async def test_cancel_mid_guest_is_prompt_and_returns_the_worker(engine: Engine) -> None:
    module = Module(engine, trampolines(imports=()))
    bench = Module(engine, BENCH)
    async with Executor(engine, workers=1) as ex:
        for _ in range(3):
            t0 = time.perf_counter()
            with trio.move_on_after(0.05) as scope:
                await ex.call(module, "spin")          # an infinite loop, DEFAULT_GAS
            assert scope.cancelled_caught
            assert time.perf_counter() - t0 < 1.5
        await ex.settle()
        stats = ex.stats()
        assert stats.free == 1 and stats.replaced == 0 and stats.cancelled == 3
        assert stats.health[0].interrupted == 3
        assert await ex.call(bench, "noop") == 42      # the worker is clean


@pytest.mark.trio
async def test_cancel_mid_host_call(engine: Engine) -> None:
    module = Module(engine, trampolines())
    entered = trio.Event()

    async def host(caller: Caller) -> int:
        entered.set()
        await trio.sleep_forever()
        return 0

    linker = trampoline_linker(host)
    async with Executor(engine, workers=1) as ex:
        with trio.move_on_after(5) as scope:
            async with trio.open_nursery() as nursery:
                async def victim() -> None:
                    await ex.call(module, "h0", linker=linker)
                nursery.start_soon(victim)
                await entered.wait()
                t0 = time.perf_counter()
                nursery.cancel_scope.cancel()
        assert not scope.cancelled_caught
        assert time.perf_counter() - t0 < 0.5
        await ex.settle()
        assert ex.stats().free == 1 and ex.stats().replaced == 0
        assert await ex.call(module, "loop", 0, linker=linker) == 0


@pytest.mark.trio
async def test_deadlines(engine: Engine) -> None:
    module = Module(engine, trampolines())

    async def slow(caller: Caller) -> int:
        await trio.sleep(10)
        return 0

    linker = trampoline_linker(slow)
    async with Executor(engine, workers=1) as ex:
        with pytest.raises(DeadlineExceeded):
            await ex.call(module, "spin", linker=linker, deadline=trio.current_time() + 0.05)
        with pytest.raises(trio.TooSlowError):             # also a TooSlowError
            await ex.call(module, "h0", linker=linker, timeout=0.05)
        async def occupy() -> None:
            with pytest.raises(DeadlineExceeded):
                await ex.call(module, "h0", linker=linker, timeout=0.3)

        async with trio.open_nursery() as nursery:         # queueing counts too
            nursery.start_soon(occupy)
            await trio.sleep(0.01)
            t0 = trio.current_time()
            with pytest.raises(DeadlineExceeded):
                await ex.call(module, "loop", 0, linker=linker, timeout=0.05)
            assert trio.current_time() - t0 < 0.25
            with pytest.raises(DeadlineExceeded):
                await ex.call(module, "loop", 0, linker=linker, timeout=0)
        assert await ex.call(module, "loop", 0, linker=linker, timeout=5) == 0
        assert ex.stats().cancelled == 5


@pytest.mark.trio
async def test_cancel_unmetered_guest(engine: Engine) -> None:
    """In-process: the worker is abandoned and replaced; in a Linux sandbox
    worker: the sandbox process is killed and the worker kept."""
    module = Module(engine, BENCH, gas_metering=False)
    sandboxed = getattr(engine, "sandbox", None) == "linux"
    iters = 12 if engine.backend == "interpreter" else 150      # about half a second
    threads = threading.active_count()
    async with Executor(engine, workers=1) as ex:
        t0 = time.perf_counter()
        with trio.move_on_after(0.05):
            await ex.call(module, "prime_sieve", iters)
        assert time.perf_counter() - t0 < 0.5
        assert await ex.call(module, "noop") == 42
        stats = ex.stats()
        assert stats.replaced == (0 if sandboxed else 1)
        assert stats.health[0].interrupted == (1 if sandboxed else 0)
    for _ in range(200):  # an abandoned thread ends when its guest does
        if threading.active_count() <= threads:
            break
        await trio.sleep(0.05)
    assert threading.active_count() <= threads


# ---- backpressure, pool and protocol ----

@pytest.mark.trio
async def test_backpressure_bounds_concurrency_and_drops_nothing(engine: Engine) -> None:
    module = Module(engine, trampolines())
    running = 0
    peak = 0

    async def host(caller: Caller, x: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(0.005)
        running -= 1
        return x

    linker = trampoline_linker(host)
    done: list[int] = []
    async with Executor(engine, workers=2) as ex:
        async def one(i: int) -> None:
            done.append(await ex.call(module, "h0", i, linker=linker))

        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(one, i)
            await trio.sleep(0.002)
            assert ex.stats().waiting >= 30
    assert peak == 2 and sorted(done) == list(range(40))


class CountingWorker(Worker):
    """A Worker that wraps a ThreadWorker (the protocol is enough to plug one in)."""

    def __init__(self, inner: ThreadWorker):
        self.inner = inner
        self.name = inner.name
        self.begins = 0

    async def start(self) -> None:
        await self.inner.start()

    async def begin(self, job: Job) -> Stop:
        self.begins += 1
        return await self.inner.begin(job)

    async def resume(self) -> Stop:
        return await self.inner.resume()

    @property
    def caller(self) -> Caller:
        return self.inner.caller

    def interruptible(self, job: Job) -> bool:
        return self.inner.interruptible(job)

    def interrupt(self) -> None:
        self.inner.interrupt()

    async def reset(self) -> None:
        await self.inner.reset()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def health(self) -> WorkerHealth:
        return self.inner.health()


@pytest.mark.trio
async def test_custom_worker_factory(engine: Engine) -> None:
    made: list[CountingWorker] = []

    def factory(i: int) -> Worker:
        made.append(CountingWorker(ThreadWorker(name=f"counting-{i}")))
        return made[-1]

    bench = Module(engine, BENCH)
    async with Executor(engine, workers=3, worker_factory=factory) as ex:
        async with trio.open_nursery() as nursery:
            for _ in range(30):
                nursery.start_soon(ex.call, bench, "noop")
        assert ex.stats().health[0].name == "counting-0"
    assert len(made) == 3 and sum(w.begins for w in made) == 30
    assert all(not w.health().alive for w in made)


@pytest.mark.trio
async def test_linking_is_cached_and_follows_linker_changes(engine: Engine) -> None:
    module = Module(engine, trampolines(imports=("host0", "host1")))
    linker = Linker(allow_missing=True)
    linker.define("host0", lambda caller: 1)
    async with Executor(engine, workers=1) as ex:
        assert await ex.call(module, "h0", linker=linker) == 1
        with pytest.raises(Trap):
            await ex.call(module, "h1", linker=linker)
        linker.define("host1", lambda caller: 2)
        assert await ex.call(module, "h1", linker=linker) == 2
        pre = linker.instantiate_pre(module)
        assert await ex.call(pre, "h0") == 1
        with pytest.raises(ExecutionError):
            await ex.call(pre, "h0", linker=linker)
        other = Engine(Config(backend=engine.backend, page_size=0x4000))
        with pytest.raises(ExecutionError):
            await ex.call(Module(other, BENCH), "noop")


@pytest.mark.trio
async def test_lifecycle() -> None:
    engine = Engine()
    bench = Module(engine, BENCH)
    threads = threading.active_count()
    ex = Executor(engine, workers=2)
    with pytest.raises(ExecutionError):
        await ex.call(bench, "noop")
    async with ex:
        assert threading.active_count() == threads + 2
        assert ex.size == 2 and await ex.call(bench, "noop") == 42
    assert threading.active_count() == threads
    with pytest.raises(ExecutionError):
        await ex.call(bench, "noop")
    with pytest.raises(ValueError):
        Executor(engine, workers=0)
    assert Executor(engine).size >= 1


# ---- no leaks ----

def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


_SANDBOX_MEMFDS = ("/memfd:pvm-control", "/memfd:pvm-guest-memory", "/memfd:pvm-code")


def _owned_fds() -> int:
    """This process's descriptors of the kinds the executor and its sandbox workers
    create (their shared-memory files); other descriptors are not the executor's."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since the listing
            continue
        n += target.startswith(_SANDBOX_MEMFDS)
    return n


def _children() -> set[int]:
    """The live child processes of this process (sandbox workers among them)."""
    pids: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            continue
    return pids


@pytest.mark.slow
@pytest.mark.trio
async def test_ten_thousand_calls_leak_nothing(engine: Engine) -> None:
    """Counts only what the executor owns: its worker threads (named here), the
    descriptors and child processes of its workers, and the RSS growth; the
    process-wide thread count also moves with trio's idle thread cache and with
    other tests' abandoned workers, so it is not asserted."""
    module = Module(engine, trampolines())
    bench = Module(engine, BENCH)

    async def host(caller: Caller, x: int) -> int:
        return x + 1

    linker = trampoline_linker(host)

    async def batch(ex: Executor, n: int) -> None:
        async def worker(k: int) -> None:
            for i in range(k, n, 8):
                if i % 50 == 0:
                    with trio.move_on_after(0):        # some cancelled calls too
                        await ex.call(module, "spin", linker=linker)
                elif i % 3:
                    assert await ex.call(module, "h0", i, linker=linker) == i + 1
                else:
                    assert await ex.call(bench, "noop") == 42

        async with trio.open_nursery() as nursery:
            for k in range(8):
                nursery.start_soon(worker, k)

    prefix = f"leak-test-{os.getpid()}-{id(engine)}-"

    def own_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith(prefix)}

    def factory(i: int) -> Worker:
        return ThreadWorker(name=f"{prefix}{i}")

    async with Executor(engine, workers=2, worker_factory=factory) as ex:
        await batch(ex, 500)   # warm up: instances, caches, allocator
        await ex.settle()
        gc.collect()
        threads, fds, children, rss = own_threads(), _owned_fds(), _children(), _rss_kib()
        assert len(threads) == 2
        await batch(ex, 10_000)
        await ex.settle()
        gc.collect()
        assert own_threads() == threads               # the same two threads, no more
        assert _owned_fds() <= fds                    # no shared-memory file leaked
        assert _children() <= children                # no worker process leaked
        assert _rss_kib() - rss < 16 * 1024, "RSS grew by more than 16 MiB"
        stats = ex.stats()
        assert stats.free == 2 and stats.replaced == 0 and stats.waiting == 0
        assert stats.calls == 10_500
        assert [h.name for h in stats.health] == sorted(t.name for t in threads)
        assert all(h.alive for h in stats.health)
    assert not {t for t in own_threads() if t.is_alive()}  # closing joined them


# ---- the loop stays responsive (issue 17) ----

@pytest.mark.trio
async def test_sync_host_calls_served_inline_do_not_starve_other_tasks(engine: Engine) -> None:
    """A call making thousands of sync host calls (inline on the loop for
    in-process backends) lets another task run at least once in every
    DEFAULT_CHECKPOINT_EVERY + 1 consecutive host calls."""
    from executor.workers import DEFAULT_CHECKPOINT_EVERY

    module = Module(engine, trampolines())
    ticks = 0
    seen: list[int] = []

    def host(caller: Caller, x: int) -> int:
        seen.append(ticks)
        return x

    linker = trampoline_linker(host)
    n = 3000
    async with Executor(engine, workers=1) as ex:
        async def ticker() -> None:
            nonlocal ticks
            while True:
                await trio.sleep(0)
                ticks += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await trio.sleep(0)
            assert await ex.call(module, "loop", n, linker=linker) == n
            nursery.cancel_scope.cancel()
    assert len(seen) == n
    window = DEFAULT_CHECKPOINT_EVERY + 1
    stalls = [i for i in range(n - window) if seen[i + window] == seen[i]]
    assert not stalls, f"no other task ran between host calls {stalls[0]} and {stalls[0] + window}"


# ---- sandbox workers driven from the loop (issue 17) ----

PID_THEN_SPIN = assemble("""%isa = latest64
%stack_size = 4096
%import 0 = host0
pub @main:
    ecalli 0
@forever:
    jump @forever
""")


def _sandboxed_engine() -> Engine:
    from executor.sandbox import sandbox_unavailable_reason

    if "jit" not in available_backends() or sandbox_unavailable_reason() is not None:
        pytest.skip("no Linux sandbox here")
    return Engine(Config(backend="jit", sandbox="linux"))


@pytest.mark.trio
async def test_cancelling_a_wait_on_a_sandbox_worker_keeps_its_process() -> None:
    """A cancel while the loop awaits a worker process returns at once; the
    guest's run is collected at its next slice boundary by reset(), and the
    same process serves the next call.  The worker owes the loop no checkpoint
    within the test's 50 ms (its slice boundaries go on without one), so the
    cancel lands while the loop awaits the process, as the test means: with the
    default 100 us interval a cancel could also land at a slice boundary's
    checkpoint, with no run in flight (seen about once in 100 runs on a loaded
    machine)."""
    from executor.native import lib
    from executor.workers import SandboxWorker

    engine = _sandboxed_engine()
    module = Module(engine, trampolines())
    pre = trampoline_linker(lambda caller: 1).instantiate_pre(module)
    worker = SandboxWorker(spin=1e-6, max_extra_spin=0, checkpoint_interval=10.0)
    await worker.start()
    try:
        t0 = time.perf_counter()
        with trio.move_on_after(0.05) as scope:
            await worker.begin(Job(pre, module.exports["spin"], (), None, "spin"))
        assert scope.cancelled_caught
        assert time.perf_counter() - t0 < 1.5
        inst = worker._inst
        assert inst is not None
        process = inst.raw.worker
        assert lib.pvm_sandbox_inflight(inst._h)        # the guest still runs over there
        assert worker.health().interrupted == 1
        await worker.reset()                            # collected, not killed
        assert not lib.pvm_sandbox_inflight(inst._h) and process.alive
        stop = await worker.begin(Job(pre, module.exports["loop"], (3,), None, "loop"))
        assert (stop.kind, stop.value) == (StopKind.FINISHED, 3)
        assert worker._inst is inst and inst.raw.worker is process
    finally:
        await worker.aclose()


@pytest.mark.trio
async def test_a_worker_process_killed_mid_wait_fails_only_its_call() -> None:
    engine = _sandboxed_engine()
    victim = Module(engine, PID_THEN_SPIN)
    module = Module(engine, trampolines())
    pids: list[int] = []
    started = trio.Event()

    def record(caller: Caller) -> None:
        pids.append(caller.instance.raw.worker.pid)
        started.set()

    victim_linker = Linker()
    victim_linker.define("host0", record)
    linker = trampoline_linker(lambda caller, x: x)
    async with Executor(engine, workers=2) as ex:
        async def bystander(results: list[int]) -> None:
            for i in range(200):
                results.append(await ex.call(module, "h0", i, linker=linker))
                await trio.sleep(0.001)

        results: list[int] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bystander, results)
            async def kill_it() -> None:
                await started.wait()
                await trio.sleep(0.05)              # the guest spins, the loop awaits it
                os.kill(pids[0], 9)
            nursery.start_soon(kill_it)
            with pytest.raises(SandboxError) as info:
                await ex.call(victim, "main", linker=victim_linker)
        assert "killed by signal 9" in str(info.value)
        assert results == list(range(200))          # the other calls never noticed
        await ex.settle()
        stats = ex.stats()
        assert stats.failed == 1 and stats.free == 2
        assert await ex.call(module, "loop", 5, linker=linker) == 5   # fresh processes


@pytest.mark.trio
async def test_unmetered_calls_report_no_gas(engine: Engine) -> None:
    module = Module(engine, trampolines(), gas_metering=False)
    linker = trampoline_linker(lambda caller, x: x + 1)
    async with Executor(engine, workers=1) as ex:
        assert await ex.call_result(module, "loop", 20, linker=linker) == CallResult(20, 0, 0)
        assert await ex.call_result(module, "h0", 4, linker=linker) == CallResult(5, 0, 0)


# ---- the per-call path and the adaptive spin (issue 17, exec4) ----

@pytest.mark.trio
async def test_a_worker_process_killed_while_idle_fails_only_the_next_call() -> None:
    """No waitpid before each run any more: a worker process that died between
    two calls is found through its pidfd (or, without one, by waitpid) and fails
    only the call that meets it, with the reason; the next call gets a new one."""
    engine = _sandboxed_engine()
    module = Module(engine, trampolines())
    pids: list[int] = []

    def record(caller: Caller, x: int) -> int:
        pids.append(caller.instance.raw.worker.pid)
        return x

    linker = trampoline_linker(record)
    async with Executor(engine, workers=1) as ex:
        assert await ex.call(module, "h0", 7, linker=linker) == 7
        os.kill(pids[-1], 9)
        await trio.sleep(0.05)
        with pytest.raises(SandboxError) as info:
            await ex.call(module, "h0", 8, linker=linker)
        assert "killed by signal 9" in str(info.value)
        await ex.settle()
        assert await ex.call(module, "h0", 9, linker=linker) == 9
        assert pids[-1] != pids[0]
        stats = ex.stats()
        assert (stats.failed, stats.free) == (1, 1)


@pytest.mark.trio
async def test_extra_spin_adapts_to_run_length_and_is_bounded() -> None:
    """When nothing else is runnable the loop spins on for a sandbox worker
    (bounded by max_extra_spin) instead of sleeping at once -- but only while
    runs lately ended within that bound: after a run of milliseconds it sleeps
    at once.  max_extra_spin=0 turns it off.  Results are unchanged."""
    from executor.workers import SandboxWorker

    engine = _sandboxed_engine()
    module = Module(engine, BENCH)
    expect = sync_result(module, "prime_sieve", 1)
    with pytest.raises(ValueError):
        SandboxWorker(max_extra_spin=-1)
    for bound in (200e-6, 0.0):
        worker = SandboxWorker(max_extra_spin=bound)
        async with Executor(engine, workers=1, worker_factory=lambda i, w=worker: w) as ex:
            # each run takes milliseconds, far past the first spin: the loop spins on
            # only until its average says so (how many waits that takes depends on
            # how the guest's gas slices fell), then sleeps at once; twice the bound,
            # so a call's short last slice cannot pull the average back under it
            for _ in range(50):
                assert await ex.call_result(module, "prime_sieve", 1) == expect
                if worker.late > 2 * bound:
                    break
            assert worker.late > 2 * bound
            learnt = worker.extra_spins
            assert (learnt >= 1) if bound else (learnt == 0)
            for _ in range(3):
                assert await ex.call_result(module, "prime_sieve", 1) == expect
            assert worker.late > bound and worker.extra_spins == learnt
            assert await ex.call(module, "noop") == sync_result(module, "noop").value


@pytest.mark.trio
async def test_others_runnable_sees_the_run_queue() -> None:
    from executor.workers import _others_runnable

    assert not _others_runnable()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep, 0)
        assert _others_runnable()        # the new task waits to run
    assert not _others_runnable()


def test_others_runnable_outside_trio_assumes_yes() -> None:
    from executor.workers import _others_runnable

    assert _others_runnable()


@pytest.mark.trio
async def test_fast_path_keeps_failures_and_worker_accounting(engine: Engine) -> None:
    """The inline call path (no coroutine for a call that finishes at once)
    counts, fails and returns workers like the general one; args, gas and
    a 32-bit module go through it."""
    module = Module(engine, trampolines())
    linker = trampoline_linker(lambda caller, x: x + 1)
    m32 = Module(engine, trampolines(isa="latest32"))
    async with Executor(engine, workers=1) as ex:
        assert await ex.call(module, "loop", 3, linker=linker) == 3
        assert await ex.call(m32, "h0", 0xFFFF_FFF0, linker=linker) == \
            sync_result(m32, "h0", 0xFFFF_FFF0, linker=linker).value == 0xFFFF_FFF1
        r = await ex.call_result(module, "loop", 50, linker=linker, gas=10_000)
        assert r == sync_result(module, "loop", 50, linker=linker, gas=10_000)
        with pytest.raises(OutOfGas):
            await ex.call(module, "loop", 10_000, linker=linker, gas=100)
        with pytest.raises(HostError):
            await ex.call(module, "h0", 1, linker=trampoline_linker(_boom))
        assert await ex.call(module, "h0", 41, linker=linker) == 42
        await ex.settle()
        stats = ex.stats()
        assert (stats.calls, stats.failed, stats.free, stats.waiting) == (6, 2, 1, 0)


@pytest.mark.trio
async def test_no_extra_spin_while_another_workers_run_is_awaited() -> None:
    """Two long calls on two sandbox workers at once: the loop may spin on
    for the first, never for the second (the first's run is awaited by then)."""
    from executor.workers import SandboxWorker

    engine = _sandboxed_engine()
    module = Module(engine, BENCH)
    expect = sync_result(module, "prime_sieve", 1)
    workers = [SandboxWorker(), SandboxWorker()]
    async with Executor(engine, workers=2, worker_factory=lambda i: workers[i]) as ex:
        results: list[CallResult] = []

        async def one() -> None:
            results.append(await ex.call_result(module, "prime_sieve", 1))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            nursery.start_soon(one)
        assert results == [expect, expect]
    assert all(w.health().calls == 1 for w in workers)
    assert sum(w.extra_spins for w in workers) <= 1


# ---- checkpoints the loop is owed but nothing else could use (issue 17.5) ----

def _busy_until(t: float) -> None:
    while time.perf_counter() < t:
        pass


def test_loop_idle_sees_every_way_another_task_could_run() -> None:
    """loop_idle: True only when nothing but the calling task could run --
    not with a runnable task, a task of the batch now running, a passed
    timer, a ready descriptor some task awaits, a run_sync_soon callback, a
    cancelled caller, a long time since the last real checkpoint; and never
    outside trio."""
    import socket

    import trio.testing

    from executor import workers as W

    assert not W.loop_idle(time.perf_counter())   # no trio run
    seen: dict[str, bool] = {}

    def idle() -> bool:
        W._last_yield.real = time.perf_counter()   # a real checkpoint just now
        return W.loop_idle(time.perf_counter())

    async def main() -> None:
        await trio.testing.wait_all_tasks_blocked()
        seen["alone"] = idle()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 0)
            seen["runnable task"] = idle()
        await trio.testing.wait_all_tasks_blocked()
        # two tasks woken in one batch: the first to run still sees the other
        gate = trio.Event()
        both: list[bool] = []

        async def waiter() -> None:
            await gate.wait()
            both.append(idle())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            gate.set()
        seen["batch"] = both[0]
        # a deadline (a timer's, or this task's cancel scope's)
        with trio.CancelScope(deadline=trio.current_time() + 60) as scope:
            seen["timer pending"] = idle()
            scope.deadline = trio.current_time() + 0.001
            _busy_until(time.perf_counter() + 0.002)
            seen["timer passed"] = idle()
            await trio.sleep(0)   # the scope is cancelled here
        assert scope.cancelled_caught
        # a descriptor some task awaits
        a, b = socket.socketpair()
        with a, b:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.lowlevel.wait_readable, a)
                await trio.testing.wait_all_tasks_blocked()
                seen["fd not ready"] = idle()
                b.send(b"x")
                seen["fd ready"] = idle()
        # a callback from another thread
        token = trio.lowlevel.current_trio_token()
        t = threading.Thread(target=token.run_sync_soon, args=(lambda: None,))
        t.start()
        t.join()
        seen["run_sync_soon"] = idle()
        await trio.testing.wait_all_tasks_blocked()   # the callback ran
        with trio.CancelScope() as scope:
            scope.cancel()
            seen["cancelled"] = idle()
        seen["alone again"] = idle()
        W._last_yield.real = time.perf_counter() - 2 * W.IDLE_MAX_GAP
        seen["gap"] = W.loop_idle(time.perf_counter())

    trio.run(main)
    assert seen == {"alone": True, "runnable task": False, "batch": False,
                    "timer pending": True, "timer passed": False, "fd not ready": True,
                    "fd ready": False, "run_sync_soon": False, "cancelled": False,
                    "alone again": True, "gap": False}


@pytest.mark.trio
async def test_owed_checkpoints_are_skipped_only_while_the_loop_is_idle(engine: Engine) -> None:
    """A call making many sync host calls with no other task around takes
    (almost) no real checkpoint -- it skips them -- with the same result; with
    a task that keeps yielding, or one woken by a timer or a descriptor during
    the call, real checkpoints are taken and those tasks run during the call."""
    import socket

    import trio.testing

    from executor.workers import DEFAULT_CHECKPOINT_EVERY

    module = Module(engine, trampolines())
    calls = 0

    def host(caller: Caller, x: int) -> int:
        nonlocal calls
        calls += 1
        return x

    linker = trampoline_linker(host)
    n = 20_000
    async with Executor(engine, workers=1) as ex:
        (worker,) = ex._workers
        if not hasattr(worker, "idle_skips"):
            pytest.skip("not a loop worker")
        t0 = time.perf_counter()
        assert await ex.call(module, "loop", n, linker=linker) == n
        elapsed = time.perf_counter() - t0
        # alone: no scheduler pass but the safety net (one per IDLE_MAX_GAP at most)
        skipped, real = worker.idle_skips, worker.checkpoints
        assert skipped + real >= n // (DEFAULT_CHECKPOINT_EVERY + 1)
        from executor.workers import IDLE_MAX_GAP
        assert real <= 2 + elapsed / IDLE_MAX_GAP

        woke: dict[str, int] = {}
        a, b = socket.socketpair()

        def host_that_writes(caller: Caller, x: int) -> int:
            nonlocal calls
            calls += 1
            if calls == 100:
                b.send(b"x")
            return x

        async def watcher() -> None:
            await trio.lowlevel.wait_readable(a)
            woke["fd"] = calls
            await trio.sleep(0.001)   # 1 ms: the call goes on for far longer
            woke["timer"] = calls

        with a, b:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher)
                await trio.testing.wait_all_tasks_blocked()
                calls = 0
                before = worker.checkpoints
                assert await ex.call(module, "loop", n, linker=trampoline_linker(
                    host_that_writes)) == n
                assert worker.checkpoints > before
        assert set(woke) == {"fd", "timer"}
        assert 100 <= woke["fd"] <= 100 + DEFAULT_CHECKPOINT_EVERY + 1
        assert woke["timer"] < n
