"""Targeted differential checks of the JIT's shortcuts in its lowerings
(native/jit/compile.c): a 32-bit result left without its sign extension when
the next instructions of its block overwrite it, three-operand forms (lea,
rorx, andn), and dynamic jumps to odd, zero and out-of-table addresses.  The
interpreter is the independent expectation: every interrupt, register and
gas value must agree, from register values that are not sign-extended 32-bit
numbers (a missing extension shows in the upper half)."""

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
    # dynamic jumps: a0 holds an odd, zero, out-of-table or host-return address
    "jump [a0]\ntrap",
    "jump [a0 + 1]\ntrap",
    "jump [a0 - 2]\ntrap",
]


def _case(blob: ProgramBlob, seed: int, metered: bool) -> Case:
    rng = random.Random(seed)
    pool = [0, 1, 2, 3, 4, 6, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x1_0000_0000,
            0xFFFF0000, 0xFFFEFFFF, 0xFFFFFFFF_FFFFFFFF, 0x8000_0000_0000_0000,
            0x1234_5678_9ABC_DEF0]
    regs = [rng.choice(pool) if rng.random() < 0.5 else rng.getrandbits(64) for _ in range(13)]
    return Case(seed, blob, 0x1000, False, regs, 1000, entry=0, metered=metered)


@pytest.mark.parametrize("text", PROGRAMS)
def test_shortcuts_agree_with_the_interpreter(text: str) -> None:
    try:
        blob = assemble(text, isa=InstructionSet.LATEST64)
    except Exception as e:  # the syntax of this assembler: fail loudly, not skip
        raise AssertionError(f"cannot assemble {text!r}: {e}") from e
    for seed in range(60):
        case = _case(blob, seed, metered=seed % 2 == 0)
        diff = compare(run_case(case, "interpreter"), run_case(case, "jit"))
        assert diff is None, f"{text!r}, seed {seed}: {diff}"
