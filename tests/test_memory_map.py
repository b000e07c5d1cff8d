"""The memory-map formula against the examples of execution.md 3.2, which
the spec checked against the reference's Module::memory_map()."""

from __future__ import annotations

import pytest

from executor.errors import ModuleError
from executor.raw import MemoryMap

pytestmark = pytest.mark.asan  # also run on the ASan/UBSan build (make test-asan)

# page, ro, rw, stack, aux -> ro@, ro size', rw@, rw size', heap_base, stack lo, stack hi, max_heap
CASES = [
    (0x4000, 1, 1, 1, 0, 0x10000, 0x4000, 0x30000, 0x4000, 0x30001, 0xFFFDC000, 0xFFFE0000,
     0xFFF8FFFF),
    (0x1000, 0, 0, 8192, 0, 0x10000, 0, 0x20000, 0, 0x20000, 0xFFFDE000, 0xFFFE0000, 0xFFFA0000),
    (0x1000, 0, 65616, 32768, 0, 0x10000, 0, 0x20000, 0x11000, 0x30050, 0xFFFD8000, 0xFFFE0000,
     0xFFF8FFB0),
    (0x4000, 387468, 17091900, 8192, 0, 0x10000, 0x60000, 0x80000, 0x1050000, 0x10CCD3C,
     0xFFFDC000, 0xFFFE0000, 0xFEEF32C4),
    (0x4000, 387468, 17091900, 8192, 0x5000, 0x10000, 0x60000, 0x80000, 0x1050000, 0x10CCD3C,
     0xFFFCC000, 0xFFFD0000, 0xFEEE32C4),
    (0x4000, 57304, 5621064, 524288, 0, 0x10000, 0x10000, 0x30000, 0x560000, 0x58C548,
     0xFFF60000, 0xFFFE0000, 0xFF9C3AB8),
]


@pytest.mark.parametrize("case", CASES)
def test_memory_map_examples(case: tuple[int, ...]) -> None:
    page, ro, rw, stack, aux, ro_at, ro_sz, rw_at, rw_sz, heap, lo, hi, max_heap = case
    m = MemoryMap(page, ro, rw, stack, aux)
    assert (m.ro_data_address, m.ro_data_size) == (ro_at, ro_sz)
    assert (m.rw_data_address, m.rw_data_size) == (rw_at, rw_sz)
    assert m.heap_base == heap
    assert (m.stack_address_low, m.stack_address_high) == (lo, hi)
    assert m.max_heap_size == max_heap
    assert m.default_sp == hi


def test_aux_region() -> None:
    m = MemoryMap(0x4000, 387468, 17091900, 8192, 0x5000)
    assert (m.aux_data_address, m.aux_data_size) == (0xFFFE0000, 0x8000)


@pytest.mark.parametrize(
    ("page", "message"),
    [(0x800, "too small"), (0x20000, "too big"), (0x3000, "not a power of two")],
)
def test_bad_page_sizes(page: int, message: str) -> None:
    with pytest.raises(ModuleError, match=message):
        MemoryMap(page, 0, 0, 0)


def test_maximum_memory_size_exceeded() -> None:
    with pytest.raises(ModuleError, match="maximum memory size exceeded"):
        MemoryMap(0x1000, 0x80000000, 0x80000000, 0x1000)
    with pytest.raises(ModuleError, match="too big"):
        MemoryMap(0x1000, 0xFFFFFFFF, 0, 0)
