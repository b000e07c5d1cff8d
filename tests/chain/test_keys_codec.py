"""Accounts, storage keys and the SCALE codec against independent expectations."""

from __future__ import annotations

import random

import pytest

from chain_sim import storage_keys as K
from chain_sim.block import Header, Outcome, Receipt, decode_receipts, encode_receipts
from chain_sim.codec import CODEC
from chain_sim.extrinsic import (
    ContractCall,
    EthTransact,
    Extrinsic,
    Instantiate,
    InstantiateWithCode,
    InvalidTransaction,
    Transfer,
    UploadCode,
    sign,
)
from chain_sim.keys import (
    Account,
    account_id_of,
    fallback_account_id,
    is_eth_derived,
    ss58,
    to_address,
    verify,
)
from chain_sim.merkle import EMPTY_ROOT, MerkleIndex, leaf_hash, state_root
from chain_sim.state import decode_account, encode_account
from executor.revive.hashing import keccak256
from executor.revive.state import Event

# Published values for the well-known development account //Alice.
ALICE_SS58 = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
ALICE_PUBLIC = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
ALICE_H160 = "9621dde636de098b43efb0fa9b61facfe328f99d"   # pallet-revive mapping of Alice


def test_dev_account_matches_published_values(alice: Account) -> None:
    assert alice.ss58 == ALICE_SS58
    assert alice.account_id.hex() == ALICE_PUBLIC
    assert alice.address.hex() == ALICE_H160
    assert ss58(alice.account_id) == ALICE_SS58
    assert account_id_of(ALICE_SS58) == alice.account_id
    assert account_id_of("0x" + ALICE_PUBLIC) == alice.account_id


def test_address_mapping() -> None:
    addr = bytes(range(20))
    fallback = fallback_account_id(addr)
    assert fallback == addr + b"\xee" * 12 and is_eth_derived(fallback)
    assert to_address(fallback) == addr                      # eth-derived: truncation
    other = bytes(range(32))
    assert to_address(other) == keccak256(other)[12:]        # else: hashed
    with pytest.raises(ValueError):
        to_address(b"\x00" * 31)
    with pytest.raises(ValueError):
        account_id_of("not-an-address")


def test_signatures(alice: Account, bob: Account) -> None:
    sig = alice.sign(b"message")
    assert verify(alice.account_id, b"message", sig)
    assert not verify(bob.account_id, b"message", sig)
    assert not verify(alice.account_id, b"other", sig)
    assert not verify(alice.account_id, b"message", sig[:63] + bytes([sig[63] ^ 1]))
    assert not verify(alice.account_id, b"message", b"short")


def test_storage_keys_match_substrate() -> None:
    # twox128("System") and the System.Account prefix as every Substrate chain has them
    assert K.twox128(b"System").hex() == "26aa394eea5630e07c48ae0c9558cef7"
    assert K.ACCOUNT.hex() == ("26aa394eea5630e07c48ae0c9558cef7"
                               "b99d880ec681799c0cf30e8886371da9")
    key = K.account_key(bytes.fromhex(ALICE_PUBLIC))
    # Alice's System.Account key as published in Substrate documentation
    assert key.hex() == ("26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9"
                         "de1e86a9a8c739864cf3cc5ec2bea59fd43593c715fdd31c61141abd04a99fd6"
                         "822c8558854ccde39a5684e7a56da27d")
    a = bytes(20)
    assert K.contract_storage_key(a, bytes(32), True) != K.contract_storage_key(a, bytes(32),
                                                                                 False)
    assert K.prefix_end(b"\x01\xff") == b"\x02" and K.prefix_end(b"\xff\xff") is None


def test_account_info_fast_path_is_scale() -> None:
    for nonce, free in [(0, 0), (1, 10**24), (2**32 - 1, 2**128 - 1), (7, 12345)]:
        raw = encode_account(nonce, free)
        assert raw == CODEC.encode("SimAccountInfo", {"nonce": nonce, "free": free})
        assert decode_account(raw) == (nonce, free)


CALLS = [
    Transfer(bytes(range(32)), 10**20),
    UploadCode(b"\x01\x02" * 100, 5),
    Instantiate(bytes(32), b"ctor", 3, 10**9, 10**18, bytes([7]) * 32),
    Instantiate(bytes(32), b"", 0, 1, 0, None),
    InstantiateWithCode(b"PVM\x00", b"\xff" * 300, 1, 2, 3, None),
    ContractCall(bytes([9]) * 20, b"\xa9\x05\x9c\xbb" + bytes(64), 0, 2**64 - 1, 2**128 - 1),
]


@pytest.mark.parametrize("call", CALLS, ids=lambda c: type(c).__name__)
def test_extrinsic_round_trip(call: object, alice: Account) -> None:
    genesis = bytes([1]) * 32
    xt = sign(alice, call, 5, genesis_hash=genesis, tip=9)  # type: ignore[arg-type]
    raw = xt.encode()
    n = len(raw) - 2 if len(raw) - 2 >= 64 else len(raw) - 1     # compact length prefix
    assert raw[len(raw) - n] == 0x84
    back = Extrinsic.decode(raw)
    assert back == xt and back.verify(genesis)
    assert not back.verify(bytes(32))               # another chain


def test_mortal_era_round_trip(alice: Account) -> None:
    from chain_sim.extrinsic import era_birth, mortal_era

    for current in (0, 1, 63, 64, 1000, 123457):
        for period in (4, 64, 4096, 65536):
            era = mortal_era(current, period)
            got = era_birth(era, current)
            assert got is not None
            birth, p = got
            assert p == period and birth <= current < birth + period
    genesis, born = bytes([1]) * 32, bytes([2]) * 32
    era = mortal_era(10, 64)
    xt = sign(alice, Transfer(bytes(32), 1), 0, genesis_hash=genesis, era=era, era_hash=born)
    back = Extrinsic.decode(xt.encode())
    assert back.era == era and back.verify(genesis, born) and not back.verify(genesis, genesis)


def test_malformed_extrinsics_are_rejected(alice: Account) -> None:
    xt = sign(alice, ContractCall(bytes(20), b"abc"), 0, genesis_hash=bytes(32))
    raw = xt.encode()
    start = len(raw) - len(raw[2:]) if raw[0] & 3 == 1 else 1    # after the length prefix
    for n in range(len(raw)):
        with pytest.raises(InvalidTransaction):
            Extrinsic.decode(raw[:n])
    with pytest.raises(InvalidTransaction, match="trailing|Remaining|malformed"):
        Extrinsic.decode(raw + b"\x00")
    with pytest.raises(InvalidTransaction, match="version"):
        Extrinsic.decode(raw[:start] + b"\x05" + raw[start + 1:])
    bad_call = bytearray(raw)
    bad_call[start + 1 + 1 + 32 + 1 + 64 + 1 + 1 + 1] = 0x77   # a pallet index unknown
    with pytest.raises(InvalidTransaction, match="unknown call"):
        Extrinsic.decode(bytes(bad_call))


def test_header_and_receipts_round_trip() -> None:
    hd = Header(bytes([1]) * 32, 7, bytes([2]) * 32, bytes([3]) * 32, bytes([4]) * 32,
                1_700_000_006_000, 10**10, 12345, bytes([5]) * 32)
    assert Header.decode(hd.encode()) == hd
    receipts = [
        Receipt(Outcome.SUCCESS, 100, 2000, (Event(bytes(20), (bytes(32),), b"\x00\x01"),),
                None, b"\x01", 77, bytes([1]) * 20, bytes([2]) * 32),
        Receipt(Outcome.REVERTED, 5, 6, (), "x", b"", -40),
        Receipt(Outcome.FAILED, 0, 0, (), "OutOfGas"),
    ]
    assert decode_receipts(encode_receipts(receipts)) == receipts


def _naive_root(items: list[tuple[bytes, bytes]]) -> bytes:
    """A second, recursive implementation of the documented two-level tree."""
    from hashlib import blake2b

    def tree(nodes: list[bytes]) -> bytes:
        if len(nodes) == 1:
            return nodes[0]
        # pair up left to right; an odd last node moves up unchanged
        return tree([blake2b(b"\x01" + nodes[i] + nodes[i + 1], digest_size=32).digest()
                     if i + 1 < len(nodes) else nodes[i] for i in range(0, len(nodes), 2)])

    if not items:
        return blake2b(b"", digest_size=32).digest()
    leaves = [blake2b(b"\x00" + len(k).to_bytes(4, "little") + k
                      + blake2b(v, digest_size=32).digest(), digest_size=32).digest()
              for k, v in sorted(items)]
    chunks: list[list[bytes]] = [[]]
    for leaf in leaves:
        chunks[-1].append(leaf)
        if leaf[0] < 8:                  # a chunk ends after a leaf starting below 8
            chunks.append([])
    return tree([tree(c) for c in chunks if c])


@pytest.mark.slow
def test_merkle_index_matches_a_second_implementation() -> None:
    import random

    rng = random.Random(3)
    state: dict[bytes, bytes] = {}
    index = MerkleIndex()
    assert index.root() == EMPTY_ROOT == _naive_root([])
    for step in range(150):
        changes: dict[bytes, bytes | None] = {}
        for _ in range(rng.randrange(1, 12 if step % 10 else 400)):
            k = rng.randbytes(rng.randrange(1, 4))
            changes[k] = None if rng.random() < 0.3 else rng.randbytes(rng.randrange(0, 9))
        new = dict(state)
        for k, v in changes.items():
            if v is None:
                new.pop(k, None)
            else:
                new[k] = v
        want = _naive_root(list(new.items()))
        assert index.root(changes) == want                  # without keeping them
        index.apply(changes)
        state = new
        assert index.root() == want == state_root(state.items())
        if step % 25 == 0:
            assert MerkleIndex(state.items()).root() == want   # built from scratch
    assert len(state) > 300           # chunking was exercised
    assert leaf_hash(b"ab", b"c") != leaf_hash(b"a", b"bc")


# ---- the fast SCALE paths produce scalecodec's bytes ----

def _random_call(rng: random.Random) -> object:
    def big() -> int:
        return rng.choice([0, 1, 63, 64, 16383, 16384, 2**30 - 1, 2**30, 2**64 - 1,
                           rng.randrange(2**128)])

    def blob() -> bytes:
        return rng.randbytes(rng.choice([0, 1, 63, 64, 300, 17000]))

    kind = rng.randrange(6)
    salt = rng.choice([None, rng.randbytes(32)])
    if kind == 0:
        return Transfer(rng.randbytes(32), big(), rng.choice([False, True]))
    if kind == 5:
        return EthTransact(blob())
    if kind == 1:
        return UploadCode(blob(), big())
    if kind == 2:
        return Instantiate(rng.randbytes(32), blob(), big(), big() % 2**64, big(), salt,
                           big() % 2**64)
    if kind == 3:
        return InstantiateWithCode(blob(), blob(), big(), big() % 2**64, big(), salt,
                                   big() % 2**64)
    return ContractCall(rng.randbytes(20), blob(), big(), big() % 2**64, big(), big() % 2**64)


def test_fast_encoders_match_scalecodec() -> None:
    import random

    from chain_sim.extrinsic import call_to_scale, encode_call, signing_payload
    from chain_sim.state import CodeInfo, StoredContract

    rng = random.Random(7)
    for _ in range(150):
        call = _random_call(rng)
        assert encode_call(call) == CODEC.encode("SimCall", call_to_scale(call))  # type: ignore[arg-type]
        xt = Extrinsic(rng.randbytes(32), rng.randbytes(64), rng.randrange(2**32), call,  # type: ignore[arg-type]
                       rng.choice([0, 5, 2**100]))
        raw = xt.encode()
        inner = CODEC.encode("SimSignedExtrinsic", {
            "version": 0x84, "address_variant": 0, "signer": "0x" + xt.signer.hex(),
            "signature_variant": 1, "signature": "0x" + xt.signature.hex(), "era": 0,
            "nonce": xt.nonce, "tip": xt.tip, "call": call_to_scale(call)})  # type: ignore[arg-type]
        assert raw == CODEC.encode("Bytes", inner)      # the Vec<u8> envelope
        assert Extrinsic.decode(raw) == xt
        g = rng.randbytes(32)
        want = CODEC.encode("SimSigningPayload", {
            "call": call_to_scale(call), "era": 0, "nonce": xt.nonce,  # type: ignore[arg-type]
            "tip": xt.tip, "spec_version": 1, "transaction_version": 1,
            "genesis_hash": "0x" + g.hex(), "era_hash": "0x" + g.hex()})
        from chain_sim.storage_keys import blake2_256
        assert signing_payload(call, xt.nonce, xt.tip, g) == (  # type: ignore[arg-type]
            blake2_256(want) if len(want) > 256 else want)
        hd = Header(rng.randbytes(32), rng.randrange(2**32), rng.randbytes(32),
                    rng.randbytes(32), rng.randbytes(32), rng.randrange(2**64),
                    rng.randrange(2**64), rng.randrange(2**64), rng.randbytes(32))
        assert hd.encode() == CODEC.encode("SimHeader", hd.to_scale())
        rc = Receipt(rng.choice(list(Outcome)), rng.randrange(2**64), rng.randrange(2**128),
                     tuple(Event(rng.randbytes(20), tuple(rng.randbytes(32)
                                                          for _ in range(rng.randrange(5))),
                                 rng.randbytes(rng.randrange(100)))
                           for _ in range(rng.randrange(3))),
                     rng.choice([None, "", "OutOfGas", "Ünïcode"]), rng.randbytes(40),
                     rng.randrange(-2**100, 2**100), rng.choice([None, rng.randbytes(20)]),
                     rng.choice([None, rng.randbytes(32)]))
        assert rc.encode() == CODEC.encode("SimReceipt", rc.to_scale())
        assert decode_receipts(encode_receipts([rc, rc])) == [rc, rc]
        sc = StoredContract(rng.randbytes(32), rng.randrange(2**32), rng.randrange(2**64),
                            rng.randrange(2**128), rng.randbytes(rng.randrange(70)))
        assert sc.encode() == CODEC.encode("SimContractInfo", {
            "code_hash": "0x" + sc.code_hash.hex(), "storage_items": sc.storage_items,
            "storage_bytes": sc.storage_bytes, "deposit": sc.deposit,
            "immutable_data": "0x" + sc.immutable_data.hex()})
        assert StoredContract.decode(sc.encode()) == sc
        ci = CodeInfo(rng.randbytes(32), rng.randrange(2**128), rng.randrange(2**32))
        assert ci.encode() == CODEC.encode("SimCodeInfo", {
            "owner": "0x" + ci.owner.hex(), "deposit": ci.deposit, "code_len": ci.code_len})
        assert CodeInfo.decode(ci.encode()) == ci


def test_strict_decoding() -> None:
    from chain_sim.scale import Reader, ScaleError, compact

    for n in [0, 1, 63, 64, 16383, 16384, 2**30 - 1, 2**30, 2**32, 2**200]:
        r = Reader(compact(n), "x")
        assert r.compact("n") == n
        r.end()
    for bad in [b"\x01\x00", b"\x02\x00\x00\x00", b"\x03\xff\xff\xff\x3f", b"\x07" + bytes(5)]:
        with pytest.raises(ScaleError, match="non-canonical"):
            Reader(bad, "x").compact("n")
    with pytest.raises(ScaleError, match="trailing"):
        r = Reader(b"\x00\x00", "x")
        r.u8("a")
        r.end()
    with pytest.raises(ScaleError, match="cannot fit"):
        Reader(compact(1000) + b"\x00", "x").vec("v", lambda: b"")
    with pytest.raises(ScaleError, match="option tag"):
        Reader(b"\x02", "x").option("o", lambda: 1)
    hd = Header(bytes(32), 1, bytes(32), bytes(32), bytes(32), 0, 0, 0, bytes(32))
    for n in range(len(hd.encode())):
        with pytest.raises(ScaleError):
            Header.decode(hd.encode()[:n])
