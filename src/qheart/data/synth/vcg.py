"""The cardiac dipole: Gaussian waves in 3-D (the vectorcardiogram) projected onto 12 leads.

Coordinates are Frank's: X to the patient's left, Y to the feet, Z to the back. Each ECG wave is a
truncated Gaussian in time with a 3-D amplitude vector; the heart vector is their sum and every
lead is one fixed linear combination of it, so an axis or a territory shows in the leads that face
it, by construction.

The projection VCG → 12-lead is Dower's matrix (Dower, Machado & Osborne, "On deriving the
electrocardiogram from vectorcardiographic leads", Clin Cardiol 1980;3:87), the transpose-side
partner of the "inverse Dower" matrix of Edenbrandt & Pahlm (J Electrocardiol 1988;21:361) that
goes the other way. It gives I, II and V1–V6; III, aVR, aVL, aVF follow from Einthoven's and
Goldberger's relations. A test checks it against a real PTB record that carries Frank leads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qheart.data.leads import LEADS

# rows: I, II, V1..V6; columns: X, Y, Z (Dower et al. 1980, Table 1)
DOWER_8x3 = np.array(
    [
        [0.632, -0.235, 0.059],   # I
        [0.235, 1.066, -0.132],   # II
        [-0.515, 0.157, -0.917],  # V1
        [0.044, 0.164, -1.387],   # V2
        [0.882, 0.098, -1.277],   # V3
        [1.213, 0.127, -0.601],   # V4
        [1.125, 0.127, -0.086],   # V5
        [0.831, 0.076, 0.230],    # V6
    ]
)  # fmt: skip


def _twelve_lead_matrix(dower: np.ndarray) -> np.ndarray:
    """(12, 3) lead vectors in canonical order, limb leads derived from I and II."""
    lead_i, lead_ii = dower[0], dower[1]
    limb = np.stack(
        [
            lead_i,
            lead_ii,
            lead_ii - lead_i,  # III = II - I (Einthoven)
            -(lead_i + lead_ii) / 2,  # aVR
            lead_i - lead_ii / 2,  # aVL
            lead_ii - lead_i / 2,  # aVF
        ]
    )
    return np.concatenate([limb, dower[2:]], axis=0)


LEAD_MATRIX = _twelve_lead_matrix(DOWER_8x3)  # (12, 3)
LEAD_INDEX = {name: i for i, name in enumerate(LEADS)}
TRUNCATE_SIGMAS = 2.5
"""Waves are cut at ±2.5 σ (and lowered to reach exactly 0 there), so every wave has a finite,
known onset and end: interval ground truth is exact rather than a threshold convention."""


@dataclass(frozen=True)
class Wave:
    """One Gaussian component of the heart vector.

    center_ms is relative to the beat's QRS onset; sigma_rise/sigma_fall allow asymmetric waves
    (the T wave rises slower than it falls); vector is the peak heart vector in mV, shape (3,).
    """

    center_ms: float
    sigma_rise_ms: float
    vector: np.ndarray
    sigma_fall_ms: float | None = None

    @property
    def onset_ms(self) -> float:
        return self.center_ms - TRUNCATE_SIGMAS * self.sigma_rise_ms

    @property
    def end_ms(self) -> float:
        fall = self.sigma_fall_ms if self.sigma_fall_ms is not None else self.sigma_rise_ms
        return self.center_ms + TRUNCATE_SIGMAS * fall


def bump(t_ms: np.ndarray, wave: Wave) -> np.ndarray:
    """The wave's time course on t_ms: a truncated Gaussian, 1 at the centre, 0 outside."""
    fall = wave.sigma_fall_ms if wave.sigma_fall_ms is not None else wave.sigma_rise_ms
    sigma = np.where(t_ms < wave.center_ms, wave.sigma_rise_ms, fall)
    z = (t_ms - wave.center_ms) / sigma
    floor = np.exp(-0.5 * TRUNCATE_SIGMAS**2)
    g = (np.exp(-0.5 * z**2) - floor) / (1.0 - floor)
    return np.where(np.abs(z) < TRUNCATE_SIGMAS, g, 0.0)


def plateau(t_ms: np.ndarray, start_ms: float, end_ms: float, ramp_ms: float) -> np.ndarray:
    """0 → 1 → 0 with raised-cosine ramps: the ST segment's time course (J point to T end)."""
    up = np.clip((t_ms - (start_ms - ramp_ms / 2)) / ramp_ms, 0.0, 1.0)
    down = np.clip(((end_ms + ramp_ms / 2) - t_ms) / ramp_ms, 0.0, 1.0)
    return 0.5 * (1 - np.cos(np.pi * up)) * 0.5 * (1 - np.cos(np.pi * down))


def render_waves(t_ms: np.ndarray, waves: list[Wave]) -> np.ndarray:
    """Heart vector (3, len(t_ms)) of a list of waves."""
    out = np.zeros((3, len(t_ms)))
    for wave in waves:
        out += np.outer(wave.vector, bump(t_ms, wave))
    return out


def to_leads(vcg: np.ndarray) -> np.ndarray:
    """(3, T) heart vector → (12, T) lead voltages in mV."""
    return LEAD_MATRIX @ vcg


def unit(v: np.ndarray | list[float]) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def frontal_direction(angle_deg: float, z: float = 0.0) -> np.ndarray:
    """Unit vector at a frontal-plane angle (0° = lead I, +90° = aVF) with a Z (posterior) part."""
    a = np.deg2rad(angle_deg)
    return unit([np.cos(a), np.sin(a), z])


def territory_direction(leads: tuple[str, ...]) -> np.ndarray:
    """Unit vector facing a group of leads: the mean of their normalised lead vectors."""
    rows = LEAD_MATRIX[[LEAD_INDEX[name] for name in leads]]
    return unit((rows / np.linalg.norm(rows, axis=1, keepdims=True)).mean(axis=0))


def frontal_axis_deg(net_i: float, net_avf: float) -> float:
    """Mean frontal QRS axis from the net QRS of leads I and aVF (hexaxial: aVF = √3/2·E·sin θ)."""
    return float(np.degrees(np.arctan2(2.0 * net_avf / np.sqrt(3.0), net_i)))
