"""Host-call layers (InstancePre.layered): observe, answer instead, refuse, compose; no
layer leaves the dispatch table untouched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from executor import Caller, HostError, Linker
from executor.backends import available_backends
from executor.linker import HostLayer
from tests.guests import module, trampolines


@pytest.fixture(params=available_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def linked(backend: str) -> Any:
    m = module(trampolines("latest64", ("double", "count")), backend)
    linker = Linker()
    linker.define("double", lambda caller, x: 2 * x)
    calls = {"n": 0}

    def count(caller: Caller) -> int:
        calls["n"] += 1
        return calls["n"]

    linker.define("count", count)
    return linker.instantiate_pre(m), calls


class Recorder:
    def __init__(self, log: list[str], tag: str):
        self.log, self.tag = log, tag

    def host_call(self, name: str, caller: Any, proceed: Callable[[], None]) -> None:
        self.log.append(f"{self.tag}>{name}({caller.reg(7)})")
        proceed()
        self.log.append(f"{self.tag}<{name}={caller.reg(7)}")


def test_no_layer_is_the_plain_table(backend: str) -> None:
    pre, _ = linked(backend)
    assert pre.layered(()) is pre
    assert pre.instantiate().call("h0", 21) == 42


def test_layers_observe_in_order(backend: str) -> None:
    pre, _ = linked(backend)
    log: list[str] = []
    outer, inner = Recorder(log, "A"), Recorder(log, "B")
    assert isinstance(outer, HostLayer)
    inst = pre.layered([outer, inner]).instantiate()
    assert inst.call("h0", 5) == 10
    assert log == ["A>double(5)", "B>double(5)", "B<double=10", "A<double=10"]
    assert pre.layered([outer, inner]) is pre.layered([outer, inner])  # built once
    assert pre.instantiate().call("h0", 5) == 10 and len(log) == 4  # the plain pre: no layer


def test_layer_answers_instead(backend: str) -> None:
    pre, calls = linked(backend)

    class Mock:
        def host_call(self, name: str, caller: Any, proceed: Callable[[], None]) -> None:
            if name == "count":
                caller.set_reg(7, 1000)  # answered here: the real function never runs
            else:
                proceed()

    inst = pre.layered([Mock()]).instantiate()
    assert inst.call("h1") == 1000 and calls["n"] == 0
    assert inst.call("h0", 4) == 8
    assert inst.call("loop", 3) == 3 and calls["n"] == 0


def test_layer_refuses(backend: str) -> None:
    pre, calls = linked(backend)

    class Deny:
        def host_call(self, name: str, caller: Any, proceed: Callable[[], None]) -> None:
            raise PermissionError(f"{name} is not allowed")

    inst = pre.layered([Deny()]).instantiate()
    with pytest.raises(HostError, match="count is not allowed"):
        inst.call("h1")
    assert calls["n"] == 0


def test_layer_sees_every_call_of_a_loop(backend: str) -> None:
    pre, _ = linked(backend)
    seen: list[str] = []

    class Count:
        def host_call(self, name: str, caller: Any, proceed: Callable[[], None]) -> None:
            seen.append(name)
            proceed()

    assert pre.layered([Count()]).instantiate().call("loop", 25) == 25
    assert seen == ["double"] * 25
