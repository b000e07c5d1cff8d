"""Assembler and disassembler for the PolkaVM text syntax.

The source language is the one of PolkaVM 0.35's spectool (shared/spec/test-vectors.md
section 6), extended so that every instruction of every instruction set, and every byte
of a ``.polkavm`` blob, can be written down.  :func:`disassemble` prints this language and
:func:`assemble` reads it back: ``assemble(disassemble(blob))`` reproduces the blob.

Lines
=====
One statement per line.  Leading/trailing whitespace is ignored, blank lines and
``//`` comments (whole-line or trailing) are ignored.  Registers: ``ra sp t0 t1 t2 s0 s1
a0..a5`` or ``r0..r12``.

Numbers: ``0x…`` / ``0b…`` parse as u64, decimals as i64 (a leading ``-`` is allowed on
any form; ``-0x10`` is an extension).  An instruction immediate must fit ``i32`` after
reinterpreting the u64 as i64 (so ``0xfffffffffffff8ff`` is ``-1793`` but ``0xffffffff`` is
rejected).  Memory operands (``[imm]``, ``[rb + imm]``, ``[rb - imm]``) and ``ecalli``
also accept u32 values (``[0xfffe0000]``).

Directives
==========
``%isa = jam_v1|revive_v1|latest32|latest64``  instruction set (default JamV1, or the
    ``isa`` argument); must come before the first instruction.
``%ro_data_size = N``, ``%rw_data_size = N``, ``%stack_size = N``  memory config
    (a size smaller than the data given is raised to the data length).
``%ro_data = <hex>``, ``%rw_data = <hex>``  initial data (spaces ignored).  *Extension:*
    repeated lines append.
*Extensions:*
``%import N = <symbol>``  import table entry N (entries must end up numbered 0..n-1).
``%export <@label|pc> = <symbol>``  an export, in order with the ``pub`` labels.
``%jump_table = <@label|pc>, …``  append entries to the jump table (in order; each
    ``rd = @L`` also appends one entry, as in the reference).
``%jump_table_entry_size = N``  minimum jump-table entry size (the default is the
    smallest size holding the largest entry).
``%raw <hex>``  one instruction given as bytes (its first byte is an instruction start);
    used for unknown opcodes and encodings that are not the canonical (shortest) one.
``%bytes <hex>``  code bytes that are *not* instruction starts (bitmask bits clear).
``%section ID = <hex>``  an optional (debug) section, ID 128..255; repeated lines append.

``<symbol>`` is a bare word of printable ASCII without spaces, or a double-quoted string
with ``\\\\``, ``\\"`` and ``\\xNN`` escapes.  ``<hex>`` is hex digits, optionally
space-separated, each group optionally prefixed by ``0x``.

Labels
======
``@name:`` (local) and ``pub @name:`` (export ``name``).  When a label is reached after an
instruction that does not end a basic block, a ``fallthrough`` is inserted first, unless
the line ends with ``%no_fallthrough``.  *Deviation:* a ``%no_fallthrough`` label names
exactly the next instruction, also for jumps (0.35 would make a *jump* to it target the
start of the enclosing block; no spectool source jumps to such a label).
A label operand ``@name`` refers to the label; *extension:* ``@123`` / ``@0x7b`` is the
absolute code offset 123 (used by the disassembler for targets that are not instruction
starts).  Exports are stored in source order (0.35's assembler sorts them by name, which
only changes the order inside the exports section).

Instructions (``i32`` before the destination selects the ``_32`` variant and is an error
for operations without one; on Latest32 an unprefixed operation whose 64-bit variant does
not exist falls back to the ``_32`` one)
=====================================================================================
``trap``, ``fallthrough``, ``unlikely``, ``nop`` (= ``ra = ra``), ``ret``
(= ``jump [ra]``), ``ecalli N``,
``jump @L``, ``jump @L if X op Y`` (``op``: ``== != <u <s <=u <=s >u >s >=u >=s``; register
pairs with ``<= >`` are emitted swapped as ``>= <``; ``imm op reg`` is mirrored),
``jump [rb]``, ``jump [rb + imm]``, ``rd = imm, jump @L``, ``rd = imm, jump [rb + imm]``
(rd ≠ rb), ``tmp = rb, rd = imm, jump [tmp + imm]``,
``rd = rs``, ``rd = imm`` (``load_imm`` when it fits i32, else ``load_imm64``),
``rd = i64 imm`` (forces ``load_imm64``), ``rd = @L`` (``load_imm`` of a new jump-table
address), ``rd = ra OP rb`` with ``+ - * /u /s %u %s << >> >>a <<r >>r & | ^ <u <s >u >s``,
``rd = ra & ~rb``, ``rd = ra | ~rb``, ``rd = ~(ra ^ rb)``,
``rd = ra OP imm`` (``+ - * & | ^ <u <s >u >s << >> >>a >>r``),
``rd = imm OP rb`` (``+ * & | ^`` commute, ``-`` negate_and_add, ``<< >> >>a >>r`` the
``_alt`` forms, ``<u <s`` set_greater_than, ``>u >s`` set_less_than),
``rd = maxs(ra, rb)`` / ``maxu`` / ``mins`` / ``minu``,
``rd = clz|ctz|cpop|sext8|sext16|zext16|reverse rs``,
``rd = rs if rc == 0``, ``rd = imm if rc == 0`` (cmov_if_zero / cmov_if_zero_imm),
``rd = u8|i8|u16|i16|u32|i32|u64 [imm]`` / ``[rb]`` / ``[rb + imm]`` (loads),
``u8|u16|u32|u64 [imm] = rs|imm``, ``u8|u16|u32|u64 [rb + imm] = rs|imm`` (stores).

**Reproduced 0.35 quirk:** ``rd = x if rc != 0`` assembles as ``cmov_if_zero`` /
``cmov_if_zero_imm``, exactly like ``if rc == 0`` (the reference maps ``!=`` to the same
constructor).  It is kept as the default so sources mean what they meant to 0.35 (the
257 sources in shared/ only use the ``== 0`` form); write ``unless`` for the real thing.

*Extensions* (so that every instruction can be written):
``rd = rs unless rc == 0`` / ``rd = imm unless rc == 0`` (cmov_if_not_zero / _imm),
``rd = ra mulh rb`` / ``mulhu`` / ``mulhsu`` (mul_upper_signed_signed /
unsigned_unsigned / signed_unsigned), ``rd = sbrk rs``, ``memset`` or
``[a0..a0 + a2] = u8 a1`` (memset, implicit operands), ``[rb - imm]`` memory operands,
``ecalli`` numbers in hex, store immediates of any i32 value (``u8 [a0] = -1``; 0.35 only
accepts 0..=255 / 0..=65535).

Encoding
========
Immediates use the fewest bytes that survive sign extension (0 bytes for 0, ``-1`` and
``0xffffffff`` as one byte ``ff``), jump targets are pc-relative, the bitmask marks
instruction starts, and the jump-table entry size is the smallest that holds the largest
entry.  Jump offsets are sized exactly as PolkaVM's blob writer sizes them (it sometimes
settles on an offset of 128 in two bytes where 127 in one byte would also be consistent;
DOOM and Quake contain such jumps); ``ProgramBuilder.build(shortest=True)`` gives the
least consistent layout instead.

Disassembly
===========
:func:`disassemble` prints the header directives (``%isa``, memory sizes, ``%import``,
``%jump_table``, ``%export`` only when exports cannot be ``pub`` labels), then one
instruction per line with its pc (and bytes, with ``raw``) as a trailing comment, then
``%ro_data``/``%rw_data``/``%section`` lines.  Every jump target, jump-table entry and
export at an instruction start gets a label (``@L<pc>`` or the export's ``pub`` label;
``%no_fallthrough`` when the previous instruction does not end a block); other targets
are printed as ``@<pc>``.  ``ecalli`` lines name the import, label lines the exports and
jump-table slots, and implicit ``invalid`` pseudo-instructions appear as comments.  An
instruction whose bytes are not the canonical encoding (unknown opcode, non-minimal
immediate, padding, register nibble above 12, ignored bits, a gap of more than 24 bytes
after it) is printed as ``%raw`` with its meaning in the comment, so that
``assemble(disassemble(blob))`` reproduces ``blob`` byte for byte (``canonical=True``
prints such instructions normally instead).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate

from executor.blob import Export, Instruction, ProgramBlob
from executor.errors import AssemblerError
from executor.isa import REG_NAMES, Form, InstructionSet, OpInfo, by_mnemonic, opcode_table

__all__ = [
    "ProgramBuilder",
    "Target",
    "assemble",
    "disassemble",
    "encode_instruction",
    "format_instruction",
    "format_symbol",
    "iter_noncanonical",
    "parse_int",
    "parse_symbol",
]

MASK32 = (1 << 32) - 1
MASK64 = (1 << 64) - 1

Target = str | int
"""A jump target: a label name or an absolute code offset."""

# ----------------------------------------------------------------------------------------
# numbers


def parse_int(text: str) -> int | None:
    """Parses ``123``, ``-5``, ``0x1f``, ``0b101`` (u64/i64 range), else ``None``."""
    neg = text.startswith("-")
    body = text[1:] if neg else text
    try:
        if body[:2] in ("0x", "0X"):
            value = int(body[2:], 16)
        elif body[:2] in ("0b", "0B"):
            value = int(body[2:], 2)
        elif body.isdigit():
            value = int(body)
        else:
            return None
    except ValueError:
        return None
    if neg:
        value = -value
    if not -(1 << 63) <= value <= MASK64:
        return None
    return value


def _as_i32(value: int) -> int | None:
    """The reference rule: reinterpret as i64, then it must fit i32."""
    v = value & MASK64
    if v >= 1 << 63:
        v -= 1 << 64
    return v if -(1 << 31) <= v < (1 << 31) else None


def _as_u32_i32(value: int) -> int | None:
    """Memory offsets: u32 values are reinterpreted, otherwise the i32 rule."""
    if 0 <= value <= MASK32:
        return value - (1 << 32) if value >= 1 << 31 else value
    return _as_i32(value)


def _s32(value: int) -> int:
    value &= MASK32
    return value - (1 << 32) if value >= 1 << 31 else value


# ----------------------------------------------------------------------------------------
# encoding


def _imm_len(v: int) -> int:
    if v == 0:
        return 0
    if -0x80 <= v < 0x80:
        return 1
    if -0x8000 <= v < 0x8000:
        return 2
    if -0x800000 <= v < 0x800000:
        return 3
    return 4


def _imm(v: int, n: int | None = None) -> bytes:
    """``v`` (i32) in the fewest bytes that sign-extend back to it (or exactly ``n``)."""
    if n is None:
        n = _imm_len(v)
    return (v & MASK32).to_bytes(4, "little")[:n]


_TARGET_FORMS = frozenset((Form.O, Form.RIO, Form.RRO))


def _encode(opcode: int, form: Form, ra: int, rb: int, rd: int, imm1: int, imm2: int,
            imm64: int) -> bytes:
    """The canonical bytes of an instruction without a jump target."""
    if form is Form.A:
        return bytes((opcode,))
    if form is Form.RRR:
        return bytes((opcode, ra | rb << 4, rd))
    if form is Form.RRI:
        return bytes((opcode, ra | rb << 4)) + _imm(imm1)
    if form is Form.RI:
        return bytes((opcode, ra)) + _imm(imm1)
    if form is Form.RR:
        return bytes((opcode, rd | ra << 4))
    if form is Form.I:
        return bytes((opcode,)) + _imm(imm1)
    if form is Form.RII:
        a = _imm(imm1)
        return bytes((opcode, ra | len(a) << 4)) + a + _imm(imm2)
    if form is Form.II:
        a = _imm(imm1)
        return bytes((opcode, len(a))) + a + _imm(imm2)
    if form is Form.RRII:
        a = _imm(imm1)
        return bytes((opcode, ra | rb << 4, len(a))) + a + _imm(imm2)
    if form is Form.RI64:
        return bytes((opcode, ra)) + (imm64 & MASK64).to_bytes(8, "little")
    raise ValueError(f"form {form.name} carries a jump target")


def _prefix(opcode: int, form: Form, ra: int, rb: int, imm1: int) -> bytes:
    """The bytes of a jump/branch before its pc-relative offset."""
    if form is Form.O:
        return bytes((opcode,))
    if form is Form.RRO:
        return bytes((opcode, ra | rb << 4))
    a = _imm(imm1)  # RIO
    return bytes((opcode, ra | len(a) << 4)) + a


def encode_instruction(insn: Instruction, isa: InstructionSet) -> bytes:
    """The canonical encoding of a decoded instruction at its own pc (raises
    ``ValueError`` for an unknown opcode)."""
    info = insn.info
    if info is None:
        raise ValueError(f"unknown opcode 0x{insn.opcode:02x} at pc {insn.pc}")
    opcode = info.opcodes[isa]
    if opcode is None:
        raise ValueError(f"{info.mnemonic} is not in {isa.key}")
    if info.form in _TARGET_FORMS:
        off = _s32(insn.target - insn.pc)
        return _prefix(opcode, info.form, insn.ra, insn.rb, insn.imm1) + _imm(off)
    return _encode(opcode, info.form, insn.ra, insn.rb, insn.rd, insn.imm1, insn.imm2,
                   insn.imm64)


def _ends_block(opcode: int, isa: InstructionSet) -> bool:
    """Whether an instruction with this opcode byte ends a basic block (an unknown
    opcode counts as ``trap``)."""
    info = opcode_table(isa).get(opcode)
    return info is None or info.is_terminator


# ----------------------------------------------------------------------------------------
# program builder

_REGS: dict[str, int] = {name: i for i, name in enumerate(REG_NAMES)}
_REGS.update({f"r{i}": i for i in range(13)})

_LABEL_NAME = re.compile(r"[A-Za-z_.$][\w.$]*\Z")


@dataclass(frozen=True)
class _Jump:
    index: int
    prefix: bytes
    target: Target
    line: int | None


Resolved = tuple[int | None, int]  # (item index, 0) for a label, (None, offset) if absolute


def _reference_jump_sizes(jumps: list[_Jump], resolved: list[Resolved],
                          sizes: list[int]) -> list[int] | None:
    """The jump sizes PolkaVM's ``ProgramBlobBuilder`` arrives at (behaviour reproduced,
    not its code): each offset is first guessed as the difference of the instruction
    indices; then sweeps in code order re-encode every jump whose position or target
    moved, reading targets before it at their new position and targets after it at the
    previous sweep's, until a sweep moves nothing.  This can settle on a longer encoding
    than necessary (an offset of 128 that would fit one byte as 127); real blobs do.
    Returns ``None`` if it does not settle."""
    m = len(jumps)
    fixed = list(accumulate(sizes, initial=0))  # jump items count 0 here
    idx = [j.index for j in jumps]
    plen = [len(j.prefix) for j in jumps]
    targets = [(t, a if t is None else fixed[t], 0 if t is None else bisect_left(idx, t))
               for t, a in resolved]
    size = [0] * m
    pos = [0] * m
    tgt = [0] * m
    delta = 0
    for k, (t, tf, _) in enumerate(targets):
        p = fixed[idx[k]] + delta
        guess = _s32(tf - p) if t is None else t - idx[k]
        pos[k], tgt[k] = p, p + guess
        size[k] = plen[k] + _imm_len(_s32(guess))
        delta += size[k]
    prev = list(accumulate(size, initial=0))
    # per jump: 0 = target at or before it (this sweep), 1 = after it (last sweep),
    # 2 = absolute
    kind = [2 if t is None else (0 if t <= idx[k] else 1) for k, (t, _, _) in enumerate(targets)]
    tfix = [tf for _, tf, _ in targets]
    tnb = [nb for _, _, nb in targets]
    start = [fixed[i] for i in idx]
    for _ in range(1000):
        moved = False
        cur = [0] * (m + 1)
        delta = 0
        for k in range(m):
            p = start[k] + delta
            kd = kind[k]
            new = tfix[k] + (cur[tnb[k]] if kd == 0 else prev[tnb[k]] if kd == 1 else 0)
            if p != pos[k] or new != tgt[k]:
                pos[k] = p
                tgt[k] = new
                d = new - p if kd != 2 else _s32(new - p)
                if d == 0:
                    n = 0
                elif -0x80 <= d < 0x80:
                    n = 1
                elif -0x8000 <= d < 0x8000:
                    n = 2
                elif -0x800000 <= d < 0x800000:
                    n = 3
                else:
                    n = 4
                size[k] = plen[k] + n
                moved = True
            delta += size[k]
            cur[k + 1] = delta
        if not moved:
            return size
        prev = cur
    return None  # pragma: no cover


def _least_jump_sizes(jumps: list[_Jump], resolved: list[Resolved],
                      sizes: list[int]) -> list[int]:
    """The least fixed point: start from the shortest offsets and grow."""
    sizes = list(sizes)
    for j in jumps:
        sizes[j.index] = len(j.prefix)
    for iteration in range(1000):
        pos = list(accumulate(sizes, initial=0))
        changed = False
        for j, (tidx, absolute) in zip(jumps, resolved, strict=True):
            tpos = absolute if tidx is None else pos[tidx]
            n = len(j.prefix) + _imm_len(_s32(tpos - pos[j.index]))
            old = sizes[j.index]
            if n != old and not (iteration > 100 and n < old):
                sizes[j.index] = n
                changed = True
        if not changed:
            break
    return [sizes[j.index] for j in jumps]


class ProgramBuilder:
    """Builds a :class:`ProgramBlob` instruction by instruction.

    ::

        b = ProgramBuilder(InstructionSet.JAM_V1)
        b.label("main", export=True)
        b.emit("load_imm", ra="a0", imm1=1)
        b.label("loop")
        b.emit("add_imm_64", ra="a0", rb="a0", imm1=1)
        b.emit("branch_less_unsigned_imm", ra="a0", imm1=10, target="loop")
        b.emit("trap")
        blob = b.build()

    Labels follow the assembler's rules (a ``fallthrough`` is inserted when a label is
    placed after an instruction that does not end a block, unless ``fallthrough=False``).
    :meth:`asm` feeds assembler text into the same builder.
    """

    def __init__(self, isa: InstructionSet = InstructionSet.JAM_V1) -> None:
        self.isa = isa
        self.ro_data_size = 0
        self.rw_data_size = 0
        self.stack_size = 0
        self.ro_data = bytearray()
        self.rw_data = bytearray()
        self.imports: dict[int, bytes] = {}
        self.sections: dict[int, bytearray] = {}
        self.min_jump_table_entry_size = 0
        self._items: list[bytes | None] = []
        self._unmarked: set[int] = set()
        self._jumps: list[_Jump] = []
        self._labels: dict[str, int] = {}
        self._exports: list[tuple[bytes, Target, int | None]] = []
        self._jump_table: list[tuple[Target, int | None]] = []
        self._at_block_start = True
        self._positions: list[int] | None = None
        self.line: int | None = None  # current source line, for error messages
        self.path: str | None = None

    # ---- errors ----
    def error(self, message: str, line: int | None = None) -> AssemblerError:
        """An error at ``line`` (default: the line being assembled)."""
        return AssemblerError(message, line=self.line if line is None else line, path=self.path)

    def _fail(self, message: str) -> AssemblerError:
        """An error that belongs to no particular line."""
        return AssemblerError(message, path=self.path)

    # ---- labels, exports, tables ----
    def label(self, name: str, *, export: bool = False, fallthrough: bool = True) -> None:
        """Defines ``name`` at the next instruction."""
        if not _LABEL_NAME.match(name):
            raise self.error(f"invalid label name {name!r}")
        if name in self._labels:
            raise self.error(f"duplicate label {name!r}")
        if fallthrough and not self._at_block_start:
            self._emit(by_mnemonic()["fallthrough"])
        if fallthrough:
            self._at_block_start = True
        self._labels[name] = len(self._items)
        if export:
            self._exports.append((name.encode(), name, self.line))

    def export(self, symbol: str | bytes, target: Target) -> None:
        """Adds an export (in order with the ``pub`` labels)."""
        sym = symbol.encode() if isinstance(symbol, str) else bytes(symbol)
        self._exports.append((sym, target, self.line))

    def add_import(self, symbol: str | bytes, index: int | None = None) -> int:
        """Sets import ``index`` (default: the next free one); returns the index."""
        sym = symbol.encode() if isinstance(symbol, str) else bytes(symbol)
        if index is None:
            index = len(self.imports)
        if index in self.imports:
            raise self.error(f"import {index} is defined twice")
        if not 0 <= index < 1024:
            raise self.error(f"import index out of range: {index}")
        self.imports[index] = sym
        return index

    def jump_table_entry(self, target: Target) -> int:
        """Appends a jump-table entry; returns its dynamic-jump address 2*(k+1)."""
        self._jump_table.append((target, self.line))
        return 2 * len(self._jump_table)

    def load_address(self, rd: int | str, target: Target) -> None:
        """``rd = @target``: a new jump-table entry and a ``load_imm`` of its address."""
        self.emit("load_imm", ra=rd, imm1=self.jump_table_entry(target))

    # ---- instructions ----
    def emit(self, mnemonic: str, *, ra: int | str = 0, rb: int | str = 0, rd: int | str = 0,
             imm1: int = 0, imm2: int = 0, imm64: int = 0, target: Target | None = None) -> None:
        """Appends one instruction (operand names as in shared/spec/isa.md section 3)."""
        info = by_mnemonic().get(mnemonic)
        if info is None:
            raise self.error(f"unknown instruction {mnemonic!r}")
        regs = [self._reg(x) for x in (ra, rb, rd)]
        imms = []
        for v in (imm1, imm2):
            s = _as_u32_i32(v) if -(1 << 63) <= v <= MASK64 else None
            if s is None:
                raise self.error(f"immediate out of range for i32: {v}")
            imms.append(s)
        if not -(1 << 63) <= imm64 <= MASK64:
            raise self.error(f"immediate out of range for 64 bits: {imm64}")
        if (info.form in _TARGET_FORMS) != (target is not None):
            need = "needs" if info.form in _TARGET_FORMS else "takes no"
            raise self.error(f"{mnemonic} {need} a target")
        if isinstance(target, int) and not 0 <= target <= MASK32:
            raise self.error(f"code offset out of range: {target}")
        self._emit(info, regs[0], regs[1], regs[2], imms[0], imms[1], imm64 & MASK64, target)

    def emit_raw(self, data: bytes, *, start: bool = True) -> None:
        """Appends raw code bytes: one instruction (``start``) or bytes that are not an
        instruction start (bitmask bits clear)."""
        if not data:
            raise self.error("empty raw instruction")
        if start:
            self._at_block_start = _ends_block(data[0], self.isa)
        else:
            self._unmarked.add(len(self._items))
        self._items.append(bytes(data))

    def _reg(self, r: int | str) -> int:
        if isinstance(r, str):
            if r not in _REGS:
                raise self.error(f"unknown register {r!r}")
            return _REGS[r]
        if not 0 <= r <= 12:
            raise self.error(f"register out of range: {r}")
        return r

    def _emit(self, info: OpInfo, ra: int = 0, rb: int = 0, rd: int = 0, imm1: int = 0,
              imm2: int = 0, imm64: int = 0, target: Target | None = None) -> None:
        opcode = info.opcodes[self.isa]
        if opcode is None:
            raise self.error(f"instruction {info.mnemonic} is not available in {self.isa.key}")
        if target is None:
            self._items.append(_encode(opcode, info.form, ra, rb, rd, imm1, imm2, imm64))
        else:
            prefix = _prefix(opcode, info.form, ra, rb, imm1)
            self._jumps.append(_Jump(len(self._items), prefix, target, self.line))
            self._items.append(None)
        self._at_block_start = info.is_terminator

    @property
    def instruction_count(self) -> int:
        return len(self._items) - len(self._unmarked)

    # ---- text ----
    def asm(self, text: str, *, path: str | None = None, first_line: int = 1) -> None:
        """Assembles ``text`` into this builder (see the module docstring)."""
        _Parser(self).feed(text, path=path, first_line=first_line)

    # ---- layout ----
    def _resolve(self, target: Target, line: int | None) -> Resolved:
        """(item index, 0) for a label, (None, offset) for an absolute target."""
        if isinstance(target, int):
            return None, target & MASK32
        if target not in self._labels:
            raise self.error(f"label is not defined: {target!r}", line)
        return self._labels[target], 0

    def _layout(self, shortest: bool) -> tuple[list[int], list[int]]:
        """Item sizes and positions (jump offsets as the reference writer chooses them, or
        at the least fixed point with ``shortest``)."""
        sizes = [0 if b is None else len(b) for b in self._items]
        resolved = [self._resolve(j.target, j.line) for j in self._jumps]
        jump_sizes = None if shortest else _reference_jump_sizes(self._jumps, resolved, sizes)
        if jump_sizes is None:
            jump_sizes = _least_jump_sizes(self._jumps, resolved, sizes)
        for j, n in zip(self._jumps, jump_sizes, strict=True):
            sizes[j.index] = n
        return sizes, list(accumulate(sizes, initial=0))

    def build(self, *, shortest: bool = False) -> ProgramBlob:
        """Lays out the code and returns the program blob.

        Jump offsets are sized the way PolkaVM's blob writer sizes them, which real
        blobs reproduce byte for byte; ``shortest`` picks the least fixed point instead
        (it differs only where the writer settled on a longer offset, e.g. 128 in two
        bytes where 127 in one byte is also consistent)."""
        sizes, pos = self._layout(shortest)
        items = list(self._items)
        for j in self._jumps:
            off = _s32(self._target_pc(j.target, j.line, pos) - pos[j.index])
            n = sizes[j.index] - len(j.prefix)
            if n < _imm_len(off):  # pragma: no cover - the layouts only stop when consistent
                raise self.error("jump layout did not converge", j.line)
            items[j.index] = j.prefix + _imm(off, n)
        code = b"".join(x for x in items if x is not None)
        bitmask = bytearray((len(code) + 7) // 8)
        unmarked = self._unmarked
        for i in range(len(items)):
            if i not in unmarked:
                p = pos[i]
                bitmask[p >> 3] |= 1 << (p & 7)
        self._positions = pos
        table = [self._target_pc(t, line, pos) for t, line in self._jump_table]
        size = max([self.min_jump_table_entry_size] + [(e.bit_length() + 7) // 8 for e in table])
        exports = [Export(self._target_pc(t, line, pos), sym) for sym, t, line in self._exports]
        if sorted(self.imports) != list(range(len(self.imports))):
            raise self._fail(f"imports are not numbered 0..n-1: {sorted(self.imports)}")
        return ProgramBlob(
            isa=self.isa,
            ro_data_size=max(self.ro_data_size, len(self.ro_data)),
            rw_data_size=max(self.rw_data_size, len(self.rw_data)),
            stack_size=self.stack_size,
            ro_data=bytes(self.ro_data),
            rw_data=bytes(self.rw_data),
            imports=[self.imports[i] for i in range(len(self.imports))],
            exports=exports,
            jump_table=table,
            jump_table_entry_size=size,
            code=code,
            bitmask=bytes(bitmask),
            debug_sections={k: bytes(v) for k, v in sorted(self.sections.items())},
        )

    def _target_pc(self, target: Target, line: int | None, pos: list[int]) -> int:
        tidx, absolute = self._resolve(target, line)
        return absolute if tidx is None else pos[tidx]

    def label_pc(self, name: str, nth: int = 0) -> int:
        """After :meth:`build`: the pc of the ``nth`` instruction counted from ``name``."""
        if self._positions is None:
            raise self._fail("label_pc() needs build() first")
        if name not in self._labels:
            raise self._fail(f"label is not defined: {name!r}")
        index = self._labels[name]
        left = nth
        while True:
            while index in self._unmarked:
                index += 1
            if left == 0 or index >= len(self._items):
                break
            left -= 1
            index += 1
        if left:
            raise self._fail(f"@{name}[{nth}] is past the end of the code")
        return self._positions[index]

    def has_label(self, name: str) -> bool:
        return name in self._labels


# ----------------------------------------------------------------------------------------
# operator tables (shared by the parser and the printer)

Pair = tuple[str | None, str]  # (mnemonic with the i32 prefix, mnemonic without)


def _pair(stem: str) -> Pair:
    return (f"{stem}_32", f"{stem}_64")


def _single(mnemonic: str) -> Pair:
    return (None, mnemonic)


_RRR: dict[str, Pair] = {
    "+": _pair("add"), "-": _pair("sub"), "*": _pair("mul"),
    "/u": _pair("div_unsigned"), "/s": _pair("div_signed"),
    "%u": _pair("rem_unsigned"), "%s": _pair("rem_signed"),
    "<<": _pair("shift_logical_left"), ">>": _pair("shift_logical_right"),
    ">>a": _pair("shift_arithmetic_right"),
    "<<r": _pair("rotate_left"), ">>r": _pair("rotate_right"),
    "&": _single("and"), "|": _single("or"), "^": _single("xor"),
    "<u": _single("set_less_than_unsigned"), "<s": _single("set_less_than_signed"),
    "mulh": _single("mul_upper_signed_signed"),
    "mulhu": _single("mul_upper_unsigned_unsigned"),
    "mulhsu": _single("mul_upper_signed_unsigned"),
}
_RRR_SWAPPED = {">u": "<u", ">s": "<s"}

_REG_IMM: dict[str, Pair] = {
    "+": _pair("add_imm"), "*": _pair("mul_imm"),
    "&": _single("and_imm"), "|": _single("or_imm"), "^": _single("xor_imm"),
    "<u": _single("set_less_than_unsigned_imm"), "<s": _single("set_less_than_signed_imm"),
    ">u": _single("set_greater_than_unsigned_imm"), ">s": _single("set_greater_than_signed_imm"),
    "<<": _pair("shift_logical_left_imm"), ">>": _pair("shift_logical_right_imm"),
    ">>a": _pair("shift_arithmetic_right_imm"), ">>r": _pair("rotate_right_imm"),
}
_IMM_REG: dict[str, Pair] = {
    "+": _pair("add_imm"), "*": _pair("mul_imm"),
    "&": _single("and_imm"), "|": _single("or_imm"), "^": _single("xor_imm"),
    "-": _pair("negate_and_add_imm"),
    "<<": _pair("shift_logical_left_imm_alt"), ">>": _pair("shift_logical_right_imm_alt"),
    ">>a": _pair("shift_arithmetic_right_imm_alt"), ">>r": _pair("rotate_right_imm_alt"),
    "<u": _single("set_greater_than_unsigned_imm"), "<s": _single("set_greater_than_signed_imm"),
    ">u": _single("set_less_than_unsigned_imm"), ">s": _single("set_less_than_signed_imm"),
}
_UNARY: dict[str, Pair] = {
    "clz": _pair("count_leading_zero_bits"), "ctz": _pair("count_trailing_zero_bits"),
    "cpop": _pair("count_set_bits"), "sext8": _single("sign_extend_8"),
    "sext16": _single("sign_extend_16"), "zext16": _single("zero_extend_16"),
    "reverse": _single("reverse_byte"), "sbrk": _single("sbrk"),
}
_MINMAX = {"maxs": "maximum", "maxu": "maximum_unsigned", "mins": "minimum",
           "minu": "minimum_unsigned"}
_LOADS = {w: (f"load_{w}", f"load_indirect_{w}") for w in
          ("u8", "i8", "u16", "i16", "u32", "i32", "u64")}
_STORES = {w: (f"store_{w}", f"store_indirect_{w}", f"store_imm_{w}",
               f"store_imm_indirect_{w}") for w in ("u8", "u16", "u32", "u64")}
_BRANCH_RR = {"==": "branch_eq", "!=": "branch_not_eq", "<u": "branch_less_unsigned",
              "<s": "branch_less_signed", ">=u": "branch_greater_or_equal_unsigned",
              ">=s": "branch_greater_or_equal_signed"}
_BRANCH_RR_SWAPPED = {"<=u": ">=u", "<=s": ">=s", ">u": "<u", ">s": "<s"}
_BRANCH_RI = {"==": "branch_eq_imm", "!=": "branch_not_eq_imm",
              "<u": "branch_less_unsigned_imm", "<=u": "branch_less_or_equal_unsigned_imm",
              ">=u": "branch_greater_or_equal_unsigned_imm", ">u": "branch_greater_unsigned_imm",
              "<s": "branch_less_signed_imm", "<=s": "branch_less_or_equal_signed_imm",
              ">=s": "branch_greater_or_equal_signed_imm", ">s": "branch_greater_signed_imm"}
_MIRROR = {"==": "==", "!=": "!=", "<u": ">u", ">u": "<u", "<=u": ">=u", ">=u": "<=u",
           "<s": ">s", ">s": "<s", "<=s": ">=s", ">=s": "<=s"}
_SIMPLE = {"trap": "trap", "fallthrough": "fallthrough", "unlikely": "unlikely",
           "memset": "memset"}
_MEMSET = ["[", "a0", "..", "a0", "+", "a2", "]", "=", "u8", "a1"]

# ----------------------------------------------------------------------------------------
# parser

_TOKEN = re.compile(
    r"\s*(@[\w.$]+|0[xX][0-9a-fA-F]+|0[bB][01]+|\d+|[A-Za-z_]\w*"
    r"|<<r|>>r|>>a|<=u|<=s|>=u|>=s|<<|>>|<u|<s|>u|>s|==|!=|/u|/s|%u|%s|\.\."
    r"|[-+*&|^~=,\[\]()])"
)
_LABEL_LINE = re.compile(r"(pub\s+)?@([^\s:]+):\s*(%no_fallthrough)?\Z")
_DIRECTIVE = re.compile(r"%(\w+)\s*(.*)\Z")


def _strip_comment(line: str) -> str:
    at = line.find("//")
    if at < 0:
        return line
    if '"' not in line[:at]:
        return line[:at]
    quoted = False
    i = 0
    while i < len(line):
        c = line[i]
        if quoted and c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif not quoted and line.startswith("//", i):
            return line[:i]
        i += 1
    return line


def _parse_hex(text: str) -> bytes | None:
    out = bytearray()
    for group in text.replace(",", " ").split():
        if group[:2] in ("0x", "0X"):
            group = group[2:]
        if len(group) % 2:
            return None
        try:
            out += bytes.fromhex(group)
        except ValueError:
            return None
    return bytes(out)


def parse_symbol(text: str) -> bytes | None:
    """A bare word of printable ASCII or a double-quoted string with escapes."""
    text = text.strip()
    if not text:
        return None
    if not text.startswith('"'):
        if any(c.isspace() or not 0x21 <= ord(c) <= 0x7E for c in text):
            return None
        return text.encode()
    if len(text) < 2 or not text.endswith('"'):
        return None
    out = bytearray()
    body = text[1:-1]
    i = 0
    while i < len(body):
        c = body[i]
        if c == '"':
            return None
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt in ('"', "\\"):
            out += nxt.encode()
            i += 2
        elif nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2 : i + 4]):
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        else:
            return None
    return bytes(out)


def format_symbol(symbol: bytes) -> str:
    """Inverse of :func:`parse_symbol`."""
    if (symbol and all(0x21 <= b <= 0x7E for b in symbol) and symbol[:1] != b'"'
            and b"//" not in symbol):
        return symbol.decode()
    out = []
    for b in symbol:
        if b in (0x22, 0x5C):
            out.append("\\" + chr(b))
        elif 0x20 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"'


def _is_value_token(tok: str) -> bool:
    return tok in _REGS or tok[0].isdigit() or tok[0] == "@" or tok in ("]", ")", "tmp")


class _Parser:
    """Turns text lines into :class:`ProgramBuilder` calls."""

    def __init__(self, builder: ProgramBuilder) -> None:
        self.b = builder
        self.ops = by_mnemonic()
        self.seen_instruction = builder.instruction_count > 0

    def error(self, message: str) -> AssemblerError:
        return self.b.error(message)

    def feed(self, text: str, *, path: str | None = None, first_line: int = 1) -> None:
        b = self.b
        b.path = path
        for number, raw in enumerate(text.splitlines(), first_line):
            b.line = number
            line = raw.strip()
            if not line or line.startswith("//"):
                continue
            line = _strip_comment(line).strip()
            if not line:
                continue
            head = line[0]
            if head == "%":
                self.directive(line)
            elif head == "@" or line.startswith("pub "):
                self.label(line)
            else:
                self.instruction(self.tokenize(line))
        b.line = None

    # ---- labels and directives ----
    def label(self, line: str) -> None:
        m = _LABEL_LINE.match(line)
        if not m:
            raise self.error(f"cannot parse label line: {line!r}")
        name = m.group(2)
        if parse_int(name) is not None:
            raise self.error(f"a label name cannot be a number: {name!r}")
        self.b.label(name, export=bool(m.group(1)), fallthrough=not m.group(3))

    def directive(self, line: str) -> None:
        m = _DIRECTIVE.match(line)
        if not m:
            raise self.error(f"cannot parse directive: {line!r}")
        name, rest = m.group(1), m.group(2).strip()
        b = self.b
        if name in ("raw", "bytes"):
            data = _parse_hex(rest)
            if not data:
                raise self.error(f"%{name} needs hex bytes")
            self.seen_instruction = True
            b.emit_raw(data, start=name == "raw")
            return
        key, eq, value = rest.partition("=")
        key, value = key.strip(), value.strip()
        if not eq:
            raise self.error(f"expected '%{name} ... = ...'")
        if name in ("ro_data_size", "rw_data_size", "stack_size", "jump_table_entry_size"):
            if key or not value.isdigit() or int(value) > MASK32:
                raise self.error(f"%{name} needs a decimal u32")
            if name == "jump_table_entry_size":
                if int(value) > 4:
                    raise self.error("the jump table entry size must be 0..4")
                b.min_jump_table_entry_size = int(value)
            else:
                setattr(b, name, int(value))
        elif name in ("ro_data", "rw_data") and not key:
            data = _parse_hex(value)
            if data is None:
                raise self.error(f"%{name} needs hex bytes")
            (b.ro_data if name == "ro_data" else b.rw_data).extend(data)
        elif name == "isa" and not key:
            self.set_isa(value)
        elif name == "import":
            index = parse_int(key)
            sym = parse_symbol(value)
            if index is None or sym is None:
                raise self.error("expected '%import N = symbol'")
            b.add_import(sym, index)
        elif name == "export":
            sym = parse_symbol(value)
            if sym is None:
                raise self.error("expected '%export @label = symbol'")
            b.export(sym, self.target(key))
        elif name == "jump_table" and not key:
            for item in value.split(","):
                b.jump_table_entry(self.target(item.strip()))
        elif name == "section":
            sid = parse_int(key)
            data = _parse_hex(value)
            if sid is None or not 128 <= sid <= 255 or data is None:
                raise self.error("expected '%section ID = hex' with ID in 128..255")
            b.sections.setdefault(sid, bytearray()).extend(data)
        else:
            raise self.error(f"unknown directive: %{name}")

    def set_isa(self, key: str) -> None:
        try:
            isa = InstructionSet.from_key(key)
        except ValueError as exc:
            raise self.error(str(exc)) from None
        if self.seen_instruction and isa is not self.b.isa:
            raise self.error("%isa must come before the first instruction")
        self.b.isa = isa

    def target(self, tok: str) -> Target:
        if not tok.startswith("@") or len(tok) < 2:
            value = parse_int(tok)
            if value is None or not 0 <= value <= MASK32:
                raise self.error(f"expected a label or a code offset, got {tok!r}")
            return value
        value = parse_int(tok[1:])
        if value is not None:
            if not 0 <= value <= MASK32:
                raise self.error(f"code offset out of range: {tok}")
            return value
        return tok[1:]

    # ---- tokens and operands ----
    def tokenize(self, line: str) -> list[str]:
        toks: list[str] = _TOKEN.findall(line)
        if "".join(toks) != "".join(line.split()):
            raise self.error(f"cannot parse line: {line!r}")
        if "-" in toks:  # fold unary minus into the number after it
            out: list[str] = []
            for tok in toks:
                if out and out[-1] == "-" and tok[0].isdigit() and (
                        len(out) == 1 or not _is_value_token(out[-2])):
                    out[-1] = "-" + tok
                else:
                    out.append(tok)
            toks = out
        return toks

    def reg(self, tok: str) -> int:
        r = _REGS.get(tok)
        if r is None:
            raise self.error(f"expected a register, got {tok!r}")
        return r

    def imm(self, tok: str) -> int:
        value = parse_int(tok)
        if value is None:
            raise self.error(f"expected an immediate, got {tok!r}")
        s = _as_i32(value)
        if s is None:
            raise self.error(f"immediate does not fit i32: {tok}")
        return s

    def mem(self, t: list[str]) -> tuple[int | None, int]:
        """``[imm]``, ``[rb]``, ``[rb + imm]``, ``[rb - imm]`` -> (base, offset)."""
        if len(t) < 3 or t[0] != "[" or t[-1] != "]":
            raise self.error(f"expected a memory operand, got {' '.join(t)!r}")
        inner = t[1:-1]
        if len(inner) == 1:
            if inner[0] in _REGS:
                return _REGS[inner[0]], 0
            return None, self.offset(inner[0], False)
        if len(inner) == 3 and inner[1] in "+-" and inner[0] in _REGS:
            return _REGS[inner[0]], self.offset(inner[2], inner[1] == "-")
        raise self.error(f"cannot parse memory operand {' '.join(t)!r}")

    def offset(self, tok: str, negate: bool) -> int:
        value = parse_int(tok)
        s = None if value is None else _as_u32_i32(-value if negate else value)
        if s is None:
            raise self.error(f"bad memory offset: {tok!r}")
        return s

    def pick(self, pair: Pair, i32: bool, what: str) -> OpInfo:
        m32, m64 = pair
        if i32:
            if m32 is None:
                raise self.error(f"i32 is not supported for {what}")
            return self.ops[m32]
        info = self.ops[m64]
        if info.opcodes[self.b.isa] is None and m32 is not None:
            return self.ops[m32]  # a 32-bit instruction set
        return info

    def emit(self, mnemonic: str | OpInfo, **kw: int | Target) -> None:
        info = self.ops[mnemonic] if isinstance(mnemonic, str) else mnemonic
        self.seen_instruction = True
        self.b._emit(info, **kw)  # type: ignore[arg-type]

    # ---- instructions ----
    def instruction(self, t: list[str]) -> None:
        h = t[0]
        if len(t) == 1:
            if h in _SIMPLE:
                return self.emit(_SIMPLE[h])
            if h == "nop":
                return self.emit("move_reg")
            if h == "ret":
                return self.emit("jump_indirect")
        if h == "jump":
            return self.jump(t)
        if h == "ecalli" and len(t) == 2:
            value = parse_int(t[1])
            s = None if value is None else _as_u32_i32(value)
            if s is None:
                raise self.error(f"bad ecalli number: {t[1]!r}")
            return self.emit("ecalli", imm1=s)
        if h == "tmp":
            return self.tmp_jump(t)
        if t == _MEMSET:
            return self.emit("memset")
        if h in _STORES and len(t) >= 5 and t[1] == "[" and t[-2] == "=":
            return self.store(h, t[1:-2], t[-1])
        i32 = h == "i32"
        if i32:
            t = t[1:]
        if len(t) >= 3 and t[1] == "=":
            return self.assign(self.reg(t[0]), t[2:], i32)
        raise self.error(f"cannot parse instruction: {' '.join(t)!r}")

    def jump(self, t: list[str]) -> None:
        if len(t) >= 2 and t[1].startswith("@"):
            target = self.target(t[1])
            if len(t) == 2:
                return self.emit("jump", target=target)
            if len(t) == 6 and t[2] == "if":
                return self.branch(target, t[3], t[4], t[5])
        elif len(t) >= 4 and t[1] == "[":
            base, off = self.mem(t[1:])
            if base is not None:
                return self.emit("jump_indirect", ra=base, imm1=off)
        raise self.error(f"cannot parse jump: {' '.join(t)!r}")

    def branch(self, target: Target, lhs: str, op: str, rhs: str) -> None:
        if op not in _MIRROR:
            raise self.error(f"invalid condition operator {op!r}")
        lreg, rreg = _REGS.get(lhs), _REGS.get(rhs)
        if lreg is not None and rreg is not None:
            if op in _BRANCH_RR_SWAPPED:
                op, lreg, rreg = _BRANCH_RR_SWAPPED[op], rreg, lreg
            return self.emit(_BRANCH_RR[op], ra=lreg, rb=rreg, target=target)
        if lreg is None and rreg is not None:
            lreg, op, rhs = rreg, _MIRROR[op], lhs
        if lreg is None:
            raise self.error("a condition needs at least one register")
        return self.emit(_BRANCH_RI[op], ra=lreg, imm1=self.imm(rhs), target=target)

    def tmp_jump(self, t: list[str]) -> None:
        # tmp = rb, rd = imm, jump [tmp + imm]
        if (len(t) >= 11 and t[1] == "=" and t[3] == "," and t[5] == "=" and t[7] == ","
                and t[8] == "jump" and t[9] == "[" and t[10] == "tmp"):
            rb, ra, value = self.reg(t[2]), self.reg(t[4]), self.imm(t[6])
            _, off = self.mem(["[", "a0", *t[11:]])
            return self.emit("load_imm_and_jump_indirect", ra=ra, rb=rb, imm1=value, imm2=off)
        raise self.error(f"cannot parse: {' '.join(t)!r}")

    def store(self, width: str, mem: list[str], src: str) -> None:
        base, off = self.mem(mem)
        direct, indirect, imm_direct, imm_indirect = _STORES[width]
        if src in _REGS:
            if base is None:
                return self.emit(direct, ra=_REGS[src], imm1=off)
            return self.emit(indirect, ra=_REGS[src], rb=base, imm1=off)
        value = self.imm(src)
        if base is None:
            return self.emit(imm_direct, imm1=off, imm2=value)
        return self.emit(imm_indirect, ra=base, imm1=off, imm2=value)

    def assign(self, dst: int, r: list[str], i32: bool) -> None:
        n = len(r)
        h = r[0]
        if n == 1:
            return self.assign_value(dst, h)
        if n == 2:
            if h == "i64":
                value = parse_int(r[1])
                if value is None:
                    raise self.error(f"expected an immediate, got {r[1]!r}")
                return self.emit("load_imm64", ra=dst, imm64=value & MASK64)
            if h in _UNARY:
                return self.emit(self.pick(_UNARY[h], i32, h), rd=dst, ra=self.reg(r[1]))
        if h in _LOADS and n >= 4 and r[1] == "[":
            base, off = self.mem(r[1:])
            direct, indirect = _LOADS[h]
            if base is None:
                return self.emit(direct, ra=dst, imm1=off)
            return self.emit(indirect, ra=dst, rb=base, imm1=off)
        if n == 6 and h in _MINMAX and r[1] == "(" and r[3] == "," and r[5] == ")":
            return self.emit(_MINMAX[h], rd=dst, ra=self.reg(r[2]), rb=self.reg(r[4]))
        if n == 6 and r[:2] == ["~", "("] and r[3] == "^" and r[5] == ")":
            return self.emit("xnor", rd=dst, ra=self.reg(r[2]), rb=self.reg(r[4]))
        if n == 5 and r[1] in ("if", "unless") and r[4] == "0":
            return self.cmov(dst, r[0], r[1] == "unless", r[2], r[3])
        if n >= 4 and r[1] == "," and r[2] == "jump":
            return self.load_and_jump(dst, r[0], r[3:])
        if n == 3:
            return self.binary(dst, r[0], r[1], r[2], i32)
        if n == 4 and r[1] in ("&", "|") and r[2] == "~":
            name = "and_inverted" if r[1] == "&" else "or_inverted"
            return self.emit(name, rd=dst, ra=self.reg(r[0]), rb=self.reg(r[3]))
        raise self.error(f"cannot parse: {REG_NAMES[dst]} = {' '.join(r)}")

    def assign_value(self, dst: int, tok: str) -> None:
        if tok in _REGS:
            return self.emit("move_reg", rd=dst, ra=_REGS[tok])
        if tok.startswith("@"):
            target = self.target(tok)
            self.seen_instruction = True
            return self.b._emit(self.ops["load_imm"], ra=dst,
                                imm1=self.b.jump_table_entry(target))
        value = parse_int(tok)
        if value is None:
            raise self.error(f"expected a register, immediate or label, got {tok!r}")
        s = _as_i32(value)
        if s is None and not self.b.isa.is_64_bit and 0 <= value <= MASK32:
            s = _as_u32_i32(value)  # Latest32 has no load_imm64
        if s is not None:
            return self.emit("load_imm", ra=dst, imm1=s)
        return self.emit("load_imm64", ra=dst, imm64=value & MASK64)

    def cmov(self, dst: int, src: str, negate: bool, cond: str, op: str) -> None:
        # quirk of 0.35: `if rc != 0` is cmov_if_zero, exactly like `if rc == 0`
        if op not in ("==", "!=") or (negate and op != "=="):
            raise self.error(f"unsupported conditional move condition {op!r}")
        c = self.reg(cond)
        if src in _REGS:
            name = "cmov_if_not_zero" if negate else "cmov_if_zero"
            return self.emit(name, rd=dst, ra=_REGS[src], rb=c)
        name = "cmov_if_not_zero_imm" if negate else "cmov_if_zero_imm"
        return self.emit(name, ra=dst, rb=c, imm1=self.imm(src))

    def load_and_jump(self, dst: int, value: str, rest: list[str]) -> None:
        imm = self.imm(value)
        if len(rest) == 1 and rest[0].startswith("@"):
            return self.emit("load_imm_and_jump", ra=dst, imm1=imm, target=self.target(rest[0]))
        base, off = self.mem(rest)
        if base is None:
            raise self.error("load_imm_and_jump_indirect needs a base register")
        if base == dst:
            raise self.error(f"use 'tmp = {REG_NAMES[base]}, {REG_NAMES[dst]} = ..., jump "
                             "[tmp + ...]' when the destination is the base register")
        return self.emit("load_imm_and_jump_indirect", ra=dst, rb=base, imm1=imm, imm2=off)

    def binary(self, dst: int, lhs: str, op: str, rhs: str, i32: bool) -> None:
        lreg, rreg = _REGS.get(lhs), _REGS.get(rhs)
        if lreg is not None and rreg is not None:
            if op in _RRR_SWAPPED:
                op, lreg, rreg = _RRR_SWAPPED[op], rreg, lreg
            if op not in _RRR:
                raise self.error(f"unknown operator {op!r}")
            return self.emit(self.pick(_RRR[op], i32, op), rd=dst, ra=lreg, rb=rreg)
        if lreg is not None:
            if op == "-":
                return self.emit(self.pick(_REG_IMM["+"], i32, op), ra=dst, rb=lreg,
                                 imm1=self.negated_imm(rhs))
            if op not in _REG_IMM:
                raise self.error(f"operator {op!r} does not take an immediate on the right")
            return self.emit(self.pick(_REG_IMM[op], i32, op), ra=dst, rb=lreg,
                             imm1=self.imm(rhs))
        if rreg is not None:
            if op not in _IMM_REG:
                raise self.error(f"operator {op!r} does not take an immediate on the left")
            return self.emit(self.pick(_IMM_REG[op], i32, op), ra=dst, rb=rreg,
                             imm1=self.imm(lhs))
        raise self.error("an operation needs at least one register")

    def negated_imm(self, tok: str) -> int:
        value = parse_int(tok)
        if value is None:
            raise self.error(f"expected an immediate, got {tok!r}")
        s = _as_i32(value)
        if s is not None:
            return _s32(-s)
        s = _as_i32(-value)
        if s is None:
            raise self.error(f"immediate does not fit i32: -{tok}")
        return s


def assemble(text: str, *, path: str | None = None,
             isa: InstructionSet | None = None) -> ProgramBlob:
    """Assembles ``text`` (see the module docstring); ``isa`` is the instruction set used
    when the text has no ``%isa`` directive (default JamV1, as spectool)."""
    builder = ProgramBuilder(InstructionSet.JAM_V1 if isa is None else isa)
    builder.asm(text, path=path)
    return builder.build()


# ----------------------------------------------------------------------------------------
# printer

_R = REG_NAMES


def _fmt_imm(v: int) -> str:
    if -0x10000 < v < 0x10000:
        return str(v)
    return f"0x{v:x}" if v > 0 else f"-0x{-v:x}"


def _fmt_mem(base: str, off: int) -> str:
    if off == 0:
        return f"[{base}]"
    if off > 0:
        return f"[{base} + {_fmt_imm(off)}]"
    return f"[{base} - {_fmt_imm(-off)}]"


def _fmt_addr(v: int) -> str:
    return f"[0x{v & MASK32:x}]"


def _build_printers() -> dict[str, tuple[str, str, str]]:
    """mnemonic -> (kind, operator/keyword, i32 prefix)."""
    out: dict[str, tuple[str, str, str]] = {}

    def add(pair: Pair, kind: str, sym: str) -> None:
        m32, m64 = pair
        out.setdefault(m64, (kind, sym, ""))
        if m32 is not None:
            out.setdefault(m32, (kind, sym, "i32 "))

    for sym, pair in _RRR.items():
        add(pair, "rrr", sym)
    for sym, pair in _REG_IMM.items():
        add(pair, "reg_imm", sym)
    for sym, pair in _IMM_REG.items():
        add(pair, "imm_reg", sym)
    for sym, pair in _UNARY.items():
        add(pair, "unary", sym)
    for sym, m in _MINMAX.items():
        out[m] = ("minmax", sym, "")
    for w, (direct, indirect) in _LOADS.items():
        out[direct] = ("load", w, "")
        out[indirect] = ("load_indirect", w, "")
    for w, (direct, indirect, imm_direct, imm_indirect) in _STORES.items():
        out[direct] = ("store", w, "")
        out[indirect] = ("store_indirect", w, "")
        out[imm_direct] = ("store_imm", w, "")
        out[imm_indirect] = ("store_imm_indirect", w, "")
    for sym, m in _BRANCH_RR.items():
        out[m] = ("branch", sym, "")
    for sym, m in _BRANCH_RI.items():
        out[m] = ("branch_imm", sym, "")
    for m in _SIMPLE.values():
        out[m] = ("simple", m, "")
    out["memset"] = ("simple", "[a0..a0 + a2] = u8 a1", "")
    for m in ("ecalli", "jump", "jump_indirect", "load_imm", "load_imm64", "move_reg",
              "load_imm_and_jump", "load_imm_and_jump_indirect", "and_inverted",
              "or_inverted", "xnor", "cmov_if_zero", "cmov_if_not_zero", "cmov_if_zero_imm",
              "cmov_if_not_zero_imm"):
        out[m] = ("special", m, "")
    out["add_imm_32"] = ("add_imm", "+", "i32 ")
    out["add_imm_64"] = ("add_imm", "+", "")
    return out


_PRINTERS = _build_printers()


def format_instruction(insn: Instruction, target: str | None = None) -> str:
    """One instruction in assembler syntax; ``target`` is the label text for its jump
    target (default: the absolute offset ``@N``)."""
    info = insn.info
    if info is None:
        return f"invalid (opcode 0x{insn.opcode:02x})"
    if target is None:
        target = f"@{insn.target}"
    kind, sym, p = _PRINTERS[info.mnemonic]
    ra, rb, rd = _R[insn.ra], _R[insn.rb], _R[insn.rd]
    i1, i2 = insn.imm1, insn.imm2
    if kind == "rrr":
        return f"{p}{rd} = {ra} {sym} {rb}"
    if kind == "reg_imm":
        return f"{p}{ra} = {rb} {sym} {_fmt_imm(i1)}"
    if kind == "imm_reg":
        return f"{p}{ra} = {_fmt_imm(i1)} {sym} {rb}"
    if kind == "add_imm":
        if i1 < 0 and i1 != -(1 << 31):
            return f"{p}{ra} = {rb} - {_fmt_imm(-i1)}"
        return f"{p}{ra} = {rb} + {_fmt_imm(i1)}"
    if kind == "unary":
        return f"{p}{rd} = {sym} {ra}"
    if kind == "minmax":
        return f"{rd} = {sym}({ra}, {rb})"
    if kind == "load":
        return f"{ra} = {sym} {_fmt_addr(i1)}"
    if kind == "load_indirect":
        return f"{ra} = {sym} {_fmt_mem(rb, i1)}"
    if kind == "store":
        return f"{sym} {_fmt_addr(i1)} = {ra}"
    if kind == "store_indirect":
        return f"{sym} {_fmt_mem(rb, i1)} = {ra}"
    if kind == "store_imm":
        return f"{sym} {_fmt_addr(i1)} = {_fmt_imm(i2)}"
    if kind == "store_imm_indirect":
        return f"{sym} {_fmt_mem(ra, i1)} = {_fmt_imm(i2)}"
    if kind == "branch":
        return f"jump {target} if {ra} {sym} {rb}"
    if kind == "branch_imm":
        return f"jump {target} if {ra} {sym} {_fmt_imm(i1)}"
    if kind == "simple":
        return sym
    return _format_special(info.mnemonic, insn, target)


def _format_special(m: str, insn: Instruction, target: str) -> str:
    ra, rb, rd = _R[insn.ra], _R[insn.rb], _R[insn.rd]
    i1, i2 = insn.imm1, insn.imm2
    if m == "ecalli":
        return f"ecalli {i1 & MASK32}"
    if m == "jump":
        return f"jump {target}"
    if m == "jump_indirect":
        return "ret" if insn.ra == 0 and i1 == 0 else f"jump {_fmt_mem(ra, i1)}"
    if m == "load_imm":
        return f"{ra} = {_fmt_imm(i1)}"
    if m == "load_imm64":
        v = insn.imm64 & MASK64
        return f"{ra} = {'i64 ' if _as_i32(v) is not None else ''}0x{v:x}"
    if m == "move_reg":
        return f"{rd} = {ra}"
    if m == "load_imm_and_jump":
        return f"{ra} = {_fmt_imm(i1)}, jump {target}"
    if m == "load_imm_and_jump_indirect":
        if insn.ra == insn.rb:
            return f"tmp = {rb}, {ra} = {_fmt_imm(i1)}, jump {_fmt_mem('tmp', i2)}"
        return f"{ra} = {_fmt_imm(i1)}, jump {_fmt_mem(rb, i2)}"
    if m == "and_inverted":
        return f"{rd} = {ra} & ~{rb}"
    if m == "or_inverted":
        return f"{rd} = {ra} | ~{rb}"
    if m == "xnor":
        return f"{rd} = ~({ra} ^ {rb})"
    if m in ("cmov_if_zero", "cmov_if_not_zero"):
        word = "if" if m == "cmov_if_zero" else "unless"
        return f"{rd} = {ra} {word} {rb} == 0"
    if m in ("cmov_if_zero_imm", "cmov_if_not_zero_imm"):
        word = "if" if m == "cmov_if_zero_imm" else "unless"
        return f"{ra} = {_fmt_imm(i1)} {word} {rb} == 0"
    raise AssertionError(f"no printer for {m}")  # pragma: no cover


# ----------------------------------------------------------------------------------------
# disassembler

_COMMENT_COLUMN = 40


@dataclass
class _Listing:
    """Instruction starts of a blob with the byte region each one owns."""

    insns: list[Instruction]  # real instructions (no implicit ones)
    implicit: dict[int, int]  # index of the instruction before -> pc of an implicit invalid
    ends: list[int]  # end of each instruction's region (next start or code end)
    lead: int  # bytes before the first instruction start


def _listing(blob: ProgramBlob) -> _Listing:
    insns: list[Instruction] = []
    implicit: dict[int, int] = {}
    for insn in blob.instructions():
        if insn.implicit:
            implicit[len(insns) - 1] = insn.pc
        else:
            insns.append(insn)
    starts = [i.pc for i in insns]
    ends = starts[1:] + [len(blob.code)]
    lead = starts[0] if starts else len(blob.code)
    return _Listing(insns, implicit, ends, lead)


def _hex(data: bytes) -> str:
    return data.hex(" ")


class _Labels:
    """Label names for the pcs that need one."""

    def __init__(self, blob: ProgramBlob, listing: _Listing) -> None:
        self.code_len = len(blob.code)
        self.starts = {i.pc for i in listing.insns} | {self.code_len}
        self.pub: dict[int, list[str]] = {}
        self.use_pub = self._exports_as_labels(blob)
        if self.use_pub:
            for e in blob.exports:
                self.pub.setdefault(e.pc, []).append(e.symbol.decode())
        taken = {name for names in self.pub.values() for name in names}
        wanted: set[int] = set()
        for insn in listing.insns:
            info = insn.info
            if info is not None and info.form in _TARGET_FORMS:
                wanted.add(insn.target)
        wanted.update(blob.jump_table)
        if not self.use_pub:
            wanted.update(e.pc for e in blob.exports)
        self.local: dict[int, str] = {}
        for pc in sorted(wanted & self.starts):
            if pc in self.pub:
                continue
            name = f"L{pc}"
            while name in taken:
                name += "_"
            self.local[pc] = name

    def _exports_as_labels(self, blob: ProgramBlob) -> bool:
        names = [e.symbol.decode("ascii", "replace") for e in blob.exports]
        if len(set(names)) != len(names):
            return False
        last = -1
        for e, name in zip(blob.exports, names, strict=True):
            if not _LABEL_NAME.match(name) or name.encode() != e.symbol:
                return False
            if parse_int(name) is not None or e.pc not in self.starts or e.pc < last:
                return False
            last = e.pc
        return True

    def ref(self, pc: int) -> str:
        names = self.pub.get(pc)
        if names:
            return "@" + names[0]
        name = self.local.get(pc)
        return "@" + name if name is not None else f"@{pc}"

    def at(self, pc: int) -> list[tuple[str, bool]]:
        """(name, is_export) of the labels placed at ``pc``."""
        out = [(n, True) for n in self.pub.get(pc, [])]
        if pc in self.local:
            out.append((self.local[pc], False))
        return out


def _line(text: str, comment: str) -> str:
    if not comment:
        return text
    return f"{text:<{_COMMENT_COLUMN}}// {comment}" if len(text) < _COMMENT_COLUMN \
        else f"{text}  // {comment}"


def _header(blob: ProgramBlob, labels: _Labels) -> Iterator[str]:
    yield f"%isa = {blob.isa.key}"
    for name in ("ro_data_size", "rw_data_size", "stack_size"):
        value = getattr(blob, name)
        if value:
            yield f"%{name} = {value}"
    for i, sym in enumerate(blob.imports):
        yield f"%import {i} = {format_symbol(sym or b'')}"
    if not labels.use_pub:
        for e in blob.exports:
            yield f"%export {labels.ref(e.pc)} = {format_symbol(e.symbol)}"
    table = blob.jump_table
    needed = max([0] + [(e.bit_length() + 7) // 8 for e in table])
    if blob.jump_table_entry_size != needed:
        yield f"%jump_table_entry_size = {blob.jump_table_entry_size}"
    for k in range(0, len(table), 16):
        yield "%jump_table = " + ", ".join(labels.ref(pc) for pc in table[k : k + 16])


def _data(blob: ProgramBlob) -> Iterator[str]:
    chunks = [("%ro_data = ", blob.ro_data), ("%rw_data = ", blob.rw_data)]
    chunks += [(f"%section {sid} = ", data) for sid, data in sorted(blob.debug_sections.items())]
    for prefix, data in chunks:
        for k in range(0, len(data), 64):
            yield prefix + data[k : k + 64].hex()


def _label_comments(blob: ProgramBlob) -> dict[int, list[str]]:
    notes: dict[int, list[str]] = {}
    for i, e in enumerate(blob.exports):
        notes.setdefault(e.pc, []).append(f"export #{i} {format_symbol(e.symbol)}")
    for k, pc in enumerate(blob.jump_table):
        notes.setdefault(pc, []).append(f"jump table #{k} (address {2 * (k + 1)})")
    return notes


def disassemble(blob: ProgramBlob, *, pcs: bool = True, raw: bool = False,
                canonical: bool = False) -> str:
    """The program as assembler text that :func:`assemble` turns back into ``blob``.

    ``pcs`` adds each instruction's pc as a trailing comment, ``raw`` its bytes.  Labels
    are placed at every jump target, jump-table entry and export; ``ecalli`` is annotated
    with the import name; implicit ``invalid`` pseudo-instructions appear as comments.
    An instruction whose bytes are not the canonical (shortest) encoding is printed as
    ``%raw`` (with its meaning in the comment) so the bytes round-trip exactly, unless
    ``canonical`` is set: then it is printed as an ordinary instruction and re-assembly
    produces the canonical encoding instead.
    """
    listing = _listing(blob)
    labels = _Labels(blob, listing)
    notes = _label_comments(blob)
    code = blob.code
    isa = blob.isa
    imports = blob.imports
    out = list(_header(blob, labels))
    out.append("")
    if listing.lead:
        out.append(_line(f"%bytes {_hex(code[: listing.lead])}", "0" if pcs else ""))
        if code and not (blob.bitmask[0] & 1):
            out.append("    // 0: invalid (no instruction starts here)")
    prev_ends_block = True
    for k, insn in enumerate(listing.insns):
        pc = insn.pc
        for name, is_export in labels.at(pc):
            suffix = "" if prev_ends_block else " %no_fallthrough"
            text = f"{'pub ' if is_export else ''}@{name}:{suffix}"
            if prev_ends_block and out[-1]:
                out.append("")
            out.append(_line(text, "; ".join(notes.get(pc, []))))
        region = code[pc : listing.ends[k]]
        body = region[: insn.length]
        info = insn.info
        text = ""
        if info is not None:
            target = labels.ref(insn.target) if info.form in _TARGET_FORMS else None
            text = format_instruction(insn, target)
        exact = info is not None and (canonical or encode_instruction(insn, isa) == body)
        comment = []
        if pcs:
            comment.append(f"{pc}: {_hex(body)}" if raw else str(pc))
        elif raw:
            comment.append(_hex(body))
        if exact:
            line = "    " + text
            if info is not None and info.mnemonic == "ecalli":
                index = insn.imm1 & MASK32
                if index < len(imports):
                    comment.append(f"import {format_symbol(imports[index] or b'')}")
        else:
            line = f"    %raw {_hex(region)}"
            comment.append(text if text else f"unknown opcode 0x{insn.opcode:02x}")
        out.append(_line(line, " | ".join(comment)))
        if exact and len(region) > len(body):
            out.append(f"    %bytes {_hex(region[len(body):])}")
        if k in listing.implicit:
            out.append(f"    // {listing.implicit[k]}: invalid (implicit)")
        prev_ends_block = _ends_block(insn.opcode, isa)
    if len(code) in labels.local or len(code) in labels.pub:
        for name, is_export in labels.at(len(code)):
            suffix = "" if prev_ends_block else " %no_fallthrough"
            out.append(f"{'pub ' if is_export else ''}@{name}:{suffix}")
    data = list(_data(blob))
    if data:
        out.append("")
        out.extend(data)
    return "\n".join(out) + "\n"


def iter_noncanonical(blob: ProgramBlob) -> Iterable[tuple[Instruction, bytes, bytes | None]]:
    """(instruction, original bytes, canonical bytes or None if unknown) for every
    instruction whose encoding is not the canonical one."""
    listing = _listing(blob)
    for k, insn in enumerate(listing.insns):
        region = blob.code[insn.pc : listing.ends[k]]
        try:
            canon: bytes | None = encode_instruction(insn, blob.isa)
        except ValueError:
            canon = None
        if canon != region:
            yield insn, region, canon
