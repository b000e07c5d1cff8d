"""Fixtures: a dev node started as a subprocess on a free port (``--port 0``; the
fixture waits for its 'listening on' line) and stopped, with everything it opened,
at the end."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chain_sim.workload import Contracts

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class NodeProcess:
    proc: subprocess.Popen[str]
    host: str = ""
    port: int = 0
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def output(self) -> str:
        return "".join(self.lines)


def start_node(*args: str) -> NodeProcess:
    """Starts ``pvm-exec node --port 0 ARGS`` and returns once it listens."""
    cmd = [sys.executable, "-c", "from executor.tools.cli import main; raise SystemExit(main())",
           "node", "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    node = NodeProcess(proc)
    ready = threading.Event()
    assert proc.stdout is not None
    stdout = proc.stdout

    def drain() -> None:      # reads every line (a full pipe would stall the node)
        for line in stdout:
            node.lines.append(line)
            m = re.match(r"listening on ws://([\d.]+):(\d+) \(http on the same port\)", line)
            if m:
                node.host, node.port = m.group(1), int(m.group(2))
                ready.set()
        ready.set()

    node.reader = threading.Thread(target=drain, daemon=True)
    node.reader.start()
    ready.wait(300)           # progress-bounded: set by the line or by the node exiting
    if not node.port:
        stop_node(node)
        raise RuntimeError("the node did not start:\n" + node.output())
    return node


def stop_node(node: NodeProcess) -> int:
    proc = node.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if node.reader is not None:
        node.reader.join(60)     # the pipe is at its end: the reader finishes
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


@pytest.fixture(scope="module")
def node() -> Iterator[NodeProcess]:
    n = start_node()
    try:
        yield n
    finally:
        code = stop_node(n)
        assert code == 0, n.output()


@pytest.fixture(scope="session")
def contracts() -> Contracts:
    return Contracts.build()
