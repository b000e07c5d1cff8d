"""One contract frame of the call stack, and what a frame ends with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from executor.revive.constants import ReturnFlags

if TYPE_CHECKING:
    from executor.revive.runtime import ReviveRuntime

_REVERT = int(ReturnFlags.REVERT)  # a plain int: IntFlag operators cost microseconds


@dataclass(slots=True)
class Frame:
    """A running contract frame (the ``user_data`` of its PolkaVM instance).

    ``account`` owns storage, balance and events (for a delegate call: the delegating
    contract); ``code_owner`` is the contract whose code runs (its immutable data is
    what ``get_immutable_data`` reads).  ``input`` is ``None`` once forwarded.
    """

    runtime: ReviveRuntime
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
