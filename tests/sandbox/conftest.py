"""Sandbox tests: skipped (with the reason) where workers cannot start."""

from __future__ import annotations

import pytest

from executor.sandbox import sandbox_unavailable_reason

REASON = sandbox_unavailable_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if REASON is None:
        return
    skip = pytest.mark.skip(reason=f"no Linux sandbox here: {REASON}")
    for item in items:
        if "tests/sandbox" in str(item.fspath):
            item.add_marker(skip)
