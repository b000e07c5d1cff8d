"""The embedding API (Config, Engine, Module, Instance) on every available backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from executor import (
    BlobError,
    Caller,
    Config,
    Engine,
    ExecutionError,
    HostError,
    Linker,
    Module,
    ModuleError,
    OutOfGas,
    Trap,
)
from executor.backends import available_backends
from executor.blob import ProgramBlob
from executor.gas import CostModel
from executor.instance import DEFAULT_GAS
from executor.raw import RawInstance
from tests.conftest import BLOBS
from tests.guests import ISAS, module, trampolines
from tests.method_ops import MethodDrivenInstance

pytestmark = pytest.mark.asan  # also run on the ASan/UBSan build (make test-asan)

HELLO = BLOBS / "example-hello-world.polkavm"
ADD = BLOBS / "c-guests" / "add.polkavm"
BENCH = BLOBS / "c-guests" / "bench.polkavm"


@pytest.fixture(params=available_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def hello_linker(value: int = 100) -> Linker:
    linker = Linker()
    linker.define("get_third_number", lambda caller: value)
    return linker


# ---- Config and Engine ----

def test_config_defaults() -> None:
    c = Config()
    assert (c.backend, c.sandbox, c.page_size, c.dynamic_paging, c.strict) == (
        "interpreter", "auto", 0x1000, False, False)
    assert c.metered and c.cost_model is None and c.worker_count >= 1


@pytest.mark.parametrize(("value", "metered"), [(True, True), ("sync", True), (False, False),
                                                ("none", False)])
def test_config_gas_metering_forms(value: Any, metered: bool) -> None:
    assert Config(gas_metering=value).metered is metered


@pytest.mark.parametrize("kwargs", [
    {"sandbox": "generic"}, {"gas_metering": "async"}, {"gas_metering": "sometimes"},
    {"page_size": 0x800}, {"page_size": 0x20000}, {"page_size": 0x3000},
    {"worker_count": 0}, {"aux_data_size": -1}, {"backend": ""}, {"cost_model": "naive"},
])
def test_config_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ModuleError):
        Config(**kwargs)


def test_config_accepts_linux_sandbox_and_copies() -> None:
    c = Config(sandbox="linux")
    assert c.sandbox == "linux"
    assert c.with_(page_size=0x4000).page_size == 0x4000
    with pytest.raises(ModuleError):
        c.with_(page_size=3)


def test_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVM_GAS_METERING", "none")
    monkeypatch.setenv("PVM_SANDBOX", "linux")
    c = Config.from_env(page_size=0x4000)
    assert (c.metered, c.sandbox, c.page_size) == (False, "linux", 0x4000)


def test_engine_rejects_unknown_backend() -> None:
    with pytest.raises(ModuleError, match="not available"):
        Engine(Config(backend="quantum"))


# ---- Module ----

def test_module_from_path_bytes_and_blob(backend: str) -> None:
    engine = Engine(Config(backend=backend))
    for source in (HELLO, str(HELLO), HELLO.read_bytes(), ProgramBlob.load(HELLO)):
        m = Module(engine, source)
        assert m.exports == {"add_numbers": 0}
        assert m.imports == ("get_third_number",)
        assert m.is_64_bit is False
        assert m.memory_map.stack_address_high == 0xFFFE0000
        assert m.backend == backend


def test_module_facts_of_a_64_bit_blob(backend: str) -> None:
    m = Module(Engine(Config(backend=backend)), BENCH)
    assert m.is_64_bit
    assert m.exports == {"prime_sieve": 0, "sha256_loop": 148, "noop": 655}
    assert m.imports == ()
    assert m.memory_map.rw_data_size == 1000001 + (-1000001 % 0x1000)


def test_module_page_size_override() -> None:
    m = Module(Engine(), HELLO, page_size=0x4000)
    assert m.memory_map.page_size == 0x4000
    with pytest.raises(ModuleError, match="page size"):
        Module(Engine(), HELLO, page_size=0x1001)


def test_module_rejects_garbage() -> None:
    with pytest.raises(BlobError):
        Module(Engine(), b"not a blob")
    with pytest.raises(TypeError):
        Module(Engine(), 42)  # type: ignore[arg-type]


def test_module_is_reusable_and_instances_are_independent(backend: str) -> None:
    m = module(trampolines(), backend)
    linker = Linker()
    linker.define("host0", lambda c, x: x)
    a, b = linker.instantiate(m), linker.instantiate(m)
    rw = m.memory_map.rw_data_address
    a.write_memory(rw, b"AAAA")
    b.write_memory(rw, b"BBBB")
    assert a.read_memory(rw, 4) == b"AAAA" and b.read_memory(rw, 4) == b"BBBB"
    assert a.call("h0", 7) == 7 and b.call("h0", 9) == 9


# ---- calls ----

def test_hello_world_through_the_api(backend: str) -> None:
    m = Module(Engine(Config(backend=backend)), HELLO)
    inst = hello_linker().instantiate(m)
    assert inst.call("add_numbers", 1, 10) == 111
    assert inst.gas_used == 10
    assert inst.gas == DEFAULT_GAS - 10
    assert inst.call("add_numbers", 20, 22, gas=100) == 142
    assert (inst.gas, inst.gas_used) == (90, 10)


def test_hello_world_without_metering(backend: str) -> None:
    m = Module(Engine(Config(backend=backend, gas_metering="none")), HELLO)
    inst = hello_linker(3).instantiate(m)
    assert inst.call("add_numbers", 20, 22) == 45
    assert (inst.gas, inst.gas_used, inst.gas_metering) == (0, 0, False)


def test_call_by_pc_and_repeated_calls(backend: str) -> None:
    inst = hello_linker().instantiate(Module(Engine(Config(backend=backend)), HELLO))
    for k in range(50):
        assert inst.call(0, k, 1) == k + 101


@pytest.mark.parametrize(("a", "b", "result"), [(1, 2, 103), ((1 << 64) - 1, 1, 100)])
def test_c_guest_add(backend: str, a: int, b: int, result: int) -> None:
    m = Module(Engine(Config(backend=backend)), ADD)
    inst = hello_linker().instantiate(m)
    assert inst.call("add", a, b) == result
    assert inst.gas_used == 10


def test_c_guest_noop_without_imports(backend: str) -> None:
    inst = Module(Engine(Config(backend=backend)), BENCH).instantiate()
    assert inst.call("noop") == 42
    assert inst.gas_used == 2
    assert inst.call("sha256_loop", 1) == 4237927135
    assert inst.gas_used == 4069


def test_gas_counter_persists_between_calls(backend: str) -> None:
    inst = Module(Engine(Config(backend=backend)), BENCH).instantiate(gas=5)
    assert inst.gas == 5
    assert inst.call("noop") == 42 and inst.gas == 3
    assert inst.call("noop") == 42 and inst.gas == 1
    with pytest.raises(OutOfGas) as e:
        inst.call("noop")
    assert e.value.gas == 1 and e.value.pc == 655
    assert inst.gas_used == 0
    inst.gas = 1000
    assert inst.call("noop") == 42 and inst.gas_used == 2


def test_out_of_gas_is_typed(backend: str) -> None:
    inst = Linker(allow_missing=True).instantiate(module(trampolines(), backend))
    with pytest.raises(OutOfGas) as e:
        inst.call("spin", gas=1000)
    assert 0 <= e.value.gas < 1000 and e.value.pc == inst.module.exports["spin"]
    assert inst.gas == e.value.gas
    assert inst.gas_used == 1000 - e.value.gas


def test_trap_is_typed_with_pc_and_function(backend: str) -> None:
    inst = Linker(allow_missing=True).instantiate(module(trampolines(), backend))
    with pytest.raises(Trap) as e:
        inst.call("bad")
    assert e.value.pc == inst.module.exports["bad"]
    assert e.value.function == "bad"
    assert "bad" in str(e.value)


def test_unknown_export_and_bad_arguments(backend: str) -> None:
    inst = hello_linker().instantiate(Module(Engine(Config(backend=backend)), HELLO))
    with pytest.raises(ExecutionError, match="no export named 'nope'"):
        inst.call("nope")
    with pytest.raises(ExecutionError, match="too many"):
        inst.call("add_numbers", *range(10))
    with pytest.raises(ExecutionError, match="u64"):
        inst.call("add_numbers", 1 << 32, 1)  # 32-bit code: needs typed_func
    with pytest.raises(TypeError):
        inst.call("add_numbers", "1", 2)  # type: ignore[arg-type]
    assert inst.call("add_numbers", -1, 0) == 99  # two's complement of -1, plus 100


@pytest.mark.parametrize("isa", ISAS)
def test_typed_export_u64_pairs(backend: str, isa: str) -> None:
    inst = Linker(allow_missing=True).instantiate(module(trampolines(isa), backend))
    add64 = inst.typed_func("add64", ["u64", "u64"], "u64")
    assert add64(0xFFFFFFFF, 1) == 1 << 32
    assert add64(0x1_2345_6789, 0x10_0000_0001) == 0x11_2345_678A
    assert add64((1 << 64) - 1, 2) == 1
    assert inst.typed_func("add64", ["u64", "u64"], "u64") is add64
    neg = inst.typed_func("add64", ["i64", "i64"], "i64")
    assert neg(-5, 3) == -2
    with pytest.raises(ExecutionError, match="does not fit u64"):
        add64(-1, 0)
    with pytest.raises(ExecutionError, match="takes 2 arguments"):
        add64(1)
    with pytest.raises(ValueError):
        inst.typed_func("add64", ["Vec<u8>"])


def test_typed_export_signed_result(backend: str) -> None:
    inst = hello_linker(-200).instantiate(Module(Engine(Config(backend=backend)), HELLO))
    f = inst.typed_func("add_numbers", ["i32", "u32"], "i32")
    assert f(-5, 3) == -202
    assert f(-5, 3, gas=50) == -202 and inst.gas == 40


def test_dynamic_paging_maps_pages_on_demand(backend: str) -> None:
    engine = Engine(Config(backend=backend, dynamic_paging=True))
    if backend != "interpreter":
        # the JIT may not support dynamic paging on this kernel
        try:
            Module(engine, BENCH).instantiate()
        except Exception as exc:  # pragma: no cover - depends on the machine
            pytest.skip(f"dynamic paging unavailable on {backend}: {exc}")
    inst = Module(engine, BENCH).instantiate()
    assert inst.call("sha256_loop", 1) == 4237927135
    assert inst.gas_used == 4069
    hello = hello_linker().instantiate(Module(engine, HELLO))
    assert hello.call("add_numbers", 1, 10) == 111


def test_step_tracing_reports_every_instruction() -> None:
    m = Module(Engine(Config(step_tracing=True)), HELLO)
    inst = hello_linker().instantiate(m)
    pcs: list[int] = []
    inst.on_step = lambda i, pc: pcs.append(pc)
    assert inst.call("add_numbers", 1, 10) == 111
    assert pcs == [0, 3, 6, 8, 11, 12, 15, 18, 20, 23]
    assert inst.gas_used == 10


def test_state_after_a_call(backend: str) -> None:
    m = module(trampolines(), backend)
    linker = Linker()
    linker.define("host0", lambda c, a, b, x: a * 1000 + b * 10 + x)
    inst = linker.instantiate(m)
    assert inst.call("h0", 3, 4, 5) == 3045
    assert inst.reg(8) == 4 and inst.regs[9] == 5
    inst.set_reg(7, -1)
    assert inst.reg(7) == (1 << 64) - 1
    rw = inst.memory_map.rw_data_address
    assert inst.is_memory_accessible(rw, 4096, write=True)
    inst.write_memory(rw, b"xyz")
    assert bytes(inst.memory_view(rw, 3)) == b"xyz"
    inst.reset_memory()
    assert inst.read_memory(rw, 3) == b"\0\0\0"
    assert inst.sbrk(0) == inst.memory_map.heap_base and inst.heap_size == 0


def test_program_counter_after_finish_and_trap(backend: str) -> None:
    inst = Module(Engine(Config(backend=backend)), BENCH).instantiate()
    assert inst.call("noop") == 42
    assert inst.program_counter is None and inst.raw.program_counter is None
    with pytest.raises(OutOfGas):
        inst.call("sha256_loop", 1, gas=20)
    assert inst.program_counter is not None


def test_re_entrant_call_is_refused(backend: str) -> None:
    linker = Linker()

    @linker.define("get_third_number")
    def nested(caller: Caller) -> int:
        if caller.user_data:
            return caller.instance.call("add_numbers", 1, 2)
        return 100

    inst = linker.instantiate(Module(Engine(Config(backend=backend)), HELLO), user_data=True)
    with pytest.raises(HostError) as e:
        inst.call("add_numbers", 1, 10)
    assert isinstance(e.value.__cause__, ExecutionError)
    assert "re-entrant" in str(e.value.__cause__)
    inst.user_data = False
    assert inst.call("add_numbers", 1, 10) == 111  # usable again after the failure


def test_instance_over_a_raw_subclass_uses_its_methods(backend: str) -> None:
    """A backend whose instance class overrides RawInstance methods is driven
    through those methods (not the C functions directly) by the test plumbing of
    tests/method_ops.py (the library always calls the C core directly)."""
    seen: list[str] = []

    class Recording(RawInstance):
        def run(self) -> Any:
            intr = super().run()
            seen.append(str(intr))
            return intr

    m = Module(Engine(Config(backend=backend)), HELLO)
    pre = hello_linker().instantiate_pre(m)
    raw = Recording(m.program, backend=backend)
    inst = MethodDrivenInstance(pre, raw)
    assert inst.call("add_numbers", 1, 10) == 111
    assert seen == ["ecalli(0)", "finished"]
    assert inst.gas_used == 10
    with pytest.raises(OutOfGas):
        inst.call("add_numbers", 1, 10, gas=3)


def test_cost_model_is_used() -> None:
    costly = CostModel(costs={"add_32": 5})
    m = Module(Engine(Config(cost_model=costly)), HELLO)
    inst = hello_linker().instantiate(m)
    assert inst.call("add_numbers", 1, 10) == 111
    assert inst.gas_used == 10 + 2 * 4


def test_user_data_is_per_instance(backend: str) -> None:
    linker = Linker()
    linker.define("get_third_number", lambda caller: caller.user_data["third"])
    m = Module(Engine(Config(backend=backend)), HELLO)
    a = linker.instantiate(m, user_data={"third": 1})
    b = linker.instantiate(m, user_data={"third": 2})
    assert (a.call("add_numbers", 0, 0), b.call("add_numbers", 0, 0)) == (1, 2)
    a.user_data = {"third": 5}
    assert a.call("add_numbers", 0, 0) == 5 and a.caller.user_data == {"third": 5}


def test_public_names() -> None:
    import executor

    for name in ("Config", "Engine", "Module", "Linker", "Instance", "Caller", "Trap",
                 "OutOfGas", "HostError", "MissingImport", "GuestFault", "PvmError"):
        assert getattr(executor, name).__name__ == name
    with pytest.raises(AttributeError):
        executor.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_path_type_is_accepted() -> None:
    assert isinstance(HELLO, Path)
    assert Engine().module(HELLO).exports == {"add_numbers": 0}


@pytest.mark.parametrize("path", [HELLO, ADD])
def test_call_sets_up_registers_like_prepare_call(backend: str, path: Path) -> None:
    """At the first host call the registers equal those of RawInstance.prepare_call
    followed by the same run (and, on the direct register path, the stored
    64-bit words equal those the C accessors store)."""
    seen: list[list[int]] = []
    words: list[bytes] = []

    def host(caller: Caller) -> None:
        seen.append(caller.regs)
        if caller.instance._rv is not None:
            words.append(bytes(caller.instance._rv))

    linker = Linker()
    linker.define_raw("get_third_number", host)
    m = Module(Engine(Config(backend=backend)), path)
    inst = linker.instantiate(m)
    args = [0x80000000, 0xFFFFFFFF]
    inst.call(0, *args)
    raw = RawInstance(m.program, backend=backend)
    raw.prepare_call(0, args)
    raw.gas = 1000
    assert raw.run().hostcall == 0
    assert seen == [raw.regs]
    if words:
        from executor.native import ffi, lib

        assert words == [bytes(ffi.buffer(lib.pvm_instance_regs_ptr(raw._ptr), 8 * 13))]


def test_strict_module_rejects_duplicate_exports() -> None:
    from executor.blob import Export

    blob = trampolines()
    blob.exports.append(Export(blob.exports[-1].pc, b"h0"))
    assert Module(Engine(), blob).exports["h0"] == 0  # the first one wins
    with pytest.raises(ModuleError, match="duplicate export"):
        Module(Engine(Config(strict=True)), blob)
    assert Module(Engine(), trampolines(), strict=True).imports == ("host0",)
