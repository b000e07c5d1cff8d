"""A live worker seen from the host: namespaces, seccomp, capabilities,
no_new_privs, empty root filesystem, no network, its own pid namespace."""

from __future__ import annotations

import json
import os

import pytest

from executor.sandbox import SandboxProcess
from executor.tools.cli import main
from executor.tools.doctor import NAMESPACES, worker_report

pytestmark = pytest.mark.asan  # also run on the ASan/UBSan build (make test-asan)


def test_worker_is_isolated() -> None:
    w = SandboxProcess()
    try:
        r = worker_report(w.pid)
        assert r["seccomp_mode"] == 2
        assert r["no_new_privs"] == 1
        assert int(r["cap_eff"], 16) == 0
        assert set(r["namespaces_isolated"]) == set(NAMESPACES)
        assert r["pid_in_namespace"] == ["1"]  # host pids are invisible: it is pid 1 of its own
        status = open(f"/proc/{w.pid}/status").read()
        assert "CapBnd:\t0000000000000000" in status
        assert "CapPrm:\t0000000000000000" in status
    finally:
        w.close()


def test_root_filesystem_is_empty() -> None:
    w = SandboxProcess()
    try:
        assert os.listdir(f"/proc/{w.pid}/root") == []
        mounts = open(f"/proc/{w.pid}/mounts").read().splitlines()
        assert len(mounts) == 1 and " / tmpfs ro," in mounts[0]
    finally:
        w.close()


def test_no_usable_network_interface() -> None:
    w = SandboxProcess()
    try:
        lines = open(f"/proc/{w.pid}/net/dev").read().splitlines()[2:]
        names = [ln.split(":")[0].strip() for ln in lines]
        assert names == ["lo"]
        flags = open(f"/proc/{w.pid}/net/route").read().splitlines()
        assert flags[1:] == []  # no routes at all
    finally:
        w.close()


def test_worker_keeps_no_files_open() -> None:
    w = SandboxProcess()
    try:
        # one descriptor only: the eventfd it may write to wake an event loop
        assert os.listdir(f"/proc/{w.pid}/fd") == ["8"]
        assert os.readlink(f"/proc/{w.pid}/fd/8") == "anon_inode:[eventfd]"
        limits = open(f"/proc/{w.pid}/limits").read()
        for name in ("Max open files", "Max processes", "Max locked memory",
                     "Max msgqueue size", "Max file locks", "Max file size"):
            line = next(ln for ln in limits.splitlines() if ln.startswith(name))
            assert line.split()[-3:-1] == ["0", "0"] or line.split()[-2:] == ["0", "0"], line
    finally:
        w.close()


def test_doctor_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["sandbox_linux"] is True and report["reason"] is None
    assert {"pid", "seccomp_mode", "no_new_privs", "cap_eff", "namespaces_isolated"} <= set(
        report["worker"])
    assert "interpreter" in report["backends"] and "jit" in report["backends"]
