"""Targeted differential checks of the JIT's shortcuts in its lowerings
(native/jit/compile.c): a 32-bit result left without its sign extension when
a later instruction of its block overwrites it (also across memory accesses
that fault: the fault path extends it), three-operand forms (lea, rorx,
andn), and dynamic jumps to odd, zero and out-of-table addresses.  The
interpreter is the independent expectation: every interrupt, register and
gas value must agree, from register values that are not sign-extended 32-bit
numbers (a missing extension shows in the upper half), entered at every
instruction (the host may enter mid-block with registers it chose) and with
the host changing registers before it resumes after a page fault."""

from __future__ import annotations

import random

import pytest

from executor.backends import available_backends
from executor.blob import ProgramBlob
from executor.isa import InstructionSet
from executor.tools.asm import assemble
from executor.tools.difftest import Case, compare, run_case

pytestmark = [pytest.mark.skipif("jit" not in available_backends(), reason="no JIT here"),
              pytest.mark.asan]

# Each: a block of register computations, then a store (a fault point) and an
# exit, so the state at the trap / fault / end is compared.
PROGRAMS = [
    # overwritten by the next instruction (32-bit reads of the dirty value)
    "i32 a0 = a1 + a2\ni32 a0 = a0 >> 3\ntrap",
    "i32 a0 = a1 << 5\ni32 a0 = a0 + a0\ni32 a1 = a0 * a2\ntrap",
    # overwritten two instructions later, another register computed between
    "i32 a0 = a1 - a2\na3 = a4 + a5\ni32 a0 = a0 >>r 7\ntrap",
    "i32 a0 = a1 + 12345\na3 = a4 ^ a5\na0 = 7\ntrap",
    # read in 64 bits before it is overwritten: the extension must stay
    "i32 a0 = a1 + a2\na3 = a0 + a4\ni32 a0 = a0 >> 1\ntrap",
    "i32 a0 = a1 + a2\na3 = a0 ^ a4\na0 = 1\ntrap",
    "i32 a0 = a1 + a2\nu32 [a3] = a0\ni32 a0 = a0 + 1\ntrap",
    "i32 a0 = a1 + a2\njump @end if a0 == a3\ni32 a0 = a0 + 1\n@end:\ntrap",
    "i32 a0 = a1 + a2\nu32 [a3] = a4\ni32 a0 = a0 + 1\ntrap",
    # the last instruction of a block: its successor sees all of it
    "i32 a0 = a1 + a2\nfallthrough\n@x:\na3 = a0 + a0\ntrap",
    # three-operand forms and their register overlaps
    "a0 = a1 + a2\na1 = a1 + a1\na2 = a3 + 100\ni32 a3 = a4 + -7\ntrap",
    "a0 = a1 - a0\ni32 a2 = a3 - a2\ntrap",
    "i32 a0 = a1 >>r 13\na2 = a3 >>r 61\ni32 a3 = a3 >>r 1\ntrap",
    "a0 = a1 & ~a2\na1 = a1 & ~a3\na2 = a4 & ~a2\na3 = a3 | ~a4\ntrap",
    "a0 = a1 & 255\na1 = a2 & 65535\na2 = a2 & 255\ntrap",
    "i32 a0 = a1 >> 0\ni32 a1 = a2 >> 31\ni32 a2 = a3 >>a 4\ni32 a3 = a3 >>a 31\ntrap",
    "a0 = a1 <u a2\na1 = a1 <s a3\na2 = a2 <u 9\ntrap",
    "i32 a0 = a1 * a2\na1 = a1 * a1\ni32 a2 = a3 * a2\ntrap",
    "a0 = maxs(a1, a2)\na1 = mins(a1, a2)\na2 = maxu(a3, a2)\na3 = minu(a3, a4)\ntrap",
    # a memory access (a fault point) between the 32-bit result and its
    # overwrite: the fault shows the extended value
    "i32 a0 = a1 + a2\nu8 [a3] = a0\ni32 a0 = a0 + 1\ntrap",
    "i32 a0 = a1 + a2\nu16 [a3 + 4] = a0\nu32 [a3] = a4\na0 = a4 + 1\ntrap",
    "i32 a0 = a1 - a2\ni32 a1 = a2 << 3\na4 = u32 [a3]\ni32 a0 = a4 + 1\ni32 a1 = a0 >> 2\ntrap",
    "i32 a0 = a1 * a2\na0 = u8 [a3]\ntrap",
    "i32 a3 = a1 + a2\nu8 [a3 + 0] = a4\ni32 a3 = a3 + 1\ntrap",
    "i32 a0 = a1 + a2\nu64 [a3] = a4\nu32 [a3 + 8] = a0\ni32 a0 = a0 >>a a2\ntrap",
    # ... and read in 64 bits (or by a 64-bit store) after the access: extended
    "i32 a0 = a1 + a2\nu8 [a3] = a4\nu64 [a3] = a0\ni32 a0 = a0 + 1\ntrap",
    "i32 a0 = a1 + a2\nu8 [a3] = a4\na5 = a0 + a1\ni32 a0 = a0 + 1\ntrap",
    "i32 a0 = a1 + a2\nu8 [a3] = a4\na0 = a0 + 1\ntrap",
    "i32 a0 = a1 + a2\nu8 [a3] = a4\nfallthrough\na1 = a0 + 1\ntrap",
    # a conditional move keeps its destination: the extension must stay
    "i32 a0 = a1 + a2\na0 = a3 if a4 == 0\ni32 a0 = a0 + 1\ntrap",
    "i32 a0 = a1 + a2\na0 = a3 unless a4 == 0\nu8 [a5] = a4\ni32 a0 = a0 + 1\ntrap",
    "i32 a0 = a1 + a2\na0 = a3 if a4 == 0\nu8 [a5] = a4\ni32 a0 = a0 + 1\ntrap",
    # dynamic jumps: a0 holds an odd, zero, out-of-table or host-return address
    "jump [a0]\ntrap",
    "jump [a0 + 1]\ntrap",
    "jump [a0 - 2]\ntrap",
]


POOL = [0, 1, 2, 3, 4, 6, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x1_0000_0000,
        0xFFFF0000, 0xFFFEFFFF, 0xFFFFFFFF_FFFFFFFF, 0x8000_0000_0000_0000,
        0x1234_5678_9ABC_DEF0, 0xFFFFFFFF_80000000, 0x9ABCDEF0]


def _case(blob: ProgramBlob, seed: int, metered: bool, entry: int = 0) -> Case:
    rng = random.Random(seed)
    regs = [rng.choice(POOL) if rng.random() < 0.5 else rng.getrandbits(64) for _ in range(13)]
    # a3: an address in the stack (writable: what a store wrote shows in the
    # memory compared at the end) or not (a fault)
    regs[10] = rng.choice([STACK_TOP - 64, STACK_TOP - 64, 0x10, regs[10]])
    if rng.random() < 0.25:
        regs[11] = 0  # a4: conditional moves both ways
    return Case(seed, blob, 0x1000, False, regs, 1000, entry=entry, metered=metered)


STACK_TOP = 0xFFFE0000  # of a 4 KiB stack, 4 KiB pages


def _blob(text: str) -> ProgramBlob:
    try:
        return assemble("%stack_size = 4096\n" + text, isa=InstructionSet.LATEST64)
    except Exception as e:  # the syntax of this assembler: fail loudly, not skip
        raise AssertionError(f"cannot assemble {text!r}: {e}") from e


@pytest.mark.parametrize("text", PROGRAMS)
def test_shortcuts_agree_with_the_interpreter(text: str) -> None:
    blob = _blob(text)
    for seed in range(60):
        case = _case(blob, seed, metered=seed % 2 == 0)
        diff = compare(run_case(case, "interpreter"), run_case(case, "jit"))
        assert diff is None, f"{text!r}, seed {seed}: {diff}"


@pytest.mark.parametrize("text", PROGRAMS)
def test_entered_mid_block_agrees_with_the_interpreter(text: str) -> None:
    """The host enters at every instruction, with register values of its own
    (among them 32-bit patterns with bit 31 set and a zero upper half, which
    look like unextended results) in registers the code there treats as
    unextended results: the fault path must show the host's values."""
    blob = _blob(text)
    for ins in blob.instructions():
        for seed in range(16):
            case = _case(blob, seed, metered=seed % 2 == 0, entry=ins.pc)
            diff = compare(run_case(case, "interpreter"), run_case(case, "jit"))
            assert diff is None, f"{text!r} from pc {ins.pc}, seed {seed}: {diff}"


def _run_with_host_writes(blob: ProgramBlob, backend: str, seed: int) -> list[tuple[object, ...]]:
    """Runs with dynamic paging: at each page fault the host sets a register
    and maps the page, then resumes at the faulting access."""
    from executor.backends import new_instance
    from executor.raw import InterruptKind, NativeProgram

    rng = random.Random(seed)
    inst = new_instance(NativeProgram(blob), backend, page_size=0x1000, dynamic_paging=True,
                        gas_metering=seed % 2 == 0)
    regs = [rng.choice(POOL) if rng.random() < 0.5 else rng.getrandbits(64) for _ in range(13)]
    regs[10] = 0x20000 + 8 * rng.randrange(4)
    inst.regs = regs
    inst.gas = 1000
    inst.next_program_counter = 0
    out: list[tuple[object, ...]] = []
    for _ in range(8):
        intr = inst.run()
        out.append((intr.kind.name, intr.pc, intr.fault_address, inst.regs, inst.gas))
        if intr.kind is not InterruptKind.SEGFAULT or intr.fault_address is None:
            break
        inst.set_reg(rng.randrange(13), rng.choice(POOL))
        inst.map_memory(intr.fault_address & ~0xFFF, 0x1000, writable=True)
    inst.close()
    return out


@pytest.mark.parametrize("text", [t for t in PROGRAMS if "[a3" in t])
def test_host_writes_before_resuming_after_a_fault(text: str) -> None:
    blob = _blob(text)
    for seed in range(40):
        a = _run_with_host_writes(blob, "interpreter", seed)
        b = _run_with_host_writes(blob, "jit", seed)
        assert a == b, f"{text!r}, seed {seed}: {a} != {b}"
