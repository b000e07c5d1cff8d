"""The sandbox suite again as an unprivileged user (nobody), where the
machine allows it (running as root with setpriv available)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to switch to an unprivileged user")
def test_sandbox_suite_as_nobody() -> None:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
           sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           str(ROOT / "tests" / "sandbox"), "-k", "not as_nobody",
           # tests that start the interpreter again cannot, as nobody (it lives under /root)
           "-m", "not reexec"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    tail = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-2000:]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in tail and "skipped" not in tail, tail
