"""The chain: genesis, block building, import, verification and replay.

::

    from chain_sim import Chain, GenesisConfig, Account, ContractCall, sign

    alice = Account.dev("alice")
    chain = Chain.create(GenesisConfig(endowed=((alice.account_id, 10**24),)),
                         path="chain.db", backend="jit")
    xt = chain.sign(alice, ContractCall(dest=token, data=calldata))
    result = chain.build_block([xt.encode()])
    result.block.header.state_root, result.block.receipts, result.rejected

A block runs its extrinsics in order through :class:`executor.revive.ReviveRuntime`
(so on the interpreter, the in-process JIT or sandboxed JIT workers) against
:class:`~chain_sim.state.ChainState`.  Each extrinsic is first checked -- it decodes,
the signature verifies, the nonce is the signer's next one, its gas limit fits what is
left of the block's gas, and the signer can pay the largest fee plus the value it
sends.  A transaction failing a check is *invalid*: the block builder leaves it out
(reporting why), an imported block containing one is rejected, and no state changes.
A valid transaction is included whatever its outcome (success, revert, failure); it
bumps the signer's nonce and pays its fee (gas used times the gas price, a per-byte
length fee and the tip) to the block author.

Storage deposits: a transaction that makes contracts or code use more storage pays a
deposit (per item and per byte, :class:`Fees`) that the contract (or the code) holds;
storage freed later is refunded to the origin of the transaction that freed it.  A
transaction whose deposit exceeds its ``storage_deposit_limit`` (or the signer's
balance) fails with ``StorageDepositLimitExhausted`` (``StorageDepositNotEnoughFunds``)
and its effects are reverted, except the nonce and fee.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chain_sim import scale as S
from chain_sim import storage_keys as K
from chain_sim.block import (
    Block,
    Header,
    Outcome,
    Receipt,
    decode_body,
    decode_receipts,
    encode_body,
    encode_receipts,
    extrinsics_root,
    receipts_root,
)
from chain_sim.db import ChainDB, MemoryDB, SqliteDB, StoredBlock
from chain_sim.extrinsic import (
    Call,
    ContractCall,
    DevCall,
    DevDispatchAs,
    DevSetBalance,
    DevSetCode,
    DevSetNonce,
    EthTransact,
    Extrinsic,
    InstantiateWithCode,
    InvalidTransaction,
    Transfer,
    Unsigned,
    UploadCode,
    decode_extrinsic,
    era_birth,
    read_call,
    sign,
)
from chain_sim.keys import Account, to_address
from chain_sim.state import ChainState, CodeInfo, StoredContract
from executor.errors import PvmError
from executor.linker import HostLayer
from executor.revive import ExecResult, ReviveRuntime
from executor.revive.errors import CodeRejected, ReviveError
from executor.revive.state import BlockContext, StorageKey


class ChainError(RuntimeError):
    """A chain-level failure (no genesis, unknown block, ...)."""


class BlockError(ChainError):
    """An imported block that does not check out; the chain is unchanged."""


@dataclass(frozen=True)
class Fees:
    """Prices, in balance units."""

    gas_price: int = 1                   # per unit of gas used
    byte_fee: int = 10                   # per byte of the encoded extrinsic
    transfer_gas: int = 100_000          # gas a balance transfer uses
    upload_gas_base: int = 500_000       # gas of an upload_code, plus per byte:
    upload_gas_per_byte: int = 50
    deposit_per_item: int = 2_000        # storage deposit per stored item
    deposit_per_byte: int = 10           # and per stored byte (keys and values)
    contract_base_deposit: int = 10_000  # held by every contract for its info


@dataclass(frozen=True)
class GenesisConfig:
    """What block 0 contains.  ``endowed``: ``(account id, balance)`` pairs."""

    endowed: tuple[tuple[bytes, int], ...] = ()
    chain_id: int = 420_420_420
    timestamp: int = 1_700_000_000_000      # milliseconds
    block_time: int = 6_000                 # milliseconds between blocks
    block_gas_limit: int = 50_000_000_000
    fees: Fees = field(default_factory=Fees)
    dev: bool = False    # accepts the Dev pallet's unsigned calls (a dev node's chain)
    # pallet-revive's NativeToEthRatio: one native unit is this many wei (18-decimal
    # Ethereum value); fees and balances are native, contract values Ethereum
    native_to_eth_ratio: int = 1

    def to_json(self) -> bytes:
        d = asdict(self)
        d["endowed"] = [[a.hex(), b] for a, b in self.endowed]
        return json.dumps(d, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> GenesisConfig:
        d = json.loads(raw)
        d["endowed"] = tuple((bytes.fromhex(a), int(b)) for a, b in d["endowed"])
        d["fees"] = Fees(**d["fees"])
        return cls(**d)


@dataclass(frozen=True)
class BuildResult:
    """A built block and the transactions left out (``(index, reason)``)."""

    block: Block
    rejected: tuple[tuple[int, str], ...] = ()


def _open_db(path: str | Path | None, create: bool) -> ChainDB:
    return MemoryDB() if path is None else SqliteDB(path, create=create)


class Chain:
    """A chain over a database; executes with ``backend``/``sandbox`` as
    :class:`executor.revive.ReviveRuntime` takes them."""

    def __init__(self, db: ChainDB, *, backend: str = "jit", sandbox: str | None = "auto",
                 block_hashes: Callable[[int], bytes | None] | None = None) -> None:
        self.db = db
        raw = db.meta("genesis")
        if raw is None or db.head() is None:
            raise ChainError("the database has no genesis block (run 'chain init')")
        self.genesis = GenesisConfig.from_json(raw)
        self.fees = self.genesis.fees
        self.ratio = self.genesis.native_to_eth_ratio
        g = db.block(0)
        assert g is not None
        self.genesis_hash = g.hash
        self.state = ChainState(db, block_hash=block_hashes or self._block_hash,
                                ratio=self.ratio)
        self.runtime = ReviveRuntime(self.state, backend=backend, sandbox=sandbox)
        self.strict_build = False
        # the head's number and decoded header (set by each commit, dropped by a rewind)
        self._head: tuple[int, Header] | None = None
        self._addresses: dict[bytes, bytes] = {}      # block author -> its address
        self._check_head()

    # ---- opening ----
    @classmethod
    def create(cls, genesis: GenesisConfig, path: str | Path | None = None, *,
               backend: str = "jit", sandbox: str | None = "auto") -> Chain:
        """A new chain (in memory when ``path`` is ``None``); fails if one exists there."""
        db = _open_db(path, True)
        if db.head() is not None:
            db.close()
            raise ChainError(f"a chain already exists at {path}")
        write_genesis(db, genesis)
        return cls(db, backend=backend, sandbox=sandbox)

    @classmethod
    def open(cls, path: str | Path, *, backend: str = "jit",
             sandbox: str | None = "auto") -> Chain:
        return cls(_open_db(path, False), backend=backend, sandbox=sandbox)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_head(self) -> None:
        """The committed state must hash to the head's state root."""
        head = self.head
        root = self.db.index.root()
        if root != head.state_root:
            raise ChainError(f"the state does not match block {head.number}: root "
                             f"0x{root.hex()} != 0x{head.state_root.hex()}")

    # ---- reading ----
    @property
    def head_number(self) -> int:
        n = self.db.head()
        assert n is not None
        return n

    def value_at(self, key: bytes, number: int) -> bytes | None:
        """A storage value as of block ``number`` (the undo records walked back
        from the head)."""
        value = self.db.get(key)
        for n in range(self.head_number, number, -1):
            undo = self.db.undo(n)
            if key in undo:
                value = undo[key]
        return value

    @property
    def head(self) -> Header:
        number = self.head_number
        cached = self._head
        if cached is not None and cached[0] == number:
            return cached[1]
        header = self.header(number)
        self._head = (number, header)
        return header

    def header(self, number: int) -> Header:
        stored = self.db.block(number)
        if stored is None:
            raise ChainError(f"no block {number} (head is {self.db.head()})")
        return Header.decode(stored.header)

    def block(self, number: int) -> Block:
        stored = self.db.block(number)
        if stored is None:
            raise ChainError(f"no block {number} (head is {self.db.head()})")
        return Block(Header.decode(stored.header), decode_body(stored.body),
                     decode_receipts(stored.receipts))

    def _block_hash(self, number: int) -> bytes | None:
        stored = self.db.block(number)
        return None if stored is None else stored.hash

    @property
    def state_root(self) -> bytes:
        return self.head.state_root

    def account(self, account_id: bytes) -> tuple[int, int]:
        """``(nonce, free balance)`` of an account id (committed state)."""
        return self.state.account_info(account_id)

    def nonce(self, account: Account | bytes) -> int:
        return self.account(_account_id(account))[0]

    def balance(self, account: Account | bytes) -> int:
        """The native free balance."""
        return self.account(_account_id(account))[1]

    def evm_balance(self, account: Account | bytes) -> int:
        """The Ethereum balance (wei): ``free * native_to_eth_ratio + dust``."""
        return self.state.evm_balance(_account_id(account))

    def contract(self, address: bytes) -> StoredContract | None:
        return self.state.stored_contract(address)

    def query(self, dest: bytes, data: bytes, *, origin: bytes = bytes(20),
              gas_limit: int | None = None) -> ExecResult:
        """A dry-run contract call on the committed state (nothing is kept)."""
        state = self._enter_next_block()
        try:
            return self.runtime.call(origin, dest, data, bump_nonce=False,
                                     gas_limit=gas_limit or self.genesis.block_gas_limit)
        finally:
            state.reset()

    def _enter_next_block(self) -> ChainState:
        """The committed state, set up as the block after the head (for dry runs;
        the caller resets it)."""
        state = self.state
        if state.overlay:
            raise ChainError("a block is being built")
        head = self.head
        state.set_block(self._context(head.number + 1, head.timestamp + self.genesis.block_time,
                                      head.author))
        return state

    def dry_run(self, origin: bytes, dest: bytes | None, data: bytes, *, value: int = 0,
                gas_limit: int | None = None, layers: Sequence[HostLayer] = ()) -> ExecResult:
        """A dry run on the committed state of a call (``dest``: 20 bytes; ``value``
        in wei, the Ethereum value) or, with
        ``dest`` ``None``, of a deployment (``data``: the code hash's blob followed by
        the constructor input, see :func:`chain_sim.ethtx.split_code`); nothing is
        kept, the origin's nonce included.  ``layers``: host-call layers over every
        frame of the run (a :class:`~executor.revive.trace.CallTracer`, say)."""
        state = self._enter_next_block()
        gas = gas_limit or self.genesis.block_gas_limit
        try:
            with self.runtime.with_layers(*layers):
                return self._dry_run(origin, dest, data, value, gas)
        finally:
            state.reset()

    def _dry_run(self, origin: bytes, dest: bytes | None, data: bytes, value: int,
                 gas: int) -> ExecResult:
        if dest is not None:
            return self.runtime.call(origin, dest, data, value=value, bump_nonce=False,
                                     gas_limit=gas)
        from chain_sim.ethtx import split_code

        code, ctor = split_code(data)
        return self.runtime.instantiate(origin, code, data=ctor, value=value,
                                        bump_nonce=False, gas_limit=gas)

    # ---- signing helper ----
    def sign(self, account: Account, call: Call, *, nonce: int | None = None,
             tip: int = 0) -> Extrinsic:
        """``call`` signed for this chain (``nonce``: the account's next by default)."""
        n = self.nonce(account) if nonce is None else nonce
        return sign(account, call, n, genesis_hash=self.genesis_hash, tip=tip)

    # ---- blocks ----
    def _context(self, number: int, timestamp: int, author: bytes) -> BlockContext:
        address = self._addresses.get(author)
        if address is None:
            address = self._addresses[author] = to_address(author)
        return BlockContext(number=number, timestamp=timestamp // 1000,
                            chain_id=self.genesis.chain_id, author=address,
                            gas_limit=self.genesis.block_gas_limit,
                            gas_price=self.fees.gas_price * self.ratio)

    def build_block(self, extrinsics: Iterable[bytes | Extrinsic | Unsigned], *,
                    timestamp: int | None = None, author: bytes | None = None,
                    strict: bool | None = None) -> BuildResult:
        """Executes the valid ``extrinsics`` in order into the next block and commits
        it; invalid ones are left out and reported.  ``strict`` (default
        :attr:`strict_build`): an invalid one raises :class:`InvalidTransaction` instead
        and nothing is committed (a dev node mining each transaction on its own)."""
        raw = [x.encode() if isinstance(x, Extrinsic | Unsigned) else bytes(x)
               for x in extrinsics]
        parent = self.head
        ts = parent.timestamp + self.genesis.block_time if timestamp is None else timestamp
        who = parent.author if author is None else author
        strict = self.strict_build if strict is None else strict
        included, receipts, rejected, gas = self._execute(parent, raw, ts, who, strict=strict)
        block = self._seal(parent, included, receipts, ts, who, gas)
        return BuildResult(block, tuple(rejected))

    def import_block(self, block: Block) -> None:
        """Re-executes ``block`` on the head and commits it if everything matches."""
        parent = self.head
        hd = block.header
        if hd.number != parent.number + 1:
            raise BlockError(f"block {hd.number} does not follow head {parent.number}")
        if hd.parent_hash != parent.hash:
            raise BlockError(f"block {hd.number}: parent hash 0x{hd.parent_hash.hex()} is not "
                             f"the head's 0x{parent.hash.hex()}")
        if hd.gas_limit != self.genesis.block_gas_limit:
            raise BlockError(f"block {hd.number}: gas limit {hd.gas_limit} != "
                             f"{self.genesis.block_gas_limit}")
        try:
            _, receipts, _, gas = self._execute(parent, list(block.extrinsics),
                                                hd.timestamp, hd.author, strict=True)
        except InvalidTransaction as exc:
            raise BlockError(f"block {hd.number}: {exc}") from None
        self._seal(parent, list(block.extrinsics), receipts, hd.timestamp, hd.author, gas,
                   expect=hd)

    def _execute(self, parent: Header, extrinsics: list[bytes], timestamp: int,
                 author: bytes, *, strict: bool
                 ) -> tuple[list[bytes], list[Receipt], list[tuple[int, str]], int]:
        if timestamp <= parent.timestamp:
            raise BlockError(f"block {parent.number + 1}: timestamp {timestamp} is not after "
                             f"the parent's {parent.timestamp}")
        if len(author) != 32:
            raise BlockError("a block author is a 32-byte account id")
        state = self.state
        state.reset()
        number = parent.number + 1
        state.set_block(self._context(number, timestamp, author))
        state.put(K.NUMBER, number.to_bytes(4, "little"))
        state.put(K.NOW, timestamp.to_bytes(8, "little"))
        included: list[bytes] = []
        receipts: list[Receipt] = []
        rejected: list[tuple[int, str]] = []
        gas_used = 0
        try:
            for i, raw in enumerate(extrinsics):
                try:
                    receipt = self._apply(raw, self.genesis.block_gas_limit - gas_used, author)
                except InvalidTransaction as exc:
                    if strict:
                        raise InvalidTransaction(exc.reason, i) from None
                    rejected.append((i, exc.reason))
                    continue
                included.append(raw)
                receipts.append(receipt)
                gas_used += receipt.gas_used
        except BaseException:
            state.reset()
            raise
        return included, receipts, rejected, gas_used

    def _seal(self, parent: Header, extrinsics: list[bytes], receipts: list[Receipt],
              timestamp: int, author: bytes, gas_used: int,
              expect: Header | None = None) -> Block:
        state = self.state
        try:
            changes, undo = state.changes()
            header = Header(parent.hash, parent.number + 1, self.db.index.root(changes),
                            extrinsics_root(extrinsics), receipts_root(receipts), timestamp,
                            self.genesis.block_gas_limit, gas_used, author)
            if expect is not None and header != expect:
                diffs = [f"{name} 0x{_hex(getattr(expect, name))} != computed "
                         f"0x{_hex(getattr(header, name))}"
                         for name in ("state_root", "extrinsics_root", "receipts_root",
                                      "gas_used") if getattr(expect, name) != getattr(header, name)]
                raise BlockError(f"block {header.number} does not verify: " + "; ".join(diffs))
            stored = StoredBlock(header.number, header.hash, header.encode(),
                                 encode_body(extrinsics), encode_receipts(receipts))
            self.db.commit_block(stored, changes, undo)
            self._head = (header.number, header)
        finally:
            state.reset()
        return Block(header, extrinsics, receipts)

    # ---- one extrinsic ----
    def _apply(self, raw: bytes, gas_left: int, author: bytes) -> Receipt:
        fees = self.fees
        state = self.state
        xt = decode_extrinsic(raw)
        if isinstance(xt, Unsigned):
            if isinstance(xt.call, DevCall):
                return self._apply_dev(xt.call, raw, gas_left, author)
            if not isinstance(xt.call, EthTransact):
                raise InvalidTransaction("only Revive.eth_transact may be unsigned")
            return self._apply_eth(xt.call.payload, raw, gas_left, author)
        if isinstance(xt.call, DevCall):
            raise InvalidTransaction("the Dev pallet's calls are unsigned")
        if isinstance(xt.call, EthTransact):
            raise InvalidTransaction("Revive.eth_transact must be unsigned (the payload "
                                     "carries its own signature)")
        era_hash = self._era_hash(xt.era)
        if not xt.verify(self.genesis_hash, era_hash):
            raise InvalidTransaction("bad signature (the signer did not sign this "
                                     "transaction for this chain)")
        signer = xt.signer
        nonce, free = state.account_info(signer)
        if xt.nonce < nonce:
            raise InvalidTransaction(f"stale nonce {xt.nonce} (the account's next is {nonce})")
        if xt.nonce > nonce:
            raise InvalidTransaction(f"future nonce {xt.nonce} (the account's next is {nonce})")
        call = xt.call
        gas_limit, value = _gas_and_value(call, fees)
        if gas_limit > gas_left:
            raise InvalidTransaction(f"gas limit {gas_limit} exceeds what is left of the "
                                     f"block's gas ({gas_left})")
        length_fee = len(raw) * fees.byte_fee
        max_fee = gas_limit * fees.gas_price + length_fee + xt.tip
        if free < max_fee + value:
            raise InvalidTransaction(f"insufficient balance: {free} < {max_fee + value} "
                                     f"(fee up to {max_fee}, value {value})")
        return self._charge_and_dispatch(call, signer, nonce, free, max_fee, length_fee,
                                         xt.tip, author)

    def _era_hash(self, era: bytes) -> bytes | None:
        """The birth block's hash of a mortal era (``None``: immortal); raises
        :class:`InvalidTransaction` if the transaction is outdated or not yet born."""
        number = self.state.block.number
        got = era_birth(era, number)
        if got is None:
            return None
        birth, period = got
        if birth >= number or number >= birth + period:
            raise InvalidTransaction(f"transaction outdated: era born at block {birth} "
                                     f"(period {period}) is not valid at block {number}")
        h = self._block_hash(birth)
        if h is None:
            raise InvalidTransaction(f"era birth block {birth} is unknown")
        return h

    def _apply_eth(self, payload: bytes, raw: bytes, gas_left: int,
                   author: bytes) -> Receipt:
        """``Revive.eth_transact``: checks as geth does, with geth's messages."""
        from chain_sim.ethtx import EthTxError, decode_eth_tx  # the [node] extra

        fees = self.fees
        state = self.state
        try:
            tx = decode_eth_tx(payload)
        except EthTxError as exc:
            raise InvalidTransaction(f"invalid transaction: {exc}") from None
        if tx.chain_id is not None and tx.chain_id != self.genesis.chain_id:
            raise InvalidTransaction(f"invalid chain id for signer: have {tx.chain_id} "
                                     f"want {self.genesis.chain_id}")
        signer = state.account_id(tx.sender)
        nonce, free = state.account_info(signer)
        if tx.nonce < nonce:
            raise InvalidTransaction(f"nonce too low: next nonce {nonce}, tx nonce {tx.nonce}")
        if tx.nonce > nonce:
            raise InvalidTransaction(f"nonce too high: next nonce {nonce}, "
                                     f"tx nonce {tx.nonce}")
        ratio = self.ratio
        if tx.gas_price < fees.gas_price * ratio:
            raise InvalidTransaction(f"max fee per gas less than block base fee: "
                                     f"maxFeePerGas: {tx.gas_price}, "
                                     f"baseFee: {fees.gas_price * ratio}")
        if tx.gas > gas_left:
            raise InvalidTransaction(f"exceeds block gas limit: gas {tx.gas}, "
                                     f"left {gas_left}")
        length_fee = len(raw) * fees.byte_fee
        max_fee = tx.gas * fees.gas_price + length_fee
        have = state.evm_balance(signer)        # wei, as geth reports it
        if have < max_fee * ratio + tx.value:
            raise InvalidTransaction(f"insufficient funds for gas * price + value: "
                                     f"balance {have}, tx cost {max_fee * ratio + tx.value}")
        call: Call
        if tx.to is None:
            try:
                code, ctor = tx.split_deploy()
            except EthTxError as exc:
                raise InvalidTransaction(f"invalid transaction: {exc}") from None
            call = InstantiateWithCode(code, ctor, tx.value // ratio, tx.gas, _U128)
        else:
            call = ContractCall(tx.to, tx.data, tx.value // ratio, tx.gas, _U128)
        return self._charge_and_dispatch(call, signer, nonce, free, max_fee, length_fee, 0,
                                         author, evm_value=tx.value)

    def _apply_dev(self, call: DevCall, raw: bytes, gas_left: int, author: bytes) -> Receipt:
        """The Dev pallet (a dev node's chain only): state set directly, or a call
        dispatched as an account without its signature."""
        if not self.genesis.dev:
            raise InvalidTransaction("the Dev pallet is only available on dev chains")
        state = self.state
        if isinstance(call, DevDispatchAs):
            try:
                inner = read_call(S.Reader(call.call, "dispatched call"))
            except S.ScaleError as exc:
                raise InvalidTransaction(str(exc)) from None
            if isinstance(inner, DevCall | EthTransact):
                raise InvalidTransaction("Dev.dispatch_as takes a Balances or Revive call")
            fees = self.fees
            nonce, free = state.account_info(call.who)
            if call.nonce != nonce:
                raise InvalidTransaction(f"{'stale' if call.nonce < nonce else 'future'} nonce "
                                         f"{call.nonce} (the account's next is {nonce})")
            gas_limit, value = _gas_and_value(inner, fees)
            if gas_limit > gas_left:
                raise InvalidTransaction(f"gas limit {gas_limit} exceeds what is left of the "
                                         f"block's gas ({gas_left})")
            if call.dust >= self.ratio or (call.dust and isinstance(inner, UploadCode)):
                raise InvalidTransaction(f"dust {call.dust} is not below the ratio "
                                         f"{self.ratio} (or the call sends no value)")
            length_fee = len(raw) * fees.byte_fee
            max_fee = gas_limit * fees.gas_price + length_fee
            evm_value = value * self.ratio + call.dust
            have = state.evm_balance(call.who)
            if have < max_fee * self.ratio + evm_value:
                raise InvalidTransaction(f"insufficient balance: {have} < "
                                         f"{max_fee * self.ratio + evm_value} wei (fee up to "
                                         f"{max_fee}, value {evm_value} wei)")
            return self._charge_and_dispatch(inner, call.who, nonce, free, max_fee,
                                             length_fee, 0, author, evm_value=evm_value)
        snap = state.snapshot()      # a setter that fails half-way changes nothing
        try:
            if isinstance(call, DevSetBalance):
                state.set_account_info(call.who, state.account_info(call.who)[0], call.free)
                state.set_dust(to_address(call.who), call.dust)
            elif isinstance(call, DevSetNonce):
                state.set_account_info(call.who, call.nonce, state.account_info(call.who)[1])
            elif isinstance(call, DevSetCode):
                code_hash = self.runtime.upload(call.code)
                old = state.stored_contract(call.address)
                state.set_stored_contract(call.address, StoredContract(
                    code_hash, old.storage_items if old else 0, old.storage_bytes if old else 0,
                    old.deposit if old else 0, old.immutable_data if old else b""))
                state.new_code.clear()
            else:
                slot = None if not any(call.value) else call.value
                state.set_storage(call.address, StorageKey(call.key, True), slot)
                state.usage.clear()
        except (ValueError, CodeRejected, ReviveError, PvmError) as exc:
            state.revert(snap)
            raise InvalidTransaction(f"{type(call).__name__}: {exc}") from None
        return Receipt(Outcome.SUCCESS, 0, 0)

    def _charge_and_dispatch(self, call: Call, signer: bytes, nonce: int, free: int,
                             max_fee: int, length_fee: int, tip: int,
                             author: bytes, evm_value: int | None = None) -> Receipt:
        """Charges the largest fee (native), dispatches, refunds what was not used.
        ``evm_value``: the value in wei (default: the call's native value times the
        ratio)."""
        # valid: from here on the transaction is included
        fees = self.fees
        state = self.state
        origin = to_address(signer)
        state.map_account(signer, origin)
        state.set_account_info(signer, nonce, free - max_fee)
        receipt = self._dispatch(call, signer, origin, nonce, evm_value)
        actual = receipt.gas_used * fees.gas_price + length_fee + tip
        _, now_free = state.account_info(signer)
        state.set_account_info(signer, state.account_info(signer)[0], now_free + max_fee - actual)
        a_nonce, a_free = state.account_info(author)
        state.set_account_info(author, a_nonce, a_free + actual)
        return Receipt(receipt.outcome, receipt.gas_used, actual, receipt.events, receipt.error,
                       receipt.output, receipt.storage_deposit, receipt.contract,
                       receipt.code_hash)

    def _dispatch(self, call: Call, signer: bytes, origin: bytes, nonce: int,
                  evm_value: int | None = None) -> Receipt:
        state = self.state
        rt = self.runtime
        fees = self.fees
        value = 0 if isinstance(call, UploadCode | EthTransact | DevCall) else (
            call.value * self.ratio if evm_value is None else evm_value)
        snap = state.snapshot()
        state.code_uploader = signer

        def bump() -> None:
            state.set_account_info(signer, nonce + 1, state.account_info(signer)[1])

        if isinstance(call, Transfer):
            bump()
            dest = to_address(call.dest)
            state.map_account(call.dest, dest)
            if not rt.transfer(origin, dest, value):
                state.revert(snap)
                bump()
                return Receipt(Outcome.FAILED, fees.transfer_gas, 0, error="TransferFailed")
            return Receipt(Outcome.SUCCESS, fees.transfer_gas, 0)

        if isinstance(call, UploadCode):
            bump()
            gas = fees.upload_gas_base + fees.upload_gas_per_byte * len(call.code)
            try:
                uploaded = rt.upload(call.code)
            except (CodeRejected, ReviveError, PvmError) as exc:
                state.revert(snap)
                bump()
                return Receipt(Outcome.FAILED, gas, 0, error=f"CodeRejected: {exc}")
            failure, deposit = self._settle_deposits(signer, call.storage_deposit_limit, snap,
                                                     bump)
            if failure is not None:
                return Receipt(Outcome.FAILED, gas, 0, error=failure)
            return Receipt(Outcome.SUCCESS, gas, 0, code_hash=uploaded,
                           storage_deposit=deposit)

        if isinstance(call, EthTransact | DevCall):
            raise InvalidTransaction(f"{type(call).__name__} is not dispatched here")
        code_hash: bytes | None = None
        try:
            if isinstance(call, ContractCall):
                result = rt.call(origin, call.dest, call.data, value=value,
                                 gas_limit=call.gas_limit, bump_nonce=True)
            else:
                if isinstance(call, InstantiateWithCode):
                    code_hash = rt.upload(call.code)
                else:
                    code_hash = call.code_hash
                result = rt.instantiate(origin, code_hash=code_hash, data=call.data,
                                        value=value, salt=call.salt,
                                        gas_limit=call.gas_limit, bump_nonce=True)
        except (CodeRejected, ReviveError, PvmError) as exc:
            state.revert(snap)
            bump()
            return Receipt(Outcome.FAILED, 0, 0, error=f"{type(exc).__name__}: {exc}")
        gas = result.gas_used
        if not result.success:
            outcome = Outcome.REVERTED if result.reverted else Outcome.FAILED
            return Receipt(outcome, gas, 0, error=result.error, output=result.data)
        limit = call.storage_deposit_limit
        failure, deposit = self._settle_deposits(signer, limit, snap, bump)
        if failure is not None:
            return Receipt(Outcome.FAILED, gas, 0, error=failure)
        return Receipt(Outcome.SUCCESS, gas, 0, result.events, None, result.data,
                       deposit,
                       result.address if not isinstance(call, ContractCall) else None,
                       code_hash)

    def _settle_deposits(self, payer: bytes, limit: int, snap: int,
                         bump: Callable[[], None]) -> tuple[str | None, int]:
        """Charges (or refunds) the storage deposits of this transaction; returns
        ``(None, net deposit charged)``, or on failure reverts to ``snap`` (re-applying
        the nonce bump) and returns ``(error, 0)``."""
        fees = self.fees
        state = self.state
        charge = 0
        refund = 0
        updates: list[tuple[bytes, StoredContract]] = []
        for address, (d_items, d_bytes) in sorted(state.usage.items()):
            info = state.stored_contract(address)
            if info is None:
                continue
            items = info.storage_items + d_items
            nbytes = info.storage_bytes + d_bytes
            want = (fees.contract_base_deposit + items * fees.deposit_per_item
                    + nbytes * fees.deposit_per_byte)
            if want > info.deposit:
                charge += want - info.deposit
            else:
                refund += info.deposit - want
            updates.append((address, StoredContract(info.code_hash, items, nbytes, want,
                                                    info.immutable_data)))
        for address in sorted(state.released):
            refund += state.released[address]
        code_updates: list[tuple[bytes, CodeInfo]] = []
        for code_hash in sorted(state.new_code):
            ci = state.code_info(code_hash)
            assert ci is not None
            want = fees.deposit_per_item + ci.code_len * fees.deposit_per_byte
            charge += want
            code_updates.append((code_hash, CodeInfo(ci.owner, want, ci.code_len)))
        net = charge - refund
        _, free = state.account_info(payer)
        failure = None
        if net > limit:
            failure = f"StorageDepositLimitExhausted: needs {net}, limit {limit}"
        elif free + refund < charge:
            failure = f"StorageDepositNotEnoughFunds: needs {charge}, has {free + refund}"
        if failure is not None:
            state.revert(snap)
            bump()
            return failure, 0
        for address, info in updates:
            state.set_stored_contract(address, info)
        for code_hash, ci in code_updates:
            state.set_code_info(code_hash, ci)
        state.set_account_info(payer, state.account_info(payer)[0], free + refund - charge)
        state.usage.clear()
        state.released.clear()
        state.new_code.clear()
        return None, net

    def rewind(self, number: int) -> None:
        """Drops the blocks after ``number`` (a dev node's snapshot revert): the state
        is block ``number``'s again, checked against its state root."""
        if self.state.overlay:
            raise ChainError("a block is being built")
        self._head = None
        self.db.rewind(number)
        self._check_head()

    # ---- verification ----
    def verify(self, first: int = 1, last: int | None = None, *,
               backend: str | None = None, sandbox: str | None = "auto",
               progress: Callable[[int], None] | None = None) -> int:
        """Re-executes blocks ``first..last`` (default: to the head) on the state before
        ``first`` (rebuilt from the undo records) and checks every header; returns the
        number of blocks checked.  Raises :class:`BlockError` at the first mismatch."""
        head = self.head_number
        last = head if last is None else last
        if not 1 <= first <= last <= head:
            raise ChainError(f"cannot verify blocks {first}..{last} (head is {head})")
        scratch = self._state_at(first - 1)
        other = Chain(scratch, backend=backend or self.runtime.backend, sandbox=sandbox,
                      block_hashes=self._block_hash)
        for n in range(first, last + 1):
            other.import_block(self.block(n))
            if progress is not None:
                progress(n)
        return last - first + 1

    def before_block(self, number: int, *, backend: str | None = None,
                     sandbox: str | None = "auto") -> Chain:
        """A scratch in-memory chain whose head is block ``number - 1`` of this one
        (the state rebuilt from the undo records, as :meth:`verify` does)."""
        if not 1 <= number <= self.head_number:
            raise ChainError(f"no block {number} (head is {self.head_number})")
        return Chain(self._state_at(number - 1), backend=backend or self.runtime.backend,
                     sandbox=sandbox, block_hashes=self._block_hash)

    def rerun(self, block: Block, count: int, *,
              layers: Sequence[HostLayer] = ()) -> Receipt:
        """Re-executes the first ``count`` extrinsics of ``block`` (the block after the
        head) on the head's state, the last of them with the host-call ``layers``
        installed, and returns its receipt; nothing is committed."""
        return self.rerun_block(block, count,
                                lambda i: layers if i == count - 1 else ())[-1]

    def rerun_block(self, block: Block, count: int,
                    layers_for: Callable[[int], Sequence[HostLayer]]) -> list[Receipt]:
        """Re-executes the first ``count`` extrinsics of ``block`` (the block after the
        head) on the head's state, extrinsic ``i`` with the host-call layers
        ``layers_for(i)``, and returns their receipts; nothing is committed."""
        parent = self.head
        if block.number != parent.number + 1 or count < 1 or count > len(block.extrinsics):
            raise ChainError(f"cannot rerun {count} extrinsic(s) of block {block.number} "
                             f"on head {parent.number}")
        state = self.state
        state.reset()
        hd = block.header
        state.set_block(self._context(hd.number, hd.timestamp, hd.author))
        state.put(K.NUMBER, hd.number.to_bytes(4, "little"))
        state.put(K.NOW, hd.timestamp.to_bytes(8, "little"))
        gas_used = 0
        receipts: list[Receipt] = []
        try:
            for i, raw in enumerate(block.extrinsics[:count]):
                with self.runtime.with_layers(*layers_for(i)):
                    receipt = self._apply(raw, self.genesis.block_gas_limit - gas_used,
                                          hd.author)
                gas_used += receipt.gas_used
                receipts.append(receipt)
            return receipts
        finally:
            state.reset()

    def _state_at(self, number: int) -> MemoryDB:
        """A MemoryDB holding the state and blocks up to ``number``."""
        state: dict[bytes, bytes | None] = dict(self.db.items())
        for n in range(self.head_number, number, -1):
            state.update(self.db.undo(n))
        db = MemoryDB()
        items = {k: v for k, v in state.items() if v is not None}
        for n in range(number + 1):
            stored = self.db.block(n)
            assert stored is not None
            db.commit_block(stored, items if n == number else {},
                            {}, {"genesis": self.db.meta("genesis") or b""})
        return db


def replay(source: Chain, *, backend: str = "jit", sandbox: str | None = "auto",
           last: int | None = None,
           progress: Callable[[int, bytes], None] | None = None) -> Chain:
    """Builds a new in-memory chain from ``source``'s genesis and imports its blocks
    ``1..last``; every imported header must match (same state roots)."""
    chain = Chain.create(source.genesis, None, backend=backend, sandbox=sandbox)
    if chain.genesis_hash != source.genesis_hash:
        raise BlockError(f"genesis differs: 0x{chain.genesis_hash.hex()} != "
                         f"0x{source.genesis_hash.hex()}")
    for n in range(1, (source.head_number if last is None else last) + 1):
        chain.import_block(source.block(n))
        if progress is not None:
            progress(n, chain.head.state_root)
    return chain


def genesis_state(genesis: GenesisConfig) -> dict[bytes, bytes]:
    """The key-value state of block 0."""
    from chain_sim.state import encode_account

    if not 1 <= genesis.native_to_eth_ratio <= 0xFFFF_FFFF:
        raise ChainError(f"native_to_eth_ratio {genesis.native_to_eth_ratio} is not a "
                         f"u32 >= 1")
    items: dict[bytes, bytes] = {
        K.NUMBER: (0).to_bytes(4, "little"),
        K.NOW: genesis.timestamp.to_bytes(8, "little"),
        K.CHAIN_ID: genesis.chain_id.to_bytes(8, "little"),
    }
    for account_id, balance in genesis.endowed:
        if len(account_id) != 32 or balance < 0:
            raise ChainError(f"bad endowment {account_id.hex()}: {balance}")
        items[K.account_key(account_id)] = encode_account(0, balance)
        items[K.original_account_key(to_address(account_id))] = account_id
    return items


def write_genesis(db: ChainDB, genesis: GenesisConfig) -> Header:
    items = genesis_state(genesis)
    from chain_sim.merkle import state_root

    header = Header(bytes(32), 0, state_root(items.items()), extrinsics_root([]),
                    receipts_root([]), genesis.timestamp, genesis.block_gas_limit, 0,
                    bytes(32))
    stored = StoredBlock(0, header.hash, header.encode(), encode_body([]), encode_receipts([]))
    db.commit_block(stored, dict(items), {}, {"genesis": genesis.to_json(),
                                              "genesis_hash": header.hash})
    return header


_U128 = (1 << 128) - 1


def _gas_and_value(call: Call, fees: Fees) -> tuple[int, int]:
    if isinstance(call, EthTransact | DevCall):
        raise InvalidTransaction(f"{type(call).__name__} must be unsigned")
    if isinstance(call, Transfer):
        return fees.transfer_gas, call.value
    if isinstance(call, UploadCode):
        return fees.upload_gas_base + fees.upload_gas_per_byte * len(call.code), 0
    return call.gas_limit, call.value


def _account_id(account: Account | bytes) -> bytes:
    return account.account_id if isinstance(account, Account) else account


def _hex(v: Any) -> str:
    return v.hex() if isinstance(v, bytes) else f"{v:x}"


