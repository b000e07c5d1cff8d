"""Spectool test sources (``.txt``): harness lines, expectations and memory setup.

A source is assembler text (:mod:`executor.tools.asm`) plus harness lines that start in
column 0 (shared/spec/test-vectors.md section 6)::

    pre: a0 = 0x10          initial register (ABI name or r0..r12; decimal, 0x…, 0b…)
    pre: gas = 10000        initial gas (default 10000)
    post: a0 = 5            register after the last run
    post: gas = 9990        gas after the last run
    post: pc = @main[2]     expected final pc: the 3rd instruction counted from @main
    step: run               start or resume
    step: map RW 0x30000..0x31000   map pages (RO or RW; bounds multiples of 4096)
    step: write 0x30fff 02  host write (hex, spaces ignored)
    step: a1 = 10           set a register between runs (ABI names)

Harness lines become empty lines before assembly, so assembler errors keep their line
numbers.  No ``step:`` line means a single run.  The expected final pc is the export
``expected_exit`` if there is one, else ``post: pc``, else the code length; execution
starts at the export ``main``.  :func:`initial_steps` gives the memory setup the
reference generator prepends (RO data, RW data and stack mapped per the memory map of
shared/spec/execution.md 3.2 with 4 KiB pages, non-zero data bytes written).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from executor.blob import ProgramBlob
from executor.errors import AssemblerError
from executor.isa import REG_NAMES, InstructionSet
from executor.native import errbuf, errstr, ffi, lib
from executor.tools.asm import ProgramBuilder, parse_int

__all__ = [
    "DEFAULT_GAS",
    "PAGE_SIZE",
    "MemoryLayout",
    "SpecTest",
    "Step",
    "initial_steps",
    "load_test",
    "memory_layout",
    "parse_test",
]

DEFAULT_GAS = 10000
PAGE_SIZE = 4096
MASK64 = (1 << 64) - 1

RunStep = tuple[Literal["run"]]
MapStep = tuple[Literal["map"], int, int, bool]  # (kind, start, end, writable)
WriteStep = tuple[Literal["write"], int, bytes]  # (kind, address, data)
SetRegStep = tuple[Literal["set_reg"], int, int]  # (kind, register, value)
Step = RunStep | MapStep | WriteStep | SetRegStep

_ABI_REGS = {name: i for i, name in enumerate(REG_NAMES)}
_ALL_REGS = {**_ABI_REGS, **{f"r{i}": i for i in range(13)}}
_HARNESS = re.compile(r"(pre|post|step):(.*)\Z")
_ASSIGN = re.compile(r"\s*(\w+)\s*=\s*(\S+)\s*\Z")
_POST_PC = re.compile(r"\s*pc\s*=\s*@([\w.$]+)\[(\d+)\]\s*\Z")
_MAP = re.compile(r"\s*map\s+(RO|RW)\s+(\S+?)\s*\.\.\s*(\S+)\s*\Z")
_WRITE = re.compile(r"\s*write\s+(\S+)\s+([0-9a-fA-F\s]*)\Z")


@dataclass
class SpecTest:
    """One spectool test: the program and what the harness lines ask for."""

    name: str
    blob: ProgramBlob
    entry_pc: int
    expected_pc: int
    pre_regs: dict[int, int] = field(default_factory=dict)
    pre_gas: int = DEFAULT_GAS
    post_regs: dict[int, int] = field(default_factory=dict)
    post_gas: int | None = None
    steps: list[Step] = field(default_factory=lambda: [("run",)])
    path: str | None = None

    def all_steps(self, page_size: int = PAGE_SIZE) -> list[Step]:
        """The generator's full step list: memory setup, non-zero ``pre:`` registers,
        then the test's own steps."""
        regs: list[Step] = [("set_reg", r, v) for r, v in sorted(self.pre_regs.items()) if v]
        return [*initial_steps(self.blob, page_size), *regs, *self.steps]


@dataclass(frozen=True)
class MemoryLayout:
    """The regions of a module's memory map (execution.md 3.2)."""

    page_size: int
    ro_data_address: int
    ro_data_size: int
    rw_data_address: int
    rw_data_size: int
    stack_address_low: int
    stack_address_high: int
    heap_base: int
    max_heap_size: int


def memory_layout(blob: ProgramBlob, page_size: int = PAGE_SIZE) -> MemoryLayout:
    """The memory map of ``blob`` (computed by the C core)."""
    m = ffi.new("pvm_memory_map*")
    err = errbuf()
    if lib.pvm_memory_map_build(page_size, blob.ro_data_size, blob.rw_data_size,
                                blob.stack_size, 0, m, err, 256):
        raise AssemblerError(f"invalid memory map: {errstr(err)}")
    return MemoryLayout(
        page_size=int(m.page_size),
        ro_data_address=int(m.ro_data_address),
        ro_data_size=int(m.ro_data_size),
        rw_data_address=int(m.rw_data_address),
        rw_data_size=int(m.rw_data_size),
        stack_address_low=int(m.stack_address_low),
        stack_address_high=int(m.stack_address_high),
        heap_base=int(m.heap_base),
        max_heap_size=int(m.max_heap_size),
    )


def _nonzero_runs(address: int, data: bytes) -> list[Step]:
    out: list[Step] = []
    i = 0
    while i < len(data):
        if not data[i]:
            i += 1
            continue
        j = i
        while j < len(data) and data[j]:
            j += 1
        out.append(("write", address + i, bytes(data[i:j])))
        i = j
    return out


def initial_steps(blob: ProgramBlob, page_size: int = PAGE_SIZE) -> list[Step]:
    """``map``/``write`` steps for the RO data, RW data and stack of ``blob``."""
    mm = memory_layout(blob, page_size)
    steps: list[Step] = []
    if mm.ro_data_size:
        steps.append(("map", mm.ro_data_address, mm.ro_data_address + mm.ro_data_size, False))
        steps += _nonzero_runs(mm.ro_data_address, blob.ro_data)
    if mm.rw_data_size:
        steps.append(("map", mm.rw_data_address, mm.rw_data_address + mm.rw_data_size, True))
        steps += _nonzero_runs(mm.rw_data_address, blob.rw_data)
    if mm.stack_address_high > mm.stack_address_low:
        steps.append(("map", mm.stack_address_low, mm.stack_address_high, True))
    return steps


class _Harness:
    """Collects the harness lines of one source."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.line = 0
        self.pre_regs: dict[int, int] = {}
        self.pre_gas = DEFAULT_GAS
        self.post_regs: dict[int, int] = {}
        self.post_gas: int | None = None
        self.post_pc: tuple[str, int, int] | None = None  # (label, nth, line)
        self.steps: list[Step] = []

    def error(self, message: str) -> AssemblerError:
        return AssemblerError(message, line=self.line, path=self.path)

    def number(self, text: str, lo: int, hi: int, what: str) -> int:
        value = parse_int(text)
        if value is None or not lo <= value <= hi:
            raise self.error(f"invalid {what}: {text!r}")
        return value

    def reg_value(self, text: str) -> int:
        return self.number(text, -(1 << 63), MASK64, "register value") & MASK64

    def gas(self, text: str) -> int:
        return self.number(text, -(1 << 63), (1 << 63) - 1, "gas value")

    def feed(self, kind: str, rest: str) -> None:
        if kind == "step":
            return self.step(rest)
        if kind == "post" and (m := _POST_PC.match(rest)):
            if self.post_pc is not None:
                raise self.error("duplicate 'post: pc'")
            self.post_pc = (m.group(1), int(m.group(2)), self.line)
            return None
        m = _ASSIGN.match(rest)
        if not m:
            raise self.error(f"cannot parse '{kind}:' line")
        name, value = m.groups()
        if name == "gas":
            if kind == "pre":
                self.pre_gas = self.gas(value)
            else:
                self.post_gas = self.gas(value)
            return None
        if name == "pc":
            raise self.error(f"'{kind}: pc' is not supported")
        if name not in _ALL_REGS:
            raise self.error(f"unknown register {name!r}")
        regs = self.pre_regs if kind == "pre" else self.post_regs
        regs[_ALL_REGS[name]] = self.reg_value(value)
        return None

    def step(self, rest: str) -> None:
        if rest.strip() == "run":
            self.steps.append(("run",))
        elif m := _MAP.match(rest):
            start = self.number(m.group(2), 0, 1 << 32, "address")
            end = self.number(m.group(3), 0, 1 << 32, "address")
            if start % PAGE_SIZE or end % PAGE_SIZE or end < start:
                raise self.error(f"map bounds must be multiples of {PAGE_SIZE}: {rest.strip()}")
            self.steps.append(("map", start, end, m.group(1) == "RW"))
        elif m := _WRITE.match(rest):
            address = self.number(m.group(1), 0, (1 << 32) - 1, "address")
            digits = "".join(m.group(2).split())
            if not digits or len(digits) % 2:
                raise self.error("write needs hex bytes")
            self.steps.append(("write", address, bytes.fromhex(digits)))
        elif (m := _ASSIGN.match(rest)) and m.group(1) in _ABI_REGS:
            self.steps.append(("set_reg", _ABI_REGS[m.group(1)], self.reg_value(m.group(2))))
        else:
            raise self.error(f"cannot parse step: {rest.strip()!r}")


def parse_test(text: str, *, name: str = "test", path: str | None = None,
               isa: InstructionSet | None = None) -> SpecTest:
    """Parses and assembles one spectool source."""
    harness = _Harness(path)
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        m = _HARNESS.match(line)
        if m:
            harness.line = number
            harness.feed(m.group(1), m.group(2))
            lines[number - 1] = ""
    builder = ProgramBuilder(InstructionSet.JAM_V1 if isa is None else isa)
    builder.asm("\n".join(lines), path=path)
    blob = builder.build()
    exports = {e.symbol: e.pc for e in blob.exports}
    if b"main" not in exports:
        raise AssemblerError("the source has no 'pub @main' export", path=path)
    if b"expected_exit" in exports:
        if harness.post_pc is not None:
            raise AssemblerError("'post: pc' and an @expected_exit export are exclusive",
                                 line=harness.post_pc[2], path=path)
        expected_pc = exports[b"expected_exit"]
    elif harness.post_pc is not None:
        label, nth, pc_line = harness.post_pc
        try:
            expected_pc = builder.label_pc(label, nth)
        except AssemblerError as exc:
            raise AssemblerError(exc.reason, line=pc_line, path=path) from None
    else:
        expected_pc = len(blob.code)
    return SpecTest(
        name=name,
        blob=blob,
        entry_pc=exports[b"main"],
        expected_pc=expected_pc,
        pre_regs=harness.pre_regs,
        pre_gas=harness.pre_gas,
        post_regs=harness.post_regs,
        post_gas=harness.post_gas,
        steps=harness.steps or [("run",)],
        path=path,
    )


def load_test(path: str | Path, *, isa: InstructionSet | None = None) -> SpecTest:
    """Reads, parses and assembles a spectool ``.txt`` source."""
    p = Path(path)
    return parse_test(p.read_text(), name=p.stem, path=str(p), isa=isa)
