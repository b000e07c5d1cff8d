"""Errors of the pallet-revive runtime.

:class:`CodeRejected` is raised to the embedder when a blob fails upload-time
validation.  :class:`ExecError` ends a contract frame from inside a host function; its
``name`` is the pallet's ``Error<T>`` variant (``"OutOfBounds"``, ``"StateChangeDenied"``,
...) and ends up in :attr:`ExecResult.error <executor.revive.runtime.ExecResult.error>`.
"""

from __future__ import annotations

from executor.errors import PvmError

# Error names used by this implementation (pallet-revive ``Error<T>`` variants).
OUT_OF_GAS = "OutOfGas"
OUT_OF_BOUNDS = "OutOfBounds"
DECODING_FAILED = "DecodingFailed"
INVALID_CALL_FLAGS = "InvalidCallFlags"
INVALID_STORAGE_FLAGS = "InvalidStorageFlags"
INPUT_FORWARDED = "InputForwarded"
VALUE_TOO_LARGE = "ValueTooLarge"
TOO_MANY_TOPICS = "TooManyTopics"
STATE_CHANGE_DENIED = "StateChangeDenied"
REENTRANCE_DENIED = "ReentranceDenied"
MAX_CALL_DEPTH_REACHED = "MaxCallDepthReached"
CODE_NOT_FOUND = "CodeNotFound"
CODE_REJECTED = "CodeRejected"
INVALID_IMMUTABLE_ACCESS = "InvalidImmutableAccess"
CONTRACT_TRAPPED = "ContractTrapped"
EXECUTION_FAILED = "ExecutionFailed"
TRANSFER_FAILED = "TransferFailed"
DUPLICATE_CONTRACT = "DuplicateContract"
OUT_OF_TRANSIENT_STORAGE = "OutOfTransientStorage"
TERMINATED_WHILE_REENTRANT = "TerminatedWhileReentrant"
TERMINATED_IN_CONSTRUCTOR = "TerminatedInConstructor"
BALANCE_CONVERSION_FAILED = "BalanceConversionFailed"
PRECOMPILE_FAILED = "PrecompileFailed"  # an Ethereum precompile rejected its input


class ReviveError(PvmError):
    """Base class of the errors of :mod:`executor.revive`."""


class CodeRejected(ReviveError):
    """A code blob failed upload-time validation (``reason`` says which check)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"code rejected: {reason}")


class ExecError(ReviveError):
    """Ends the current contract frame with the pallet error ``name``."""

    def __init__(self, name: str, detail: str = ""):
        self.name = name
        self.detail = detail
        super().__init__(f"{name}: {detail}" if detail else name)


class FrameReturn(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by ``seal_return`` (and a tail call) to end the frame with output."""

    def __init__(self, flags: int, data: bytes):
        self.flags = flags
        self.data = data
        super().__init__(f"seal_return(flags={flags}, {len(data)} bytes)")
