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

from qheart.data.options import names_in_text
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


Readings = dict[str, tuple[float | None, str | None]]
"""ECG-QA numeric feature → (value in ms, range label); (None, None) when not measured."""


def feature_readings(m: Measurements) -> Readings:
    """The six numeric features of one ECG, JSON-safe (what `asked_measurement_text` needs, so
    a benchmark caches these instead of whole `Measurements`)."""
    out: Readings = {}
    for feature, field in FEATURE_FIELDS.items():
        value = getattr(m, field)
        out[feature] = (None, None) if math.isnan(value) else (round(value), m.range_label(feature))
    return out


def asked_measurement_text(readings: Readings, question: str) -> str | None:
    """Only what the question asks about, as one line (`measurement_scope="asked"`), or None
    when it names no numeric feature and no range.

    - It names features ("Is the qt interval of this ECG above the normal range?"): each one's
      value and range, "Measured: qt interval 412 ms within the normal range."
    - Else it names a range ("What numeric features of this ECG are above the normal range?"):
      the features in it, "Measured: qrs duration and qt interval above the normal range.", or
      "Measured: no numeric feature above the normal range."; unmeasured features are said.

    Why a line per question instead of the whole block: the block sits in the ECG's context for
    every question about it (~75 tokens), and an hour of tuning did not learn to copy from it;
    a short line next to the question, like a finding hint, is what the LLM was shown to read.
    """
    features = names_in_text(question, list(readings))
    missing = [f for f in readings if readings[f][1] is None]
    if features:
        parts = [f"{f} not measured" if readings[f][1] is None
                 else f"{f} {readings[f][0]} ms {readings[f][1]}" for f in features]
    else:
        ranges = names_in_text(question, RANGE_LABELS)
        if not ranges:
            return None
        parts = []
        for label in ranges:
            group = [f for f in readings if readings[f][1] == label]
            parts.append(f"{_join(group)} {label}" if group else f"no numeric feature {label}")
        if missing:
            parts.append(f"{_join(missing)} not measured")
    return "Measured: " + "; ".join(parts) + "."
