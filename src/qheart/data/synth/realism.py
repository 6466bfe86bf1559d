"""How close to a real recording a synthetic ECG is drawn: the generator's realism settings.

`qheart data compare` against the 100 real PTB-XL records showed where the first generator
("v1") was off: T waves half the real height, R waves too small in II and V3-V4 (late precordial
transition), a deep S in II, a too leftward mean axis, a flat ST segment, a white-noise floor 2-3×
the real one, no baseline wander at all, and almost no beat-to-beat variability. "v2"
corrects those and adds what a real population varies in and a model must learn to ignore:

- heart orientation (rotation of the whole heart vector) and chest-electrode placement (each
  precordial lead vector perturbed), plus body-habitus gain: the dipole-to-lead projection
  differs per subject, so a territory's leads are not the same fixed combination every time;
- QRS morphology diversity: notched/fragmented QRS (an extra small wave inside the complex);
- infarct patterns beyond the deep QS: smaller q waves with poor R progression and, in old
  infarcts, T inversion that persists in the territory;
- baseline wander (breathing and electrode drift) in every lead at real amplitudes, a real
  noise floor, and heart-rate variability.

"v3" (the default) adds the conduction disturbances real PTB-XL has most after the complete
bundle branch blocks: incomplete RBBB and the left anterior/posterior fascicular blocks.

"v4" gives sinus rhythm the variability a resting adult has. v2/v3 kept a regular sinus rhythm's
RR within 60 ms peak to peak (RR SD about 1.5 % of the RR), where the real records measure a
median RR SD of 3.7 % (`qheart.models.rhythm_features`, 100 PTB-XL records). v4 lets it breathe
up to the textbook limit of sinus arrhythmia (a PP variation over 120 ms), and draws sinus
arrhythmia from 160 ms up, so the two stay apart by a margin as other labels are.

"v5" is v3 plus the ST takeoff normal hearts have in V1-V3. The realism report on the demo's
store against the 100 real records: ST at J+60 ms in V2 has a median of 0.012 mV on v3's
synthetic ECGs and 0.131 mV on the real ones (V3 0.019 against 0.090; both measured on 99% of
ECGs). v3 keeps every unlabelled lead within 0.065 mV of the baseline, so a real normal ECG's V2
looks like ST elevation to an encoder trained on it. v5 gives every subject an ST plateau toward
V1-V3, and counts ST elevation in V2-V3 from 0.2 mV, as the Fourth Universal Definition of
Myocardial Infarction does for men over 40 (elsewhere 0.1 mV, as before).

"v7" is v6 plus what a single dipole cannot give: the QRS of the mid-precordial leads at real
size, and intervals where real records have them. Against the 100 real records v6's QRS in V2-V4
was small (median S in V2 0.54 against 1.45 mV, R in V3 0.51 against 0.80), while its T waves
there were already as large as the real ones or larger, so no projection of one heart vector fits
both: V2-V4 sit close to the anterior wall, whose depolarisation the dipole model under-represents
(the proximity effect). v7 gives each subject QRS-only gains on the chest leads
(`chest_qrs_gain`), which leave P, ST and T as they were. Its normal QRS durations lean short
and its normal QTc long within their unlabelled ranges (real medians 84 ms and 422 ms against
v6's 94 and 406).

Labels are still measured on the noise-free beat after all of this (`morphology.measure_beat`),
so they follow the signal whatever the settings. "v1" reproduces the first generator exactly
(same draws from the same seed): benchmarks compare the two without checking out old code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qheart.data.synth.noise import BACKGROUND_WANDER_PTP_MV


@dataclass(frozen=True)
class Realism:
    """Switches and spreads of the realism corrections (all off = the v1 generator)."""

    name: str
    geometry: bool = False
    """Per-subject heart orientation, chest-electrode placement and body gain."""
    rotation_deg: float = 10.0
    """SD of the heart's rotation about the horizontal (X) and vertical (Y) axes."""
    electrode_sd: float = 0.12
    """Relative SD of each chest lead vector's random perturbation (placement)."""
    gain_sd: float = 0.15
    """SD of the log of the subject's overall voltage gain (thorax size, fat)."""
    waves: bool = False
    """Real-sized waves: taller T, larger and more inferior R, earlier precordial transition,
    smaller terminal S in II, upsloping ST (longer T upstroke)."""
    notch_prob: float = 0.0
    """Share of subjects whose QRS carries an extra small notch/fragmentation wave."""
    infarct_variants: bool = False
    """Small-q / poor-R-progression infarcts and persisting T inversion in old infarcts."""
    noise: bool = False
    """Background baseline wander in every lead and a real (lower) white-noise floor."""
    hrv: bool = False
    """Beat-to-beat variability of sinus rhythms (still regular: peak-to-peak RR below
    `hrv_range_ms`)."""
    hrv_depth: tuple[float, float] = (0.005, 0.02)
    """With `hrv`: range of the breathing swing of a regular sinus rhythm's RR (share of the RR)."""
    hrv_jitter: float = 0.011
    """With `hrv`: SD of the beat-to-beat RR noise (share of the RR; without `hrv`: 0.008)."""
    hrv_range_ms: float = 60.0
    """With `hrv`: a regular sinus rhythm's largest peak-to-peak RR (longer draws are redrawn)."""
    arrhythmia_range_ms: float = 140.0
    """Sinus arrhythmia's smallest peak-to-peak RR (textbooks: a PP variation over 120 ms)."""
    normal_st_takeoff: tuple[float, float] | None = None
    """With a range (mV): every subject's ST plateau gets a component toward V1-V3 that lifts V2
    by a draw from the range, other leads staying unlabelled; ST elevation in V2-V3 then counts
    from `morphology.ST_YES_V2V3` (v5)."""
    wander_ptp_mv: tuple[float, float] = BACKGROUND_WANDER_PTP_MV
    """With `noise`: range of each lead's unlabelled background wander, peak to peak (mV). The
    100 real PTB-XL records wander about 3× more than v2-v5 (< 0.5 Hz SD in II: 0.052 against
    0.016 mV); labelled baseline drift is 0.4-1.2 mV."""
    chest_qrs_gain: tuple[float, float, float, float, float, float] | None = None
    """Median gains of the QRS alone in V1-V6 (v7), each subject's drawn around them with
    `chest_qrs_gain_sd`: the proximity of the chest electrodes to the anterior wall."""
    chest_qrs_gain_sd: float = 0.15
    """SD of the log of each subject's chest QRS gain, per lead."""
    real_chest_shape: bool = False
    """Smaller septal forces, a more posterior main QRS force and a less anterior T (v7): real
    V1-V2 have a smaller r and deeper S than v6's, and real T waves are larger in I and V6 and
    smaller in V1 and V3-V4."""
    real_interval_shape: bool = False
    """Normal QRS durations drawn leaning short, normal QTc leaning long, within the same
    unlabelled ranges (v7): where the real records' medians are."""
    conduction_variants: bool = False
    """Incomplete RBBB (rSr' in V1, QRS within range) and the fascicular blocks LAFB/LPFB, read
    from the measured axis: with the complete blocks these are most of real PTB-XL's conduction
    disturbances, which v2's encoder scored below chance on the real records."""


REALISM: dict[str, Realism] = {
    "v1": Realism("v1"),
    "v2": Realism("v2", geometry=True, waves=True, notch_prob=0.3, infarct_variants=True,
                  noise=True, hrv=True),
    "v3": Realism("v3", geometry=True, waves=True, notch_prob=0.3, infarct_variants=True,
                  noise=True, hrv=True, conduction_variants=True),
    "v4": Realism("v4", geometry=True, waves=True, notch_prob=0.3, infarct_variants=True,
                  noise=True, hrv=True, conduction_variants=True, hrv_depth=(0.01, 0.06),
                  hrv_jitter=0.02, hrv_range_ms=120.0, arrhythmia_range_ms=160.0),
    "v5": Realism("v5", geometry=True, waves=True, notch_prob=0.3, infarct_variants=True,
                  noise=True, hrv=True, conduction_variants=True, normal_st_takeoff=(0.06, 0.2)),
    "v6": Realism("v6", geometry=True, waves=True, notch_prob=0.3, infarct_variants=True,
                  noise=True, hrv=True, conduction_variants=True, normal_st_takeoff=(0.06, 0.2),
                  wander_ptp_mv=(0.08, 0.38)),
    "v7": Realism("v7", geometry=True, waves=True, notch_prob=0.3, infarct_variants=True,
                  noise=True, hrv=True, conduction_variants=True, normal_st_takeoff=(0.06, 0.2),
                  wander_ptp_mv=(0.08, 0.38), chest_qrs_gain=(1.0, 2.0, 2.1, 1.4, 1.15, 1.1),
                  real_chest_shape=True, real_interval_shape=True),
}
DEFAULT_REALISM = "v3"


def get_realism(name: str | Realism | None) -> Realism:
    """A preset by name (None: the default); a Realism passes through."""
    if isinstance(name, Realism):
        return name
    key = DEFAULT_REALISM if name is None else name
    if key not in REALISM:
        raise ValueError(f"unknown generator realism {key!r}; known: {sorted(REALISM)}")
    return REALISM[key]


def rotation(x_deg: float, y_deg: float, z_deg: float) -> np.ndarray:
    """(3, 3) rotation about X, then Y, then Z (degrees)."""
    a, b, c = np.deg2rad([x_deg, y_deg, z_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def subject_lead_matrix(realism: Realism, rng: np.random.Generator) -> np.ndarray:
    """(12, 3) this subject's projection from heart vector to leads.

    v1: Dower's matrix for everyone (no draws). With `geometry`: the heart is rotated (a lead
    reads row · (R v) = (row R) · v), every chest lead vector is perturbed on its own (electrode
    placement: size and direction), limb leads get a small gain, and the whole ECG a body gain.
    III, aVR, aVL and aVF are derived from I and II afterwards, so Einthoven and Goldberger hold.
    """
    from qheart.data.synth.vcg import LEAD_MATRIX, DOWER_8x3, _twelve_lead_matrix

    if not realism.geometry:
        return LEAD_MATRIX
    spin = rng.normal(0.0, realism.rotation_deg, 2)
    dower = DOWER_8x3 @ rotation(float(spin[0]), float(spin[1]), 0.0)
    size = np.linalg.norm(dower[2:], axis=1, keepdims=True)
    chest = dower[2:] * np.exp(rng.normal(0.0, realism.electrode_sd, (6, 1)))
    chest = chest + rng.normal(0.0, realism.electrode_sd, (6, 3)) * size
    limb = dower[:2] * np.exp(rng.normal(0.0, 0.05, (2, 1)))
    gain = float(np.exp(rng.normal(0.0, realism.gain_sd)))
    return gain * _twelve_lead_matrix(np.concatenate([limb, chest]))


def subject_qrs_gain(realism: Realism, rng: np.random.Generator) -> np.ndarray | None:
    """(12,) this subject's QRS-only gain per lead (limb leads 1), or None without
    `chest_qrs_gain` (no draw, so earlier presets keep their draws)."""
    if realism.chest_qrs_gain is None:
        return None
    chest = np.asarray(realism.chest_qrs_gain) * np.exp(rng.normal(0.0, realism.chest_qrs_gain_sd, 6))
    return np.concatenate([np.ones(6), chest])
