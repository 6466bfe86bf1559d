"""The compact measurement block for the LLM prompt: one line, values with their normal-range
class from the one reference table, so the model can answer "what range" and "which numeric
features" questions from text instead of reading intervals off the signal."""

from __future__ import annotations

import math

from qheart.measurements.measure import Measurements
from qheart.measurements.reference import ABOVE, BELOW, NORMAL_RANGES, WITHIN, axis_class

SHORT = {BELOW: "below", WITHIN: "normal", ABOVE: "above"}


def _value(value: float, feature: str | None = None) -> str:
    if math.isnan(value):
        return "n/a"
    text = f"{value:.0f} ms"
    if feature is not None:
        text += f" ({SHORT[NORMAL_RANGES[feature].label(value)]})"
    return text


def measurement_text(m: Measurements) -> str:
    """E.g. "Measured: HR 72 bpm; RR 833 ms (normal); P 100 ms (normal); PR 160 ms (normal);
    QRS 128 ms (above); QT 400 ms (normal); QTc 438 ms (normal); axis +45° (normal)."

    Deterministic; n/a where the measurement was not trusted. QTc is Bazett's, as in the table.
    """
    hr = "n/a" if math.isnan(m.heart_rate_bpm) else f"{m.heart_rate_bpm:.0f} bpm"
    axis = "n/a" if math.isnan(m.axis_deg) else f"{m.axis_deg:+.0f}° ({axis_class(m.axis_deg)})"
    parts = [
        f"HR {hr}",
        f"RR {_value(m.rr_mean_ms, 'rr interval')}",
        f"P {_value(m.p_duration_ms, 'p duration')}",
        f"PR {_value(m.pr_ms, 'pr interval')}",
        f"QRS {_value(m.qrs_ms, 'qrs duration')}",
        f"QT {_value(m.qt_ms, 'qt interval')}",
        f"QTc {_value(m.qtc_bazett_ms, 'qt corrected')}",
        f"axis {axis}",
    ]
    return "Measured: " + "; ".join(parts) + "."
