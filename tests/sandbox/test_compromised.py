"""The host trusts nothing a worker writes (issue: a compromised worker).

The compromised worker is played by the test-only build: every field of the
control page is overwritten with hostile values between steps, and raw code
run inside a worker writes the page itself.  Runs in a child process so that
a host crash shows as a failure with its signal, not as a lost test run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.reexec  # starts the interpreter again (see test_unprivileged)

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PVM_TESTING_BUILD", ROOT / "build-testing"))

RAW_WORKER = """
import sys
from executor.tools.asm import assemble
from executor.native import ffi, lib
from executor.raw import InterruptKind, NativeProgram, RawInstance
from executor.sandbox import SandboxProcess

w = SandboxProcess()
# raw code inside the worker: protect_count = 0x7fffffff; return 42
off = ffi.new("uint32_t*"); size = ffi.new("uint32_t*"); name = ffi.new("char**")
k = 0
while lib.pvm_worker_test_field(k, name, off, size) == 0:
    if ffi.string(name[0]) == b"protect_count":
        break
    k += 1
code = b"\\xc7\\x87" + int(off[0]).to_bytes(4, "little") + (0x7FFFFFFF).to_bytes(4, "little")
code += b"\\xb8\\x2a\\x00\\x00\\x00\\xc3"
status = ffi.new("int*")
assert lib.pvm_worker_test_run_raw(w._ptr, code, len(code), len(code) - 6, status) == 42
# the host now binds an instance to that worker: it must not use the count
src = "%isa = latest64\\n%rw_data_size = 8192\\npub @main:\\n a1 = a0 + 1\\n ret\\n"
prog = NativeProgram(assemble(src))
inst = RawInstance(prog, backend="jit", worker=w)
inst.prepare_call(0, [41]); inst.gas = 100
assert inst.run().kind is InterruptKind.FINISHED and inst.reg(8) == 42
inst.close(); w.close()
print("OK")
"""


def _env() -> dict[str, str]:
    if not list(BUILD.glob("_pvm_native_testing*.so")):
        if os.environ.get("PVM_TESTING_BUILD"):
            pytest.fail(f"the test-only build is missing in {BUILD}")
        pytest.skip("the test-only build is missing: run `make build-testing`")
    env = dict(os.environ)
    env["PVM_NATIVE_MODULE"] = "_pvm_native_testing"
    env["PYTHONPATH"] = os.pathsep.join([str(BUILD), str(ROOT)])
    return env


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=_env(), capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def test_every_worker_writable_field_is_hostile_input() -> None:
    r = _run([str(Path(__file__).with_name("compromised_worker.py")), "19"])
    assert r.returncode == 0, f"host died (status {r.returncode}):\n{r.stderr[-3000:]}"
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["failures"] == []
    fields = result["fields"]
    for name in ("regs", "gas", "futex", "exit_site", "fault_signal", "fault_rip_off",
                 "protect_count", "protect", "worker_status", "ready", "host_cpu", "worker_cpu"):
        assert sum(fields[name].values()) > 0, name
    # what must be refused, is: the worker is killed and the call fails
    assert result["special"] == {
        "gas_above_given": "rejected",
        "exit_site_out_of_range": "rejected",
        "fault_offset_out_of_range": "rejected",
        "protect_count_huge": "accepted",  # host-private now: the value is never used
    }
    assert fields["gas"]["rejected"] > 0 and fields["exit_site"]["rejected"] > 0


def test_a_worker_writing_protect_count_cannot_corrupt_the_host() -> None:
    r = _run(["-c", RAW_WORKER])
    assert r.returncode == 0, f"host died (status {r.returncode}):\n{r.stderr[-3000:]}"
    assert r.stdout.strip() == "OK"
