"""Plays a compromised sandbox worker against the real host (run by
test_compromised.py in a child process, with the test-only native build).

Every field of the control page that a worker can write is overwritten with
hostile values each time the worker hands the page back, while an instance
runs a program with host calls, memory accesses and a faulting access.  The
host must either carry on (any register values -- a worker decides its
guest's registers -- but gas never above what it gave) or raise SandboxError
and have killed that worker; never crash, never raise anything else, and
never disturb another worker.  Prints one JSON line: per field, how many
cases were accepted and rejected, and every failure.
"""

from __future__ import annotations

import json
import random
import sys

from executor.errors import SandboxError
from executor.native import ffi, lib
from executor.raw import InterruptKind, NativeProgram, RawInstance
from executor.sandbox import SandboxProcess
from executor.tools.asm import assemble

SOURCE = """
%isa = latest64
%stack_size = 4096
%rw_data_size = 4096
%import 0 = host0
pub @main:
    s0 = a0
    s1 = 0
@top:
    jump @done if s0 == 0
    ecalli 0
    u64 [sp - 8] = a0
    a1 = u64 [sp - 8]
    s1 = s1 + a1
    s0 = s0 - 1
    jump @top
@done:
    a0 = s1
    ret
pub @fault:
    a0 = u32 [0x10]
    ret
"""
GAS = 1_000_000


def fields() -> list[tuple[str, int, int]]:
    out = []
    name, off, size = ffi.new("char**"), ffi.new("uint32_t*"), ffi.new("uint32_t*")
    k = 0
    while lib.pvm_worker_test_field(k, name, off, size) == 0:
        out.append((ffi.string(name[0]).decode(), int(off[0]), int(size[0])))
        k += 1
    return out


def values(size: int, rng: random.Random) -> list[bytes]:
    n = min(size, 8)
    top = (1 << (8 * n)) - 1
    ints = [0, 1, 2, top, top >> 1, (top >> 1) + 1, 0xFFFFFFFF & top, GAS + 1 & top]
    ints += [rng.getrandbits(8 * n) for _ in range(3)]
    return [v.to_bytes(n, "little") for v in ints]


def run(inst: RawInstance, export_pc: int, arg: int) -> tuple[str, int, int]:
    inst.prepare_call(export_pc, [arg])
    inst.gas = GAS
    while True:
        it = inst.run()
        if it.kind is InterruptKind.ECALLI:
            inst.set_reg(7, inst.reg(7) + 1)
            continue
        return it.kind.name, inst.reg(7), inst.gas


def main() -> int:
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 19)
    blob = assemble(SOURCE)
    prog = NativeProgram(blob)
    pcs = {e.name: e.pc for e in blob.exports}
    main_pc, fault_pc = pcs["main"], pcs["fault"]
    witness_worker = SandboxProcess()
    witness = RawInstance(prog, backend="jit", worker=witness_worker)
    expected = run(witness, main_pc, 20), run(witness, fault_pc, 0)
    report: dict[str, dict[str, int]] = {}
    failures: list[str] = []
    special: dict[str, str] = {}

    def case(label: str, offset: int, data: bytes, before_bind: bool = False) -> str:
        w = SandboxProcess()
        outcome = "accepted"
        inst = None
        try:
            if before_bind:
                lib.pvm_worker_test_tamper(w._ptr, offset, data, len(data))
            inst = RawInstance(prog, backend="jit", worker=w)
            lib.pvm_worker_test_tamper(w._ptr, offset, data, len(data))
            for pc, arg in ((main_pc, 20), (fault_pc, 0)):
                _, _, gas = run(inst, pc, arg)
                if not 0 <= gas <= GAS:
                    failures.append(f"{label}: gas {gas} accepted (given {GAS})")
        except SandboxError as exc:
            outcome = "rejected"
            if w.alive:
                failures.append(f"{label}: SandboxError ({exc}) but the worker lives")
        except Exception as exc:  # noqa: BLE001 - anything else is a failure
            if before_bind and "sandbox worker" in str(exc):
                outcome = "rejected"  # the worker failed while binding: a clear error
            else:
                failures.append(f"{label}: {type(exc).__name__}: {exc}")
        finally:
            if inst is not None:
                inst.close()
            w.close()
        if (run(witness, main_pc, 20), run(witness, fault_pc, 0)) != expected:
            failures.append(f"{label}: another worker's results changed")
        return outcome

    for name, offset, size in fields():
        counts = report.setdefault(name, {"accepted": 0, "rejected": 0})
        windows = [0] if size <= 8 else [0, (size // 2) & ~7, size - 8]
        for window in windows:
            for data in values(size, rng):
                for before in (False, True):
                    label = f"{name}+{window}={data.hex()}{' (before bind)' if before else ''}"
                    counts[case(label, offset + window, data, before)] += 1

    layout = {name: offset for name, offset, _ in fields()}
    special["gas_above_given"] = case("gas above", layout["gas"], (GAS + 1).to_bytes(8, "little"))
    special["exit_site_out_of_range"] = case("site", layout["exit_site"],
                                             (0xFFFFFFF0).to_bytes(4, "little"))
    fake_fault = (0xFFFFFFFF).to_bytes(4, "little") + (11).to_bytes(4, "little") + (
        1 << 40).to_bytes(8, "little")
    special["fault_offset_out_of_range"] = case("fault", layout["exit_site"], fake_fault)
    special["protect_count_huge"] = case("protect_count", layout["protect_count"],
                                         (0x7FFFFFFF).to_bytes(4, "little"), before_bind=True)
    witness.close()
    witness_worker.close()
    print(json.dumps({"fields": report, "failures": failures, "special": special}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
