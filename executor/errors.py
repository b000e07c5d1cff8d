"""Exception classes of the executor, all under one base, :class:`PvmError`."""

from __future__ import annotations


class PvmError(Exception):
    """Base class of every error raised by this package.

    ``gas_left``: for an error that ended a call made through
    :class:`executor.aio.Executor`, the gas the guest had left when it stopped
    (``None`` when not known or not a call).
    """

    gas_left: int | None = None


class BlobError(PvmError):
    """A program blob is malformed.

    ``section`` names the section or field, ``offset`` is the byte offset in
    the blob where the problem was found (``None`` when not applicable).
    """

    def __init__(self, message: str, *, section: str | None = None, offset: int | None = None):
        self.reason = message
        self.section = section
        self.offset = offset
        where = []
        if section is not None:
            where.append(section)
        if offset is not None:
            where.append(f"offset 0x{offset:x}")
        text = f"failed to parse program blob: {message}"
        if where:
            text += f" ({', '.join(where)})"
        super().__init__(text)


class ModuleError(PvmError):
    """A blob parsed but cannot be turned into a runnable module
    (memory map, validation, configuration)."""


class AssemblerError(PvmError):
    """A text program could not be assembled; names the line."""

    def __init__(self, message: str, *, line: int | None = None, path: str | None = None):
        self.reason = message
        self.line = line
        self.path = path
        where = ""
        if path is not None:
            where += path
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {message}" if where else message)


class ExecutionError(PvmError):
    """The host used an instance wrongly (for example ran it with no pc set)."""


class SandboxError(ExecutionError):
    """A sandbox worker could not be started, died, stopped answering (no
    progress for the stall timeout), ran past its deadline, or broke the
    protocol (wrote something out of range into the control page).  The worker
    is dead when this is raised; the instance that used it cannot run again."""


class Trap(PvmError):
    """The guest trapped."""

    def __init__(self, pc: int | None, function: str | None = None, message: str = "guest trapped"):
        self.pc = pc
        self.function = function
        text = message
        if pc is not None:
            text += f" at pc {pc}"
        if function:
            text += f" in {function}"
        super().__init__(text)


class OutOfGas(PvmError):
    """The guest ran out of gas."""

    def __init__(self, pc: int | None = None, gas: int | None = None):
        self.pc = pc
        self.gas = gas
        super().__init__("out of gas" + (f" at pc {pc}" if pc is not None else ""))


class HostError(PvmError):
    """A host function raised; the original exception is chained as __cause__.

    ``symbol`` names the host function (import), ``function`` the export that
    was being called and ``pc`` the ``ecalli`` (each ``None`` when unknown)."""

    def __init__(self, message: str, *, symbol: str | None = None,
                 function: str | None = None, pc: int | None = None):
        self.symbol = symbol
        self.function = function
        self.pc = pc
        super().__init__(message)


class MissingImport(PvmError):
    """A module imports a symbol the linker does not define."""

    def __init__(self, symbol: str):
        self.symbol = symbol
        super().__init__(f"missing import: {symbol!r}")


class GuestFault(PvmError):
    """Raised inside a host function to make the calling guest trap cleanly.

    The :class:`~executor.caller.Caller` memory accessors raise it for a bad
    guest pointer (``address``/``length`` name the range); a host function may
    also raise it itself for any guest mistake.  The call then fails with
    :class:`Trap` at the ``ecalli``, with this exception as ``__cause__``.
    """

    def __init__(self, message: str, *, address: int | None = None, length: int | None = None):
        self.address = address
        self.length = length
        super().__init__(message)
