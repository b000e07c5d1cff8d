"""Blocks, receipts, rejections, deposits, import and verification."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chain_sim import (
    Account,
    BlockError,
    Chain,
    ContractCall,
    GenesisConfig,
    InstantiateWithCode,
    Outcome,
    Transfer,
    UploadCode,
)
from chain_sim import storage_keys as K
from chain_sim.block import Block
from chain_sim.extrinsic import Extrinsic
from chain_sim.merkle import state_root
from chain_sim.workload import Contracts
from contracts.abi import encode


def _deploy_token(chain: Chain, alice: Account, contracts: Contracts,
                  supply: int = 10**6) -> bytes:
    ctor = encode(contracts.token_abi.constructor_inputs, ["Tok", "TK", supply])
    r = chain.build_block([chain.sign(alice, InstantiateWithCode(contracts.token_blob, ctor))])
    assert not r.rejected
    receipt = r.block.receipts[0]
    assert receipt.success, receipt.error
    assert receipt.contract is not None and receipt.storage_deposit > 0
    return receipt.contract


def _call(contracts: Contracts, name: str, *args: object) -> bytes:
    return contracts.token_abi.function(name).encode_call(list(args))


def _twin(genesis: GenesisConfig) -> Chain:
    return Chain.create(genesis, None, backend="interpreter")


def test_genesis_and_state_root(chain: Chain, alice: Account, bob: Account) -> None:
    assert chain.head_number == 0
    assert chain.balance(alice) == 10**24 and chain.nonce(alice) == 0
    assert chain.state_root == state_root(chain.db.items())   # the root covers all state


def test_transfer_fees_and_receipt(chain: Chain, alice: Account, bob: Account,
                                   charlie: Account) -> None:
    xt = chain.sign(alice, Transfer(charlie.account_id, 5 * 10**18), tip=7)
    r = chain.build_block([xt])
    (receipt,) = r.block.receipts
    fees = chain.fees
    assert receipt.outcome is Outcome.SUCCESS
    assert receipt.fee == fees.transfer_gas * fees.gas_price + len(xt.encode()) * fees.byte_fee + 7
    assert chain.balance(charlie) == 5 * 10**18
    assert chain.balance(alice) == 10**24 - 5 * 10**18 - receipt.fee
    assert chain.nonce(alice) == 1
    author = r.block.header.author
    assert chain.account(author)[1] == receipt.fee             # fees go to the author
    assert chain.state_root == state_root(chain.db.items())
    assert r.block.header.gas_used == fees.transfer_gas


@pytest.mark.parametrize("case", ["bad signature", "stale nonce", "future nonce",
                                  "insufficient balance", "malformed", "other chain"])
def test_invalid_transactions_change_nothing(case: str, genesis: GenesisConfig,
                                             alice: Account, bob: Account,
                                             charlie: Account) -> None:
    chain = _twin(genesis)
    chain.build_block([chain.sign(alice, Transfer(bob.account_id, 1))])   # nonce 1 now
    twin = _twin(genesis)
    twin.build_block(list(chain.block(1).extrinsics), timestamp=chain.head.timestamp)
    good = Transfer(charlie.account_id, 10)
    if case == "bad signature":
        signed = chain.sign(bob, good, nonce=1)
        raw = Extrinsic(alice.account_id, signed.signature, 1, good).encode()
    elif case == "stale nonce":
        raw = chain.sign(alice, good, nonce=0).encode()
    elif case == "future nonce":
        raw = chain.sign(alice, good, nonce=2).encode()
    elif case == "insufficient balance":
        raw = chain.sign(bob, Transfer(charlie.account_id, 10**20)).encode()  # + fee > balance
    elif case == "malformed":
        raw = chain.sign(alice, good).encode()[:-3]
    else:
        other = _twin(replace(genesis, chain_id=7))
        raw = other.sign(alice, good, nonce=1).encode()
    r = chain.build_block([raw])
    ((index, reason),) = r.rejected
    assert index == 0 and case.split()[-1] in reason or (
        case == "other chain" and "signature" in reason), reason
    assert r.block.extrinsics == [] and r.block.receipts == []
    # the block changed only what an empty block changes
    empty = twin.build_block([], timestamp=r.block.header.timestamp).block
    assert r.block.header.state_root == empty.header.state_root
    assert chain.nonce(alice) == 1 and chain.balance(charlie) == 0
    # and an imported block holding it is refused, the chain unchanged
    forged = Block(replace(r.block.header), [raw])
    with pytest.raises(BlockError, match="extrinsic 0"):
        twin_b = _twin(genesis)
        twin_b.import_block(chain.block(1))
        twin_b.import_block(forged)


def test_contract_receipts_events_and_reverts(chain: Chain, alice: Account, bob: Account,
                                              contracts: Contracts) -> None:
    token = _deploy_token(chain, alice, contracts)
    ok = chain.sign(alice, ContractCall(token, _call(contracts, "transfer", bob.address, 10)))
    too_much = chain.sign(bob, ContractCall(token, _call(contracts, "transfer",
                                                         alice.address, 11)))
    r = chain.build_block([ok, too_much])
    a, b = r.block.receipts
    assert a.outcome is Outcome.SUCCESS and a.gas_used > 0
    (ev,) = a.events
    decoded = contracts.token_abi.events[ev.topics[0]].decode(ev.topics, ev.data)
    assert ev.contract == token and decoded["value"] == 10
    assert b.outcome is Outcome.REVERTED and b.events == ()
    err = contracts.token_abi.decode_error(b.output)
    assert err is not None and err.name == "InsufficientBalance"
    assert chain.nonce(bob) == 1                         # a revert still uses the nonce
    assert r.block.header.gas_used == a.gas_used + b.gas_used
    bal = contracts.token_abi.function("balanceOf")
    q = chain.query(token, bal.encode_call([bob.address]))
    assert bal.decode_result(q.data) == 10
    assert chain.block(chain.head_number).receipts == r.block.receipts   # stored as built


def test_storage_deposit_limit(chain: Chain, alice: Account, bob: Account,
                               charlie: Account, contracts: Contracts) -> None:
    token = _deploy_token(chain, alice, contracts)
    data = _call(contracts, "transfer", charlie.address, 3)   # a new balance slot
    r = chain.build_block([chain.sign(alice, ContractCall(token, data,
                                                          storage_deposit_limit=1))])
    (receipt,) = r.block.receipts
    assert receipt.outcome is Outcome.FAILED
    assert receipt.error is not None and "StorageDepositLimitExhausted" in receipt.error
    bal = contracts.token_abi.function("balanceOf")
    assert bal.decode_result(chain.query(token, bal.encode_call([charlie.address])).data) == 0
    assert chain.nonce(alice) == 2 and receipt.fee > 0
    r = chain.build_block([chain.sign(alice, ContractCall(token, data))])
    (receipt,) = r.block.receipts
    assert receipt.success and receipt.storage_deposit > 0
    held = chain.contract(token)
    assert held is not None and held.deposit > 0
    # what the contract holds is the deposit for what it stores (Solidity: 32-byte keys)
    slots = list(chain.state.scan(K.contract_storage_prefix(token)))
    fees = chain.fees
    assert held.storage_items == len(slots)
    assert held.storage_bytes == sum(32 + len(v) for _, v in slots)
    assert held.deposit == (fees.contract_base_deposit + len(slots) * fees.deposit_per_item
                            + held.storage_bytes * fees.deposit_per_byte)


def test_upload_and_bad_code(chain: Chain, alice: Account, contracts: Contracts) -> None:
    r = chain.build_block([chain.sign(alice, UploadCode(contracts.child_blob, 10**18)),
                           chain.sign(alice, UploadCode(b"not a blob", 10**18), nonce=1)])
    good, bad = r.block.receipts
    assert good.success and good.code_hash is not None and good.storage_deposit > 0
    assert chain.state.code(good.code_hash) == contracts.child_blob
    assert bad.outcome is Outcome.FAILED and "CodeRejected" in (bad.error or "")
    assert chain.nonce(alice) == 2


def test_import_rejects_tampered_blocks(genesis: GenesisConfig, alice: Account,
                                        bob: Account) -> None:
    src = _twin(genesis)
    for i in range(3):
        src.build_block([src.sign(alice, Transfer(bob.account_id, 10 + i))])
    dst = _twin(genesis)
    dst.import_block(src.block(1))
    b2 = src.block(2)
    before = dst.state_root
    for bad, what in [
        (Block(replace(b2.header, state_root=bytes(32)), b2.extrinsics), "state_root"),
        (Block(replace(b2.header, gas_used=1), b2.extrinsics), "gas_used"),
        (Block(b2.header, src.block(3).extrinsics), "nonce"),
        (Block(replace(b2.header, parent_hash=bytes(32)), b2.extrinsics), "parent hash"),
        (src.block(3), "does not follow"),
        (Block(replace(b2.header, timestamp=0), b2.extrinsics), "timestamp"),
    ]:
        with pytest.raises(BlockError, match=what):
            dst.import_block(bad)
        assert dst.head_number == 1 and dst.state_root == before
    dst.import_block(b2)
    dst.import_block(src.block(3))
    assert dst.head == src.head


def test_verify_rebuilds_older_state(genesis: GenesisConfig, alice: Account, bob: Account,
                                     contracts: Contracts) -> None:
    chain = _twin(genesis)
    token = _deploy_token(chain, alice, contracts)
    for i in range(4):
        chain.build_block([chain.sign(alice, ContractCall(
            token, _call(contracts, "transfer", bob.address, i + 1)))])
    assert chain.verify() == 5
    assert chain.verify(3, 4) == 2
    # a corrupted stored receipt root is caught
    stored = chain.db.block(4)
    assert stored is not None
    with pytest.raises(BlockError):
        broken = Block(replace(chain.header(4), receipts_root=bytes(32)),
                       chain.block(4).extrinsics)
        other = Chain(chain._state_at(3), backend="interpreter")
        other.import_block(broken)
