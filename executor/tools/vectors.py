"""Conformance vector runner: JAM v0.4 JSON vectors and spectool ``.txt`` sources.

JSON vectors run under the JAM v0.4 profile (test-vectors.md 2 and 4):
Latest64 opcode numbers, dynamic paging with 4 KiB pages, naive gas charged
per block, the JAM rule for a trailing ``fallthrough``.  ``.txt`` sources run
under PolkaVM 0.35 rules (ISA from the source, default JamV1) with any cost
model; their ``post: gas`` lines hold under the full model with the L2-hit
cache variant (what the reference's spectool uses), so pass
``cost_model=FullCostModel()`` and ``check_gas=True`` to check them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executor.blob import ProgramBlob
from executor.errors import PvmError
from executor.gas import AnyCostModel
from executor.isa import InstructionSet
from executor.raw import Interrupt, InterruptKind, NativeProgram, Profile, RawInstance

PAGE = 4096

STATUS = {
    InterruptKind.FINISHED: "halt",
    InterruptKind.TRAP: "panic",
    InterruptKind.SEGFAULT: "page-fault",
    InterruptKind.NOT_ENOUGH_GAS: "out-of-gas",
    InterruptKind.ECALLI: "ecalli",
}


@dataclass
class VectorResult:
    name: str
    path: str
    ok: bool
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"FAIL {self.name}: " + "; ".join(self.problems)


SANDBOX: str | None = None  # set by the CLI's --sandbox


def _backend_instance(program: NativeProgram, backend: str, **kw: Any) -> RawInstance:
    from executor.backends import new_instance

    return new_instance(program, backend, sandbox=SANDBOX, **kw)


def _memory_problems(inst: RawInstance, mapped: Iterable[tuple[int, int]],
                     expected: dict[int, int]) -> list[str]:
    problems = []
    seen: set[int] = set()
    for start, end in mapped:
        data = inst.read_memory(start, end - start)
        for i, b in enumerate(data):
            addr = start + i
            seen.add(addr)
            want = expected.get(addr, 0)
            if b != want:
                problems.append(f"memory[0x{addr:x}] = 0x{b:02x}, expected 0x{want:02x}")
                if len(problems) > 4:
                    return problems
    for addr, want in expected.items():
        if addr not in seen and want:
            problems.append(f"memory[0x{addr:x}] expected 0x{want:02x} but is not mapped")
    return problems


def run_json_vector(path: Path, *, backend: str = "interpreter") -> VectorResult:
    v = json.loads(path.read_text())
    name = v.get("name", path.stem)
    res = VectorResult(name, str(path), True)
    try:
        blob = ProgramBlob.from_code_blob(bytes(v["program"]), InstructionSet.LATEST64)
        program = NativeProgram(blob, profile=Profile.JAM_V04)
        inst = _backend_instance(program, backend, page_size=PAGE, dynamic_paging=True)
        mapped = []
        for m in v["initial-page-map"]:
            inst.map_memory(m["address"], m["length"], writable=m["is-writable"])
            mapped.append((m["address"], m["address"] + m["length"]))
        for chunk in v["initial-memory"]:
            inst.write_memory(chunk["address"], bytes(chunk["contents"]))
        inst.regs = list(v["initial-regs"])
        inst.gas = v["initial-gas"]
        inst.next_program_counter = v["initial-pc"]
        intr = inst.run()
    except PvmError as exc:
        res.ok = False
        res.problems.append(f"error: {exc}")
        return res
    status = STATUS.get(intr.kind, intr.kind.name.lower())
    p = res.problems
    if status != v["expected-status"]:
        p.append(f"status {status}, expected {v['expected-status']}")
    if intr.pc != v["expected-pc"]:
        p.append(f"pc {intr.pc}, expected {v['expected-pc']}")
    if inst.gas != v["expected-gas"]:
        p.append(f"gas {inst.gas}, expected {v['expected-gas']}")
    regs = inst.regs
    for r, (got, want) in enumerate(zip(regs, v["expected-regs"], strict=True)):
        if got != want:
            p.append(f"r{r} = 0x{got:x}, expected 0x{want:x}")
    if status == "page-fault" and intr.fault_address != v.get("expected-page-fault-address"):
        p.append(f"fault address {intr.fault_address}, expected "
                 f"{v.get('expected-page-fault-address')}")
    expected_mem: dict[int, int] = {}
    for chunk in v["expected-memory"]:
        for i, b in enumerate(chunk["contents"]):
            expected_mem[chunk["address"] + i] = b
    p.extend(_memory_problems(inst, mapped, expected_mem))
    res.ok = not p
    return res


def run_source(path: Path, *, backend: str = "interpreter", check_gas: bool = False,
               cost_model: AnyCostModel | None = None) -> VectorResult:
    """Runs one spectool ``.txt`` source through the assembler (PolkaVM 0.35 rules)."""
    from executor.tools.spectool import initial_steps, load_test

    res = VectorResult(path.stem, str(path), True)
    try:
        test = load_test(path)
        program = NativeProgram(test.blob, profile=Profile.POLKAVM, cost_model=cost_model)
        inst = _backend_instance(program, backend, page_size=PAGE, dynamic_paging=True)
        mapped: list[tuple[int, int]] = []
        for step in [*initial_steps(test.blob), *_pre_steps(test)]:
            _apply_step(inst, step, mapped)
        inst.gas = test.pre_gas
        inst.next_program_counter = test.entry_pc
        intr: Interrupt | None = None
        for step in test.steps:
            if step[0] == "run":
                intr = inst.run()
            else:
                _apply_step(inst, step, mapped)
    except PvmError as exc:
        res.ok = False
        res.problems.append(f"error: {exc}")
        return res
    p = res.problems
    if intr is None:
        p.append("the source has no run step")
        res.ok = False
        return res
    if intr.pc != test.expected_pc:
        p.append(f"pc {intr.pc} ({intr}), expected {test.expected_pc}")
    for r, want in test.post_regs.items():
        got = inst.reg(r)
        if got != want & 0xFFFFFFFFFFFFFFFF:
            p.append(f"r{r} = 0x{got:x}, expected 0x{want & 0xFFFFFFFFFFFFFFFF:x}")
    if check_gas and test.post_gas is not None and inst.gas != test.post_gas:
        p.append(f"gas {inst.gas}, expected {test.post_gas}")
    res.ok = not p
    return res


def _pre_steps(test: Any) -> Iterator[tuple[Any, ...]]:
    for r, value in sorted(test.pre_regs.items()):
        yield ("set_reg", r, value)


def _apply_step(inst: RawInstance, step: tuple[Any, ...], mapped: list[tuple[int, int]]) -> None:
    kind = step[0]
    if kind == "map":
        _, addr, end, writable = step
        inst.map_memory(addr, end - addr, writable=writable)
        mapped.append((addr, end))
    elif kind == "write":
        inst.write_memory(step[1], bytes(step[2]))
    elif kind == "set_reg":
        inst.set_reg(step[1], step[2])
    else:
        raise PvmError(f"unknown step {step!r}")


def collect(paths: Iterable[str | Path]) -> list[Path]:
    """Expands files and folders into the vector files they hold, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(x for x in p.rglob("*") if x.suffix in (".json", ".txt")
                              and not x.name.startswith("schema")))
        elif p.exists():
            out.append(p)
        else:
            raise PvmError(f"no such file or folder: {p}")
    return out


def run_path(path: Path, *, backend: str = "interpreter", check_gas: bool = False,
             cost_model: AnyCostModel | None = None) -> VectorResult:
    """JSON vectors always use naive gas (their ``expected-gas`` is defined by it);
    ``.txt`` sources use ``cost_model``."""
    if path.suffix == ".json":
        return run_json_vector(path, backend=backend)
    return run_source(path, backend=backend, check_gas=check_gas, cost_model=cost_model)
