"""Differential testing: random programs run on two backends must agree.

:func:`random_case` builds a random but well-formed program (every
instruction of the chosen instruction set, branches and jump tables to valid
and invalid targets, memory accesses near region and page edges, sbrk, ecalli,
small gas budgets) together with its initial state; :func:`run_case` runs it
on a backend and records every interrupt with the full machine state;
:func:`compare` reports the first divergence.  Used by the test suite (a
bounded slice) and by ``tools/difffuzz.py`` (the long campaign).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from executor.blob import ProgramBlob
from executor.errors import PvmError
from executor.gas import AnyCostModel
from executor.isa import Form, InstructionSet, OpInfo, ops
from executor.raw import InterruptKind, MemoryMap, NativeProgram, Profile, RawInstance

INTERESTING = [0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, -1, -2, -8, -0x80, -0x8000, -0x80000000,
               31, 32, 63, 64]

BRANCHY = {"jump", "load_imm_and_jump"}


@dataclass
class Case:
    seed: int
    blob: ProgramBlob
    page_size: int
    dynamic: bool
    regs: list[int]
    gas: int
    entry: int
    map_pages: list[tuple[int, int, bool]] = field(default_factory=list)
    metered: bool = True


def _imm_bytes(v: int, min_len: int, rng: random.Random) -> bytes:
    """``v`` (an i32) in the shortest little-endian form that sign-extends back,
    sometimes padded to a longer length."""
    v &= 0xFFFFFFFF
    sv = v - (1 << 32) if v & 0x80000000 else v
    length = 0
    while length < 4:
        lo = -(1 << (8 * length - 1)) if length else 0
        hi = (1 << (8 * length - 1)) - 1 if length else 0
        if lo <= sv <= hi:
            break
        length += 1
    if rng.random() < 0.15:
        length = rng.randint(length, 4)
    length = max(length, min_len)
    return (v & ((1 << (8 * length)) - 1)).to_bytes(length, "little") if length else b""


def _is_terminator(o: OpInfo | None) -> bool:
    return o is not None and o.is_terminator


def _reg(rng: random.Random) -> int:
    return rng.randint(0, 15) if rng.random() < 0.1 else rng.randint(0, 12)


class _Gen:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.seed = seed

    def value(self, addresses: list[int]) -> int:
        rng = self.rng
        r = rng.random()
        if r < 0.4 and addresses:
            return rng.choice(addresses) + rng.choice([0, 0, -1, 1, -2, -4, -8, 4, 8, 4095, 4096])
        if r < 0.8:
            return rng.choice(INTERESTING)
        return rng.randint(-(1 << 31), (1 << 31) - 1)

    def build(self) -> Case:
        rng = self.rng
        isa = rng.choice(list(InstructionSet))
        dynamic = rng.random() < 0.3
        page_size = 0x1000 if dynamic or rng.random() < 0.7 else 0x4000
        ro_size = rng.choice([0, 1, 100, 4096, 5000])
        rw_size = rng.choice([0, 1, 64, 4096, 9000])
        stack = rng.choice([0, 16, 4096, 8192])
        mm = MemoryMap(page_size, ro_size, rw_size, stack)
        addresses = [mm.ro_data_address, mm.ro_data_address + mm.ro_data_size,
                     mm.rw_data_address, mm.rw_data_address + mm.rw_data_size, mm.heap_base,
                     mm.stack_address_low, mm.stack_address_high, 0x10000, 0x4000, 0xFFFFFFFF,
                     0xFFFF0000]
        table = [o for o in ops() if o.opcodes[isa] is not None]
        fallthrough = next(o for o in table if o.mnemonic == "fallthrough")
        count = rng.randint(3, 64)
        items: list[tuple[OpInfo | None, dict[str, Any]]] = []
        for _ in range(count):
            r = rng.random()
            if r < 0.01:
                items.append((None, {}))  # an unknown opcode
            elif r < 0.12:
                items.append((fallthrough, {}))
            else:
                items.append((rng.choice(table), {}))
        # lay out: first pass with placeholder targets to know pcs
        jt_len = rng.randint(0, 6)
        encoded: list[bytearray] = []
        pcs: list[int] = []
        pc = 0
        pending: list[tuple[int, int, int]] = []  # (item index, byte offset of rel32, pc)
        for idx, (o, _) in enumerate(items):
            enc, rel_at = self.encode(o, isa, addresses, jt_len)
            pcs.append(pc)
            encoded.append(enc)
            if rel_at is not None:
                pending.append((idx, rel_at, pc))
            pc += len(enc)
        code_len = pc
        starts = pcs
        targets = [pcs[i] for i in range(len(items))
                   if i == 0 or _is_terminator(items[i - 1][0])]
        for idx, rel_at, ipc in pending:
            r = rng.random()
            if r < 0.93:
                target = rng.choice(targets)
            elif r < 0.9:
                target = rng.randint(0, code_len + 2)
            else:
                target = ipc
            encoded[idx][rel_at : rel_at + 4] = ((target - ipc) & 0xFFFFFFFF).to_bytes(4, "little")
        code = b"".join(encoded)
        bitmask = bytearray((len(code) + 7) // 8)
        for s in starts:
            bitmask[s >> 3] |= 1 << (s & 7)
        jump_table = [rng.choice(targets) if rng.random() < 0.9 else rng.choice(
            [rng.randint(0, code_len + 3), rng.choice(starts)]) for _ in range(jt_len)]
        ro_data = bytes(rng.randrange(256) for _ in range(rng.choice([0, min(ro_size, 16)])))
        rw_data = bytes(rng.randrange(256) for _ in range(rng.choice([0, min(rw_size, 16)])))
        blob = ProgramBlob(isa=isa, ro_data_size=ro_size, rw_data_size=rw_size, stack_size=stack,
                           ro_data=ro_data, rw_data=rw_data, jump_table=jump_table, code=code,
                           bitmask=bytes(bitmask))
        regs = [self.value(addresses) & 0xFFFFFFFFFFFFFFFF for _ in range(13)]
        if rng.random() < 0.5:
            regs[0] = 0xFFFF0000
        for r in rng.sample(range(13), 3):
            regs[r] = 2 * rng.randint(0, jt_len + 1)
        self.addr_regs_values(regs, mm)
        gas = rng.choice([0, 1, 2, 3, 5, 10, 20, 50, 100]) if rng.random() < 0.3 else rng.choice(
            [1000, 10000, 100000])
        case = Case(self.seed, blob, page_size, dynamic, regs, gas,
                    entry=rng.choice(starts) if rng.random() < 0.2 else 0,
                    metered=rng.random() < 0.9)
        if dynamic:
            for _ in range(rng.randint(0, 4)):
                base = rng.choice([a for a in addresses if 0x10000 <= a < 0xFFFF0000])
                base &= ~(page_size - 1)
                case.map_pages.append((base, page_size * rng.randint(1, 2), rng.random() < 0.7))
        return case

    ADDR_REGS = (5, 6, 7)
    JUMP_REGS = (0, 8)

    def addr_regs_values(self, regs: list[int], mm: MemoryMap) -> None:
        rng = self.rng
        choices = [mm.rw_data_address, mm.stack_address_low, mm.stack_address_high - 64,
                   mm.ro_data_address, mm.heap_base]
        for r in self.ADDR_REGS:
            if rng.random() < 0.85:
                regs[r] = rng.choice(choices)

    def base_reg(self) -> int:
        return self.rng.choice(self.ADDR_REGS) if self.rng.random() < 0.8 else _reg(self.rng)

    def encode(self, o: OpInfo | None, isa: InstructionSet, addresses: list[int],
               jt_len: int) -> tuple[bytearray, int | None]:
        rng = self.rng
        if o is None:
            known = {x.opcodes[isa] for x in ops()}
            code = rng.choice([b for b in range(256) if b not in known])
            return bytearray([code] + [rng.randrange(256) for _ in range(rng.randint(0, 3))]), None
        op = o.opcodes[isa]
        assert op is not None
        f = o.form
        out = bytearray([op])
        rel_at: int | None = None
        if f is Form.A:
            pass
        elif f is Form.I:
            out += _imm_bytes(rng.randint(0, 8) if rng.random() < 0.8 else self.value([]), 0, rng)
        elif f is Form.O:
            rel_at = len(out)
            out += b"\0\0\0\0"
        elif f is Form.II:
            a = _imm_bytes(self.value(addresses), 0, rng)
            b = _imm_bytes(self.value([]), 0, rng)
            out += bytes([len(a)]) + a + b
        elif f is Form.RI:
            v = self.value(addresses) if o.flags & (4 | 8) else self.value([])
            reg = _reg(rng)
            if o.mnemonic == "jump_indirect":
                v = rng.choice([0, 0, 2, -2, 1])
                reg = rng.choice(self.JUMP_REGS) if rng.random() < 0.7 else reg
            out += bytes([reg]) + _imm_bytes(v, 0, rng)
        elif f in (Form.RIO, Form.RII):
            if f is Form.RII:
                a = _imm_bytes(rng.choice([0, 0, 1, 4, -4, 8, 100, 4095, -1]), 0, rng)
                out += bytes([self.base_reg() | (len(a) << 4)]) + a
            else:
                a = _imm_bytes(self.value([]), 0, rng)
                out += bytes([_reg(rng) | (len(a) << 4)]) + a
            if f is Form.RIO:
                rel_at = len(out)
                out += b"\0\0\0\0"
            else:
                out += _imm_bytes(self.value([]), 0, rng)
        elif f is Form.RR:
            out += bytes([_reg(rng) | (_reg(rng) << 4)])
        elif f in (Form.RRI, Form.RRO):
            mem = bool(o.flags & (4 | 8))
            out += bytes([_reg(rng) | ((self.base_reg() if mem else _reg(rng)) << 4)])
            if f is Form.RRO:
                rel_at = len(out)
                out += b"\0\0\0\0"
            else:
                v = rng.choice([0, 0, 1, 4, -4, 8, 100]) if o.flags & (4 | 8) else self.value([])
                out += _imm_bytes(v, 0, rng)
        elif f is Form.RRII:
            a = _imm_bytes(self.value([]), 0, rng)
            b = _imm_bytes(rng.choice([0, 0, 2, -2]), 0, rng)
            out += bytes([_reg(rng) | (_reg(rng) << 4), len(a)]) + a + b
        elif f is Form.RRR:
            out += bytes([_reg(rng) | (_reg(rng) << 4), _reg(rng)])
        elif f is Form.RI64:
            out += bytes([_reg(rng)]) + (self.value(addresses) & (2**64 - 1)).to_bytes(8, "little")
        if len(out) > 25:
            out = out[:25]
        return out, rel_at


def random_case(seed: int) -> Case:
    case = _Gen(seed).build()
    if not case.metered and not _terminates(case):
        case.metered = True
    return case


def _terminates(case: Case) -> bool:
    """Unmetered runs are only generated for programs that provably stop:
    a metered run with a large budget must not run out of gas."""
    probe = Case(case.seed, case.blob, case.page_size, case.dynamic, case.regs, 1_000_000,
                 case.entry, case.map_pages, True)
    events = run_case(probe, "interpreter")
    return all(e.kind != "NOT_ENOUGH_GAS" for e in events)


@dataclass
class Event:
    kind: str
    pc: int | None
    regs: list[int]
    gas: int
    extra: Any = None


def run_case(case: Case, backend: str, *, max_events: int = 64,
             sandbox: str | None = None, cost_model: AnyCostModel | None = None) -> list[Event]:
    """Runs a case; returns every interrupt with the machine state, then a
    final event holding a hash of all accessible memory."""
    from executor.backends import new_instance

    rng = random.Random(case.seed ^ 0x5EED)
    try:
        program = NativeProgram(case.blob, profile=Profile.POLKAVM, validate=False,
                                cost_model=cost_model)
        inst: RawInstance = new_instance(program, backend, page_size=case.page_size,
                                         dynamic_paging=case.dynamic,
                                         gas_metering=case.metered, sandbox=sandbox)
    except PvmError as exc:
        return [Event("error", None, [], 0, str(exc))]
    for base, length, writable in case.map_pages:
        inst.map_memory(base, length, writable=writable)
    inst.regs = case.regs
    inst.gas = case.gas
    inst.next_program_counter = case.entry
    events: list[Event] = []
    for _ in range(max_events):
        intr = inst.run()
        ev = Event(intr.kind.name, intr.pc, inst.regs, inst.gas,
                   (intr.hostcall, intr.fault_address, inst.next_program_counter))
        events.append(ev)
        if intr.kind is InterruptKind.ECALLI:
            r = rng.randrange(13)
            inst.set_reg(r, rng.choice([0, 1, 0xFFFF0000, rng.getrandbits(64)]))
            if rng.random() < 0.1:
                inst.gas = inst.gas - rng.randint(0, 5)
            continue
        fault = intr.fault_address
        if intr.kind is InterruptKind.SEGFAULT and fault is not None and fault >= 0x10000:
            if rng.random() < 0.8:
                inst.map_memory(fault, case.page_size, writable=rng.random() < 0.8)
                continue
            break
        if intr.kind is InterruptKind.NOT_ENOUGH_GAS and rng.random() < 0.5:
            inst.gas = inst.gas + rng.randint(1, 50)
            continue
        break
    events.append(Event("memory", None, [], 0, _memory_hash(inst, case)))
    inst.close()
    return events


def _memory_hash(inst: RawInstance, case: Case) -> str:
    h = hashlib.sha256()
    mm = inst.memory_map
    regions = [(b, b + n) for b, n, _ in case.map_pages]
    regions += [(mm.ro_data_address, mm.ro_data_address + mm.ro_data_size),
                (mm.rw_data_address, mm.rw_data_address + mm.rw_data_size + 0x10000),
                (mm.stack_address_low, mm.stack_address_high)]
    page = case.page_size
    for lo, hi in regions:
        for p in range(lo & ~(page - 1), hi, page):
            if inst.is_memory_accessible(p, page):
                h.update(p.to_bytes(4, "little"))
                h.update(inst.read_memory(p, page))
    h.update(inst.heap_size.to_bytes(4, "little"))
    return h.hexdigest()


def compare(a: list[Event], b: list[Event]) -> str | None:
    """The first divergence between two runs, or None."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if (x.kind, x.pc, x.regs, x.gas, x.extra) != (y.kind, y.pc, y.regs, y.gas, y.extra):
            return f"event {i}: {x} != {y}"
    if len(a) != len(b):
        return f"event count {len(a)} != {len(b)}"
    return None
