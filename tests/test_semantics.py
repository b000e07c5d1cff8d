"""Execution semantics beyond the vectors, on every backend.

Expected values are the ones the spec records as checked against the
reference PolkaVM 0.35 (shared/spec, marked "[checked against PolkaVM 0.35]")
or follow directly from the spec's formulas; none is taken from this
implementation's own output.
"""

from __future__ import annotations

import pytest

from executor.backends import available_backends, new_instance
from executor.raw import InterruptKind, NativeProgram, RawInstance
from executor.tools.asm import assemble

pytestmark = pytest.mark.asan  # also run on the ASan/UBSan build (make test-asan)

BACKENDS = available_backends()
K = InterruptKind


def make(src: str, backend: str, *, isa: str = "latest64", dynamic: bool = False,
         page_size: int = 0x1000, metered: bool = True, step: bool = False) -> RawInstance:
    blob = assemble(f"%isa = {isa}\n" + src)
    program = NativeProgram(blob)
    return new_instance(program, backend, page_size=page_size, dynamic_paging=dynamic,
                        gas_metering=metered, step_tracing=step)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ---- gas (gas.md 3-4) ----

BASIC = """
pub @main:
    fallthrough
    i32 a0 = a0 + 666
    ret
"""


def test_basic_gas_metering(backend: str) -> None:
    inst = make(BASIC, backend)
    inst.set_reg(0, 0xFFFF0000)
    inst.gas = 3
    inst.next_program_counter = 0
    assert inst.run().kind is K.FINISHED
    assert inst.gas == 0 and inst.reg(7) == 666

    inst = make(BASIC, backend)
    inst.set_reg(0, 0xFFFF0000)
    inst.gas = 2
    inst.next_program_counter = 0
    intr = inst.run()
    assert intr.kind is K.NOT_ENOUGH_GAS and intr.pc == 1
    assert inst.gas == 1 and inst.reg(7) == 0
    assert inst.next_program_counter == 1
    assert inst.run().kind is K.NOT_ENOUGH_GAS and inst.gas == 1  # retried, same
    inst.gas = 2
    assert inst.run().kind is K.FINISHED and inst.gas == 0


FOUR = """
pub @main:
    a0 = 1
    a1 = 2
    a2 = 3
    ret
"""


def _pcs(src: str) -> list[int]:
    return [i.pc for i in assemble("%isa = latest64\n" + src).instructions(listing=False)]


def test_entry_mid_block_charges_the_whole_block(backend: str) -> None:
    pcs = _pcs(FOUR)
    inst = make(FOUR, backend)
    inst.set_reg(0, 0xFFFF0000)
    inst.gas = 10
    inst.next_program_counter = pcs[2]
    assert inst.run().kind is K.FINISHED
    assert inst.gas == 6 and inst.reg(7) == 0 and inst.reg(9) == 3

    inst = make(FOUR, backend)
    inst.gas = 3
    inst.next_program_counter = pcs[3]
    intr = inst.run()
    assert intr.kind is K.NOT_ENOUGH_GAS
    assert inst.gas == 3
    assert inst.program_counter is None and inst.next_program_counter == pcs[3]


@pytest.mark.parametrize("where", ["one", "end", "far"])
def test_entry_outside_any_instruction_traps_without_charge(backend: str, where: str) -> None:
    blob = assemble("%isa = latest64\n" + FOUR)
    pc = {"one": 1, "end": len(blob.code), "far": 1000}[where]
    inst = make(FOUR, backend)
    inst.gas = 10
    inst.next_program_counter = pc
    for _ in range(2):
        intr = inst.run()
        assert intr.kind is K.TRAP and intr.pc == pc
        assert inst.gas == 10 and inst.next_program_counter == pc


def test_ecalli_block_is_paid_once(backend: str) -> None:
    inst = make("pub @main:\n ecalli 7\n a0 = 1\n ret\n", backend)
    inst.set_reg(0, 0xFFFF0000)
    inst.gas = 10
    inst.next_program_counter = 0
    intr = inst.run()
    assert intr.kind is K.ECALLI and intr.hostcall == 7 and intr.pc == 0
    assert inst.gas == 7
    assert inst.run().kind is K.FINISHED and inst.gas == 7


def test_negative_gas_from_host_stops_the_next_run(backend: str) -> None:
    inst = make("pub @main:\n ecalli 1\n ret\n", backend)
    inst.set_reg(0, 0xFFFF0000)
    inst.gas = 3
    inst.next_program_counter = 0
    assert inst.run().kind is K.ECALLI and inst.gas == 1
    inst.gas = -1
    assert inst.run().kind is K.NOT_ENOUGH_GAS and inst.gas == -1


def test_unmetered_does_not_touch_gas(backend: str) -> None:
    inst = make(BASIC, backend, metered=False)
    inst.set_reg(0, 0xFFFF0000)
    inst.gas = 1
    inst.next_program_counter = 0
    assert inst.run().kind is K.FINISHED and inst.gas == 1


# ---- traps at the end of code (isa.md 6.3) ----

def test_trailing_fallthrough_traps_at_itself(backend: str) -> None:
    inst = make("pub @main:\n fallthrough\n", backend)
    inst.gas = 10000
    inst.next_program_counter = 0
    intr = inst.run()
    assert (intr.kind, intr.pc, inst.gas) == (K.TRAP, 0, 9999)

    inst = make("pub @main:\n a0 = 1\n fallthrough\n", backend)
    inst.gas = 10000
    inst.next_program_counter = 0
    intr = inst.run()
    assert (intr.kind, intr.pc, inst.gas) == (K.TRAP, 3, 9998)


def test_running_off_the_end_traps_at_the_end(backend: str) -> None:
    inst = make("pub @main:\n i32 a2 = a0 + a1\n", backend)
    inst.gas = 10000
    inst.next_program_counter = 0
    intr = inst.run()
    assert (intr.kind, intr.pc, inst.gas) == (K.TRAP, 3, 9998)


# ---- control flow (isa.md 6.2) ----

@pytest.mark.parametrize("taken", [True, False])
def test_branch_to_mid_block_traps_even_if_not_taken(backend: str, taken: bool) -> None:
    src = """
pub @main:
    jump @inner if a0 == 5
    a1 = 1
    a2 = 2
@inner: %no_fallthrough
    a3 = 3
    ret
"""
    inst = make(src, backend)
    inst.set_reg(7, 5 if taken else 6)
    inst.gas = 100
    inst.next_program_counter = 0
    intr = inst.run()
    assert intr.kind is K.TRAP and intr.pc == 0
    assert inst.gas == 99 and inst.reg(8) == 0


def test_load_imm_and_jump_to_mid_block_writes_then_traps(backend: str) -> None:
    src = """
pub @main:
    a0 = 77, jump @inner
    a1 = 1
@inner: %no_fallthrough
    a2 = 2
    ret
"""
    inst = make(src, backend)
    inst.gas = 100
    inst.next_program_counter = 0
    intr = inst.run()
    assert intr.kind is K.TRAP and intr.pc == 0 and inst.reg(7) == 77


def test_dynamic_jump_rules(backend: str) -> None:
    src = """
pub @main:
    jump [a0]
    trap
@target:
    a1 = 9
    ret
"""
    blob = assemble("%isa = latest64\n%jump_table = @target\n" + src)
    for address, kind in [(2, K.FINISHED), (0, K.TRAP), (3, K.TRAP), (4, K.TRAP),
                          (0xFFFF0000, K.FINISHED)]:
        inst = new_instance(NativeProgram(blob), backend)
        inst.set_reg(0, 0xFFFF0000)
        inst.set_reg(7, address)
        inst.gas = 100
        inst.next_program_counter = 0
        intr = inst.run()
        assert intr.kind is kind, address
        if address == 2:
            assert inst.reg(8) == 9
        if kind is K.TRAP:
            assert intr.pc == 0


# ---- memset (isa.md 5.9, gas.md 4.4) ----

MEMSET = "%rw_data_size = 4096\npub @main:\n memset\n ret\n"


def test_memset_fills_and_charges_per_byte(backend: str) -> None:
    inst = make(MEMSET, backend, isa="latest64")
    inst.set_reg(0, 0xFFFF0000)
    inst.regs = [0xFFFF0000, 0, 0, 0, 0, 0, 0, 0x20000, 0xAB, 3, 0, 0, 0]
    inst.gas = 100
    inst.next_program_counter = 0
    assert inst.run().kind is K.FINISHED
    assert inst.gas == 95 and inst.reg(7) == 0x20003 and inst.reg(9) == 0
    assert inst.read_memory(0x20000, 4) == b"\xab\xab\xab\x00"


def test_memset_out_of_gas_is_restartable(backend: str) -> None:
    inst = make(MEMSET, backend, isa="latest64")
    inst.regs = [0xFFFF0000, 0, 0, 0, 0, 0, 0, 0x20000, 0x11, 3, 0, 0, 0]
    inst.gas = 4
    inst.next_program_counter = 0
    intr = inst.run()
    assert intr.kind is K.NOT_ENOUGH_GAS and intr.pc == 0
    assert inst.gas == 0 and inst.reg(7) == 0x20002 and inst.reg(9) == 1
    assert inst.next_program_counter == 0
    inst.gas = 10
    assert inst.run().kind is K.FINISHED
    assert inst.read_memory(0x20000, 4) == b"\x11\x11\x11\x00" and inst.reg(9) == 0


def test_memset_into_read_only_memory_traps(backend: str) -> None:
    inst = make("%ro_data_size = 4096\n" + MEMSET, backend, isa="latest32")
    inst.regs = [0xFFFF0000, 0, 0, 0, 0, 0, 0, 0x10000, 1, 2, 0, 0, 0]
    inst.gas = 100
    inst.next_program_counter = 0
    intr = inst.run()
    assert intr.kind is K.TRAP and intr.pc == 0


# ---- sbrk (isa.md 5.10, execution.md 6) ----

@pytest.mark.parametrize("isa", ["latest32", "latest64"])
def test_sbrk(backend: str, isa: str) -> None:
    src = "%rw_data_size = 1\n%stack_size = 4096\npub @main:\n a0 = sbrk a1\n ret\n"

    def sbrk(inst: RawInstance, size: int) -> int:
        inst.set_reg(0, 0xFFFF0000)
        inst.set_reg(8, size)
        inst.gas = 100
        inst.next_program_counter = 0
        assert inst.run().kind is K.FINISHED
        return inst.reg(7)

    inst = make(src, backend, isa=isa)
    assert inst.memory_map.heap_base == 0x20001
    assert sbrk(inst, 0) == 0x20001
    assert sbrk(inst, 1) == 0x20002
    assert inst.is_memory_accessible(0x20FFF, 1, write=True)
    assert not inst.is_memory_accessible(0x21000, 1)
    assert sbrk(inst, 0x21000 - 0x20002) == 0x21000
    assert not inst.is_memory_accessible(0x21000, 1)
    assert sbrk(inst, 1) == 0x21001
    assert inst.is_memory_accessible(0x21FFF, 1, write=True)
    assert not inst.is_memory_accessible(0x22000, 1)
    assert sbrk(inst, 0xFFFFFFFF) == 0
    left = inst.memory_map.max_heap_size - inst.heap_size
    assert sbrk(inst, left + 1) == 0
    top = sbrk(inst, left)
    # the new top 0xFFFC0000, sign-extended from 32 bits on 64-bit instruction sets
    assert top == (0xFFFC0000 if isa == "latest32" else 0xFFFFFFFFFFFC0000)
    assert sbrk(inst, 1) == 0


def test_sbrk_64_bit_size_out_of_range_is_zero(backend: str) -> None:
    src = "%rw_data_size = 1\npub @main:\n a0 = sbrk a1\n ret\n"
    inst = make(src, backend, isa="latest64")
    inst.set_reg(0, 0xFFFF0000)
    inst.set_reg(8, 0x1_0000_0010)
    inst.gas = 100
    inst.next_program_counter = 0
    assert inst.run().kind is K.FINISHED
    assert inst.reg(7) == 0x20001  # treated as sbrk(0): the current top


# ---- memory (execution.md 3.3, 3.4) ----

@pytest.mark.parametrize("page", [0x1000, 0x4000])
def test_standard_memory_bounds(backend: str, page: int) -> None:
    src = "%rw_data_size = 1\npub @main:\n a1 = u8 [a0]\n u8 [a0] = 5\n ret\n"

    def access(addr: int) -> InterruptKind:
        inst = make(src, backend, isa="latest64", page_size=page)
        inst.set_reg(0, 0xFFFF0000)
        inst.set_reg(7, addr)
        inst.gas = 100
        inst.next_program_counter = 0
        return inst.run().kind

    rw = 0x20000
    assert access(rw + page - 1) is K.FINISHED
    assert access(rw + page) is K.TRAP
    for addr in (0, 0x1000, 0x3FFF, 0x4000, 0xFFFF, 0x7FFF0000, 0xFFFFF000, 0xFFFFFFFF):
        assert access(addr) is K.TRAP, hex(addr)


def test_store_to_read_only_data_traps(backend: str) -> None:
    inst = make("%ro_data_size = 16\n%ro_data = 01020304\npub @main:\n u8 [a0] = 7\n ret\n",
                backend)
    inst.set_reg(7, 0x10000)
    inst.gas = 100
    inst.next_program_counter = 0
    intr = inst.run()
    assert intr.kind is K.TRAP and intr.pc == 0
    assert inst.read_memory(0x10000, 4) == b"\x01\x02\x03\x04"


@pytest.mark.parametrize("addr", [0, 0x1000, 0x3FFF])
def test_dynamic_paging_low_addresses_trap(backend: str, addr: int) -> None:
    inst = make("pub @main:\n a1 = u32 [a0]\n ret\n", backend, dynamic=True)
    inst.set_reg(7, addr)
    inst.gas = 100
    inst.next_program_counter = 0
    assert inst.run().kind is K.TRAP


@pytest.mark.parametrize(("addr", "page"), [(0x4000, 0x4000), (0x7FFF, 0x7000),
                                            (0x10000, 0x10000), (0xFFFFF000, 0xFFFFF000),
                                            (0x20FFE, 0x21000)])
def test_dynamic_paging_faults_and_resumes(backend: str, addr: int, page: int) -> None:
    inst = make("pub @main:\n a1 = u32 [a0]\n ret\n", backend, dynamic=True)
    if addr == 0x20FFE:
        inst.map_memory(0x20000, 0x1000)  # the first page is mapped, the second is not
    inst.set_reg(0, 0xFFFF0000)
    inst.set_reg(7, addr)
    inst.gas = 100
    inst.next_program_counter = 0
    intr = inst.run()
    assert intr.kind is K.SEGFAULT and intr.fault_address == page and intr.pc == 0
    assert inst.gas == 98
    if page >= 0x10000:
        inst.map_memory(page, 0x1000)
        inst.write_memory(addr, b"\x01\x02\x03\x04"[: min(4, page + 0x1000 - addr)])
        assert inst.run().kind is K.FINISHED
        assert inst.gas == 98  # the retried access is not charged again


def test_dynamic_paging_write_protected(backend: str) -> None:
    inst = make("pub @main:\n u32 [a0] = 1\n ret\n", backend, dynamic=True)
    inst.map_memory(0x30000, 0x1000, writable=False)
    inst.set_reg(7, 0x30000)
    inst.gas = 100
    inst.next_program_counter = 0
    intr = inst.run()
    assert intr.kind is K.SEGFAULT and intr.fault_address == 0x30000
    assert intr.fault_is_write_protected


def test_wrapping_access_at_the_top(backend: str) -> None:
    inst = make("pub @main:\n a1 = u32 [a0]\n ret\n", backend, dynamic=True)
    inst.set_reg(7, 0xFFFFFFFE)
    inst.gas = 100
    inst.next_program_counter = 0
    intr = inst.run()
    assert intr.kind is K.SEGFAULT and intr.fault_address == 0xFFFFF000
    inst.map_memory(0xFFFFF000, 0x1000)
    assert inst.run().kind is K.TRAP


# ---- registers (isa.md 1, execution.md 4) ----

def test_latest32_register_view(backend: str) -> None:
    inst = make("pub @main:\n ret\n", backend, isa="latest32")
    inst.set_reg(7, 0x1122334455667788)
    assert inst.reg(7) == 0x55667788
    inst.set_reg(7, 0xFFFFFFFF)
    assert inst.reg(7) == 0xFFFFFFFF


def run_one(backend: str, isa: str, src: str, a0: int, a1: int) -> int:
    """Runs one instruction with a0, a1 set; returns a2."""
    inst = make(f"pub @main:\n {src}\n ret\n", backend, isa=isa)
    inst.set_reg(0, 0xFFFF0000)
    inst.set_reg(7, a0)
    inst.set_reg(8, a1)
    inst.gas = 100
    inst.next_program_counter = 0
    assert inst.run().kind is K.FINISHED
    return inst.reg(9)


@pytest.mark.parametrize(("src", "a0", "a1", "expect"), [
    ("a2 = a0 mulh a1", 0xFFFFFFFE, 3, 0xFFFFFFFF),        # -2 * 3 = -6: high word -1
    ("a2 = a0 mulhu a1", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFE),
    ("a2 = a0 mulhsu a1", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),  # -1 * (2^32-1)
    ("a2 = reverse a0", 0x11223344, 0, 0x44332211),
    ("i32 a2 = a0 + a1", 0x7FFFFFFF, 1, 0x80000000),
    ("i32 a2 = a0 /s a1", 0x80000000, 0xFFFFFFFF, 0x80000000),
    ("i32 a2 = a0 %s a1", 0x80000000, 0xFFFFFFFF, 0),
    ("i32 a2 = a0 /u a1", 5, 0, 0xFFFFFFFF),
    ("a2 = a0 <u a1", 0x80000000, 1, 0),
    ("a2 = a0 <s a1", 0x80000000, 1, 1),
])
def test_latest32_semantics(backend: str, src: str, a0: int, a1: int, expect: int) -> None:
    assert run_one(backend, "latest32", src, a0, a1) == expect


@pytest.mark.parametrize(("src", "a0", "a1", "expect"), [
    ("a2 = a0 mulh a1", 2**64 - 1, 2**64 - 1, 0),
    ("a2 = a0 mulhu a1", 2**64 - 1, 2**64 - 1, 2**64 - 2),
    ("a2 = a0 mulhsu a1", 2**64 - 1, 2**64 - 1, 2**64 - 1),
    ("a2 = a0 /s a1", 2**63, 2**64 - 1, 2**63),
    ("a2 = a0 %s a1", 2**63, 2**64 - 1, 0),
    ("a2 = a0 %u a1", 12345, 0, 12345),
    ("a2 = a0 /u a1", 12345, 0, 2**64 - 1),
    ("a2 = a0 /s a1", 2**64 - 7, 2, 2**64 - 3),
    ("a2 = a0 %s a1", 2**64 - 7, 2, 2**64 - 1),
    ("a2 = a0 >>a a1", 2**63, 65, 0xC000000000000000),
    ("a2 = a0 <<r a1", 0x8000000000000001, 1, 3),
    ("a2 = a0 >>r a1", 3, 1, 0x8000000000000001),
    ("a2 = clz a0", 0xFFFF0000, 0, 32),
    ("a2 = ctz a0", 0xFFFF0000, 0, 16),
    ("a2 = ctz a0", 0, 0, 64),
    ("i32 a2 = clz a0", 0, 0, 32),
    ("a2 = cpop a0", 2**64 - 1, 0, 64),
    ("a2 = sext8 a0", 0x80, 0, 2**64 - 128),
    ("a2 = zext16 a0", 0x12345678, 0, 0x5678),
    ("a2 = reverse a0", 0x0102030405060708, 0, 0x0807060504030201),
    ("a2 = maxs(a0, a1)", 2**64 - 1, 1, 1),
    ("a2 = maxu(a0, a1)", 2**64 - 1, 1, 2**64 - 1),
    ("a2 = mins(a0, a1)", 2**64 - 1, 1, 2**64 - 1),
    ("a2 = minu(a0, a1)", 2**64 - 1, 1, 1),
    ("a2 = a0 & ~a1", 0xFF, 0x0F, 0xF0),
    ("a2 = ~(a0 ^ a1)", 0, 0, 2**64 - 1),
    ("a2 = a0 unless a1 == 0", 5, 1, 5),
    ("i32 a2 = a0 << a1", 1, 33, 2),
    ("i32 a2 = a0 >> a1", 0x80000000, 31, 1),
])
def test_64_bit_semantics(backend: str, src: str, a0: int, a1: int, expect: int) -> None:
    assert run_one(backend, "latest64", src, a0, a1) == expect


def test_trap_preserves_registers(backend: str) -> None:
    inst = make("pub @main:\n a1 = u64 [a0]\n ret\n", backend)
    regs = [i * 0x1111 + 0x10 for i in range(13)]
    regs[7] = 0x8000  # unmapped in standard memory
    inst.regs = regs
    inst.gas = 100
    inst.next_program_counter = 0
    assert inst.run().kind is K.TRAP
    assert inst.regs == regs


def test_run_without_pc_is_an_error(backend: str) -> None:
    from executor.errors import ExecutionError

    inst = make("pub @main:\n ret\n", backend)
    with pytest.raises(ExecutionError, match="next program counter is not set"):
        inst.run()


# ---- step tracing (execution.md 7; interpreter) ----

def test_step_tracing_reports_each_instruction_then_out_of_gas() -> None:
    blob = assemble("%isa = latest64\n" + FOUR)
    inst = RawInstance(NativeProgram(blob), step_tracing=True)
    inst.set_reg(0, 0xFFFF0000)
    inst.gas = 3
    inst.next_program_counter = 0
    intr = inst.run()
    assert intr.kind is K.STEP and intr.pc == 0
    assert inst.gas == 3  # the block is charged after the first Step
    assert inst.run().kind is K.NOT_ENOUGH_GAS and inst.gas == 3

    inst = RawInstance(NativeProgram(blob), step_tracing=True)
    inst.set_reg(0, 0xFFFF0000)
    inst.gas = 10
    inst.next_program_counter = 0
    seen = []
    while (intr := inst.run()).kind is K.STEP:
        seen.append(intr.pc)
    assert intr.kind is K.FINISHED
    assert seen == [i.pc for i in blob.instructions(listing=False)]
    assert inst.gas == 6


def test_step_tracing_is_refused_by_the_jit() -> None:
    from executor.errors import ModuleError

    if "jit" not in BACKENDS:
        pytest.skip("no JIT")
    blob = assemble("%isa = latest64\n" + FOUR)
    with pytest.raises(ModuleError, match="interpreter"):
        RawInstance(NativeProgram(blob), backend="jit", step_tracing=True)
