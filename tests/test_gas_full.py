"""The full (pipeline/cache) gas cost model against expectations produced by the
reference PolkaVM, never by this implementation:

* block costs from the reference's own simulator tests (PolkaVM 0.35,
  crates/polkavm-common/src/simulator.rs: each expected timeline is N cycles
  wide and the test asserts a block cost of N - 3), for the L1-, L2- and
  L3-hit cache variants;
* per-block costs and final gas of the spectool ``gas_*`` sources (and of
  ``inst_branch_less_unsigned_nok``), which have no ``post: gas`` lines, from
  the reference-generated index of the JAM PVM test vectors v0.5
  (pvm/TESTCASES.md, koute/jamtestvectors commit 6bf3768e: "Gas simulation at
  offset P with total cost of C" and "Gas consumed: A -> B");
* the ``post: gas`` lines of all spectool sources are checked on every backend
  in tests/test_vectors_spectool.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.backends import available_backends
from executor.config import Config
from executor.engine import Engine, Module
from executor.errors import ModuleError
from executor.gas import (
    CacheModel,
    CostModel,
    FullCostModel,
    cost_model_from_name,
)
from executor.isa import InstructionSet
from executor.raw import NativeProgram, Profile
from executor.tools.asm import ProgramBuilder
from executor.tools.spectool import load_test
from executor.tools.vectors import run_source
from tests.conftest import SPECTOOL

L1, L2, L3 = CacheModel.L1_HIT, CacheModel.L2_HIT, CacheModel.L3_HIT


def first_block_cost(text: str, cache: CacheModel) -> int:
    """Cost of the block at pc 0 of a Latest64 program (as the simulator tests)."""
    b = ProgramBuilder(InstructionSet.LATEST64)
    b.asm(text)
    program = NativeProgram(b.build(), cost_model=FullCostModel(cache), validate=False)
    return program.block_cost(0)


# (reference test, cache, program, block cost); the programs that are also
# spectool sources are taken from there (same instructions).
SIMULATOR_TESTS_FROM_SOURCES = [
    ("test_parallel_simple", L1, "gas_parallel_simple", 2),
    ("test_sequential_simple", L1, "gas_sequential_simple", 3),
    ("test_sequential_decode_limits", L1, "gas_sequential_decode_limits", 4),
    ("test_resource_limits_mul", L1, "gas_resource_limits_mul", 6),
    ("test_mul_with_dep", L1, "gas_mul_with_dep", 4),
    ("test_register_move", L1, "gas_register_move", 3),
    ("test_overwrite_register", L1, "gas_overwrite_register", 27),
    ("test_complex", L1, "gas_complex_1", 27),
    ("test_even_more_complex", L1, "gas_complex_2", 22),
    ("test_super_complex_l1", L1, "gas_complex_3", 68),
    ("test_super_complex_l2", L2, "gas_complex_3", 109),
    ("test_xor_and_shift", L1, "gas_xor_and_shift", 3),
    ("test_move_reg_decode_slots", L1, "gas_register_move_use_all_decode_slots", 3),
]


@pytest.mark.parametrize("ref, cache, source, cost", SIMULATOR_TESTS_FROM_SOURCES,
                         ids=[t[0] for t in SIMULATOR_TESTS_FROM_SOURCES])
def test_reference_simulator_tests_on_sources(ref: str, cache: CacheModel, source: str,
                                              cost: int) -> None:
    test = load_test(SPECTOOL / f"{source}.txt")
    program = NativeProgram(test.blob, cost_model=FullCostModel(cache))
    assert program.block_cost(0) == cost


MEMORY_ACCESSES = """
    a0 = s1
    ra = u64 [sp + 0x30]
    s0 = u64 [sp + 0x28]
    s1 = u64 [sp + 0x20]
    sp = sp + 0x38
    ret
"""

L3_LOADS = """
    a0 = u64 [a0]
    a0 = u64 [a0]
    a0 = u64 [a0]
    a0 = u64 [a0]
    ret
"""

LOAD_AND_JUMP = """
@top:
    a2 = u8 [a0 + 11]
    jump @top if a2 == 0
"""

# Byte swaps of four halfwords loaded from the stack, then a jump (L2).
ANOTHER_COMPLEX_BLOCK = """
    unlikely
    a4 = u64 [sp + 0x30]
    a0 = a4 << 0x8
    a1 = a4 << 0x30
    a1 = a1 >> 0x38
    a0 = a0 | a1
    u16 [s1] = a0
    a1 = u64 [sp + 0x20]
    a3 = a1 << 0x8
    a2 = a1 << 0x30
    a2 = a2 >> 0x38
    t0 = a3 | a2
    u16 [s1 + 0x2] = t0
    a3 = u64 [sp + 0x38]
    a2 = a3 << 0x8
    a3 = a3 << 0x30
    a3 = a3 >> 0x38
    a2 = a2 | a3
    u16 [s1 + 0x4] = a2
    a3 = u64 [sp + 0x28]
    a2 = a3 << 0x8
    a3 = a3 << 0x30
    a3 = a3 >> 0x38
    a2 = a2 | a3
    u16 [s1 + 0x6] = a2
    a2 = a4 << 0x38
    a2 = a2 >> 0x3f
    a0 = a0 + a2
    a0 = a0 << 0x30
    a0 = a0 >>a 0x31
    a2 = a1 << 0x38
    a2 = a2 >> 0x3f
    a1 = t0 + a2
    a1 = a1 << 0x30
    a1 = a1 >>a 0x31
    a0 = a0 + a1
    jump @next
@next:
    trap
"""

SIMULATOR_TESTS_OWN_PROGRAMS = [
    ("test_memory_accesses", L1, MEMORY_ACCESSES, 26),
    ("test_empty", L1, "fallthrough", 2),
    ("test_load_and_jump", L1, LOAD_AND_JUMP, 5),
    ("test_l3_loads", L3, L3_LOADS, 148),
    ("test_ecalli", L1, "ecalli 27\nret", 100),
    ("test_another_complex_block_1", L2, ANOTHER_COMPLEX_BLOCK, 62),
]


@pytest.mark.parametrize("ref, cache, text, cost", SIMULATOR_TESTS_OWN_PROGRAMS,
                         ids=[t[0] for t in SIMULATOR_TESTS_OWN_PROGRAMS])
def test_reference_simulator_tests(ref: str, cache: CacheModel, text: str, cost: int) -> None:
    assert first_block_cost(text, cache) == cost


# Spectool sources without `post: gas`: {block start: cost} and the final gas
# of the reference run (initial gas 10000 unless the source says otherwise).
V05_TESTCASES = {
    "gas_basic_consume_all": ({0: 2}, 0),
    "gas_complex_1": ({0: 28}, 9972),
    "gas_complex_2": ({0: 22}, 12),
    "gas_complex_3": ({0: 109, 111: 2}, 9891),
    "gas_jump_trap_else": ({0: 1, 3: 2, 4: 2}, 9997),
    "gas_jump_trap_target": ({0: 1, 3: 2, 7: 2}, 9997),
    "gas_jump_unlikely_both": ({0: 1, 3: 40, 8: 40}, 9959),
    "gas_jump_unlikely_else": ({0: 1, 3: 40, 8: 2}, 9997),
    "gas_jump_unlikely_target": ({0: 1, 3: 2, 7: 40}, 9959),
    "gas_load_and_jump": ({0: 26, 6: 2}, 9974),
    "gas_memory_accesses": ({0: 25}, 9975),
    "gas_mul_with_dep": ({0: 4}, 9996),
    "gas_multiple_register_moves_complex": ({0: 62}, 9938),
    "gas_multiple_register_moves_simple": ({0: 20, 7: 2, 8: 2}, 9976),
    "gas_overwrite_register": ({0: 48}, 9952),
    "gas_parallel_simple": ({0: 2}, 9998),
    "gas_register_move": ({0: 3}, 9997),
    "gas_register_move_use_all_decode_slots": ({0: 3}, 9997),
    "gas_resource_limits_mul": ({0: 6}, 9994),
    "gas_sequential_decode_limits": ({0: 4}, 9996),
    "gas_sequential_simple": ({0: 3}, 9997),
    "gas_start_execution_in_the_middle_of_block": ({0: 3}, 9997),
    "gas_xor_and_shift": ({0: 3, 7: 2}, 9995),
    "inst_branch_less_unsigned_nok": ({0: 2, 9: 2, 10: 2}, 9996),
}


def test_v05_list_covers_every_source_without_post_gas() -> None:
    missing = {p.stem for p in SPECTOOL.glob("*.txt")
               if load_test(p).post_gas is None and not p.stem.startswith("multistep_")}
    assert missing == set(V05_TESTCASES)


@pytest.mark.parametrize("name", sorted(V05_TESTCASES))
def test_v05_block_costs(name: str) -> None:
    test = load_test(SPECTOOL / f"{name}.txt")
    program = NativeProgram(test.blob, profile=Profile.POLKAVM, cost_model=FullCostModel())
    costs = {pc: program.block_cost(pc) for pc in range(len(test.blob.code))
             if program.block_cost(pc)}
    assert costs == V05_TESTCASES[name][0]


@pytest.mark.parametrize("backend", available_backends())
@pytest.mark.parametrize("name", sorted(V05_TESTCASES))
def test_v05_final_gas(name: str, backend: str, tmp_path: Path) -> None:
    path = SPECTOOL / f"{name}.txt"
    expected = V05_TESTCASES[name][1]
    text = path.read_text() + f"\npost: gas = {expected}\n"
    copy = tmp_path / path.name
    copy.write_text(text)
    result = run_source(copy, backend=backend, check_gas=True, cost_model=FullCostModel())
    assert result.ok, result.line()


def test_32_bit_alu_forms_cost_more_on_64_bit_programs() -> None:
    """gas.md 9: some 32-bit ALU forms take longer on 64-bit programs."""
    text = "i32 a0 = a1 + a2\ni32 a1 = a0 + a2\ntrap"
    b = ProgramBuilder(InstructionSet.LATEST32)
    b.asm(text)
    b32 = NativeProgram(b.build(), cost_model=FullCostModel(L1), validate=False).block_cost(0)
    assert b32 < first_block_cost(text, L1)


def test_names_and_config() -> None:
    assert cost_model_from_name("naive") is None
    assert cost_model_from_name("full") == FullCostModel(L2)
    assert cost_model_from_name("full-l1-hit") == FullCostModel(L1)
    l3 = cost_model_from_name("full-l3-hit")
    assert isinstance(l3, FullCostModel) and l3.name == "full-l3-hit"
    with pytest.raises(ValueError):
        cost_model_from_name("full-l4-hit")
    assert Config(cost_model=FullCostModel()).cost_model == FullCostModel(L2)
    with pytest.raises(ModuleError):
        Config(cost_model="full")  # type: ignore[arg-type]


def test_module_uses_the_full_model() -> None:
    test = load_test(SPECTOOL / "gas_complex_3.txt")
    naive = Module(Engine(Config()), test.blob)
    full = Module(Engine(Config(cost_model=FullCostModel())), test.blob)
    l1 = Module(Engine(Config(cost_model=FullCostModel(L1))), test.blob)
    assert (naive.program.block_cost(0), full.program.block_cost(0),
            l1.program.block_cost(0)) == (38, 109, 68)  # naive: 38 instructions
    assert isinstance(CostModel.naive(), CostModel)


@pytest.mark.skipif("jit" not in available_backends(), reason="no JIT here")
@pytest.mark.parametrize("cache", list(CacheModel), ids=[c.label for c in CacheModel])
def test_random_programs_agree_under_the_full_model(cache: CacheModel) -> None:
    """Interpreter and JIT charge the same block costs at the same points
    (every interrupt, pc, register, gas and memory equal)."""
    from executor.tools.difftest import compare, random_case, run_case

    model = FullCostModel(cache)
    for seed in range(600):
        case = random_case(seed)
        a = run_case(case, "interpreter", cost_model=model)
        b = run_case(case, "jit", cost_model=model)
        assert compare(a, b) is None, f"seed {seed}: {compare(a, b)}"
