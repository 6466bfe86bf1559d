"""The normal ranges the synthetic labels use: re-exported from `qheart.measurements.reference`,
the one table that labels and measurements share (SPEC §4), so a value and its label can never
disagree."""

from __future__ import annotations

from qheart.measurements.reference import (
    ABOVE,
    BELOW,
    FEATURES,
    LABEL_MARGIN_MS,
    NORMAL_RANGES,
    RANGE_LABELS,
    WITHIN,
    NormalRange,
    qtc_bazett,
)

__all__ = [
    "ABOVE", "BELOW", "FEATURES", "LABEL_MARGIN_MS", "NORMAL_RANGES", "RANGE_LABELS", "WITHIN",
    "NormalRange", "qtc_bazett",
]  # fmt: skip
