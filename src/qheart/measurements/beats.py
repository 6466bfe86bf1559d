"""From a 12-lead record to aligned beats and a median beat per lead.

Beats are found on the median over usable leads of the normalised QRS slope, so an artefact
confined to a few leads cannot pass for (or hide) a QRS complex. Each beat is then aligned on a
QRS template by cross-correlation, and beats whose QRS does not match the dominant morphology
(ventricular ectopics, artefacts) or that come prematurely are left out of the median beat.
Within a lead, beats far from that lead's median (a burst of noise, a loose electrode) are left
out of that lead only, so one bad second costs one lead one beat, not the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, find_peaks, sosfiltfilt

FS = 500.0
"""Everything downstream runs at the canonical rate; other rates are resampled first."""


def ms(n_ms: float) -> int:
    """Milliseconds → samples at FS."""
    return round(n_ms * FS / 1000.0)


@dataclass(frozen=True)
class BeatConfig:
    """How beats are detected, aligned and selected."""

    pre_ms: float = 450.0
    """Window before the QRS fiducial: room for a 320 ms PR plus a long P wave."""
    post_ms: float = 700.0
    """Window after the fiducial: room for a QT of 650 ms at slow rates."""
    min_qrs_corr: float = 0.85
    """A beat whose QRS correlates less with the template is ectopic or artefact."""
    premature_fraction: float = 0.8
    """A beat coming earlier than this fraction of the median RR is premature."""
    lead_outlier_factor: float = 3.0
    """Within a lead, a beat whose deviation from the lead's median beat exceeds this many times
    the typical deviation is dropped from that lead's median."""


@lru_cache(maxsize=32)
def butter_sos(order: int, hz: float | tuple[float, float], kind: str) -> np.ndarray:
    """Butterworth sections, designed once (designing costs more than filtering a record)."""
    return butter(order, hz, btype=kind, fs=FS, output="sos")


def highpass(x: np.ndarray, hz: float = 0.5) -> np.ndarray:
    """Zero-phase baseline removal; zero phase keeps the ST level (AHA 2007: ≤ 0.67 Hz)."""
    return sosfiltfilt(butter_sos(1, hz, "high"), x, axis=-1)


def lowpass(x: np.ndarray, hz: float) -> np.ndarray:
    return sosfiltfilt(butter_sos(2, hz, "low"), x, axis=-1)


def bandpass(x: np.ndarray, low: float = 5.0, high: float = 30.0) -> np.ndarray:
    return sosfiltfilt(butter_sos(2, (low, high), "band"), x, axis=-1)


def nanmedian0(a: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN (NaN where all are NaN); sorting once is ~10x faster than
    np.nanmedian's masked-array path on (beats, leads, samples) stacks."""
    s = np.sort(a, axis=0)  # NaN sort last
    n = (~np.isnan(a)).sum(axis=0)
    lo = np.maximum((n - 1) // 2, 0)[None]
    hi = np.maximum(n // 2, 0)[None]
    med = 0.5 * (np.take_along_axis(s, lo, 0)[0] + np.take_along_axis(s, hi, 0)[0])
    return np.where(n > 0, med, np.nan)


def detect_qrs(x: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Sample indices of QRS complexes: peaks of the usable leads' median band-passed slope."""
    leads = x[usable] if usable.sum() >= 3 else x
    slope = np.abs(np.diff(bandpass(leads), axis=-1))
    slope /= np.percentile(slope, 99, axis=-1, keepdims=True) + 1e-9
    energy = uniform_filter1d(np.median(slope, axis=0), ms(80))
    height = 0.3 * np.percentile(energy, 99.5)
    peaks, _ = find_peaks(energy, height=height, distance=ms(250))
    return peaks


def windows(x: np.ndarray, centres: np.ndarray, pre: int, post: int) -> np.ndarray:
    """(n, leads, pre + post) segments around `centres`, NaN where a window leaves the record."""
    n_leads, n = x.shape
    padded = np.full((n_leads, n + pre + post), np.nan)
    padded[:, pre : pre + n] = x
    idx = centres[:, None] + np.arange(pre + post)[None, :]  # (n_beats, L) into padded
    return np.transpose(padded[:, idx], (1, 0, 2))


def align(band: np.ndarray, peaks: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shift each beat (±20 ms) onto the median QRS template; return new peaks and the QRS
    correlation of each beat with the template (its similarity to the dominant morphology)."""
    half, lag = ms(60), ms(20)
    leads = band[usable] if usable.sum() >= 3 else band
    segs = windows(leads, peaks, half + lag, half + lag)  # (n, leads, 2*(half+lag))
    template = nanmedian0(segs[:, :, lag:-lag])  # (leads, 2*half)
    t = np.nan_to_num(template - template.mean(axis=1, keepdims=True)).ravel()
    best_lag = np.zeros(len(peaks), dtype=int)
    best_r = np.full(len(peaks), -1.0)
    for k in range(2 * lag + 1):
        part = segs[:, :, k : k + 2 * half]
        part = part - np.nanmean(part, axis=2, keepdims=True)
        flat = np.nan_to_num(part.reshape(len(peaks), -1))
        r = flat @ t / (np.linalg.norm(flat, axis=1) * np.linalg.norm(t) + 1e-12)
        better = r > best_r
        best_r[better], best_lag[better] = r[better], k - lag
    return peaks + best_lag, best_r


@dataclass(frozen=True)
class Beats:
    """Detected beats and the median beat built from the selected ones."""

    peaks: np.ndarray  # (n,) fiducial samples of every detected beat
    qrs_corr: np.ndarray  # (n,) QRS similarity to the dominant morphology
    selected: np.ndarray  # (n,) bool: dominant, non-premature beats used for the median
    segments: np.ndarray  # (n_selected, 12, L) high-passed beats, NaN outside the record
    pre: int  # index of the fiducial inside a segment

    @property
    def rr_ms(self) -> np.ndarray:
        return np.diff(self.peaks) * 1000.0 / FS


def find_beats(x: np.ndarray, usable: np.ndarray, config: BeatConfig) -> Beats:
    """Detect, align and select beats of a high-passed (12, T) record."""
    peaks = detect_qrs(x, usable)
    pre, post = ms(config.pre_ms), ms(config.post_ms)
    if len(peaks) < 2:
        empty = np.zeros((0, x.shape[0], pre + post))
        return Beats(peaks, np.zeros(len(peaks)), np.zeros(len(peaks), bool), empty, pre)
    peaks, corr = align(bandpass(x), peaks, usable)
    selected = corr >= config.min_qrs_corr
    rr_prev = np.diff(peaks, prepend=peaks[0] - 10 * x.shape[1])
    if len(peaks) > 2:
        premature = rr_prev < config.premature_fraction * np.median(np.diff(peaks))
        if (selected & ~premature).sum() >= 3:
            selected &= ~premature
    return Beats(peaks, corr, selected, windows(x, peaks[selected], pre, post), pre)


def median_beat(segments: np.ndarray, config: BeatConfig) -> tuple[np.ndarray, np.ndarray]:
    """(12, L) median beat per lead with per-lead outlier beats left out, and (n, 12) the mask of
    the beats kept per lead."""
    first = nanmedian0(segments)  # (12, L)
    deviation = np.sqrt(np.nanmean((segments - first) ** 2, axis=2))  # (n, 12)
    typical = nanmedian0(deviation)  # (12,)
    keep = deviation <= config.lead_outlier_factor * np.maximum(typical, 0.01)
    masked = np.where(keep[:, :, None], segments, np.nan)
    return nanmedian0(masked), keep


def isoelectric_baseline(raw: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """(12, T) baseline through the PR-segment level of every beat (monotone cubic, PCHIP).

    A spline through the isoelectric points removes wander without the undershoot that any
    high-pass filter leaves after large QRS and T waves, which would shift ST levels and T ends.
    """
    from scipy.interpolate import PchipInterpolator

    n = raw.shape[-1]
    knots = knots[(knots >= ms(8)) & (knots < n - ms(8))]
    if len(knots) < 2:
        return np.repeat(np.median(raw, axis=-1, keepdims=True), n, axis=-1)
    levels = np.stack([np.median(raw[:, k - ms(8) : k + ms(8)], axis=-1) for k in knots], axis=-1)
    t = np.arange(n)
    spline = PchipInterpolator(knots, levels, axis=-1, extrapolate=False)(t)
    spline[:, t < knots[0]] = levels[:, :1]
    spline[:, t > knots[-1]] = levels[:, -1:]
    return spline
