"""The JIT's fault handler turns guest faults into interrupts and chains every
other fault to whoever handled it before (pytest's faulthandler, Python's own
handling): a real crash outside guest code must still be reported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from executor.backends import available_backends

pytestmark = pytest.mark.skipif("jit" not in available_backends(), reason="no JIT here")

GUEST_FAULTS = textwrap.dedent("""
    from executor.tools.asm import assemble
    from executor.raw import NativeProgram, RawInstance, InterruptKind
    blob = assemble("%isa = latest64\\npub @main:\\n a1 = u32 [a0]\\n ret\\n")
    for addr in (0x8000, 0x30000, 0xFFFFFFFE):
        inst = RawInstance(NativeProgram(blob), backend="jit", dynamic_paging=True)
        inst.set_reg(7, addr)
        inst.gas = 10
        inst.next_program_counter = 0
        assert inst.run().kind is InterruptKind.SEGFAULT
    print("guest faults handled", flush=True)
""")

CRASH = textwrap.dedent("""
    import ctypes
    ctypes.string_at(0)
""")


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_faulthandler_installed_before_keeps_working() -> None:
    r = run("import faulthandler; faulthandler.enable()\n" + GUEST_FAULTS + CRASH)
    assert "guest faults handled" in r.stdout
    assert r.returncode == -11
    assert "Fatal Python error: Segmentation fault" in r.stderr


def test_faulthandler_installed_after_keeps_working() -> None:
    r = run(GUEST_FAULTS + "import faulthandler; faulthandler.enable()\n" + GUEST_FAULTS + CRASH)
    assert r.stdout.count("guest faults handled") == 2
    assert r.returncode == -11
    assert "Fatal Python error: Segmentation fault" in r.stderr


def test_crash_without_other_handlers_is_a_plain_segfault() -> None:
    r = run(GUEST_FAULTS + CRASH)
    assert "guest faults handled" in r.stdout
    assert r.returncode == -11


RECLAIM = textwrap.dedent("""
    import faulthandler
    from executor.tools.asm import assemble
    from executor.native import lib
    from executor.raw import NativeProgram, RawInstance, InterruptKind
    blob = assemble("%isa = latest64\\npub @main:\\n a1 = u32 [a0]\\n ret\\n")
    inst = RawInstance(NativeProgram(blob), backend="jit", dynamic_paging=True)
    def fault():
        inst.set_reg(7, 0x30000)
        inst.gas = 10
        inst.next_program_counter = 0
        assert inst.run().kind is InterruptKind.SEGFAULT
    fault()
    faulthandler.enable()       # between two runs of the same instance
    lib.pvm_jit_reclaim_signals()
    fault()
    print("guest faults handled", flush=True)
""")


def test_reclaim_after_a_handler_installed_between_runs() -> None:
    """Runs do not re-check the handlers (no system call per run); a handler
    installed between two runs is chained from pvm_jit_reclaim_signals() (or
    the next instance creation) on."""
    r = run(RECLAIM + CRASH)
    assert "guest faults handled" in r.stdout, r.stderr
    assert r.returncode == -11
    assert "Fatal Python error: Segmentation fault" in r.stderr
