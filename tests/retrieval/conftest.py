"""Fixtures for retrieval tests (helpers live in fakes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qheart.data.store import SignalStore

from .fakes import clustered_codes, write_store


@pytest.fixture
def clustered_store(tmp_path: Path) -> SignalStore:
    """40 ECGs in 5 tight clusters of 8; each ECG its own patient."""
    codes, _ = clustered_codes(5, 8)
    return write_store(tmp_path / "store", codes)
