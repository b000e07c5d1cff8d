"""SCALE-typed and byte-buffer host-function arguments and results.

Expected encodings are written out by hand (not produced by scalecodec), so
these tests check the codec wiring against the SCALE format itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executor import Caller, GuestFault, Linker, Trap
from executor.backends import available_backends
from executor.hostfn import OUTPUT_BUFFER_TOO_SMALL, OUTPUT_OK, SENTINEL
from executor.instance import Instance
from tests.guests import ISAS, module, trampolines

pytestmark = pytest.mark.asan  # also run on the ASan/UBSan build (make test-asan)


@pytest.fixture(params=available_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=ISAS)
def isa(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def instance(backend: str, linker: Linker, isa: str = "latest64") -> Instance:
    return linker.instantiate(module(trampolines(isa), backend))


def rw(inst: Instance) -> int:
    return inst.memory_map.rw_data_address


def with_input(inst: Instance, data: bytes) -> tuple[int, int]:
    """Puts ``data`` at the start of the RW region; returns (ptr, len)."""
    inst.write_memory(rw(inst), data)
    return rw(inst), len(data)


OUT = 0x800     # output buffer offset in the RW region
OUT_LEN = 0xF00  # the in/out length word


def call_for_output(inst: Instance, *args: int, cap: int = 256) -> tuple[int, int, bytes]:
    """Calls h0(*args, out_ptr, out_len_ptr); returns (status, *out_len, out bytes)."""
    base = rw(inst)
    inst.write_memory(base + OUT, b"\xee" * cap)
    inst.write_memory(base + OUT_LEN, cap.to_bytes(4, "little"))
    status = inst.call("h0", *args, base + OUT, base + OUT_LEN)
    n = int.from_bytes(inst.read_memory(base + OUT_LEN, 4), "little")
    return status, n, inst.read_memory(base + OUT, min(n, cap))


# ---- arguments ----

ARG_CASES = [
    ("Vec<u8>", "0c616263", b"abc"),
    ("Vec<u8>", "08ff00", b"\xff\x00"),
    ("(u32, Option<u128>)", "05000000" + "01" + "07" + "00" * 15, (5, 7)),
    ("(u32, Option<u128>)", "0500000000", (5, None)),
    ("Compact<u64>", "00", 0),
    ("Compact<u64>", "fc", 63),
    ("Compact<u64>", "0101", 64),
    ("Compact<u64>", "a10f", 1000),
    ("Compact<u64>", "0300000040", 1 << 30),
    ("Compact<u64>", "13" + "ff" * 8, (1 << 64) - 1),
    ("String", "1868c3a96c6c6f", "h\u00e9llo"),
    ("Vec<u32>", "0c010000000200000003000000", [1, 2, 3]),
    ("[u8; 4]", "61626364", b"abcd"),
    ("bool", "01", True),
    ("u128", "ff" + "00" * 15, 255),
    ("Option<Vec<u8>>", "010478", b"x"),
]


@pytest.mark.parametrize(("ty", "encoded", "value"), ARG_CASES)
def test_scale_argument_is_decoded(backend: str, isa: str, ty: str, encoded: str,
                                   value: Any) -> None:
    got: list[Any] = []
    linker = Linker()
    linker.define("host0", lambda caller, v: got.append(v), args=[ty])
    inst = instance(backend, linker, isa)
    inst.call("h0", *with_input(inst, bytes.fromhex(encoded)))
    assert got == [value]


@pytest.mark.parametrize(("ty", "encoded"), [
    ("Vec<u8>", "0c61626300"),        # a trailing byte
    ("Vec<u8>", "0c6162"),            # truncated
    ("(u32, Option<u128>)", "0500000002"),  # bad Option tag
    ("bool", "02"),
    ("Compact<u64>", ""),
])
def test_malformed_scale_argument_traps(backend: str, ty: str, encoded: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller, v: None, args=[ty])
    inst = instance(backend, linker)
    with pytest.raises(Trap, match="cannot decode") as e:
        inst.call("h0", *with_input(inst, bytes.fromhex(encoded)))
    assert isinstance(e.value.__cause__, GuestFault) and e.value.function == "h0"


def test_bad_argument_pointer_traps(backend: str, isa: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller, v: None, args=["Vec<u8>"])
    inst = instance(backend, linker, isa)
    with pytest.raises(Trap, match="bad guest pointer"):
        inst.call("h0", 0x100, 4)
    with pytest.raises(Trap, match="bad guest pointer"):
        inst.call("h0", rw(inst), 0x10000)  # runs past the RW region


def test_pointers_are_masked_to_32_bits(backend: str) -> None:
    got: list[bytes] = []
    linker = Linker()
    linker.define("host0", lambda caller, v: got.append(v), args=["bytes"])
    inst = instance(backend, linker)
    ptr, n = with_input(inst, b"hi")
    inst.call("h0", ptr | 0xFFFFFFFF_00000000, n | 0xFFFFFFFF_00000000)  # sign-extended
    assert got == [b"hi"]


def test_mixed_arguments(backend: str, isa: str) -> None:
    got: list[Any] = []
    linker = Linker()
    linker.define("host0", lambda caller, a, b, c: got.append((a, b, c)),
                  args=["u32", "(u32, Option<u128>)", "&[u8]"])
    inst = instance(backend, linker, isa)
    base = rw(inst)
    inst.write_memory(base, bytes.fromhex("0900000001" + "ff" * 16) + b"raw")
    inst.call("h0", 7, base, 21, base + 21, 3)
    assert got == [(7, (9, (1 << 128) - 1), b"raw")]


def test_byte_arguments_and_results_do_not_use_scalecodec(backend: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import executor.scale

    def forbidden(type_string: str) -> Any:
        raise AssertionError(f"scalecodec used for {type_string!r}")

    monkeypatch.setattr(executor.scale, "scale_type", forbidden)
    linker = Linker()
    linker.define("host0", lambda caller, n, a, b: bytes(a) + bytes(b) * n,
                  args=["u32", "bytes", "&[u8]"], result="bytes")
    inst = instance(backend, linker)
    base = rw(inst)
    inst.write_memory(base, b"ab")
    assert call_for_output(inst, 2, base, 1, base + 1, 1) == (OUTPUT_OK, 3, b"abb")


# ---- results ----

RESULT_CASES = [
    ("Compact<u64>", 1000, "a10f"),
    ("Compact<u64>", (1 << 64) - 1, "13" + "ff" * 8),
    ("Vec<u8>", b"\x01\x02", "080102"),
    ("(u32, Option<u128>)", (5, None), "0500000000"),
    ("(u32, Option<u128>)", (1, 1 << 100), "0100000001" + (1 << 100).to_bytes(16, "little").hex()),
    ("String", "ok", "086f6b"),
    ("Vec<u32>", [], "00"),
    ("[u8; 4]", b"wxyz", "7778797a"),
    ("bytes", b"raw bytes", b"raw bytes".hex()),
]


@pytest.mark.parametrize(("ty", "value", "encoded"), RESULT_CASES)
def test_scale_result_is_encoded_into_the_guest_buffer(backend: str, isa: str, ty: str,
                                                       value: Any, encoded: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller: value, args=[], result=ty)
    inst = instance(backend, linker, isa)
    assert call_for_output(inst) == (OUTPUT_OK, len(encoded) // 2, bytes.fromhex(encoded))


def test_result_buffer_too_small(backend: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller: b"0123456789", args=[], result="Vec<u8>")
    inst = instance(backend, linker)
    status, needed, out = call_for_output(inst, cap=4)
    assert (status, needed) == (OUTPUT_BUFFER_TOO_SMALL, 11)
    assert out == b"\xee" * 4  # nothing written
    assert call_for_output(inst, cap=11) == (OUTPUT_OK, 11, b"\x28" + b"0123456789")


def test_result_to_sentinel_is_discarded(backend: str) -> None:
    calls: list[int] = []
    linker = Linker()
    linker.define("host0", lambda caller: calls.append(1) or 5, args=[], result="Compact<u32>")
    inst = instance(backend, linker)
    assert inst.call("h0", SENTINEL, 0) == OUTPUT_OK
    assert calls == [1]


@pytest.mark.parametrize("where", ["out_ptr", "out_len_ptr", "read_only"])
def test_bad_result_pointers_trap(backend: str, where: str) -> None:
    linker = Linker()
    linker.define("host0", lambda caller: b"abc", args=[], result="Vec<u8>")
    inst = instance(backend, linker)
    base = rw(inst)
    inst.write_memory(base + OUT_LEN, (64).to_bytes(4, "little"))
    out, out_len = {"out_ptr": (0x1000, base + OUT_LEN), "out_len_ptr": (base, 0xFFFFFFFE),
                    "read_only": (0x10000, base + OUT_LEN)}[where]
    with pytest.raises(Trap, match="bad guest pointer"):
        inst.call("h0", out, out_len)


def test_unencodable_result_is_a_host_error(backend: str) -> None:
    from executor import HostError

    linker = Linker()
    linker.define("host0", lambda caller: "not a number", args=[], result="Compact<u64>")
    inst = instance(backend, linker)
    with pytest.raises(HostError) as e:
        call_for_output(inst)
    assert e.value.__cause__ is not None


def test_scale_in_and_out(backend: str, isa: str) -> None:
    linker = Linker()

    @linker.define("host0", args=["Vec<u32>", "Option<u64>"], result="(u64, Vec<u32>)")
    def summarize(caller: Caller, values: list[int], bonus: int | None) -> Any:
        return sum(values) + (bonus or 0), sorted(values)

    inst = instance(backend, linker, isa)
    base = rw(inst)
    inst.write_memory(base, bytes.fromhex("0c030000000100000002000000" + "01" + "0a" + "00" * 7))
    status, n, out = call_for_output(inst, base, 13, base + 13, 9)
    assert status == OUTPUT_OK
    assert out == bytes.fromhex("1000000000000000" + "0c010000000200000003000000")


_ECHO: dict[str, Instance] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_echo_instances() -> Iterator[None]:
    """The cached instances hold sandbox workers: close them with the module, or
    the end-of-session check sees those workers outlive the tests."""
    yield
    for inst in _ECHO.values():
        inst.close()
    _ECHO.clear()


def _echo(backend: str) -> Instance:
    if backend not in _ECHO:
        linker = Linker()
        linker.define("host0", lambda caller, v: v, args=["Vec<u8>"], result="Vec<u8>")
        _ECHO[backend] = instance(backend, linker)
    return _ECHO[backend]


@pytest.mark.parametrize("backend_name", available_backends())
@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300))
def test_vec_u8_round_trip(backend_name: str, data: bytes) -> None:
    inst = _echo(backend_name)
    n = len(data)
    prefix = bytes([n << 2]) if n < 64 else ((n << 2) | 1).to_bytes(2, "little")
    ptr, length = with_input(inst, prefix + data)
    base = rw(inst)
    inst.write_memory(base + OUT_LEN, (1024).to_bytes(4, "little"))
    assert inst.call("h0", ptr, length, base + OUT, base + OUT_LEN) == OUTPUT_OK
    assert inst.read_memory(base + OUT, length) == prefix + data
