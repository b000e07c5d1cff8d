"""The opcode tables of shared/spec/isa.md section 4 against executor.isa and the C core.

The spec is parsed here, independently of native/isa.def: both the big markdown
table (`| Revive | L32 | L64 | Jam | class | mnemonic | ... |`) and the four
"Opcode lists by number" paragraphs.  Every opcode of every instruction set, its
mnemonic and its operand class must match, in both directions.  The C opcode
map is checked a second way by decoding every byte value with
``pvm_decode_one``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from executor.isa import Form, InstructionSet, opcode_table, ops
from executor.native import ffi, lib

ISA_MD = Path(__file__).resolve().parent.parent.parent / "shared" / "spec" / "isa.md"

# column order of the table, and the headings of the per-ISA lists
COLUMNS = (InstructionSet.REVIVE_V1, InstructionSet.LATEST32, InstructionSet.LATEST64,
           InstructionSet.JAM_V1)
LIST_NAMES = {
    "ReviveV1": InstructionSet.REVIVE_V1,
    "Latest32": InstructionSet.LATEST32,
    "Latest64": InstructionSet.LATEST64,
    "JamV1": InstructionSet.JAM_V1,
}
EXPECTED_COUNTS = {
    InstructionSet.REVIVE_V1: 138,
    InstructionSet.LATEST32: 106,
    InstructionSet.LATEST64: 141,
    InstructionSet.JAM_V1: 139,
}

Row = tuple[str, str, tuple[int | None, int | None, int | None, int | None]]


def _section4() -> str:
    if not ISA_MD.exists():
        pytest.fail(f"the spec is missing: {ISA_MD}")
    text = ISA_MD.read_text()
    start = text.index("## 4. Opcode numbers per instruction set")
    end = text.index("## 5.", start)
    return text[start:end]


@cache
def spec_rows() -> tuple[Row, ...]:
    """(mnemonic, class, opcodes per column) for every row of the section-4 table."""
    rows = []
    header_seen = False
    for line in _section4().splitlines():
        if line.startswith("| Revive | L32 | L64 | Jam | class | mnemonic |"):
            header_seen = True
            continue
        if not header_seen or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set(cells[0]) <= {"-"}:
            continue  # the |---| separator
        codes: list[int | None] = []
        for c in cells[:4]:
            codes.append(None if c == "—" else int(c))
        cls = cells[4]
        m = re.fullmatch(r"`([a-z0-9_]+)`", cells[5])
        assert m, f"bad mnemonic cell in {line!r}"
        rows.append((m.group(1), cls, (codes[0], codes[1], codes[2], codes[3])))
    assert header_seen, "table header not found in isa.md section 4"
    return tuple(rows)


@cache
def spec_lists() -> dict[InstructionSet, tuple[int, dict[int, str]]]:
    """The "Opcode lists by number" paragraphs: isa -> (stated count, opcode -> mnemonic)."""
    out: dict[InstructionSet, tuple[int, dict[int, str]]] = {}
    for m in re.finditer(r"^\*\*(\w+)\*\* \((\d+) opcodes\): (.*)$", _section4(), re.M):
        isa = LIST_NAMES[m.group(1)]
        entries: dict[int, str] = {}
        for item in m.group(3).split(", "):
            im = re.fullmatch(r"(\d+) `([a-z0-9_]+)`", item.strip())
            assert im, f"bad list item {item!r} in the {m.group(1)} list"
            code = int(im.group(1))
            assert code not in entries, f"opcode {code} listed twice for {m.group(1)}"
            entries[code] = im.group(2)
        out[isa] = (int(m.group(2)), entries)
    return out


def spec_table(isa: InstructionSet) -> dict[int, tuple[str, str]]:
    """opcode -> (mnemonic, class) for one ISA, from the markdown table."""
    col = COLUMNS.index(isa)
    out: dict[int, tuple[str, str]] = {}
    for mnemonic, cls, codes in spec_rows():
        code = codes[col]
        if code is not None:
            assert code not in out, f"{isa.name}: opcode {code} appears in two rows"
            out[code] = (mnemonic, cls)
    return out


ALL_ISAS = list(InstructionSet)


def test_spec_parses_completely() -> None:
    rows = spec_rows()
    # 141 instructions exist in all (Latest64 has every one of them)
    assert len(rows) == 141
    assert len({r[0] for r in rows}) == 141
    assert set(spec_lists()) == set(InstructionSet)


@pytest.mark.parametrize("isa", ALL_ISAS, ids=lambda i: i.name)
def test_counts(isa: InstructionSet) -> None:
    stated, listed = spec_lists()[isa]
    assert stated == EXPECTED_COUNTS[isa]
    assert len(listed) == EXPECTED_COUNTS[isa]
    assert len(spec_table(isa)) == EXPECTED_COUNTS[isa]
    assert len(opcode_table(isa)) == EXPECTED_COUNTS[isa]


@pytest.mark.parametrize("isa", ALL_ISAS, ids=lambda i: i.name)
def test_table_and_lists_of_the_spec_agree(isa: InstructionSet) -> None:
    table = {code: mn for code, (mn, _) in spec_table(isa).items()}
    assert table == spec_lists()[isa][1]


@pytest.mark.parametrize("isa", ALL_ISAS, ids=lambda i: i.name)
def test_executor_matches_spec_both_directions(isa: InstructionSet) -> None:
    spec = spec_table(isa)
    ours = opcode_table(isa)
    missing = sorted(set(spec) - set(ours))
    extra = sorted(set(ours) - set(spec))
    assert not missing, f"{isa.name}: opcodes in the spec but not in executor.isa: {missing}"
    assert not extra, f"{isa.name}: opcodes in executor.isa but not in the spec: {extra}"
    for code, (mnemonic, cls) in spec.items():
        info = ours[code]
        assert info.mnemonic == mnemonic, f"{isa.name} opcode {code}"
        assert info.form is Form[cls], f"{isa.name} opcode {code} ({mnemonic})"
        assert info.opcode(isa) == code


def test_every_instruction_row_matches() -> None:
    """Per instruction (row): the executor's four opcode numbers and class equal the spec's."""
    ours = {o.mnemonic: o for o in ops()}
    assert set(ours) == {r[0] for r in spec_rows()}
    for mnemonic, cls, codes in spec_rows():
        info = ours[mnemonic]
        assert info.form is Form[cls], mnemonic
        for col, isa in enumerate(COLUMNS):
            assert info.opcodes[isa] == codes[col], (mnemonic, isa.name)


@pytest.mark.parametrize("isa", ALL_ISAS, ids=lambda i: i.name)
def test_c_decoder_opcode_map(isa: InstructionSet) -> None:
    """Decode each byte value 0..255 as a lone instruction with the C decoder: known
    opcodes give the spec's mnemonic and class, every other byte is `invalid`."""
    spec = spec_table(isa)
    table = ops()
    insn = ffi.new("pvm_insn *")
    bitmask = bytes([0x01])
    for byte in range(256):
        code = bytes([byte])
        lib.pvm_decode_one(int(isa), code, 1, bitmask, 0, insn)
        assert insn.opcode == byte
        if byte in spec:
            assert insn.op < len(table), f"{isa.name}: opcode {byte} decodes as invalid"
            assert table[insn.op].mnemonic == spec[byte][0], f"{isa.name}: opcode {byte}"
            assert insn.form == int(Form[spec[byte][1]]), f"{isa.name}: opcode {byte}"
        else:
            assert insn.op >= len(table), (
                f"{isa.name}: byte {byte} is not in the spec but decodes as "
                f"{table[insn.op].mnemonic}")


def test_spec_summary_sentence() -> None:
    """The one-sentence differences of section 4, checked on the parsed spec table."""
    l64 = {mn for mn, _ in spec_table(InstructionSet.LATEST64).values()}
    revive = {mn for mn, _ in spec_table(InstructionSet.REVIVE_V1).values()}
    l32 = {mn for mn, _ in spec_table(InstructionSet.LATEST32).values()}
    jam = spec_table(InstructionSet.JAM_V1)
    assert l64 - revive == {"memset", "unlikely", "sbrk"} and revive <= l64
    assert len(l64 - l32) == 35 and l32 <= l64
    assert {mn for mn, _ in jam.values()} == revive | {"unlikely"}
    assert jam[2][0] == "unlikely"
    # JamV1 renumbers Revive's 102..111 group down by one
    revive_codes = {mn: code for code, (mn, _) in spec_table(InstructionSet.REVIVE_V1).items()}
    jam_codes = {mn: code for code, (mn, _) in jam.items()}
    for mn, code in revive_codes.items():
        expected = code - 1 if 102 <= code <= 111 else code
        assert jam_codes[mn] == expected, mn


def test_width_signedness_and_class_columns_agree_with_the_mnemonics() -> None:
    """native/isa.def's CLASS / width / SG columns (what the JIT lowers by) say
    what each mnemonic says: memory width and sign from `_u16` / `_i8`,
    32-bit operations from `_32`, signedness from `signed` / `unsigned`."""
    k = {name: getattr(lib, f"PVM_K_{name}") for name in ("LOAD", "STORE", "DIV", "REM", "MEMSET")}
    sg_x, sg_u, sg_s = lib.PVM_SG_X, lib.PVM_SG_U, lib.PVM_SG_S
    checked = 0
    for op in range(lib.pvm_op_count()):
        info = lib.pvm_op_info(op)
        mn = ffi.string(info.mnemonic).decode()
        mem = re.search(r"_(u|i)(8|16|32|64)$", mn)
        is_load = bool(info.flags & lib.PVM_F_LOAD)
        is_store = bool(info.flags & lib.PVM_F_STORE) and mn != "memset"
        assert (info.cls == k["LOAD"]) == is_load, mn
        assert (info.cls == k["STORE"]) == is_store, mn
        if is_load or is_store:
            assert mem is not None, mn
            assert info.width == int(mem.group(2)), mn
            want = sg_x if is_store else (sg_s if mem.group(1) == "i" else sg_u)
            assert info.sign == want, mn
        elif mn.endswith("_32") and not mn.startswith("branch"):
            assert info.width == 32, mn
        elif mn.endswith("_64") or mn in {"and", "or", "xor", "add_imm", "maximum", "minimum"}:
            assert info.width == 64, mn
        if "unsigned" in mn and "signed_unsigned" not in mn:
            assert info.sign == sg_u, mn
        elif "signed" in mn and "signed_unsigned" not in mn:
            assert info.sign == sg_s, mn
        if mn.startswith(("div_", "rem_")):
            assert info.cls == k["DIV" if mn.startswith("div") else "REM"], mn
        checked += 1
    assert checked == lib.pvm_op_count() > 100
