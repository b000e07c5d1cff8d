"""One contract frame of the call stack, what a frame ends with, and :class:`Ext`:
what the host functions see of the runtime running the frame.

The host functions (:mod:`executor.revive.hostfns`) reach the runtime only through
:class:`Ext` -- the way pallet-revive's host functions see only its ``Ext`` trait --
so they do not import :mod:`executor.revive.runtime`, which implements it
(:class:`~executor.revive.runtime.ReviveRuntime`) and builds their linker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from executor.revive.constants import Limits, ReturnFlags
from executor.revive.costs import CostTable
from executor.revive.guest import Guest
from executor.revive.state import ContractInfo, State

_REVERT = int(ReturnFlags.REVERT)  # a plain int: IntFlag operators cost microseconds


@dataclass(slots=True)
class Frame:
    """A running contract frame (the ``user_data`` of its PolkaVM instance).

    ``account`` owns storage, balance and events (for a delegate call: the delegating
    contract); ``code_owner`` is the contract whose code runs (its immutable data is
    what ``get_immutable_data`` reads).  ``input`` is ``None`` once forwarded.
    """

    runtime: Ext
    account: bytes
    caller: bytes
    code_hash: bytes
    code_owner: bytes
    value: int
    input: bytes | None
    read_only: bool
    entry: str  # "deploy" or "call"
    allows_reentry: bool = True
    last_output: bytes = b""
    guest: Guest | None = None
    """Direct access to the instance running the frame (set by the runtime, or by
    the first host call)."""

    @property
    def is_deploy(self) -> bool:
        return self.entry == "deploy"


@dataclass(frozen=True, slots=True)
class FrameResult:
    """How a frame ended: ``error`` is a pallet error name (``None`` on success, in
    which case ``flags``/``data`` are what ``seal_return`` gave); ``gas_used`` includes
    instruction gas, host charges and the code load."""

    flags: int
    data: bytes
    error: str | None
    gas_used: int

    @property
    def reverted(self) -> bool:
        return self.error is None and bool(self.flags & _REVERT)

    @property
    def ok(self) -> bool:
        """Ended without error and without REVERT (its state changes are kept)."""
        return self.error is None and not self.flags & _REVERT


class Ext(Protocol):
    """The runtime as a running frame's host functions see it (implemented by
    :class:`~executor.revive.runtime.ReviveRuntime`)."""

    costs: CostTable
    limits: Limits
    state: State
    stack: list[Frame]
    origin: bytes

    def contract_at(self, address: bytes) -> ContractInfo | None: ...

    def transfer(self, source: bytes, dest: bytes, value: int) -> bool: ...

    def new_address(self, deployer: bytes, code_hash: bytes, input_data: bytes,
                    salt: bytes | None, nonce: int) -> bytes: ...

    def ext_call(self, caller: bytes, callee: bytes, value: int, input_data: bytes,
                 gas_limit: int, *, read_only: bool) -> FrameResult: ...

    def ext_delegate_call(self, parent: Frame, target: bytes, input_data: bytes,
                          gas_limit: int) -> FrameResult: ...

    def ext_instantiate(self, deployer: bytes, code_hash: bytes, input_data: bytes,
                        value: int, address: bytes, gas_limit: int, *,
                        bump_deployer_nonce: bool) -> FrameResult: ...
