"""`qheart data ecgqa`: load an ECG-QA split and summarise it."""

from __future__ import annotations


def summarize() -> None:
    """Summarise an ECG-QA split (not implemented yet)."""
    raise NotImplementedError
