"""Issue 19, item 5: a guest-chosen length never makes the host allocate more than
the guest paid for and guest memory can hold.  Every pallet-revive host function
that takes a length (or a capacity) is called with hostile values; the frame must
fail with the pallet's error (or succeed, where the value is legal) while the host's
peak Python allocation (tracemalloc) stays far below the length asked for."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest

from contracts.harness import Account, TestChain
from executor.isa import InstructionSet
from executor.revive import ExecResult
from executor.revive.constants import CallFlags
from executor.tools.asm import ProgramBuilder
from tests.contracts.test_revive_runtime import RW, assemble, seal_return

U32_MAX = 0xFFFFFFFF
BIG = 64 << 20  # 64 MiB: far above anything a frame here may make the host hold
LIMIT = 4 << 20  # the peak allocation a test allows (the harness itself uses ~1 MiB)
GAS = 10**12  # enough to pay for copying 4 GiB, so gas is not what stops the call


def pair(hi: int, lo: int) -> int:
    return ((hi & U32_MAX) << 32) | (lo & U32_MAX)


def call_with(name: str, **values: int) -> bytes:
    """A contract whose ``call`` sets registers, calls ``name`` and returns nothing."""
    body = [("load_imm64", {"ra": r, "imm64": v}) for r, v in values.items()]
    return assemble([name, "seal_return"],
                    [*body, ("ecalli", {"name": name}), *seal_return(0, RW, 0)])


def run_measured(chain: TestChain, alice: Account, blob: bytes,
                 data: bytes = b"") -> tuple[ExecResult, int]:
    """Deploys ``blob``, calls it; the result and the peak traced allocation of the call."""
    address = chain.runtime.instantiate(alice.address, blob).address
    assert address is not None
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = chain.runtime.call(alice.address, address, data, gas_limit=GAS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


CASES: dict[str, tuple[str, dict[str, int], set[str | None]]] = {
    # call_data_copy(out_ptr, out_len, offset): a destination that cannot hold out_len
    "call_data_copy-4GiB": ("call_data_copy", {"a0": RW, "a1": U32_MAX, "a2": 0},
                            {"OutOfBounds"}),
    "call_data_copy-64MiB": ("call_data_copy", {"a0": RW, "a1": BIG, "a2": 0},
                             {"OutOfBounds"}),
    "call_data_copy-past-input": ("call_data_copy", {"a0": RW, "a1": BIG, "a2": U32_MAX},
                                  {"OutOfBounds"}),
    # seal_return(flags, ptr, len)
    "seal_return": ("seal_return", {"a0": 0, "a1": RW, "a2": U32_MAX}, {"OutOfBounds"}),
    "seal_return-64MiB": ("seal_return", {"a0": 0, "a1": RW, "a2": BIG}, {"OutOfBounds"}),
    # hashes(in_ptr, in_len, out_ptr)
    "hash_keccak_256": ("hash_keccak_256", {"a0": RW, "a1": U32_MAX, "a2": RW},
                        {"OutOfBounds"}),
    "hash_blake2_256": ("hash_blake2_256", {"a0": RW, "a1": BIG, "a2": RW}, {"OutOfBounds"}),
    "hash_blake2_128": ("hash_blake2_128", {"a0": RW, "a1": BIG, "a2": RW}, {"OutOfBounds"}),
    # storage(flags, key_ptr, key_len, value_ptr, value_len / out_ptr, out_len_ptr)
    "set_storage-value": ("set_storage", {"a0": 0, "a1": RW, "a2": 32, "a3": RW,
                                          "a4": U32_MAX}, {"ValueTooLarge"}),
    "set_storage-key": ("set_storage", {"a0": 0, "a1": RW, "a2": BIG, "a3": RW, "a4": 1},
                        {"DecodingFailed"}),
    "get_storage-key": ("get_storage", {"a0": 0, "a1": RW, "a2": U32_MAX - 1, "a3": RW,
                                        "a4": RW + 0x48}, {"DecodingFailed"}),
    "contains_storage-key": ("contains_storage", {"a0": 0, "a1": RW, "a2": BIG},
                             {"DecodingFailed"}),
    "clear_storage-key": ("clear_storage", {"a0": 0, "a1": RW, "a2": BIG},
                          {"DecodingFailed"}),
    "take_storage-key": ("take_storage", {"a0": 0, "a1": RW, "a2": BIG, "a3": RW,
                                          "a4": RW + 0x48}, {"DecodingFailed"}),
    # deposit_event(topics_ptr, num_topics, data_ptr, data_len)
    "deposit_event-topics": ("deposit_event", {"a0": RW, "a1": U32_MAX, "a2": RW, "a3": 0},
                             {"TooManyTopics", "OutOfGas"}),
    "deposit_event-data": ("deposit_event", {"a0": RW, "a1": 0, "a2": RW, "a3": U32_MAX},
                           {"ValueTooLarge", "OutOfGas"}),
    # call / delegate_call: input (in_len, in_ptr) in a4
    "call-input": ("call", {"a0": pair(0, RW), "a1": GAS, "a3": pair(RW, RW),
                            "a4": pair(U32_MAX, RW), "a5": pair(RW + 0x48, RW)},
                   {"OutOfBounds"}),
    "delegate_call-input": ("delegate_call", {"a0": pair(0, RW), "a1": GAS, "a3": RW,
                                              "a4": pair(BIG, RW), "a5": pair(RW + 0x48, RW)},
                            {"OutOfBounds"}),
    # instantiate: input (in_len, in_ptr) in a3
    "instantiate-input": ("instantiate", {"a0": GAS, "a2": pair(RW, RW),
                                          "a3": pair(U32_MAX, RW), "a4": pair(RW + 0x48, RW),
                                          "a5": pair(U32_MAX, U32_MAX)}, {"OutOfBounds"}),
    # return_data_copy(out_ptr, out_len_ptr, offset): a huge offset into no data
    "return_data_copy-offset": ("return_data_copy", {"a0": RW, "a1": RW + 0x48, "a2": U32_MAX},
                                {"OutOfBounds"}),
}


@pytest.fixture
def traced() -> Iterator[None]:
    yield
    if tracemalloc.is_tracing():  # pragma: no cover - run_measured stops it
        tracemalloc.stop()


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_length_costs_no_host_memory(chain: TestChain, alice: Account, case: str,
                                             traced: None) -> None:
    name, values, errors = CASES[case]
    result, peak = run_measured(chain, alice, call_with(name, **values))
    assert result.error in errors, (case, result.error)
    assert peak < LIMIT, f"{case}: the host allocated {peak} bytes"


def test_call_data_copy_pads_with_zeros_without_a_padded_buffer(chain: TestChain,
                                                                alice: Account) -> None:
    """A legal copy past the end of the input: the input bytes, then zeros, written
    in place (the host holds no out_len-sized buffer even when memory can take it)."""
    size = 1 << 20
    out = RW + 0x1000
    b = ProgramBuilder(InstructionSet.LATEST64)
    b.rw_data_size = 0x1000 + size
    b.stack_size = 0x1000
    copy, ret = b.add_import("call_data_copy"), b.add_import("seal_return")
    b.label("call", export=True)
    for reg, value in (("a0", out), ("a1", size), ("a2", 2)):
        b.emit("load_imm64", ra=reg, imm64=value)
    b.emit("ecalli", imm1=copy)
    for reg, value in (("a0", 0), ("a1", out), ("a2", 8)):
        b.emit("load_imm64", ra=reg, imm64=value)
    b.emit("ecalli", imm1=ret)
    b.label("deploy", export=True)
    b.emit("jump_indirect", ra="ra", imm1=0)
    address = chain.runtime.instantiate(alice.address, b.build().to_bytes()).address
    assert address is not None
    chain.runtime.call(alice.address, address, b"\xaa" * 64, gas_limit=GAS)  # warm up
    tracemalloc.start()
    try:
        result = chain.runtime.call(alice.address, address, b"\x11\x22\x33\x44\x55",
                                    gas_limit=GAS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.success, result.error
    # the input from offset 2 (3 bytes), then zeros (every call starts from fresh memory)
    assert result.data == b"\x33\x44\x55" + bytes(5)
    assert peak < size // 2, f"the host allocated {peak} bytes for a {size}-byte copy"


def test_return_data_copy_does_not_copy_the_return_data_per_call(chain: TestChain,
                                                                 alice: Account) -> None:
    """A contract calls itself, gets 1 MiB of return data, then calls
    return_data_copy with a capacity of 0 many times: each call is paid as a copy of 0
    bytes, so the host must not copy the 1 MiB return buffer for it (it did, one
    transient copy per call)."""
    big, rounds = 1 << 20, 64
    own, value, cap0, out = RW + 0x200, RW + 0x240, RW + 0x280, RW + 0x300
    b = ProgramBuilder(InstructionSet.LATEST64)
    b.rw_data_size = 0x1000 + big
    b.stack_size = 0x1000
    imp = {n: b.add_import(n) for n in ("call_data_size", "address", "call",
                                        "return_data_copy", "seal_return")}

    def set_regs(**values: int) -> None:
        for reg, v in values.items():
            b.emit("load_imm64", ra=reg, imm64=v)

    b.label("call", export=True)
    b.emit("ecalli", imm1=imp["call_data_size"])
    b.emit("branch_not_eq_imm", ra="a0", imm1=0, target="big")
    set_regs(a0=own)
    b.emit("ecalli", imm1=imp["address"])
    set_regs(a0=pair(int(CallFlags.ALLOW_REENTRY), own), a1=GAS, a2=0,
             a3=pair(value, value), a4=pair(1, RW), a5=pair(cap0, U32_MAX))
    b.emit("ecalli", imm1=imp["call"])
    set_regs(s0=rounds)
    b.label("loop")
    set_regs(a0=out, a1=cap0, a2=1)  # offset 1 (slicing bytes from 0 would not copy)
    b.emit("ecalli", imm1=imp["return_data_copy"])
    b.emit("add_imm_64", ra="s0", rb="s0", imm1=-1)
    b.emit("branch_not_eq_imm", ra="s0", imm1=0, target="loop")
    set_regs(a0=0, a1=cap0, a2=4)
    b.emit("ecalli", imm1=imp["seal_return"])
    b.label("big")
    set_regs(a0=0, a1=RW + 0x1000, a2=big)
    b.emit("ecalli", imm1=imp["seal_return"])
    b.label("deploy", export=True)
    b.emit("jump_indirect", ra="ra", imm1=0)
    address = chain.runtime.instantiate(alice.address, b.build().to_bytes()).address
    assert address is not None
    tracemalloc.start()
    try:
        result = chain.runtime.call(alice.address, address, b"", gas_limit=GAS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.success, result.error
    assert result.data == bytes(4)  # the capacity word: 0 bytes were copied each time
    # the return data itself (1 MiB, paid for by the callee) plus little: no second copy
    assert peak < big * 3 // 2, f"peak {peak} bytes for {big} bytes of return data"
