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
existential deposit as 0, and no transaction fee is charged nor deposit held:
``gas_used`` (PolkaVM gas), ``eth_gas`` (the Ethereum gas pallet-revive would report,
:mod:`executor.revive.ethgas`) and ``storage_deposit`` are reported only.  Addresses
are 20-byte ``bytes`` everywhere (also in decoded results and events); arguments of
ABI type ``address`` may also be an :class:`Account` or a :class:`Contract`.  ABI
encoding and decoding is ``eth-abi``'s (:mod:`contracts.abi`; one-word types directly,
checked against it).

A transaction (``deploy``, ``transact``, ``send``) bumps the sender's nonce even when it
reverts; otherwise a reverted transaction changes nothing.  ``call`` is a dry run: it
runs the same code and then rolls everything back, nonce included.  Any address can
send (impersonation): ``sender`` takes an :class:`Account` or raw 20 bytes.

Failures explain themselves: ``transact``, ``send``, ``call`` and ``deploy`` raise
:class:`Reverted` (a :class:`TransactionFailed`) when the transaction reverts and
:class:`TransactionFailed` when it fails otherwise (trap, out of gas, ...), with the
decoded reason (``Error(string)``, ``Panic(uint256)`` and its meaning, custom errors
by name and arguments from every ABI the chain knows), the :class:`Receipt` and the
call trace (the transaction is run a second time, from the same state, with a
:class:`~executor.revive.trace.CallTracer`; ``chain.tracing = True`` traces every
transaction).  ``check=False`` returns the receipt instead.  ``chain.expect_revert(...)``
and ``chain.expect_emit(...)`` assert what the transactions of a ``with`` block do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from contracts.abi import Abi, AbiSource, DecodedError, Function, encode
from contracts.build import KNOWN
from contracts.cheats import Mock, MockCalls
from contracts.console import ConsoleLogger
from contracts.deposits import DepositMeteredState
from contracts.tracing import Names, format_trace
from executor.errors import PvmError
from executor.revive.constants import Limits, ReturnFlags
from executor.revive.costs import DEFAULT_COSTS, CostTable
from executor.revive.ethgas import DEFAULT_ETH_GAS, EthGasSchedule, eth_transact_length
from executor.revive.hashing import keccak256
from executor.revive.precompiles import precompile_at
from executor.revive.runtime import ExecResult, ReviveRuntime
from executor.revive.state import BlockContext, Event, StorageKey
from executor.revive.trace import CallTracer, TraceFrame

_REVERT = int(ReturnFlags.REVERT)
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
    raw_events: tuple[Event, ...]
    """The events as the runtime recorded them (``events`` decodes them)."""
    output: bytes
    result: ExecResult
    contract_address: bytes | None = None
    trace: TraceFrame | None = None
    """The call tree (when the transaction failed or ``chain.tracing`` is on)."""
    console: tuple[str, ...] = ()
    """The console.log lines the transaction printed."""
    contract: str | None = None
    """The name of the contract called or deployed (its address when unnamed)."""
    function: str | None = None
    """The function called (``"(deploy)"`` for a deployment), if known."""
    storage_deposit: int = 0
    """The storage deposit pallet-revive would hold for this transaction (native units;
    negative: refunded; see :mod:`contracts.deposits`)."""
    eth_tx: tuple[bytes | None, bytes, int, int, int] | None = field(
        default=None, repr=False, compare=False)
    """``(to, input, value, nonce, chain id)`` of the transaction (for ``eth_gas``)."""
    eth_schedule: EthGasSchedule | None = field(default=None, repr=False, compare=False)
    decode_event: Callable[[Event], DecodedEvent] | None = field(
        default=None, repr=False, compare=False)
    name_source: Callable[[], Names] | None = field(default=None, repr=False, compare=False)

    @property
    def reverted(self) -> bool:
        return self.result.reverted

    @functools.cached_property
    def events(self) -> list[DecodedEvent]:
        """The events, decoded with every ABI the chain knows (decoded on first use,
        so a transaction nobody asks about costs no decoding)."""
        decode = self.decode_event
        if decode is None:
            return [DecodedEvent(e.contract, None, {}, e.topics, e.data)
                    for e in self.raw_events]
        return [decode(e) for e in self.raw_events]

    def _eth_length(self, gas: int) -> int:
        assert self.eth_tx is not None and self.eth_schedule is not None
        to, data, value, nonce, chain_id = self.eth_tx
        return eth_transact_length(to=to, data=data, value=value, nonce=nonce,
                                   chain_id=chain_id, gas=gas,
                                   gas_price=self.eth_schedule.gas_price)

    @functools.cached_property
    def eth_gas_estimate(self) -> int | None:
        """What ``eth_estimateGas`` would answer for this transaction on pallet-revive
        (:meth:`executor.revive.ethgas.EthGasSchedule.gas_estimate`; the encoded
        transaction's length counted with this estimate as its gas limit)."""
        if self.eth_tx is None or self.eth_schedule is None:
            return None
        estimate = 0
        for _ in range(2):  # the gas limit's own bytes are part of the length
            estimate = self.eth_schedule.gas_estimate(
                self.gas_used, self._eth_length(estimate), self.storage_deposit)
        return estimate

    @functools.cached_property
    def eth_gas(self) -> int | None:
        """The receipt's ``gasUsed`` an Ethereum client would see on pallet-revive
        (:meth:`executor.revive.ethgas.EthGasSchedule.gas_used`: the fee paid as gas;
        the storage deposit is held apart and not in it).  ``gas_used`` is the PolkaVM
        gas this executor metered."""
        if self.eth_tx is None or self.eth_schedule is None or self.eth_gas_estimate is None:
            return None
        return self.eth_schedule.gas_used(self.gas_used, self._eth_length(self.eth_gas_estimate))

    @functools.cached_property
    def trace_text(self) -> str | None:
        """``trace`` formatted (:func:`contracts.tracing.format_trace`; formatted on
        first use)."""
        if self.trace is None:
            return None
        return format_trace(self.trace, self.name_source() if self.name_source is not None
                            else Names())


class TransactionFailed(PvmError):
    """A transaction, dry-run ``call`` or ``deploy`` did not succeed: ``receipt`` tells
    why, ``trace`` is its call tree (``None`` if not traced)."""

    def __init__(self, what: str, receipt: Receipt, limits: Limits | None = None):
        self.what = what
        self.receipt = receipt
        self.trace = receipt.trace
        why = (receipt.error.describe() if receipt.error is not None else "no revert data"
               ) if receipt.reverted else receipt.failure
        msg = f"{what} {'reverted' if receipt.reverted else 'failed'}: {why}"
        errors = {receipt.failure} | ({f.error for f in receipt.trace.walk()}
                                      if receipt.trace is not None else set())
        for name in sorted(e for e in errors if e is not None):
            hint = limit_hint(name, limits or Limits())
            if hint:
                msg += f"\n  {name}: {hint}"
        if receipt.failure == "CodeNotFound":
            msg += ("\n  hint: a contract instantiated code that was never uploaded; build "
                    "the child contract with contracts.build (the chain then uploads it "
                    "with its factory) or chain.upload(blob) it first")
        if receipt.trace_text:
            msg += "\n\nTrace:\n" + receipt.trace_text
        super().__init__(msg)


class Reverted(TransactionFailed):
    """The transaction reverted: ``reason`` is the decoded revert data
    (:class:`~contracts.abi.DecodedError`; ``None`` for empty revert data), ``data``
    the raw bytes."""

    def __init__(self, what: str, receipt: Receipt, limits: Limits | None = None):
        self.reason = receipt.error
        self.data = receipt.output
        super().__init__(what, receipt, limits)


def limit_hint(error: str, limits: Limits) -> str | None:
    """What a pallet error that comes from a runtime limit means (``None`` for
    other errors)."""
    hints = {
        "MaxCallDepthReached": f"more than {limits.call_stack_depth} nested calls "
                               f"(Limits.call_stack_depth, pallet-revive's CallStack)",
        "ValueTooLarge": f"an event payload or storage value above {limits.payload_bytes} "
                         f"bytes (Limits.payload_bytes, pallet-revive's PayloadSize)",
        "TooManyTopics": f"an event with more than {limits.num_event_topics} topics "
                         f"(Limits.num_event_topics)",
        "OutOfTransientStorage": f"transient storage above {limits.transient_storage_bytes}"
                                 f" bytes (Limits.transient_storage_bytes)",
        "CodeRejected": f"the code failed upload checks (at most {limits.blob_bytes} bytes, "
                        f"Limits.blob_bytes; see executor.revive.validate)",
    }
    return hints.get(error)


class NoContractCode(PvmError):
    """A contract function was called at an address that has no code."""


class AbiMismatch(PvmError):
    """The data a function returned does not decode with its ABI."""


def _raise_for(what: str, receipt: Receipt, limits: Limits | None = None) -> None:
    if receipt.reverted:
        raise Reverted(what, receipt, limits)
    raise TransactionFailed(what, receipt, limits)


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

    @property
    def name(self) -> str:
        """The contract's name (from the build), else its address."""
        return self.chain.name_of(self.address) or f"0x{self.address.hex()}"

    def _checked(self, fn: str, nargs: int) -> Function:
        f = self.function(fn, nargs)
        chain = self.chain
        if chain.runtime.contract_at(self.address) is None and precompile_at(
                self.address) is None and not any(
                m.address == self.address for m in chain.mocks.mocks):
            raise NoContractCode(
                f"cannot call {self.name}.{f.signature}: there is no contract at "
                f"0x{self.address.hex()} (never deployed here, a wrong address, or "
                f"self-destructed)")
        return f

    def call(self, fn: str, *args: Any, sender: Address | None = None, value: int = 0,
             gas_limit: int | None = None) -> Any:
        """Runs ``fn`` without keeping any state change; returns the decoded result or
        raises :class:`Reverted` / :class:`TransactionFailed`."""
        f = self._checked(fn, len(args))
        receipt = self.chain._dry_run(self.address, f.encode_call(args), sender, value,
                                      gas_limit, f)
        if not receipt.success:
            _raise_for(f"call {self.name}.{f.signature}", receipt, self.chain.runtime.limits)
        return receipt.return_value

    def transact(self, fn: str, *args: Any, sender: Address | None = None, value: int = 0,
                 gas_limit: int | None = None, check: bool | None = None) -> Receipt:
        """Sends a transaction calling ``fn``; returns its :class:`Receipt`.  If it
        does not succeed, raises :class:`Reverted` / :class:`TransactionFailed`, or
        with ``check=False`` returns the receipt (default: ``chain.check``)."""
        f = self._checked(fn, len(args))
        receipt = self.chain._transact(self.address, f.encode_call(args), sender, value,
                                       gas_limit, f)
        if (self.chain.check if check is None else check) and not receipt.success:
            _raise_for(f"{self.name}.{f.signature}", receipt, self.chain.runtime.limits)
        return receipt

    def __repr__(self) -> str:
        name = self.chain.name_of(self.address)
        return f"Contract({name + ' ' if name else ''}0x{self.address.hex()})"


class TestChain:
    """An in-memory chain: accounts, code, contracts, blocks and nested snapshots.

    ``backend`` is ``"interpreter"`` or ``"jit"``; ``sandbox`` where JIT code runs
    (``"auto"``: in Linux sandbox workers where they work, ``"linux"``: always there,
    ``None``: in this process); ``check`` the default of ``transact(check=...)``;
    ``block`` the starting block context; ``costs`` and ``limits`` go to the
    :class:`ReviveRuntime`; ``eth_gas`` prices receipts' Ethereum gas
    (:class:`~executor.revive.ethgas.EthGasSchedule`)."""

    __test__ = False  # not a pytest test class

    def __init__(self, backend: str = "interpreter", *, sandbox: str | None = "auto",
                 check: bool = True, block: BlockContext | None = None,
                 costs: CostTable = DEFAULT_COSTS, limits: Limits | None = None,
                 eth_gas: EthGasSchedule = DEFAULT_ETH_GAS):
        self.state = DepositMeteredState()
        if block is not None:
            self.state.set_block(block)
        self.runtime = ReviveRuntime(self.state, backend=backend, sandbox=sandbox,
                                     costs=costs, limits=limits)
        self._abis: dict[bytes, Abi] = {}
        self._known_abis: list[Abi] = []
        self._names: dict[bytes, str] = {}
        self._blobs: dict[bytes, bytes] = {}
        self._code_names: dict[bytes, tuple[str, Abi | None]] = {}
        self._artifact_abis: dict[bytes, Abi] = {}
        self._accounts = 0
        self.check = check
        """The default of ``check`` (raise on failure) for ``transact`` and ``send``."""
        self.eth_gas = eth_gas
        """How receipts turn PolkaVM gas and deposits into Ethereum gas."""
        self.tracing = False
        """Trace every transaction (not only failed ones): ``receipt.trace``."""
        self.on_receipt: list[Callable[[Receipt], None]] = []
        """Called with every receipt (what ``expect_emit`` listens to)."""
        self.on_trace: list[Callable[[Receipt], None]] = []
        """Called with every traced receipt (the pytest plugin's ``--pvm-trace``)."""
        self.last_failure: Receipt | None = None
        """The receipt of the last transaction that did not succeed."""
        self.console = ConsoleLogger()
        """console.log: prints each line (``console.sink``), keeps them in
        ``console.lines``."""
        self.mocks = MockCalls()
        self.runtime.layers = (self.console,)
        self._tracer = CallTracer()
        """The tracer of traced transactions, one for the chain's life: the runtime
        keeps its layered dispatch tables and instances per layer stack, so a new
        tracer per transaction would build both afresh every time."""
        self._pranks: list[bytes] = []
        self._pending_emits: list[ExpectEmit] = []
        self._console_mark = 0
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

    @contextmanager
    def isolated(self) -> Iterator[None]:
        """Undoes everything the block did (state, balances, nonces, block context),
        e.g. so each example of a property test starts from the same state."""
        snap = self.state.snapshot()
        try:
            yield
        finally:
            self.state.revert(snap)

    # ---- code and contracts ----
    def upload(self, blob: bytes | str | Path) -> bytes:
        """Validates and stores code (and the code it deploys, when known to the
        build); returns its code hash."""
        blob = _blob(blob)
        code_hash = self.runtime.upload(blob)
        self._blobs[code_hash] = blob
        self._upload_dependencies(blob, code_hash, {code_hash})
        return code_hash

    def _known_blob(self, code_hash: bytes) -> bytes | None:
        blob = self._blobs.get(code_hash)
        if blob is None:
            art = KNOWN.get(code_hash)
            blob = None if art is None else art.blob
        return blob

    def _upload_dependencies(self, blob: bytes, code_hash: bytes, seen: set[bytes]) -> None:
        """Uploads the code ``blob`` deploys, recursively.

        A blob the build produced comes with resolc's ``factoryDependencies`` (the
        code hashes of the contracts its ``new`` expressions create,
        :attr:`contracts.build.Artifact.factory_deps`): those are uploaded, nothing is
        guessed.  Only a blob the build does not know (bytes from elsewhere, with no
        resolc output to go by) is scanned for the code hashes of known blobs (resolc
        embeds a child's code hash in the factory's data, as four little-endian 64-bit
        words)."""
        art = KNOWN.get(code_hash)
        if art is not None:
            deps: list[bytes] = [h for h in art.factory_deps if h not in seen]
        else:
            known = {h: a.blob for h, a in KNOWN.items()}
            known.update(self._blobs)
            deps = [h for h in known if h not in seen and (
                b"".join(h[i:i + 8][::-1] for i in range(0, 32, 8)) in blob or h in blob)]
        for dep_hash in deps:
            seen.add(dep_hash)
            dep = self._known_blob(dep_hash)
            if dep is None:
                continue  # not built here: instantiating it fails with CodeNotFound + hint
            if self.state.code(dep_hash) is None:
                self.runtime.upload(dep)
            self._upload_dependencies(dep, dep_hash, seen)

    def deploy(self, blob: bytes | str | Path, abi: AbiSource | Abi, *ctor_args: Any,
               sender: Address | None = None, value: int = 0, salt: bytes | None = None,
               gas_limit: int | None = None, name: str | None = None) -> Contract:
        """Deploys ``blob`` with constructor arguments (uploading the contracts it
        deploys itself when the build knows them); raises :class:`Reverted` /
        :class:`TransactionFailed` if the constructor reverts or fails.  ``name``
        labels the contract in traces (default: its name in the build)."""
        abi = abi if isinstance(abi, Abi) else Abi(abi)
        data = encode(abi.constructor_inputs, ctor_args)
        origin = self._origin(sender)
        blob = _blob(blob)
        nonce = self.state.nonce(origin)
        self.state.start()  # the deposit: the code and what the constructor stores
        code_hash = self.runtime.upload(blob)
        self._blobs[code_hash] = blob
        with self.state.unmetered():
            self._upload_dependencies(blob, code_hash, {code_hash})
        if name is not None:
            self._code_names[code_hash] = (name, abi)
        kwargs: dict[str, Any] = dict(code_hash=code_hash, data=data, value=value,
                                      salt=salt, gas_limit=gas_limit)
        self._remember(abi)
        result, trace = self._run(lambda: self.runtime.instantiate(origin, **kwargs),
                                  lambda t: t.trace_instantiate(self.runtime, origin, None,
                                                                **kwargs))
        if result.address is not None and result.success:
            self._abis[result.address] = abi
            if name is not None:
                self._names[result.address] = name
        receipt = self._receipt(result, None, abi, result.address, trace,
                                eth_tx=(None, blob + data, value, nonce,
                                        self.state.block.chain_id),
                                deposit=self.state.finish(self.eth_gas))
        if not receipt.success or result.address is None:
            label = name or self._code_name(code_hash)
            _raise_for(f"deploy {label}" if label else "deploy", receipt, self.runtime.limits)
        assert result.address is not None
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
             sender: Address | None = None, gas_limit: int | None = None,
             check: bool | None = None) -> Receipt:
        """A raw transaction: plain transfer, or ``receive``/``fallback`` with data;
        raises like :meth:`Contract.transact` unless ``check=False``."""
        to = _address(to)
        receipt = self._transact(to, data, sender, value, gas_limit, None)
        if (self.check if check is None else check) and not receipt.success:
            _raise_for(f"send to {self.name_of(to) or '0x' + to.hex()}", receipt,
                       self.runtime.limits)
        return receipt

    # ---- names (traces, error messages) ----
    def _code_name(self, code_hash: bytes) -> str | None:
        hit = self._code_names.get(code_hash)
        if hit is not None:
            return hit[0]
        art = KNOWN.get(code_hash)
        return None if art is None else art.name

    def name_of(self, address: Address | Contract) -> str | None:
        """The contract name at ``address`` (``label`` for accounts), if known."""
        address = _address(address)
        if address in self._names:
            return self._names[address]
        info = self.runtime.contract_at(address) or self.state.contract(address)
        return None if info is None else self._code_name(info.code_hash)

    @property
    def names(self) -> Names:
        """What trace printing knows (:class:`contracts.tracing.Names`)."""
        def code_of(address: bytes) -> bytes | None:
            info = self.state.contract(address)
            return None if info is None else info.code_hash

        names = Names(abis=list(self._known_abis), code_of=code_of)
        for address, own in self._abis.items():
            names.contracts[address] = (self.name_of(address) or "0x" + address.hex(), own)
        for code_hash, art in KNOWN.items():
            abi = self._artifact_abis.get(code_hash)
            if abi is None:
                abi = self._artifact_abis[code_hash] = Abi(art.abi)
            names.codes[code_hash] = (art.name, abi)
        names.codes.update(self._code_names)
        return names

    def format_trace(self, trace: TraceFrame) -> str:
        """``trace`` as a ``forge -vvvv``-style tree."""
        return format_trace(trace, self.names)

    # ---- cheatcodes ----
    def _origin(self, sender: Address | None) -> bytes:
        if sender is not None:
            return _address(sender)
        return self._pranks[-1] if self._pranks else self.default_account.address

    @contextmanager
    def prank(self, who: Address | Contract) -> Iterator[None]:
        """Transactions and calls in the block without an explicit ``sender`` come
        from ``who`` (any address: an account, a contract, raw bytes), like
        forge-std's ``vm.startPrank``/``vm.stopPrank``; pranks nest."""
        self._pranks.append(_address(who))
        try:
            yield
        finally:
            self._pranks.pop()

    def deal(self, who: Address | Contract, amount: int) -> None:
        """Sets the balance of ``who`` (``vm.deal``)."""
        self.set_balance(who, amount)

    def warp(self, timestamp: int) -> None:
        """Sets the block timestamp, in seconds (``vm.warp``)."""
        self.set_block(timestamp=timestamp)

    def roll(self, number: int) -> None:
        """Sets the block number (``vm.roll``)."""
        self.set_block(number=number)

    def load(self, who: Address | Contract, slot: int | bytes) -> bytes:
        """The 32-byte word in storage ``slot`` of ``who`` (``vm.load``; zeros when
        unset).  ``slot`` is an ``int`` or 32 bytes, as Solidity computes slots."""
        value = self.state.storage(_address(who), StorageKey(_slot(slot), True))
        return bytes(32) if value is None else value.rjust(32, b"\0")

    def store(self, who: Address | Contract, slot: int | bytes, value: int | bytes) -> None:
        """Writes a 32-byte word to storage ``slot`` of ``who`` (``vm.store``)."""
        word = value.to_bytes(32, "big") if isinstance(value, int) else bytes(value)
        if len(word) != 32:
            raise ValueError(f"a storage word is 32 bytes, got {len(word)}")
        self.state.set_storage(_address(who), StorageKey(_slot(slot), True),
                               None if word == bytes(32) else word)

    def mock_call(self, who: Address | Contract, calldata: bytes, returndata: bytes, *,
                  revert: bool = False) -> None:
        """Calls to ``who`` with input starting with ``calldata`` (``b""``: any)
        return ``returndata`` (revert with it when ``revert``) without running the
        callee -- ``vm.mockCall`` / ``vm.mockCallRevert``: calls that contracts make
        (nested frames, through a host-call layer, paying the ``call`` host charges) and
        the transactions and dry runs this harness sends (``transact``, ``send``,
        ``call``: answered without running anything, gas used 0, no value moved; a
        transaction still bumps the sender's nonce).  ``who`` need not have code; the
        longest matching prefix wins."""
        self.mocks.add(Mock(_address(who), bytes(calldata), bytes(returndata), revert))
        if self.mocks not in self.runtime.layers:
            self.runtime.layers = (*self.runtime.layers, self.mocks)

    def clear_mocked_calls(self) -> None:
        """Removes every mock (``vm.clearMockedCalls``)."""
        self.mocks.mocks = []
        self.runtime.layers = tuple(la for la in self.runtime.layers if la is not self.mocks)

    # ---- expectations ----
    @contextmanager
    def expect_revert(self, expected: Any = None, *args: Any) -> Iterator[list[Reverted]]:
        """Asserts that a transaction (or call) in the block reverts, like forge-std's
        ``vm.expectRevert``.  ``expected``: ``None`` (any revert), an ``Error(string)``
        message, a custom error name (with ``args`` to match its arguments too),
        ``"Panic"`` or a panic code (``int``), or the raw revert data (``bytes``).
        The revert is caught (the block ends there); the list it yields holds the
        :class:`Reverted` afterwards."""
        caught: list[Reverted] = []
        try:
            yield caught
        except Reverted as exc:
            caught.append(exc)
            problem = _revert_mismatch(exc, expected, args)
            if problem is not None:
                raise AssertionError(f"expect_revert: {problem}") from exc
        else:
            raise AssertionError("expect_revert: no transaction in the block reverted")

    def expect_emit(self, name: str, args: dict[str, Any] | None = None, *,
                    emitter: Address | Contract | None = None) -> ExpectEmit:
        """Expects event ``name`` whose arguments include ``args`` (from ``emitter``
        when given), like forge-std's ``vm.expectEmit``.  Two scopes:

        * ``chain.expect_emit(...)`` on its own line: forge's scope -- the **next
          transaction** (``transact``, ``send`` or ``deploy``; dry runs (``call``) are
          not transactions and do not count) must emit it, else that transaction
          raises ``AssertionError``.  Several expectations before one transaction
          must all be met, by events in the order they were declared (other events
          may come between), as forge checks them.  An expectation no transaction
          came to check fails the test at the end (the ``chain`` fixture checks
          :meth:`check_expectations`).
        * ``with chain.expect_emit(...) as found:``: some transaction of the ``with``
          block must emit it; ``found`` lists the matching events afterwards.

        A reverted transaction emits nothing (its events are rolled back)."""
        return ExpectEmit(self, name, args, None if emitter is None else _address(emitter))

    def check_expectations(self) -> None:
        """Raises ``AssertionError`` for ``expect_emit`` expectations that no
        transaction came to check (and forgets them)."""
        pending, self._pending_emits = self._pending_emits, []
        if pending:
            raise AssertionError("expect_emit: no transaction came after "
                                 + ", ".join(e.describe() for e in pending))

    def _check_pending_emits(self, receipt: Receipt) -> None:
        pending, self._pending_emits = self._pending_emits, []
        events = receipt.events if receipt.success else []
        at = 0
        for expectation in pending:
            hit = next((i for i in range(at, len(events)) if expectation.matches(events[i])),
                       None)
            if hit is None:
                got = ", ".join(f"{e.name or '<unknown>'}{e.args}" for e in events) or "none"
                raise AssertionError(
                    f"expect_emit: the next transaction ({receipt.contract or '?'}."
                    f"{receipt.function or '?'}) emitted no {expectation.describe()}"
                    + (" after the events expected before it" if at else "")
                    + f"; events emitted: {got}")
            expectation.found.append(events[hit])
            at = hit + 1

    # ---- internals ----
    def _run(self, plain: Callable[[], ExecResult],
             traced: Callable[[CallTracer], tuple[ExecResult, TraceFrame]]
             ) -> tuple[ExecResult, TraceFrame | None]:
        """Runs a transaction; traced when tracing is on, and a failed one again from
        the same state with a tracer (execution is deterministic, so the second run
        is the first one, recorded)."""
        self._console_mark = len(self.console.lines)
        if self.tracing:
            return traced(self._tracer)
        snap = self.state.snapshot()
        result = plain()
        if result.success:
            self.state.commit(snap)
            return result, None
        self.state.revert(snap)
        console = self.console
        sink, kept = console.sink, len(console.lines)
        console.sink = None  # printed by the first run already
        try:
            return traced(self._tracer)
        finally:
            console.sink = sink
            del console.lines[kept:]

    def _mocked(self, to: bytes, data: bytes) -> ExecResult | None:
        """The outcome of a transaction or dry run to ``to`` that a mock answers
        (``None``: no mock matches).  Nothing runs and no value moves; gas used is 0."""
        if not self.mocks.mocks:
            return None
        mock = self.mocks.match(to, data)
        if mock is None:
            return None
        self.mocks.hits += 1
        return ExecResult(_REVERT if mock.revert else 0, mock.data, None, 0)

    def _transact(self, to: bytes, data: bytes, sender: Address | None, value: int,
                  gas_limit: int | None, fn: Function | None) -> Receipt:
        origin = self._origin(sender)
        nonce = self.state.nonce(origin)
        eth_tx = (to, data, value, nonce, self.state.block.chain_id)
        mocked = self._mocked(to, data)
        if mocked is not None:
            self.state.set_nonce(origin, nonce + 1)
            self._console_mark = len(self.console.lines)
            return self._receipt(mocked, fn, self._abis.get(to), None, None, to, eth_tx=eth_tx)
        self.state.start()
        result, trace = self._run(
            lambda: self.runtime.call(origin, to, data, value=value, gas_limit=gas_limit),
            lambda t: t.trace_call(self.runtime, origin, to, data, value=value,
                                   gas_limit=gas_limit))
        return self._receipt(result, fn, self._abis.get(to), None, trace, to, eth_tx=eth_tx,
                             deposit=self.state.finish(self.eth_gas))

    def _dry_run(self, to: bytes, data: bytes, sender: Address | None, value: int,
                 gas_limit: int | None, fn: Function | None) -> Receipt:
        origin = self._origin(sender)
        eth_tx = (to, data, value, self.state.nonce(origin), self.state.block.chain_id)
        mocked = self._mocked(to, data)
        if mocked is not None:
            self._console_mark = len(self.console.lines)
            return self._receipt(mocked, fn, self._abis.get(to), None, None, to, notify=False,
                                 eth_tx=eth_tx)
        snap = self.state.snapshot()
        self.state.start()
        try:
            result, trace = self._run(
                lambda: self.runtime.call(origin, to, data, value=value,
                                          gas_limit=gas_limit, bump_nonce=False),
                lambda t: t.trace_call(self.runtime, origin, to, data, value=value,
                                       gas_limit=gas_limit, bump_nonce=False))
            return self._receipt(result, fn, self._abis.get(to), None, trace, to,
                                 notify=False, eth_tx=eth_tx,
                                 deposit=self.state.finish(self.eth_gas))
        finally:
            self.state.revert(snap)

    def _receipt(self, result: ExecResult, fn: Function | None, abi: Abi | None,
                 address: bytes | None, trace: TraceFrame | None = None,
                 to: bytes | None = None, *, notify: bool = True,
                 eth_tx: tuple[bytes | None, bytes, int, int, int] | None = None,
                 deposit: int = 0) -> Receipt:
        value = None
        if result.success and fn is not None:
            try:
                value = fn.decode_result(result.data)
            except Exception as exc:  # noqa: BLE001 - eth-abi raises several kinds
                where = self.name_of(to) if to is not None else None
                raise AbiMismatch(
                    f"{where or 'the contract'}.{fn.signature} at "
                    f"0x{(to or b'').hex()} returned {len(result.data)} bytes that do not "
                    f"decode as ({', '.join(fn.outputs)}): {exc}") from exc
        error = None
        if result.reverted:
            error = (abi or Abi([])).decode_error(result.data)
            if error is not None and error.name.startswith("0x"):
                error = self._decode_error_anywhere(result.data) or error
        receipt = Receipt(success=result.success, gas_used=result.gas_used,
                          return_value=value,
                          revert_reason=None if error is None else str(error), error=error,
                          failure=result.error,
                          raw_events=tuple(result.events), decode_event=self._event,
                          name_source=lambda: self.names, eth_tx=eth_tx,
                          eth_schedule=self.eth_gas, storage_deposit=deposit,
                          output=result.data, result=result, contract_address=address,
                          trace=trace,
                          console=tuple(self.console.lines[self._console_mark:]),
                          contract=None if (to or address) is None
                          else self.name_of(to or address or b"")
                          or "0x" + (to or address or b"").hex(),
                          function=fn.name if fn is not None else
                          "(deploy)" if to is None and address is not None else None)
        if not receipt.success:
            self.last_failure = receipt
        if notify:
            for listener in list(self.on_receipt):
                listener(receipt)
            if self._pending_emits:
                self._check_pending_emits(receipt)
        if trace is not None:
            for listener in list(self.on_trace):
                listener(receipt)
        return receipt

    def _decode_error_anywhere(self, data: bytes) -> DecodedError | None:
        for abi in self._known_abis:
            if data[:4] in abi.errors:
                return abi.decode_error(data)
        return None

    def _abi_of_code_at(self, address: bytes) -> Abi | None:
        """The ABI of the build artifact (or named code) deployed at ``address``."""
        info = self.state.contract(address)
        if info is None:
            return None
        hit = self._code_names.get(info.code_hash)
        if hit is not None:
            return hit[1]
        abi = self._artifact_abis.get(info.code_hash)
        if abi is None:
            art = KNOWN.get(info.code_hash)
            if art is None:
                return None
            abi = self._artifact_abis[info.code_hash] = Abi(art.abi)
        return abi

    def _event(self, e: Event) -> DecodedEvent:
        own = self._abis.get(e.contract) or self._abi_of_code_at(e.contract)
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


class ExpectEmit:
    """What :meth:`TestChain.expect_emit` returns: a pending expectation on the next
    transaction, or, used in ``with``, on the transactions of the block."""

    def __init__(self, chain: TestChain, name: str, args: dict[str, Any] | None,
                 emitter: bytes | None):
        self.chain, self.name, self.args, self.emitter = chain, name, dict(args or {}), emitter
        self.found: list[DecodedEvent] = []
        self._seen: list[DecodedEvent] = []
        chain._pending_emits.append(self)

    def matches(self, e: DecodedEvent) -> bool:
        return e.name == self.name and (self.emitter is None or e.address == self.emitter) \
            and all(k in e.args and _same(e.args[k], v) for k, v in self.args.items())

    def describe(self) -> str:
        return (f"{self.name}{self.args or ''} event"
                + (f" from 0x{self.emitter.hex()}" if self.emitter is not None else ""))

    def _listen(self, receipt: Receipt) -> None:
        if receipt.success:
            self._seen.extend(receipt.events)

    def __enter__(self) -> list[DecodedEvent]:
        self.chain._pending_emits.remove(self)  # block scope instead of the next one
        self.chain.on_receipt.append(self._listen)
        return self.found

    def __exit__(self, kind: type[BaseException] | None, *rest: Any) -> None:
        self.chain.on_receipt.remove(self._listen)
        if kind is not None:
            return
        self.found.extend(e for e in self._seen if self.matches(e))
        if not self.found:
            got = ", ".join(f"{e.name or '<unknown>'}{e.args}" for e in self._seen) or "none"
            raise AssertionError(f"expect_emit: no {self.describe()} in the block; "
                                 f"events emitted: {got}")


def _slot(slot: int | bytes) -> bytes:
    if isinstance(slot, int):
        return slot.to_bytes(32, "big")
    if len(slot) != 32:
        raise ValueError(f"a storage slot is 32 bytes, got {len(slot)}")
    return bytes(slot)


def _same(got: Any, want: Any) -> bool:
    if isinstance(got, bytes) and not isinstance(want, bytes | str):
        want = getattr(want, "address", want)
    if isinstance(got, bytes) and isinstance(want, str):
        return got.hex() == want.lower().removeprefix("0x")
    return bool(got == want)


def _revert_mismatch(exc: Reverted, expected: Any, args: tuple[Any, ...]) -> str | None:
    """Why ``exc`` is not the expected revert (``None``: it is)."""
    reason = exc.reason
    got = "empty revert data" if reason is None else reason.describe()
    if expected is None:
        return None
    if isinstance(expected, bytes):
        return None if exc.data == expected else f"reverted with 0x{exc.data.hex()} ({got})"
    if isinstance(expected, int) and not isinstance(expected, bool):
        ok = reason is not None and reason.name == "Panic" and reason.args == (expected,)
        return None if ok else f"expected Panic(0x{expected:02x}), got {got}"
    if isinstance(expected, str):
        if reason is None:
            return f"expected {expected!r}, got {got}"
        if reason.name == "Error":
            return None if reason.args == (expected,) else f"expected {expected!r}, got {got}"
        if reason.name == expected:
            if args and tuple(reason.args) != tuple(
                    getattr(a, "address", a) for a in args):
                return f"expected {expected}{args}, got {got}"
            return None
        return f"expected {expected!r}, got {got}"
    raise TypeError(f"expect_revert: cannot match {expected!r}")


def _blob(blob: bytes | str | Path) -> bytes:
    if isinstance(blob, str | Path):
        return Path(blob).read_bytes()
    return bytes(blob)
