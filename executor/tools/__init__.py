"""The tools built on the executor library: the ``pvm-exec`` command line and what
it runs -- the assembler and disassembler (:mod:`~executor.tools.asm`,
:mod:`~executor.tools.native_disasm`), spectool sources (:mod:`~executor.tools.spectool`),
the conformance-vector runner (:mod:`~executor.tools.vectors`), the differential tester
(:mod:`~executor.tools.difftest`), the DOOM player (:mod:`~executor.tools.doom`) and
``pvm-exec doctor`` (:mod:`~executor.tools.doctor`).

They depend on the library (``executor`` outside this package) and never the
reverse: nothing in the library imports ``executor.tools``.
"""
