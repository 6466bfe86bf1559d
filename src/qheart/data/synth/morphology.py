"""One subject's beats as dipole waves, and what the noise-free beat shows lead by lead.

`build_beat` turns a plan and its intervals into Gaussian waves (P, QRS as septal → main →
terminal activation, T, ST plateau, plus the premature beats). `measure_beat` then reads the
noise-free 12-lead beat the way a reader would (axis from I and aVF, Q waves, ST at J+40 ms,
T amplitude, voltages); `label_beat` accepts the beat only when every lead is clearly on one side
of each threshold, so lead-level labels never sit on a borderline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qheart.data.leads import LEADS
from qheart.data.synth import findings as F
from qheart.data.synth.ranges import ABOVE, BELOW, NORMAL_RANGES, qtc_bazett
from qheart.data.synth.realism import REALISM, Realism, subject_lead_matrix, subject_qrs_gain
from qheart.data.synth.vcg import (
    LEAD_INDEX,
    LEAD_MATRIX,
    Wave,
    frontal_axis_deg,
    frontal_direction,
    plateau,
    render_waves,
    territory_direction,
    unit,
)

ST_OFFSET_MS = 40.0
"""ST level is read at J + 40 ms (T waves start later than J + 50 ms by construction)."""
ST_YES, ST_NO = 0.10, 0.065
"""|ST| ≥ 0.1 mV labels elevation/depression (1 mm); unlabelled leads stay below 0.065 mV."""
ST_YES_V2V3, ST_NO_V2V3 = 0.20, 0.165
"""With `Realism.normal_st_takeoff` (v5): ST elevation in V2-V3 counts from 0.2 mV (the Fourth
Universal Definition of MI's threshold for men ≥ 40; a healthy young man's V2-V3 ST reaches
0.1-0.25 mV), and unlabelled V2-V3 stay below 0.165 mV. Depression keeps ST_YES everywhere."""
RAISED_ELEVATION_LEADS = ("V2", "V3")
"""Where v5 labels ST elevation from ST_YES_V2V3."""
TAKEOFF_LEADS = ("V1", "V2", "V3")
"""The leads v5's normal ST takeoff faces (real medians at J+60: 0.04 / 0.13 / 0.09 mV)."""
T_YES, T_NO = -0.10, -0.065
Q_YES_MS, Q_YES_MV = 30.0, 0.10
Q_NO_MS, Q_NO_MV = 22.0, 0.05
NOT_LABELLED_FOR_Q_T = ("aVR",)
"""aVR is negative in every normal ECG: its Q/QS and inverted T are not findings."""


@dataclass(frozen=True)
class Intervals:
    """Exact interval ground truth (ms). p_ms/pr_ms are None without P waves (AF, flutter)."""

    rr_ms: float
    p_ms: float | None
    pr_ms: float | None
    qrs_ms: float
    qt_ms: float

    @property
    def qtc_ms(self) -> float:
        return qtc_bazett(self.qt_ms, self.rr_ms)

    def features(self) -> dict[str, float | None]:
        """ECG-QA's six numeric features, keyed by their ECG-QA names."""
        return {
            "rr interval": self.rr_ms,
            "p duration": self.p_ms,
            "pr interval": self.pr_ms,
            "qrs duration": self.qrs_ms,
            "qt interval": self.qt_ms,
            "qt corrected": self.qtc_ms,
        }


def qrs_projection(lead_matrix: np.ndarray, qrs_gain: np.ndarray | None) -> np.ndarray:
    """(12, 3) the lead matrix with each lead scaled by its QRS-only gain (None: unchanged)."""
    return lead_matrix if qrs_gain is None else qrs_gain[:, None] * lead_matrix


@dataclass
class BeatModel:
    """Waves of one subject's beats, times relative to the QRS onset of each beat."""

    qrs: list[Wave]
    t_wave: Wave
    p_wave: Wave | None
    st_vector: np.ndarray
    qrs_ms: float
    qt_ms: float
    pvc: list[Wave] = field(default_factory=list)
    pac_p: Wave | None = None
    lead_matrix: np.ndarray = field(default_factory=lambda: LEAD_MATRIX)
    """(12, 3) this subject's heart-vector → lead projection (orientation, electrodes, gain)."""
    qrs_gain: np.ndarray | None = None
    """(12,) gain of the QRS alone per lead (v7's chest proximity); None: it projects as the rest."""

    @property
    def qrs_matrix(self) -> np.ndarray:
        """(12, 3) the projection the QRS waves go through."""
        return qrs_projection(self.lead_matrix, self.qrs_gain)

    def conducted_leads(self, t_ms: np.ndarray, atrial: Wave | None) -> np.ndarray:
        """(12, T) a conducted beat (with its atrial wave, if any) plus the ST plateau, in leads:
        the QRS through `qrs_matrix`, everything else through `lead_matrix`."""
        atrial_waves = [atrial] if atrial is not None else []
        if self.qrs_gain is None:  # one projection, exactly as before v7
            waves = [*atrial_waves, *self.qrs, self.t_wave]
            return self.lead_matrix @ (render_waves(t_ms, waves) + self.st_course(t_ms))
        rest = render_waves(t_ms, [*atrial_waves, self.t_wave]) + self.st_course(t_ms)
        return self.lead_matrix @ rest + self.qrs_matrix @ render_waves(t_ms, self.qrs)

    def st_course(self, t_ms: np.ndarray) -> np.ndarray:
        """(3, T) ST plateau from the J point to the end of T."""
        return np.outer(self.st_vector, plateau(t_ms, self.qrs_ms, self.t_wave.center_ms, 16.0))


# ------------------------------------------------------------------------------- intervals


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _leaning(rng: np.random.Generator, low: float, high: float, power: float) -> float:
    """A draw from [low, high] leaning toward `low` (power > 1) or `high` (power < 1)."""
    return low + (high - low) * float(rng.random()) ** power


LEAN_SHORT_QRS, LEAN_LONG_QTC = 1.8, 0.55
"""v7's shapes (`Realism.real_interval_shape`): medians 86 ms (QRS, in 80-100) and 417 ms (QTc,
in 372-438) instead of 90 and 405, toward the real records' measured 84 and 422."""


def sample_intervals(plan: F.Plan, rr_ms: float, rng: np.random.Generator,
                     min_pr_segment_ms: float = 16.0, real_shape: bool = False
                     ) -> Intervals | None:
    """Durations for the plan's classes, each a safe margin away from its range's thresholds;
    the PR segment (P end to QRS onset) lasts at least `min_pr_segment_ms`. `real_shape`: normal
    QRS and QTc lean the way real records do (v7)."""
    if plan.conduction == F.LBBB:
        qrs = _uniform(rng, 130, 165)
    elif plan.conduction == F.RBBB:
        qrs = _uniform(rng, 125, 155)
    elif plan.conduction == F.IVCD:
        qrs = _uniform(rng, 122, 140)
    elif plan.conduction == F.IRBBB:  # rSr' with a QRS still within the normal range
        qrs = _uniform(rng, 88, 100)
    elif plan.qrs_class == BELOW:
        qrs = _uniform(rng, 56, 62)
    else:
        qrs = _leaning(rng, 80, 100, LEAN_SHORT_QRS) if real_shape else _uniform(rng, 80, 100)
    p = pr = None
    if plan.has_p_waves:
        p = {BELOW: (60, 72), ABOVE: (128, 145)}.get(plan.p_class, (88, 112))
        pr = {BELOW: (96, 108), ABOVE: (215, 320)}.get(plan.pr_class, (132, 188))
        p, pr = _uniform(rng, *p), _uniform(rng, *pr)
        if pr < p + min_pr_segment_ms:  # room between the end of P and the QRS
            return None
    qtc_range = {ABOVE: (465, 520), BELOW: (318, 338)}.get(plan.qt_class, (372, 438))
    if real_shape and plan.qt_class not in (ABOVE, BELOW):
        qtc = _leaning(rng, *qtc_range, LEAN_LONG_QTC)
    else:
        qtc = _uniform(rng, *qtc_range)
    qt = qtc * (rr_ms / 1000.0) ** 0.5
    if qt - qrs < 150 or NORMAL_RANGES["qt interval"].margin(qt) < 12:
        return None
    return Intervals(rr_ms=rr_ms, p_ms=p, pr_ms=pr, qrs_ms=qrs, qt_ms=qt)


# ------------------------------------------------------------------------------- waves


_AXIS_ANGLES = {
    F.AXIS_NORMAL: (-10.0, 75.0),
    F.AXIS_LEFT: (-75.0, -45.0),
    F.AXIS_RIGHT: (105.0, 165.0),
    F.AXIS_EXTREME: (-165.0, -110.0),
}


def _qrs_waves(plan: F.Plan, qrs: float, rng: np.random.Generator,
               realism: Realism = REALISM["v1"]) -> list[Wave]:
    """QRS waves: septal (initial), main (left ventricle) and terminal (basal) activation."""
    if realism.waves and plan.axis == F.AXIS_NORMAL and rng.random() < 0.7:
        theta = _uniform(rng, 30.0, 72.0)  # real normal axes cluster around +50°
    else:
        theta = _uniform(rng, *_AXIS_ANGLES[plan.axis])
    gain = {"lvh": _uniform(rng, 1.7, 2.2), "low": _uniform(rng, 0.22, 0.32)}.get(plan.voltage, 1.0)
    amp = _uniform(rng, *((1.35, 2.1) if realism.waves else (1.2, 1.9))) * gain
    if plan.conduction == F.LBBB:
        # Septum activated right → left: no septal q in I/V6; slow, notched leftward-posterior R.
        main = frontal_direction(min(max(theta, -60.0), 40.0), z=_uniform(rng, 0.8, 1.2))
        waves = [
            Wave(0.10 * qrs, 0.04 * qrs, 0.25 * amp * unit([0.8, 0.1, 0.6])),
            Wave(0.4 * qrs, 0.13 * qrs, amp * main),
            Wave(0.7 * qrs, 0.12 * qrs, 0.8 * amp * unit(main + np.array([0.0, -0.2, 0.3]))),
        ]
        return waves
    if plan.voltage == "lvh":
        # LV hypertrophy enlarges the leftward-posterior forces: deep S in V1, tall R in V5/V6/aVL.
        theta = min(max(theta, -40.0), 40.0)
        main = frontal_direction(theta, z=_uniform(rng, 0.7, 1.0))
    elif realism.real_chest_shape:  # with v7's chest QRS gains: the real S in V1-V2
        main = frontal_direction(theta, z=_uniform(rng, 0.25, 0.6))
    elif realism.waves:  # less posterior: the precordial transition at V2-V3, as in real ECGs
        main = frontal_direction(theta, z=_uniform(rng, 0.05, 0.45))
    else:
        main = frontal_direction(theta, z=_uniform(rng, 0.3, 0.7))
    # Initial (septal/fascicular) forces run anteriorly and roughly opposite the main frontal
    # force: r in V1, small non-pathological q in the leads the main force faces.
    a = np.deg2rad(theta + _uniform(rng, -25, 25))
    deviated = plan.axis != F.AXIS_NORMAL
    size = _uniform(rng, 0.2, 0.3) if deviated else _uniform(rng, 0.15, 0.22)
    if realism.real_chest_shape:
        size *= 0.7
    septal = size * amp * unit([-0.6 * np.cos(a), -0.6 * np.sin(a), -0.8])
    if realism.waves:  # basal forces mostly posterior: a small S in II, s in V5-V6
        terminal = _uniform(rng, 0.1, 0.22) * amp * unit([-0.4, -0.35, 0.85])
    else:
        terminal = _uniform(rng, 0.15, 0.3) * amp * unit([-0.3, -0.7, 0.6])
    if plan.conduction in (F.RBBB, F.IRBBB):
        # Normal left-sided activation in ~80 ms, then slow rightward-anterior RV activation: R' in
        # V1, broad S in I and V6. Incomplete: the same sequence shorter, with a smaller r'.
        complete = plan.conduction == F.RBBB
        sig_r = (qrs - 62.0) / 5.0
        size = _uniform(rng, 0.6, 0.9) if complete else _uniform(rng, 0.3, 0.5)
        waves = [
            Wave(8.0, 3.2, septal),
            Wave(38.0 if complete else 34.0, 10.0 if complete else 9.0, amp * main),
            Wave(qrs - 2.5 * sig_r, sig_r, size * amp * unit([-0.7, 0.1, -0.7])),
        ]
        return waves
    waves = [
        Wave(0.1 * qrs, 0.04 * qrs, septal),
        Wave(0.42 * qrs, 0.11 * qrs, amp * main),
        Wave(0.8125 * qrs, 0.075 * qrs, terminal),
    ]
    return waves


def _infarct(
    waves: list[Wave], facing: np.ndarray, depth: float, qrs: float, shrink: float = 0.9
) -> list[Wave]:
    """Necrosis: early forces point away from the territory (Q waves there), R forces shrink."""
    amp = float(np.linalg.norm(waves[1].vector))
    sigma = 0.1 * qrs
    out = [Wave(2.5 * sigma, sigma, -depth * amp * facing)]
    if facing[2] > -0.5:
        # A scar away from the anterior wall leaves the septum's anterior force: r in V1-V3 stays.
        septal = waves[0].vector
        kept = np.array([0.0, 0.0, min(float(septal[2]), 0.0)])
        out.append(Wave(waves[0].center_ms, waves[0].sigma_rise_ms, kept))
    for wave in waves[1:]:
        along = float(wave.vector @ facing)
        vector = wave.vector - shrink * max(along, 0.0) * facing
        out.append(Wave(wave.center_ms, wave.sigma_rise_ms, vector, wave.sigma_fall_ms))
    return out


def _t_shape(qt: float, qrs: float, rng: np.random.Generator,
             rise: float = 1.6) -> tuple[float, float] | None:
    """(centre, fall σ) of an asymmetric T (rise σ = rise · fall σ) ending exactly at QT and
    starting > 50 ms after J (> 42 ms for the longer, upsloping v2 T), so ST at J+40 is the
    plateau's alone."""
    gap = 52.0 if rise == 1.6 else 42.0
    fall = min(_uniform(rng, 30, 42), (qt - qrs - gap) / (2.5 * (1.0 + rise)))
    if fall < 14.0:
        return None
    return qt - 2.5 * fall, fall


_GRID = np.linspace(0.0, 1.0, 25)
_ELIGIBLE_T = np.array([name not in NOT_LABELLED_FOR_Q_T for name in LEADS])


def _fit_scale(
    a: np.ndarray, b: np.ndarray, lo: float, hi: float, ok, rng: np.random.Generator
) -> float | None:
    """A scale s in [lo, hi] for which the per-lead values s·a + b pass `ok` (tried in random
    order on a grid): how a wave's size is chosen so that no lead sits on a label threshold."""
    for s in lo + (hi - lo) * _GRID[rng.permutation(len(_GRID))]:
        if ok(s * a + b):
            return float(s)
    return None


def _covers(leads: tuple[str, ...] | None, mask: np.ndarray) -> bool:
    """True if mask hits at least half of `leads` (any lead when `leads` is None)."""
    if leads is None:
        return bool(mask.any())
    hits = sum(bool(mask[LEAD_INDEX[name]]) for name in leads)
    return 2 * hits >= len(leads)


def _q_ok(waves: list[Wave], qrs_ms: float, territory: tuple[str, ...],
          lead_matrix: np.ndarray = LEAD_MATRIX) -> bool:
    """Every lead clearly with or without a pathological Q, and most territory leads with one."""
    t = np.arange(0.0, qrs_ms + 1.0)
    q_ms, q_mv = _q_waves(lead_matrix @ render_waves(t, waves), 1.0)
    q_yes = (q_ms >= Q_YES_MS) & (q_mv >= Q_YES_MV) & _ELIGIBLE_T
    q_no = (q_ms < Q_NO_MS) | (q_mv < Q_NO_MV) | ~_ELIGIBLE_T
    return bool(np.all(q_yes | q_no)) and _covers(territory, q_yes)


def elevation_limits(realism: Realism) -> tuple[np.ndarray, np.ndarray]:
    """Per lead, (ST level from which elevation is labelled, level an unlabelled lead stays
    below), in mV: ST_YES / ST_NO everywhere, V2-V3 raised where the realism has a takeoff."""
    yes, no = np.full(len(LEADS), ST_YES), np.full(len(LEADS), ST_NO)
    if realism.normal_st_takeoff is not None:
        rows = [LEAD_INDEX[name] for name in RAISED_ELEVATION_LEADS]
        yes[rows], no[rows] = ST_YES_V2V3, ST_NO_V2V3
    return yes, no


def _st_ok(want: str | None, territory: tuple[str, ...] | None,
           limits: tuple[np.ndarray, np.ndarray]):
    """`limits`: `elevation_limits` of the realism."""
    up_yes, up_no = limits

    def ok(v: np.ndarray) -> bool:
        up, down = v >= up_yes + 0.005, v <= -ST_YES - 0.005
        if not np.all(up | down | ((v < up_no - 0.005) & (v > -ST_NO + 0.005))):
            return False
        if want == "elevation":
            return _covers(territory, up)
        return _covers(territory, down)

    return ok


def _t_ok(want_inverted: bool | None, territory: tuple[str, ...] | None):
    """want_inverted: True (some/territory leads inverted), False (none), None (either)."""

    def ok(v: np.ndarray) -> bool:
        inverted = (v <= T_YES - 0.005) & _ELIGIBLE_T
        if not np.all(inverted | (v > T_NO + 0.005) | ~_ELIGIBLE_T):
            return False
        if want_inverted is None:
            return True
        return _covers(territory, inverted) if want_inverted else not inverted.any()

    return ok


def _st_takeoff(realism: Realism, rng: np.random.Generator, lead_matrix: np.ndarray,
                unlabelled_below: np.ndarray) -> np.ndarray:
    """A healthy heart's ST plateau toward V1-V3 (v5; zero otherwise): V2 lifted by a draw from
    `realism.normal_st_takeoff`, every lead below `unlabelled_below` (mV, per lead). Where no
    such draw fits this subject's leads, none (real ECGs without a takeoff exist too)."""
    if realism.normal_st_takeoff is None:
        return np.zeros(3)
    low, high = realism.normal_st_takeoff
    toward = unit(territory_direction(TAKEOFF_LEADS) + rng.normal(0, 0.15, 3))
    per_unit = lead_matrix @ toward
    v2 = float(per_unit[LEAD_INDEX["V2"]])
    if v2 <= 0.05:
        return np.zeros(3)
    def unlabelled(v: np.ndarray) -> bool:  # with a margin: the plan's own ST is added later
        return bool(np.all((v < unlabelled_below - 0.01) & (v > -ST_NO + 0.01)))

    scale = _fit_scale(per_unit, np.zeros(len(LEADS)), low / v2, high / v2, unlabelled, rng)
    return np.zeros(3) if scale is None else scale * toward


def _st_vector(
    plan: F.Plan, facing: np.ndarray | None, territory: tuple[str, ...] | None,
    rng: np.random.Generator, lead_matrix: np.ndarray = LEAD_MATRIX,
    realism: Realism = REALISM["v1"],
) -> np.ndarray | None:
    """The ST plateau vector: injury current toward an acute infarct, or a non-specific shift,
    on top of the normal takeoff (v5)."""
    limits = elevation_limits(realism)
    base = _st_takeoff(realism, rng, lead_matrix, limits[1])
    if facing is not None and plan.mi_stage == "early":
        want, sign, spread, lo, hi = "elevation", 1.0, 0.12, 0.12, 0.4
    elif plan.st_change is not None:
        want, sign, spread, lo, hi = plan.st_change, 1.0, 0.2, 0.1, 0.35
        if plan.st_change == "depression":
            sign = -1.0
        territory = None
    else:
        return base
    for _ in range(8):
        if facing is not None and plan.mi_stage == "early":
            toward = unit(facing + rng.normal(0, 0.08, 3))
        elif plan.st_change == "depression" and rng.random() < 0.6:
            toward = unit(np.array([0.7, 0.6, -0.2]) + rng.normal(0, spread, 3))  # subendocardial
        else:
            group = F.MI_TERRITORY_LEADS[str(rng.choice(list(F.MI_TERRITORY_LEADS)))]
            toward = unit(territory_direction(group) + rng.normal(0, spread, 3))
        scale = _fit_scale(sign * lead_matrix @ toward, lead_matrix @ base, lo, hi,
                           _st_ok(want, territory, limits), rng)  # fmt: skip
        if scale is not None:
            return base + sign * scale * toward
    return None


def _notch(qrs_waves: list[Wave], qrs: float, rng: np.random.Generator) -> list[Wave]:
    """A small extra wave inside the QRS: a notch or fragmentation, as many real QRS carry."""
    amp = float(np.linalg.norm(qrs_waves[1].vector))
    sigma = _uniform(rng, 0.03, 0.05) * qrs
    center = _uniform(rng, 0.35, 1.0 - 2.6 * sigma / qrs) * qrs
    return [*qrs_waves, Wave(center, sigma, _uniform(rng, 0.06, 0.18) * amp * unit(rng.normal(0, 1, 3)))]


def build_beat(plan: F.Plan, iv: Intervals, rng: np.random.Generator,
               realism: Realism = REALISM["v1"]) -> BeatModel | None:
    """All waves of the subject's beats; None if this draw cannot carry the plan cleanly."""
    lm = subject_lead_matrix(realism, rng)
    qrs_gain = subject_qrs_gain(realism, rng)
    qrs_lm = qrs_projection(lm, qrs_gain)
    qrs_waves = _qrs_waves(plan, iv.qrs_ms, rng, realism)
    if realism.notch_prob and rng.random() < realism.notch_prob:
        qrs_waves = _notch(qrs_waves, iv.qrs_ms, rng)
    facing = territory = None
    if plan.mi_territory:
        territory = F.MI_TERRITORY_LEADS[plan.mi_territory]
        facing = unit(territory_direction(territory) + rng.normal(0, 0.12, 3))
        if plan.mi_stage in ("middle", "old"):
            # v2: from a small q with poor R progression (R kept) to a deep QS (R lost)
            low, high, shrink = (0.2, 0.6, _uniform(rng, 0.5, 1.0)) if realism.infarct_variants \
                else (0.25, 0.8, 0.9)
            depth = _fit_scale(np.ones(1), np.zeros(1), low, high,
                               lambda d: _q_ok(_infarct(qrs_waves, facing, float(d[0]), iv.qrs_ms,
                                                        shrink), iv.qrs_ms, territory, qrs_lm),
                               rng)  # fmt: skip
            if depth is None:
                return None
            qrs_waves = _infarct(qrs_waves, facing, depth, iv.qrs_ms, shrink)
    rise = _uniform(rng, 2.0, 2.6) if realism.waves else 1.6
    shape = _t_shape(iv.qt_ms, iv.qrs_ms, rng, rise)
    if shape is None:
        return None
    t_center, t_fall = shape
    # ST: a plateau vector from J to T; its size is fitted so each lead is clearly in or out.
    st = _st_vector(plan, facing, territory, rng, lm, realism)
    if st is None:
        return None
    # T: at its peak the lead value is the T vector plus half the ST plateau (its down-ramp).
    st_at_t = lm @ (st * float(plateau(np.array([t_center]), iv.qrs_ms, t_center, 16.0)[0]))
    t_scale = 0.6 if plan.voltage == "low" else 1.0
    t_z = (-0.7, -0.3) if realism.real_chest_shape else (-0.8, -0.45)
    normal_t = frontal_direction(_uniform(rng, 10, 45), z=_uniform(rng, *t_z))
    bbb = plan.conduction in (F.LBBB, F.RBBB)
    if bbb:  # secondary, discordant to the terminal QRS forces
        base, vary = np.zeros(3), -unit(qrs_waves[-1].vector)
        lo, hi, want = 0.2, 0.4, None
    elif plan.mi_stage == "middle" or plan.t_inversion:
        away = facing if facing is not None else unit(
            territory_direction(F.MI_TERRITORY_LEADS[str(rng.choice(list(F.MI_TERRITORY_LEADS)))])
            + rng.normal(0, 0.15, 3)
        )
        base, vary = _uniform(rng, 0.15, 0.3) * t_scale * normal_t, -away
        lo, hi, want = 0.25, 0.9, True
    else:
        base, vary = np.zeros(3), normal_t
        want = False
        if facing is not None and plan.mi_stage == "early":
            base = _uniform(rng, 0.15, 0.3) * facing  # hyperacute T, reciprocal inversion allowed
            want = None
        lo, hi = (0.45, 0.95) if realism.waves else (0.2, 0.45)
        lo, hi = lo * t_scale, hi * t_scale
    t_ok = _t_ok(want, territory if plan.mi_stage == "middle" else None)
    scale = _fit_scale(lm @ vary, lm @ base + st_at_t, lo, hi, t_ok, rng)
    if scale is None and realism.waves and lo > 0.2 * t_scale and not bbb:
        # a lead nearly perpendicular to a tall T would sit on the inversion threshold: smaller T
        scale = _fit_scale(lm @ vary, lm @ base + st_at_t, 0.2 * t_scale, lo, t_ok, rng)
    if scale is None:
        return None
    t_wave = Wave(t_center, rise * t_fall, base + scale * vary, t_fall)
    p_wave = None
    if iv.p_ms is not None and iv.pr_ms is not None:
        sigma = iv.p_ms / 5.0
        p_amp = _uniform(rng, 0.10, 0.18) * (0.7 if plan.voltage == "low" else 1.0)
        p_vec = p_amp * frontal_direction(_uniform(rng, 35, 70), z=_uniform(rng, -0.3, 0.1))
        p_wave = Wave(-iv.pr_ms + 2.5 * sigma, sigma, p_vec)
    model = BeatModel(qrs_waves, t_wave, p_wave, st, iv.qrs_ms, iv.qt_ms, lead_matrix=lm,
                      qrs_gain=qrs_gain)
    if plan.ectopy == "pvc":
        model.pvc = _pvc_waves(iv.qt_ms, rng)
    if plan.ectopy == "pac" and p_wave is not None:
        # Ectopic atrial focus: a differently aimed P, shorter PR.
        sigma = p_wave.sigma_rise_ms
        pac_vec = _uniform(rng, 0.08, 0.15) * frontal_direction(_uniform(rng, -80, -20), z=0.2)
        model.pac_p = Wave(-0.85 * iv.pr_ms + 2.5 * sigma, sigma, pac_vec)
    return model


def _pvc_waves(qt_ms: float, rng: np.random.Generator) -> list[Wave]:
    """A wide (130-170 ms) bizarre QRS from a ventricular focus with a discordant T."""
    width = _uniform(rng, 130, 170)
    direction = unit(rng.normal(0, 1, 3))
    amp = _uniform(rng, 1.6, 2.6)
    t_vec = -_uniform(rng, 0.35, 0.6) * direction
    fall = 45.0
    return [
        Wave(0.35 * width, 0.14 * width, amp * direction),
        Wave(0.7 * width, 0.12 * width, 0.5 * amp * unit(direction + rng.normal(0, 0.5, 3))),
        Wave(qt_ms + 40 - 2.5 * fall, 1.5 * fall, t_vec, fall),
    ]


# ------------------------------------------------------------------------------- measurement


@dataclass(frozen=True)
class BeatMeasures:
    """What the noise-free conducted beat shows, per lead (canonical lead order)."""

    axis_deg: float
    q_ms: np.ndarray
    q_mv: np.ndarray
    st_mv: np.ndarray
    t_mv: np.ndarray
    qrs_p2p: np.ndarray
    qrs_max: np.ndarray
    qrs_min: np.ndarray

    @property
    def sokolow_lyon_mv(self) -> float:
        """S in V1 + the larger R of V5/V6 (Sokolow & Lyon 1949); ≥ 3.5 mV meets LVH voltage."""
        i = LEAD_INDEX
        return float(-self.qrs_min[i["V1"]] + max(self.qrs_max[i["V5"]], self.qrs_max[i["V6"]]))


def beat_leads(model: BeatModel, t_ms: np.ndarray, *, with_p: bool = True) -> np.ndarray:
    """(12, T) noise-free conducted beat (plus its P wave) on a time grid relative to QRS onset."""
    return model.conducted_leads(t_ms, model.p_wave if with_p else None)


def _q_waves(qrs_leads: np.ndarray, dt_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Per lead: duration (ms) and depth (mV) of an initial negative deflection before any R.

    An R wave starts where the lead first rises clearly (0.02-0.05 mV by lead size); the Q lasts
    from the onset until the lead, after its lowest point before that R, returns to zero.
    """
    n = qrs_leads.shape[1]
    idx = np.arange(n)
    r_thr = np.clip(0.15 * np.abs(qrs_leads).max(axis=1), 0.02, 0.05)[:, None]
    r_start = np.where((qrs_leads > r_thr).any(axis=1), (qrs_leads > r_thr).argmax(axis=1), n)
    before = idx[None, :] < r_start[:, None]
    masked = np.where(before, qrs_leads, np.inf)
    depth = np.where(r_start > 0, -masked.min(axis=1), 0.0)
    lowest = masked.argmin(axis=1)
    back = (qrs_leads >= 0.0) & (idx[None, :] >= lowest[:, None])
    end = np.where(back.any(axis=1), back.argmax(axis=1), n)
    has_q = (r_start > 0) & (depth > 0.02)
    return np.where(has_q, end * dt_ms, 0.0), np.where(has_q, depth, 0.0)


def measure_beat(model: BeatModel) -> BeatMeasures:
    """Read the noise-free beat: axis, Q waves, ST at J+40 ms, T peak, QRS voltages."""
    dt = 1.0
    t = np.arange(0.0, model.qt_ms + 1.0, dt)
    leads = beat_leads(model, t, with_p=False)  # (12, T)
    n_qrs = round(model.qrs_ms / dt) + 1
    qrs = leads[:, :n_qrs]
    net = qrs.sum(axis=1)
    axis = frontal_axis_deg(net[LEAD_INDEX["I"]], net[LEAD_INDEX["aVF"]])
    q_ms, q_mv = _q_waves(qrs, dt)
    st = leads[:, round((model.qrs_ms + ST_OFFSET_MS) / dt)]
    t_peak = leads[:, round(model.t_wave.center_ms / dt)]
    return BeatMeasures(axis, q_ms, q_mv, st, t_peak, np.ptp(qrs, axis=1), qrs.max(1), qrs.min(1))


# ------------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class BeatLabels:
    axis: str
    lead_findings: dict[str, tuple[str, ...]]
    voltage: str  # normal | lvh | low


def _lead_set(mask: np.ndarray) -> tuple[str, ...]:
    return tuple(name for name, hit in zip(LEADS, mask, strict=True) if hit)


def label_beat(plan: F.Plan, m: BeatMeasures, realism: Realism = REALISM["v1"]
               ) -> BeatLabels | None:
    """Lead-level labels of a measured beat, or None where any lead sits near a threshold or the
    plan's finding did not come out clearly (the caller draws new waves). `realism` only sets
    where ST elevation starts (`elevation_limits`)."""
    if F.axis_margin(m.axis_deg) < 6.0:
        return None
    excluded = np.array([name in NOT_LABELLED_FOR_Q_T for name in LEADS])
    q_yes = (m.q_ms >= Q_YES_MS) & (m.q_mv >= Q_YES_MV) & ~excluded
    q_no = (m.q_ms < Q_NO_MS) | (m.q_mv < Q_NO_MV) | excluded
    up_yes, up_no = elevation_limits(realism)
    st_up, st_down = m.st_mv >= up_yes, m.st_mv <= -ST_YES
    st_no = (m.st_mv < up_no) & (m.st_mv > -ST_NO)
    t_yes = (m.t_mv <= T_YES) & ~excluded
    t_no = (m.t_mv > T_NO) | excluded
    if not (np.all(q_yes | q_no) and np.all(st_up | st_down | st_no) and np.all(t_yes | t_no)):
        return None
    found = {
        F.Q_WAVES: _lead_set(q_yes),
        F.ST_ELEVATION: _lead_set(st_up),
        F.ST_DEPRESSION: _lead_set(st_down),
        F.T_INVERSION: _lead_set(t_yes),
    }
    if not _plan_realised(plan, found):
        return None
    voltage = _voltage(plan, m)
    if voltage is None:
        return None
    return BeatLabels(F.axis_label(m.axis_deg), {k: v for k, v in found.items() if v}, voltage)


def _plan_realised(plan: F.Plan, found: dict[str, tuple[str, ...]]) -> bool:
    """The planned lead findings show, and (outside bundle branch block) nothing unplanned does."""
    bbb = plan.conduction in (F.LBBB, F.RBBB)
    if plan.mi_territory:
        territory = set(F.MI_TERRITORY_LEADS[plan.mi_territory])
        key = {"early": F.ST_ELEVATION, "middle": F.Q_WAVES, "old": F.Q_WAVES}[plan.mi_stage or "old"]
        if len(territory & set(found[key])) * 2 < len(territory):
            return False
        if plan.mi_stage == "middle" and len(territory & set(found[F.T_INVERSION])) * 2 < len(territory):
            return False
    if (plan.mi_territory is None or plan.mi_stage == "early") and not bbb and found[F.Q_WAVES]:
        return False  # Q waves only from necrosis (or the QS of a bundle branch block)
    wants_st = plan.st_change is not None or plan.mi_stage == "early"
    if wants_st != bool(found[F.ST_ELEVATION] or found[F.ST_DEPRESSION]):
        return False
    if plan.st_change == "depression" and not found[F.ST_DEPRESSION]:
        return False
    wants_t = plan.t_inversion or plan.mi_stage in ("early", "middle") or bbb
    if not wants_t and found[F.T_INVERSION]:
        return False
    return not ((plan.t_inversion or plan.mi_stage == "middle") and not found[F.T_INVERSION])


def _voltage(plan: F.Plan, m: BeatMeasures) -> str | None:
    limb, chest = m.qrs_p2p[:6].max(), m.qrs_p2p[6:].max()
    sokolow = m.sokolow_lyon_mv
    low = limb < 0.42 and chest < 0.85
    clearly_not_low = limb >= 0.58 or chest >= 1.15
    if plan.voltage == "lvh":
        return "lvh" if sokolow >= 3.8 else None
    if sokolow > 3.2:
        return None
    if plan.voltage == "low":
        return "low" if low else None
    return "normal" if clearly_not_low else None
