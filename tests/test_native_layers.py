"""The native core's layers hold: no include or call goes up, and nothing cycles.

The layers, lowest first (the same table is the "Native layers" section of
ARCHITECTURE.md; this test checks that the two agree):

    0 table       native/pvm.h, internal.h, isa.def, isa.c
                  the public C API, the instruction table
    1 machine     decode.h, decode.c, gas.h, gas.c, memory.h, memory.c
                  decoding, the gas cost model, guest memory
    2 analysis    program.h, program.c
                  the program every backend shares: blocks, jump targets,
                  gas per block, lowered forms, operands
    3 state       vm.h, vm.c
                  an instance's state and the backend interface; what every
                  backend does alike (host memory access, sbrk, memset)
    4 compilers   interp.h, interp_body.h, interp.c, jit/jit.h,
                  jit/emit_x64.h, jit/compile.c
                  the interpreter backend, the JIT compiler
    5 jit         jit/runtime.c
                  the in-process JIT backend (and the exits the sandbox shares)
    6 sandbox     sandbox/sandbox.h, sandbox/protocol.h, sandbox/host.c,
                  sandbox/zygote.c
                  the sandbox backend and its worker
    7 instance    instance.c
                  the public instance API: picks and holds a backend

Rules: a file includes only files of its own layer or below; a translation
unit calls (or reads data of) only translation units of lower layers -- so
the interpreter and the JIT compiler, side by side in layer 4, never call each
other, and program analysis never calls a backend.  The include graph is read
from the sources; the calls between translation units from `nm` on objects
compiled (gcc -c, the build's flags) into a temporary directory.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ROOT / "native"

LAYERS: list[tuple[str, list[str]]] = [
    ("table", ["pvm.h", "internal.h", "isa.def", "isa.c"]),
    ("machine", ["decode.h", "decode.c", "gas.h", "gas.c", "memory.h", "memory.c"]),
    ("analysis", ["program.h", "program.c"]),
    ("state", ["vm.h", "vm.c"]),
    ("compilers", ["interp.h", "interp_body.h", "interp.c", "jit/jit.h", "jit/emit_x64.h",
                   "jit/compile.c"]),
    ("jit", ["jit/runtime.c"]),
    ("sandbox", ["sandbox/sandbox.h", "sandbox/protocol.h", "sandbox/host.c", "sandbox/zygote.c"]),
    ("instance", ["instance.c"]),
]

LAYER_OF: dict[str, int] = {f: i for i, (_, files) in enumerate(LAYERS) for f in files}
# The worker is a program of its own (freestanding, embedded by the build), not
# a translation unit of the library: its includes are checked, not its calls.
NOT_LINKED = {"sandbox/zygote.c"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def native_files() -> list[str]:
    return sorted(str(p.relative_to(NATIVE)) for p in NATIVE.rglob("*")
                  if p.suffix in {".c", ".h", ".def"})


def include_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for rel in native_files():
        here = (NATIVE / rel).parent
        targets = set()
        for name in INCLUDE.findall((NATIVE / rel).read_text()):
            target = (here / name).resolve()
            if target.is_relative_to(NATIVE):
                targets.add(str(target.relative_to(NATIVE)))
        graph[rel] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def upward(graph: dict[str, set[str]], strict: bool) -> list[str]:
    """Edges to a higher layer (strict: to the same layer too)."""
    bad = []
    for src, targets in graph.items():
        for dst in targets:
            if dst == src:
                continue
            if LAYER_OF[dst] > LAYER_OF[src] or (strict and LAYER_OF[dst] == LAYER_OF[src]):
                bad.append(f"{src} (layer {LAYERS[LAYER_OF[src]][0]}) -> "
                           f"{dst} (layer {LAYERS[LAYER_OF[dst]][0]})")
    return sorted(bad)


def test_every_native_file_has_a_layer() -> None:
    missing = [f for f in native_files() if f not in LAYER_OF]
    assert not missing, ("place these in a layer (tests/test_native_layers.py, "
                         f"ARCHITECTURE.md): {missing}")
    gone = [f for f in LAYER_OF if not (NATIVE / f).exists()]
    assert not gone, f"layer table names files that no longer exist: {gone}"


def test_includes_go_down_and_do_not_cycle() -> None:
    graph = include_graph()
    assert find_cycle(graph) is None, f"include cycle: {find_cycle(graph)}"
    assert upward(graph, strict=False) == []


def _cflags() -> list[str]:
    from executor import _build_native

    return [f for f in _build_native._cflags() if not f.startswith("-fsanitize")]


@pytest.fixture(scope="module")
def call_graph() -> dict[str, set[str]]:
    """Translation unit -> the translation units whose symbols it uses."""
    gcc, nm = shutil.which("gcc"), shutil.which("nm")
    if gcc is None or nm is None:
        pytest.skip("needs gcc and nm (binutils) to compile the native core")
    from executor import _build_native

    sources = [s for s in _build_native.SOURCES if s not in NOT_LINKED]
    defined: dict[str, str] = {}
    used: dict[str, set[str]] = defaultdict(set)
    with tempfile.TemporaryDirectory(prefix="pvm-layers-") as tmp:
        for src in sources:
            obj = Path(tmp) / (src.replace("/", "_") + ".o")
            subprocess.run([gcc, *_cflags(), "-I", str(NATIVE), "-c", str(NATIVE / src),
                            "-o", str(obj)], check=True)
            out = subprocess.run([nm, "-P", str(obj)], check=True, capture_output=True,
                                 text=True).stdout
            for line in out.splitlines():
                name, kind = line.split()[:2]
                if kind == "U":
                    used[src].add(name)
                elif kind.isupper():
                    assert name not in defined, f"{name} defined in {defined[name]} and {src}"
                    defined[name] = src
    assert set(sources) <= set(LAYER_OF), "every compiled source has a layer"
    return {src: {defined[s] for s in used[src] if s in defined and defined[s] != src}
            for src in sources}


def test_calls_between_translation_units_go_down(call_graph: dict[str, set[str]]) -> None:
    assert find_cycle(call_graph) is None, f"call cycle: {find_cycle(call_graph)}"
    assert upward(call_graph, strict=True) == []


def test_the_graph_is_what_the_layers_say(call_graph: dict[str, set[str]]) -> None:
    """The check sees real edges (an empty graph would pass anything): the
    instance holds the three backends, the backends share vm.c and build on
    the program analysis (the JIT compiler reads it through program.h's
    inline functions and the instruction table), the sandbox on the JIT's
    exits."""
    assert {"interp.c", "jit/runtime.c", "sandbox/host.c"} <= call_graph["instance.c"]
    for backend in ("interp.c", "jit/runtime.c", "sandbox/host.c"):
        assert "vm.c" in call_graph[backend]
    assert "program.c" in call_graph["interp.c"] and "program.c" in call_graph["jit/runtime.c"]
    assert "isa.c" in call_graph["jit/compile.c"]
    assert "jit/runtime.c" in call_graph["sandbox/host.c"]
    assert "jit/compile.c" in call_graph["jit/runtime.c"]


def test_upward_edges_and_cycles_are_caught() -> None:
    """The checker itself: an edge up, a same-layer call and a cycle fail it."""
    assert upward({"program.c": {"jit/compile.c"}}, strict=True)
    assert upward({"interp.c": {"jit/compile.c"}}, strict=True)
    assert not upward({"interp.c": {"interp.h"}}, strict=False)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_architecture_md_names_the_same_layers() -> None:
    doc = (ROOT / "ARCHITECTURE.md").read_text()
    m = re.search(r"^## Native layers\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
    assert m, "ARCHITECTURE.md has a '## Native layers' section"
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*(\w+)\s*\|([^|]*)\|", m.group(1), re.M)
    table = [(name, re.findall(r"`native/([^`]+)`", files)) for _, name, files in rows]
    assert table == LAYERS
