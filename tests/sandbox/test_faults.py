"""SandboxProcess faults: killed, past a deadline, reused -- the host and the other
workers carry on, and nothing of one instance is visible to the next."""

from __future__ import annotations

import os
import signal

import pytest

from executor.errors import ExecutionError
from executor.raw import InterruptKind, NativeProgram, RawInstance
from executor.sandbox import SandboxPool, SandboxProcess
from executor.tools.asm import assemble

pytestmark = pytest.mark.asan  # also run on the ASan/UBSan build (make test-asan)

LOOP = assemble("%isa = latest64\npub @main:\n@loop:\n a0 = a0 + 1\n jump @loop\n")
HELLO = assemble("%isa = latest64\n%rw_data_size = 4096\npub @main:\n a1 = a0 + 1\n ret\n")


def run_hello(inst: RawInstance) -> int:
    inst.prepare_call(0, [41])
    inst.gas = 100
    assert inst.run().kind is InterruptKind.FINISHED
    return inst.reg(8)


def test_killed_worker_gives_a_clean_error_and_others_carry_on() -> None:
    a, b = SandboxProcess(), SandboxProcess()
    ia = RawInstance(NativeProgram(HELLO), backend="jit", worker=a)
    ib = RawInstance(NativeProgram(HELLO), backend="jit", worker=b)
    assert run_hello(ia) == 42
    os.kill(a.pid, signal.SIGKILL)
    with pytest.raises(ExecutionError, match="killed by signal 9"):
        run_hello(ia)
    assert not a.alive
    assert run_hello(ib) == 42
    ia.close()
    ib.close()
    a.close()
    b.close()


def test_deadline_kills_the_worker_and_the_pool_replaces_it() -> None:
    pool = SandboxPool(size=1)
    w = pool.acquire()
    inst = RawInstance(NativeProgram(LOOP), backend="jit", worker=w, gas_metering=False)
    inst.set_deadline(0.2)
    inst.next_program_counter = 0
    with pytest.raises(ExecutionError, match="deadline exceeded"):
        inst.run()
    assert not w.alive
    inst.close()
    pool.release(w)
    w2 = pool.acquire()
    assert w2.alive and w2.pid != w.pid
    inst2 = RawInstance(NativeProgram(HELLO), backend="jit", worker=w2)
    assert run_hello(inst2) == 42
    inst2.close()
    pool.close()


def test_reused_worker_shows_nothing_of_the_previous_instance() -> None:
    w = SandboxProcess()
    secret = RawInstance(NativeProgram(HELLO), backend="jit", worker=w)
    rw = secret.memory_map.rw_data_address
    secret.write_memory(rw, b"secret!!")
    secret.regs = [0x5EC12E7] * 13
    secret.gas = 123456
    assert run_hello(secret) == 42
    secret.close()

    probe_src = ("%isa = latest64\n%rw_data_size = 4096\npub @main:\n a1 = u64 [a0]\n ret\n")
    probe = RawInstance(NativeProgram(assemble(probe_src)), backend="jit", worker=w)
    assert probe.read_memory(rw, 8) == bytes(8)
    assert probe.regs == [0] * 13 and probe.gas == 0
    probe.set_reg(0, 0xFFFF0000)
    probe.set_reg(7, rw)
    probe.gas = 10
    probe.next_program_counter = 0
    assert probe.run().kind is InterruptKind.FINISHED
    assert probe.reg(8) == 0  # the guest reads zeros too
    probe.close()
    w.close()


def test_memory_is_shared_without_copies() -> None:
    w = SandboxProcess()
    inst = RawInstance(NativeProgram(HELLO), backend="jit", worker=w)
    rw = inst.memory_map.rw_data_address
    view = inst.memory_view(rw, 16)
    src = "%isa = latest64\n%rw_data_size = 4096\npub @main:\n u64 [a0] = a1\n ret\n"
    store = RawInstance(NativeProgram(assemble(src)), backend="jit", worker=SandboxProcess())
    store.close()
    inst.close()
    inst = RawInstance(NativeProgram(assemble(src)), backend="jit", worker=w)
    view = inst.memory_view(rw, 8)
    inst.set_reg(0, 0xFFFF0000)
    inst.set_reg(7, rw)
    inst.set_reg(8, 0x1122334455667788)
    inst.gas = 10
    inst.next_program_counter = 0
    assert inst.run().kind is InterruptKind.FINISHED
    assert bytes(view) == (0x1122334455667788).to_bytes(8, "little")
    inst.close()
    w.close()


def test_pool_is_bounded_and_reuses_workers() -> None:
    from executor.sandbox import SandboxError

    pool = SandboxPool(size=2, max_workers=3)
    assert pool.in_use == 0
    a, b, c = pool.acquire(), pool.acquire(), pool.acquire()
    assert len({a.pid, b.pid, c.pid}) == 3 and pool.in_use == 3
    with pytest.raises(SandboxError, match="limit"):
        pool.acquire()
    pool.release(a)
    d = pool.acquire()
    assert d.pid == a.pid  # reused, not respawned
    for w in (b, c, d):
        pool.release(w)
    assert pool.in_use == 0
    pool.close()
