"""Freed in-process instances hand their 4 GiB reservation to the next one
(native/memory.c, the pool): nothing of the previous tenant may survive --
not its data, its heap, its host writes into read-only memory, nor the
accessibility of pages it had and the next one must not have."""

from __future__ import annotations

import gc

import pytest

from executor.backends import available_backends
from executor.blob import ProgramBlob
from executor.raw import NativeProgram, RawInstance
from executor.tools.asm import assemble
from tests.guests import memory_image as image

SOURCE = """
%isa = latest64
%ro_data_size = 8192
%rw_data_size = 12288
%stack_size = 8192
%ro_data = 0x{ro}
%rw_data = 0x{rw}
pub @main:
    ret
"""


def blob(ro: str = "a1a2a3a4", rw: str = "b1b2") -> ProgramBlob:
    return assemble(SOURCE.format(ro=ro, rw=rw))


def scribble(inst: RawInstance) -> None:
    """Everything a tenant can leave behind: data, stack, heap, RO host writes."""
    mm = inst.memory_map
    inst.write_memory(mm.ro_data_address + 1, b"\xee" * 100)      # a host write into RO
    inst.write_memory(mm.rw_data_address, b"\xdd" * mm.rw_data_size)
    inst.write_memory(mm.stack_address_low, b"\xcc" * mm.stack_size)
    top = inst.sbrk(3 * 4096)
    assert top is not None
    inst.write_memory(mm.heap_base, b"\xbb" * 4096)


@pytest.mark.parametrize("backend", available_backends())
def test_a_new_instance_sees_only_its_initial_image(backend: str) -> None:
    program = NativeProgram(blob())
    fresh = RawInstance(program, backend=backend)
    want = image(fresh)
    heap_end = fresh.memory_map.heap_base + 3 * 4096
    fresh.close()
    for _ in range(12):  # more than the pool holds, so entries are reused and discarded
        batch = [RawInstance(program, backend=backend) for _ in range(3)]
        for inst in batch:
            assert image(inst) == want
            assert not inst.is_memory_accessible(heap_end - 4096, 1)
            scribble(inst)
        for inst in batch:
            inst.close()
    gc.collect()


@pytest.mark.parametrize("backend", available_backends())
def test_other_programs_with_the_same_layout_see_their_own_data(backend: str) -> None:
    a, b = NativeProgram(blob("a1a2a3a4")), NativeProgram(blob("c1c2", "d1"))
    ia = RawInstance(a, backend=backend)
    scribble(ia)
    ia.close()
    ib = RawInstance(b, backend=backend)
    mm = ib.memory_map
    assert ib.read_memory(mm.ro_data_address, 4) == b"\xc1\xc2\x00\x00"
    assert ib.read_memory(mm.rw_data_address, 2) == b"\xd1\x00"
    assert ib.read_memory(mm.stack_address_low, mm.stack_size) == bytes(mm.stack_size)
    ib.close()
    # and a different layout (no RO data, page size 0x4000) after that
    ic = RawInstance(NativeProgram(assemble("%isa = latest64\npub @main:\n ret\n")),
                     backend=backend, page_size=0x4000)
    assert not ic.is_memory_accessible(mm.ro_data_address, 1)
    assert not ic.is_memory_accessible(mm.rw_data_address, 1)
    ic.close()


@pytest.mark.parametrize("backend", available_backends())
def test_dynamic_paging_after_a_standard_tenant(backend: str) -> None:
    program = NativeProgram(blob())
    ia = RawInstance(program, backend=backend)
    scribble(ia)
    ia.close()
    d = RawInstance(program, backend=backend, dynamic_paging=True)
    mm = ia.memory_map
    for addr in (mm.ro_data_address, mm.rw_data_address, mm.stack_address_low, mm.heap_base):
        assert not d.is_memory_accessible(addr, 1)
    d.map_memory(mm.rw_data_address, 4096)
    assert d.read_memory(mm.rw_data_address, 4096) == bytes(4096)
    d.close()
