"""Helpers shared by the benchmark scripts: repeats, statistics, machine info,
and rewriting one section of benches/RESULTS.md."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def measure(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall time of ``fn`` in seconds, ``repeats`` times."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def stats(xs: list[float]) -> tuple[float, float, float]:
    return min(xs), statistics.median(xs), max(xs)


def machine_info() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=RESULTS.parent, check=False).stdout.strip()
    except OSError:
        rev = "?"
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, commit {rev or '?'}")


def write_section(title: str, body: str) -> None:
    """Replaces (or appends) the ``## title`` section of RESULTS.md."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    lines = text.splitlines()
    head = f"## {title}"
    out: list[str] = []
    i = 0
    replaced = False
    while i < len(lines):
        if lines[i].strip() == head:
            out.append(head)
            out.extend(body.rstrip("\n").splitlines())
            out.append("")
            i += 1
            while i < len(lines) and not lines[i].startswith("## "):
                i += 1
            replaced = True
            continue
        out.append(lines[i])
        i += 1
    if not replaced:
        if out and out[-1].strip():
            out.append("")
        out.append(head)
        out.extend(body.rstrip("\n").splitlines())
        out.append("")
    RESULTS.write_text("\n".join(out).rstrip("\n") + "\n")
