"""`qheart data synth` and `qheart data plot`."""

from __future__ import annotations


def synth() -> None:
    """Generate the synthetic ECG-QA benchmark (not implemented yet)."""
    raise NotImplementedError


def plot() -> None:
    """Draw an ECG as a 12-lead paper-style figure (not implemented yet)."""
    raise NotImplementedError
