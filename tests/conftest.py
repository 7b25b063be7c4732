"""Shared test fixtures and paths."""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The read-only ../shared folder beside the repo (skips when it is absent)."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present on this machine")
    return SHARED
