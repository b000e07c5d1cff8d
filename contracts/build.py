"""Building Solidity sources with the official toolchain.

``resolc`` (npm ``@parity/resolc@0.3.0``, which drives ``solc@0.8.30``) turns each
source file into one ``.polkavm`` blob and one ``.abi`` per contract (of the file and
of everything it imports).  Builds are cached under ``contracts/build/<name>-<key>/``;
the key covers every input: the compiler versions, the compiler options, the driver
protocol (``KEY_VERSION``), and every file of the import graph **as resolved** (unit
name and content), so editing an imported file rebuilds, and nothing else does.

Imports are resolved here, the way solc does it, and handed to the compiler as one
standard-JSON input: relative imports (``./``, ``../``) against the importing unit;
other paths through the remappings (longest prefix first), then the source's folder,
the project root and the include paths.  Configuration, Foundry's conventions, from
the nearest folder above the source that has either:

* ``remappings.txt`` -- lines ``prefix=target`` (``@openzeppelin/=lib/oz/contracts/``,
  targets relative to that folder);
* ``pyproject.toml`` -- a ``[tool.pvm.contracts]`` table with ``remappings = [...]``
  (same syntax) and ``include-paths = ["lib", "node_modules"]``.

``node_modules`` and ``lib`` of the project root and this toolchain's own
``node_modules`` are always searched.  A compile error is a :class:`BuildError` whose
message shows each problem as ``file:line:col: error: message`` with the source line.
Independent sources compile in parallel (one process each, up to the number of cores).

    python -m contracts.build                 # everything in contracts/src
    python -m contracts.build Token Factory   # some sources (names or .sol paths)
    python -m contracts.build -j 1 Token      # one compiler at a time

From Python: ``compiled("Token")`` -> ``{"Token": Artifact(blob, abi), ...}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executor.errors import PvmError
from executor.revive.hashing import keccak256

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
BUILD = HERE / "build"
RESOLC_VERSION = "0.3.0"
SOLC_VERSION = "0.8.30"
DRIVER = HERE / "resolc_driver.js"
OPTIONS = {"optimizer": "resolc.compile() defaults (mode z, runs 200)"}
"""The compiler options (part of the cache key)."""
KEY_VERSION = 2
"""Bumped when the cache layout, the key or what the driver asks resolc for changes."""


class BuildError(PvmError):
    """The Solidity toolchain is missing, an import cannot be found, or a source did
    not compile (the message has ``file:line:col`` and the source line)."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: ``blob`` (PolkaVM code), ``abi`` (JSON ABI) and the code
    hashes of the contracts it deploys (``factory_deps``, resolc's
    ``factoryDependencies``)."""

    name: str
    blob: bytes
    abi: list[dict[str, Any]]
    factory_deps: tuple[bytes, ...] = ()

    @property
    def code_hash(self) -> bytes:
        return keccak256(self.blob)


KNOWN: dict[bytes, Artifact] = {}
"""Every artifact :func:`compiled` has returned in this process, by code hash: how
:class:`~contracts.harness.TestChain` names contracts in traces and finds the code a
factory deploys (its factory dependencies)."""


# ---- project configuration ----
@dataclass(frozen=True)
class Project:
    """Where imports are looked up: ``root`` (the folder with the configuration, or
    the source's folder), ``remappings`` (prefix, target folder) and ``include_paths``."""

    root: Path
    remappings: tuple[tuple[str, Path], ...] = ()
    include_paths: tuple[Path, ...] = ()

    @classmethod
    def for_source(cls, source: Path) -> Project:
        """The configuration of the nearest folder above ``source`` that has a
        ``remappings.txt`` or a ``pyproject.toml`` with ``[tool.pvm.contracts]``."""
        for folder in [source.parent, *source.parent.parents]:
            remap_file = folder / "remappings.txt"
            table = _pvm_table(folder / "pyproject.toml")
            if remap_file.exists() or table is not None:
                lines: list[str] = []
                if remap_file.exists():
                    lines += remap_file.read_text().splitlines()
                includes: list[str] = []
                if table is not None:
                    lines += [str(x) for x in table.get("remappings", [])]
                    includes = [str(x) for x in table.get("include-paths",
                                                          table.get("include_paths", []))]
                return cls(folder, tuple(_remapping(folder, line) for line in lines
                                         if line.strip() and not line.lstrip().startswith("#")),
                           tuple(folder / p for p in includes))
        return cls(source.parent)

    def search_path(self) -> list[Path]:
        seen: list[Path] = []
        for p in (self.root, *self.include_paths, self.root / "node_modules",
                  self.root / "lib", HERE / "node_modules"):
            if p not in seen:
                seen.append(p)
        return seen


def _pvm_table(pyproject: Path) -> dict[str, Any] | None:
    if not pyproject.exists():
        return None
    try:
        data = tomllib.loads(pyproject.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{pyproject}: {exc}") from exc
    table = data.get("tool", {}).get("pvm", {}).get("contracts")
    return table if isinstance(table, dict) else None


def _remapping(folder: Path, line: str) -> tuple[str, Path]:
    text = line.strip()
    if ":" in text.split("=", 1)[0]:  # solc's context:prefix=target; context ignored
        text = text.split(":", 1)[1]
    if "=" not in text:
        raise BuildError(f"bad remapping {line!r} in {folder} (expected prefix=target)")
    prefix, target = text.split("=", 1)
    return prefix, (folder / target)


# ---- the import graph ----
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_STRINGS_OR_COMMENTS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|//[^\n]*|/\*.*?\*/',
                                  re.S)
_IMPORT = re.compile(r"""\bimport\s+(?:[^"';]*?\s+from\s+)?(["'])([^"']+)\1""")


def _strip_comments(text: str) -> str:
    """Comments replaced by spaces (offsets kept), string literals untouched."""
    def blank(m: re.Match[str]) -> str:
        s = m.group(0)
        if s.startswith(("//", "/*")):
            return re.sub(r"[^\n]", " ", s)
        return s
    return _STRINGS_OR_COMMENTS.sub(blank, text)


def imports_of(text: str) -> list[tuple[str, int]]:
    """The import paths of a Solidity source and their offsets."""
    return [(m.group(2), m.start(2)) for m in _IMPORT.finditer(_strip_comments(text))]


@dataclass
class SourceGraph:
    """A source and everything it imports: unit name -> (file, content)."""

    entry: str
    files: dict[str, Path] = field(default_factory=dict)
    contents: dict[str, str] = field(default_factory=dict)

    def key(self) -> str:
        h = hashlib.sha256()
        h.update(f"pvm-build {KEY_VERSION} resolc {RESOLC_VERSION} solc {SOLC_VERSION} "
                 f"{json.dumps(OPTIONS, sort_keys=True)}\n".encode())
        h.update(f"entry {self.entry}\n".encode())
        for unit in sorted(self.contents):
            data = self.contents[unit].encode()
            h.update(f"{unit}\0{len(data)}\0".encode())
            h.update(data)
        return h.hexdigest()[:16]


def resolve_graph(source: Path, project: Project | None = None) -> SourceGraph:
    """Reads ``source`` and, recursively, every file it imports."""
    project = project or Project.for_source(source)
    graph = SourceGraph(source.name)
    pending = [(source.name, source)]
    while pending:
        unit, path = pending.pop()
        if unit in graph.contents:
            continue
        text = path.read_text()
        graph.files[unit], graph.contents[unit] = path, text
        for imp, offset in imports_of(text):
            if imp.startswith(("./", "../")):
                target_unit = posixpath.normpath(posixpath.join(posixpath.dirname(unit), imp))
            else:
                target_unit = imp
            if target_unit in graph.contents:
                continue
            found = _locate(target_unit, imp, path, source.parent, project)
            if found is None:
                line, col = _line_col(text, offset)
                looked = ", ".join(str(p) for p in project.search_path())
                raise BuildError(
                    f"{path}:{line}:{col}: error: cannot find import \"{imp}\" "
                    f"(remappings: {[p for p, _ in project.remappings] or 'none'}; "
                    f"searched {source.parent}, {looked})\n    {_source_line(text, line)}")
            pending.append((target_unit, found))
    return graph


def _locate(unit: str, imp: str, importer: Path, base: Path, project: Project) -> Path | None:
    if imp.startswith(("./", "../")):
        candidate = (importer.parent / imp).resolve()
        return candidate if candidate.is_file() else None
    for prefix, target in sorted(project.remappings, key=lambda r: -len(r[0])):
        if unit.startswith(prefix):
            candidate = Path(str(target).rstrip("/") + "/" + unit[len(prefix):].lstrip("/"))
            if candidate.is_file():
                return candidate.resolve()
    for folder in [base, *project.search_path()]:
        candidate = folder / unit
        if candidate.is_file():
            return candidate.resolve()
    return None


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _source_line(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


# ---- compiling ----
def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is not installed; it runs @parity/resolc and solc")
    return node


def _toolchain() -> None:
    if (HERE / "node_modules" / "@parity" / "resolc").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm is not installed; it is needed for @parity/resolc and solc")
    r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=HERE,
                       capture_output=True, text=True)
    if r.returncode != 0 or not (HERE / "node_modules" / "@parity" / "resolc").exists():
        raise BuildError(f"npm install failed in {HERE}: {r.stderr.strip()[-2000:]}")


def source_hash(source: Path) -> str:
    """The cache key of ``source``: its import graph, the compiler and the options."""
    return resolve_graph(source).key()


def _source(name: str | Path) -> Path:
    p = Path(name)
    if p.suffix == ".sol":
        return p.resolve()
    return SRC / f"{name}.sol"


def _format_errors(errors: list[dict[str, Any]], graph: SourceGraph) -> str:
    out = []
    for e in errors:
        loc = e.get("sourceLocation") or {}
        unit = loc.get("file")
        message = f"{e.get('severity', 'error')}: {e.get('message', '').strip()}"
        if unit in graph.contents and isinstance(loc.get("start"), int) and loc["start"] >= 0:
            text = graph.contents[unit]
            start = len(text.encode()[:loc["start"]].decode(errors="replace"))
            line, col = _line_col(text, start)
            src = _source_line(text, line)
            out.append(f"{graph.files[unit]}:{line}:{col}: {message}\n    {src}\n"
                       f"    {' ' * (col - 1)}^")
        else:
            out.append(message if not e.get("formattedMessage") else
                       str(e["formattedMessage"]).strip())
    return "\n".join(out)


def build(name: str | Path) -> Path:
    """Compiles ``src/<name>.sol``, or any ``.sol`` file given by path (if not cached);
    returns its output folder."""
    source = _source(name)
    if not source.exists():
        raise BuildError(f"no such contract source: {source}")
    graph = resolve_graph(source)
    out = BUILD / f"{source.stem}-{graph.key()}"
    if (out / ".done").exists():
        return out
    _toolchain()
    request = json.dumps({"sources": {u: {"content": c} for u, c in graph.contents.items()}})
    r = subprocess.run([_node(), str(DRIVER)], input=request, capture_output=True, text=True,
                       cwd=HERE)
    if r.returncode != 0:
        raise BuildError(f"resolc failed on {source.name}: {(r.stderr or r.stdout)[-4000:]}")
    try:
        output = json.loads(r.stdout)
    except json.JSONDecodeError as exc:
        raise BuildError(f"resolc gave no JSON for {source.name}: {r.stdout[-2000:]}") from exc
    errors = [e for e in output.get("errors") or [] if e.get("severity") == "error"]
    if errors:
        raise BuildError(f"{source.name} did not compile:\n{_format_errors(errors, graph)}")
    tmp = BUILD / f".{out.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    deps: dict[str, list[str]] = {}
    wrote = 0
    for unit, contracts in (output.get("contracts") or {}).items():
        for contract, data in contracts.items():
            stem = re.sub(r"[:./\\]", "_", f"{unit}:{contract}")
            code = ((data.get("evm") or {}).get("bytecode") or {}).get("object")
            if code:
                (tmp / f"{stem}.polkavm").write_bytes(bytes.fromhex(code))
                wrote += 1
                deps[stem] = sorted((data.get("factoryDependencies") or {}).keys())
            (tmp / f"{stem}.abi").write_text(json.dumps(data.get("abi", [])))
    if not wrote:
        raise BuildError(f"resolc produced no contract for {source.name}")
    (tmp / "factory-deps.json").write_text(json.dumps(deps, sort_keys=True))
    (tmp / "sources.json").write_text(json.dumps(
        {u: str(p) for u, p in graph.files.items()}, sort_keys=True))
    (tmp / ".done").write_text(f"resolc {RESOLC_VERSION}, solc {SOLC_VERSION}\n")
    try:
        tmp.rename(out)
    except OSError:  # built meanwhile by another process: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out / ".done").exists():
            raise
    return out


def build_many(names: list[str | Path], jobs: int | None = None) -> dict[str, Path]:
    """Builds several sources, up to ``jobs`` compilers at once (default: the number
    of cores); raises the first :class:`BuildError` after all have finished."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    results: dict[str, Path] = {}
    failures: list[BuildError] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {str(n): pool.submit(build, n) for n in names}
        for n, fut in futures.items():
            try:
                results[n] = fut.result()
            except BuildError as exc:
                failures.append(exc)
    if failures:
        raise BuildError("\n\n".join(str(f) for f in failures))
    return results


def compiled(name: str | Path) -> dict[str, Artifact]:
    """The contracts of ``src/<name>.sol`` (or of a ``.sol`` path) by contract name,
    built on demand."""
    out = build(name)
    deps_file = out / "factory-deps.json"
    deps: dict[str, list[str]] = json.loads(deps_file.read_text()) if deps_file.exists() else {}
    arts: dict[str, Artifact] = {}
    for blob in sorted(out.glob("*.polkavm")):
        contract = blob.stem.split("_sol_", 1)[-1]
        abi_path = blob.with_suffix(".abi")
        abi = json.loads(abi_path.read_text()) if abi_path.exists() else []
        art = Artifact(contract, blob.read_bytes(), abi,
                       tuple(bytes.fromhex(h.removeprefix("0x")) for h in deps.get(blob.stem, [])))
        arts[contract] = art
        KNOWN[art.code_hash] = art
    return arts


def sources() -> list[str]:
    return sorted(p.stem for p in SRC.glob("*.sol"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.build",
                                     description="Compile Solidity sources with resolc.")
    parser.add_argument("names", nargs="*", help="source names in contracts/src or .sol paths")
    parser.add_argument("-j", "--jobs", type=int, default=None,
                        help="compilers at once (default: the number of cores)")
    args = parser.parse_args(argv)
    names: list[str | Path] = list(args.names or sources())
    try:
        outs = build_many(names, args.jobs)
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    for name, out in outs.items():
        blobs = ", ".join(f"{p.stem} ({p.stat().st_size} B)" for p in sorted(out.glob("*.polkavm")))
        print(f"{name}: {blobs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
