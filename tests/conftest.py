"""Shared test fixtures and paths."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.exists():
        pytest.fail(f"the shared reference folder is missing: {SHARED}")
    return SHARED
