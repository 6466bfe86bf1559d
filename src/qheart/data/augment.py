"""Signal augmentations for training on ECGs: what changes between recordings but not the findings.

A batch (B, 12, n) in mV gets, per ECG and each with its own probability: an amplitude change
(global and per lead: body habitus, electrode contact), a DC offset and baseline wander per lead,
white/EMG-like noise and mains hum, a gentle time warp (±3 %: small enough that no rate or
interval class flips — the generator keeps those ≥ 25 ms from a threshold), a device filter
(random low-pass or high-pass) and lead dropout. Everything is drawn from a numpy generator seeded
by (seed, step), so a resumed run replays exactly the augmentations an uninterrupted one saw.

No maintained library fits: torch-audiomentations and audiomentations work per channel on audio
(no per-lead ECG gains or lead dropout, and their randomness is not step-seeded), so the few
transforms are written here with numpy/scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfiltfilt

from qheart.config import Config

FS_HZ = 500.0


@dataclass
class AugmentConfig(Config):
    """Which augmentations, how strong, how often (all zero: off)."""

    amplitude_prob: float = 0.0
    """Share of ECGs whose amplitude is scaled."""
    amplitude_sd: float = 0.2
    """SD of the log of the whole-ECG gain (per-lead gains: half of it)."""
    wander_prob: float = 0.0
    """Share of ECGs given a DC offset and baseline wander (0.05-0.5 Hz) in every lead."""
    wander_mv: float = 0.15
    """Largest wander amplitude per lead (mV); offsets are up to twice this."""
    noise_prob: float = 0.0
    """Share of ECGs given extra white noise and mains hum."""
    noise_mv: float = 0.02
    """Largest white-noise SD (mV); hum is up to half of it."""
    warp_prob: float = 0.0
    """Share of ECGs time-warped (resampled by 1 ± max_warp)."""
    max_warp: float = 0.03
    """Largest relative stretch or squeeze."""
    filter_prob: float = 0.0
    """Share of ECGs passed through a random device filter (low-pass 35-100 Hz or high-pass
    0.05-0.6 Hz)."""
    lead_dropout: float = 0.0
    """Each lead zeroed with this probability (at least one lead always stays)."""

    def __post_init__(self) -> None:
        for name in ("amplitude_prob", "wander_prob", "noise_prob", "warp_prob", "filter_prob",
                     "lead_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.max_warp < 0.2:
            raise ValueError(f"max_warp must be in [0, 0.2), got {self.max_warp}")
        if min(self.amplitude_sd, self.wander_mv, self.noise_mv) < 0:
            raise ValueError("amplitude_sd, wander_mv and noise_mv must be ≥ 0")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, name) > 0 for name in (
            "amplitude_prob", "wander_prob", "noise_prob", "warp_prob", "filter_prob",
            "lead_dropout"))


AugmentConfig.PRESETS = {
    "off": {},
    # What a real recording adds that a synthetic one lacks (measured by `qheart data compare`):
    # gain differences, wander and offsets, noise, device filters; a gentle warp.
    "recording": {"amplitude_prob": 0.5, "wander_prob": 0.5, "noise_prob": 0.3,
                  "warp_prob": 0.3, "filter_prob": 0.3},
    # The recording augmentations that leave every labelled noise as it is: no added noise or
    # hum (static noise is labelled from σ ≈ 0.03 mV, with hum), no device filters (a 35 Hz
    # low-pass erases static and burst noise, a 0.6 Hz high-pass most of a baseline drift),
    # while the report still names them. Wander stays below the drift label (0.4 mV peak to
    # peak). ECG-QA asks about noise, so here noise is a finding, not a nuisance.
    "keep-noise": {"amplitude_prob": 0.5, "wander_prob": 0.5, "warp_prob": 0.3},
}


def augment_rng(seed: int, step: int) -> np.random.Generator:
    """The augmentation stream of one training step (independent of interruptions)."""
    return np.random.default_rng([seed, step, 0xA06])


def _time_warp(x: np.ndarray, factor: float) -> np.ndarray:
    """(L, n) resampled so events are `factor` times further apart; cropped or edge-padded to n."""
    n = x.shape[-1]
    source = np.arange(n) / factor  # output sample i reads input time i / factor
    source = np.clip(source, 0, n - 1)
    lo = np.floor(source).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    frac = source - lo
    return x[:, lo] * (1 - frac) + x[:, hi] * frac


def augment_batch(signals: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """(B, L, n) float32 mV → an augmented copy (the input is returned untouched when off)."""
    if not config.enabled:
        return signals
    x = np.array(signals, dtype=np.float64)  # (B, L, n)
    batch, leads, n = x.shape
    t = np.arange(n) / FS_HZ
    for b in range(batch):
        if rng.random() < config.warp_prob:
            x[b] = _time_warp(x[b], 1.0 + rng.uniform(-config.max_warp, config.max_warp))
        if rng.random() < config.filter_prob:
            if rng.random() < 0.5:
                sos = butter(2, rng.uniform(35.0, 100.0), fs=FS_HZ, output="sos")
                x[b] = sosfiltfilt(sos, x[b], axis=-1)
            else:  # a high-pass removes the offset; mirrored padding avoids mV edge transients
                sos = butter(1, rng.uniform(0.05, 0.6), btype="high", fs=FS_HZ, output="sos")
                x[b] = sosfiltfilt(sos, x[b] - x[b].mean(axis=-1, keepdims=True), axis=-1,
                                   padtype="even", padlen=n - 1)
        if rng.random() < config.amplitude_prob:
            gain = np.exp(rng.normal(0.0, config.amplitude_sd)
                          + rng.normal(0.0, config.amplitude_sd / 2, (leads, 1)))
            x[b] *= gain
        if rng.random() < config.wander_prob:
            freqs = rng.uniform(0.05, 0.5, (leads, 2))
            amps = rng.uniform(0.0, config.wander_mv, (leads, 2)) / 2
            phases = rng.uniform(0, 2 * np.pi, (leads, 2))
            wander = (amps[..., None] * np.sin(2 * np.pi * freqs[..., None] * t
                                               + phases[..., None])).sum(axis=1)
            x[b] += wander + rng.uniform(-2, 2, (leads, 1)) * config.wander_mv
        if rng.random() < config.noise_prob:
            sigma = rng.uniform(0.0, config.noise_mv)
            hum = rng.uniform(0.0, config.noise_mv / 2) * np.sin(
                2 * np.pi * rng.choice([50.0, 60.0]) * t + rng.uniform(0, 2 * np.pi))
            x[b] += rng.normal(0.0, sigma, (leads, n)) + hum
    if config.lead_dropout > 0:
        drop = rng.random((batch, leads)) < config.lead_dropout
        drop[drop.all(axis=1), rng.integers(leads)] = False
        x[drop] = 0.0
    return x.astype(np.float32)
