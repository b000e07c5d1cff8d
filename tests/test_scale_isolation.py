"""executor.scale keeps its byte decoding when another scalecodec runtime (as
substrate-interface or a metadata decoder creates) made "[u8; N]" classes first."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from scalecodec.base import RuntimeConfigurationObject
from scalecodec.type_registry import load_type_registry_preset
rc = RuntimeConfigurationObject()
rc.update_type_registry(load_type_registry_preset("core"))
keep = rc.get_decoder_class("[u8; 4]")          # a live dynamic class named "[u8; 4]"
from executor.scale import ScaleType
assert ScaleType("[u8; 4]").decode(b"abcd") == b"abcd", ScaleType("[u8; 4]").decode(b"abcd")
assert ScaleType("Vec<u8>").decode(b"\\x0cabc") == b"abc"
print("ok")
"""


def test_other_runtimes_do_not_change_our_decoding() -> None:
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
