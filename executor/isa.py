"""The instruction sets, read from the one table in native/isa.def.

The C core is compiled from ``native/isa.def``; this module reads the compiled
table back through cffi, so Python and C can never disagree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache

from executor.native import ffi, lib


class InstructionSet(enum.IntEnum):
    """Instruction-set kinds, numbered as the blob version byte."""

    REVIVE_V1 = 0
    LATEST32 = 1
    LATEST64 = 2
    JAM_V1 = 3

    @property
    def key(self) -> str:
        return _KEYS[self]

    @property
    def is_64_bit(self) -> bool:
        return self is not InstructionSet.LATEST32

    @classmethod
    def from_key(cls, key: str) -> InstructionSet:
        for isa, k in _KEYS.items():
            if k == key:
                return isa
        raise ValueError(
            f"unknown instruction set {key!r} (expected one of {sorted(_KEYS.values())})")


_KEYS = {
    InstructionSet.REVIVE_V1: "revive_v1",
    InstructionSet.LATEST32: "latest32",
    InstructionSet.LATEST64: "latest64",
    InstructionSet.JAM_V1: "jam_v1",
}


class Form(enum.IntEnum):
    """Operand classes (shared/spec/isa.md section 3)."""

    A = 0
    I = 1  # noqa: E741
    O = 2  # noqa: E741
    II = 3
    RI = 4
    RIO = 5
    RII = 6
    RR = 7
    RRI = 8
    RRO = 9
    RRII = 10
    RRR = 11
    RI64 = 12


F_TERM = 1
F_NOFALL = 2
F_LOAD = 4
F_STORE = 8
F_BRANCH = 16


@dataclass(frozen=True)
class OpInfo:
    op: int
    mnemonic: str
    form: Form
    flags: int
    opcodes: tuple[int | None, int | None, int | None, int | None]

    def opcode(self, isa: InstructionSet) -> int | None:
        return self.opcodes[isa]

    @property
    def is_terminator(self) -> bool:
        return bool(self.flags & F_TERM)

    @property
    def is_branch(self) -> bool:
        return bool(self.flags & F_BRANCH)

    @property
    def can_fall_through(self) -> bool:
        return not self.flags & F_NOFALL


@cache
def ops() -> tuple[OpInfo, ...]:
    """Every instruction of isa.def in table order (index = internal op)."""
    out = []
    for op in range(lib.pvm_op_count()):
        info = lib.pvm_op_info(op)
        codes = tuple(None if c < 0 else int(c) for c in info.opcode)
        out.append(
            OpInfo(
                op=op,
                mnemonic=ffi.string(info.mnemonic).decode(),
                form=Form(info.form),
                flags=int(info.flags),
                opcodes=(codes[0], codes[1], codes[2], codes[3]),
            )
        )
    return tuple(out)


INVALID_OP = int(lib.pvm_op_count())


@cache
def by_mnemonic() -> dict[str, OpInfo]:
    return {o.mnemonic: o for o in ops()}


@cache
def opcode_table(isa: InstructionSet) -> dict[int, OpInfo]:
    """opcode byte -> instruction for one instruction set."""
    return {o.opcodes[isa]: o for o in ops() if o.opcodes[isa] is not None}  # type: ignore[misc]


REG_NAMES = ("ra", "sp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5")
