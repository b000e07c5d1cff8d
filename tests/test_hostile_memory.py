"""Issue 19, item 5 below the runtime: ``Instance.read_memory``/``write_memory``/
``memory_view``, the :class:`~executor.caller.Caller` accessors and the host-function
marshalling check a guest-chosen range before they allocate anything.  An absurd
length raises the package's own error (never ``MemoryError``/``OverflowError``) and
costs no host memory (tracemalloc peak)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from executor import (
    Caller,
    Config,
    Engine,
    ExecutionError,
    GuestFault,
    Linker,
    Module,
    PvmError,
    Trap,
)
from executor.backends import available_backends
from executor.instance import Instance
from tests.guests import backend_configs, module, trampolines

CONFIGS = backend_configs()
LIMIT = 1 << 20  # peak traced allocation allowed for one hostile request


@pytest.fixture(params=available_backends())
def inst(request: pytest.FixtureRequest) -> Instance:
    linker = Linker()
    linker.define("host0", lambda caller, a, b: None)
    return linker.instantiate(module(trampolines("latest64"), str(request.param)))


def peak_of(fn: Callable[[], Any]) -> tuple[BaseException | None, int]:
    """Runs ``fn``; the exception it raised (or None) and the peak traced allocation."""
    tracemalloc.start()
    error: BaseException | None = None
    try:
        fn()
    except Exception as exc:  # the test inspects the exception's type
        error = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak


HOSTILE_RANGES = [
    (0, 1 << 45),            # the example
    (0x20000, 1 << 32),      # exactly 4 GiB
    (0x20000, 0xFFFFFFFF),   # the largest u32, running past 4 GiB
    (0xFFFFFFFF, 2),         # wraps around the top of the address space
    (1 << 40, 16),           # an address beyond 32 bits
    (-1, 4),
    (0x20000, -1),
]


@pytest.mark.parametrize(("address", "length"), HOSTILE_RANGES)
def test_read_memory_rejects_hostile_ranges_cheaply(inst: Instance, address: int,
                                                    length: int) -> None:
    error, peak = peak_of(lambda: inst.read_memory(address, length))
    assert isinstance(error, PvmError), repr(error)
    assert peak < LIMIT


@pytest.mark.parametrize(("address", "length"), HOSTILE_RANGES)
def test_memory_view_rejects_hostile_ranges(inst: Instance, address: int, length: int) -> None:
    error, _ = peak_of(lambda: inst.memory_view(address, length))
    assert isinstance(error, PvmError), repr(error)
    assert inst.is_memory_accessible(address, length) is False


@pytest.mark.parametrize("address", [-1, 1 << 32, 0xFFFFFFFF, 1 << 40])
def test_write_memory_rejects_hostile_addresses(inst: Instance, address: int) -> None:
    error, _ = peak_of(lambda: inst.write_memory(address, b"\x01\x02"))
    assert isinstance(error, PvmError), repr(error)


def test_read_memory_of_inaccessible_range_allocates_nothing(inst: Instance) -> None:
    """A range inside 4 GiB but not mapped: refused before a buffer is made."""
    rw = inst.memory_map.rw_data_address
    error, peak = peak_of(lambda: inst.read_memory(rw, 0xF0000000))
    assert isinstance(error, ExecutionError), repr(error)
    assert peak < LIMIT


def test_valid_ranges_still_work(inst: Instance) -> None:
    rw = inst.memory_map.rw_data_address
    inst.write_memory(rw, b"abc")
    assert inst.read_memory(rw, 3) == b"abc"
    assert bytes(inst.memory_view(rw, 3)) == b"abc"
    assert inst.read_memory(rw, 0) == b""
    assert inst.is_memory_accessible(rw, 4096, write=True)


@pytest.mark.parametrize("config", [c for _, c in CONFIGS], ids=[n for n, _ in CONFIGS])
def test_memory_view_of_read_only_data_is_read_only(config: Config) -> None:
    """A store through a view of read-only data used to crash the host process
    (interpreter: the pages are read-only here too) or change the data behind the
    memory reset's back (JIT, sandbox).  The view refuses the store; write_memory
    stays the way to patch read-only data, and a reset restores it."""
    linker = Linker()
    linker.define("host0", lambda caller, a, b: None)
    inst = linker.instantiate(Module(Engine(config), trampolines("latest64")))
    mm = inst.memory_map
    ro, rw = mm.ro_data_address, mm.rw_data_address
    original = inst.read_memory(ro, 8)
    view = inst.memory_view(ro, 8)
    assert view.readonly and bytes(view) == original
    with pytest.raises(TypeError):
        view[0] = 0x99
    assert inst.read_memory(ro, 8) == original
    writable = inst.memory_view(rw, 8)
    assert not writable.readonly
    writable[0:3] = b"xyz"
    assert inst.read_memory(rw, 3) == b"xyz"
    inst.write_memory(ro, b"\x99")
    assert inst.read_memory(ro, 1) == b"\x99"
    inst.reset_memory()
    assert inst.read_memory(ro, 8) == original
    assert inst.read_memory(rw, 3) == b"\0\0\0"
    inst.close()


def test_caller_rejects_hostile_lengths(inst: Instance) -> None:
    """Every Caller accessor a host function uses, with a guest-chosen length."""
    seen: list[tuple[str, BaseException | None, int]] = []

    def host(caller: Caller, ptr: int, length: int) -> None:
        for name, fn in (
                ("read_memory", lambda: caller.read_memory(ptr, length)),
                ("memory_view", lambda: caller.memory_view(ptr, length)),
                ("write_memory_padded", lambda: caller.write_memory_padded(ptr, b"x", length))):
            error, peak = peak_of(fn)
            seen.append((name, error, peak))

    linker = Linker()
    linker.define("host0", host)
    guest = linker.instantiate(module(trampolines("latest64"), inst.module.backend))
    rw = guest.memory_map.rw_data_address
    for length in (0xFFFFFFFF, 1 << 28, 4097):
        seen.clear()
        guest.call("h0", rw, length)
        assert [s[0] for s in seen] == ["read_memory", "memory_view", "write_memory_padded"]
        for name, error, peak in seen:
            assert isinstance(error, GuestFault), (name, length, repr(error))
            assert peak < LIMIT, (name, length, peak)


def test_write_memory_padded_writes_data_then_zeros(inst: Instance) -> None:
    def host(caller: Caller, ptr: int, length: int) -> None:
        caller.write_memory_padded(ptr, b"\x01\x02\x03", length)

    linker = Linker()
    linker.define("host0", host)
    guest = linker.instantiate(module(trampolines("latest64"), inst.module.backend))
    rw = guest.memory_map.rw_data_address
    guest.write_memory(rw, b"\xff" * 4096)
    guest.call("h0", rw + 1, 4000)
    got = guest.read_memory(rw, 4096)
    assert got == b"\xff\x01\x02\x03" + bytes(3997) + b"\xff" * 95
    guest.write_memory(rw, b"\xff" * 8)
    guest.call("h0", rw, 2)  # data longer than the length: cut
    assert guest.read_memory(rw, 8) == b"\x01\x02" + b"\xff" * 6


@pytest.mark.parametrize("ty", ["bytes", "Vec<u8>", "String", "Vec<u32>"])
def test_marshalled_argument_with_hostile_length_traps_cheaply(inst: Instance,
                                                               ty: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller, v: None, args=[ty])
    guest = linker.instantiate(module(trampolines("latest64"), inst.module.backend))
    rw = guest.memory_map.rw_data_address
    error, peak = peak_of(lambda: guest.call("h0", rw, 0xFFFFFFFF))
    assert isinstance(error, Trap) and isinstance(error.__cause__, GuestFault), repr(error)
    assert peak < LIMIT


@pytest.mark.parametrize("ty", ["Vec<()>", "Vec<u32>", "BTreeSet<()>", "Vec<Vec<()>>"])
def test_scale_count_beyond_the_input_traps_cheaply(inst: Instance, ty: str) -> None:
    """Five guest bytes declaring 2**30 elements: refused at once (a Vec of zero-sized
    elements would otherwise make the host build a list of 2**30 entries)."""
    linker = Linker()
    linker.define("host0", lambda caller, v: None, args=[ty])
    guest = linker.instantiate(module(trampolines("latest64"), inst.module.backend))
    rw = guest.memory_map.rw_data_address
    guest.write_memory(rw, bytes([0x03, 0xFF, 0xFF, 0xFF, 0x3F]))
    error, peak = peak_of(lambda: guest.call("h0", rw, 5))
    assert isinstance(error, Trap) and isinstance(error.__cause__, GuestFault), repr(error)
    assert "cannot decode" in str(error.__cause__)
    assert peak < LIMIT
