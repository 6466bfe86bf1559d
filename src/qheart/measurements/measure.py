"""`measure_ecg`: conventional ECG measurements from the canonical 12-lead signal.

Pipeline: baseline removal → lead flatness → beats (detect, align, select dominant non-premature
beats) → lead quality → median beat per lead (per-beat PR baseline, per-lead outlier beats out) →
global delineation on the usable leads → intervals, axis, per-lead ST and T. Every value that
cannot be trusted is NaN, and `reasons` says why; nothing is filled in by a default.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.signal import resample_poly

from qheart.data.leads import LEADS
from qheart.measurements import delineate as D
from qheart.measurements import quality as Q
from qheart.measurements.beats import (
    FS,
    BeatConfig,
    find_beats,
    highpass,
    isoelectric_baseline,
    lowpass,
    median_beat,
    ms,
    nanmedian0,
    windows,
)
from qheart.measurements.reference import NORMAL_RANGES, qtc_bazett, qtc_fridericia

NAN = float("nan")

MEASURE_VERSION = 4
"""Bumped whenever a change can move a measured value, so cached readings are re-measured.
2: tangent T end and P onset on offset TP segments, leave-one-out P consistency; 3: tangent P end
on a PR segment held off the baseline, P onset walk capped at 100 ms; 4: no P where atrial waves
recur before the QRS."""
INTERVALS = ("heart_rate_bpm", "rr_mean_ms", "rr_sd_ms", "p_duration_ms", "pr_ms", "qrs_ms", "qt_ms",
             "qtc_bazett_ms", "qtc_fridericia_ms", "axis_deg")  # fmt: skip
PLAUSIBLE = {
    "heart_rate_bpm": (20.0, 250.0),
    "p_duration_ms": (40.0, 200.0),
    "pr_ms": (60.0, 450.0),
    "qrs_ms": (40.0, 220.0),
    "qt_ms": (180.0, 700.0),
}
"""Outside these a value is a delineation failure, not a finding: reported as NaN."""
QTC_PLAUSIBLE = (300.0, 560.0)
"""A Bazett QTc outside this is far more often a T end placed on a U wave or on the next P wave
(seen on real PTB-XL records) than a real QT: QT and QTc are then NaN."""
FEATURE_FIELDS = {
    "rr interval": "rr_mean_ms", "p duration": "p_duration_ms", "pr interval": "pr_ms",
    "qrs duration": "qrs_ms", "qt interval": "qt_ms", "qt corrected": "qtc_bazett_ms",
}  # fmt: skip
"""ECG-QA's numeric features → the field that measures them (QTc by Bazett, as the table)."""
LIMB = {"I": 0.0, "II": 60.0, "III": 120.0, "aVR": -150.0, "aVL": -30.0, "aVF": 90.0}
"""Hexaxial lead angles (degrees); the augmented leads see the heart vector at √3/2 gain."""


@dataclass(frozen=True)
class MeasureConfig:
    beats: BeatConfig = field(default_factory=BeatConfig)
    delineation: D.DelineationConfig = field(default_factory=D.DelineationConfig)
    quality: Q.QualityConfig = field(default_factory=Q.QualityConfig)
    st_offset_ms: float = 60.0
    """ST level is read at J + 60 ms against the PR-segment baseline."""
    t_flat_mv: float = 0.05
    """A T wave whose largest deflection is smaller than this is called flat."""
    min_beats: int = 3


@dataclass(frozen=True)
class LeadMeasurement:
    """One lead: signal quality, ST level at J+60 ms and T wave (mV against the PR baseline)."""

    lead: str
    quality: float
    """0–1: median correlation of the lead's beats with its median beat."""
    quality_label: str
    """good | noisy | flat | missing."""
    st_mv: float = NAN
    t_mv: float = NAN
    """Lead value at the global T peak."""
    t_polarity: str = ""
    """positive | negative | biphasic | flat; empty when not measured."""
    reason: str = ""
    """Why ST/T are NaN (empty when measured)."""


@dataclass(frozen=True)
class Measurements:
    """Global intervals (ms), rate, axis and per-lead values; NaN where untrusted (see reasons)."""

    heart_rate_bpm: float = NAN
    rr_mean_ms: float = NAN
    rr_sd_ms: float = NAN
    p_duration_ms: float = NAN
    pr_ms: float = NAN
    qrs_ms: float = NAN
    qt_ms: float = NAN
    qtc_bazett_ms: float = NAN
    qtc_fridericia_ms: float = NAN
    axis_deg: float = NAN
    n_beats: int = 0
    """QRS complexes detected."""
    n_beats_used: int = 0
    """Dominant, non-premature beats in the median beat."""
    leads: tuple[LeadMeasurement, ...] = ()
    reasons: dict[str, str] = field(default_factory=dict)
    """Field name → why it is NaN."""

    def range_label(self, feature: str) -> str | None:
        """below/within/above the normal range for an ECG-QA feature, None when not measured."""
        value = getattr(self, FEATURE_FIELDS[feature])
        return None if math.isnan(value) else NORMAL_RANGES[feature].label(value)

    def to_dict(self) -> dict:
        """JSON-safe: NaN becomes None, values rounded to 0.1 ms / 0.001 mV."""
        def clean(v):
            if isinstance(v, float):
                return None if math.isnan(v) else round(v, 3)
            return v

        out = {k: clean(getattr(self, k)) for k in (*INTERVALS, "n_beats", "n_beats_used")}
        for k in INTERVALS:
            if out[k] is not None:
                out[k] = round(out[k], 1)
        out["leads"] = [{k: clean(v) for k, v in asdict(lead).items()} for lead in self.leads]
        out["reasons"] = dict(self.reasons)
        out["ranges"] = {f: self.range_label(f) for f in FEATURE_FIELDS}
        return out


# ------------------------------------------------------------------------------------ helpers


def _canonical(signal: np.ndarray, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(12, T) float64 at FS and the (12,) mask of leads with non-finite samples (zeroed)."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(LEADS):
        raise ValueError(f"expected a (12, samples) ECG in the order {LEADS}, got shape {x.shape}")
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    missing = ~np.isfinite(x).all(axis=1)
    x = np.where(np.isfinite(x), x, 0.0)
    if not math.isclose(sample_rate, FS):
        up, down = round(FS * 10), round(sample_rate * 10)
        g = math.gcd(up, down)
        x = resample_poly(x, up // g, down // g, axis=-1)
    if x.shape[1] < ms(2000):
        raise ValueError(f"need at least 2 s of signal, got {x.shape[1] / FS:.2f} s")
    return x, missing


def _interval(name: str, samples: int | None, reasons: dict[str, str], why: str) -> float:
    """Samples → ms, NaN (with the reason) when missing or implausible."""
    if samples is None:
        reasons.setdefault(name, why)
        return NAN
    value = samples * 1000.0 / FS
    low, high = PLAUSIBLE.get(name, (-math.inf, math.inf))
    if not low <= value <= high:
        reasons[name] = f"{value:.0f} ms is outside {low:.0f}-{high:.0f} ms: a delineation failure"
        return NAN
    return value


def _axis(net: np.ndarray, usable: np.ndarray) -> tuple[float, str | None]:
    """Frontal QRS axis from the net QRS areas of I and aVF (hexaxial: aVF = √3/2·E·sin θ);
    where either is unusable, a least-squares fit over the usable limb leads."""
    i, avf = LEADS.index("I"), LEADS.index("aVF")
    if usable[i] and usable[avf]:
        x, y = net[i], 2.0 * net[avf] / math.sqrt(3.0)
    else:
        rows, values = [], []
        for name, angle in LIMB.items():
            k = LEADS.index(name)
            if usable[k]:
                gain = 1.0 if name in ("I", "II", "III") else math.sqrt(3.0) / 2.0
                a = math.radians(angle)
                rows.append([gain * math.cos(a), gain * math.sin(a)])
                values.append(net[k])
        if len({tuple(np.round(r, 6)) for r in rows}) < 2:
            return NAN, "fewer than two usable limb leads"
        (x, y), *_ = np.linalg.lstsq(np.array(rows), np.array(values), rcond=None)
    scale = np.abs(net[:6][usable[:6]]).max() if usable[:6].any() else 0.0
    if math.hypot(x, y) < 0.05 * scale or scale == 0.0:
        return NAN, "QRS nearly equiphasic in the limb leads: axis indeterminate"
    return math.degrees(math.atan2(y, x)), None


def _t_polarity(values: np.ndarray, flat_mv: float) -> str:
    """Polarity of one lead's T window (deviations from baseline)."""
    high, low = float(values.max()), float(values.min())
    big = max(high, -low)
    if big < flat_mv:
        return "flat"
    if high >= flat_mv and -low >= flat_mv and min(high, -low) >= 0.4 * big:
        return "biphasic"
    return "positive" if high >= -low else "negative"


def _all_nan(n_beats: int, leads: list[LeadMeasurement], reason: str) -> Measurements:
    return Measurements(n_beats=n_beats, leads=tuple(leads), reasons=dict.fromkeys(INTERVALS, reason))


# ------------------------------------------------------------------------------------ entry


def measure_ecg(signal: np.ndarray, sample_rate: float = 500.0, config: MeasureConfig | None = None
                ) -> Measurements:  # fmt: skip
    """Measure a 12-lead ECG (leads in canonical order, mV). Deterministic; ~10-30 ms per 10 s."""
    config = config or MeasureConfig()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices at the record's edges
        return _measure(signal, sample_rate, config)


def _measure(signal: np.ndarray, sample_rate: float, config: MeasureConfig) -> Measurements:
    raw, missing = _canonical(signal, sample_rate)
    x = highpass(raw)
    flat = Q.is_flat(x, config.quality) | missing
    beats = find_beats(x, ~flat, config.beats)
    n = len(beats.peaks)

    def lead_rows(score: np.ndarray, labels: list[str], why: str) -> list[LeadMeasurement]:
        return [LeadMeasurement(name, float(s), lab, reason=why) for name, s, lab in
                zip(LEADS, score, labels, strict=True)]  # fmt: skip

    if n < config.min_beats or beats.selected.sum() < 2 or np.median(beats.qrs_corr) < 0.5:
        labels = Q.grade(flat, missing, np.zeros(12), np.zeros(12), config.quality)
        why = (f"only {n} QRS complexes found" if n < config.min_beats
               else "no consistent heartbeat: the detected complexes do not repeat")
        return _all_nan(n, lead_rows(np.zeros(12), labels, why), why)

    # Lead quality decides which leads the global functions see.
    first, _ = median_beat(beats.segments, config.beats)
    repeat = np.where(flat, 0.0, Q.consistency(beats.segments, first))
    labels = Q.grade(flat, missing, Q.hf_noise(raw, beats.peaks), repeat, config.quality)
    # Noise alone does not exclude a lead: the median beat averages it out and the spatial
    # functions subtract its expected power; leads whose beats do not repeat are left out.
    usable = ~flat & (repeat >= config.quality.min_usable)
    if usable.sum() < 3:
        candidates = np.argsort(-np.where(flat, -1.0, repeat))[:3]
        usable[candidates[repeat[candidates] >= 0.5]] = True
    if usable.sum() < 2:
        why = "fewer than two leads with repeatable beats"
        return _all_nan(n, lead_rows(repeat, labels, why), why)
    weights = usable.astype(float)
    dc = config.delineation
    reasons: dict[str, str] = {}

    # RR from every detected beat (ectopics included: they are part of the rate).
    rr = beats.rr_ms
    rr_mean, rr_sd = float(rr.mean()), float(rr.std(ddof=1)) if len(rr) > 1 else NAN
    hr = 60_000.0 / rr_mean
    if not PLAUSIBLE["heart_rate_bpm"][0] <= hr <= PLAUSIBLE["heart_rate_bpm"][1]:
        reasons["heart_rate_bpm"] = reasons["rr_mean_ms"] = reasons["rr_sd_ms"] = (
            f"{hr:.0f} bpm is implausible: beat detection failed")
        hr = rr_mean = rr_sd = NAN

    # Median beat, pass 2: the raw signal levelled by a spline through every beat's PR segment.
    on0, off0, _ = D.find_qrs(first, weights, beats.pre, dc)
    segments = beats.segments
    if on0 is not None:
        knots = _knots(first, weights, beats.peaks, beats.pre, on0, off0, dc)
        levelled = raw - isoelectric_baseline(raw, knots)
        segments = windows(levelled, beats.peaks[beats.selected], beats.pre, segments.shape[2] - beats.pre)
    beat, keep = median_beat(segments, config.beats)
    beat = np.nan_to_num(beat)
    noise = _median_noise(segments, beat, keep)
    # Inverse-variance weights: a lead with residual wander or noise counts less in the spatial
    # functions than a clean one (σ0 = 10 µV: below that, all leads count fully).
    weights = weights * 0.01**2 / (0.01**2 + noise**2)

    on, off, why = D.find_qrs(beat, weights, beats.pre, dc)
    reasons.update(why)
    baseline = beat[:, on - ms(16) : on - ms(4)].mean(axis=1) if on is not None else np.zeros(12)
    centred = beat - baseline[:, None]
    selected_idx = np.flatnonzero(beats.selected)
    following = [rr[i] for i in selected_idx if i < len(rr)]
    preceding = [rr[i - 1] for i in selected_idx if i > 0]
    rr_next = float(np.percentile(following, 25)) if following else float(np.median(rr))
    rr_prev = float(np.percentile(preceding, 25)) if preceding else float(np.median(rr))

    t_peak = t_end = p_on = p_end = None
    if off is not None:
        stop = min(beat.shape[1], beats.pre + ms(rr_next) - ms(100))
        t_peak, t_end, why_t = D.find_t(centred, weights, noise, off, stop, dc)
        if why_t:
            reasons["qt_ms"] = why_t
    if on is not None:
        prev_t = (t_end if t_end is not None else beats.pre + ms(0.45 * rr_prev)) - ms(rr_prev)
        start = max(on - ms(450), prev_t + ms(20), 0)
        p_on, p_end, _, why_p = D.find_p(centred, weights, noise, on, start, dc)
        if p_on is not None and why_p is None:
            why_p = _p_consistency(segments, baseline, weights, p_on, p_end, dc)
            if why_p:
                p_on = p_end = None
        if why_p:
            reasons["p_duration_ms"] = reasons["pr_ms"] = why_p
    missing_qrs = reasons.get("qrs_on") or reasons.get("qrs_off") or "QRS not delineated"
    qrs = _interval("qrs_ms", off - on if on is not None and off is not None else None, reasons, missing_qrs)
    qt = _interval("qt_ms", t_end - on if on is not None and t_end is not None else None, reasons, missing_qrs)
    pr = _interval("pr_ms", on - p_on if on is not None and p_on is not None else None, reasons, missing_qrs)
    p = _interval("p_duration_ms", p_end - p_on if p_on is not None and p_end is not None else None,
                  reasons, missing_qrs)  # fmt: skip
    reasons.pop("qrs_on", None)
    reasons.pop("qrs_off", None)
    qtc_b = qtc_f = NAN
    if not (math.isnan(qt) or math.isnan(rr_mean)):
        qtc_b, qtc_f = qtc_bazett(qt, rr_mean), qtc_fridericia(qt, rr_mean)
        if not QTC_PLAUSIBLE[0] <= qtc_b <= QTC_PLAUSIBLE[1]:
            reasons["qt_ms"] = (f"QTc {qtc_b:.0f} ms is outside {QTC_PLAUSIBLE[0]:.0f}-"
                                f"{QTC_PLAUSIBLE[1]:.0f} ms: the T end is likely misplaced")
            qt = qtc_b = qtc_f = NAN
    if math.isnan(qtc_b):
        reasons["qtc_bazett_ms"] = reasons["qtc_fridericia_ms"] = reasons.get("qt_ms") or reasons.get(
            "rr_mean_ms", "QT not measured")

    axis = NAN
    if on is not None and off is not None:
        axis, why_axis = _axis(centred[:, on : off + 1].sum(axis=1) / FS, usable)
        if why_axis:
            reasons["axis_deg"] = why_axis
    else:
        reasons["axis_deg"] = missing_qrs

    leads = _per_lead(centred, labels, repeat, off, t_peak, t_end, config)
    return Measurements(
        heart_rate_bpm=hr, rr_mean_ms=rr_mean, rr_sd_ms=rr_sd, p_duration_ms=p, pr_ms=pr, qrs_ms=qrs,
        qt_ms=qt, qtc_bazett_ms=qtc_b, qtc_fridericia_ms=qtc_f, axis_deg=axis, n_beats=n,
        n_beats_used=int(beats.selected.sum()), leads=tuple(leads), reasons=reasons,
    )  # fmt: skip


def _knots(first: np.ndarray, weights: np.ndarray, peaks: np.ndarray, pre: int, on0: int,
           off0: int | None, dc: D.DelineationConfig) -> np.ndarray:  # fmt: skip
    """Isoelectric points: every beat's PR segment, plus the middle of the T-P segment where the
    first-pass median beat leaves one (≥ 40 ms between T end and 260 ms before the next QRS)."""
    knots = list(peaks + (on0 - pre) - ms(10))
    if off0 is not None:
        centred = first - first[:, on0 - ms(16) : on0 - ms(4)].mean(axis=1, keepdims=True)
        zeros = np.zeros(len(weights))
        _, t_end0, _ = D.find_t(centred, weights, zeros, off0, first.shape[1], dc)
        if t_end0 is not None:
            for a, b in itertools.pairwise(peaks):
                start, stop = a + (t_end0 - pre) + ms(30), b - (pre - on0) - ms(260)
                if stop - start >= ms(40):
                    knots.append((start + stop) // 2)
    return np.array(sorted(knots))


def _median_noise(segments: np.ndarray, beat: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(12,) noise σ of the median beat (≤ 25 Hz): the beats' robust scatter around it (MAD,
    which ignores the jitter at the QRS edges) over √(beats kept), times the median's 1.25."""
    dev = lowpass(np.nan_to_num(segments - beat[None]), 25.0)
    dev = np.where(keep[:, :, None] & ~np.isnan(segments), dev, np.nan)
    sigma = 1.4826 * nanmedian0(np.abs(dev).transpose(0, 2, 1).reshape(-1, dev.shape[1]))
    return 1.25 * np.nan_to_num(sigma) / np.sqrt(np.maximum(keep.sum(axis=0), 1))


def _medians_of_the_others(rows: np.ndarray) -> np.ndarray:
    """Row j → the median of every other row (n > 2; else the median of all). A beat compared
    with a median it is part of correlates by construction: with 5-10 beats, atrial
    fibrillation's f waves reached 0.7-0.85 that way."""
    if len(rows) <= 2:
        return np.broadcast_to(np.median(rows, axis=0), rows.shape)
    return np.stack([np.median(np.delete(rows, j, axis=0), axis=0) for j in range(len(rows))])


def _p_consistency(segments: np.ndarray, baseline: np.ndarray, weights: np.ndarray, p_on: int,
                   p_end: int | None, dc: D.DelineationConfig) -> str | None:  # fmt: skip
    """Reason if the single beats do not repeat the median P wave (atrial fibrillation's f waves
    leave a small residue in the median beat that no single beat follows)."""
    stop = p_end if p_end is not None else p_on + ms(100)
    part = np.nan_to_num(segments[:, weights > 0, p_on:stop])  # (n, leads, P)
    part = lowpass(part, 25.0) if part.shape[-1] > 15 else part
    flat = (part - part.mean(axis=-1, keepdims=True)).reshape(len(part), -1)
    others = _medians_of_the_others(flat)
    r = (flat * others).sum(axis=1) / (np.linalg.norm(flat, axis=1)
                                       * np.linalg.norm(others, axis=1) + 1e-12)
    if np.median(r) < dc.p_min_consistency:
        return f"no P wave repeating from beat to beat (median correlation {np.median(r):.2f})"
    return None


def _per_lead(centred: np.ndarray, labels: list[str], repeat: np.ndarray, off: int | None,
              t_peak: int | None, t_end: int | None, config: MeasureConfig) -> list[LeadMeasurement]:  # fmt: skip
    out = []
    for k, name in enumerate(LEADS):
        score = float(max(repeat[k], 0.0))
        if labels[k] in (Q.FLAT, Q.MISSING):
            out.append(LeadMeasurement(name, score, labels[k], reason=f"lead {labels[k]}"))
            continue
        if labels[k] == Q.NOISY and repeat[k] < 0.5:
            out.append(LeadMeasurement(name, score, labels[k], reason="lead too noisy"))
            continue
        st = NAN
        reason = ""
        if off is not None:
            j = off + ms(config.st_offset_ms)
            st = float(centred[k, j - 2 : j + 3].mean())
        else:
            reason = "J point not found"
        t_mv, polarity = NAN, ""
        if t_peak is not None and t_end is not None and off is not None:
            t_mv = float(centred[k, t_peak])
            window = centred[k, max(off + ms(config.st_offset_ms), t_peak - (t_end - t_peak)) : t_end]
            polarity = _t_polarity(window - 0.0, config.t_flat_mv)
        else:
            reason = reason or "T wave not delineated"
        out.append(LeadMeasurement(name, score, labels[k], st, t_mv, polarity, reason))
    return out
