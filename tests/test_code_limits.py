"""Hostile blob sizes cost what they pay for (issue 19, item 6).

* The code size limit of the backend (``Config.interpreter_code_limit`` /
  ``jit_code_limit``) is checked before anything is decoded or compiled.
* The JIT stops at ``Config.jit_native_code_limit`` bytes of machine code.
* Peak host memory of building a module and its first instance stays within
  64 bytes per guest instruction: on doom.polkavm and on 16 MiB blobs of
  one-byte instructions (one huge block, and one block per instruction).

Every measurement runs in a child process: it resets the kernel's peak-RSS
mark (``/proc/self/clear_refs``) once the blob is in memory, builds, and
reports the peak (``VmHWM``) minus the resident size before.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from executor import Config
from executor.backends import available_backends
from executor.errors import ModuleError

ROOT = Path(__file__).resolve().parent.parent
DOOM = ROOT.parent / "shared" / "blobs" / "doom.polkavm"
BACKENDS = available_backends()
BYTES_PER_INSN = 64

CHILD = textwrap.dedent("""
    import json, sys
    from executor import Config, Engine, Module
    from executor.blob import ProgramBlob
    from executor.errors import ModuleError
    from executor.isa import InstructionSet

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    spec = json.loads(sys.argv[1])
    if spec["blob"] == "synthetic":
        blob = ProgramBlob(isa=InstructionSet.LATEST64)
        blob.code = bytes([spec["opcode"]]) * spec["size"]
        blob.bitmask = b"\\xff" * ((spec["size"] + 7) // 8)
    else:
        blob = ProgramBlob.load(spec["blob"])
    config = Config(backend=spec["backend"], sandbox=None, **spec.get("config", {}))
    engine = Engine(config)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS mark
    before = status("VmRSS")
    error = None
    insns = None
    try:
        module = Module(engine, blob)
        insns = module.program.instruction_count
        module.new_raw_instance()
    except ModuleError as exc:
        error = str(exc)
    print(json.dumps({"growth": status("VmHWM") - before, "error": error, "insns": insns}))
""")


def measure(blob: str, backend: str, **spec: object) -> dict[str, object]:
    arg = json.dumps({"blob": blob, "backend": backend, **spec})
    r = subprocess.run([sys.executable, "-c", CHILD, arg], capture_output=True, text=True,
                       timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    out: dict[str, object] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def test_config_checks_its_limits() -> None:
    assert Config().code_size_limit("jit") == 16 << 20
    assert Config(backend="jit").code_size_limit() == 16 << 20
    assert Config().code_size_limit() == 32 << 20
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ModuleError):
            Config(jit_code_limit=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
def test_code_over_the_limit_is_refused_before_any_work(backend: str) -> None:
    """18 MiB of one-byte instructions: over the JIT's default limit (refused
    before decoding), over the interpreter's when it is set to 8 MiB."""
    spec: dict[str, object] = {"opcode": 0, "size": 18 << 20}
    if backend == "interpreter":
        spec["config"] = {"interpreter_code_limit": 8 << 20}
    out = measure("synthetic", backend, **spec)
    assert out["error"] is not None and "code section is 18874368 bytes" in str(out["error"])
    assert "_code_limit" in str(out["error"])
    # nothing proportional to the code was built: a few MiB of interpreter noise
    assert int(str(out["growth"])) < 8 << 20, out


@pytest.mark.skipif("jit" not in BACKENDS, reason="no JIT here")
def test_jit_stops_at_its_machine_code_limit() -> None:
    """16 MiB of one-instruction blocks compiles to ~44 bytes each: the JIT
    stops at jit_native_code_limit instead of building all of it."""
    out = measure("synthetic", "jit", opcode=0, size=16 << 20,
                  config={"jit_native_code_limit": 8 << 20})
    assert "more than 8388608 bytes of machine code" in str(out["error"]), out
    assert int(str(out["growth"])) <= BYTES_PER_INSN * (16 << 20), out


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("blob", ["doom", "one block", "a block each"])
def test_peak_memory_per_instruction(blob: str, backend: str) -> None:
    if blob == "doom":
        out = measure(str(DOOM), backend)
    else:
        # add_64 (one-byte RRR: r0 = r0 + r0) falls through: one 16M-instruction
        # block; trap ends a block at every byte
        opcode = 200 if blob == "one block" else 0
        out = measure("synthetic", backend, opcode=opcode, size=16 << 20)
    insns = int(str(out["insns"]))
    growth = int(str(out["growth"]))
    assert growth <= BYTES_PER_INSN * insns, (
        f"{blob} on {backend}: {growth / insns:.1f} bytes per instruction at peak ({out})")
