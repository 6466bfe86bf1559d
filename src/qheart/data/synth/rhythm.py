"""Beat times per rhythm: QRS onsets (ms) and what kind of beat each one is.

Sinus rhythm is nearly regular (≈1 % jitter); sinus arrhythmia follows breathing (±10-16 % at
3-5 s per breath); atrial fibrillation draws each RR independently (coefficient of variation
15-25 %); flutter conducts every 2nd-4th wave of a 250-330/min atrial sawtooth. Premature
ventricular beats come early with a compensatory pause; atrial ones reset the sinus node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qheart.data.synth import findings as F
from qheart.data.synth.ranges import ABOVE, BELOW, NORMAL_RANGES, WITHIN
from qheart.data.synth.realism import Realism, get_realism

RECORD_MS = 10_000.0
LEAD_IN_MS = 1_500.0
"""Beats are laid from before time 0 so the record starts mid-rhythm, like a real recording."""

SINUS = "sinus"
PVC = "pvc"
PAC = "pac"


@dataclass(frozen=True)
class Rhythm:
    """QRS onsets (ms, record time) with their kinds, and the atrial activity between them."""

    onsets_ms: np.ndarray
    kinds: tuple[str, ...]
    flutter_cycle_ms: float | None = None
    flutter_phase_ms: float = 0.0

    def rr_ms(self) -> np.ndarray:
        """RR intervals between consecutive QRS onsets inside the record."""
        inside = self.onsets_ms[(self.onsets_ms >= 0) & (self.onsets_ms < RECORD_MS)]
        return np.diff(inside)


def target_rr_ms(rhythm: str, rng: np.random.Generator) -> float:
    """A mean RR for the rhythm, clear of the 600/1000 ms thresholds."""
    if rhythm == F.SINUS_BRADYCARDIA:
        return float(rng.uniform(1090, 1500))
    if rhythm == F.SINUS_TACHYCARDIA:
        return float(rng.uniform(400, 550))
    if rhythm == F.ATRIAL_FIBRILLATION:
        return float(rng.choice([rng.uniform(430, 555), rng.uniform(650, 950), rng.uniform(1050, 1250)]))
    return float(rng.uniform(650, 950))


def rr_class(rr_ms: float) -> str:
    return NORMAL_RANGES["rr interval"].label(rr_ms)


def sinus_onsets(rr_ms: float, rhythm: str, rng: np.random.Generator,
                 realism: Realism) -> np.ndarray:
    """With `realism.hrv`, the regular sinus rhythms get real beat-to-beat variability: a
    breathing swing and more jitter (v2/v3: 0.5-2 % and 1.1 %, v4: 1-6 % and 2 %)."""
    t = -LEAD_IN_MS + rng.uniform(0, rr_ms)
    onsets = []
    breath_ms = rng.uniform(3000, 5000)
    depth = rng.uniform(0.10, 0.16) if rhythm == F.SINUS_ARRHYTHMIA else 0.0
    jitter = 0.008
    if realism.hrv and rhythm != F.SINUS_ARRHYTHMIA:
        depth, jitter = rng.uniform(*realism.hrv_depth), realism.hrv_jitter
    phase = rng.uniform(0, 2 * np.pi)
    while t < RECORD_MS + 500:
        onsets.append(t)
        swing = depth * np.sin(2 * np.pi * t / breath_ms + phase)
        t += rr_ms * (1 + swing + rng.normal(0, jitter))
    return np.asarray(onsets)


def af_onsets(rr_ms: float, rng: np.random.Generator) -> np.ndarray:
    cv = rng.uniform(0.15, 0.25)
    shape = 1 / cv**2
    t = -LEAD_IN_MS + rng.uniform(0, rr_ms)
    onsets = []
    while t < RECORD_MS + 500:
        onsets.append(t)
        t += max(300.0, rng.gamma(shape, rr_ms / shape))
    return np.asarray(onsets)


def make_rhythm(plan: F.Plan, rng: np.random.Generator,
                realism: Realism | str = "v1") -> Rhythm | None:
    """Beat times for the plan's rhythm (and ectopy), or None if the draw lands on a threshold
    (a rate class, or the RR range that tells sinus arrhythmia from a regular sinus rhythm)."""
    realism = get_realism(realism)
    if plan.rhythm == F.ATRIAL_FLUTTER:
        cycle = rng.uniform(180, 240)
        block = int(rng.choice([2, 2, 3, 4]))
        phase = rng.uniform(0, cycle)
        onsets = np.arange(-LEAD_IN_MS + phase, RECORD_MS + 500, block * cycle)
        rhythm = Rhythm(onsets, tuple(SINUS for _ in onsets), cycle, phase)
    elif plan.rhythm == F.ATRIAL_FIBRILLATION:
        onsets = af_onsets(target_rr_ms(plan.rhythm, rng), rng)
        rhythm = Rhythm(onsets, tuple(SINUS for _ in onsets))
    else:
        onsets = sinus_onsets(target_rr_ms(plan.rhythm, rng), plan.rhythm, rng, realism)
        rhythm = Rhythm(onsets, tuple(SINUS for _ in onsets))
    if plan.ectopy:
        rhythm = add_ectopy(rhythm, plan.ectopy, rng)
    rr = rhythm.rr_ms()
    mean = float(rr.mean())
    if NORMAL_RANGES["rr interval"].margin(mean) < 25:
        return None
    expected = {F.SINUS_BRADYCARDIA: ABOVE, F.SINUS_TACHYCARDIA: BELOW}.get(plan.rhythm, WITHIN)
    sinus = (F.SINUS_RHYTHM, F.SINUS_ARRHYTHMIA, F.SINUS_BRADYCARDIA, F.SINUS_TACHYCARDIA)
    if plan.rhythm in sinus and rr_class(mean) != expected:
        return None
    if plan.rhythm == F.SINUS_ARRHYTHMIA and np.ptp(_normal_rr(rhythm)) < realism.arrhythmia_range_ms:
        return None
    if realism.hrv and plan.rhythm in sinus and plan.rhythm != F.SINUS_ARRHYTHMIA \
            and np.ptp(_normal_rr(rhythm)) >= realism.hrv_range_ms:
        return None
    return rhythm


def _normal_rr(rhythm: Rhythm) -> np.ndarray:
    """RR intervals between two consecutive conducted sinus beats."""
    inside = (rhythm.onsets_ms >= 0) & (rhythm.onsets_ms < RECORD_MS)
    t = rhythm.onsets_ms[inside]
    kinds = np.array(rhythm.kinds)[inside]
    ok = (kinds[1:] == SINUS) & (kinds[:-1] == SINUS)
    return np.diff(t)[ok]


def add_ectopy(rhythm: Rhythm, kind: str, rng: np.random.Generator) -> Rhythm:
    """Replace 1-3 beats by premature ones, moving the following beats as physiology does.

    A ventricular premature beat leaves the sinus node alone: the next sinus beat comes on time
    (compensatory pause). An atrial one resets the node: every later beat shifts earlier.
    """
    onsets = rhythm.onsets_ms
    inside = [i for i, t in enumerate(onsets) if 300 < t < RECORD_MS - 1500]
    if len(inside) < 4:
        return rhythm
    n = min(int(rng.integers(1, 4)), len(inside) // 3)
    candidates = inside[1:-1:2]  # never two neighbours
    chosen = set(rng.choice(candidates, size=min(n, len(candidates)), replace=False).tolist())
    out_t: list[float] = []
    out_k: list[str] = []
    shift = 0.0
    for i, (t, k) in enumerate(zip(onsets, rhythm.kinds, strict=True)):
        if i not in chosen:
            out_t.append(float(t) + shift)
            out_k.append(k)
            continue
        rr = float(onsets[i] - onsets[i - 1])
        if kind == PVC:
            out_t.append(out_t[-1] + rng.uniform(0.55, 0.7) * rr)
            out_k.append(PVC)
        else:
            early = out_t[-1] + rng.uniform(0.65, 0.8) * rr
            shift += early - (float(t) + shift)
            out_t.append(early)
            out_k.append(PAC)
    return Rhythm(np.asarray(out_t), tuple(out_k), rhythm.flutter_cycle_ms, rhythm.flutter_phase_ms)
