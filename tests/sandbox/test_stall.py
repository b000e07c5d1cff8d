"""Every wait on a worker is bounded by progress: a worker that stops using
CPU while the host waits on it (SIGSTOP, a lost wake-up) is killed after the
stall timeout and the call raises SandboxError; a worker busy running guest
code, however long, is not."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest

from executor import Config, Engine, Module
from executor.errors import SandboxError
from executor.raw import InterruptKind, NativeProgram, RawInstance
from executor.sandbox import SandboxProcess
from executor.tools.asm import assemble

LOOP = assemble("%isa = latest64\npub @main:\n@loop:\n a0 = a0 + 1\n jump @loop\n")
HELLO = assemble("%isa = latest64\n%rw_data_size = 4096\npub @main:\n a1 = a0 + 1\n ret\n")


def _stop_when_running(worker: SandboxProcess) -> threading.Thread:
    """SIGSTOPs ``worker`` once it has used some CPU in guest code."""
    def stop() -> None:
        path = f"/proc/{worker.pid}/stat"
        while True:
            try:
                stat = open(path).read()
            except OSError:
                return
            if sum(int(x) for x in stat[stat.rindex(")") + 2:].split()[11:13]) > 0:
                os.kill(worker.pid, signal.SIGSTOP)
                return
            threading.Event().wait(0.01)
    t = threading.Thread(target=stop)
    t.start()
    return t


def test_a_stopped_worker_is_killed_after_the_stall_timeout() -> None:
    w = SandboxProcess()
    inst = RawInstance(NativeProgram(LOOP), backend="jit", worker=w, gas_metering=False)
    inst.set_stall_timeout(0.3)
    inst.next_program_counter = 0
    t = _stop_when_running(w)
    with pytest.raises(SandboxError, match="stopped answering"):
        inst.run()
    t.join()
    assert not w.alive
    with pytest.raises(SandboxError):
        inst.run()
    inst.close()
    w.close()


def test_a_worker_stopped_between_calls_is_killed_on_the_next_one() -> None:
    w = SandboxProcess()
    inst = RawInstance(NativeProgram(HELLO), backend="jit", worker=w)
    inst.set_stall_timeout(0.3)
    inst.prepare_call(0, [1])
    inst.gas = 100
    assert inst.run().kind is InterruptKind.FINISHED
    os.kill(w.pid, signal.SIGSTOP)
    inst.prepare_call(0, [1])
    with pytest.raises(SandboxError, match="stopped answering"):
        inst.run()
    assert not w.alive
    inst.close()
    w.close()


def test_a_long_metered_run_is_not_a_stall() -> None:
    w = SandboxProcess()
    inst = RawInstance(NativeProgram(LOOP), backend="jit", worker=w)
    inst.set_stall_timeout(0.05)  # far shorter than the run: guest time does not count
    inst.next_program_counter = 0
    inst.gas = 600_000_000
    assert inst.run().kind is InterruptKind.NOT_ENOUGH_GAS
    assert w.alive
    inst.close()
    w.close()


def test_a_worker_starved_of_cpu_is_not_a_stall() -> None:
    """A loaded machine may leave a runnable worker without a CPU for longer
    than the stall timeout: that is not a stall (seen under `make test` beside
    two CPU hogs).  The worker is made SCHED_IDLE and pinned beside a busy
    process on one CPU, so it gets a slice only every few hundred ms while
    that process spins; its run still completes."""
    cpu = min(os.sched_getaffinity(0))
    hog = subprocess.Popen(["timeout", "1", "sh", "-c", "while :; do :; done"],
                           preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    try:
        w = SandboxProcess()
        inst = RawInstance(NativeProgram(LOOP), backend="jit", worker=w)
        os.sched_setaffinity(w.pid, {cpu})
        os.sched_setscheduler(w.pid, os.SCHED_IDLE, os.sched_param(0))
        inst.set_stall_timeout(0.05)
        inst.next_program_counter = 0
        inst.gas = 100_000_000
        assert inst.run().kind is InterruptKind.NOT_ENOUGH_GAS
        assert w.alive
        inst.close()
        w.close()
    finally:
        hog.kill()
        hog.wait()


@pytest.mark.slow
def test_the_default_stall_timeout_applies_without_configuration() -> None:
    engine = Engine(Config(backend="jit", sandbox="linux", gas_metering=False))
    assert engine.config.sandbox_stall_timeout == 5.0
    module = Module(engine, LOOP)
    inst = module.instantiate()
    worker = inst.raw.worker
    t = _stop_when_running(worker)
    with pytest.raises(SandboxError, match="stopped answering"):
        inst.call("main")
    t.join()
    inst.close()


def test_the_stall_timeout_is_validated() -> None:
    from executor.errors import ModuleError
    for bad in (0, -1, "5", True):
        with pytest.raises(ModuleError, match="sandbox_stall_timeout"):
            Config(sandbox_stall_timeout=bad)  # type: ignore[arg-type]
    assert Config(sandbox_stall_timeout=None).sandbox_stall_timeout is None
