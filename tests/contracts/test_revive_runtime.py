"""The runtime below the harness: upload-time validation, address derivation, host
functions on hand-assembled contracts, read-only frames and the state journal."""

from __future__ import annotations

import pytest

from contracts.harness import Account, TestChain
from executor.blob import ProgramBlob
from executor.isa import InstructionSet
from executor.revive import (
    SENTINEL,
    CodeRejected,
    InMemoryState,
    Limits,
    ReviveRuntime,
    StorageKey,
    create1,
    create2,
    host_function_names,
    keccak256,
)
from executor.tools.asm import ProgramBuilder
from tests.contracts.abis import COUNTER_BLOB, FACTORY_ABI, FACTORY_BLOB, SAMPLES

RW = 0x20000  # rw data address of a program without ro data (spec 1.2)
KEY, VALUE = b"K" * 32, b"V" * 32

RESOLC_IMPORTS = {
    "address", "balance", "balance_of", "base_fee", "block_author", "block_hash",
    "block_number", "call", "call_data_copy", "call_data_load", "call_data_size", "caller",
    "chain_id", "code_hash", "code_size", "delegate_call", "deposit_event", "gas_limit",
    "gas_price", "get_immutable_data", "get_storage", "hash_keccak_256", "instantiate", "now",
    "origin", "ref_time_left", "return_data_copy", "return_data_size", "seal_return",
    "set_immutable_data", "set_storage", "value_transferred",
}


def assemble(imports: list[str], body: list[tuple[str, dict[str, object]]],
             isa: InstructionSet = InstructionSet.LATEST64) -> bytes:
    """A contract whose ``call`` runs ``body`` and whose ``deploy`` returns at once.
    rw data: KEY at RW, VALUE at RW+0x20, u32 32 at RW+0x48."""
    b = ProgramBuilder(isa)
    b.rw_data_size = 0x100
    b.stack_size = 0x1000
    b.rw_data.extend(KEY + VALUE + bytes(8) + (32).to_bytes(4, "little") + bytes(4))
    index = {name: b.add_import(name) for name in imports}
    b.label("call", export=True)
    for mnemonic, kw in body:
        if mnemonic == "ecalli":
            b.emit("ecalli", imm1=index[str(kw["name"])])
        else:
            b.emit(mnemonic, **kw)  # type: ignore[arg-type]
    b.emit("jump_indirect", ra="ra", imm1=0)
    b.label("deploy", export=True)
    b.emit("jump_indirect", ra="ra", imm1=0)
    return b.build().to_bytes()


def regs(**values: int) -> list[tuple[str, dict[str, object]]]:
    return [("load_imm", {"ra": r, "imm1": v}) for r, v in values.items()]


def seal_return(flags: int, ptr: int, length: int) -> list[tuple[str, dict[str, object]]]:
    return [*regs(a0=flags, a1=ptr, a2=length), ("ecalli", {"name": "seal_return"})]


# call: set_storage(0, KEY, SENTINEL, VALUE, 32) and return its a0 as 8 bytes
WRITER = assemble(["set_storage", "seal_return"], [
    *regs(a0=0, a1=RW, a2=-1, a3=RW + 0x20, a4=32), ("ecalli", {"name": "set_storage"}),
    ("store_u64", {"ra": "a0", "imm1": RW + 0x40}), *seal_return(0, RW + 0x40, 8)])

# call: get_storage(0, KEY, SENTINEL, RW+0x60, RW+0x48); return code, length, value
READER = assemble(["get_storage", "seal_return"], [
    *regs(a0=0, a1=RW, a2=-1, a3=RW + 0x60, a4=RW + 0x48), ("ecalli", {"name": "get_storage"}),
    ("store_u64", {"ra": "a0", "imm1": RW + 0x40}), *seal_return(0, RW + 0x40, 0x40)])


def test_the_runtime_implements_every_resolc_import() -> None:
    assert RESOLC_IMPORTS <= set(host_function_names())


def test_every_sample_blob_passes_upload_validation() -> None:
    rt = ReviveRuntime()
    for path in sorted(SAMPLES.glob("*.polkavm")):
        blob = path.read_bytes()
        assert rt.upload(blob) == keccak256(blob)


def test_upload_rejects_32_bit_code() -> None:
    blob = assemble(["seal_return"], [], isa=InstructionSet.LATEST32)
    with pytest.raises(CodeRejected, match="64-bit"):
        ReviveRuntime().upload(blob)


def test_upload_rejects_unknown_imports() -> None:
    program = ProgramBlob.from_bytes(COUNTER_BLOB.read_bytes())
    program.imports[0] = b"not_a_host_function"
    with pytest.raises(CodeRejected, match="not_a_host_function"):
        ReviveRuntime().upload(program.to_bytes())


def test_upload_rejects_sbrk() -> None:
    blob = assemble([], [("sbrk", {"ra": "a0", "rb": "a1"})])
    with pytest.raises(CodeRejected, match="sbrk"):
        ReviveRuntime().upload(blob)


def test_upload_rejects_the_reserved_ecalli() -> None:
    b = ProgramBuilder(InstructionSet.LATEST64)
    b.label("call", export=True)
    b.emit("ecalli", imm1=0xFFFFFFFF)
    b.emit("trap")
    with pytest.raises(CodeRejected, match="reserved"):
        ReviveRuntime().upload(b.build().to_bytes())


def test_upload_limits() -> None:
    blob = COUNTER_BLOB.read_bytes()
    with pytest.raises(CodeRejected, match="bytes"):
        ReviveRuntime(limits=Limits(blob_bytes=len(blob) - 1)).upload(blob)
    with pytest.raises(CodeRejected, match="basic block"):
        ReviveRuntime(limits=Limits(max_basic_block=3)).upload(blob)
    with pytest.raises(CodeRejected, match="static memory"):
        ReviveRuntime(limits=Limits(max_static_memory=4096)).upload(blob)
    with pytest.raises(CodeRejected, match="parse"):
        ReviveRuntime().upload(b"PVM\0garbage")


def test_create1_matches_ethereum() -> None:
    # the classic example: 0x6ac7...dbf0 deploys at nonces 0 and 1
    deployer = bytes.fromhex("6ac7ea33f8831ea9dcc53393aaa88b25a785dbf0")
    assert create1(deployer, 0).hex() == "cd234a471b72ba2f1ccf0a70fcaba648a5eecd8d"
    assert create1(deployer, 1).hex() == "343c43a37d37dff08ae8c4a11544c718abb4fcf8"
    assert create1(deployer, 2).hex() == "f778b86fa74e846c4f0a1fbd1335fe81c00a0c91"


def test_create2_hashes_code_and_input() -> None:
    deployer, salt = b"\x11" * 20, b"\x22" * 32
    expected = keccak256(b"\xff" + deployer + salt + keccak256(b"code" + b"input"))[12:]
    assert create2(deployer, b"code", b"input", salt) == expected
    assert create2(deployer, b"code", b"other", salt) != expected


def test_set_and_get_storage_conventions(chain: TestChain, alice: Account) -> None:
    writer = chain.runtime.instantiate(alice.address, WRITER)
    assert writer.success and writer.address is not None
    first = chain.runtime.call(alice.address, writer.address)
    assert first.success and first.data == SENTINEL.to_bytes(8, "little")  # no old value
    again = chain.runtime.call(alice.address, writer.address)
    assert again.data == (32).to_bytes(8, "little")  # the old value's length
    assert chain.state.storage(writer.address, StorageKey(KEY)) == VALUE
    assert chain.state.storage(writer.address, StorageKey(KEY, fixed=False)) is None

    reader = chain.runtime.instantiate(alice.address, READER)
    assert reader.address is not None
    absent = chain.runtime.call(alice.address, reader.address).data
    assert absent[:8] == (3).to_bytes(8, "little")  # KeyNotFound
    assert absent[8:12] == (32).to_bytes(4, "little") and absent[0x20:] == bytes(32)
    chain.state.set_storage(reader.address, StorageKey(KEY), b"abc")
    present = chain.runtime.call(alice.address, reader.address).data
    assert present[:8] == bytes(8)  # Success
    assert present[8:12] == (3).to_bytes(4, "little") and present[0x20:0x23] == b"abc"


def test_static_call_cannot_write(chain: TestChain, alice: Account) -> None:
    """Factory.callGet makes a STATICCALL (flags 0x18): the writer's set_storage fails
    with StateChangeDenied, the callee traps and the factory reverts."""
    factory = chain.deploy(FACTORY_BLOB, FACTORY_ABI, sender=alice)
    writer = chain.runtime.instantiate(alice.address, WRITER).address
    assert writer is not None
    receipt = factory.transact("callGet", writer, sender=alice, check=False)
    assert receipt.reverted
    assert chain.state.storage(writer, StorageKey(KEY)) is None
    # a normal call may write
    ok, ret = factory.call("lowLevel", writer, b"")
    assert ok and ret == SENTINEL.to_bytes(8, "little")


def test_seal_return_rejects_unknown_flags(chain: TestChain, alice: Account) -> None:
    bad = chain.runtime.instantiate(alice.address, assemble(["seal_return"],
                                                            seal_return(2, RW, 4)))
    assert bad.address is not None
    result = chain.runtime.call(alice.address, bad.address)
    assert not result.success and result.error == "InvalidCallFlags"
    revert = chain.runtime.instantiate(alice.address, assemble(["seal_return"],
                                                               seal_return(1, RW, 4)))
    assert revert.address is not None
    result = chain.runtime.call(alice.address, revert.address)
    assert result.reverted and result.data == KEY[:4]


def test_bad_guest_pointer_fails_the_frame(chain: TestChain, alice: Account) -> None:
    blob = assemble(["seal_return"], seal_return(0, 0x1000, 4))  # unmapped memory
    address = chain.runtime.instantiate(alice.address, blob).address
    assert address is not None
    result = chain.runtime.call(alice.address, address)
    assert result.error == "OutOfBounds"


def test_terminate_removes_the_contract_and_pays_out(chain: TestChain, alice: Account) -> None:
    blob = assemble(["terminate"], [*regs(a0=RW), ("ecalli", {"name": "terminate"}),
                                    ("trap", {})])
    beneficiary = KEY[:20]  # the 20 bytes at RW
    address = chain.runtime.instantiate(alice.address, blob, value=500).address
    assert address is not None and chain.balance(address) == 500
    chain.state.set_storage(address, StorageKey(KEY), b"v")
    result = chain.runtime.call(alice.address, address)
    assert result.success and result.data == b""
    assert chain.state.contract(address) is None
    assert chain.state.storage(address, StorageKey(KEY)) is None
    assert chain.balance(address) == 0 and chain.balance(beneficiary) == 500


def test_in_memory_state_snapshots_nest() -> None:
    s = InMemoryState()
    a = b"\x01" * 20
    s.set_balance(a, 5)
    outer = s.snapshot()
    s.set_balance(a, 6)
    s.set_storage(a, StorageKey(KEY), b"x")
    inner = s.snapshot()
    s.set_storage(a, StorageKey(KEY), None)
    s.set_transient(a, StorageKey(KEY), b"t")
    assert s.transient_size() == 33
    s.revert(inner)
    assert s.storage(a, StorageKey(KEY)) == b"x" and s.transient_size() == 0
    s.commit(s.snapshot())
    s.revert(outer)
    assert s.balance(a) == 5 and s.storage(a, StorageKey(KEY)) is None
    with pytest.raises(ValueError):
        s.revert(outer + 10)
