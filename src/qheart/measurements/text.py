"""The compact measurement block for the LLM prompt: one line that names the numeric features
exactly as ECG-QA's answers spell them and groups them under ECG-QA's range labels, so that
"what range is the qt interval in?" and "which numeric features are above the normal range?"
are answered by copying a span of the prompt.

Why this wording: the first block ("QRS 128 ms (above)") carried the right class for 84-94% of
the synthetic test's numeric-feature queries, yet a model tuned on it for an hour answered 1 of 18
of them: mapping "QRS"/"(above)" onto "qrs duration"/"above the normal range" had to be learnt
from a few hundred examples. Copying a span needs no such mapping.
"""

from __future__ import annotations

import math

from qheart.measurements.measure import FEATURE_FIELDS, Measurements
from qheart.measurements.reference import RANGE_LABELS, axis_class

AXIS_WORDING = {"normal": "normal heart axis", "left": "left axis deviation",
                "right": "right axis deviation", "extreme": "extreme axis deviation"}
"""`axis_class` → ECG-QA's spelling of the axis findings."""

BLOCK_VERSION = 2
"""Bumped whenever the wording changes, so caches of rendered blocks are rebuilt."""


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def measurement_text(m: Measurements) -> str:
    """E.g. "Measured: heart rate 72 bpm; axis +45° (normal heart axis); qrs duration 128 ms
    above the normal range; rr interval 833 ms, pr interval 160 ms, qt interval 400 ms and qt corrected 438 ms
    within the normal range; p duration not measured."

    Deterministic. Ranges below → within → above, a group only when it has a feature; QT
    corrected is Bazett's, as in the reference table.
    """
    hr = "not measured" if math.isnan(m.heart_rate_bpm) else f"{m.heart_rate_bpm:.0f} bpm"
    axis = ("not measured" if math.isnan(m.axis_deg)
            else f"{m.axis_deg:+.0f}° ({AXIS_WORDING[axis_class(m.axis_deg)]})")
    parts = [f"heart rate {hr}", f"axis {axis}"]
    for label in RANGE_LABELS:
        group = [f"{feature} {getattr(m, field):.0f} ms" for feature, field in FEATURE_FIELDS.items()
                 if m.range_label(feature) == label]
        if group:
            parts.append(f"{_join(group)} {label}")
    missing = [feature for feature in FEATURE_FIELDS if m.range_label(feature) is None]
    if missing:
        parts.append(f"{_join(missing)} not measured")
    return "Measured: " + "; ".join(parts) + "."
