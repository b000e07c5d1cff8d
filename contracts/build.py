"""Building the Solidity sources in ``contracts/src`` with the official toolchain.

``resolc`` (npm ``@parity/resolc@0.3.0``, which drives ``solc@0.8.30``) turns each
source file into one ``.polkavm`` blob and one ``.abi`` per contract.  Builds are
cached by a hash of the source and the compiler versions under
``contracts/build/<hash>/``, so unchanged sources are never recompiled.

    python -m contracts.build            # build everything (npm install on first use)
    python -m contracts.build Token      # one source

From Python: ``compiled("Token")`` -> ``{"Token": Artifact(blob, abi), ...}``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executor.errors import PvmError
from executor.revive.hashing import keccak256

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
BUILD = HERE / "build"
RESOLC_VERSION = "0.3.0"
SOLC_VERSION = "0.8.30"


class BuildError(PvmError):
    """The Solidity toolchain is missing or a source did not compile."""


@dataclass(frozen=True)
class Artifact:
    name: str
    blob: bytes
    abi: list[dict[str, Any]]

    @property
    def code_hash(self) -> bytes:
        return keccak256(self.blob)


KNOWN: dict[bytes, Artifact] = {}
"""Every artifact :func:`compiled` has returned in this process, by code hash: how
:class:`~contracts.harness.TestChain` names contracts in traces and finds the code a
factory deploys (its factory dependencies)."""


def _resolc() -> Path:
    exe = HERE / "node_modules" / ".bin" / "resolc"
    if exe.exists():
        return exe
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm is not installed; it is needed for @parity/resolc and solc")
    r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=HERE,
                       capture_output=True, text=True)
    if r.returncode != 0 or not exe.exists():
        raise BuildError(f"npm install failed in {HERE}: {r.stderr.strip()[-2000:]}")
    return exe


def source_hash(source: Path) -> str:
    h = hashlib.sha256()
    h.update(f"resolc {RESOLC_VERSION} solc {SOLC_VERSION}\n".encode())
    h.update(source.read_bytes())
    return h.hexdigest()[:16]


def _source(name: str | Path) -> Path:
    p = Path(name)
    if p.suffix == ".sol":
        return p.resolve()
    return SRC / f"{name}.sol"


def build(name: str | Path) -> Path:
    """Compiles ``src/<name>.sol``, or any ``.sol`` file given by path (if not
    cached); returns its output folder."""
    source = _source(name)
    if not source.exists():
        raise BuildError(f"no such contract source: {source}")
    out = BUILD / f"{source.stem}-{source_hash(source)}"
    if (out / ".done").exists():
        return out
    exe = _resolc()
    tmp = out.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    r = subprocess.run([str(exe), "--bin", "--abi", str(source), "-o", str(tmp)],
                       cwd=source.parent,
                       capture_output=True, text=True)
    if r.returncode != 0 or not any(tmp.glob("*.polkavm")):
        raise BuildError(f"resolc failed on {source.name}:\n{(r.stderr or r.stdout)[-4000:]}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    (out / ".done").write_text(f"resolc {RESOLC_VERSION}, solc {SOLC_VERSION}\n")
    return out


def compiled(name: str | Path) -> dict[str, Artifact]:
    """The contracts of ``src/<name>.sol`` (or of a ``.sol`` path) by contract name,
    built on demand."""
    out = build(name)
    arts: dict[str, Artifact] = {}
    for blob in sorted(out.glob("*.polkavm")):
        contract = blob.stem.split("_sol_", 1)[-1]
        abi_path = blob.with_suffix(".abi")
        abi = json.loads(abi_path.read_text()) if abi_path.exists() else []
        art = Artifact(contract, blob.read_bytes(), abi)
        arts[contract] = art
        KNOWN[art.code_hash] = art
    return arts


def sources() -> list[str]:
    return sorted(p.stem for p in SRC.glob("*.sol"))


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or sources()
    for name in names:
        out = build(name)
        blobs = ", ".join(f"{p.stem} ({p.stat().st_size} B)" for p in sorted(out.glob("*.polkavm")))
        print(f"{name}: {blobs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
