"""A host for ``doom.polkavm`` (host interface: shared/blobs/README.md).

Runs ``ext_initialize`` once and ``ext_tick`` once per frame, servicing the
five imports from Python.  Used by ``pvm-exec doom``, the tests and the
benchmarks.
"""

from __future__ import annotations

import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from executor.blob import ProgramBlob
from executor.errors import HostError, OutOfGas, PvmError, Trap
from executor.raw import InterruptKind, NativeProgram

DEFAULT_WAD = Path("/usr/share/games/doom/freedoom1.wad")
PAGE_SIZE = 0x4000
CALL_GAS = 1 << 62

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def fnv1a64(data: bytes | memoryview) -> int:
    """64-bit FNV-1a."""
    h = FNV_OFFSET
    for b in bytes(data):
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


@dataclass
class FrameInfo:
    index: int
    gas: int
    width: int
    height: int
    frame: bytes
    audio_samples: int

    @property
    def crc32(self) -> int:
        return zlib.crc32(self.frame)


@dataclass
class Doom:
    blob_path: Path
    wad: bytes
    gas_metering: bool = True
    backend: str = "interpreter"
    sandbox: str | None = None
    stdout: Callable[[bytes], None] = field(default=lambda b: None)

    def __post_init__(self) -> None:
        self.blob = ProgramBlob.load(self.blob_path)
        self.program = NativeProgram(self.blob)
        from executor.backends import new_instance

        self.inst = new_instance(self.program, self.backend, page_size=PAGE_SIZE,
                                 gas_metering=self.gas_metering, sandbox=self.sandbox)
        names = self.blob.import_names()
        self._handlers: list[Callable[[], None]] = []
        table = {
            "ext_output_video": self._output_video,
            "ext_output_audio": self._output_audio,
            "ext_rom_size": self._rom_size,
            "ext_rom_read": self._rom_read,
            "ext_stdout": self._stdout,
        }
        for n in names:
            if n not in table:
                raise PvmError(f"doom.polkavm imports an unknown function {n!r}")
            self._handlers.append(table[n])
        self.frame: bytes = b""
        self.width = self.height = 0
        self.audio_samples = 0
        self.frames_seen = 0

    # ---- host functions (arguments in a0.., result in a0) ----
    def _output_video(self) -> None:
        i = self.inst
        addr, w, h = i.reg(7), i.reg(8), i.reg(9)
        self.frame = bytes(i.memory_view(addr, w * h * 4))
        self.width, self.height = w, h
        self.frames_seen += 1

    def _output_audio(self) -> None:
        self.audio_samples += self.inst.reg(8)

    def _rom_size(self) -> None:
        self.inst.set_reg(7, len(self.wad))

    def _rom_read(self) -> None:
        i = self.inst
        ptr, off, n = i.reg(7), i.reg(8), i.reg(9)
        if off + n > len(self.wad):
            raise HostError(f"ext_rom_read out of range: offset {off} length {n}")
        i.write_memory(ptr, self.wad[off : off + n])

    def _stdout(self) -> None:
        i = self.inst
        ptr, n = i.reg(7), i.reg(8)
        if n:
            self.stdout(i.read_memory(ptr, n))
        i.set_reg(7, n)

    # ---- calls ----
    def call(self, export: str, *args: int) -> int:
        """Calls an export; returns the gas it used (0 without metering)."""
        i = self.inst
        i.prepare_call(self.blob.export_pc(export), list(args))
        i.gas = CALL_GAS
        while True:
            intr = i.run()
            if intr.kind is InterruptKind.FINISHED:
                return CALL_GAS - i.gas if self.gas_metering else 0
            if intr.kind is InterruptKind.ECALLI:
                n = intr.hostcall or 0
                if n >= len(self._handlers):
                    raise Trap(intr.pc, export, f"unknown host call {n}")
                self._handlers[n]()
                continue
            if intr.kind is InterruptKind.NOT_ENOUGH_GAS:
                raise OutOfGas(intr.pc, i.gas)
            raise Trap(intr.pc, export)

    def initialize(self) -> int:
        return self.call("ext_initialize")

    def tick(self) -> FrameInfo:
        self.audio_samples = 0
        gas = self.call("ext_tick")
        return FrameInfo(self.frames_seen - 1, gas, self.width, self.height, self.frame,
                         self.audio_samples)

    def key(self, key: int, pressed: bool) -> int:
        """Sends a key event; returns the gas it used."""
        return self.call("ext_on_keychange", key, int(pressed))


# DOOM engine key codes (doomkeys.h) by name, for --keys scripts
KEYS = {
    "right": 0xAE, "left": 0xAC, "up": 0xAD, "down": 0xAF, "escape": 27, "enter": 13,
    "tab": 9, "space": 32, "use": 32, "fire": 0x9D, "ctrl": 0x9D, "shift": 0xB6, "alt": 0xB8,
    "y": ord("y"), "n": ord("n"),
}


def parse_key_script(text: str) -> dict[int, list[tuple[int, bool]]]:
    """A key script: one event per line, ``FRAME KEY down|up`` (``#`` comments).
    KEY is a name from :data:`KEYS`, a single character, or a number.
    Returns frame -> [(key code, pressed)] to apply before that frame's tick."""
    events: dict[int, list[tuple[int, bool]]] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or parts[2] not in ("down", "up"):
            raise PvmError(f"key script line {n}: expected 'FRAME KEY down|up', got {raw!r}")
        try:
            frame = int(parts[0])
        except ValueError:
            raise PvmError(f"key script line {n}: bad frame {parts[0]!r}") from None
        key = parts[1].lower()
        if key in KEYS:
            code = KEYS[key]
        elif len(parts[1]) == 1:
            code = ord(parts[1])
        else:
            try:
                code = int(parts[1], 0)
            except ValueError:
                raise PvmError(f"key script line {n}: unknown key {parts[1]!r}") from None
        events.setdefault(frame, []).append((code, parts[2] == "down"))
    return events


def save_png(frame: bytes, width: int, height: int, path: Path) -> None:
    """Writes a frame (4 bytes a pixel, B G R x) as an RGB PNG."""
    from PIL import Image

    Image.frombuffer("RGBX", (width, height), frame, "raw", "BGRX", 0, 1).convert("RGB").save(
        path)


def run_frames(blob: Path, wad: Path, frames: int, *, gas_metering: bool = True,
               progress: bool = False) -> tuple[Doom, int, list[FrameInfo], float]:
    d = Doom(blob, wad.read_bytes(), gas_metering=gas_metering)
    init_gas = d.initialize()
    infos = []
    t0 = time.perf_counter()
    for k in range(frames):
        infos.append(d.tick())
        if progress and k % 50 == 0:
            print(f"frame {k}/{frames}", file=sys.stderr)
    return d, init_gas, infos, time.perf_counter() - t0
