"""The ``.polkavm`` program blob and the raw code blob (shared/spec/blob-format.md).

:class:`ProgramBlob` parses the container exactly as the reference PolkaVM
0.35 does: the same section order, the same varint quirk, the same checks.
Every malformed input raises :class:`~executor.errors.BlobError` naming the
section or field and the byte offset.  Instruction decoding is done by the C
core (:meth:`ProgramBlob.instructions`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from executor.errors import BlobError
from executor.isa import InstructionSet, OpInfo, ops
from executor.native import ffi, lib

MAGIC = b"PVM\0"
MAX_IMPORTS = 1024
MAX_CODE_SIZE = 32 * 1024 * 1024
MAX_JUMP_TABLE_ENTRIES = 16 * 1024 * 1024

SECTION_MEMORY_CONFIG = 1
SECTION_RO_DATA = 2
SECTION_RW_DATA = 3
SECTION_IMPORTS = 4
SECTION_EXPORTS = 5
SECTION_CODE_AND_JUMP_TABLE = 6
SECTION_OPT_DEBUG_STRINGS = 128
SECTION_OPT_DEBUG_LINE_PROGRAMS = 129
SECTION_OPT_DEBUG_LINE_PROGRAM_RANGES = 130
SECTION_END_OF_FILE = 0

SECTION_NAMES = {
    SECTION_MEMORY_CONFIG: "memory config section",
    SECTION_RO_DATA: "ro data section",
    SECTION_RW_DATA: "rw data section",
    SECTION_IMPORTS: "imports section",
    SECTION_EXPORTS: "exports section",
    SECTION_CODE_AND_JUMP_TABLE: "code section",
    SECTION_OPT_DEBUG_STRINGS: "debug strings section",
    SECTION_OPT_DEBUG_LINE_PROGRAMS: "debug line programs section",
    SECTION_OPT_DEBUG_LINE_PROGRAM_RANGES: "debug line program ranges section",
}


class _Reader:
    """A cursor over bytes whose errors carry the absolute blob offset."""

    __slots__ = ("data", "pos", "end", "base", "section")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None, *, base: int = 0,
                 section: str = "header"):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.base = base  # added to positions when reporting
        self.section = section

    def fail(self, message: str, offset: int | None = None) -> BlobError:
        return BlobError(message, section=self.section,
                         offset=self.base + (self.pos if offset is None else offset))

    def eof(self, need: int) -> BlobError:
        have = self.end - self.pos
        return self.fail(
            f"unexpected end of file at offset 0x{self.base + self.pos:x}: expected to be able "
            f"to read at least {need} bytes, found {have} bytes"
        )

    def u8(self) -> int:
        if self.pos >= self.end:
            raise self.eof(1)
        v = self.data[self.pos]
        self.pos += 1
        return v

    def take(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise self.eof(n)
        v = self.data[self.pos : self.pos + n]
        self.pos += n
        return v

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def varint(self) -> int:
        start = self.pos
        if self.pos >= self.end:
            raise self.eof(1)
        first = self.data[self.pos]
        n = 8 - (first ^ 0xFF).bit_length()  # leading one bits
        if n >= 5 or n > self.end - self.pos - 1:
            raise self.fail(f"failed to parse a varint at offset 0x{self.base + start:x}", start)
        low = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        if n <= 3:
            return ((first & (0xFF >> n)) << (8 * n)) | low
        # n == 4: the reference's shift by 32 wraps to a shift by 0
        return (first & 0x0F) | low

    def bytes_with_length(self) -> bytes:
        return self.take(self.varint())


def read_varint(data: bytes, pos: int = 0) -> tuple[int, int]:
    """Decodes one varint at ``pos``; returns (value, bytes consumed)."""
    r = _Reader(data, pos, section="varint")
    v = r.varint()
    return v, r.pos - pos


def write_varint(value: int) -> bytes:
    """The minimal varint encoding of a u32 (the reference writer's form)."""
    if not 0 <= value < 1 << 32:
        raise ValueError(f"varint out of range: {value}")
    for n in range(4):
        if value < 1 << (7 * (n + 1)):
            prefix = (0xFF << (8 - n)) & 0xFF
            first = prefix | (value >> (8 * n))
            low = value & ((1 << (8 * n)) - 1)
            return bytes([first]) + low.to_bytes(n, "little")
    return b"\xf0" + value.to_bytes(4, "little")


@dataclass(frozen=True)
class Export:
    pc: int
    symbol: bytes

    @property
    def name(self) -> str:
        return self.symbol.decode("utf-8", "replace")


@dataclass(frozen=True)
class Instruction:
    """One decoded instruction (operands as in shared/spec/isa.md section 3)."""

    pc: int
    length: int
    op: int
    opcode: int
    ra: int
    rb: int
    rd: int
    imm1: int
    imm2: int
    target: int
    imm64: int
    implicit: bool

    @property
    def info(self) -> OpInfo | None:
        table = ops()
        return table[self.op] if self.op < len(table) else None

    @property
    def mnemonic(self) -> str:
        info = self.info
        return info.mnemonic if info else "invalid"

    @property
    def is_invalid(self) -> bool:
        return self.info is None

    @property
    def next_pc(self) -> int:
        return self.pc + self.length


@dataclass
class ProgramBlob:
    """A parsed program: the container sections plus the code blob."""

    isa: InstructionSet
    ro_data_size: int = 0
    rw_data_size: int = 0
    stack_size: int = 0
    ro_data: bytes = b""
    rw_data: bytes = b""
    imports: list[bytes | None] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    jump_table: list[int] = field(default_factory=list)
    jump_table_entry_size: int = 0
    code: bytes = b""
    bitmask: bytes = b""
    debug_sections: dict[int, bytes] = field(default_factory=dict)
    # blob offsets of parsed parts, for error messages of later checks
    _where: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    # ---- construction ----
    @classmethod
    def load(cls, path: str | Path, *, strict: bool = False) -> ProgramBlob:
        return cls.from_bytes(Path(path).read_bytes(), strict=strict)

    @classmethod
    def from_bytes(cls, data: bytes, *, strict: bool = False) -> ProgramBlob:
        """Parses a ``.polkavm`` container.

        ``strict`` adds the reference's strict-module checks: every import has a
        symbol, jump-table entries and export pcs lie inside the code, and the
        exports section is well formed to its end.
        """
        data = bytes(data)
        r = _Reader(data)
        if data[:4] != MAGIC:
            raise BlobError("blob doesn't start with the expected magic bytes",
                            section="header", offset=0)
        r.pos = 4
        version = r.u8()
        if version > 3:
            raise BlobError(f"unsupported version: {version}", section="header", offset=4)
        length = int.from_bytes(r.take(8), "little")
        if length != len(data):
            raise BlobError(
                f"blob size doesn't match the blob length metadata (declared {length}, "
                f"actual {len(data)})", section="header", offset=5)
        blob = cls(isa=InstructionSet(version))
        r.section = "section table"
        section = r.u8()
        if section == SECTION_MEMORY_CONFIG:
            # As the reference: the three varints are read from the blob (not
            # bounded by the section), then the section length must match the
            # bytes they took -- too short or too long is the same error.
            r.section = "memory config section"
            size = r.varint()
            payload_at = r.pos
            blob.ro_data_size = r.varint()
            blob.rw_data_size = r.varint()
            blob.stack_size = r.varint()
            if r.pos != payload_at + size:
                raise BlobError(
                    f"the memory config section contains more data than expected (section "
                    f"length {size}, the three varints take {r.pos - payload_at} bytes)",
                    section="memory config section", offset=payload_at)
            r.section = "section table"
            section = r.u8()
        if section == SECTION_RO_DATA:
            blob._where["ro_data"], blob.ro_data = cls._section_payload(r, section)
            section = r.u8()
        if section == SECTION_RW_DATA:
            blob._where["rw_data"], blob.rw_data = cls._section_payload(r, section)
            section = r.u8()
        if section == SECTION_IMPORTS:
            blob.imports = blob._parse_imports(r, strict)
            r.section = "section table"
            section = r.u8()
        if section == SECTION_EXPORTS:
            payload_at, payload = cls._section_payload(r, section)
            blob.exports = blob._parse_exports(data, payload_at, len(payload), strict)
            section = r.u8()
        code_expected_at = r.pos - 1
        code_at = -1
        code_payload = b""
        if section == SECTION_CODE_AND_JUMP_TABLE:
            code_at, code_payload = cls._section_payload(r, section)
            section = r.u8()
        for sid in (SECTION_OPT_DEBUG_STRINGS, SECTION_OPT_DEBUG_LINE_PROGRAMS,
                    SECTION_OPT_DEBUG_LINE_PROGRAM_RANGES):
            if section == sid:
                _, blob.debug_sections[sid] = cls._section_payload(r, section)
                section = r.u8()
        while section & 0x80:
            _, payload = cls._section_payload(r, section)
            blob.debug_sections.setdefault(section, payload)
            section = r.u8()
        if section != SECTION_END_OF_FILE:
            raise BlobError(
                f"found unexpected section as offset 0x{r.pos - 1:x}: 0x{section:x}",
                section="section table", offset=r.pos - 1)
        if len(blob.ro_data) > blob.ro_data_size:
            raise BlobError(
                f"size of the read-only data payload exceeds the declared size of the section "
                f"({len(blob.ro_data)} > {blob.ro_data_size})",
                section="ro data section", offset=blob._where["ro_data"])
        if len(blob.rw_data) > blob.rw_data_size:
            raise BlobError(
                f"size of the read-write data payload exceeds the declared size of the section "
                f"({len(blob.rw_data)} > {blob.rw_data_size})",
                section="rw data section", offset=blob._where["rw_data"])
        if not code_payload:
            # an empty section: its payload offset; an absent one: where it was expected
            raise BlobError("no code found", section="code section",
                            offset=code_at if code_at >= 0 else code_expected_at)
        blob._parse_code_blob(data, code_at, len(code_payload))
        if strict:
            blob.check_strict()
        return blob

    @classmethod
    def from_code_blob(cls, data: bytes, isa: InstructionSet = InstructionSet.LATEST64,
                       *, strict: bool = False) -> ProgramBlob:
        """Parses a raw code blob (jump table + code + bitmask), e.g. a JAM vector's
        ``program``; the memory config is empty."""
        data = bytes(data)
        blob = cls(isa=isa)
        blob._parse_code_blob(data, 0, len(data))
        if strict:
            blob.check_strict()
        return blob

    @staticmethod
    def _section_payload(r: _Reader, section: int) -> tuple[int, bytes]:
        name = SECTION_NAMES.get(section, f"section 0x{section:x}")
        r.section = name
        size = r.varint()
        at = r.pos
        payload = r.take(size)
        r.section = "section table"
        return at, payload

    def _parse_imports(self, r: _Reader, strict: bool) -> list[bytes | None]:
        # As the reference: the count and the offsets are read from the blob,
        # then the symbols are whatever remains of the declared section length.
        r.section = "imports section"
        size = r.varint()
        start = r.pos
        count = r.varint()
        if count > MAX_IMPORTS:
            raise r.fail(f"too many imports ({count} > {MAX_IMPORTS})", start)
        offsets_at = r.pos
        raw = r.take(count * 4)
        consumed = r.pos - start
        if consumed > size:
            raise r.fail(
                f"the imports section is invalid (section length {size}, the count and "
                f"{count} offsets take {consumed} bytes)", start)
        symbols = r.take(size - consumed)
        self._where["import_offsets"] = offsets_at
        offsets = struct.unpack(f"<{count}I", raw)
        out: list[bytes | None] = []
        for i, first in enumerate(offsets):
            end = offsets[i + 1] if i + 1 < count else len(symbols)
            if first <= end <= len(symbols):
                out.append(symbols[first:end])
            else:
                if strict:
                    raise r.fail(f"found an invalid import (import {i})", offsets_at + 4 * i)
                out.append(None)
        return out

    def _parse_exports(self, data: bytes, at: int, size: int, strict: bool) -> list[Export]:
        # The reference parses exports lazily and stops silently at the first
        # malformed entry; strict mode reports it instead.
        r = _Reader(data, at, at + size, section="exports section")
        out: list[Export] = []
        try:
            count = r.varint()
            for i in range(count):
                self._where[f"export {i}"] = r.pos
                pc = r.varint()
                symbol = r.bytes_with_length()
                out.append(Export(pc, symbol))
        except BlobError:
            if strict:
                raise
        return out

    def _parse_code_blob(self, data: bytes, at: int, size: int) -> None:
        r = _Reader(data, at, at + size, section="code section")
        count_at = r.pos
        count = r.varint()
        if count > MAX_JUMP_TABLE_ENTRIES:
            raise r.fail("the jump table section is too long", count_at)
        r.section = "jump table entry size"
        entry_size_at = r.pos
        entry_size = r.u8()
        r.section = "code section"
        code_len_at = r.pos
        code_len = r.varint()
        if code_len > MAX_CODE_SIZE:
            raise r.fail("the code section is too long", code_len_at)
        if entry_size > 4:
            raise BlobError("invalid jump table entry size", section="jump table entry size",
                            offset=r.base + entry_size_at)
        r.section = "jump table"
        self._where["jump_table"] = r.base + r.pos
        table = r.take(count * entry_size)
        r.section = "code"
        code = r.take(code_len)
        bitmask_at = r.pos
        bitmask = data[r.pos : r.end]
        if len(bitmask) != (code_len + 7) // 8:
            raise BlobError(
                f"the bitmask length doesn't match the code length (bitmask {len(bitmask)} bytes, "
                f"code {code_len} bytes)", section="bitmask", offset=bitmask_at)
        if code_len % 8 and bitmask[-1] >> (code_len % 8):
            raise BlobError("the bitmask is padded with non-zero bits", section="bitmask",
                            offset=bitmask_at + len(bitmask) - 1)
        if entry_size == 0:
            self.jump_table = []
        elif entry_size == 4:
            self.jump_table = list(struct.unpack(f"<{count}I", table))
        elif entry_size == 2:
            self.jump_table = list(struct.unpack(f"<{count}H", table))
        elif entry_size == 1:
            self.jump_table = list(table)
        else:
            self.jump_table = [
                int.from_bytes(table[i : i + entry_size], "little")
                for i in range(0, len(table), entry_size)
            ]
        self.jump_table_entry_size = entry_size
        self.code = code
        self.bitmask = bitmask

    def check_strict(self) -> None:
        """The reference's strict-module checks (``ModuleConfig::set_strict``)."""
        def at(key: str, index: int = 0, stride: int = 0) -> int | None:
            base = self._where.get(key)
            return None if base is None else base + index * stride

        for i, sym in enumerate(self.imports):
            if sym is None:
                raise BlobError(f"found an invalid import (import {i})", section="imports section",
                                offset=at("import_offsets", i, 4))
        for k, entry in enumerate(self.jump_table):
            if entry >= len(self.code):
                raise BlobError(
                    f"out of range jump table entry found (entry {k} = {entry}, code length "
                    f"{len(self.code)})", section="jump table",
                    offset=at("jump_table", k, self.jump_table_entry_size))
        for i, e in enumerate(self.exports):
            if e.pc >= len(self.code):
                raise BlobError(f"out of range export found ({e.name!r} at pc {e.pc})",
                                section="exports section", offset=at(f"export {i}"))

    # ---- views ----
    @property
    def is_64_bit(self) -> bool:
        return self.isa.is_64_bit

    def export_pc(self, name: str | bytes) -> int:
        sym = name.encode() if isinstance(name, str) else name
        for e in self.exports:
            if e.symbol == sym:
                return e.pc
        raise KeyError(f"no export named {name!r}")

    def import_names(self) -> list[str | None]:
        return [None if s is None else s.decode("utf-8", "replace") for s in self.imports]

    def instructions(self, *, listing: bool = True) -> Iterator[Instruction]:
        """Decoded instructions in code order (decoded in C).

        With ``listing`` (the default), implicit ``invalid`` pseudo-instructions
        are included where execution would run off the end of the code or into
        a gap; otherwise only real instruction starts are yielded."""
        code = self.code
        bitmask = self.bitmask
        n = lib.pvm_decode_listing(int(self.isa), code, len(code), bitmask, ffi.NULL, 0)
        buf = ffi.new("pvm_insn[]", max(n, 1))
        lib.pvm_decode_listing(int(self.isa), code, len(code), bitmask, buf, n)
        for i in range(n):
            d = buf[i]
            if d.implicit and not listing:
                continue
            yield Instruction(
                pc=d.pc, length=d.len, op=d.op, opcode=d.opcode, ra=d.ra, rb=d.rb, rd=d.rd,
                imm1=d.imm1, imm2=d.imm2, target=d.target, imm64=d.imm64,
                implicit=bool(d.implicit),
            )

    # ---- serialisation ----
    def code_blob(self) -> bytes:
        """The CODE_AND_JUMP_TABLE payload (a JAM ``program``)."""
        size = self.jump_table_entry_size
        if self.jump_table and size == 0:
            size = max(1, (max(self.jump_table).bit_length() + 7) // 8)
        out = bytearray(write_varint(len(self.jump_table)))
        out.append(size)
        out += write_varint(len(self.code))
        for e in self.jump_table:
            out += e.to_bytes(size, "little")
        out += self.code
        out += self.bitmask
        return bytes(out)

    def to_bytes(self) -> bytes:
        """Serialises the blob in the reference's canonical section order."""
        body = bytearray()

        def section(sid: int, payload: bytes) -> None:
            body.append(sid)
            body.extend(write_varint(len(payload)))
            body.extend(payload)

        if self.ro_data_size or self.rw_data_size or self.stack_size:
            section(SECTION_MEMORY_CONFIG, write_varint(self.ro_data_size)
                    + write_varint(self.rw_data_size) + write_varint(self.stack_size))
        if self.ro_data:
            section(SECTION_RO_DATA, self.ro_data)
        if self.rw_data:
            section(SECTION_RW_DATA, self.rw_data)
        if self.imports:
            offsets = bytearray(write_varint(len(self.imports)))
            symbols = bytearray()
            for sym in self.imports:
                offsets += len(symbols).to_bytes(4, "little")
                symbols += sym or b""
            section(SECTION_IMPORTS, bytes(offsets + symbols))
        if self.exports:
            ex = bytearray(write_varint(len(self.exports)))
            for e in self.exports:
                ex += write_varint(e.pc) + write_varint(len(e.symbol)) + e.symbol
            section(SECTION_EXPORTS, bytes(ex))
        section(SECTION_CODE_AND_JUMP_TABLE, self.code_blob())
        for sid in sorted(self.debug_sections):
            section(sid, self.debug_sections[sid])
        body.append(SECTION_END_OF_FILE)
        total = 4 + 1 + 8 + len(body)
        return MAGIC + bytes([int(self.isa)]) + total.to_bytes(8, "little") + bytes(body)
