"""`pvm-exec doctor`: which backends and sandboxes work here, and what a live
sandbox worker looks like from the host side (/proc/PID/status, /proc/PID/ns)."""

from __future__ import annotations

import os
from typing import Any

NAMESPACES = ("user", "pid", "mnt", "net", "ipc", "uts", "cgroup")


def worker_report(pid: int) -> dict[str, Any]:
    """Isolation facts of a running worker, read from the host side."""
    status: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    isolated = []
    for ns in NAMESPACES:
        try:
            if os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"):
                isolated.append(ns)
        except OSError:
            pass
    return {
        "pid": pid,
        "seccomp_mode": int(status.get("Seccomp", "0")),
        "no_new_privs": int(status.get("NoNewPrivs", "0")),
        "cap_eff": status.get("CapEff", ""),
        "namespaces_isolated": isolated,
        "pid_in_namespace": status.get("NSpid", "").split()[-1:] or None,
    }


def doctor() -> dict[str, Any]:
    from executor.backends import available_backends, jit_unavailable_reason
    from executor.sandbox import SandboxError, SandboxProcess

    report: dict[str, Any] = {"backends": available_backends(), "sandbox_linux": False,
                              "reason": None, "worker": None}
    jit_reason = jit_unavailable_reason()
    if jit_reason is not None:
        report["reason"] = f"the JIT cannot run here: {jit_reason}"
        return report
    try:
        w = SandboxProcess()
    except SandboxError as exc:
        report["reason"] = str(exc)
        return report
    try:
        info = worker_report(w.pid)
    finally:
        w.close()
    report["worker"] = info
    ok = (info["seccomp_mode"] == 2 and info["no_new_privs"] == 1
          and int(info["cap_eff"] or "0", 16) == 0
          and set(info["namespaces_isolated"]) == set(NAMESPACES))
    report["sandbox_linux"] = ok
    if ok:
        report["backends"] = [*report["backends"], "jit+sandbox"]
    else:
        report["reason"] = "a worker started but is not fully isolated"
    return report
