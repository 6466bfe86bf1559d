"""One synthetic subject end to end: plan → rhythm → beat waves → checked labels → 12-lead signal.

`simulate(rng)` returns the noisy (12, 5000) float32 ECG and its `Truth`; `simulate_clean` keeps
the noise-free signal as well (the measurement tests use both).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from qheart.data.leads import LEADS, N_SAMPLES, SAMPLE_RATE_HZ
from qheart.data.synth import findings as F
from qheart.data.synth.morphology import (
    BeatLabels,
    BeatModel,
    Intervals,
    build_beat,
    label_beat,
    measure_beat,
    sample_intervals,
)
from qheart.data.synth.noise import add_noise
from qheart.data.synth.ranges import ABOVE, NORMAL_RANGES
from qheart.data.synth.realism import Realism, get_realism
from qheart.data.synth.rhythm import LEAD_IN_MS, PAC, PVC, Rhythm, make_rhythm
from qheart.data.synth.vcg import frontal_direction, render_waves, unit

DT_MS = 1000.0 / SAMPLE_RATE_HZ
PRE_MS = 400.0
"""A beat template starts this long before its QRS onset (room for the longest P + PR)."""
MAX_ATTEMPTS = 30
BARE_PLAN_ATTEMPTS = 10 * MAX_ATTEMPTS
"""A bare plan (rhythm and noise only) succeeds in about 1 draw of 5 at worst (fast sinus
tachycardia): 30 tries failed about once in 1,000 such subjects, so a few thousand ECGs could
stop the generator (seed 1, 2,000 ECGs did); 300 tries fail about once in 10^30."""


class SynthesisError(RuntimeError):
    """A plan that no draw could realise (should not happen; the plan is simplified first)."""


@dataclass
class Truth:
    """Ground truth of one synthetic ECG, all in ECG-QA vocabulary or milliseconds."""

    plan: F.Plan
    intervals: Intervals
    labels: BeatLabels
    n_beats: int
    n_premature: int
    findings: list[str] = field(default_factory=list)

    @property
    def features(self) -> dict[str, float | None]:
        return self.intervals.features()

    @property
    def feature_ranges(self) -> dict[str, str | None]:
        return {
            name: None if value is None else NORMAL_RANGES[name].label(value)
            for name, value in self.features.items()
        }

    @property
    def scp(self) -> list[str]:
        """The PTB-XL-style statements (rhythm, diagnostic and form) this ECG shows."""
        plan, labels = self.plan, self.labels
        out = [plan.rhythm]
        if plan.pr_class == ABOVE:
            out += [F.FIRST_DEGREE_AVB, F.PROLONGED_PR]
        if plan.conduction:
            out.append(plan.conduction)
        if plan.fascicular:
            out.append(plan.fascicular)
        if plan.mi_territory:
            out.append(F.mi_statement(plan.mi_territory))
        if labels.voltage == "lvh":
            out += [F.LVH, F.LVH_VOLTAGE]
        if labels.voltage == "low":
            out.append(F.LOW_VOLTAGE)
        if self.feature_ranges["qt corrected"] == ABOVE:
            out.append(F.LONG_QT)
        out += list(labels.lead_findings)
        if self.n_premature and plan.ectopy == "pvc":
            out.append(F.VPC)
        if self.n_premature and plan.ectopy == "pac":
            out.append(F.APC)
        return out

    @property
    def extrasystole(self) -> str | None:
        if not self.n_premature:
            return None
        return F.VES if self.plan.ectopy == "pvc" else F.SVES

    @property
    def stage(self) -> str | None:
        return F.STAGES[self.plan.mi_stage] if self.plan.mi_stage else None

    def all_findings(self) -> list[str]:
        """Every finding string (scp, axis, stage, extrasystole, noise), for the store's metadata."""
        out = [*self.scp, self.labels.axis]
        out += [s for s in (self.stage, self.extrasystole) if s]
        out += [n for n in F.NOISES if n in self.plan.noise]
        return out


def _simplified(plan: F.Plan) -> F.Plan:
    """The same subject without the optional lead findings (used when no draw realised them)."""
    return replace(plan, st_change=None, t_inversion=False, voltage="normal", axis=F.AXIS_NORMAL)


def realise(
    plan: F.Plan, rng: np.random.Generator, realism: Realism | str | None = None
) -> tuple[F.Plan, Rhythm, Intervals, BeatModel, BeatLabels]:
    """Draw rhythm, intervals and waves until the measured beat carries the plan unambiguously.

    About 5 % of plans combine findings no draw realises cleanly (e.g. voltage criteria with an
    extreme axis); they lose their optional findings after 30 tries. Labels always describe the
    ECG actually drawn.
    """
    realism = get_realism(realism)
    if realism.infarct_variants and plan.mi_stage == "old" and not plan.t_inversion:
        # T inversion often persists in the territory of an old infarct (v2 only: no draw in v1)
        plan = replace(plan, t_inversion=bool(rng.random() < 0.4))
    for attempt in range(2 * MAX_ATTEMPTS + BARE_PLAN_ATTEMPTS):
        if attempt == MAX_ATTEMPTS:
            plan = _simplified(plan)
        if attempt == 2 * MAX_ATTEMPTS:
            plan = F.Plan(rhythm=plan.rhythm, noise=plan.noise)
        rhythm = make_rhythm(plan, rng, realism)
        if rhythm is None:
            continue
        # v2: real PR segments rarely last under ~36 ms (v1 allowed 16)
        iv = sample_intervals(plan, float(rhythm.rr_ms().mean()), rng,
                              36.0 if realism.waves else 16.0, realism.real_interval_shape)
        if iv is None:
            continue
        model = build_beat(plan, iv, rng, realism)
        if model is None:
            continue
        labels = label_beat(plan, measure_beat(model), realism)
        if labels is not None:
            if realism.conduction_variants:
                plan = replace(plan, fascicular=F.fascicular_block(plan, labels.axis))
            return plan, rhythm, iv, model, labels
    raise SynthesisError(f"no realisation found for {plan}")


# ------------------------------------------------------------------------------- rendering


def render_leads(model: BeatModel, rhythm: Rhythm, plan: F.Plan, rng: np.random.Generator
                 ) -> np.ndarray:
    """(12, 5000) noise-free record: every beat placed at its onset, plus atrial waves."""
    length = int((PRE_MS + model.qt_ms + 120.0) / DT_MS)
    t_beat = -PRE_MS + DT_MS * np.arange(length)  # a beat's template starts PRE_MS before its QRS
    templates = {"sinus": model.conducted_leads(t_beat, model.p_wave)}
    if model.pac_p is not None:
        templates[PAC] = model.conducted_leads(t_beat, model.pac_p)
    if model.pvc:
        templates[PVC] = model.lead_matrix @ render_waves(t_beat, model.pvc)
    lead_in = int(LEAD_IN_MS / DT_MS) + length
    buffer = np.zeros((len(LEADS), lead_in + N_SAMPLES + length))
    breath_ms, phase = rng.uniform(3000, 5000), rng.uniform(0, 2 * np.pi)
    for onset, kind in zip(rhythm.onsets_ms, rhythm.kinds, strict=True):
        start = lead_in + round((onset - PRE_MS) / DT_MS)
        if start < 0 or start + length > buffer.shape[1]:
            continue
        scale = 1.0 + 0.04 * np.sin(2 * np.pi * onset / breath_ms + phase)  # breathing
        buffer[:, start : start + length] += scale * templates.get(kind, templates["sinus"])
    leads = buffer[:, lead_in : lead_in + N_SAMPLES]
    t_s = np.arange(N_SAMPLES) * DT_MS / 1000.0
    if plan.rhythm == F.ATRIAL_FIBRILLATION:
        leads = leads + model.lead_matrix @ _fibrillatory_waves(t_s, rng)
    if plan.rhythm == F.ATRIAL_FLUTTER and rhythm.flutter_cycle_ms:
        leads = leads + model.lead_matrix @ _flutter_waves(t_s, rhythm, rng)
    return leads


def _fibrillatory_waves(t_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Chaotic 4-9 Hz atrial activity, most visible in V1 and the inferior leads."""
    direction = unit(np.array([-0.3, 0.6, -0.8]) + rng.normal(0, 0.2, 3))
    wave = np.zeros_like(t_s)
    for _ in range(3):
        f = rng.uniform(4.0, 9.0)
        wobble = 0.3 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t_s + rng.uniform(0, 6.3))
        wave += rng.uniform(0.015, 0.04) * np.sin(2 * np.pi * f * t_s + wobble + rng.uniform(0, 6.3))
    return np.outer(direction, wave)


def _flutter_waves(t_s: np.ndarray, rhythm: Rhythm, rng: np.random.Generator) -> np.ndarray:
    """Sawtooth F waves pointing superiorly: negative sawtooth in II, III, aVF."""
    cycle_s = (rhythm.flutter_cycle_ms or 200.0) / 1000.0
    phase = 2 * np.pi * (t_s - rhythm.flutter_phase_ms / 1000.0) / cycle_s
    saw = sum((-1) ** (k + 1) * np.sin(k * phase) / k for k in range(1, 6)) * (2 / np.pi)
    direction = frontal_direction(rng.uniform(-100, -80), z=0.3)
    return np.outer(direction * rng.uniform(0.12, 0.2), saw)


@dataclass
class Simulated:
    signal: np.ndarray  # (12, 5000) float32, noisy
    clean: np.ndarray  # (12, 5000) float32, noise-free
    truth: Truth
    rhythm: Rhythm
    model: BeatModel


def simulate_plan(plan: F.Plan, rng: np.random.Generator,
                  realism: Realism | str | None = None) -> Simulated:
    """Realise a given plan (tests force plans through here); realism: a `REALISM` preset name
    (None: the default, `realism.DEFAULT_REALISM`) or settings."""
    realism = get_realism(realism)
    plan, rhythm, iv, model, labels = realise(plan, rng, realism)
    clean = render_leads(model, rhythm, plan, rng)  # (12, 5000)
    noisy = add_noise(clean, plan.noise, rng, background=realism.noise,
                      wander_ptp_mv=realism.wander_ptp_mv)
    inside = (rhythm.onsets_ms >= 0) & (rhythm.onsets_ms < N_SAMPLES * DT_MS)
    kinds = np.array(rhythm.kinds)[inside]
    n_premature = int(np.isin(kinds, [PVC, PAC]).sum())
    truth = Truth(plan, iv, labels, int(inside.sum()), n_premature)
    truth.findings = truth.all_findings()
    return Simulated(noisy.astype(np.float32), clean.astype(np.float32), truth, rhythm, model)


def simulate(rng: np.random.Generator, realism: Realism | str | None = None) -> Simulated:
    """A random subject: findings drawn with their prevalences, then realised."""
    realism = get_realism(realism)
    plan = F.sample_plan(rng, F.NoiseLeadSampler(LEADS), realism.conduction_variants)
    return simulate_plan(plan, rng, realism)
