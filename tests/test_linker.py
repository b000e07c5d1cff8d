"""Linker, InstancePre and host functions (plain, typed, raw) on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from executor import Caller, GuestFault, HostError, Linker, MissingImport, OutOfGas, Trap
from executor.backends import available_backends
from executor.engine import Module
from tests.guests import ISAS, RO_DATA, module, trampolines

pytestmark = pytest.mark.asan  # also run on the ASan/UBSan build (make test-asan)

MASK = {"latest64": (1 << 64) - 1, "latest32": (1 << 32) - 1}


@pytest.fixture(params=available_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=ISAS)
def isa(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def tramp(backend: str, isa: str = "latest64", imports: tuple[str, ...] = ("host0",),
          **kw: Any) -> Module:
    return module(trampolines(isa, imports), backend, **kw)


# ---- definitions ----

def test_define_forms() -> None:
    linker = Linker()

    @linker.define("a")
    def a(caller: Caller, x: int) -> int:
        return x

    assert a.__name__ == "a"  # the decorator returns the function
    linker.define("b", lambda caller: 1)
    linker.define_typed("c", lambda caller, v: None, args=["u32"])
    linker.define_raw("d", lambda caller: None)

    @linker.define_raw("e")
    def e(caller: Caller) -> None:
        return None

    assert linker.names == ["a", "b", "c", "d", "e"]
    assert "a" in linker and b"b" in linker and "z" not in linker


@pytest.mark.parametrize(("fn", "kw", "match"), [
    (lambda: 1, {}, "Caller"),
    (lambda caller, *rest: 1, {}, r"\*args"),
    (lambda caller, a, b, c, d, e, f, g, h, i, j: 1, {}, "at most 9"),
    (lambda caller, a: 1, {"args": ["u32", "u32"]}, "2 types"),
    (lambda caller, a: 1, {"args": ["NoSuchType<u8>"]}, "unknown SCALE type"),
    (lambda caller, a: 1, {"args": ["u32"], "result": "Nope"}, "unknown SCALE type"),
    (lambda caller, *a: 1, {"args": ["bytes"] * 5}, "needs 10 argument registers"),
    (lambda caller, *a: 1, {"args": ["u64"] * 5}, "32-bit code"),
])
def test_define_rejects_bad_definitions(fn: Any, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Linker().define("f", fn, **kw)


def test_define_twice_is_an_error() -> None:
    linker = Linker()
    linker.define("f", lambda caller: 1)
    with pytest.raises(ValueError, match="already defined"):
        linker.define("f", lambda caller: 2)


# ---- resolution ----

def test_missing_import_fails_at_link_time(backend: str) -> None:
    m = tramp(backend, imports=("host0", "not_defined"))
    linker = Linker()
    linker.define("host0", lambda caller: 1)
    with pytest.raises(MissingImport) as e:
        linker.instantiate_pre(m)
    assert e.value.symbol == "not_defined"
    assert "not_defined" in str(e.value)
    with pytest.raises(MissingImport):
        linker.instantiate(m)


@pytest.mark.parametrize("flag", ["allow_missing", "lazy_missing"])
def test_allowed_missing_import_traps_when_called(backend: str, flag: str) -> None:
    m = tramp(backend, imports=("host0", "not_defined"))
    linker = Linker(**{flag: True})
    linker.define("host0", lambda caller: 5)
    inst = linker.instantiate(m)
    assert inst.call("h0") == 5
    with pytest.raises(Trap) as e:
        inst.call("h1")
    assert e.value.pc == m.exports["h1"] and e.value.function == "h1"
    assert "not_defined" in str(e.value)
    assert isinstance(e.value.__cause__, GuestFault)
    assert inst.call("h0") == 5


def test_fallback_gets_unresolved_and_out_of_table_calls(backend: str) -> None:
    m = tramp(backend, imports=("host0", "unknown"))
    linker = Linker()
    seen: list[tuple[int, str | None]] = []

    @linker.define_fallback
    def fallback(caller: Caller, index: int) -> None:
        seen.append((index, caller.symbol))
        caller.set_reg(7, 1000 + index)

    linker.define("host0", lambda caller: 1)
    inst = linker.instantiate(m)
    assert inst.call("h1") == 1001
    assert inst.call("outside") == 1077
    assert seen == [(1, "unknown"), (77, None)]


def test_ecalli_outside_the_import_table_traps(backend: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller: 1)
    inst = linker.instantiate(tramp(backend))
    with pytest.raises(Trap, match="ecalli 77") as e:
        inst.call("outside")
    assert e.value.pc == inst.module.exports["outside"]


def test_instance_pre_resolves_once_and_is_reusable(backend: str) -> None:
    m = tramp(backend)
    linker = Linker()
    calls: list[int] = []
    linker.define("host0", lambda caller, x: calls.append(x))
    pre = linker.instantiate_pre(m)
    a, b = pre.instantiate(), pre.instantiate()
    assert a._handlers is b._handlers is pre.handlers
    assert pre.names == ("host0",)
    a.call("h0", 1)
    b.call("h0", 2)
    assert calls == [1, 2]
    linker.define("later", lambda caller: 0)  # later definitions do not affect pre
    assert len(pre.handlers) == 1


# ---- plain host functions ----

def test_plain_arguments_and_results(backend: str, isa: str) -> None:
    linker = Linker()
    got: list[tuple[int, ...]] = []

    @linker.define("host0")
    def host(caller: Caller, a: int, b: int, c: int, d: int, e: int, f: int, g: int) -> int:
        got.append((a, b, c, d, e, f, g))
        return a + g

    inst = linker.instantiate(tramp(backend, isa))
    assert inst.call("h0", 1, 2, 3, 4, 5, 6, 7) == 8
    assert got == [(1, 2, 3, 4, 5, 6, 7)]
    assert inst.call("h0", MASK[isa], 0, 0, 0, 0, 0, 0) == MASK[isa]  # -1 as unsigned


@pytest.mark.parametrize(("ret", "expected"), [(None, 9), (0, 0), (-1, "mask"), (True, 1)])
def test_plain_result_forms(backend: str, isa: str, ret: Any, expected: Any) -> None:
    linker = Linker()
    linker.define("host0", lambda caller: ret)
    inst = linker.instantiate(tramp(backend, isa))
    assert inst.call("h0", 9) == (MASK[isa] if expected == "mask" else expected)


@pytest.mark.parametrize("ret", [1 << 64, -(1 << 63) - 1, "7", 1.5])
def test_plain_result_that_does_not_fit_is_a_host_error(backend: str, ret: Any) -> None:
    linker = Linker()
    linker.define("host0", lambda caller: ret)
    inst = linker.instantiate(tramp(backend))
    with pytest.raises(HostError) as e:
        inst.call("h0")
    assert isinstance(e.value.__cause__, TypeError | ValueError)


def test_plain_result_wider_than_32_bits_needs_a_type(backend: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller: 1 << 32)
    inst = linker.instantiate(tramp(backend, "latest32"))
    with pytest.raises(HostError, match="u64"):
        inst.call("h0")


def test_typed_u64_on_32_bit_code_uses_register_pairs(backend: str, isa: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller, x, y: x * 3 + y, args=["u64", "i32"], result="u64")
    inst = linker.instantiate(tramp(backend, isa))
    f = inst.typed_func("h0", ["u64", "i32"], "u64")
    assert f(0x1_0000_0001, -1) == 0x3_0000_0002
    assert f(0, 5) == 5


@pytest.mark.parametrize(("ty", "reg", "value"), [
    ("u8", 0x1FF, 0xFF), ("i8", 0xFF, -1), ("u16", 0x12345, 0x2345), ("i16", 0x8000, -32768),
    ("u32", (1 << 64) - 4, 0xFFFFFFFC), ("i32", 0xFFFFFFFF, -1), ("i64", (1 << 64) - 2, -2),
])
def test_typed_integer_arguments(backend: str, ty: str, reg: int, value: int) -> None:
    linker = Linker()
    got: list[int] = []
    linker.define("host0", lambda caller, v: got.append(v), args=[ty])
    linker.instantiate(tramp(backend)).call("h0", reg)
    assert got == [value]


@pytest.mark.parametrize(("ty", "ret", "a0"), [
    ("i32", -1, (1 << 64) - 1), ("u32", 7, 7), ("i64", -2, (1 << 64) - 2), ("()", 5, 9),
])
def test_typed_integer_results(backend: str, ty: str, ret: int, a0: int) -> None:
    linker = Linker()
    linker.define("host0", lambda caller: ret, args=[], result=ty)
    assert linker.instantiate(tramp(backend)).call("h0", 9) == a0


def test_typed_result_out_of_range_is_a_host_error(backend: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller: 256, args=[], result="u8")
    with pytest.raises(HostError, match="does not fit u8"):
        linker.instantiate(tramp(backend)).call("h0")


def test_raw_host_function_drives_registers(backend: str, isa: str) -> None:
    linker = Linker()

    @linker.define_raw("host0")
    def swap(caller: Caller) -> None:
        a, b = caller.reg(7), caller.reg(8)
        caller.set_reg(7, b)
        caller.set_reg(8, a)
        assert caller.regs[9] == 3 and caller.is_64_bit == (isa == "latest64")
        assert caller.hostcall == 0 and caller.symbol == "host0"

    inst = linker.instantiate(tramp(backend, isa))
    assert inst.call("h0", 1, 2, 3) == 2
    assert inst.reg(8) == 1


def test_caller_register_index_is_checked(backend: str) -> None:
    linker = Linker()
    linker.define_raw("host0", lambda caller: caller.reg(13))
    with pytest.raises(HostError) as e:
        linker.instantiate(tramp(backend)).call("h0")
    assert isinstance(e.value.__cause__, IndexError)


# ---- failures ----

def test_host_error_chains_the_exception(backend: str) -> None:
    linker = Linker()
    boom = ValueError("boom")

    @linker.define("host0")
    def fails(caller: Caller) -> None:
        raise boom

    inst = linker.instantiate(tramp(backend))
    with pytest.raises(HostError) as e:
        inst.call("h0")
    assert e.value.__cause__ is boom
    assert (e.value.symbol, e.value.function, e.value.pc) == ("host0", "h0", 0)
    assert "boom" in str(e.value) and "ValueError" in str(e.value)


def test_guest_fault_raised_by_the_host_becomes_a_trap(backend: str) -> None:
    linker = Linker()

    @linker.define("host0")
    def refuse(caller: Caller) -> None:
        raise GuestFault("flags are invalid")

    inst = linker.instantiate(tramp(backend))
    with pytest.raises(Trap, match="flags are invalid") as e:
        inst.call("h0")
    assert e.value.pc == 0 and e.value.function == "h0"


@pytest.mark.parametrize(("what", "ptr"), [
    ("read", 0), ("read", 0xFFFFFFF0), ("read", "rw_end"), ("write", 0x10000), ("write", 0),
    ("write", 0x10FFE),
])
def test_bad_guest_pointers_trap_cleanly(backend: str, isa: str, what: str, ptr: Any) -> None:
    m = tramp(backend, isa)
    if ptr == "rw_end":
        ptr = m.memory_map.rw_data_address + m.memory_map.rw_data_size - 2
    linker = Linker()

    @linker.define("host0")
    def touch(caller: Caller, p: int) -> int:
        if what == "read":
            caller.read_memory(p, 4)
        else:
            caller.write_memory(p, b"1234")
        return 0

    inst = linker.instantiate(m)
    with pytest.raises(Trap, match="bad guest pointer") as e:
        inst.call("h0", ptr)
    assert isinstance(e.value.__cause__, GuestFault)
    assert e.value.__cause__.address == ptr and e.value.__cause__.length == 4
    rw = m.memory_map.rw_data_address
    assert inst.call("h0", rw) == 0  # the instance still works


def test_caller_memory_helpers(backend: str, isa: str) -> None:
    m = tramp(backend, isa)
    rw = m.memory_map.rw_data_address
    linker = Linker()

    @linker.define("host0")
    def mem(caller: Caller, p: int) -> int:
        caller.write_u8(p, 0x1FF)
        caller.write_u16(p + 1, 0xBEEF)
        caller.write_u32(p + 3, 0xDEADBEEF)
        caller.write_u64(p + 7, -1)
        assert caller.read_u8(p) == 0xFF and caller.read_u16(p + 1) == 0xBEEF
        assert caller.read_u32(p + 3) == 0xDEADBEEF and caller.read_u64(p + 7) == (1 << 64) - 1
        assert bytes(caller.memory_view(p, 3)) == b"\xff\xef\xbe"
        assert caller.read_memory(p, 0) == b"" and caller.is_memory_accessible(p, 15)
        caller.write_memory(p, b"")
        return caller.read_u8(p)

    inst = linker.instantiate(m)
    assert inst.call("h0", rw) == 0xFF
    assert inst.read_memory(rw + 7, 8) == b"\xff" * 8


def test_caller_reads_read_only_data(backend: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller, p: caller.read_u64(p), args=["u32"], result="u64")
    inst = linker.instantiate(tramp(backend))
    assert inst.call("h0", 0x10000) == int.from_bytes(RO_DATA, "little")


def test_charge_consumes_gas(backend: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller, n: int(caller.charge(n)))
    inst = linker.instantiate(tramp(backend))
    assert inst.call("h0", 100, gas=1000) == 1
    assert inst.gas_used == 102  # ecalli + ret = 2, plus the charge
    negative = Linker()
    negative.define("host0", lambda caller: caller.charge(-1))
    with pytest.raises(HostError) as e:
        negative.instantiate(tramp(backend)).call("h0")
    assert isinstance(e.value.__cause__, ValueError)


def test_charge_below_zero_fails_the_call_with_out_of_gas(backend: str) -> None:
    linker = Linker()
    results: list[bool] = []
    linker.define("host0", lambda caller: results.append(caller.charge(1000)))
    inst = linker.instantiate(tramp(backend))
    with pytest.raises(OutOfGas) as e:
        inst.call("h0", gas=500)
    assert results == [False]  # the host function ran to its end
    assert e.value.gas == 500 - 2 - 1000 and inst.gas == e.value.gas


def test_charge_and_gas_without_metering(backend: str) -> None:
    linker = Linker()

    @linker.define("host0")
    def host(caller: Caller) -> int:
        caller.gas = 5
        return int(caller.charge(10**9)) + caller.gas

    inst = linker.instantiate(tramp(backend, gas_metering=False))
    assert inst.call("h0") == 1


def test_caller_gas_can_be_set(backend: str) -> None:
    linker = Linker()

    @linker.define("host0")
    def host(caller: Caller) -> int:
        left = caller.gas
        caller.gas = left + 50
        return left

    inst = linker.instantiate(tramp(backend))
    assert inst.call("h0", gas=100) == 98
    assert inst.gas == 148 and inst.gas_used == -48


def test_loop_of_host_calls(backend: str, isa: str) -> None:
    linker = Linker()
    count = [0]

    @linker.define("host0")
    def tick(caller: Caller) -> None:
        count[0] += 1

    inst = linker.instantiate(tramp(backend, isa))
    assert inst.call("loop", 1000) == 1000
    assert count == [1000]
