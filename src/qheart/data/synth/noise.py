"""Per-lead recording noise with the four kinds PTB-XL annotates (and ECG-QA asks about).

- baseline drift: slow wander (0.05-0.5 Hz sinusoids, 0.4-1.2 mV peak to peak) — breathing,
  movement;
- static noise: continuous broadband muscle/EMG noise (σ 0.03-0.07 mV) with mains hum;
- burst noise: 1-3 short (0.2-1.2 s) bursts of strong high-frequency noise;
- electrodes problems: a loose contact — the lead goes nearly flat for 1.6-3.5 s with step
  transients at both ends.

Every lead also gets a small white noise floor (σ 5-10 µV), so no lead is unrealistically clean.
Noise is drawn lead by lead, so it sits exactly in the leads the labels name.

With `background` (the v2 generator) the floor is the real one instead (σ 1.5-4 µV: PTB-XL's
> 40 Hz noise is 2-3.5 µV RMS), and every lead also wanders a little, as every real recording
does: a breathing component shared by all leads plus each electrode's own slow drift, kept to a
peak-to-peak of at most 0.12 mV (below 0.7 Hz) so it never reaches what "baseline drift" labels
(0.4-1.2 mV).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, lfilter, sosfiltfilt

from qheart.data.leads import LEADS, N_SAMPLES, SAMPLE_RATE_HZ
from qheart.data.synth import findings as F

_T_S = np.arange(N_SAMPLES) / SAMPLE_RATE_HZ
BACKGROUND_WANDER_PTP_MV = (0.02, 0.12)
"""v2-v5's unlabelled background wander per lead, peak to peak (mV)."""


def baseline_drift(rng: np.random.Generator) -> np.ndarray:
    freqs = rng.uniform(0.05, 0.5, 3)
    amps = rng.dirichlet(np.ones(3)) * rng.uniform(0.2, 0.6)
    phases = rng.uniform(0, 2 * np.pi, 3)
    return (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * _T_S + phases[:, None])).sum(0)


def _emg(rng: np.random.Generator, sigma: float, n: int = N_SAMPLES) -> np.ndarray:
    # White noise through a first-order high-pass: EMG has little power below ~20 Hz.
    white = rng.normal(0.0, sigma, n)
    return lfilter([1.0, -1.0], [1.0, -0.75], white) / 1.4


def static_noise(rng: np.random.Generator) -> np.ndarray:
    mains = rng.choice([50.0, 60.0])
    hum = rng.uniform(0.005, 0.02) * np.sin(2 * np.pi * mains * _T_S + rng.uniform(0, 2 * np.pi))
    return _emg(rng, rng.uniform(0.03, 0.07)) + hum


def burst_noise(rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(N_SAMPLES)
    for _ in range(int(rng.integers(1, 4))):
        length = int(rng.uniform(0.2, 1.2) * SAMPLE_RATE_HZ)
        start = int(rng.integers(0, N_SAMPLES - length))
        envelope = np.hanning(length) ** 0.5
        out[start : start + length] += envelope * _emg(rng, rng.uniform(0.25, 0.6), length)
    return out


def electrode_gain(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(gain, additive) for a loose electrode: near-zero gain while detached, steps at the edges."""
    gain = np.ones(N_SAMPLES)
    add = np.zeros(N_SAMPLES)
    length = int(rng.uniform(1.6, 3.5) * SAMPLE_RATE_HZ)  # longer than any RR: beats go missing
    start = int(rng.integers(int(0.5 * SAMPLE_RATE_HZ), N_SAMPLES - length))
    gain[start : start + length] = rng.uniform(0.0, 0.08)
    tau = rng.uniform(0.03, 0.12) * SAMPLE_RATE_HZ
    for edge in (start, start + length):
        step = rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 2.0)
        k = np.arange(N_SAMPLES - edge)
        add[edge:] += step * np.exp(-k / tau)
    return gain, add


def background_wander(rng: np.random.Generator, n_leads: int,
                      ptp_mv: tuple[float, float] = BACKGROUND_WANDER_PTP_MV) -> np.ndarray:
    """(n_leads, 5000) unlabelled wander: shared breathing + per-lead drift, peak to peak drawn
    per lead from `ptp_mv` (v2-v5: at most 0.12 mV; v6: 0.08-0.38 mV, as real records)."""
    breath = np.sin(2 * np.pi * rng.uniform(0.15, 0.35) * _T_S + rng.uniform(0, 2 * np.pi))
    weights = rng.normal(0.0, 1.0, (n_leads, 1))
    sos = butter(2, 0.5, fs=SAMPLE_RATE_HZ, output="sos")
    drift = sosfiltfilt(sos, rng.normal(0.0, 1.0, (n_leads, N_SAMPLES)), axis=-1)
    drift /= drift.std(axis=-1, keepdims=True) + 1e-12
    wander = weights * breath + rng.uniform(0.5, 1.5) * drift
    target = rng.uniform(*ptp_mv, (n_leads, 1))  # peak-to-peak per lead, mV
    return wander * target / (np.ptp(wander, axis=-1, keepdims=True) + 1e-12)


def add_noise(
    clean: np.ndarray, noise: dict[str, tuple[str, ...]], rng: np.random.Generator,
    background: bool = False, wander_ptp_mv: tuple[float, float] = BACKGROUND_WANDER_PTP_MV,
) -> np.ndarray:
    """(12, 5000) clean leads + the named noise in the named leads + a small floor everywhere
    (+ the real floor and background wander with `background`)."""
    out = clean * 1.0
    if background:
        out += background_wander(rng, len(out), wander_ptp_mv)
    index = {name: i for i, name in enumerate(LEADS)}
    for kind in F.NOISES:  # fixed order: the same seed gives the same noise
        for lead in noise.get(kind, ()):
            i = index[lead]
            if kind == F.BASELINE_DRIFT:
                out[i] += baseline_drift(rng)
            elif kind == F.STATIC_NOISE:
                out[i] += static_noise(rng)
            elif kind == F.BURST_NOISE:
                out[i] += burst_noise(rng)
            else:
                gain, add = electrode_gain(rng)
                out[i] = out[i] * gain + add
    floor = rng.uniform(0.0015, 0.004) if background else rng.uniform(0.005, 0.010)
    return out + rng.normal(0.0, floor, out.shape)
