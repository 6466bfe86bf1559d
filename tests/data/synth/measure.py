"""A small delineator that reads intervals, ST, T and axis off a 12-lead signal.

Written for the tests of the synthetic benchmark: it sees only the (noisy) 12 × 5000 signal, never
the generator's parameters, so it checks that the labels are visible in the signals.

Method: QRS complexes from the spatial velocity (the norm over leads of the smoothed first
difference); a median beat over the detected beats; on it, QRS onset/offset where the spatial
velocity leaves/returns below 4 % of its peak, P onset where the spatial magnitude before the P peak
fades to 3 % of it above the noise floor, T end where the spatial magnitude after the T peak falls
below 3 % of its peak. ST is read at J + 40 ms against the PR-segment baseline. Baseline wander is
removed first by a cubic spline through the PR segments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, find_peaks, sosfiltfilt

FS = 500
MS = 1000 / FS
LEAD = {n: i for i, n in enumerate(("I", "II", "III", "aVR", "aVL", "aVF",
                                    "V1", "V2", "V3", "V4", "V5", "V6"))}  # fmt: skip


def spatial_velocity(x: np.ndarray) -> np.ndarray:
    """(12, T) → (T,) norm over leads of the 5-sample-smoothed first difference (mV/ms)."""
    smooth = uniform_filter1d(x, 5, axis=-1)
    d = np.diff(smooth, axis=-1, prepend=smooth[:, :1]) / MS
    return np.sqrt((d**2).sum(axis=0))


def qrs_peaks(signal: np.ndarray) -> np.ndarray:
    """Sample indices of the QRS complexes (peaks of the leads' median band-passed slope)."""
    sos = butter(2, [5, 30], btype="band", fs=FS, output="sos")
    slope = np.abs(np.diff(sosfiltfilt(sos, signal, axis=-1), axis=-1))
    slope /= np.percentile(slope, 99, axis=-1, keepdims=True) + 1e-9
    # The median over leads: an artefact confined to a few leads cannot pass for a QRS complex.
    v = uniform_filter1d(np.median(slope, axis=0), 40)
    peaks, _ = find_peaks(v, height=0.35 * np.percentile(v, 99.5), distance=int(0.25 * FS))
    return peaks


def rr_ms(signal: np.ndarray) -> np.ndarray:
    return np.diff(qrs_peaks(signal)) * MS


PRE, POST = int(0.45 * FS), int(0.7 * FS)


def _median(signal: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    beats = [signal[:, p - PRE : p + POST] for p in peaks if p - PRE >= 0 and p + POST <= signal.shape[1]]
    return np.median(np.stack(beats), axis=0)


def remove_wander(signal: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Subtract a cubic spline through every beat's PR segment (10 ms before its QRS onset):
    every real recording, and the generator's, wanders a little, and the T end sits at 3 % of T.
    Knots only in the PR segments leave ST and T untouched (a high-pass would not)."""
    from scipy.interpolate import CubicSpline

    on = _qrs_bounds(_median(signal, peaks))[0]
    knots = peaks + (on - PRE) - int(0.01 * FS)
    knots = knots[(knots >= 3) & (knots < signal.shape[1] - 3)]
    if len(knots) < 3:
        return signal
    values = np.stack([signal[:, k - 3 : k + 4].mean(axis=1) for k in knots], axis=1)  # (12, K)
    t = np.clip(np.arange(signal.shape[1]), knots[0], knots[-1])
    return signal - CubicSpline(knots, values, axis=1)(t)


def median_beat(signal: np.ndarray, peaks: np.ndarray | None = None) -> np.ndarray:
    """(12, PRE + POST) median over complete beats (wander removed), aligned on the QRS peaks."""
    peaks = qrs_peaks(signal) if peaks is None else peaks
    return _median(remove_wander(signal, peaks), peaks)


@dataclass(frozen=True)
class Delineation:
    qrs_on: int
    qrs_off: int
    p_on: int | None
    t_end: int
    t_peak: int
    baseline: np.ndarray  # (12,)

    @property
    def qrs_ms(self) -> float:
        return (self.qrs_off - self.qrs_on) * MS

    @property
    def pr_ms(self) -> float | None:
        return None if self.p_on is None else (self.qrs_on - self.p_on) * MS

    @property
    def qt_ms(self) -> float:
        return (self.t_end - self.qrs_on) * MS


def _qrs_bounds(beat: np.ndarray) -> tuple[int, int]:
    """QRS onset and offset (samples) of a median beat, from its spatial velocity."""
    v = spatial_velocity(beat)
    core = slice(PRE - int(0.08 * FS), PRE + int(0.1 * FS))
    vmax = v[core].max()
    peak = core.start + int(np.argmax(v[core]))
    thr = max(0.04 * vmax, 4.0 * float(np.median(v)))  # the median is the noise floor's level
    # Walk out from the peak; the velocity may dip between waves (and at the R peak, where all
    # leads turn at once), so gaps up to 20 ms inside the complex are bridged. The complex
    # cannot start more than 100 ms before its velocity peak nor end more than 130 ms after it.
    gap = int(0.02 * FS)
    on = peak
    while on > peak - int(0.1 * FS) and (v[on - gap : on] > thr).any():
        on -= 1
    off = peak
    while off < peak + int(0.13 * FS) and (v[off + 1 : off + 1 + gap] > thr).any():
        off += 1
    return on, off


def delineate(beat: np.ndarray, rr_ms: float, with_p: bool = True) -> Delineation:
    """Wave boundaries on a median beat (sample indices into the beat); rr_ms bounds the search
    for the T end (it must come before the next beat's P wave)."""
    on, off = _qrs_bounds(beat)
    # The ST plateau ramps in over ±8 ms around J; the QRS boundary search stops at its foot.
    base_window = slice(max(on - int(0.012 * FS), 0), max(on - int(0.004 * FS), 1))
    baseline = beat[:, base_window].mean(axis=1)
    centred = beat - baseline[:, None]
    mag = np.sqrt((centred**2).sum(axis=0))
    stop = min(len(mag), PRE + int((rr_ms - 120.0) / MS))
    t_window = slice(off + int(0.06 * FS), stop)
    t_peak = t_window.start + int(np.argmax(mag[t_window]))
    below = np.flatnonzero(mag[t_peak:stop] < 0.03 * mag[t_peak])
    t_end = t_peak + int(below[0]) if below.size else stop - 1
    p_on = None
    if with_p:
        # P peak: largest spatial magnitude 20-400 ms before the QRS; onset where it fades to 3 %.
        # The search starts after the previous beat's T wave (this beat's T end minus one RR).
        start = max(on - int(0.4 * FS), t_end - int(rr_ms / MS) + int(0.01 * FS), 0)
        smooth = uniform_filter1d(mag, 9)  # 18 ms: keeps the noise floor under the threshold
        p_peak = start + int(np.argmax(smooth[start : on - int(0.02 * FS)]))
        floor = np.percentile(smooth[start:p_peak + 1], 10)  # noise level of the T-P segment
        p_on = p_peak
        while p_on > start and smooth[p_on - 1] - floor > 0.03 * (smooth[p_peak] - floor):
            p_on -= 1
    return Delineation(on, off, p_on, t_end, t_peak, baseline)


def st_levels(beat: np.ndarray, d: Delineation, offset_ms: float = 40.0) -> np.ndarray:
    """(12,) ST level at J + offset, against the PR-segment baseline (mV)."""
    k = d.qrs_off + round(offset_ms / MS)
    return beat[:, k - 2 : k + 3].mean(axis=1) - d.baseline


def t_levels(beat: np.ndarray, d: Delineation) -> np.ndarray:
    """(12,) value of each lead at the spatial T peak, against the baseline (mV)."""
    return beat[:, d.t_peak] - d.baseline


def frontal_axis(beat: np.ndarray, d: Delineation) -> float:
    """Mean QRS axis from net areas of I and aVF (hexaxial, degrees)."""
    net = (beat[:, d.qrs_on : d.qrs_off + 1] - d.baseline[:, None]).sum(axis=1)
    return float(np.degrees(np.arctan2(2 * net[LEAD["aVF"]] / np.sqrt(3), net[LEAD["I"]])))


def p_wave_amplitude(beat: np.ndarray, d: Delineation, lead: str = "II",
                     rr_ms: float | None = None) -> float:
    """Largest deviation from baseline in the 300 ms before the QRS (mV); with `rr_ms`, only
    after the previous beat's T wave has ended (a fast rhythm puts it inside those 300 ms)."""
    start = d.qrs_on - int(0.3 * FS)
    if rr_ms is not None:
        start = max(start, d.t_end - int(rr_ms / 1000 * FS) + int(0.02 * FS))
    window = beat[LEAD[lead], start : max(d.qrs_on - int(0.02 * FS), start + 1)]
    return float(np.abs(window - d.baseline[LEAD[lead]]).max())
