"""Escape attempts from inside a worker, with raw machine code run through
the test-only build (`make build-testing`; never part of the default build).

Every forbidden system call kills the worker with SIGSYS (seccomp); the code
mapping cannot be written or made writable; no new executable memory can be
mapped; guest memory cannot be made executable."""

from __future__ import annotations

import importlib
import os
import signal
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PVM_TESTING_BUILD", ROOT / "build-testing"))


def _testing_lib() -> tuple[Any, Any]:
    if not list(BUILD.glob("_pvm_native_testing*.so")):
        if os.environ.get("PVM_TESTING_BUILD"):
            pytest.fail(f"the test-only build is missing in {BUILD}")
        pytest.skip("the test-only build is missing: run `make build-testing`")
    sys.path.insert(0, str(BUILD))
    try:
        mod = importlib.import_module("_pvm_native_testing")
    finally:
        sys.path.remove(str(BUILD))
    return mod.ffi, mod.lib


@pytest.fixture(scope="module")
def native() -> tuple[Any, Any]:
    return _testing_lib()


GUEST = 0x1_0000_0000
CODE = 0x3_0000_0000
RET_42 = b"\xb8\x2a\x00\x00\x00\xc3"  # mov eax, 42; ret


def run_raw(native: tuple[Any, Any], code: bytes, exit_off: int | None = None) -> tuple[int, int]:
    """(exit value, wait status); exit value -1 means the worker died."""
    ffi, lib = native
    err = ffi.new("char[256]")
    w = lib.pvm_worker_spawn(err, 256)
    assert w != ffi.NULL, ffi.string(err)
    try:
        status = ffi.new("int*")
        if exit_off is None:
            code = code + RET_42
            exit_off = len(code) - len(RET_42)
        r = lib.pvm_worker_test_run_raw(w, code, len(code), exit_off, status)
        return int(r), int(status[0])
    finally:
        lib.pvm_worker_free(w)


def mov_rax(v: int) -> bytes:
    return b"\x48\xb8" + struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def regs(rdi: int = 0, rsi: int = 0, rdx: int = 0, r10: int = 0, r8: int = 0, r9: int = 0
         ) -> bytes:
    out = b""
    for prefix, v in ((b"\x48\xbf", rdi), (b"\x48\xbe", rsi), (b"\x48\xba", rdx),
                      (b"\x49\xba", r10), (b"\x49\xb8", r8), (b"\x49\xb9", r9)):
        out += prefix + struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)
    return out


def syscall(nr: int, *args: int) -> bytes:
    return regs(*args) + mov_rax(nr) + b"\x0f\x05" + b"\xc3"  # ...; syscall; ret


def killed_by_seccomp(result: tuple[int, int]) -> bool:
    value, status = result
    return value == -1 and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_control_runs(native: tuple[Any, Any]) -> None:
    assert run_raw(native, RET_42, 0) == (42, 0)


def test_allowed_calls_work(native: tuple[Any, Any]) -> None:
    # mprotect inside guest memory, read/write only: allowed (returns 0 -> exit value 0)
    assert run_raw(native, syscall(10, GUEST + 0x10000, 0x1000, 1), None)[0] == 0


def test_the_eventfd_is_the_one_writable_descriptor(native: tuple[Any, Any]) -> None:
    # write(8, ...): the worker's eventfd (it wakes an event loop); allowed, it
    # returns 8 (or -EINVAL for a counter value an eventfd refuses), no kill
    value, status = run_raw(native, syscall(1, 8, CODE, 8), None)
    assert status == 0 and value in (8, (1 << 32) - 22), value


@pytest.mark.parametrize(("name", "nr", "args"), [
    ("open", 2, (0, 0, 0)),
    ("openat", 257, (-100, CODE, 0)),
    ("socket", 41, (2, 1, 0)),
    ("connect", 42, (0, 0, 0)),
    ("clone", 56, (0x11, 0, 0)),
    ("fork", 57, ()),
    ("execve", 59, (CODE, 0, 0)),
    ("ptrace", 101, (16, 1, 0)),
    ("kill", 62, (1, 9)),
    ("getpid", 39, ()),
    ("write", 1, (1, CODE, 4)),
    ("write_control_fd", 1, (3, CODE, 8)),
    ("write_fd_8_high_bits", 1, ((1 << 32) | 8, CODE, 8)),
    ("read", 0, (0, GUEST, 4)),
    ("mmap_exec", 9, (0, 0x1000, 5, 0x22, -1, 0)),
    ("mmap_fixed_code", 9, (CODE, 0x1000, 3, 0x32, -1, 0)),
    ("mprotect_code_writable", 10, (CODE, 0x1000, 3)),
    ("mprotect_guest_exec", 10, (GUEST + 0x10000, 0x1000, 5)),
    ("munmap_code", 11, (CODE, 0x1000)),
    ("arch_prctl", 158, (0x1001, 0)),
    ("prctl", 157, (38, 0)),
    ("seccomp", 317, (0, 0, 0)),
    ("unshare", 272, (0x10000000,)),
    ("mount", 165, (0, 0, 0)),
    ("x32_abi_openat", 257 | 0x40000000, (-100, CODE, 0)),
])
def test_forbidden_syscalls_kill_the_worker(native: tuple[Any, Any], name: str, nr: int,
                                            args: tuple[int, ...]) -> None:
    assert killed_by_seccomp(run_raw(native, syscall(nr, *args))), name


def test_code_mapping_is_not_writable(native: tuple[Any, Any]) -> None:
    # mov byte [rip + 0], 0x90 ; mov eax, 1 ; ret   -- then the fault exit returns 0x77
    code = b"\xc6\x05\x00\x00\x00\x00\x90" + b"\xb8\x01\x00\x00\x00\xc3"
    stub = b"\xb8\x77\x00\x00\x00\xc3"
    value, status = run_raw(native, code + stub, len(code))
    assert (value, status) == (0x77, 0)  # the store faulted; nothing was written


def test_guest_memory_is_not_executable(native: tuple[Any, Any]) -> None:
    # make a guest page readable, then jump into it
    code = syscall(10, GUEST + 0x20000, 0x1000, 1)[:-1]  # mprotect(..., PROT_READ), no ret
    code += mov_rax(GUEST + 0x20000) + b"\xff\xe0"       # jmp rax
    value, status = run_raw(native, code + RET_42, len(code))
    # the fault is outside the code mapping: the worker's handler ends it (128 + SIGSEGV)
    assert value == -1 and os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 128 + signal.SIGSEGV
