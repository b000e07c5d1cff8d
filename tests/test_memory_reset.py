"""``reset_memory`` (native/memory.c) restores only the pages that changed, in
place: whatever a guest or the host wrote -- data, stack, heap, read-only data
written by the host, pages touched once and left alone since -- the next call
must see exactly the image of a fresh instance, on every backend (the
interpreter, the JIT in process and in a Linux sandbox worker), directly and
through the trio executor.  The expectation is always an instance that was
never used."""

from __future__ import annotations

import os
import random

import pytest
import trio

from executor import Config, Engine, Module
from executor.aio import Executor
from executor.blob import ProgramBlob
from executor.instance import Instance
from executor.tools.asm import assemble
from tests.guests import backend_configs
from tests.guests import memory_image as image

pytestmark = pytest.mark.asan

PAGE = 4096
RO = bytes((7 * k + 3) & 0xFF or 1 for k in range(5000))     # spills into a second page
RW = bytes((11 * k + 5) & 0xFF or 1 for k in range(6000))    # ends inside page 2 of 4

SOURCE = f"""
%isa = latest64
%ro_data_size = 8192
%rw_data_size = 16384
%stack_size = 16384
%ro_data = 0x{RO.hex()}
%rw_data = 0x{RW.hex()}
pub @poke:
    u64 [a0] = a1
    ret
pub @peek:
    a0 = u64 [a0]
    ret
pub @fill:
    memset
    ret
pub @grow:
    a0 = sbrk a0
    ret
pub @deep:
    sp = sp - 12288
    u64 [sp] = a0
    u64 [sp + 4096] = a0
    u64 [sp + 8192] = a0
    sp = sp + 12288
    ret
pub @noop:
    ret
"""


def blob() -> ProgramBlob:
    return assemble(SOURCE)


CONFIGS = backend_configs()


@pytest.fixture(params=[c for _, c in CONFIGS], ids=[n for n, _ in CONFIGS])
def module(request: pytest.FixtureRequest) -> Module:
    return Module(Engine(request.param), blob())


def test_the_initial_image_is_what_the_blob_says(module: Module) -> None:
    inst = module.instantiate()
    want = image(inst)
    assert want["ro"] == RO + bytes(8192 - len(RO))
    assert want["rw"] == RW + bytes(16384 - len(RW))
    assert want["stack"] == bytes(16384)
    inst.close()


def scribble(inst: Instance, rng: random.Random) -> None:
    """Guest and host writes into every region, a few pages or all of them."""
    mm = inst.memory_map
    rw, stack = mm.rw_data_address, mm.stack_address_low
    value = rng.getrandbits(64) | 1
    for off in rng.sample(range(0, mm.rw_data_size, 8), 6) + [0, len(RW) - 8, len(RW),
                                                              mm.rw_data_size - 8]:
        inst.call("poke", rw + off, value)
    for off in range(0, mm.stack_size, PAGE):
        inst.call("poke", stack + off + rng.randrange(0, PAGE, 8), value)
    inst.call("deep", value)
    n = rng.randrange(1, mm.rw_data_size)
    inst.call("fill", rw + mm.rw_data_size - n, value & 0xFF, n)   # memset
    top = inst.call("grow", 3 * PAGE)                 # heap past the rw region
    assert top != 0
    inst.call("poke", mm.heap_base + PAGE, value)
    inst.write_memory(mm.ro_data_address + rng.randrange(0, 8000), b"\xee" * 100)  # host, RO
    inst.write_memory(stack + rng.randrange(0, mm.stack_size - 64), b"\xcc" * 64)
    inst.write_memory(rw + rng.randrange(0, mm.rw_data_size - 64), b"\xdd" * 64)


def test_reset_restores_every_region(module: Module) -> None:
    fresh = module.instantiate()
    want = image(fresh)
    heap_page = fresh.memory_map.rw_data_address + fresh.memory_map.rw_data_size + PAGE
    assert not fresh.is_memory_accessible(heap_page, 1)
    fresh.close()
    inst = module.instantiate()
    rng = random.Random(17)
    for _ in range(6):
        scribble(inst, rng)
        assert image(inst) != want
        inst.reset_memory()
        assert image(inst) == want
        assert not inst.is_memory_accessible(heap_page, 1)
        inst.reset_memory()          # a reset with nothing dirty changes nothing
        assert image(inst) == want
    inst.close()


def test_reset_after_pages_touched_once_then_left(module: Module) -> None:
    """A call that writes many pages, then calls that write a few or none: each
    reset is exact (the clean pages kept or dropped in between)."""
    inst = module.instantiate()
    want = image(inst)
    mm = inst.memory_map
    inst.call("grow", 64 * PAGE)
    inst.call("fill", mm.rw_data_address, 0x5A, mm.rw_data_size + 64 * PAGE)
    inst.call("fill", mm.stack_address_low, 0x33, mm.stack_size)
    inst.reset_memory()
    assert image(inst) == want
    for k in range(4):
        if k % 2:
            inst.call("poke", mm.rw_data_address + 8192 + 8 * k, 0x1234)
        else:   # read everything back without writing
            for off in range(0, mm.rw_data_size, PAGE):
                assert inst.call("peek", mm.rw_data_address + off) == \
                    int.from_bytes(want["rw"][off:off + 8], "little")
        inst.reset_memory()
        assert image(inst) == want
    inst.close()


def test_executor_calls_never_see_an_earlier_calls_writes(module: Module) -> None:
    """A hostile guest scribbles over its memory on every call; the next call
    on the same worker reads the initial image everywhere."""
    mm = module.memory_map
    probes = [mm.rw_data_address + off for off in (0, 4096, len(RW) - 8, 16384 - 8)] + \
             [mm.stack_address_low + off for off in (0, 8192, 16384 - 8)]
    init = {a: int.from_bytes((RW + bytes(16384))[a - mm.rw_data_address:][:8], "little")
            if a < mm.stack_address_low else 0 for a in probes}

    engine = module.engine
    assert isinstance(engine, Engine)

    async def main() -> None:
        async with Executor(engine, workers=1) as ex:
            for round_ in range(3):
                for a in probes:
                    assert await ex.call(module, "peek", a) == init[a]
                    await ex.call(module, "poke", a, 0xDEAD0000 + round_)
                await ex.call(module, "fill", mm.rw_data_address, 0xEE, 16384)
                await ex.call(module, "deep", 0xBEEF)
                assert await ex.call(module, "grow", PAGE) != 0
                for a in probes:
                    assert await ex.call(module, "peek", a) == init[a]

    trio.run(main)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_reset_in_a_forked_child() -> None:
    """The reset reads which pages exist from /proc/self/pagemap, a file bound to
    the address space that opened it: a forked child must use its own, or pages
    only the child touched would be missed."""
    module = Module(Engine(Config(backend="interpreter")), blob())
    inst = module.instantiate()
    inst.call("noop")
    inst.reset_memory()              # the parent has used its pagemap
    mm = inst.memory_map
    rw_last = mm.rw_data_address + mm.rw_data_size - 8     # pages the parent never touched
    stack_low = mm.stack_address_low
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # pragma: no cover (the child)
        ok = False
        try:
            inst.call("poke", rw_last, 0x77)
            inst.call("poke", stack_low, 0x77)
            inst.reset_memory()
            ok = (inst.read_memory(mm.rw_data_address, mm.rw_data_size) ==
                  RW + bytes(mm.rw_data_size - len(RW)) and
                  inst.read_memory(stack_low, mm.stack_size) == bytes(mm.stack_size))
        finally:
            os.write(w, b"1" if ok else b"0")
            os._exit(0)
    os.close(w)
    try:
        got = os.read(r, 1)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    inst.close()
    assert got == b"1"


def test_the_next_tenant_of_a_worker_sees_the_initial_image(module: Module) -> None:
    """A sandbox worker parks a released instance's memory for the next instance of
    the same layout (native/sandbox/host.c): it drops every page the guest could
    reach, then resets.  The next instance must see the blob's data, not the dropped
    (zero) pages nor anything the previous one wrote; in process the same sequence
    goes through the reservation pool."""
    rng = random.Random(5)
    for _ in range(4):
        inst = module.instantiate()
        assert image(inst) == {"ro": RO + bytes(8192 - len(RO)),
                               "rw": RW + bytes(16384 - len(RW)),
                               "stack": bytes(16384)}
        scribble(inst, rng)
        inst.close()
