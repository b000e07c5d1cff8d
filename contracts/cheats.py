"""Cheatcode machinery that needs a host-call layer: mocked calls.

:class:`MockCalls` sits in front of the ``call`` host function.  A call from a contract
to a mocked address whose input starts with a mocked calldata prefix is answered here
-- return data (or revert data) as registered, ``CALLEE_REVERTED`` or ``SUCCESS`` in
``a0``, the output copied with the usual variable-output convention -- and the real
callee never runs, like forge-std's ``vm.mockCall`` / ``vm.mockCallRevert``.  The
call still pays the ``call`` host charges.  ``TestChain`` answers its own top-level
transactions and dry runs from the same mocks (:meth:`MockCalls.match`).  The other
cheatcodes (``prank``, ``deal``, ``warp``, ``roll``, ``load``, ``store``) act on the
chain state directly; see ``TestChain``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from executor.revive.constants import ReturnCode
from executor.revive.hostfns import charge, write_output
from executor.revive.trace import call_callee, call_input


@dataclass(frozen=True)
class Mock:
    """One mocked call: ``address``, calldata ``prefix`` (empty: any call), the
    ``data`` returned and whether it reverts."""

    address: bytes
    prefix: bytes
    data: bytes
    revert: bool = False


class MockCalls:
    """A host-call layer (``call`` only) answering mocked calls; the longest matching
    prefix wins.  ``hits`` counts the answered calls."""

    host_calls = frozenset({"call"})

    def __init__(self) -> None:
        self.mocks: list[Mock] = []
        self.hits = 0

    def add(self, mock: Mock) -> None:
        self.mocks = [m for m in self.mocks
                      if (m.address, m.prefix) != (mock.address, mock.prefix)] + [mock]

    def match(self, callee: bytes, data: bytes) -> Mock | None:
        best: Mock | None = None
        for m in self.mocks:
            if m.address == callee and data.startswith(m.prefix) and (
                    best is None or len(m.prefix) > len(best.prefix)):
                best = m
        return best

    def host_call(self, name: str, caller: Any, proceed: Callable[[], None]) -> None:
        callee = call_callee(caller) if self.mocks else None
        if callee is None or all(m.address != callee for m in self.mocks):
            proceed()
            return
        data = call_input(caller)
        mock = self.match(callee, data)
        if mock is None:
            proceed()
            return
        f = caller.user_data
        costs = f.runtime.costs
        charge(caller, costs.host_fn + costs.call + costs.copy_bytes(len(data)))
        out = caller.reg(12)  # a5 = (out_len_ptr << 32) | out_ptr
        f.last_output = mock.data
        write_output(caller, f, out & 0xFFFF_FFFF, out >> 32, mock.data, skip_sentinel=True)
        caller.set_reg(7, ReturnCode.CALLEE_REVERTED if mock.revert else ReturnCode.SUCCESS)
        self.hits += 1
