"""Signal helpers that turn any ECG into the canonical grid: resampling, crop/pad, filters, checks.

All functions are pure: they take a (n_leads, n_samples) array and return a new one.

Resampling: `scipy.signal.resample_poly` with the ratio `target / source` written as a fraction
(`fractions.Fraction(...).limit_denominator`). A polyphase FIR filter (Kaiser window) low-passes at
the new Nyquist before decimating, so content above it is removed instead of aliased, and unlike
FFT resampling (`scipy.signal.resample`) it does not treat the record as periodic, so there is no
wrap-around ringing at the two ends. The rates of the published corpora are exact small ratios of
500 Hz (PTB-XL 100/500 Hz, PTB 1000 Hz, CODE-15 400 Hz → 5/4, MIT-BIH 360 Hz → 25/18).

Crop/pad policy (`crop_or_pad`), applied after resampling to 500 Hz:
- longer than 10 s: keep the first 10 s. Deterministic, keeps time zero aligned with the file's
  start (so annotations keyed to onset stay valid), and PTB-XL/MIMIC-IV-ECG are exactly 10 s anyway.
- between 2 s and 10 s: pad at the end with the last sample's value ("edge" mode). Zero padding
  would put a step wherever the baseline is not exactly 0 mV (a fake deflection that filters then
  ring on); reflect/wrap padding would invent beats, i.e. false rhythm and interval evidence. A
  flat continuation adds no beats and no step.
- shorter than 2 s: rejected by `validate` (`TooShortError`), never padded.

Read window: readers take only the first `READ_SECONDS` (the kept 10 s plus `READ_MARGIN_S`) of
a longer record (`read_window`), so a 2 GB record costs what a 12 s one does. The margin is far
wider than the resampling filter's support (≤ 0.02 s at any rate from 50 Hz to 10 kHz) and one
period of the 0.5 Hz baseline filter, so the kept 10 s come out as from the whole record (to
within ~1 µV: only the mean removed before resampling differs).

Amplitude sanity (`check_amplitude`, on the canonical window): each lead's typical deflection is
measured as the 99th percentile of |x − median(x)| (robust to a short artefact or pacing spike).
No lead's may exceed `MAX_TYPICAL_MV`, no sample may exceed `MAX_ABS_MV`, and some lead's
peak-to-peak range must reach `MIN_RANGE_MV`. Real 12-lead ECGs in mV sit well inside: QRS complexes are 0.3–5 mV, a
low-voltage ECG still has a lead above 0.1 mV (measured: the largest lead's typical deflection
in each of the 100 real PTB-XL samples is 0.89–3.96 mV, peaks ≤ 4.6 mV; PTB's s0010_re 1.44 mV). Raw 16-bit ADC counts (gain 200 or
1000 units/mV not applied: typical deflections of hundreds), microvolts (×1000) and volts
(÷1000) fall outside, and are refused with a hint instead of read silently wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import signal as sps

from qheart.data.errors import (
    AmplitudeError,
    FlatLeadError,
    NonFiniteSignalError,
    SampleRateError,
    TooShortError,
)
from qheart.data.leads import DURATION_S, LEADS, MIN_DURATION_S, N_SAMPLES, SAMPLE_RATE_HZ

MAX_RATIO_DENOMINATOR = 1000
"""Rates are approximated as a fraction with at most this denominator: exact for every integer
rate up to 1000 Hz and within 0.1 % otherwise, while keeping the polyphase filter bank small."""

FLAT_TOLERANCE_MV = 1e-6
"""A lead whose peak-to-peak range is below this (1 nV) over the whole record counts as flat."""

MIN_SAMPLE_RATE_HZ = 50.0
"""Below this the QRS complex (10–40 Hz content) is not represented; PTB-XL's 100 Hz still is."""
MAX_SAMPLE_RATE_HZ = 10_000.0
"""Above any diagnostic or high-resolution ECG (PTB: 1 kHz, research systems: up to 10 kHz)."""

READ_MARGIN_S = 2.0
"""Signal read beyond the kept 10 s, for the resampling filter and the baseline filter."""
READ_SECONDS = DURATION_S + READ_MARGIN_S

MIN_RANGE_MV = 0.02
"""Some lead's peak-to-peak range must reach 20 µV (an ECG in volts stays below)."""
MAX_TYPICAL_MV = 25.0
"""No lead's typical deflection may exceed 25 mV (5× the tallest QRS in any lead)."""
MAX_ABS_MV = 1000.0
"""No sample beyond ±1 V: far past any electrode offset, and within the float16 store."""
_TYPICAL_PERCENTILE = 99.0


def check_sample_rate(sample_rate: object, source: str | Path) -> float:
    """The rate as a float, or SampleRateError: missing, not a number, not finite, or outside
    MIN_SAMPLE_RATE_HZ–MAX_SAMPLE_RATE_HZ."""
    if sample_rate is None:
        raise SampleRateError(source, "sample rate missing: pass sample_rate= (Hz)")
    if isinstance(sample_rate, bool):
        raise SampleRateError(source, f"sample rate {sample_rate!r} is not a number")
    try:
        rate = float(sample_rate)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise SampleRateError(source, f"sample rate {sample_rate!r} is not a number") from None
    if not np.isfinite(rate) or not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise SampleRateError(
            source,
            f"sample rate {sample_rate!r} Hz outside the plausible range "
            f"{MIN_SAMPLE_RATE_HZ:g}–{MAX_SAMPLE_RATE_HZ:g} Hz",
        )
    return rate


def read_window(sample_rate: float) -> int:
    """Samples at `sample_rate` a reader needs: READ_SECONDS, rounded up."""
    return int(np.ceil(READ_SECONDS * float(sample_rate)))


def resample_ratio(source_hz: float, target_hz: float) -> tuple[int, int]:
    """(up, down) integers with up/down ≈ target/source, the smallest exact fraction possible."""
    ratio = Fraction(target_hz / source_hz).limit_denominator(MAX_RATIO_DENOMINATOR)
    return ratio.numerator, ratio.denominator


def resample(signal: np.ndarray, source_hz: float, target_hz: float = SAMPLE_RATE_HZ) -> np.ndarray:
    """Anti-aliased resampling along the last axis; returns float64 (n_leads, ceil(n·up/down))."""
    x = np.asarray(signal, dtype=np.float64)
    up, down = resample_ratio(source_hz, target_hz)
    if up == down:
        return x.copy()
    # The default zero padding makes any baseline offset a step at both ends (ringing of ~0.1 mV
    # on a 0.7 mV offset); padtype="line" extends the end trend instead. Removing the mean first
    # keeps DC exact (the FIR's DC gain is only 1 within ~0.1 %).
    mean = x.mean(axis=-1, keepdims=True)
    return sps.resample_poly(x - mean, up, down, axis=-1, padtype="line") + mean


def crop_or_pad(signal: np.ndarray, n_samples: int = N_SAMPLES) -> np.ndarray:
    """Keep the first `n_samples`, or edge-pad at the end to reach it (policy in module docstring)."""
    x = np.asarray(signal)
    n = x.shape[-1]
    if n >= n_samples:
        return x[..., :n_samples].copy()
    if n == 0:
        raise ValueError("cannot pad an empty signal")
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n_samples - n)]
    return np.pad(x, pad, mode="edge")


@dataclass(frozen=True)
class FilterConfig:
    """Optional zero-phase Butterworth filtering applied at 500 Hz before crop/pad."""

    highpass_hz: float | None = None
    """Cut-off of the high-pass that removes baseline wander (0.5 Hz keeps the ST segment)."""
    lowpass_hz: float | None = None
    """Cut-off of the low-pass that removes mains/EMG noise; None keeps everything."""
    order: int = 2
    """Butterworth order per pass; sosfiltfilt runs it twice (zero phase), doubling the roll-off."""

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ValueError(f"filter order must be >= 1, got {self.order}")
        for name in ("highpass_hz", "lowpass_hz"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.highpass_hz and self.lowpass_hz and self.highpass_hz >= self.lowpass_hz:
            raise ValueError("highpass_hz must be below lowpass_hz")

    @classmethod
    def from_name(cls, name: str) -> FilterConfig:
        """Presets: "none"; "baseline" (0.5 Hz high-pass); "bandpass" (0.5–40 Hz, monitor band)."""
        presets = {
            "none": cls(),
            "baseline": cls(highpass_hz=0.5),
            "bandpass": cls(highpass_hz=0.5, lowpass_hz=40.0),
        }
        if name not in presets:
            raise ValueError(f"unknown filter preset {name!r}; choose from {sorted(presets)}")
        return presets[name]

    @property
    def is_identity(self) -> bool:
        return self.highpass_hz is None and self.lowpass_hz is None


def _padlen(x: np.ndarray, sample_rate: float, lowest_hz: float) -> int:
    """Edge extension for sosfiltfilt: one period of the lowest cut-off (1 s at 0.5 Hz).

    scipy's default (a few dozen samples) leaves a 0.5 Hz high-pass ringing for seconds at both
    ends (errors of ~0.6 mV on a 1 mV tone, measured); a one-period extension cuts that ~5×.
    """
    return int(min(x.shape[-1] - 1, np.ceil(sample_rate / lowest_hz)))


def remove_baseline(
    signal: np.ndarray, sample_rate: float, cutoff_hz: float = 0.5, order: int = 2
) -> np.ndarray:
    """Zero-phase Butterworth high-pass: removes respiration/electrode baseline wander."""
    sos = sps.butter(order, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
    x = np.asarray(signal, dtype=np.float64)
    return sps.sosfiltfilt(sos, x, axis=-1, padlen=_padlen(x, sample_rate, cutoff_hz))


def bandpass(
    signal: np.ndarray,
    sample_rate: float,
    low_hz: float = 0.5,
    high_hz: float = 40.0,
    order: int = 2,
) -> np.ndarray:
    """Zero-phase Butterworth band-pass (zero phase keeps wave onsets/offsets in place)."""
    sos = sps.butter(order, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    x = np.asarray(signal, dtype=np.float64)
    return sps.sosfiltfilt(sos, x, axis=-1, padlen=_padlen(x, sample_rate, low_hz))


def lowpass(signal: np.ndarray, sample_rate: float, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth low-pass."""
    sos = sps.butter(order, cutoff_hz, btype="lowpass", fs=sample_rate, output="sos")
    return sps.sosfiltfilt(sos, np.asarray(signal, dtype=np.float64), axis=-1)


def apply_filters(signal: np.ndarray, sample_rate: float, config: FilterConfig) -> np.ndarray:
    """Apply the filters a FilterConfig asks for (identity when it asks for none)."""
    if config.highpass_hz is not None and config.lowpass_hz is not None:
        return bandpass(signal, sample_rate, config.highpass_hz, config.lowpass_hz, config.order)
    if config.highpass_hz is not None:
        return remove_baseline(signal, sample_rate, config.highpass_hz, config.order)
    if config.lowpass_hz is not None:
        return lowpass(signal, sample_rate, config.lowpass_hz, config.order)
    return np.asarray(signal)


def validate(
    signal: np.ndarray,
    source: str | Path,
    *,
    sample_rate: float = SAMPLE_RATE_HZ,
    leads: Sequence[str] = LEADS,
) -> None:
    """Raise the typed ECGError for a record no model should see; return None when it is usable.

    Checked in this order (each later check assumes the earlier ones passed): non-finite samples,
    at least MIN_DURATION_S of signal, no lead constant over the whole record.
    """
    x = np.asarray(signal)
    if x.ndim != 2 or x.shape[0] != len(leads):
        raise ValueError(f"expected ({len(leads)}, n_samples) signal, got shape {x.shape}")
    finite = np.isfinite(x)
    if not finite.all():
        bad = [leads[i] for i in np.flatnonzero(~finite.all(axis=1))]
        count = int((~finite).sum())
        raise NonFiniteSignalError(source, f"{count} NaN/inf samples in lead(s) {', '.join(bad)}")
    duration = x.shape[1] / sample_rate
    if duration < MIN_DURATION_S:
        raise TooShortError(
            source, f"only {duration:.2f} s of signal, at least {MIN_DURATION_S:g} s needed"
        )
    flat = np.ptp(x, axis=1) < FLAT_TOLERANCE_MV
    if flat.any():
        names = ", ".join(leads[i] for i in np.flatnonzero(flat))
        raise FlatLeadError(source, f"flat lead(s) {names} (constant over the whole record)")


def check_amplitude(
    signal: np.ndarray, source: str | Path, *, leads: Sequence[str] = LEADS
) -> None:
    """Raise AmplitudeError for values no ECG in millivolts has (bounds in the module docstring).

    signal: (n_leads, n_samples) finite mV; call after `validate`.
    """
    x = np.asarray(signal, dtype=np.float32)
    peak = float(np.abs(x).max())
    deviation = np.abs(x - np.median(x, axis=1, keepdims=True))  # (n_leads, n)
    rank = int(_TYPICAL_PERCENTILE / 100 * (x.shape[1] - 1))  # nearest rank: one partition
    typical = np.partition(deviation, rank, axis=1)[:, rank].astype(np.float64)  # (n_leads,)
    top = int(np.argmax(typical))
    largest = f"{typical[top]:.4g} (lead {leads[top]})"
    if typical[top] > MAX_TYPICAL_MV or peak > MAX_ABS_MV:
        raise AmplitudeError(
            source,
            f"amplitudes far beyond any ECG in mV (largest typical deflection {largest}, peak "
            f"{peak:.4g}; limits {MAX_TYPICAL_MV:g} and {MAX_ABS_MV:g} mV): raw ADC counts? "
            "divide by the ADC gain (units per mV, e.g. 1000 or 200); microvolts? divide by 1000",
        )
    ranges = np.ptp(x, axis=1)  # (n_leads,)
    if ranges.max() < MIN_RANGE_MV:
        widest = int(np.argmax(ranges))
        raise AmplitudeError(
            source,
            f"amplitudes far below any ECG in mV (largest peak-to-peak {ranges[widest]:.4g} in "
            f"lead {leads[widest]}, under {MIN_RANGE_MV:g} mV): volts? multiply by 1000",
        )
