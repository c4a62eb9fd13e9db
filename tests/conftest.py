"""Shared test setup: makes the ``myspinbot`` package importable without ComfyUI and
locates the real fixtures in ``../shared/fixtures``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_PARENT = REPO / "custom_nodes"
FIXTURES = REPO.parent / "shared" / "fixtures"

if str(PACKAGE_PARENT) not in sys.path:
    sys.path.insert(0, str(PACKAGE_PARENT))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The real test inputs (portrait photo, speech recordings); see their README."""
    if not FIXTURES.is_dir():
        pytest.fail(f"real fixtures missing: expected {FIXTURES} (../shared/fixtures beside the repo)")
    return FIXTURES
