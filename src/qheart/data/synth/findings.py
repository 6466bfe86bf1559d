"""What a synthetic subject has: findings in ECG-QA's own vocabulary, sampled with prevalences.

A `Plan` is the intent (rhythm, conduction, infarct, ...). The beat model turns it into waves,
and the ground truth of everything visible lead by lead (axis, Q waves, ST, T) is then *measured*
on the noise-free beat (`morphology.measure_beat`), so labels and signals agree by construction.
Strings are spelled exactly as in ECG-QA 1.0.2's answers.csv.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qheart.data.synth.ranges import ABOVE, BELOW, WITHIN

# --- rhythm (template 7/10 vocabulary)
SINUS_RHYTHM = "sinus rhythm"
SINUS_BRADYCARDIA = "sinus bradycardia"
SINUS_TACHYCARDIA = "sinus tachycardia"
SINUS_ARRHYTHMIA = "sinus arrhythmia"
ATRIAL_FIBRILLATION = "atrial fibrillation"
ATRIAL_FLUTTER = "atrial flutter"
RHYTHMS: tuple[str, ...] = (
    SINUS_RHYTHM, SINUS_BRADYCARDIA, SINUS_TACHYCARDIA, SINUS_ARRHYTHMIA,
    ATRIAL_FIBRILLATION, ATRIAL_FLUTTER,
)  # fmt: skip
RHYTHM_WEIGHTS = (0.48, 0.12, 0.12, 0.08, 0.13, 0.07)

# --- diagnostic statements (template 4/8 vocabulary)
FIRST_DEGREE_AVB = "first degree av block"
LBBB = "complete left bundle branch block"
RBBB = "complete right bundle branch block"
IVCD = "non-specific intraventricular conduction disturbance (block)"
IRBBB = "incomplete right bundle branch block"
LAFB = "left anterior fascicular block"
LPFB = "left posterior fascicular block"
LVH = "left ventricular hypertrophy"
LONG_QT = "long qt-interval"
MI_TERRITORY_LEADS: dict[str, tuple[str, ...]] = {
    "inferior": ("II", "III", "aVF"),
    "anterior": ("V1", "V2", "V3", "V4"),
    "anteroseptal": ("V1", "V2", "V3"),
    "lateral": ("I", "aVL", "V5", "V6"),
    "anterolateral": ("I", "aVL", "V3", "V4", "V5", "V6"),
    "inferolateral": ("II", "III", "aVF", "V5", "V6"),
}
"""Textbook lead groups facing each infarct territory; the beat model aims the infarct at them."""


def mi_statement(territory: str) -> str:
    return f"myocardial infarction in {territory} leads"


MI_STATEMENTS: tuple[str, ...] = tuple(mi_statement(t) for t in MI_TERRITORY_LEADS)
DIAGNOSTIC: tuple[str, ...] = (FIRST_DEGREE_AVB, LBBB, RBBB, IVCD, LVH, LONG_QT, *MI_STATEMENTS,
                                IRBBB, LAFB, LPFB)
"""Template 4/8 vocabulary. The last three come from generator v3 (`Realism.conduction_variants`):
PTB-XL's most frequent conduction statements after the complete blocks."""

# --- form statements (template 6/11 vocabulary); the first four are lead-specific (template 18)
Q_WAVES = "q waves present"
ST_ELEVATION = "non-specific st elevation"
ST_DEPRESSION = "non-specific st depression"
T_INVERSION = "inverted t-waves"
LOW_VOLTAGE = "low qrs voltages in the frontal and horizontal leads"
LVH_VOLTAGE = "voltage criteria (qrs) for left ventricular hypertrophy"
VPC = "ventricular premature complex"
APC = "atrial premature complex"
PROLONGED_PR = "prolonged pr interval"
LEAD_FORMS: tuple[str, ...] = (Q_WAVES, ST_ELEVATION, ST_DEPRESSION, T_INVERSION)
FORMS: tuple[str, ...] = (
    *LEAD_FORMS, LOW_VOLTAGE, LVH_VOLTAGE, VPC, APC, PROLONGED_PR, LONG_QT,
)  # fmt: skip

# --- diagnostic superclasses (template 3), PTB-XL's mapping of the statements above
SUPERCLASS: dict[str, str] = {
    FIRST_DEGREE_AVB: "conduction disturbance",
    LBBB: "conduction disturbance",
    RBBB: "conduction disturbance",
    IVCD: "conduction disturbance",
    IRBBB: "conduction disturbance",
    LAFB: "conduction disturbance",
    LPFB: "conduction disturbance",
    LVH: "hypertrophy",
    LONG_QT: "st/t change",
    **{s: "myocardial infarction" for s in MI_STATEMENTS},
}
SUPERCLASSES: tuple[str, ...] = (
    "conduction disturbance", "hypertrophy", "myocardial infarction", "st/t change",
)  # fmt: skip

# --- heart axis (templates 20-22)
AXIS_NORMAL = "normal heart axis"
AXIS_LEFT = "left axis deviation"
AXIS_RIGHT = "right axis deviation"
AXIS_EXTREME = "extreme axis deviation"
AXES: tuple[str, ...] = (AXIS_NORMAL, AXIS_LEFT, AXIS_RIGHT, AXIS_EXTREME)
AXIS_WEIGHTS = (0.66, 0.17, 0.11, 0.06)
AXIS_BOUNDS_DEG = (-30.0, 90.0, 180.0, -90.0)


def axis_label(angle_deg: float) -> str:
    """Frontal QRS axis class: normal −30..90°, left −30..−90°, right 90..180°, extreme −90..−180°."""
    if -30.0 <= angle_deg <= 90.0:
        return AXIS_NORMAL
    if -90.0 <= angle_deg < -30.0:
        return AXIS_LEFT
    if 90.0 < angle_deg <= 180.0:
        return AXIS_RIGHT
    return AXIS_EXTREME


def axis_margin(angle_deg: float) -> float:
    """Degrees to the nearest class boundary."""
    return float(min(abs((angle_deg - b + 180.0) % 360.0 - 180.0) for b in AXIS_BOUNDS_DEG))


# --- infarct stage (templates 23-25)
STAGES: dict[str, str] = {
    "early": "early stage of myocardial infarction",
    "middle": "middle stage of myocardial infarction",
    "old": "old stage of myocardial infarction",
}
NO_STAGE = "none of myocardial infarction"

# --- extrasystoles (templates 35-38)
VES = "ventricular extrasystoles"
SVES = "supraventricular extrasystoles"
ANY_EXTRASYSTOLE = "extrasystoles"
EXTRASYSTOLES: tuple[str, ...] = (ANY_EXTRASYSTOLE, SVES, VES)

# --- noise (templates 26-34)
BASELINE_DRIFT = "baseline drift"
STATIC_NOISE = "static noise"
BURST_NOISE = "burst noise"
ELECTRODES = "electrodes problems"
NOISES: tuple[str, ...] = (BASELINE_DRIFT, BURST_NOISE, ELECTRODES, STATIC_NOISE)
NOISE_PREVALENCE: dict[str, float] = {
    STATIC_NOISE: 0.18, BASELINE_DRIFT: 0.15, BURST_NOISE: 0.10, ELECTRODES: 0.05,
}  # fmt: skip
ANY_NOISE = "any kind of noises"


@dataclass
class Plan:
    """The findings a subject is meant to have; the beat model realises them."""

    rhythm: str = SINUS_RHYTHM
    conduction: str | None = None  # LBBB, RBBB, IVCD or (v3) IRBBB
    fascicular: str | None = None  # (v3) LAFB / LPFB, set from the measured axis (fascicular_block)
    av_block: bool = False
    mi_territory: str | None = None
    mi_stage: str | None = None  # early, middle, old
    st_change: str | None = None  # "elevation" / "depression", outside an infarct
    t_inversion: bool = False
    voltage: str = "normal"  # "normal" | "lvh" | "low"
    axis: str = AXIS_NORMAL
    qt_class: str = WITHIN
    p_class: str = WITHIN
    pr_class: str = WITHIN
    qrs_class: str = WITHIN
    ectopy: str | None = None  # "pvc" | "pac"
    noise: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def has_p_waves(self) -> bool:
        return self.rhythm not in (ATRIAL_FIBRILLATION, ATRIAL_FLUTTER)


def _pick(rng: np.random.Generator, items: tuple[str, ...], weights: tuple[float, ...]) -> str:
    p = np.asarray(weights, dtype=float)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


WIDE_QRS_BLOCKS: tuple[str, ...] = (LBBB, RBBB, IVCD)
"""Conduction plans whose QRS lasts over 120 ms (incomplete RBBB stays within the normal range)."""


def sample_plan(rng: np.random.Generator, noise_leads: NoiseLeadSampler,
                conduction_variants: bool = False) -> Plan:
    """Draw one subject's findings (prevalences chosen so each class has thousands of examples).
    `conduction_variants` (generator v3) adds incomplete RBBB from the same draw, so v1/v2 plans
    are unchanged."""
    plan = Plan(rhythm=_pick(rng, RHYTHMS, RHYTHM_WEIGHTS))
    plan.axis = _pick(rng, AXES, AXIS_WEIGHTS)
    u = rng.random()
    plan.conduction = LBBB if u < 0.06 else RBBB if u < 0.13 else IVCD if u < 0.16 else None
    if conduction_variants and plan.conduction is None and u < 0.22:
        plan.conduction = IRBBB
    wide = plan.conduction in WIDE_QRS_BLOCKS
    plan.qrs_class = ABOVE if wide else (BELOW if rng.random() < 0.04 else WITHIN)
    if plan.conduction == IRBBB:  # after the draw above, which v3 keeps so its stream is v2's
        plan.qrs_class = WITHIN
    if plan.has_p_waves:
        plan.av_block = rng.random() < 0.10
        plan.pr_class = ABOVE if plan.av_block else (BELOW if rng.random() < 0.05 else WITHIN)
        v = rng.random()
        plan.p_class = BELOW if v < 0.06 else ABOVE if v < 0.14 else WITHIN
        if plan.pr_class == BELOW:
            plan.p_class = BELOW  # a short PR leaves no room for a normal-length P
    if plan.conduction != LBBB and rng.random() < 0.16:
        plan.mi_territory = str(rng.choice(list(MI_TERRITORY_LEADS)))
        plan.mi_stage = _pick(rng, ("early", "middle", "old"), (0.3, 0.3, 0.4))
    if plan.mi_territory is None and plan.conduction is None:
        s = rng.random()
        plan.st_change = "elevation" if s < 0.06 else "depression" if s < 0.14 else None
        plan.t_inversion = rng.random() < 0.10
    v = rng.random()
    plan.voltage = "lvh" if v < 0.07 else "low" if v < 0.12 else "normal"
    if plan.voltage == "lvh" and plan.axis not in (AXIS_NORMAL, AXIS_LEFT):
        plan.axis = AXIS_NORMAL  # LV-dominant voltage points the axis left, not right
    q = rng.random()
    plan.qt_class = ABOVE if q < 0.09 else BELOW if q < 0.14 else WITHIN
    e = rng.random()
    plan.ectopy = "pvc" if e < 0.09 else ("pac" if e < 0.17 and plan.has_p_waves else None)
    for noise, prevalence in NOISE_PREVALENCE.items():
        if rng.random() < prevalence:
            plan.noise[noise] = noise_leads(rng)
    return plan


def fascicular_block(plan: Plan, measured_axis: str) -> str | None:
    """LAFB/LPFB as a reader diagnoses them from the measured frontal axis: left (right) axis
    deviation without LBBB or a wide non-specific delay, and without an infarct in the wall that
    could turn the axis instead (inferior for LAFB, lateral for LPFB)."""
    if plan.conduction in (LBBB, IVCD):
        return None
    territory = plan.mi_territory or ""
    if measured_axis == AXIS_LEFT and "inferior" not in territory:
        return LAFB
    if measured_axis == AXIS_RIGHT and "lateral" not in territory:
        return LPFB
    return None


class NoiseLeadSampler:
    """Which leads a noise affects: all, a run of neighbours (like PTB-XL's "I-AVR"), or a few."""

    def __init__(self, leads: tuple[str, ...]) -> None:
        self.leads = leads

    def __call__(self, rng: np.random.Generator) -> tuple[str, ...]:
        n = len(self.leads)
        u = rng.random()
        if u < 0.25:
            return self.leads
        if u < 0.7:
            length = int(rng.integers(1, 7))
            start = int(rng.integers(0, n - length + 1))
            return self.leads[start : start + length]
        k = int(rng.integers(1, 4))
        picked = sorted(rng.choice(n, size=k, replace=False).tolist())
        return tuple(self.leads[i] for i in picked)
