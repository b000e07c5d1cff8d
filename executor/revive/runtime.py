"""The pallet-revive runtime: code upload, the call stack and top-level transactions.

::

    from executor.revive import ReviveRuntime

    rt = ReviveRuntime(backend="jit")                 # an InMemoryState by default
    rt.state.set_balance(alice, 10**20)
    deployed = rt.instantiate(alice, code=blob, data=ctor_args)
    result = rt.call(alice, deployed.address, data=calldata)
    result.success, result.data, result.gas_used, result.events

Every frame (top-level call, sub-call, delegate call, instantiation) runs in a fresh
PolkaVM instance of the callee's code (compiled once per code hash) with gas metering
on, starting at the export ``deploy`` or ``call`` (spec section 1.3).  Gas is PolkaVM
gas throughout: instructions as the PolkaVM cost model meters them, plus the host
charges of :mod:`executor.revive.costs`.  A frame runs inside a state snapshot that is
committed when it ends without error and without REVERT, and reverted otherwise
(section 4.1).

Balances and values are plain integers in the unit the contract sees (the pallet's
native-to-EVM ratio is taken as 1 and the existential deposit as 0).  Transaction fees
are not charged: ``gas_used`` is reported, balances only move by value transfers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from executor.config import Config
from executor.engine import Engine, Module
from executor.errors import GuestFault, HostError, OutOfGas, PvmError, Trap
from executor.instance import Instance
from executor.linker import HostLayer, InstancePre
from executor.revive import errors as E
from executor.revive.address import create1, create2
from executor.revive.constants import ZERO_ADDRESS, Limits, ReturnFlags
from executor.revive.costs import DEFAULT_COSTS, CostTable
from executor.revive.errors import CodeRejected, ExecError, FrameReturn
from executor.revive.frame import Frame, FrameResult
from executor.revive.guest import Guest
from executor.revive.hashing import keccak256
from executor.revive.hostfns import build_linker
from executor.revive.precompiles import Precompile, precompile_at, run_precompile
from executor.revive.state import ContractInfo, Event, InMemoryState, State
from executor.revive.validate import validate_code

FrameRunner = Callable[[InstancePre, Frame, int], tuple[int, PvmError | None]]
"""Runs a top-level frame elsewhere (for example through :class:`executor.aio.Executor`):
``runner(pre, frame, gas)`` calls export ``frame.entry`` of an instance of ``pre`` with
``user_data=frame`` and ``gas``, and returns the gas left and the error the call ended
with (``None``: it returned).  Nested frames always run in this thread."""

_IDLE_INSTANCES = 8
"""Finished instances a runtime keeps for reuse (each holds a sandbox worker on the
sandboxed JIT)."""

_REVERT = int(ReturnFlags.REVERT)  # a plain int: IntFlag operators cost microseconds


@dataclass(frozen=True)
class ExecResult:
    """The outcome of a top-level call or instantiation.

    ``error`` is ``None`` or the pallet error name that failed the outermost frame;
    ``flags``/``data`` are the ``seal_return`` flags and output (revert data when
    reverted); ``address`` is the new contract's address (instantiation only; only
    meaningful when ``success``); ``events`` are the events the transaction emitted
    (empty unless ``success``)."""

    flags: int
    data: bytes
    error: str | None
    gas_used: int
    address: bytes | None = None
    events: tuple[Event, ...] = ()

    @property
    def reverted(self) -> bool:
        return self.error is None and bool(self.flags & _REVERT)

    @property
    def success(self) -> bool:
        return self.error is None and not self.flags & _REVERT


class ReviveRuntime:
    """Runs pallet-revive contracts over a :class:`~executor.revive.state.State`.

    ``backend`` is an :mod:`executor.backends` name (``"interpreter"``, ``"jit"``);
    ``sandbox`` as in :class:`~executor.config.Config` (``"auto"``: the JIT runs in
    Linux sandbox workers where they work; ``None``: in-process); ``costs`` the
    host-function cost table; ``limits`` the runtime limits."""

    def __init__(self, state: State | None = None, *, backend: str = "interpreter",
                 sandbox: str | None = "auto",
                 costs: CostTable = DEFAULT_COSTS, limits: Limits | None = None):
        self.state: State = state if state is not None else InMemoryState()
        self.costs = costs
        self.limits = limits or Limits()
        self.engine = Engine(Config(backend=backend, sandbox=sandbox, gas_metering=True))
        self.linker = build_linker()
        self.known_imports = frozenset(self.linker.names)
        self._programs: dict[bytes, tuple[InstancePre, int]] = {}
        # finished instances kept for the next frame of the same code and layer stack
        # (memory is reset before reuse); at most _IDLE_INSTANCES, oldest dropped first
        self._idle: OrderedDict[int, tuple[bytes, InstancePre, Instance, Guest]] = \
            OrderedDict()
        self.layers: tuple[HostLayer, ...] = ()
        """Host-call layers over every frame (:meth:`with_layers`)."""
        self._idle_seq = 0
        self.frame_runner: FrameRunner | None = None
        self.stack: list[Frame] = []
        self.origin: bytes = ZERO_ADDRESS
        self._constructing: set[bytes] = set()

    @property
    def backend(self) -> str:
        return self.engine.backend

    # ---- code ----
    def validate(self, blob: bytes) -> None:
        """Upload-time checks (:func:`~executor.revive.validate.validate_code`)."""
        validate_code(blob, self.known_imports, self.limits)

    def upload(self, blob: bytes) -> bytes:
        """Validates ``blob`` and stores it under its code hash (keccak-256); returns it."""
        blob = bytes(blob)
        self.validate(blob)
        code_hash = keccak256(blob)
        self.state.put_code(code_hash, blob)
        return code_hash

    def _program(self, code_hash: bytes) -> tuple[InstancePre, int]:
        """The linked module for ``code_hash`` (compiled once) and the blob length."""
        hit = self._programs.get(code_hash)
        if hit is not None:
            return hit
        blob = self.state.code(code_hash)
        if blob is None:
            raise ExecError(E.CODE_NOT_FOUND, code_hash.hex())
        program = validate_code(blob, self.known_imports, self.limits)
        module = Module(self.engine, program)
        hit = (self.linker.instantiate_pre(module), len(blob))
        self._programs[code_hash] = hit
        return hit

    def contract_at(self, address: bytes) -> ContractInfo | None:
        """The contract at ``address``; ``None`` for plain accounts and for contracts
        whose constructor is still running (they are not callable yet)."""
        if address in self._constructing:
            return None
        return self.state.contract(address)

    # ---- frames ----
    @contextmanager
    def with_layers(self, *layers: HostLayer) -> Iterator[None]:
        """Runs every frame started inside the block -- top-level and nested -- with
        ``layers`` over its host calls (after the layers already active, i.e. inside
        them).  See :class:`executor.linker.HostLayer`."""
        saved = self.layers
        self.layers = saved + layers
        try:
            yield
        finally:
            self.layers = saved

    def _take_instance(self, code_hash: bytes, pre: InstancePre, frame: Frame,
                       gas: int) -> Instance:
        """An instance of ``code_hash`` in its initial state, ``frame.guest`` bound to
        it: a kept one (memory reset) or a new one."""
        for key in reversed(self._idle):
            owner, owner_pre, inst, guest = self._idle[key]
            if owner == code_hash and owner_pre is pre:
                del self._idle[key]
                inst.reset_memory()
                inst.user_data = frame  # the gas: set by the call (run_frame)
                frame.guest = guest
                return inst
        inst = pre.instantiate(user_data=frame, gas=gas)
        frame.guest = Guest(inst.caller)
        return inst

    def _keep_instance(self, code_hash: bytes, pre: InstancePre, instance: Instance,
                       guest: Guest) -> None:
        instance.user_data = None
        self._idle_seq += 1
        self._idle[self._idle_seq] = (code_hash, pre, instance, guest)
        while len(self._idle) > _IDLE_INSTANCES:
            _, (_, _, old, _) = self._idle.popitem(last=False)
            old.raw.close()

    def run_frame(self, frame: Frame, gas_limit: int) -> FrameResult:
        """Runs ``frame`` with at most ``gas_limit`` gas (no snapshot handling here)."""
        try:
            pre, blob_len = self._program(frame.code_hash)
        except (CodeRejected, ExecError):
            return FrameResult(0, b"", E.CODE_REJECTED, 0)
        load = self.costs.code_load(blob_len)
        if load > gas_limit:
            return FrameResult(0, b"", E.OUT_OF_GAS, gas_limit)
        if frame.entry not in pre.module.exports:
            return FrameResult(0, b"", E.CODE_REJECTED, load)
        gas = gas_limit - load
        if self.layers:
            pre = pre.layered(self.layers)
        runner = self.frame_runner if not self.stack else None
        flags, data, error = 0, b"", None
        self.stack.append(frame)
        try:
            if runner is not None:
                left, failure = runner(pre, frame, gas)
            else:
                instance = self._take_instance(frame.code_hash, pre, frame, gas)
                guest = frame.guest
                assert guest is not None
                failure = None
                try:
                    instance.call(frame.entry, gas=gas)
                except (HostError, Trap, OutOfGas) as exc:
                    failure = exc
                left = instance.gas
                self._keep_instance(frame.code_hash, pre, instance, guest)
        finally:
            self.stack.pop()
        if isinstance(failure, HostError):
            cause = failure.__cause__
            if isinstance(cause, FrameReturn):
                flags, data = cause.flags, cause.data
            elif isinstance(cause, ExecError):
                error = cause.name
            else:
                raise failure
        elif isinstance(failure, Trap):
            if isinstance(failure.__cause__, GuestFault):
                error = E.OUT_OF_BOUNDS
            elif "page fault" in str(failure):
                error = E.EXECUTION_FAILED
            else:
                error = E.CONTRACT_TRAPPED
        elif isinstance(failure, OutOfGas):
            error = E.OUT_OF_GAS
        elif failure is not None:
            raise failure
        if error == E.OUT_OF_GAS or left < 0:
            return FrameResult(0, b"", E.OUT_OF_GAS, gas_limit)
        return FrameResult(flags, data, error, gas_limit - left)

    def _execute(self, frame: Frame, payer: bytes | None, gas_limit: int,
                 snapshot: int) -> FrameResult:
        """Transfers the frame's value from ``payer`` (``None``: no transfer), runs it and
        commits or reverts ``snapshot``."""
        state = self.state
        if payer is not None and not self.transfer(payer, frame.account, frame.value):
            state.revert(snapshot)
            return FrameResult(0, b"", E.TRANSFER_FAILED, 0)
        result = self.run_frame(frame, gas_limit)
        if result.ok:
            state.commit(snapshot)
        else:
            state.revert(snapshot)
        return result

    def _check_depth(self) -> None:
        if len(self.stack) > self.limits.call_stack_depth:
            raise ExecError(E.MAX_CALL_DEPTH_REACHED)

    def transfer(self, source: bytes, dest: bytes, value: int) -> bool:
        """Moves ``value`` from ``source`` to ``dest``; ``False`` if it cannot."""
        if value == 0:
            return True
        state = self.state
        have = state.balance(source)
        if value < 0 or have < value:
            return False
        state.set_balance(source, have - value)
        state.set_balance(dest, state.balance(dest) + value)
        return True

    # ---- the operations behind call / delegate_call / instantiate ----
    def ext_call(self, caller: bytes, callee: bytes, value: int, input_data: bytes,
                 gas_limit: int, *, read_only: bool) -> FrameResult:
        """A call from ``caller``.  Caller-origin failures raise :class:`ExecError`."""
        self._check_depth()
        for f in self.stack:
            if f.account == callee and not f.allows_reentry:
                raise ExecError(E.REENTRANCE_DENIED)
        state = self.state
        snapshot = state.snapshot()
        pre = precompile_at(callee)
        if pre is not None:
            if not self.transfer(caller, callee, value):
                state.revert(snapshot)
                return FrameResult(0, b"", E.TRANSFER_FAILED, 0)
            r = self.run_precompile(pre, input_data, gas_limit)
            if r.ok:
                state.commit(snapshot)
            else:
                state.revert(snapshot)
            return r
        info = self.contract_at(callee)
        if info is None:  # a plain value transfer
            if not self.transfer(caller, callee, value):
                state.revert(snapshot)
                return FrameResult(0, b"", E.TRANSFER_FAILED, 0)
            state.commit(snapshot)
            return FrameResult(0, b"", None, 0)
        frame = Frame(self, account=callee, caller=caller, code_hash=info.code_hash,
                      code_owner=callee, value=value, input=input_data, read_only=read_only,
                      entry="call")
        return self._execute(frame, caller, gas_limit, snapshot)

    def ext_delegate_call(self, parent: Frame, target: bytes, input_data: bytes,
                          gas_limit: int) -> FrameResult:
        """Runs ``target``'s code in ``parent``'s context."""
        self._check_depth()
        pre = precompile_at(target)
        if pre is not None:
            return self.run_precompile(pre, input_data, gas_limit)
        info = self.contract_at(target)
        if info is None:
            # polkadot-sdk 2503+: a delegate call to an account without code succeeds
            # with empty output (as on Ethereum)
            return FrameResult(0, b"", None, 0)
        frame = Frame(self, account=parent.account, caller=parent.caller,
                      code_hash=info.code_hash, code_owner=target, value=parent.value,
                      input=input_data, read_only=parent.read_only, entry="call")
        return self._execute(frame, None, gas_limit, self.state.snapshot())

    def run_precompile(self, pre: Precompile, input_data: bytes,
                       gas_limit: int) -> FrameResult:
        """Runs the Ethereum precompile ``pre`` (:mod:`executor.revive.precompiles`)."""
        r = run_precompile(pre, input_data, gas_limit, self.costs.precompiles)
        return FrameResult(0, r.output, r.error, r.gas)

    def new_address(self, deployer: bytes, code_hash: bytes, input_data: bytes,
                    salt: bytes | None, nonce: int) -> bytes:
        """CREATE1 (``salt is None``, from ``nonce``) or CREATE2 address."""
        if salt is None:
            return create1(deployer, nonce)
        blob = self.state.code(code_hash)
        if blob is None:
            raise ExecError(E.CODE_NOT_FOUND, code_hash.hex())
        return create2(deployer, blob, input_data, salt)

    def ext_instantiate(self, deployer: bytes, code_hash: bytes, input_data: bytes,
                        value: int, address: bytes, gas_limit: int, *,
                        bump_deployer_nonce: bool) -> FrameResult:
        """Creates the contract at ``address`` and runs its constructor."""
        self._check_depth()
        state = self.state
        if state.code(code_hash) is None:
            raise ExecError(E.CODE_NOT_FOUND, code_hash.hex())
        if state.contract(address) is not None:
            return FrameResult(0, b"", E.DUPLICATE_CONTRACT, 0)
        snapshot = state.snapshot()
        if bump_deployer_nonce:
            state.set_nonce(deployer, state.nonce(deployer) + 1)
        state.set_contract(address, ContractInfo(code_hash))
        if state.nonce(address) < self.limits.contract_initial_nonce:
            state.set_nonce(address, self.limits.contract_initial_nonce)
        frame = Frame(self, account=address, caller=deployer, code_hash=code_hash,
                      code_owner=address, value=value, input=input_data, read_only=False,
                      entry="deploy")
        self._constructing.add(address)
        try:
            return self._execute(frame, deployer, gas_limit, snapshot)
        finally:
            self._constructing.discard(address)

    # ---- top-level transactions ----
    @contextmanager
    def _transaction(self, origin: bytes) -> Iterator[None]:
        if self.stack:
            raise RuntimeError("a transaction is already running")
        self.origin = origin
        try:
            yield
        finally:
            self.state.clear_transient()
            self.origin = ZERO_ADDRESS
            self.stack.clear()

    def _gas_limit(self, gas_limit: int | None) -> int:
        limit = self.state.block.gas_limit if gas_limit is None else gas_limit
        return max(0, min(limit, (1 << 63) - 1))

    def call(self, origin: bytes, dest: bytes, data: bytes = b"", *, value: int = 0,
             gas_limit: int | None = None, bump_nonce: bool = True) -> ExecResult:
        """A signed call from ``origin`` to ``dest`` (a plain transfer if ``dest`` has no
        code).  The origin's nonce is bumped first (and stays bumped on failure)."""
        state = self.state
        if self.stack:
            raise RuntimeError("a transaction is already running")
        self.origin = origin
        try:  # _transaction, inlined (a generator context manager costs microseconds)
            if bump_nonce:
                state.set_nonce(origin, state.nonce(origin) + 1)
            first_event = len(state.events)
            try:
                r = self.ext_call(origin, dest, value, bytes(data), self._gas_limit(gas_limit),
                                  read_only=False)
            except ExecError as exc:
                r = FrameResult(0, b"", exc.name, 0)
            events = tuple(state.events[first_event:]) if r.ok else ()
        finally:
            state.clear_transient()
            self.origin = ZERO_ADDRESS
            self.stack.clear()
        return ExecResult(r.flags, r.data, r.error, r.gas_used, None, events)

    def instantiate(self, origin: bytes, code: bytes | None = None, *,
                    code_hash: bytes | None = None, data: bytes = b"", value: int = 0,
                    salt: bytes | None = None, gas_limit: int | None = None,
                    bump_nonce: bool = True) -> ExecResult:
        """Deploys a contract: from ``code`` (uploaded first) or an uploaded ``code_hash``;
        ``data`` is the constructor input; ``salt`` (32 bytes) selects CREATE2.  The
        CREATE1 address uses the origin's nonce before this transaction bumped it."""
        state = self.state
        if code is not None:
            code_hash = self.upload(code)
        if code_hash is None:
            raise ValueError("instantiate needs code or a code_hash")
        with self._transaction(origin):
            nonce = state.nonce(origin)
            if bump_nonce:
                state.set_nonce(origin, nonce + 1)
            first_event = len(state.events)
            address: bytes | None = None
            try:
                address = self.new_address(origin, code_hash, bytes(data), salt, nonce)
                r = self.ext_instantiate(origin, code_hash, bytes(data), value, address,
                                         self._gas_limit(gas_limit), bump_deployer_nonce=False)
            except ExecError as exc:
                r = FrameResult(0, b"", exc.name, 0)
            events = tuple(state.events[first_event:]) if r.ok else ()
        return ExecResult(r.flags, r.data, r.error, r.gas_used, address, events)
