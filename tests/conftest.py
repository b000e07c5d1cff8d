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
    config.addinivalue_line("markers", "slow: takes more than a few seconds (make test-fast "
                            "and make test-asan leave these out)")
    config.addinivalue_line("markers", "asan: also run against the ASan/UBSan build of the "
                            "native core (make test-asan selects these)")
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


def _child_pids() -> set[int]:
    """This process's direct children (cheap: the kernel's per-thread lists)."""
    pids: set[int] = set()
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:  # pragma: no cover - not Linux
        return pids
    for tid in tids:
        try:
            pids.update(int(p) for p in Path(f"/proc/self/task/{tid}/children").read_text().split())
        except OSError:
            continue
    return pids


_ORIGIN: dict[int, str] = {}  # child pid -> the test during which it appeared


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    before = _child_pids()
    yield
    for pid in _child_pids() - before:
        _ORIGIN.setdefault(pid, item.nodeid)


def _holders(obj: object, skip: object = None, depth: int = 3) -> str:
    """What keeps ``obj`` alive besides ``skip``, as a chain of type names (a
    diagnostic; for a dict, the type of the object whose ``__dict__`` it is)."""
    import gc
    import types

    chain: list[str] = []
    seen: list[object] = []
    for _ in range(depth):
        seen.append(obj)
        refs = [r for r in gc.get_referrers(obj)
                if not isinstance(r, types.FrameType) and r is not skip
                and not any(r is x for x in (chain, seen))
                and not (isinstance(r, dict) and len(r) > 1000)]
        seen.append(refs)
        if not refs:
            break
        obj = refs[0]
        owners = [o for o in gc.get_referrers(obj) if getattr(o, "__dict__", None) is obj]
        chain.append(f"{type(owners[0]).__qualname__}.__dict__" if owners
                     else type(obj).__qualname__)
    return " <- ".join(chain) or "nothing found"


def _dying(pid: int) -> bool:
    """Whether ``pid`` has a SIGKILL pending (it will end without running again)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & (1 << 8):
            return True
    return False


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fails the run if any process the tests started is still alive once the
    executor's own pools are closed (then kills it, so nothing is left)."""
    import gc
    import signal

    import executor.sandbox as sandbox

    pool = sandbox._default_pool
    if pool is not None:
        pool.close()
    gc.collect()
    # Wait for processes that are on their way out: bounded by progress, not by a
    # fixed time (on a loaded machine an exiting worker may wait long for a CPU).
    # Patience is 50 polls without progress; a poll in which a process ended, or in
    # which one is still dying (SIGKILL pending), restores it.
    survivors = _live_children()
    patience = 50
    while survivors and patience > 0:
        time.sleep(0.02)
        now = _live_children()
        progress = {p for p, _ in now} < {p for p, _ in survivors} or any(
            _dying(p) for p, _ in now)
        patience = 50 if progress else patience - 1
        survivors = now
    if not survivors:
        return
    # A worker still held by a live Python object (an instance kept in a cache or
    # a global at the end of the run) is owned, not orphaned: it dies with this
    # process like any worker.  It is closed here and named, but only processes
    # that nothing owns -- ones that would outlive the run -- fail it.
    owned = {w.pid: w for w in gc.get_objects()
             if isinstance(w, sandbox.SandboxProcess) and w.alive}
    lent = {} if pool is None else {w.pid: w for w in list(pool._lent.values())}
    writer = session.config.get_terminal_writer()
    for pid in [p for p, _ in survivors if p in owned]:
        holder = (_holders(lent[pid], pool and pool._lent) if pid in lent
                  else "a SandboxProcess handle")
        writer.line(f"note: sandbox worker {pid} was still held at the end of the run "
                    f"(appeared during {_ORIGIN.get(pid, 'no single test')}; held by {holder}); "
                    "killed", yellow=True)
        owned[pid].kill()
    survivors = [s for s in survivors if s[0] not in owned]
    if not survivors:
        return
    for pid, _ in survivors:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _live_children()
    lines = "\n".join(
        f"  pid {pid}: {cmd or '?'} (appeared during {_ORIGIN.get(pid, 'no single test')})"
        for pid, cmd in survivors)
    writer.line(
        f"\nFAILED: {len(survivors)} process(es) started by the tests outlived them "
        f"(nothing in this process owns them):\n{lines}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.exists():
        pytest.fail(f"the shared reference folder is missing: {SHARED}")
    return SHARED
