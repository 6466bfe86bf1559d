"""Wave boundaries on a 12-lead median beat, read globally across the usable leads.

A wave starts where it starts in the earliest lead and ends where it ends in the latest, so the
boundaries come from multi-lead functions (as in the MEANS program and the CSE convention): the
spatial velocity (norm over leads of the slope) for the QRS complex and the spatial magnitude
(norm over leads of the deviation from the PR baseline) for the P and T waves. Each is compared
with a threshold relative to the wave's own peak and above the median beat's noise floor, which
is estimated from how much the beats scatter around their median. Where a boundary cannot be
placed (no crossing inside its search window) it is None with a reason, never a guess.

The thresholds assume the wave returns to the PR-segment level. Real ECGs often do not: the
TP segment sits off the PR level (atrial repolarisation, residual wander) and U waves follow
the T, so the spatial magnitude levels off at 5-20% of the T peak and a 3% threshold is never
crossed (on the 100 real PTB-XL sample records: QT found in 6%, P onset in 9%). Where the
magnitude settles above the threshold, the T end and the P onset are read with the tangent
method instead, the standard of manual QT measurement: the tangent at the wave's steepest
slope, followed to the level the magnitude settles at beyond it. Waves that return to the PR
level (the synthetic ones) keep the threshold reading. The P end is read the same way where
the PR segment after the P settles off the baseline (atrial repolarisation): the walk to 2% of
the P's height ran on to the QRS there, and P duration was measured on 37 of the 100 records.
The walk back to the P onset stops after `p_rise_max_ms`: it had crossed low waves running into
the P and given 8 normal records a PR of 260-330 ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks

from qheart.measurements.beats import FS, lowpass, ms


@dataclass(frozen=True)
class DelineationConfig:
    """Thresholds of the global delineation (fractions of each wave's peak)."""

    qrs_fraction: float = 0.04
    """QRS onset/offset: spatial velocity below this fraction of its peak."""
    t_fraction: float = 0.03
    """T end: spatial magnitude (above the noise floor) below this fraction of the T peak."""
    p_fraction: float = 0.02
    """P onset/end: spatial magnitude (above the floor) below this fraction of the P peak."""
    p_min_mv: float = 0.03
    """A P wave smaller than this (spatial peak, mV) is not reported."""
    p_min_snr: float = 4.0
    """… nor one smaller than this many times the noise floor of the median beat."""
    p_min_consistency: float = 0.4
    """… nor one that the single beats do not repeat (median correlation with the median P):
    fibrillatory waves average out in the median beat but do not correlate beat to beat."""
    t_tangent_ms: float = 150.0
    """Tangent method: the T's steepest descent is looked for this long after its peak, the P's
    steepest ascent `p_tangent_ms` before its peak …"""
    p_tangent_ms: float = 80.0
    floor_quantile: float = 0.25
    """… and each is followed to the level the magnitude settles at beyond it: this quantile of
    the magnitude from the T peak to the search's end, or from the search's start to the P peak
    (the TP segment, robust to a U wave, the next P or the wave's own foot)."""
    p_rise_max_ms: float = 100.0
    """The threshold walk back from the P's peak looks no further than this for its onset (a P
    rises for at most about half of its ≤ 150 ms); beyond it, the tangent gives the onset."""
    p_recur_share: float = 0.6
    p_recur_ms: float = 120.0
    """No P is read where another wave of `p_recur_share` of its height or more lies `p_recur_ms`
    or more from it before the QRS: flutter waves with fixed conduction repeat in every beat, so
    the consistency check passes them."""
    p_end_shoulder: float = 0.06
    """A P end is read with the tangent when the PR segment after it settles at or above this
    fraction of the P's height (a Ta wave holding it off the baseline before the QRS)."""
    p_max_level: float = 0.15
    """A P onset is read with the tangent only when the TP segment before it settles below this
    fraction of the P's height; above, the P rises out of continuing atrial activity (flutter
    waves) or a T wave, and its onset is not measured."""


@dataclass(frozen=True)
class Boundaries:
    """Sample indices into the median beat (None where not measurable, reason in `reasons`)."""

    qrs_on: int | None = None
    qrs_off: int | None = None
    t_peak: int | None = None
    t_end: int | None = None
    p_on: int | None = None
    p_end: int | None = None
    baseline: np.ndarray | None = None  # (12,) PR-segment level (mV)
    reasons: dict[str, str] = field(default_factory=dict)


def spatial_velocity(beat: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(12, L) → (L,) weighted norm over leads of the 10 ms-smoothed slope (mV/ms)."""
    smooth = uniform_filter1d(beat, 5, axis=-1)
    d = np.gradient(smooth, axis=-1) * FS / 1000.0
    return np.sqrt((weights[:, None] * d**2).sum(axis=0))


def spatial_magnitude(beat: np.ndarray, weights: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(L,) norm over leads of the deviation, with the noise's expected share removed
    (E|x + n|² = |x|² + Σσ²), so a noisy median beat does not look like a wave that never ends."""
    power = (weights[:, None] * beat**2).sum(axis=0) - float((weights * noise**2).sum())
    return np.sqrt(np.clip(power, 0.0, None))


def _walk(signal: np.ndarray, start: int, step: int, limit: int, threshold: float, gap: int) -> int | None:
    """From `start`, move by `step` while a sample within `gap` ahead stays above `threshold`;
    None if `limit` is reached first (no boundary inside the window)."""
    i = start
    while True:
        ahead = signal[i + step : i + step * (gap + 1) : step] if step > 0 else signal[max(i - gap, 0) : i]
        if not (ahead > threshold).any():
            return i
        i += step
        if (step > 0 and i >= limit) or (step < 0 and i <= limit):
            return None


def settled_level(curve: np.ndarray, lo: int, hi: int, config: DelineationConfig) -> float:
    """The level `curve` settles at in [lo, hi): its `floor_quantile` (robust to a U wave, the
    next P or the wave's own foot inside the span)."""
    part = curve[lo:hi]
    return float(np.quantile(part, config.floor_quantile)) if part.size else 0.0


def tangent_crossing(curve: np.ndarray, lo: int, hi: int, level: float, limit: int,
                     falling: bool = True) -> int | None:
    """Where the tangent at `curve`'s steepest descent in [lo, hi) meets `level` (`falling=False`:
    the steepest ascent, followed backwards). None without a slope, or when the crossing lies
    beyond `limit` (after it when falling, before it when rising)."""
    if hi - lo < 3:
        return None
    slope = np.gradient(curve[lo:hi])
    k = lo + int(np.argmin(slope) if falling else np.argmax(slope))
    steep = float(-slope[k - lo] if falling else slope[k - lo])
    if steep <= 0.0 or curve[k] < level:
        return None
    reach = (float(curve[k]) - level) / steep
    crossing = round(k + reach if falling else k - reach)
    return crossing if (crossing < limit if falling else crossing >= limit) else None


def find_qrs(beat: np.ndarray, weights: np.ndarray, fiducial: int, config: DelineationConfig
             ) -> tuple[int | None, int | None, dict[str, str]]:  # fmt: skip
    """QRS onset and offset where the spatial velocity leaves / returns to its floor. Gaps of up to
    20 ms inside the complex are bridged (the velocity dips where leads turn)."""
    v = spatial_velocity(beat, weights)
    core = slice(fiducial - ms(80), fiducial + ms(80))
    peak = core.start + int(np.argmax(v[core]))
    threshold = max(config.qrs_fraction * v[peak], 4.0 * float(np.median(v)))
    on = _walk(v, peak, -1, peak - ms(130), threshold, ms(20))
    off = _walk(v, peak, +1, peak + ms(170), threshold, ms(20))
    reasons = {}
    if on is None:
        reasons["qrs_on"] = "QRS onset not found: no quiet segment before the complex"
    if off is None:
        reasons["qrs_off"] = "QRS end not found: no quiet segment after the complex"
    return on, off, reasons


def find_t(centred: np.ndarray, weights: np.ndarray, noise: np.ndarray, qrs_off: int, stop: int,
           config: DelineationConfig) -> tuple[int | None, int | None, str | None]:  # fmt: skip
    """T peak (largest spatial magnitude from J+60 ms) and T end: the first fall below the fraction
    of that peak, or, where the magnitude settles above it, the tangent method (module doc);
    `stop` bounds the search before the next beat's atrial activity."""
    mag = spatial_magnitude(lowpass(centred, 20.0), weights, noise)
    start = qrs_off + ms(60)
    if stop - start < ms(40):
        return None, None, "no T wave window before the next beat"
    t_peak = start + int(np.argmax(mag[start:stop]))
    threshold = config.t_fraction * mag[t_peak]
    level = settled_level(mag, t_peak, stop, config)
    if level < threshold:  # the T returns to the PR level: read the threshold crossing
        below = np.flatnonzero(mag[t_peak:stop] < threshold)
        return t_peak, t_peak + int(below[0]), None
    end = tangent_crossing(mag, t_peak, min(stop, t_peak + ms(config.t_tangent_ms)), level, stop)
    if end is None:
        return t_peak, None, "T end not found before the next beat"
    return t_peak, end, None


def _recurs(mag: np.ndarray, start: int, stop: int, p_peak: int, height: float,
            config: DelineationConfig) -> bool:
    """Another wave of at least `p_recur_share` of the P's height, `p_recur_ms` or more from it,
    in the same atrial window: flutter waves recur every 160-300 ms, a sinus P comes once."""
    peaks, _ = find_peaks(mag[start:stop], height=config.p_recur_share * height)
    return bool(np.any(np.abs(start + peaks - p_peak) >= ms(config.p_recur_ms)))


def find_p(centred: np.ndarray, weights: np.ndarray, noise: np.ndarray, qrs_on: int, start: int,
           config: DelineationConfig) -> tuple[int | None, int | None, float, str | None]:  # fmt: skip
    """P onset and end around the largest spatial magnitude in [start, QRS onset − 20 ms]: each
    by the threshold walk where the segment beside the P is at the baseline, by the tangent where
    it settles off it (onset: only up to `p_max_level`).

    Returns (onset, end, spatial peak in mV, reason if not measurable)."""
    mag = uniform_filter1d(spatial_magnitude(lowpass(centred, 25.0), weights, noise), ms(10))
    stop = qrs_on - ms(20)
    if stop - start < ms(60):
        return None, None, 0.0, "no room for a P wave before the QRS"
    p_peak = start + int(np.argmax(mag[start:stop]))
    height = float(mag[p_peak])
    floor = float(np.sqrt((weights * noise**2).sum()))
    if height < max(config.p_min_mv, config.p_min_snr * floor):
        return None, None, height, "no P wave above the noise"
    threshold = config.p_fraction * height
    if _recurs(mag, start, stop, p_peak, height, config):
        return None, None, height, ("atrial waves recur before the QRS (flutter waves, or a U or "
                                    "T wave in the TP segment): no single P wave")

    def rising_tangent(level: float) -> int | None:
        return tangent_crossing(mag, max(start, p_peak - ms(config.p_tangent_ms)), p_peak + 1,
                                level, start, falling=False)

    level = settled_level(mag, start, p_peak, config)
    if level < threshold:  # the TP segment is at the PR level: walk down to the threshold
        on = _walk(mag, p_peak, -1, max(start, p_peak - ms(config.p_rise_max_ms)), threshold,
                   ms(6))
        if on is None:  # still above it a P's rise before the peak: something runs into the P
            on = rising_tangent(threshold)
    elif level <= config.p_max_level * height:  # a clear P on an offset TP segment
        on = rising_tangent(level)
    else:  # flutter waves, or a T wave running into the P: no onset to read
        on = None
    shoulder = settled_level(mag, p_peak, qrs_on, config)
    if shoulder < config.p_end_shoulder * height:  # the PR segment is at the baseline: walk to it
        end = _walk(mag, p_peak, +1, qrs_on, threshold, ms(6))
    else:  # atrial repolarisation holds the PR segment off the baseline: the tangent at the
        # P's steepest fall, followed to the level the segment settles at
        end = tangent_crossing(mag, p_peak, min(qrs_on, p_peak + ms(config.p_tangent_ms)),
                               shoulder, qrs_on)
    if on is None:
        return None, None, height, "P onset merges with the preceding activity (T wave or atrial waves)"
    if end is None:
        return on, None, height, "P end not separable from the QRS"
    return on, end, height, None
