"""Shared test setup: never touch a model hub; locate the real public samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REAL_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "real-samples"


@pytest.fixture
def real_samples() -> Path:
    """The ../shared/real-samples folder; tests that need it skip where it is absent."""
    if not REAL_SAMPLES.is_dir():
        pytest.skip(f"real samples not found at {REAL_SAMPLES} (needs ../shared beside the checkout)")
    return REAL_SAMPLES
