"""Per-lead signal quality: which leads the delineation may trust.

Three readings per lead: is it flat (a disconnected electrode), how loud is its high-frequency
noise between QRS complexes (muscle, mains), and how well do its beats repeat (template
matching: the median correlation of each beat with the lead's median beat, after Orphanidou et
al., IEEE J Biomed Health Inform 2015). The score is that repeatability; the label says why a
lead is not "good".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import sosfiltfilt

from qheart.measurements.beats import butter_sos, ms

GOOD, NOISY, FLAT, MISSING = "good", "noisy", "flat", "missing"


@dataclass(frozen=True)
class QualityConfig:
    flat_mv: float = 0.02
    """A lead whose 1st–99th percentile span is below this is flat."""
    min_consistency: float = 0.8
    """Beats of a good lead correlate at least this well with its median beat."""
    min_usable: float = 0.7
    """Leads whose beats repeat at least this well feed the global delineation (noisy or not)."""
    max_hf_mv: float = 0.03
    """A good lead's median high-frequency (> 40 Hz) RMS between QRS complexes stays below this."""


def is_flat(x: np.ndarray, config: QualityConfig) -> np.ndarray:
    """(12,) True where a lead carries no signal."""
    low, high = np.percentile(x, [1, 99], axis=-1)
    return (high - low) < config.flat_mv


def hf_noise(raw: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """(12,) median over 250 ms frames away from QRS complexes of the > 40 Hz RMS (mV)."""
    hf = sosfiltfilt(butter_sos(4, 40.0, "high"), raw, axis=-1)
    outside = np.ones(raw.shape[-1], dtype=bool)
    for p in peaks:
        outside[max(p - ms(70), 0) : p + ms(70)] = False
    n = ms(250)
    frames = [hf[:, s : s + n] for s in range(0, raw.shape[-1] - n + 1, n) if outside[s : s + n].all()]
    if not frames:
        return np.sqrt((hf[:, outside] ** 2).mean(axis=-1)) if outside.any() else np.zeros(len(raw))
    return np.median(np.sqrt((np.stack(frames) ** 2).mean(axis=-1)), axis=0)


def consistency(segments: np.ndarray, median: np.ndarray) -> np.ndarray:
    """(12,) median over beats of each beat's correlation with its lead's median beat."""
    seg = segments - np.nanmean(segments, axis=2, keepdims=True)
    med = median - np.nanmean(median, axis=1, keepdims=True)
    valid = ~np.isnan(seg)
    seg, med_b = np.where(valid, seg, 0.0), np.where(valid, med[None], 0.0)
    num = (seg * med_b).sum(axis=2)
    den = np.sqrt((seg**2).sum(axis=2) * (med_b**2).sum(axis=2)) + 1e-12
    return np.median(num / den, axis=0)


def grade(flat: np.ndarray, missing: np.ndarray, hf: np.ndarray, repeat: np.ndarray,
          config: QualityConfig) -> list[str]:  # fmt: skip
    """A label per lead: missing, flat, noisy or good."""
    labels = []
    for i in range(len(flat)):
        if missing[i]:
            labels.append(MISSING)
        elif flat[i]:
            labels.append(FLAT)
        elif repeat[i] < config.min_consistency or hf[i] > config.max_hf_mv:
            labels.append(NOISY)
        else:
            labels.append(GOOD)
    return labels
