#!/usr/bin/env python3
"""Fuzz campaign: mutated ``.polkavm`` blobs through the parser and the C program builder.

    .venv/bin/python tools/fuzz_blob.py --count 1000000 --jobs 2

Every input goes through ``ProgramBlob.from_bytes`` (plain and strict); when it
parses, through full instruction decoding (the C listing, and the Python
``instructions()`` iterator for code up to ``--py-decode-limit`` bytes) and
through the C program builder (``pvm_program_new`` + ``pvm_program_free``, and
for JamV1 also with load-time validation).  Outcomes are counted as ok /
BlobError / other exception / crash.  Not run in CI.

Inputs are a pure function of (seed, index), so any one can be regenerated
(``--dump INDEX``).  Each chunk of inputs runs in a child process that records
the index it is working on in a small file; if the child dies (a C crash, an
abort, a sanitizer report) or hangs, the parent regenerates that input, saves it
under ``--out`` and resumes the chunk after it.  Inputs that raise anything but
``BlobError`` are saved too.  ``--asan`` runs the children against the
AddressSanitizer/UBSan build that ``make test-asan`` leaves in build-asan/.

Mutations keep the container mostly well formed so parsing goes deep: the
sections of real blobs (and of small generated ones) are mutated one field at a
time -- section ids, order and length varints, the memory-config varints, the
import count/offsets/symbols, export pcs and names, and inside the code blob the
jump-table count, entry size, code length, jump-table entries, code bytes and
bitmask bits -- then a few byte-level edits may follow, and the length field is
fixed up 90% of the time.

The last line printed is
``inputs N, ok X, blob_errors Y, other_exceptions Z, crashes W`` (then the wall time).
"""

from __future__ import annotations

import argparse
import json
import mmap
import multiprocessing as mp
import os
import random
import signal
import struct
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
DEFAULT_OUT = Path("/tmp/fuzz_blob")
MAGIC = b"PVM\0"

# ---------------------------------------------------------------- varints (spec section 1)


def varint(value: int) -> bytes:
    """Canonical varint (blob-format.md section 1); values are taken mod 2^32."""
    value &= 0xFFFFFFFF
    for n in range(4):
        if value < 1 << (7 * (n + 1)):
            first = ((0xFF << (8 - n)) & 0xFF) | (value >> (8 * n))
            return bytes([first]) + (value & ((1 << (8 * n)) - 1)).to_bytes(n, "little")
    return b"\xf0" + value.to_bytes(4, "little")


def varint_noncanonical(value: int, rng: random.Random) -> bytes:
    """A longer (accepted) encoding of ``value``, or with the n == 4 quirk bits set."""
    value &= 0xFFFFFFFF
    n = rng.randint(1, 4)
    if n == 4:
        return bytes([0xF0 | rng.randrange(8)]) + value.to_bytes(4, "little")
    if value >= 1 << (8 * n + 7 - n):
        return varint(value)
    high = value >> (8 * n)
    first = ((0xFF << (8 - n)) & 0xFF) | high
    return bytes([first]) + (value & ((1 << (8 * n)) - 1)).to_bytes(n, "little")


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decodes one varint (for splitting the valid base blobs only)."""
    first = data[pos]
    n = 0
    while n < 8 and first & (0x80 >> n):
        n += 1
    if n >= 5 or pos + 1 + n > len(data):
        raise ValueError("bad varint")
    low = int.from_bytes(data[pos + 1 : pos + 1 + n], "little")
    if n <= 3:
        return ((first & (0xFF >> n)) << (8 * n)) | low, 1 + n
    return (first & 0x0F) | low, 5


INTERESTING_U32 = [0, 1, 2, 3, 4, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x4000, 0xFFFF, 0x10000,
                   1024, 1025, 1 << 24, (1 << 24) + 1, 1 << 25, (1 << 25) + 1, 0x0FFFFFFF,
                   0x10000000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
BAD_VARINT_PREFIXES = [b"\xf8", b"\xfc", b"\xfe", b"\xff", b"\xf8\x00\x00\x00\x00\x00",
                       b"\xff" * 9, b"\x80", b"\xc0\x00", b"\xe0\x00\x00", b"\xf0\x00\x00\x00"]


def interesting(rng: random.Random, near: int = 0) -> int:
    r = rng.random()
    if r < 0.4:
        return max(0, near + rng.randint(-3, 3))
    if r < 0.8:
        return rng.choice(INTERESTING_U32)
    return rng.getrandbits(rng.choice([8, 16, 24, 32]))


def encode_int(value: int, rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.85:
        return varint(value)
    if r < 0.95:
        return varint_noncanonical(value, rng)
    return rng.choice(BAD_VARINT_PREFIXES)


# ---------------------------------------------------------------- blob model


@dataclass
class Code:
    count: int
    entry_size: int
    jump_table: list[int]
    code: bytearray
    bitmask: bytearray
    raw_count: bytes | None = None
    raw_code_len: bytes | None = None
    code_len: int | None = None  # declared code length, if not len(code)
    tail: bytes = b""            # junk appended after the bitmask

    def payload(self) -> bytes:
        out = bytearray(self.raw_count if self.raw_count is not None else varint(self.count))
        out.append(self.entry_size & 0xFF)
        declared = len(self.code) if self.code_len is None else self.code_len
        out += self.raw_code_len if self.raw_code_len is not None else varint(declared)
        size = min(self.entry_size, 4)
        for e in self.jump_table:
            out += (e & ((1 << (8 * size)) - 1)).to_bytes(size, "little") if size else b""
        return bytes(out + self.code + self.bitmask + self.tail)


@dataclass
class Section:
    sid: int
    payload: bytes = b""
    code: Code | None = None
    raw_length: bytes | None = None

    def data(self) -> bytes:
        return self.code.payload() if self.code is not None else self.payload


@dataclass
class Blob:
    version: int
    sections: list[Section] = field(default_factory=list)
    trailer: bytes = b""
    end: bool = True

    def to_bytes(self, rng: random.Random, fix_length: bool) -> bytes:
        body = bytearray()
        for s in self.sections:
            payload = s.data()
            body.append(s.sid & 0xFF)
            if s.sid != 0:
                body += s.raw_length if s.raw_length is not None else varint(len(payload))
                body += payload
        if self.end:
            body.append(0)
        body += self.trailer
        total = 13 + len(body)
        if fix_length:
            length = total
        else:
            length = rng.choice([total + rng.randint(-2, 2), rng.getrandbits(64), 0, total])
        return MAGIC + bytes([self.version & 0xFF]) + length.to_bytes(8, "little") + bytes(body)


def split_code(payload: bytes) -> Code:
    count, n1 = read_varint(payload, 0)
    size = payload[n1]
    code_len, n2 = read_varint(payload, n1 + 1)
    pos = n1 + 1 + n2
    jt = [int.from_bytes(payload[pos + i * size : pos + (i + 1) * size], "little")
          for i in range(count)] if size else []
    pos += count * size
    code = bytearray(payload[pos : pos + code_len])
    bitmask = bytearray(payload[pos + code_len :])
    return Code(count, size, jt, code, bitmask)


def split_blob(data: bytes) -> Blob:
    """The sections of a valid blob (the bases are real, well-formed blobs)."""
    blob = Blob(version=data[4])
    pos = 13
    while True:
        sid = data[pos]
        if sid == 0:
            break
        length, n = read_varint(data, pos + 1)
        payload = data[pos + 1 + n : pos + 1 + n + length]
        blob.sections.append(Section(sid, payload, split_code(payload) if sid == 6 else None))
        pos += 1 + n + length
    return blob


def clone(blob: Blob) -> Blob:
    out = Blob(blob.version, trailer=blob.trailer, end=blob.end)
    for s in blob.sections:
        c = None
        if s.code is not None:
            k = s.code
            c = Code(k.count, k.entry_size, list(k.jump_table), bytearray(k.code),
                     bytearray(k.bitmask), k.raw_count, k.raw_code_len, k.code_len, k.tail)
        out.sections.append(Section(s.sid, s.payload, c, s.raw_length))
    return out


# ---------------------------------------------------------------- generated blobs


def opcodes_for(version: int) -> list[int]:
    from executor.isa import InstructionSet, opcode_table

    return sorted(opcode_table(InstructionSet(version)))


def gen_code(rng: random.Random, version: int) -> Code:
    codes = OPCODES.get(version) or OPCODES[2]
    n = rng.choice([0, 1, 2, rng.randint(1, 16), rng.randint(1, 80), rng.randint(1, 400)])
    code = bytearray()
    starts = []
    while len(code) < n:
        starts.append(len(code))
        code.append(rng.choice(codes) if rng.random() < 0.9 else rng.randrange(256))
        args = rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 9, rng.randint(0, 30)])
        code += bytes(rng.randrange(256) for _ in range(args))
    del code[n:]
    bitmask = bytearray((n + 7) // 8)
    for s in starts:
        if s < n:
            bitmask[s >> 3] |= 1 << (s & 7)
    if rng.random() < 0.1:
        for i in range(n):
            if rng.random() < 0.3:
                bitmask[i >> 3] ^= 1 << (i & 7)
        if n % 8:
            bitmask[-1] &= (1 << (n % 8)) - 1
    entries = [rng.randrange(n + 3) if n else rng.randrange(3)
               for _ in range(rng.choice([0, 0, 1, 3, rng.randint(0, 40)]))]
    if rng.random() < 0.7:
        entries = [e for e in entries if e < n] or ([0] if n and entries else [])
    top = max(entries, default=0)
    size = 0 if not entries else max(1, (top.bit_length() + 7) // 8)
    if rng.random() < 0.1:
        size = rng.randint(size, 4) if entries else rng.randint(0, 4)
    return Code(len(entries), size, entries, code, bitmask)


def gen_blob(rng: random.Random) -> Blob:
    version = rng.randrange(4)
    blob = Blob(version)
    code = gen_code(rng, version)
    ro = bytes(rng.randrange(256) for _ in range(rng.choice([0, 0, 1, 5, 40])))
    rw = bytes(rng.randrange(256) for _ in range(rng.choice([0, 0, 2, 17])))
    if rng.random() < 0.8:
        sizes = [len(ro) + rng.choice([0, 0, 1, 4096, interesting(rng)]),
                 len(rw) + rng.choice([0, 0, 3, 65536, interesting(rng)]),
                 rng.choice([0, 4096, 8192, interesting(rng)])]
        blob.sections.append(Section(1, b"".join(varint(v) for v in sizes)))
    if ro:
        blob.sections.append(Section(2, ro))
    if rw:
        blob.sections.append(Section(3, rw))
    if rng.random() < 0.6:
        names = [bytes(rng.choice(b"abcdefghij_") for _ in range(rng.randint(0, 12)))
                 for _ in range(rng.randint(0, 6))]
        blob.sections.append(Section(4, imports_payload(names)))
    if rng.random() < 0.7:
        exports = [(rng.randrange(len(code.code) + 2), b"f%d" % i)
                   for i in range(rng.randint(0, 4))]
        blob.sections.append(Section(5, exports_payload(exports)))
    blob.sections.append(Section(6, code=code))
    if rng.random() < 0.2:
        for sid in sorted(rng.sample([128, 129, 130, 131, 200, 255], rng.randint(1, 3))):
            blob.sections.append(Section(sid, bytes(rng.randrange(256)
                                                    for _ in range(rng.randint(0, 12)))))
    return blob


def imports_payload(names: list[bytes]) -> bytes:
    out = bytearray(varint(len(names)))
    offset = 0
    for name in names:
        out += offset.to_bytes(4, "little")
        offset += len(name)
    return bytes(out + b"".join(names))


def exports_payload(exports: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(varint(len(exports)))
    for pc, name in exports:
        out += varint(pc) + varint(len(name)) + name
    return bytes(out)


# ---------------------------------------------------------------- mutations


def find(blob: Blob, sid: int) -> Section | None:
    for s in blob.sections:
        if s.sid == sid:
            return s
    return None


def mut_code(blob: Blob, rng: random.Random) -> None:
    s = find(blob, 6)
    if s is None or s.code is None:
        blob.sections.append(Section(6, code=gen_code(rng, blob.version)))
        return
    c = s.code
    n = len(c.code)
    what = rng.choice(["count", "size", "code_len", "jt", "jt", "code", "code", "opcode",
                       "bitmask", "bitmask", "padding", "bitmask_len", "cut", "tail", "gap"])
    if what == "count":
        c.count = interesting(rng, len(c.jump_table))
        c.raw_count = encode_int(c.count, rng) if rng.random() < 0.3 else None
    elif what == "size":
        c.entry_size = rng.choice([0, 1, 2, 3, 4, rng.randint(0, 4), rng.randint(5, 255)])
        if rng.random() < 0.5 and c.entry_size <= 4:
            c.count = len(c.jump_table) if c.entry_size else rng.choice([0, len(c.jump_table)])
    elif what == "code_len":
        c.code_len = interesting(rng, n)
        c.raw_code_len = encode_int(c.code_len, rng) if rng.random() < 0.3 else None
    elif what == "jt":
        if not c.jump_table or rng.random() < 0.2:
            c.jump_table.append(rng.randrange(n + 2))
            c.count = len(c.jump_table)
            c.entry_size = max(c.entry_size, 1, (max(c.jump_table).bit_length() + 7) // 8)
        else:
            k = rng.randrange(len(c.jump_table))
            c.jump_table[k] = rng.choice([0, n - 1, n, n + 1, rng.randrange(n + 1),
                                          interesting(rng, c.jump_table[k])])
    elif what in ("code", "opcode") and n:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(n)
            if what == "opcode":
                starts = [j for j in range(max(0, i - 32), min(n, i + 32, 8 * len(c.bitmask)))
                          if c.bitmask[j >> 3] >> (j & 7) & 1]
                i = rng.choice(starts) if starts else i
                c.code[i] = rng.choice(OPCODES.get(blob.version) or OPCODES[2])
            else:
                c.code[i] = rng.randrange(256) if rng.random() < 0.5 else c.code[i] ^ (
                    1 << rng.randrange(8))
    elif what == "bitmask" and c.bitmask:
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(max(1, n))
            if i < n and i >> 3 < len(c.bitmask):
                c.bitmask[i >> 3] ^= 1 << (i & 7)
    elif what == "padding" and len(c.bitmask) == (n + 7) // 8 and n % 8:
        c.bitmask[-1] |= 1 << rng.randrange(n % 8, 8)
    elif what == "bitmask_len":
        if c.bitmask and rng.random() < 0.5:
            del c.bitmask[-1]
        else:
            c.bitmask.append(rng.randrange(256))
    elif what == "cut" and n:
        # shorten the code keeping the bitmask consistent (instructions now run off the end)
        k = rng.randrange(n)
        del c.code[k:]
        c.bitmask = c.bitmask[: (k + 7) // 8]
        if k % 8 and c.bitmask:
            c.bitmask[-1] &= (1 << (k % 8)) - 1
        c.code_len = None
    elif what == "tail":
        c.tail = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
    elif what == "gap" and n > 30:
        # clear a run of bitmask bits: a gap longer than 24 bytes
        a = rng.randrange(n - 26)
        for i in range(a, min(n, a + rng.randint(25, 60), 8 * len(c.bitmask))):
            c.bitmask[i >> 3] &= ~(1 << (i & 7)) & 0xFF


def mut_memory(blob: Blob, rng: random.Random) -> None:
    s = find(blob, 1)
    if s is None:
        blob.sections.insert(0, Section(1, b""))
        s = blob.sections[0]
    what = rng.random()
    if what < 0.6:
        vals = [interesting(rng) for _ in range(3)]
        s.payload = b"".join(encode_int(v, rng) for v in vals)
    elif what < 0.8:
        s.payload = s.payload + bytes([rng.randrange(256)])
    else:
        s.payload = s.payload[: rng.randrange(len(s.payload) + 1)]


def mut_data(blob: Blob, rng: random.Random) -> None:
    sid = rng.choice([2, 3])
    s = find(blob, sid)
    grow = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 16, 300])))
    if s is None:
        idx = sum(1 for x in blob.sections if x.sid < sid)
        blob.sections.insert(idx, Section(sid, grow))
    elif rng.random() < 0.5:
        s.payload = s.payload + grow
    else:
        s.payload = s.payload[: rng.randrange(len(s.payload) + 1)]


def mut_imports(blob: Blob, rng: random.Random) -> None:
    s = find(blob, 4)
    if s is None:
        idx = sum(1 for x in blob.sections if x.sid < 4)
        blob.sections.insert(idx, Section(4, imports_payload([b"a", b"bc"])))
        return
    p = bytearray(s.payload)
    try:
        count, n = read_varint(bytes(p), 0)
    except (ValueError, IndexError):
        count, n = 0, 0
    what = rng.choice(["count", "offset", "symbol", "raw"])
    if what == "count":
        p[:n] = encode_int(interesting(rng, count), rng)
    elif what == "offset" and count:
        k = rng.randrange(count)
        at = n + 4 * k
        if at + 4 <= len(p):
            p[at : at + 4] = interesting(rng, int.from_bytes(p[at : at + 4], "little")).to_bytes(
                4, "little")
    elif what == "symbol" and len(p) > n + 4 * count:
        at = rng.randrange(n + 4 * count, len(p))
        p[at] = rng.randrange(256)
    elif p:
        at = rng.randrange(len(p))
        p[at] = rng.randrange(256)
    s.payload = bytes(p)


def mut_exports(blob: Blob, rng: random.Random) -> None:
    s = find(blob, 5)
    code = find(blob, 6)
    n = len(code.code.code) if code is not None and code.code is not None else 0
    if s is None or rng.random() < 0.3:
        exports = [(rng.choice([0, n - 1, n, n + 1, interesting(rng)]) & 0xFFFFFFFF,
                    b"e%d" % i) for i in range(rng.randint(0, 3))]
        payload = exports_payload(exports)
        if s is None:
            idx = sum(1 for x in blob.sections if x.sid < 5)
            blob.sections.insert(idx, Section(5, payload))
        else:
            s.payload = payload
        return
    p = bytearray(s.payload)
    if p:
        at = rng.randrange(len(p))
        p[at] = rng.choice([rng.randrange(256), 0x00, 0x7F, 0x80, 0xF0, 0xF8, 0xFF])
    s.payload = bytes(p)


def mut_sections(blob: Blob, rng: random.Random) -> None:
    what = rng.choice(["drop", "dup", "swap", "unknown", "id", "length", "length", "end",
                       "trailer"])
    secs = blob.sections
    if what == "drop" and secs:
        del secs[rng.randrange(len(secs))]
    elif what == "dup" and secs:
        k = rng.randrange(len(secs))
        secs.insert(rng.randrange(len(secs) + 1), clone(Blob(0, [secs[k]])).sections[0])
    elif what == "swap" and len(secs) > 1:
        i, j = rng.sample(range(len(secs)), 2)
        secs[i], secs[j] = secs[j], secs[i]
    elif what == "unknown":
        sid = rng.choice([rng.randint(7, 127), rng.randint(128, 255), 128, 129, 130, 131])
        secs.insert(rng.randrange(len(secs) + 1),
                    Section(sid, bytes(rng.randrange(256) for _ in range(rng.randint(0, 6)))))
    elif what == "id" and secs:
        secs[rng.randrange(len(secs))].sid = rng.randrange(256)
    elif what == "length" and secs:
        s = secs[rng.randrange(len(secs))]
        real = len(s.data())
        s.raw_length = encode_int(interesting(rng, real), rng)
    elif what == "end":
        blob.end = not blob.end
    elif what == "trailer":
        blob.trailer = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))


def mut_bytes(data: bytearray, rng: random.Random) -> None:
    if len(data) <= 13:
        return
    what = rng.choice(["flip", "set", "insert", "delete", "truncate"])
    pos = rng.randrange(13, len(data)) if rng.random() < 0.5 else rng.randrange(
        13, min(len(data), 13 + 400))
    if what == "flip":
        data[pos] ^= 1 << rng.randrange(8)
    elif what == "set":
        data[pos] = rng.choice([0x00, 0x01, 0x06, 0x7F, 0x80, 0xC0, 0xE0, 0xF0, 0xF8, 0xFF,
                                rng.randrange(256)])
    elif what == "insert":
        data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    elif what == "delete":
        del data[pos : pos + rng.randint(1, 4)]
    else:
        del data[pos:]


MUTATORS = [(mut_code, 40), (mut_memory, 8), (mut_data, 6), (mut_imports, 10),
            (mut_exports, 8), (mut_sections, 14)]


def make_input(seed: int, index: int) -> bytes:
    """The index-th input of a campaign (deterministic)."""
    rng = random.Random((seed << 40) ^ index)
    r = rng.random()
    if r < 0.35:
        blob = gen_blob(rng)
    else:
        # the DOOM and Quake blobs are large: use them rarely
        bases = BASES_SMALL if rng.random() < 0.997 or not BASES_LARGE else BASES_LARGE
        blob = clone(rng.choice(bases))
    if rng.random() < 0.3:
        blob.version = rng.randrange(4)
    elif rng.random() < 0.01:
        blob.version = rng.randrange(4, 256)
    funcs = [f for f, _ in MUTATORS]
    weights = [w for _, w in MUTATORS]
    for f in rng.choices(funcs, weights, k=rng.choice([0, 1, 1, 1, 2, 2, 3])):
        f(blob, rng)
    data = bytearray(blob.to_bytes(rng, fix_length=True))
    if rng.random() < 0.2:
        for _ in range(rng.randint(1, 3)):
            mut_bytes(data, rng)
    if rng.random() < 0.9:
        data[5:13] = len(data).to_bytes(8, "little")
    elif rng.random() < 0.5:
        data[5:13] = rng.getrandbits(64).to_bytes(8, "little")
    if rng.random() < 0.002:
        data[rng.randrange(4)] ^= 1 << rng.randrange(8)
    return bytes(data)


# ---------------------------------------------------------------- the check


BASES_SMALL: list[Blob] = []
BASES_LARGE: list[Blob] = []
OPCODES: dict[int, list[int]] = {}


def load_bases() -> None:
    if BASES_SMALL:
        return
    paths = sorted([*(SHARED / "blobs").glob("*.polkavm"),
                    *(SHARED / "blobs" / "c-guests").glob("*.polkavm"),
                    *(SHARED / "contracts-sample" / "out").glob("*.polkavm")])
    for p in paths:
        data = p.read_bytes()
        (BASES_LARGE if len(data) > 200_000 else BASES_SMALL).append(split_blob(data))
    for v in range(4):
        OPCODES[v] = opcodes_for(v)


OK, BLOB_ERROR, OTHER = "ok", "blob_error", "other"


def check(data: bytes, py_decode_limit: int) -> tuple[str, str]:
    """Runs one input; returns (outcome, detail)."""
    from executor.blob import ProgramBlob
    from executor.errors import BlobError
    from executor.native import ffi, lib

    try:
        blob = ProgramBlob.from_bytes(data)
    except BlobError:
        return BLOB_ERROR, ""
    except Exception as e:  # noqa: BLE001 - counted and saved
        return OTHER, f"from_bytes: {type(e).__name__}: {e}\n{traceback.format_exc()}"
    try:
        try:
            ProgramBlob.from_bytes(data, strict=True)
        except BlobError:
            pass
        isa = int(blob.isa)
        code, bitmask = blob.code, blob.bitmask
        n = lib.pvm_decode_listing(isa, code, len(code), bitmask, ffi.NULL, 0)
        buf = ffi.new("pvm_insn[]", max(n, 1))
        if lib.pvm_decode_listing(isa, code, len(code), bitmask, buf, n) != n:
            return OTHER, "pvm_decode_listing: count changed between calls"
        for i in range(n):
            if buf[i].pc > len(code):
                return OTHER, f"pvm_decode_listing: pc {buf[i].pc} beyond code length"
        if len(code) <= py_decode_limit:
            count = sum(1 for _ in blob.instructions())
            if count != n:
                return OTHER, f"instructions(): {count} != {n}"
        jt = blob.jump_table
        jt_array = ffi.new("uint32_t[]", jt) if jt else ffi.new("uint32_t[]", 1)
        err = ffi.new("char[256]")
        for flags in ((0, 2) if isa == 3 else (0,)):
            p = lib.pvm_program_new(isa, code, len(code), bitmask, len(bitmask), jt_array,
                                    len(jt), ffi.NULL, flags, err, 256)
            if p == ffi.NULL:
                msg = ffi.string(err).decode("utf-8", "replace")
                if flags and msg.startswith("validation failed"):
                    continue
                return OTHER, f"pvm_program_new(flags={flags}) rejected a parsed blob: {msg}"
            lib.pvm_program_free(p)
    except Exception as e:  # noqa: BLE001 - counted and saved
        return OTHER, f"after parse: {type(e).__name__}: {e}\n{traceback.format_exc()}"
    return OK, ""


# ---------------------------------------------------------------- child process


def worker_main(args: argparse.Namespace) -> int:
    load_bases()
    progress_path = Path(args.progress)
    with open(progress_path, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 8)
    counts = {OK: 0, BLOB_ERROR: 0, OTHER: 0}
    others: list[tuple[int, str]] = []
    out = Path(args.out)
    for index in range(args.start, args.start + args.count):
        struct.pack_into("<q", mm, 0, index)
        try:
            data = make_input(args.seed, index)
        except Exception:
            traceback.print_exc()
            print(f"the input generator failed on input {index} (a bug in this tool)",
                  file=sys.stderr)
            return 3
        if index == args.selftest_crash:
            os.kill(os.getpid(), signal.SIGSEGV)  # exercises the crash handling
        outcome, detail = check(data, args.py_decode_limit)
        counts[outcome] += 1
        if outcome == OTHER:
            path = out / f"other-{args.seed}-{index}.bin"
            path.write_bytes(data)
            others.append((index, detail.splitlines()[0] if detail else ""))
            (out / f"other-{args.seed}-{index}.txt").write_text(detail)
    struct.pack_into("<q", mm, 0, -1)
    mm.flush()
    print(json.dumps({"counts": counts, "others": others}))
    return 0


# ---------------------------------------------------------------- parent


def child_env(asan: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if asan:
        def lib(name: str) -> str:
            return subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True,
                                  text=True, check=True).stdout.strip()

        build = Path(asan).resolve()
        if not any(build.glob("_pvm_native_asan*.so")):
            raise SystemExit(f"no sanitizer build in {build} (`make test-asan` makes one)")
        env["LD_PRELOAD"] = f"{lib('libasan.so')} {lib('libubsan.so')}"
        env["ASAN_OPTIONS"] = ("detect_leaks=0:allocator_may_return_null=1:handle_segv=0:"
                               "handle_sigbus=0")
        env["PVM_NATIVE_MODULE"] = "_pvm_native_asan"
        # pycryptodome dlopens with RTLD_DEEPBIND, which the sanitizer runtime refuses
        # (it aborts); this switch of pycryptodome's makes it use a plain dlopen
        env["PYCRYPTODOME_DISABLE_DEEPBIND"] = "1"
        env["PYTHONPATH"] = f"{build}:{ROOT}"
    return env


def run_chunk(task: tuple[int, int, int, str, str | None, int, float, int]) -> dict[str, Any]:
    """Runs inputs [start, start+count) in child processes, restarting after crashes."""
    seed, start, count, out, asan, py_limit, timeout, crash_at = task
    outdir = Path(out)
    result: dict[str, Any] = {"inputs": 0, OK: 0, BLOB_ERROR: 0, OTHER: 0, "crashes": [],
                              "others": []}
    progress = outdir / f"progress-{seed}-{start}.bin"
    end = start + count
    pos = start
    env = child_env(asan)
    while pos < end:
        progress.write_bytes(struct.pack("<q", pos))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--seed", str(seed),
               "--start", str(pos), "--count", str(end - pos), "--out", out,
               "--progress", str(progress), "--py-decode-limit", str(py_limit),
               "--selftest-crash", str(crash_at)]
        kind = ""
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as e:
            kind = "hang"
            err = e.stderr or ""
            stderr = err.decode("utf-8", "replace") if isinstance(err, bytes) else err
        else:
            stderr, rc = proc.stderr, proc.returncode
            if rc == 0:
                line = proc.stdout.strip().splitlines()[-1]
                res = json.loads(line)
                for k in (OK, BLOB_ERROR, OTHER):
                    result[k] += res["counts"][k]
                result["inputs"] += end - pos
                result["others"] += res["others"]
                break
            kind = f"exit status {rc}" if rc > 0 else f"signal {-rc}"
        # a crash or a hang: the child recorded the index it was working on
        bad = struct.unpack("<q", progress.read_bytes()[:8])[0]
        if bad < pos or bad >= end:
            bad = pos
        data = make_input(seed, bad)
        saved = outdir / f"crash-{seed}-{bad}.bin"
        saved.write_bytes(data)
        (outdir / f"crash-{seed}-{bad}.txt").write_text(
            f"{kind}\nseed {seed} index {bad}\n--- stderr (tail) ---\n{stderr[-8000:]}")
        result["crashes"].append((bad, kind, str(saved)))
        # the inputs before `bad` finished in the child but their counts were lost with it:
        # run them again (deterministic) so that every input is counted once
        if bad > pos:
            sub = run_chunk((seed, pos, bad - pos, out, asan, py_limit, timeout, crash_at))
            for k in ("inputs", OK, BLOB_ERROR, OTHER):
                result[k] += sub[k]
            result["crashes"] += sub["crashes"]
            result["others"] += sub["others"]
        result["inputs"] += 1
        pos = bad + 1
    progress.unlink(missing_ok=True)
    return result


def _run_tasks(pool: Any, tasks: Any, jobs: int, deadline: float | None) -> Any:
    """Results of ``run_chunk`` over ``tasks``, ``jobs`` chunks in flight; with a
    ``deadline`` no chunk is started after it (the running ones finish)."""
    pending: list[Any] = []
    it = iter(tasks)
    while True:
        while len(pending) < jobs and (deadline is None or time.time() < deadline):
            task = next(it, None)
            if task is None:
                break
            pending.append(pool.apply_async(run_chunk, (task,)))
        if not pending:
            return
        done = next((p for p in pending if p.ready()), None)
        if done is None:
            pending[0].wait(0.2)
            continue
        pending.remove(done)
        yield done.get()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=None,
                    help="run chunks until this many seconds have passed (instead of --count)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=5000)
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="where failing inputs are saved")
    ap.add_argument("--asan", nargs="?", const=str(ROOT / "build-asan"), metavar="DIR",
                    help="children use the AddressSanitizer/UBSan build of the C core in DIR "
                         "(default build-asan/, made by `make test-asan`)")
    ap.add_argument("--py-decode-limit", type=int, default=16384,
                    help="iterate ProgramBlob.instructions() for code up to this many bytes")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per chunk")
    ap.add_argument("--dump", type=int, metavar="INDEX",
                    help="write input INDEX (of --seed) to stdout and exit")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--progress", help=argparse.SUPPRESS)
    ap.add_argument("--selftest-crash", type=int, default=-1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args)
    load_bases()
    if args.dump is not None:
        sys.stdout.buffer.write(make_input(args.seed, args.dump))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.seconds is not None:
        args.count = 1 << 40  # until the time is up (each chunk is --chunk inputs)
    tasks = ((args.seed, s, min(args.chunk, args.count - s), str(out), args.asan,
              args.py_decode_limit, args.timeout, args.selftest_crash)
             for s in range(0, args.count, args.chunk))
    total: dict[str, Any] = {"inputs": 0, OK: 0, BLOB_ERROR: 0, OTHER: 0, "crashes": [],
                             "others": []}
    t0 = time.time()
    deadline = None if args.seconds is None else t0 + args.seconds
    last_report = 0
    with mp.Pool(args.jobs) as pool:
        for res in _run_tasks(pool, tasks, args.jobs, deadline):
            for k in ("inputs", OK, BLOB_ERROR, OTHER):
                total[k] += res[k]
            total["crashes"] += res["crashes"]
            total["others"] += res["others"]
            for index, kind, path in res["crashes"]:
                print(f"CRASH ({kind}) at input {index}: saved {path}", flush=True)
            for index, detail in res["others"][:5]:
                print(f"OTHER EXCEPTION at input {index}: {detail}", flush=True)
            if total["inputs"] - last_report >= 50_000 or total["inputs"] == args.count or \
                    deadline is not None and time.time() >= deadline:
                last_report = total["inputs"]
                of = "" if deadline is not None else f"/{args.count}"
                print(f"{total['inputs']}{of} inputs, ok {total[OK]}, blob_errors "
                      f"{total[BLOB_ERROR]}, other {total[OTHER]}, crashes "
                      f"{len(total['crashes'])}, {time.time() - t0:.0f} s", flush=True)
    wall = time.time() - t0
    print(f"inputs {total['inputs']}, ok {total[OK]}, blob_errors {total[BLOB_ERROR]}, "
          f"other_exceptions {total[OTHER]}, crashes {len(total['crashes'])}")
    print(f"wall {wall:.0f} s (seed {args.seed}, jobs {args.jobs}"
          f"{', asan' if args.asan else ''}); failing inputs under {out}")
    return 1 if total[OTHER] or total["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
