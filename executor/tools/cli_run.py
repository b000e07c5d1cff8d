"""``pvm-exec run``: call one export of a blob through the embedding API.

::

    pvm-exec run BLOB --export NAME [ARGS...] [--backend B] [--gas N] [--trace]
                 [--host SYMBOL=VALUE ...] [--page-size N] [--no-gas]

Arguments are integers (decimal, ``0x``, ``0o`` or ``0b``; negative values are
two's complement), one register each.  Built-in debugging host functions are
bound to these import names when the blob imports them:

===================================================  ==============================
import                                               does
===================================================  ==============================
``print``, ``print_bytes``, ``debug_print``, ``log``  write the bytes ``(ptr, len)``
                                                     to stdout (a0 unchanged)
``ext_stdout``                                       the same, returns ``len``
``print_int``, ``print_u64``, ``print_i64``,          print the integer in ``a0``
``debug_int``                                        (``print_i64``: signed)
===================================================  ==============================

``--host SYMBOL=VALUE`` defines an import that returns a constant (e.g.
``--host get_third_number=100`` for the hello-world example).  Other imports
trap when called.  ``--trace`` prints ``pc: instruction`` to stderr before
every instruction.  Exit status: 0 on success, 1 if the guest trapped or ran
out of gas, 2 on other errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from executor.errors import OutOfGas, PvmError, Trap

PRINT_BYTES = ("print", "print_bytes", "debug_print", "log")
PRINT_INT = ("print_int", "print_u64", "debug_int")
PRINT_SIGNED = ("print_i64",)


def parse_int(text: str) -> int:
    """An integer in Python's literal forms (``10``, ``-1``, ``0x10``, ``0b1``)."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def parse_host(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected SYMBOL=VALUE, got {text!r}")
    return name, parse_int(value)


def add_run_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``run`` sub-command to an ``add_subparsers()`` object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="call an export of a .polkavm blob",
        description="Call one export through the embedding API and print its result.")
    p.add_argument("blob")
    p.add_argument("args", nargs="*", type=parse_int, metavar="ARG",
                   help="integer arguments (a0, a1, ...), here or after --export NAME")
    p.add_argument("--export", "-e", required=True, nargs="+", metavar=("NAME", "ARG"),
                   help="the export to call, optionally followed by its arguments")
    p.add_argument("--backend", default="interpreter", help="interpreter (default) or jit")
    p.add_argument("--gas", type=parse_int, default=None, help="gas for the call")
    p.add_argument("--no-gas", action="store_true", help="run without gas metering")
    p.add_argument("--page-size", type=parse_int, default=None)
    p.add_argument("--host", type=parse_host, action="append", default=[],
                   metavar="SYMBOL=VALUE", help="an import that returns a constant")
    p.add_argument("--trace", action="store_true",
                   help="print pc and instruction before every step (stderr)")
    p.set_defaults(func=cmd_run)
    return p


def debug_linker(out: TextIO, constants: Sequence[tuple[str, int]] = ()) -> Any:
    """A :class:`~executor.linker.Linker` with the built-in debugging functions."""
    from executor.linker import Linker

    linker = Linker(allow_missing=True)

    def write(data: bytes) -> None:
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            out.flush()
            buffer.write(data)
            buffer.flush()
        else:
            out.write(data.decode("utf-8", "replace"))

    def print_bytes(caller: Any, data: bytes) -> None:
        write(data)

    def ext_stdout(caller: Any, data: bytes) -> int:
        write(data)
        return len(data)

    def print_int(caller: Any, value: int) -> None:
        print(value, file=out, flush=True)

    for name in PRINT_BYTES:
        linker.define(name, print_bytes, args=["bytes"])
    linker.define("ext_stdout", ext_stdout, args=["bytes"], result="u32")
    for name in PRINT_INT:
        linker.define(name, print_int)
    for name in PRINT_SIGNED:
        linker.define(name, print_int, args=["i64"])
    for name, value in constants:
        if name in linker:
            raise PvmError(f"--host {name}: the import is already defined")
        linker.define(name, _constant(value))
    return linker


def _constant(value: int) -> Callable[[Any], int]:
    def constant(caller: Any) -> int:
        return value
    return constant


def _tracer(module: Any, err: TextIO) -> Callable[[Any, int], None]:
    from executor.tools.asm import format_instruction

    text = {i.pc: format_instruction(i) for i in module.blob.instructions()}

    def on_step(instance: Any, pc: int) -> None:
        print(f"{pc:>6}: {text.get(pc, '?')}", file=err)
    return on_step


def cmd_run(args: argparse.Namespace, out: TextIO | None = None,
            err: TextIO | None = None) -> int:
    """Runs ``pvm-exec run``; prints the result and the gas used."""
    from executor.config import Config
    from executor.engine import Engine, Module

    export, *trailing = args.export
    if trailing and args.args:
        raise PvmError("give the arguments either after the blob or after --export NAME")
    try:
        call_args = [parse_int(a) for a in trailing] or list(args.args)
    except argparse.ArgumentTypeError as exc:
        raise PvmError(str(exc)) from None
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    config = Config(backend=args.backend, gas_metering=not args.no_gas,
                    step_tracing=args.trace,
                    **({} if args.page_size is None else {"page_size": args.page_size}))
    module = Module(Engine(config), args.blob)
    instance = debug_linker(out, args.host).instantiate(module)
    if args.trace:
        instance.on_step = _tracer(module, err)
    try:
        result = instance.call(export, *call_args, gas=args.gas)
    except Trap as exc:
        print(f"trap: {exc}", file=out)
        _print_gas(instance, out)
        return 1
    except OutOfGas as exc:
        print(f"out of gas: {exc}", file=out)
        _print_gas(instance, out)
        return 1
    print(f"result {result}", file=out)
    _print_gas(instance, out)
    return 0


def _print_gas(instance: Any, out: TextIO) -> None:
    if instance.gas_metering:
        print(f"gas used {instance.gas_used}, left {instance.gas}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m executor.tools.cli_run run ...``)."""
    ap = argparse.ArgumentParser(prog="pvm-exec")
    add_run_parser(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(argv)
    try:
        return int(args.func(args))
    except PvmError as exc:
        print(f"pvm-exec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
