"""``TestChain``: an in-memory pallet-revive chain for testing Solidity contracts.

::

    from contracts.harness import TestChain

    chain = TestChain(backend="jit")                   # or "interpreter"
    alice = chain.new_account(balance=10**18)
    token = chain.deploy(blob, TOKEN_ABI, "Tok", "TK", 1000, sender=alice)
    assert token.call("balanceOf", alice) == 1000      # dry run, no state change
    receipt = token.transact("transfer", bob, 10, sender=alice)
    assert receipt.success and receipt.events[0].name == "Transfer"

Units: balances and values are the integers the contract sees (``msg.value``,
``address(this).balance``); the pallet's native-to-EVM ratio is taken as 1, the
existential deposit as 0, and no transaction fee is charged (``gas_used`` is reported
only).  Addresses are 20-byte ``bytes`` everywhere (also in decoded results and events);
arguments of ABI type ``address`` may also be an :class:`Account` or a
:class:`Contract`.  ABI encoding and decoding is ``eth-abi``'s (:mod:`contracts.abi`).

A transaction (``deploy``, ``transact``, ``send``) bumps the sender's nonce even when it
reverts; otherwise a reverted transaction changes nothing.  ``call`` is a dry run: it
runs the same code and then rolls everything back, nonce included.  Any address can
send (impersonation): ``sender`` takes an :class:`Account` or raw 20 bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from contracts.abi import Abi, AbiSource, DecodedError, Function, encode
from executor.errors import PvmError
from executor.revive.constants import Limits
from executor.revive.costs import DEFAULT_COSTS, CostTable
from executor.revive.hashing import keccak256
from executor.revive.runtime import ExecResult, ReviveRuntime
from executor.revive.state import BlockContext, Event, InMemoryState

DEFAULT_BALANCE = 10**30
"""The balance of :attr:`TestChain.default_account`."""


@dataclass(frozen=True)
class Account:
    """An externally owned account: a 20-byte address and an optional label."""

    address: bytes
    label: str = ""

    def __repr__(self) -> str:
        name = f" {self.label}" if self.label else ""
        return f"Account(0x{self.address.hex()}{name})"


@dataclass(frozen=True)
class DecodedEvent:
    """An event of a transaction: the emitting ``address``, the event ``name`` and its
    ``args`` by name (``name`` is ``None`` when no known ABI has the event), and the raw
    ``topics``/``data``."""

    address: bytes
    name: str | None
    args: dict[str, Any]
    topics: tuple[bytes, ...]
    data: bytes

    def __getitem__(self, key: str) -> Any:
        return self.args[key]


@dataclass(frozen=True)
class Receipt:
    """The outcome of a transaction.

    ``success``: ended without error and without revert.  ``return_value``: the decoded
    result (``None`` unless successful and the function has outputs).  ``revert_reason``:
    the ``Error(string)`` message, ``"Panic(0x11)"``, ``"Name(arg, ...)"`` for a custom
    error, ``None`` when not reverted or no data; ``error`` has the same structured; a
    transaction that failed without reverting (trap, out of gas, ...) has
    ``failure`` = the pallet error name.  ``events`` are decoded with every ABI the chain
    knows.  ``contract_address`` is set by deployments."""

    success: bool
    gas_used: int
    return_value: Any
    revert_reason: str | None
    error: DecodedError | None
    failure: str | None
    events: list[DecodedEvent]
    output: bytes
    result: ExecResult
    contract_address: bytes | None = None

    @property
    def reverted(self) -> bool:
        return self.result.reverted


class TransactionFailed(PvmError):
    """A dry-run ``call`` or a ``deploy`` did not succeed; ``receipt`` tells why."""

    def __init__(self, what: str, receipt: Receipt):
        self.receipt = receipt
        why = receipt.revert_reason if receipt.reverted else receipt.failure
        super().__init__(f"{what} {'reverted' if receipt.reverted else 'failed'}: {why}")


Address = bytes | Account


def _address(who: Any) -> bytes:
    address = getattr(who, "address", who)
    if isinstance(address, str):
        address = bytes.fromhex(address.removeprefix("0x"))
    if not isinstance(address, bytes | bytearray) or len(address) != 20:
        raise ValueError(f"expected a 20-byte address, an Account or a Contract, got {who!r}")
    return bytes(address)


class Contract:
    """A deployed contract seen through its ABI."""

    def __init__(self, chain: TestChain, address: bytes, abi: Abi,
                 receipt: Receipt | None = None):
        self.chain = chain
        self.address = address
        self.abi = abi
        self.deploy_receipt = receipt

    def function(self, name: str, nargs: int | None = None) -> Function:
        return self.abi.function(name, nargs)

    def encode(self, fn: str, *args: Any) -> bytes:
        """The call data of ``fn(*args)`` (selector plus arguments)."""
        return self.function(fn, len(args)).encode_call(args)

    def call(self, fn: str, *args: Any, sender: Address | None = None, value: int = 0,
             gas_limit: int | None = None) -> Any:
        """Runs ``fn`` without keeping any state change; returns the decoded result or
        raises :class:`TransactionFailed`."""
        f = self.function(fn, len(args))
        receipt = self.chain._dry_run(self.address, f.encode_call(args), sender, value,
                                      gas_limit, f)
        if not receipt.success:
            raise TransactionFailed(f"call {f.signature}", receipt)
        return receipt.return_value

    def transact(self, fn: str, *args: Any, sender: Address | None = None, value: int = 0,
                 gas_limit: int | None = None) -> Receipt:
        """Sends a transaction calling ``fn``; returns its :class:`Receipt`."""
        f = self.function(fn, len(args))
        return self.chain._transact(self.address, f.encode_call(args), sender, value,
                                    gas_limit, f)

    def __repr__(self) -> str:
        return f"Contract(0x{self.address.hex()})"


class TestChain:
    """An in-memory chain: accounts, code, contracts, blocks and nested snapshots.

    ``backend`` is ``"interpreter"`` or ``"jit"``; ``sandbox`` where JIT code runs
    (``"auto"``: in Linux sandbox workers where they work, ``"linux"``: always there,
    ``None``: in this process); ``block`` the starting block context; ``costs`` and
    ``limits`` go to the :class:`ReviveRuntime`."""

    __test__ = False  # not a pytest test class

    def __init__(self, backend: str = "interpreter", *, sandbox: str | None = "auto",
                 block: BlockContext | None = None,
                 costs: CostTable = DEFAULT_COSTS, limits: Limits | None = None):
        self.state = InMemoryState()
        if block is not None:
            self.state.set_block(block)
        self.runtime = ReviveRuntime(self.state, backend=backend, sandbox=sandbox,
                                     costs=costs, limits=limits)
        self._abis: dict[bytes, Abi] = {}
        self._known_abis: list[Abi] = []
        self._accounts = 0
        self.default_account = self.new_account(balance=DEFAULT_BALANCE, label="default")

    @property
    def backend(self) -> str:
        return self.runtime.backend

    @property
    def block(self) -> BlockContext:
        """The current block context."""
        return self.state.block

    # ---- accounts ----
    def new_account(self, balance: int = 0, *, label: str = "") -> Account:
        """A fresh account (deterministic address) holding ``balance``."""
        self._accounts += 1
        address = keccak256(b"pvm-executor test account " + self._accounts.to_bytes(8, "big"))
        account = Account(address[12:], label)
        self.set_balance(account, balance)
        return account

    def balance(self, who: Address | Contract) -> int:
        return self.state.balance(_address(who))

    def set_balance(self, who: Address | Contract, value: int) -> None:
        self.state.set_balance(_address(who), value)

    def nonce(self, who: Address | Contract) -> int:
        return self.state.nonce(_address(who))

    # ---- blocks and snapshots ----
    def set_block(self, *, number: int | None = None, timestamp: int | None = None,
                  **fields: Any) -> BlockContext:
        """Changes the current block (``number``, ``timestamp`` in seconds, and any other
        :class:`~executor.revive.state.BlockContext` field); returns it."""
        if number is not None:
            fields["number"] = number
        if timestamp is not None:
            fields["timestamp"] = timestamp
        block = replace(self.state.block, **fields)
        self.state.set_block(block)
        return block

    def snapshot(self) -> int:
        """A snapshot id for :meth:`revert` (snapshots nest)."""
        return self.state.snapshot()

    def revert(self, snapshot: int) -> None:
        """Undoes everything since ``snapshot`` (later snapshots become invalid)."""
        self.state.revert(snapshot)

    # ---- code and contracts ----
    def upload(self, blob: bytes | str | Path) -> bytes:
        """Validates and stores code; returns its code hash."""
        return self.runtime.upload(_blob(blob))

    def deploy(self, blob: bytes | str | Path, abi: AbiSource | Abi, *ctor_args: Any,
               sender: Address | None = None, value: int = 0, salt: bytes | None = None,
               gas_limit: int | None = None) -> Contract:
        """Deploys ``blob`` with constructor arguments; raises :class:`TransactionFailed`
        if the constructor reverts or fails."""
        abi = abi if isinstance(abi, Abi) else Abi(abi)
        data = encode(abi.constructor_inputs, ctor_args)
        origin = _address(sender or self.default_account)
        result = self.runtime.instantiate(origin, _blob(blob), data=data, value=value,
                                          salt=salt, gas_limit=gas_limit)
        self._remember(abi)
        if result.address is not None and result.success:
            self._abis[result.address] = abi
        receipt = self._receipt(result, None, abi, result.address)
        if not receipt.success or result.address is None:
            raise TransactionFailed("deploy", receipt)
        return Contract(self, result.address, abi, receipt)

    def at(self, address: Address | Contract, abi: AbiSource | Abi) -> Contract:
        """The contract at ``address`` seen through ``abi``."""
        abi = abi if isinstance(abi, Abi) else Abi(abi)
        address = _address(address)
        self._abis[address] = abi
        self._remember(abi)
        return Contract(self, address, abi)

    def register_abi(self, abi: AbiSource | Abi, address: Address | Contract | None = None
                     ) -> Abi:
        """Uses ``abi`` to decode events and errors (of ``address`` first, when given,
        and of any contract whose own ABI does not know them, e.g. contracts created
        by other contracts)."""
        abi = abi if isinstance(abi, Abi) else Abi(abi)
        if address is not None:
            self._abis[_address(address)] = abi
        self._remember(abi)
        return abi

    def _remember(self, abi: Abi) -> None:
        if all(a is not abi for a in self._known_abis):
            self._known_abis.append(abi)

    def send(self, to: Address | Contract, value: int = 0, data: bytes = b"", *,
             sender: Address | None = None, gas_limit: int | None = None) -> Receipt:
        """A raw transaction: plain transfer, or ``receive``/``fallback`` with data."""
        return self._transact(_address(to), data, sender, value, gas_limit, None)

    # ---- internals ----
    def _transact(self, to: bytes, data: bytes, sender: Address | None, value: int,
                  gas_limit: int | None, fn: Function | None) -> Receipt:
        origin = _address(sender or self.default_account)
        result = self.runtime.call(origin, to, data, value=value, gas_limit=gas_limit)
        return self._receipt(result, fn, self._abis.get(to), None)

    def _dry_run(self, to: bytes, data: bytes, sender: Address | None, value: int,
                 gas_limit: int | None, fn: Function | None) -> Receipt:
        origin = _address(sender or self.default_account)
        snap = self.state.snapshot()
        try:
            result = self.runtime.call(origin, to, data, value=value, gas_limit=gas_limit,
                                       bump_nonce=False)
            return self._receipt(result, fn, self._abis.get(to), None)
        finally:
            self.state.revert(snap)

    def _receipt(self, result: ExecResult, fn: Function | None, abi: Abi | None,
                 address: bytes | None) -> Receipt:
        value = None
        if result.success and fn is not None:
            value = fn.decode_result(result.data)
        error = None
        if result.reverted:
            error = (abi or Abi([])).decode_error(result.data)
            if error is not None and error.name.startswith("0x"):
                error = self._decode_error_anywhere(result.data) or error
        return Receipt(success=result.success, gas_used=result.gas_used, return_value=value,
                       revert_reason=None if error is None else str(error), error=error,
                       failure=result.error, events=[self._event(e) for e in result.events],
                       output=result.data, result=result, contract_address=address)

    def _decode_error_anywhere(self, data: bytes) -> DecodedError | None:
        for abi in self._known_abis:
            if data[:4] in abi.errors:
                return abi.decode_error(data)
        return None

    def _event(self, e: Event) -> DecodedEvent:
        own = self._abis.get(e.contract)
        abis: Sequence[Abi] = self._known_abis if own is None else [own, *self._known_abis]
        if e.topics:
            for abi in abis:
                ev = abi.events.get(e.topics[0])
                if ev is not None and not ev.anonymous:
                    try:
                        args = ev.decode(e.topics, e.data)
                    except Exception:  # noqa: BLE001 - a same-signature event of another shape
                        continue
                    return DecodedEvent(e.contract, ev.name, args, e.topics, e.data)
        return DecodedEvent(e.contract, None, {}, e.topics, e.data)


def _blob(blob: bytes | str | Path) -> bytes:
    if isinstance(blob, str | Path):
        return Path(blob).read_bytes()
    return bytes(blob)
