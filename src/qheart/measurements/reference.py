"""The one table of normal adult ranges: what measurements are judged against and what the
synthetic labels are drawn from (SPEC §4: labels and measurements must agree).

ECG-QA's own thresholds are not published with the release, so both use standard adult reference
ranges. `qheart.data.synth.ranges` re-exports this module; nothing else holds a threshold.

Sources:
- RR: a resting rate of 60–100 bpm; below 60 is bradycardia, above 100 tachycardia
  (Kligfield et al., AHA/ACC/HRS recommendations for the standardization and interpretation of the
  ECG, Part I, Circulation 2007;115:1306).
- P duration: up to 120 ms; a longer P signals left atrial abnormality (Hancock et al., Part V,
  Circulation 2009;119:e251). The lower bound of 80 ms is the usual textbook floor.
- PR: 120–200 ms; above 200 ms is first-degree AV block (Surawicz et al., Part III, Circulation
  2009;119:e235).
- QRS: up to 110 ms in adults; 110–119 ms is incomplete and ≥ 120 ms complete bundle branch block
  (Surawicz et al. 2009, Part III). The lower bound of 70 ms is the usual textbook floor.
- QTc (Bazett): 350–450 ms (Goldenberg, Moss & Zareba, "QT interval: how to measure it and what
  is normal", J Cardiovasc Electrophysiol 2006;17:333; men 350–450 ms).
- QT (uncorrected): no guideline gives a rate-independent range; 320–440 ms is the conventional
  adult band (QTc 350–450 ms at 60–75 bpm). Tachycardic ECGs with a normal QTc therefore often
  have a QT "below the normal range", as on real machine measurements.
- Frontal QRS axis: normal −30° to +90°, left axis deviation −30° to −90°, right +90° to +180°
  (Surawicz et al. 2009, Part III); −90° to −180° is extreme ("northwest") axis.
"""

from __future__ import annotations

from dataclasses import dataclass

BELOW = "below the normal range"
WITHIN = "within the normal range"
ABOVE = "above the normal range"
RANGE_LABELS: tuple[str, ...] = (BELOW, WITHIN, ABOVE)


@dataclass(frozen=True)
class NormalRange:
    """Inclusive normal range [low, high] of one feature, in milliseconds."""

    feature: str
    low: float
    high: float

    def label(self, value_ms: float) -> str:
        """below / within / above the normal range (ECG-QA wording)."""
        if value_ms < self.low:
            return BELOW
        if value_ms > self.high:
            return ABOVE
        return WITHIN

    def margin(self, value_ms: float) -> float:
        """Distance (ms) to the nearest threshold: how safely a value sits in its class."""
        return min(abs(value_ms - self.low), abs(value_ms - self.high))


NORMAL_RANGES: dict[str, NormalRange] = {
    r.feature: r
    for r in (
        NormalRange("rr interval", 600.0, 1000.0),
        NormalRange("p duration", 80.0, 120.0),
        NormalRange("pr interval", 120.0, 200.0),
        NormalRange("qrs duration", 70.0, 110.0),
        NormalRange("qt interval", 320.0, 440.0),
        NormalRange("qt corrected", 350.0, 450.0),
    )
}
FEATURES: tuple[str, ...] = tuple(NORMAL_RANGES)
"""ECG-QA's six numeric features, spelled as in its answers.csv."""

LABEL_MARGIN_MS: dict[str, float] = {
    "rr interval": 40.0,
    "p duration": 8.0,
    "pr interval": 12.0,
    "qrs duration": 10.0,
    "qt interval": 12.0,
    "qt corrected": 12.0,
}
"""Sampled values keep at least this distance from a threshold, so that a measurement within its
tolerance lands in the same class as the label."""

AXIS_NORMAL_DEG = (-30.0, 90.0)
"""Normal frontal QRS axis (degrees, inclusive); left deviation below, right deviation above."""


def axis_class(angle_deg: float) -> str:
    """Short frontal-axis class: normal, left, right or extreme (−90° to −180°)."""
    low, high = AXIS_NORMAL_DEG
    if low <= angle_deg <= high:
        return "normal"
    if -90.0 <= angle_deg < low:
        return "left"
    if high < angle_deg <= 180.0:
        return "right"
    return "extreme"


def qtc_bazett(qt_ms: float, rr_ms: float) -> float:
    """Bazett's correction QTc = QT / sqrt(RR in s)."""
    return qt_ms / (rr_ms / 1000.0) ** 0.5


def qtc_fridericia(qt_ms: float, rr_ms: float) -> float:
    """Fridericia's correction QTc = QT / cbrt(RR in s); less biased than Bazett at high rates."""
    return qt_ms / (rr_ms / 1000.0) ** (1.0 / 3.0)
