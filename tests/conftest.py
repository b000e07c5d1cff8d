"""Shared test fixtures and paths."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
BLOBS = SHARED / "blobs"
SAMPLES = SHARED / "contracts-sample" / "out"
JAM_VECTORS = SHARED / "vectors" / "jam-v0.4" / "programs"
SPECTOOL = SHARED / "vectors" / "spectool-src"
WAD = Path("/usr/share/games/doom/freedoom1.wad")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "reexec: starts the Python interpreter again (a child "
                            "process); deselected where that interpreter is not executable")
    # Orphaned descendants (a worker whose host died, the grandchild of a CLI
    # test) are re-parented to this process instead of PID 1, so the check at
    # the end of the run sees every process the tests started.
    _become_subreaper()


def _become_subreaper() -> None:
    import ctypes

    pr_set_child_subreaper = 36
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _live_children() -> list[tuple[int, str]]:
    """This process's children (pid, command line); zombies are reaped."""
    me = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) != me:
            continue
        if fields[0] == "Z":
            try:
                os.waitpid(int(entry), os.WNOHANG)
            except ChildProcessError:
                pass
            continue
        out.append((int(entry), cmdline.replace(b"\0", b" ").decode(errors="replace").strip()))
    return out


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fails the run if any process the tests started is still alive once the
    executor's own pools are closed (then kills it, so nothing is left)."""
    import gc
    import signal

    import executor.sandbox as sandbox

    if sandbox._default_pool is not None:
        sandbox._default_pool.close()
    gc.collect()
    survivors = []
    for _ in range(50):  # workers being closed are reaped within a few ms
        survivors = _live_children()
        if not survivors:
            return
        time.sleep(0.02)
    for pid, _ in survivors:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _live_children()
    lines = "\n".join(f"  pid {pid}: {cmd or '?'}" for pid, cmd in survivors)
    session.config.get_terminal_writer().line(
        f"\nFAILED: {len(survivors)} process(es) started by the tests outlived them:\n{lines}",
        red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.exists():
        pytest.fail(f"the shared reference folder is missing: {SHARED}")
    return SHARED
