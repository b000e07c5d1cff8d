"""Upload-time validation of contract code, as pallet-revive's ``limits::code::enforce``.

A blob is rejected (:class:`~executor.revive.errors.CodeRejected`) when it is larger
than ``Limits.blob_bytes``, does not parse, is not 64-bit, imports a symbol the runtime
does not know (or an unnamed one), contains ``sbrk``, an invalid instruction or
``ecalli 0xFFFFFFFF`` (reserved for benchmarks), has a basic block longer than
``Limits.max_basic_block`` instructions, or needs more static memory (ro + rw + stack)
than ``Limits.max_static_memory``.
"""

from __future__ import annotations

from collections.abc import Collection

from executor.blob import ProgramBlob
from executor.errors import BlobError
from executor.revive.constants import SENTINEL, Limits
from executor.revive.errors import CodeRejected


def validate_code(blob: bytes, known_imports: Collection[str],
                  limits: Limits | None = None) -> ProgramBlob:
    """Checks ``blob`` like the pallet does at upload; returns the parsed program."""
    limits = limits or Limits()
    if len(blob) > limits.blob_bytes:
        raise _rejected(f"the blob has {len(blob)} bytes, more than the limit of "
                        f"{limits.blob_bytes}")
    try:
        program = ProgramBlob.from_bytes(bytes(blob))
    except BlobError as exc:
        raise _rejected(f"the blob does not parse: {exc}") from exc
    if not program.isa.is_64_bit:
        raise _rejected(f"only 64-bit programs are accepted, this one is {program.isa.key}")
    for index, name in enumerate(program.import_names()):
        if name is None:
            raise _rejected(f"import {index} has no name")
        if name not in known_imports:
            raise _rejected(f"unknown import {name!r} (not a host function of this runtime)")
    static = program.ro_data_size + program.rw_data_size + program.stack_size
    if static > limits.max_static_memory:
        raise _rejected(f"the program needs {static} bytes of static memory, more than "
                        f"{limits.max_static_memory}")
    block_len = 0
    for insn in program.instructions(listing=False):
        info = insn.info
        if info is None:
            raise _rejected(f"invalid instruction at pc {insn.pc}")
        if info.mnemonic == "sbrk":
            raise _rejected(f"sbrk is not allowed (pc {insn.pc})")
        if info.mnemonic == "ecalli" and insn.imm1 & SENTINEL == SENTINEL:
            raise _rejected(f"ecalli 0xFFFFFFFF is reserved (pc {insn.pc})")
        block_len += 1
        if block_len > limits.max_basic_block:
            raise _rejected(f"a basic block is longer than {limits.max_basic_block} "
                            f"instructions (at pc {insn.pc})")
        if info.is_terminator:
            block_len = 0
    return program


def _rejected(reason: str) -> CodeRejected:
    return CodeRejected(reason)
