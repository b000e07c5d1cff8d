"""The lean call path (a call site per instance and export, taken from an
export's second call by name) against the general path (a call by pc, or an
export's first call): same results, including a0 values that overlap the C
core's tag for "stopped" (2**64 - 2**36 and above), same gas, same host calls,
same errors, on every backend."""

from __future__ import annotations

import pytest

from executor import Config, Engine, Linker, Module
from executor.errors import PvmError
from executor.instance import Instance
from tests.guests import backend_configs, trampolines

M64 = (1 << 64) - 1
TAG = (1 << 64) - (1 << 36)   # native/pvm.h PVM_CALL_STOPPED_BITS = 36
EDGES = [0, 1, 41, (1 << 63) - 1, 1 << 63, TAG - 1, TAG, TAG + 1, TAG + 2, TAG + 3,
         TAG + 255, M64 - 1, M64]
CONFIGS = backend_configs()
IDS = [name for name, _ in CONFIGS]


def test_tag_matches_the_c_core() -> None:
    from executor.native import lib
    assert TAG == (1 << 64) - (1 << int(lib.PVM_CALL_STOPPED_BITS))


@pytest.fixture(params=[c for _, c in CONFIGS], ids=IDS)
def config(request: pytest.FixtureRequest) -> Config:
    return request.param  # type: ignore[no-any-return]


def _instances(config: Config, returns: list[int]) -> tuple[Instance, Instance]:
    """Two instances of the trampolines whose host0 returns the next value of
    ``returns`` (one list per instance) and records its arguments."""
    out: list[Instance] = []
    for _ in range(2):
        vals = list(returns)
        linker = Linker()

        def host0(caller: object, a: int, b: int, vals: list[int] = vals) -> int:
            return vals.pop(0)

        linker.define("host0", host0)
        out.append(linker.instantiate(Module(Engine(config), trampolines("latest64"))))
    return out[0], out[1]


def test_results_past_the_stop_tag_come_back_exact(config: Config) -> None:
    """add64 finishes with a0 = a + b: no host call, the value folded into the
    call's return unless it overlaps the tag.  Every edge value, by name (the
    site from the second call on) and by pc (the general path)."""
    linker = Linker()
    linker.define("host0", lambda caller, a, b: 0)
    inst = linker.instantiate(Module(Engine(config), trampolines("latest64")))
    pc = inst.module.export_pc("add64")
    for v in EDGES:
        for a in (0, v // 2):
            b = v - a
            assert inst.call("add64", a, b) == v
            assert inst.call(pc, a, b) == v
            assert inst.call("add64", b, a) == v
    assert inst.call("add64", M64, 2) == 1          # wraps
    inst.close()


def test_host_call_results_past_the_tag(config: Config) -> None:
    """h0 = ecalli 0; ret: a0 is what the host function returned, through the
    site's resume path; same values and gas as the general path."""
    site, general = _instances(config, EDGES * 2)
    pc = general.module.export_pc("h0")
    for v in EDGES * 2:
        g0 = site.gas
        assert site.call("h0", 7, 8) == v
        h0 = general.gas
        assert general.call(pc, 7, 8) == v
        assert g0 - site.gas == h0 - general.gas
        assert site.gas_used == general.gas_used
    site.close()
    general.close()


def test_loop_of_host_calls_and_gas_limits(config: Config) -> None:
    """loop(n) makes n host calls; with a gas limit too small the site path
    stops where the general path does, with the same error type."""
    calls: list[int] = []
    linker = Linker()
    linker.define("host0", lambda caller, a, b: calls.append(1))
    inst = linker.instantiate(Module(Engine(config), trampolines("latest64")))
    pc = inst.module.export_pc("loop")
    for n in (0, 1, 5, 300):
        calls.clear()
        assert inst.call("loop", n) == n and len(calls) == n
        by_name = inst.gas_used
        calls.clear()
        assert inst.call(pc, n) == n and len(calls) == n
        assert inst.gas_used == by_name
    outcomes = []
    for how in ("loop", pc, "loop"):
        calls.clear()
        with pytest.raises(PvmError) as e:
            inst.call(how, 1000, gas=500)
        outcomes.append((type(e.value), len(calls), inst.gas_used))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    inst.close()


def test_traps_and_host_errors_match(config: Config) -> None:
    linker = Linker()

    def host0(caller: object, a: int, b: int) -> int:
        if a == 13:
            raise ValueError("thirteen")
        return a + b

    linker.define("host0", host0)
    inst = linker.instantiate(Module(Engine(config), trampolines("latest64")))
    for how in ("bad", inst.module.export_pc("bad"), "bad"):
        with pytest.raises(PvmError) as e1:
            inst.call(how)
        assert "trap" in str(e1.value).lower()
    results = []
    for how in ("h0", inst.module.export_pc("h0"), "h0"):
        with pytest.raises(Exception) as e2:
            inst.call(how, 13, 0)
        results.append((type(e2.value), "thirteen" in str(e2.value) or
                        "thirteen" in str(e2.value.__cause__)))
        assert inst.call(how, 2, 3) == 5
    assert results[0] == results[1] == results[2] and results[0][1]
    inst.close()
