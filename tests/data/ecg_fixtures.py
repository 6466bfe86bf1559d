"""Shared test helpers: synthetic ECGs and files written the way the published corpora write them.

Import from tests as `from tests.data.ecg_fixtures import synthetic_ecg, write_wfdb_record`
(or `from data.ecg_fixtures import ...` under pytest's rootdir-relative imports).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

# The 12 standard leads, then the 3 Frank leads of PTB Diagnostic.
ALL_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6", "vx", "vy", "vz",
)  # fmt: skip
PTBXL_NAMES: tuple[str, ...] = (
    "I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6",
)  # fmt: skip
PTB_DIAGNOSTIC_NAMES: tuple[str, ...] = (
    "i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6", "vx", "vy", "vz",
)  # fmt: skip

# Heart-vector waves: (name, offset from the R peak in s, width in s, 3-D dipole direction x (left),
# y (down), z (anterior), peak dipole amplitude in mV). A single rotating dipole projected on
# the lead axes keeps Einthoven's and Goldberger's laws (III = II − I, aVR = −(I + II)/2, …).
_WAVES: tuple[tuple[str, float, float, tuple[float, float, float], float], ...] = (
    ("P", -0.16, 0.025, (0.5, 0.8, 0.1), 0.15),
    ("Q", -0.025, 0.008, (-0.6, 0.2, 0.3), 0.15),
    ("R", 0.0, 0.012, (0.6, 0.7, -0.3), 1.3),
    ("S", 0.03, 0.010, (-0.2, -0.4, -0.9), 0.45),
    ("T", 0.28, 0.06, (0.6, 0.6, -0.3), 0.35),
)
# Precordial lead axes in the horizontal (x, z) plane, V1 anterior-right → V6 left lateral.
_PRECORDIAL_DEG = {"V1": 115.0, "V2": 95.0, "V3": 75.0, "V4": 55.0, "V5": 30.0, "V6": 0.0}


def _heart_vector(n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """(3, n) dipole over time: beats at a random 55–95 bpm with mild RR variability."""
    t = np.arange(n) / fs
    rr = 60.0 / rng.uniform(55, 95)
    peaks = []
    peak = rng.uniform(0.2, 0.2 + rr)
    while peak < t[-1] + 0.5:
        peaks.append(peak)
        peak += rr * rng.uniform(0.95, 1.05)
    scale = rng.uniform(0.8, 1.2, size=len(_WAVES))
    dipole = np.zeros((3, n))
    for (_, offset, width, direction, amp), s in zip(_WAVES, scale, strict=True):
        d = np.asarray(direction) / np.linalg.norm(direction)
        wave = sum(np.exp(-0.5 * ((t - p - offset) / width) ** 2) for p in peaks)
        dipole += (amp * s) * d[:, None] * wave[None, :]
    return dipole


def _project(dipole: np.ndarray) -> dict[str, np.ndarray]:
    x, y, z = dipole
    lead_i = x
    lead_ii = 0.5 * x + np.sqrt(3) / 2 * y  # axis at +60°
    leads = {
        "I": lead_i,
        "II": lead_ii,
        "III": lead_ii - lead_i,
        "aVR": -(lead_i + lead_ii) / 2,
        "aVL": lead_i - lead_ii / 2,
        "aVF": lead_ii - lead_i / 2,
        "vx": x,
        "vy": y,
        "vz": z,
    }
    for name, deg in _PRECORDIAL_DEG.items():
        a = np.deg2rad(deg)
        leads[name] = 1.5 * (np.cos(a) * x + np.sin(a) * z)
    return leads


def synthetic_ecg(
    n_leads: int = 12,
    fs: float = 500,
    seconds: float = 10,
    seed: int = 0,
    *,
    noise_mv: float = 0.01,
    baseline_mv: float = 0.05,
) -> np.ndarray:
    """float64 (n_leads, fs·seconds) mV: P-QRS-T beats from one dipole, slight wander and noise.

    Rows follow ALL_LEADS: the 12 standard leads then vx vy vz; n_leads takes the first n_leads.
    Limb leads obey Einthoven (III = II − I) up to the added noise.
    """
    if not 1 <= n_leads <= len(ALL_LEADS):
        raise ValueError(f"n_leads must be 1..{len(ALL_LEADS)}, got {n_leads}")
    rng = np.random.default_rng(seed)
    n = round(fs * seconds)
    projected = _project(_heart_vector(n, fs, rng))
    t = np.arange(n) / fs
    wander = baseline_mv * np.sin(2 * np.pi * rng.uniform(0.15, 0.3) * t + rng.uniform(0, 6.28))
    rows = [projected[name] + wander + noise_mv * rng.standard_normal(n) for name in ALL_LEADS]
    return np.stack(rows[:n_leads])


def write_wfdb_record(
    directory: str | Path,
    name: str,
    signal_mv: np.ndarray,
    fs: float,
    lead_names: Sequence[str],
    fmt: str = "16",
    adc_gain: float = 1000.0,
    units: str = "mV",
) -> Path:
    """Write (n_leads, n) mV with wfdb.wrsamp like PTB-XL (16-bit, gain 1000/mV); return the
    record path without extension. units="uV" writes microvolts (gain per µV) like some exports.
    NaN samples become WFDB's missing-value code and read back as NaN."""
    import wfdb

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    signal = np.asarray(signal_mv, dtype=np.float64)
    if signal.shape[0] != len(lead_names):
        raise ValueError(f"{signal.shape[0]} rows but {len(lead_names)} lead names")
    factor = {"mV": 1.0, "uV": 1000.0}[units]
    n = signal.shape[0]
    wfdb.wrsamp(
        name,
        fs=fs,
        units=[units] * n,
        sig_name=list(lead_names),
        p_signal=(signal * factor).T,
        fmt=[fmt] * n,
        adc_gain=[adc_gain] * n,
        baseline=[0] * n,
        write_dir=str(directory),
    )
    return directory / name


def write_code15_hdf5(
    path: str | Path,
    signals_mv: Sequence[np.ndarray],
    exam_ids: Sequence[int] | None = None,
    n_samples: int = 4096,
) -> Path:
    """CODE-15 layout: `tracings` (N, 4096, 12) float32 at 400 Hz, each (12, n) signal zero-padded
    symmetrically to 4096 (extra samples on the end when odd), plus `exam_id` (N,) int64."""
    import h5py

    path = Path(path)
    tracings = np.zeros((len(signals_mv), n_samples, 12), dtype=np.float32)
    for i, sig in enumerate(signals_mv):
        n = sig.shape[1]
        if n > n_samples:
            raise ValueError(f"signal {i} has {n} samples, more than {n_samples}")
        left = (n_samples - n) // 2
        tracings[i, left : left + n] = np.asarray(sig).T
    ids = np.arange(len(signals_mv)) if exam_ids is None else np.asarray(exam_ids)
    with h5py.File(path, "w") as f:
        f.create_dataset("tracings", data=tracings)
        f.create_dataset("exam_id", data=ids.astype(np.int64))
    return path
