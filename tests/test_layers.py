"""The Python layers of ARCHITECTURE.md hold in the code (issue 16).

The imports of executor/, chain_sim/ and contracts/ are read with ``ast`` (every
``import``/``from ... import``: at module level, inside functions and under
``if TYPE_CHECKING:`` alike) and resolved to the project's files.  The layer table
under "## Python layers" in ARCHITECTURE.md assigns every file to a layer; the test
fails on an import cycle between files, on an import from a layer to a higher one,
and on a file the table does not place.  A second test checks that importing
``executor`` and running a blob loads none of the optional dependencies.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("executor", "chain_sim", "contracts")
HELLO = ROOT.parent / "shared" / "blobs" / "example-hello-world.polkavm"


def python_files() -> list[str]:
    out = []
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            rel = p.relative_to(ROOT)
            if "node_modules" in rel.parts or "build" in rel.parts:
                continue
            out.append(rel.as_posix())
    return out


def _module_file(name: str, files: set[str]) -> str | None:
    """The file of dotted module ``name`` in this tree (a package: its __init__.py)."""
    base = name.replace(".", "/")
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if candidate in files:
            return candidate
    return None


def _package_of(rel: str) -> str:
    parts = rel[:-3].split("/")
    return ".".join(parts[:-1]) if parts[-1] != "__init__" else ".".join(parts[:-1])


def imports_of(rel: str, files: set[str]) -> dict[str, int]:
    """The project files ``rel`` imports, each with the line of its first import."""
    tree = ast.parse((ROOT / rel).read_text(), rel)
    out: dict[str, int] = {}

    def add(target: str | None, line: int) -> None:
        if target is not None and target != rel:
            out.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_module_file(alias.name, files), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = _package_of(rel).split(".")
                base = ".".join(pkg[:len(pkg) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            for alias in node.names:
                # ``from pkg import sub`` imports the submodule sub when there is one
                sub = _module_file(f"{module}.{alias.name}", files)
                add(sub if sub is not None else _module_file(module, files), node.lineno)
    return out


def layer_table() -> list[tuple[str, list[str]]]:
    """(layer, path patterns) from the "## Python layers" table, top layer first."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    m = re.search(r"^## Python layers\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, 'ARCHITECTURE.md has no "## Python layers" section'
    rows = []
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not line.startswith("|") or set(cells[0]) <= {"-", ":"}:
            continue
        paths = re.findall(r"`([^`]+)`", cells[1])
        if cells[0].lower() == "layer" or not paths:
            continue
        rows.append((cells[0], paths))
    assert rows, "the Python layers table is empty"
    return rows


def assign(files: list[str], rows: list[tuple[str, list[str]]]) -> dict[str, int]:
    """file -> layer height (0 = bottom); a folder pattern takes the files under it
    that no longer pattern takes."""
    patterns: list[tuple[str, int]] = []
    for i, (_, paths) in enumerate(rows):
        height = len(rows) - 1 - i
        patterns += [(p, height) for p in paths]
    out: dict[str, int] = {}
    for f in files:
        best: tuple[int, int] | None = None
        for p, height in patterns:
            if f == p or (p.endswith("/") and f.startswith(p)):
                if best is None or len(p) > best[0]:
                    best = (len(p), height)
        if best is not None:
            out[f] = best[1]
    return out


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one file (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def graph() -> dict[str, dict[str, int]]:
    files = python_files()
    fileset = set(files)
    return {f: imports_of(f, fileset) for f in files}


def test_the_walker_sees_imports_of_every_kind() -> None:
    """The reader finds lazy, TYPE_CHECKING and ``from package import submodule``
    imports (a walker that saw none could not fail the tests below)."""
    g = graph()
    assert "executor/linker.py" in g["executor/module.py"]          # module level
    assert "executor/sandbox.py" in g["executor/engine.py"]         # inside a function
    assert "executor/linker.py" in g["executor/workers.py"]         # under TYPE_CHECKING
    assert "executor/revive/errors.py" in g["executor/revive/hostfns.py"]  # from pkg import sub
    assert "executor/__init__.py" not in g["executor/revive/hostfns.py"]
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [
        ["a", "b", "c"]]


def test_no_import_cycles() -> None:
    found = cycles(graph())
    assert not found, "import cycles between files: " + "; ".join(
        " <-> ".join(c) for c in found)


def test_every_file_has_a_layer() -> None:
    files = python_files()
    placed = assign(files, layer_table())
    missing = [f for f in files if f not in placed]
    assert not missing, f"files ARCHITECTURE.md's Python layers do not place: {missing}"


def test_imports_go_down_the_layers() -> None:
    rows = layer_table()
    names = [name for name, _ in reversed(rows)]  # by height
    g = graph()
    placed = assign(list(g), rows)
    upward = []
    for src, targets in g.items():
        for dst, line in targets.items():
            if src in placed and dst in placed and placed[dst] > placed[src]:
                upward.append(f"{src}:{line} ({names[placed[src]]}) imports {dst} "
                              f"({names[placed[dst]]})")
    assert not upward, "imports from a layer up to a higher one:\n" + "\n".join(upward)


def test_the_library_imports_no_tool_and_no_application() -> None:
    """Nothing in the library part of executor/ imports executor.tools, chain_sim or
    contracts (the tools may import the library; chain_sim registers its commands
    through an entry point)."""
    g = graph()
    bad = [f"{src} -> {dst}" for src, targets in g.items() for dst in targets
           if src.startswith("executor/") and not src.startswith("executor/tools/")
           and dst.startswith(("executor/tools/", "chain_sim/", "contracts/"))]
    assert not bad, bad


def test_public_api_is_exported() -> None:
    import executor

    for name in executor.__all__:
        assert getattr(executor, name).__name__ == name
    from executor.blob import ProgramBlob

    assert executor.ProgramBlob is ProgramBlob


@pytest.mark.skipif(not HELLO.exists(), reason="shared/blobs is not next to the checkout")
def test_running_a_blob_loads_no_optional_dependency() -> None:
    """``import executor`` and a call of a blob with a host function (the README's
    example) leave eth_abi, PIL, substrateinterface, chain_sim, contracts and the
    tools unimported (checked in a fresh interpreter)."""
    code = f"""
import sys
from executor import Config, Engine, Linker, Module
for backend in ("interpreter", "jit"):
    try:
        engine = Engine(Config(backend=backend, sandbox=None))
    except Exception:
        continue
    linker = Linker()
    linker.define("get_third_number", lambda caller: 100)
    instance = linker.instantiate(Module(engine, {str(HELLO)!r}))
    assert instance.call("add_numbers", 1, 10) == 111
    instance.close()
bad = sorted(m for m in sys.modules if m.split(".")[0] in (
    "eth_abi", "PIL", "substrateinterface", "chain_sim", "contracts", "coincurve", "py_ecc",
    "greenlet", "rlp", "eth_account", "eth_utils", "h11", "wsproto")
    or m.startswith("executor.tools"))
print("loaded:", bad)
assert "executor.instance" in sys.modules
sys.exit(1 if bad else 0)
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
