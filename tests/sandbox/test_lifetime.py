"""Sandbox workers live exactly as long as their host needs them.

- however the host process dies (SIGKILL included), its workers die with it,
  whichever API started them (the sync API, the trio ``Executor``, the
  ``pvm-exec`` CLI) and whichever thread did (also one that has exited);
- a dropped or closed instance gives its worker back to the pool, so
  instances created and dropped in a loop reuse a handful of workers.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from executor import Config, Engine, Linker, Module
from executor.errors import ExecutionError
from executor.sandbox import default_pool

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT.parent / "shared" / "blobs" / "example-hello-world.polkavm"


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


def cpu_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return sum(int(x) for x in stat[stat.rindex(")") + 2:].split()[11:13])


def wait_all_exit(pids: list[int], timeout: float = 30.0) -> list[int]:
    """Waits (on pidfds: woken by the exits themselves) until every process in
    ``pids`` has exited; returns those still alive after ``timeout``."""
    fds = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            pass
    try:
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        alive = set(fds)
        deadline = timeout * 1000
        while alive and deadline > 0:
            events = poller.poll(min(deadline, 1000))
            deadline -= 1000 if not events else 0
            for fd, _ in events:
                alive.discard(fd)
                poller.unregister(fd)
        return [fds[fd] for fd in alive]
    finally:
        for fd in fds:
            os.close(fd)


HOST_SCRIPT = textwrap.dedent("""
    import os, sys, threading
    import trio
    from executor import Config, Engine, Linker, Module
    from executor.aio import Executor

    engine = Engine(Config(backend="jit", sandbox="linux"))
    module = Module(engine, sys.argv[1])
    linker = Linker()
    linker.define("get_third_number", lambda caller: 100)

    # the sync API
    kept = [linker.instantiate(module) for _ in range(2)]
    assert all(i.call("add_numbers", 1, 10) == 111 for i in kept)

    # a thread that starts workers and then ends: they must outlive it
    def spawn_in_thread():
        kept.extend(linker.instantiate(module) for _ in range(2))
    t = threading.Thread(target=spawn_in_thread)
    t.start()
    t.join()
    assert all(i.call("add_numbers", 2, 10) == 112 for i in kept)

    # the trio executor
    async def main():
        async with Executor(engine, workers=2) as ex:
            assert await ex.call(module, "add_numbers", 3, 10, linker=linker) == 113
            print("READY", flush=True)
            await trio.sleep_forever()
    trio.run(main)
""")


@pytest.mark.reexec  # starts the interpreter again (see test_unprivileged)
def test_workers_die_when_their_host_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "host.py"
    script.write_text(HOST_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(HELLO)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "READY", proc.stderr.read() if proc.stderr else line
        workers = children_of(proc.pid)
        # 4 sync instances (2 started by a thread that has ended) + the executor's
        assert len(workers) >= 5, workers
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert wait_all_exit(workers) == [], "workers outlived their SIGKILLed host"


@pytest.mark.reexec
def test_workers_of_the_cli_die_with_it(tmp_path: Path) -> None:
    spin = tmp_path / "spin.txt"
    spin.write_text("%isa = latest64\npub @main:\n@loop:\n a0 = a0 + 1\n jump @loop\n")
    exe = Path(sys.executable).parent / "pvm-exec"
    blob = tmp_path / "spin.polkavm"
    subprocess.run([str(exe), "asm", str(spin), "-o", str(blob)], check=True,
                   capture_output=True)
    proc = subprocess.Popen([str(exe), "run", str(blob), "--backend", "jit",
                             "--export", "main", "--gas", str(1 << 60)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers: list[int] = []
        # the guest runs once one of the CLI's workers has used CPU (it spins in guest code)
        for _ in range(600):
            workers = children_of(proc.pid)
            if any(cpu_ticks(w) > 0 for w in workers):
                break
            assert proc.poll() is None, "pvm-exec run ended early"
            select.select([], [], [], 0.05)
        assert workers, "pvm-exec run started no sandbox worker"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert wait_all_exit(workers) == [], "workers outlived the SIGKILLed CLI"


def _hello() -> tuple[Linker, Module]:
    engine = Engine(Config(backend="jit", sandbox="linux"))
    module = Module(engine, HELLO)
    linker = Linker()
    linker.define("get_third_number", lambda caller: 100)
    return linker, module


DROP_SCRIPT = textwrap.dedent("""
    import gc, sys
    from executor import Config, Engine, Linker, Module
    from executor.sandbox import default_pool

    engine = Engine(Config(backend="jit", sandbox="linux"))
    module = Module(engine, sys.argv[1])
    linker = Linker()
    linker.define("get_third_number", lambda caller: 100)
    pids = set()
    for k in range(1000):
        inst = linker.instantiate(module)
        pids.add(inst.raw.worker.pid)
        assert inst.call("add_numbers", k, 1) == k + 101
        del inst
        gc.collect()
    print(len(pids), default_pool().size)
""")


@pytest.mark.slow
@pytest.mark.reexec  # a fresh interpreter: a full gc.collect() per cycle is cheap there
def test_dropped_instances_give_their_worker_back(tmp_path: Path) -> None:
    script = tmp_path / "drop.py"
    script.write_text(DROP_SCRIPT)
    r = subprocess.run([sys.executable, str(script), str(HELLO)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    distinct, pool_size = map(int, r.stdout.split())
    assert distinct <= pool_size, f"{distinct} distinct workers for 1000 instances"


def test_close_and_with_give_the_worker_back_at_once() -> None:
    linker, module = _hello()
    pool = default_pool()
    before = pool.in_use
    with linker.instantiate(module) as inst:
        assert pool.in_use == before + 1
        assert inst.call("add_numbers", 1, 2) == 103
    assert pool.in_use == before
    assert inst.closed
    with pytest.raises(ExecutionError, match="closed"):
        inst.call("add_numbers", 1, 2)
    with pytest.raises(ExecutionError, match="closed"):
        inst.read_memory(0x20000, 4)
    with pytest.raises(ExecutionError, match="closed"):
        _ = inst.gas
    inst.close()  # twice is fine
    other = linker.instantiate(module)
    other.close()
    assert pool.in_use == before
