"""Real programs built by others, with results established independently:
the c-guests (results computed natively by gcc and gas measured on the
reference, blobs/c-guests/README.md), hello-world (blobs/README.md) and DOOM
(gas and frame CRCs from the reference run, doom-reference-100.json)."""

from __future__ import annotations

import json

import pytest

from executor.backends import available_backends, new_instance
from executor.blob import ProgramBlob
from executor.raw import InterruptKind, NativeProgram, RawInstance
from executor.tools.doom import Doom
from tests.conftest import BLOBS, WAD

pytestmark = pytest.mark.asan  # also run on the ASan/UBSan build (make test-asan)

BACKENDS = available_backends()


def call(inst: RawInstance, blob: ProgramBlob, export: str, args: list[int],
         host: dict[int, int] | None = None, gas: int = 1 << 40) -> tuple[int, int]:
    """Calls an export; host maps import index -> value returned in a0.
    Returns (a0, gas used)."""
    inst.prepare_call(blob.export_pc(export), args)
    inst.gas = gas
    while True:
        intr = inst.run()
        if intr.kind is InterruptKind.FINISHED:
            return inst.reg(7), gas - inst.gas
        assert intr.kind is InterruptKind.ECALLI, intr
        assert host is not None and intr.hostcall in host
        inst.set_reg(7, host[intr.hostcall])


@pytest.fixture(scope="module", params=BACKENDS)
def bench(request: pytest.FixtureRequest) -> tuple[ProgramBlob, RawInstance]:
    blob = ProgramBlob.load(BLOBS / "c-guests" / "bench.polkavm")
    return blob, new_instance(NativeProgram(blob), request.param)


@pytest.mark.parametrize(
    ("export", "arg", "result", "gas"),
    [
        ("noop", 0, 42, 2),
        ("prime_sieve", 0, 0, 2),
        ("prime_sieve", 1, 78498, 16496390),
        ("sha256_loop", 0, 1779033703, 14),
        ("sha256_loop", 1, 4237927135, 4069),
        ("sha256_loop", 1000, 2881585282, 4037032),
    ],
)
def test_c_guest_bench(bench: tuple[ProgramBlob, RawInstance], export: str, arg: int,
                       result: int, gas: int) -> None:
    blob, inst = bench
    assert call(inst, blob, export, [arg]) == (result, gas)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("a", "b", "result"), [(1, 2, 103), (0xFFFFFFFFFFFFFFFF, 1, 100)])
def test_c_guest_add(a: int, b: int, result: int, backend: str) -> None:
    blob = ProgramBlob.load(BLOBS / "c-guests" / "add.polkavm")
    inst = new_instance(NativeProgram(blob), backend)
    assert call(inst, blob, "add", [a, b], host={0: 100}) == (result, 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hello_world(backend: str) -> None:
    blob = ProgramBlob.load(BLOBS / "example-hello-world.polkavm")
    inst = new_instance(NativeProgram(blob), backend)
    value, _ = call(inst, blob, "add_numbers", [1, 10], host={0: 100})
    assert value == 111


@pytest.mark.parametrize("backend", BACKENDS)
def test_hello_world_without_gas(backend: str) -> None:
    blob = ProgramBlob.load(BLOBS / "example-hello-world.polkavm")
    inst = new_instance(NativeProgram(blob), backend, gas_metering=False)
    inst.prepare_call(blob.export_pc("add_numbers"), [20, 22])
    intr = inst.run()
    assert intr.kind is InterruptKind.ECALLI and intr.hostcall == 0
    inst.set_reg(7, 3)
    assert inst.run().kind is InterruptKind.FINISHED
    assert inst.reg(7) == 45


@pytest.mark.skipif(not WAD.exists(), reason="freedoom1.wad is installed by `make test`")
@pytest.mark.parametrize("backend", BACKENDS)
def test_doom_matches_reference_gas_and_frames(backend: str) -> None:
    ref = json.loads((BLOBS / "doom-reference-100.json").read_text())
    d = Doom(BLOBS / "doom.polkavm", WAD.read_bytes(), backend=backend)
    assert d.initialize() == ref["ext_initialize_gas"]
    for k in range(8):
        f = d.tick()
        r = ref["frames"][k]
        assert (f.gas, f"{f.crc32:08x}", f.width, f.height, f.audio_samples) == (
            r["gas"], r["crc32"], r["width"], r["height"], r["audio_samples"]), k


@pytest.mark.slow
@pytest.mark.skipif(not WAD.exists(), reason="freedoom1.wad is installed by `make test`")
def test_doom_identical_on_every_backend_past_the_title_screen() -> None:
    """Frames 100..160 are not in the reference file; the backends must agree
    with each other on gas, frame CRC and audio, with and without metering."""
    runs = {}
    for backend in BACKENDS:
        for metered in (True, False):
            d = Doom(BLOBS / "doom.polkavm", WAD.read_bytes(), backend=backend,
                     gas_metering=metered)
            d.initialize()
            frames = [d.tick() for _ in range(160)]
            runs[(backend, metered)] = [(f.gas if metered else 0, f.crc32, f.audio_samples)
                                        for f in frames[100:]]
    first = runs[("interpreter", True)]
    for key, value in runs.items():
        want = first if key[1] else [(0, c, a) for _, c, a in first]
        assert value == want, key
