"""The assembler and disassembler (executor.tools.asm).

Expected bytes come from the specification (blob-format.md sections 4 and 6, isa.md's
worked decodes), from the JAM v0.4 vectors (which the reference generated from the same
spectool sources) and from the C decoder, never from the assembler itself.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from executor.blob import Instruction, ProgramBlob
from executor.errors import AssemblerError
from executor.isa import REG_NAMES, Form, InstructionSet, ops
from executor.tools.asm import ProgramBuilder, assemble, disassemble, format_instruction
from tests.conftest import BLOBS, JAM_VECTORS, SAMPLES, SPECTOOL

HARNESS = re.compile(r"^(pre|post|step):")
R = {name: i for i, name in enumerate(REG_NAMES)}


def code_of(text: str, isa: InstructionSet = InstructionSet.JAM_V1) -> list[Instruction]:
    """Assembles ``text`` and decodes it again with the C decoder."""
    blob = assemble(text, isa=isa)
    return [i for i in blob.instructions() if not i.implicit]


def one(text: str, isa: InstructionSet = InstructionSet.JAM_V1) -> Instruction:
    insns = code_of(text, isa)
    assert len(insns) == 1, [i.mnemonic for i in insns]
    return insns[0]


def strip_harness(path: Path) -> str:
    return "\n".join("" if HARNESS.match(line) else line
                     for line in path.read_text().splitlines())


def bits(blob: ProgramBlob) -> list[int]:
    return [i for i in range(len(blob.code)) if blob.bitmask[i >> 3] >> (i & 7) & 1]


# ---- the worked examples of the specification ------------------------------------------

HELLO_WORLD_HEX = """
50 56 4d 00 01 5d 00 00 00 00 00 00 00 01 04 00
00 a0 00 04 15 01 00 00 00 00 67 65 74 5f 74 68
69 72 64 5f 6e 75 6d 62 65 72 05 0e 01 00 0b 61
64 64 5f 6e 75 6d 62 65 72 73 06 20 00 00 19 83
11 f8 7a 10 04 7a 15 be 78 05 0a be 57 07 81 10
04 81 15 83 11 08 32 00 49 99 94 00 00
"""

HELLO_WORLD_SOURCE = """
%isa = latest32
%stack_size = 8192
%import 0 = get_third_number

pub @add_numbers:
    i32 sp = sp - 8
    u32 [sp + 4] = ra
    u32 [sp] = s0
    i32 s0 = a1 + a0
    ecalli 0
    i32 a0 = a0 + s0
    ra = i32 [sp + 4]
    s0 = i32 [sp]
    i32 sp = sp + 8
    ret
"""


def test_hello_world_container_bytes() -> None:
    """blob-format.md section 4: the whole 93-byte file."""
    expected = bytes.fromhex(HELLO_WORLD_HEX)
    assert assemble(HELLO_WORLD_SOURCE).to_bytes() == expected
    assert (BLOBS / "example-hello-world.polkavm").read_bytes() == expected


def test_raw_code_blob_example() -> None:
    """blob-format.md section 6: a JAM v0.4 program with a one-entry jump table."""
    text = """
        pub @main:
            a0 = @target
            tmp = a0, a0 = 1234, jump [tmp + 1]
            trap
        @target:
            a2 = 0xdeadbeef
    """
    blob = assemble(text, isa=InstructionSet.LATEST64)
    expected = "01 01 14 0a 33 07 02 b4 77 02 d2 04 01 00 14 09 ef be ad de 00 00 00 00 09 06 00"
    assert blob.code_blob() == bytes.fromhex(expected)


@pytest.mark.parametrize(("source", "expected"), [
    ("i32 a2 = a0 + a1", "be 87 09"),  # isa.md: add_32, RRR
    ("u8 [0x20000] = 0x12", "1e 03 00 00 02 12"),  # store_imm_u8, II
    ("u8 [a0 + 0x1001] = a1", "78 78 01 10"),  # store_indirect_u8, RRI
    ("i32 sp = sp + -8", "83 11 f8"),  # blob-format.md section 4
    ("ret", "32 00"),
    ("ecalli 0", "0a"),
    ("ecalli 0xffffffff", "0a ff"),  # minimum bytes surviving sign extension
    ("a0 = 0", "33 07"),
    ("a0 = 0xdeadbeef", "14 07 ef be ad de 00 00 00 00"),  # load_imm64
])
def test_spec_encodings(source: str, expected: str) -> None:
    assert assemble(source).code == bytes.fromhex(expected)


def test_counter_call_convention_example() -> None:
    """blob-format.md section 5: pc 2611 is `load_imm_and_jump ra = 48, jump 819`."""
    blob = ProgramBlob.load(SAMPLES / "Counter_sol_Counter.polkavm")
    lines = disassemble(blob, raw=True).splitlines()
    line = next(x for x in lines if "// 2611:" in x)
    assert line.split("//")[0].strip() == "ra = 48, jump @L819"
    assert line.endswith("50 10 30 00 f9")
    assert any(x.startswith("@L819:") for x in lines)
    assert any(x.startswith("pub @deploy:") and "jump table #23 (address 48)" in x
               for x in lines)


# ---- the spectool sources against the JAM v0.4 vectors ----------------------------------

def _jam_names() -> list[str]:
    return sorted(p.stem for p in JAM_VECTORS.glob("*.json"))


@pytest.mark.parametrize("name", _jam_names())
def test_sources_match_jam_vector_programs(name: str) -> None:
    """The reference generated the v0.4 programs from these sources (with Latest64
    opcode numbers); the 0.35 sources add a final `trap` after `@expected_exit`."""
    vector = json.loads((JAM_VECTORS / f"{name}.json").read_text())
    program = bytes(vector["program"])
    mine = assemble(strip_harness(SPECTOOL / f"{name}.txt"), isa=InstructionSet.LATEST64)
    if mine.code_blob() == program:
        return
    theirs = ProgramBlob.from_code_blob(program, InstructionSet.LATEST64)
    n = len(theirs.code)
    assert mine.code == theirs.code + b"\x00"
    assert bits(mine) == bits(theirs) + [n]
    assert mine.jump_table == theirs.jump_table
    assert mine.jump_table_entry_size == theirs.jump_table_entry_size


def test_all_sources_assemble_as_jam_v1() -> None:
    paths = sorted(SPECTOOL.glob("*.txt"))
    assert len(paths) == 257
    for path in paths:
        blob = assemble(strip_harness(path), path=str(path))
        assert blob.isa is InstructionSet.JAM_V1
        assert {e.name for e in blob.exports} >= {"main"}


# ---- syntax -------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "mnemonic", "operands"), [
    ("trap", "trap", {}),
    ("fallthrough", "fallthrough", {}),
    ("unlikely", "unlikely", {}),
    ("nop", "move_reg", {"rd": 0, "ra": 0}),
    ("ret", "jump_indirect", {"ra": 0, "imm1": 0}),
    ("jump [a1 + 16]", "jump_indirect", {"ra": R["a1"], "imm1": 16}),
    ("jump [a1 - 16]", "jump_indirect", {"ra": R["a1"], "imm1": -16}),
    ("ecalli 7", "ecalli", {"imm1": 7}),
    ("a0 = a1", "move_reg", {"rd": R["a0"], "ra": R["a1"]}),
    ("r7 = r8", "move_reg", {"rd": R["a0"], "ra": R["a1"]}),
    ("a0 = -1", "load_imm", {"ra": R["a0"], "imm1": -1}),
    ("a0 = 0xffffffff87654321", "load_imm", {"imm1": 0x87654321 - (1 << 32)}),
    ("a0 = 0xffffffff", "load_imm64", {"imm64": 0xFFFFFFFF}),
    ("a0 = 0x80000075", "load_imm64", {"imm64": 0x80000075}),
    ("a0 = i64 5", "load_imm64", {"imm64": 5}),
    ("a0 = a1 + a2", "add_64", {"rd": R["a0"], "ra": R["a1"], "rb": R["a2"]}),
    ("i32 a0 = a1 - a2", "sub_32", {"rd": R["a0"], "ra": R["a1"], "rb": R["a2"]}),
    ("a0 = a1 >u a2", "set_less_than_unsigned", {"rd": R["a0"], "ra": R["a2"], "rb": R["a1"]}),
    ("a0 = a1 >s a2", "set_less_than_signed", {"ra": R["a2"], "rb": R["a1"]}),
    ("a0 = a1 & ~a2", "and_inverted", {"ra": R["a1"], "rb": R["a2"]}),
    ("a0 = a1 | ~a2", "or_inverted", {"ra": R["a1"], "rb": R["a2"]}),
    ("a0 = ~(a1 ^ a2)", "xnor", {"rd": R["a0"], "ra": R["a1"], "rb": R["a2"]}),
    ("a0 = a1 <<r a2", "rotate_left_64", {}),
    ("i32 a0 = a1 >>r a2", "rotate_right_32", {}),
    ("a0 = a1 - 5", "add_imm_64", {"ra": R["a0"], "rb": R["a1"], "imm1": -5}),
    ("a0 = a1 & 0xfffffffffffff8ff", "and_imm", {"imm1": -1793}),
    ("a0 = 5 - a1", "negate_and_add_imm_64", {"ra": R["a0"], "rb": R["a1"], "imm1": 5}),
    ("a0 = 5 + a1", "add_imm_64", {"rb": R["a1"], "imm1": 5}),
    ("i32 a0 = 3 << a1", "shift_logical_left_imm_alt_32", {"imm1": 3}),
    ("a0 = 3 >>r a1", "rotate_right_imm_alt_64", {}),
    ("a0 = a1 >>r 3", "rotate_right_imm_64", {"imm1": 3}),
    ("a0 = 3 <u a1", "set_greater_than_unsigned_imm", {"rb": R["a1"], "imm1": 3}),
    ("a0 = 3 >s a1", "set_less_than_signed_imm", {"rb": R["a1"], "imm1": 3}),
    ("a0 = maxu(a1, a2)", "maximum_unsigned", {"rd": R["a0"], "ra": R["a1"], "rb": R["a2"]}),
    ("a0 = mins(a1, a2)", "minimum", {}),
    ("i32 a0 = clz a1", "count_leading_zero_bits_32", {"rd": R["a0"], "ra": R["a1"]}),
    ("a0 = cpop a1", "count_set_bits_64", {}),
    ("a0 = sext16 a1", "sign_extend_16", {}),
    ("a0 = reverse a1", "reverse_byte", {}),
    ("a0 = a1 if a2 == 0", "cmov_if_zero", {"rd": R["a0"], "ra": R["a1"], "rb": R["a2"]}),
    # the reproduced 0.35 quirk: `!=` assembles as cmov_if_zero too
    ("a0 = a1 if a2 != 0", "cmov_if_zero", {"rd": R["a0"], "ra": R["a1"], "rb": R["a2"]}),
    ("a0 = 9 if a2 != 0", "cmov_if_zero_imm", {"ra": R["a0"], "rb": R["a2"], "imm1": 9}),
    ("a0 = a1 unless a2 == 0", "cmov_if_not_zero", {"rd": R["a0"], "ra": R["a1"]}),
    ("a0 = 9 unless a2 == 0", "cmov_if_not_zero_imm", {"ra": R["a0"], "imm1": 9}),
    ("a0 = a1 mulhsu a2", "mul_upper_signed_unsigned", {"rd": R["a0"]}),
    ("a0 = i16 [0x20000]", "load_i16", {"ra": R["a0"], "imm1": 0x20000}),
    ("a0 = u64 [a1 + 8]", "load_indirect_u64", {"ra": R["a0"], "rb": R["a1"], "imm1": 8}),
    ("a0 = u8 [a1]", "load_indirect_u8", {"rb": R["a1"], "imm1": 0}),
    ("a0 = u32 [0xfffe0000]", "load_u32", {"imm1": 0xFFFE0000 - (1 << 32)}),
    ("u16 [0x20000] = a3", "store_u16", {"ra": R["a3"], "imm1": 0x20000}),
    ("u64 [a1 + 4] = a3", "store_indirect_u64", {"ra": R["a3"], "rb": R["a1"], "imm1": 4}),
    ("u32 [a1 + 4] = 7", "store_imm_indirect_u32", {"ra": R["a1"], "imm1": 4, "imm2": 7}),
    ("u8 [a1] = -1", "store_imm_indirect_u8", {"imm2": -1}),
    ("u64 [0x100] = 7", "store_imm_u64", {"imm1": 0x100, "imm2": 7}),
    ("a1 = 1234, jump [a0 + 100]", "load_imm_and_jump_indirect",
     {"ra": R["a1"], "rb": R["a0"], "imm1": 1234, "imm2": 100}),
    ("tmp = a0, a0 = 1234, jump [tmp]", "load_imm_and_jump_indirect",
     {"ra": R["a0"], "rb": R["a0"], "imm1": 1234, "imm2": 0}),
])
def test_syntax(source: str, mnemonic: str, operands: dict[str, int]) -> None:
    insn = one(source, InstructionSet.LATEST64)
    assert insn.mnemonic == mnemonic
    for name, value in operands.items():
        assert getattr(insn, name) == value, name


@pytest.mark.parametrize(("source", "mnemonic", "ra", "rb_or_imm"), [
    ("jump @t if a0 <=u a1", "branch_greater_or_equal_unsigned", "a1", "a0"),
    ("jump @t if a0 >s a1", "branch_less_signed", "a1", "a0"),
    ("jump @t if a0 >=s a1", "branch_greater_or_equal_signed", "a0", "a1"),
    ("jump @t if a0 != a1", "branch_not_eq", "a0", "a1"),
    ("jump @t if a0 <=u 7", "branch_less_or_equal_unsigned_imm", "a0", 7),
    ("jump @t if 7 <u a0", "branch_greater_unsigned_imm", "a0", 7),
    ("jump @t if -7 >=s a0", "branch_less_or_equal_signed_imm", "a0", -7),
])
def test_branch_forms(source: str, mnemonic: str, ra: str, rb_or_imm: str | int) -> None:
    insns = code_of(f"@t:\n{source}\ntrap")
    insn = insns[0]
    assert insn.mnemonic == mnemonic
    assert insn.ra == R[ra]
    if isinstance(rb_or_imm, str):
        assert insn.rb == R[rb_or_imm]
    else:
        assert insn.imm1 == rb_or_imm
    assert insn.target == 0


def test_label_address_appends_to_jump_table() -> None:
    blob = assemble("""
        pub @main:
            a0 = @b
            a1 = @a
            a2 = @b
            trap
        @a:
            trap
        @b:
            trap
    """)
    insns = [i for i in blob.instructions() if not i.implicit]
    assert [i.imm1 for i in insns[:3]] == [2, 4, 6]
    assert blob.jump_table == [insns[5].pc, insns[4].pc, insns[5].pc]
    assert blob.jump_table_entry_size == 1


def test_fallthrough_insertion_and_no_fallthrough() -> None:
    blob = assemble("""
        pub @main:
            a0 = 1
        @next:
            a1 = 2
        pub @here: %no_fallthrough
            trap
    """)
    insns = [i for i in blob.instructions() if not i.implicit]
    assert [i.mnemonic for i in insns] == ["load_imm", "fallthrough", "load_imm", "trap"]
    assert blob.export_pc("here") == insns[3].pc
    # no fallthrough when the previous instruction ends the block, or between labels
    insns = code_of("pub @main:\npub @expected_exit:\ntrap\n@x:\ntrap")
    assert [i.mnemonic for i in insns] == ["trap", "trap"]


def test_comments_and_whitespace() -> None:
    insn = one("   // a comment\n\n\t a0 = a1 + 1   // trailing comment\n")
    assert insn.mnemonic == "add_imm_64"


def test_data_and_memory_directives() -> None:
    blob = assemble("""
        %ro_data_size = 10
        %rw_data_size = 4096
        %stack_size = 8192
        %ro_data = 01 02 0x03
        %ro_data = 0405
        %rw_data = ff
        %section 200 = abcd
        %import 1 = second
        %import 0 = "first \\x00 \\"quoted\\""
        trap
    """)
    assert (blob.ro_data_size, blob.rw_data_size, blob.stack_size) == (10, 4096, 8192)
    assert blob.ro_data == bytes([1, 2, 3, 4, 5])
    assert blob.rw_data == b"\xff"
    assert blob.debug_sections == {200: b"\xab\xcd"}
    assert blob.imports == [b'first \x00 "quoted"', b"second"]
    again = ProgramBlob.from_bytes(blob.to_bytes())
    assert again.imports == blob.imports and again.debug_sections == blob.debug_sections


def test_raw_bytes_and_absolute_targets() -> None:
    blob = assemble("""
        %raw ff 01 02
        %bytes 00 00
        jump @0
        jump @3
    """, isa=InstructionSet.LATEST64)
    assert blob.code == bytes.fromhex("ff0102 0000 28fb 28fc".replace(" ", ""))
    assert bits(blob) == [0, 5, 7]


def test_exports_by_directive_keep_order() -> None:
    blob = assemble("""
        %export @b = "second export"
        %export 0 = first
        @a:
            trap
        @b:
            trap
    """)
    assert [(e.pc, e.symbol) for e in blob.exports] == [(1, b"second export"), (0, b"first")]


def test_latest32_uses_32_bit_variants() -> None:
    insns = code_of("a0 = a1 + a2\na0 = clz a1\na0 = 0xffffffff", InstructionSet.LATEST32)
    assert [i.mnemonic for i in insns] == ["add_32", "count_leading_zero_bits_32", "load_imm"]
    assert insns[2].imm1 == -1


def test_memset_and_sbrk_forms() -> None:
    insns = code_of("memset\n[a0..a0 + a2] = u8 a1\na0 = sbrk a1", InstructionSet.LATEST64)
    assert [i.mnemonic for i in insns] == ["memset", "memset", "sbrk"]


# ---- every instruction of every instruction set round-trips through text ----------------

IMMS = [0, 1, -1, 127, 128, -128, -129, 0x7FFF, 0x8000, -0x8000, 0x7FFFFF, -0x800001,
        0x7FFFFFFF, -0x80000000, 12345, -98765]


@pytest.mark.parametrize("isa", list(InstructionSet), ids=lambda isa: isa.key)
def test_every_instruction_round_trips(isa: InstructionSet) -> None:
    rng = random.Random(isa)
    b = ProgramBuilder(isa)
    b.label("start")
    count = 0
    for info in ops():
        if info.opcodes[isa] is None:
            continue
        for _ in range(12):
            targets: list[str | int] = ["start", "end", 7, 0]
            target = rng.choice(targets) if info.form in (Form.O, Form.RIO, Form.RRO) else None
            b.emit(info.mnemonic, ra=rng.randrange(13), rb=rng.randrange(13),
                   rd=rng.randrange(13), imm1=rng.choice(IMMS), imm2=rng.choice(IMMS),
                   imm64=rng.choice([0, 1, (1 << 64) - 1, 1 << 63, 0xDEADBEEF]), target=target)
            count += 1
    b.label("end", fallthrough=False)
    b.emit("trap")
    blob = b.build()
    decoded = [i for i in blob.instructions() if not i.implicit]
    assert len(decoded) == count + 1
    assert all(i.info is not None for i in decoded)
    text = disassemble(blob)
    assert "%raw" not in text
    again = assemble(text)
    assert (again.code, again.bitmask, again.isa) == (blob.code, blob.bitmask, isa)
    assert disassemble(again) == text


def test_format_instruction_examples() -> None:
    insns = code_of("""
        @top:
        jump @top if a0 <s -3
        a0 = a1 - 8
        u8 [0x20000] = 255
        a0 = 0x123456789
    """)
    assert [format_instruction(i) for i in insns] == [
        "jump @0 if a0 <s -3",
        "a0 = a1 - 8",
        "u8 [0x20000] = 255",
        "a0 = 0x123456789",
    ]


# ---- ProgramBuilder -------------------------------------------------------------------------

def test_builder() -> None:
    b = ProgramBuilder(InstructionSet.JAM_V1)
    b.label("main", export=True)
    b.emit("load_imm", ra="a0", imm1=0)
    b.label("loop")  # inserts a fallthrough: load_imm does not end the block
    b.emit("add_imm_64", ra="a0", rb="a0", imm1=1)
    b.emit("branch_less_unsigned_imm", ra="a0", imm1=10, target="loop")
    b.load_address("a1", "done")
    b.emit("jump_indirect", ra="a1")
    b.label("done")
    b.emit("trap")
    blob = b.build()
    insns = [i for i in blob.instructions() if not i.implicit]
    assert [i.mnemonic for i in insns] == [
        "load_imm", "fallthrough", "add_imm_64", "branch_less_unsigned_imm", "load_imm",
        "jump_indirect", "trap"]
    assert insns[3].target == insns[2].pc
    assert blob.jump_table == [insns[6].pc]
    assert b.label_pc("loop") == insns[2].pc
    assert b.label_pc("main", 3) == insns[3].pc
    assert blob.export_pc("main") == 0


def test_builder_rejects_bad_operands() -> None:
    b = ProgramBuilder(InstructionSet.JAM_V1)
    with pytest.raises(AssemblerError, match="not available"):
        b.emit("sbrk", rd=1, ra=2)
    with pytest.raises(AssemblerError, match="register"):
        b.emit("move_reg", rd=13)
    with pytest.raises(AssemblerError, match="immediate"):
        b.emit("load_imm", ra=1, imm1=1 << 40)
    with pytest.raises(AssemblerError, match="target"):
        b.emit("jump")


# ---- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "line", "message"), [
    ("trap\nfoo bar", 2, "cannot parse"),
    ("trap\n\njump @nowhere", 3, "label is not defined"),
    ("@a:\ntrap\n@a:", 3, "duplicate label"),
    ("a0 = a1 + 0xffffffff", 1, "does not fit i32"),
    ("a0 = a1 /u 3", 1, "does not take an immediate"),
    ("i32 a0 = a1 & a2", 1, "i32 is not supported"),
    ("trap\n%isa = latest64", 2, "%isa must come before"),
    ("a0 = sbrk a1", 1, "not available in jam_v1"),
    ("a0 = 1, jump [a0]", 1, "tmp ="),
    ("%frobnicate = 1", 1, "unknown directive"),
    ("pub @7:", 1, "cannot be a number"),
    ("a0 = 3 if a1 >u 0", 1, "conditional move"),
    ("jump @x if 1 == 2\n@x:", 1, "at least one register"),
    ("%import 1 = x\ntrap", None, "numbered 0..n-1"),
    ("a0 = u8 [a1 * 2]", 1, "memory operand"),
    ("%raw zz", 1, "hex"),
])
def test_errors(source: str, line: int | None, message: str) -> None:
    with pytest.raises(AssemblerError, match=re.escape(message)) as info:
        assemble(source, path="t.s")
    assert info.value.line == line
    assert info.value.path == "t.s"
    if line is not None:
        assert str(info.value).startswith(f"t.s:{line}: ")
