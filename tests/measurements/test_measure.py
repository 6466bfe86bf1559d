"""measure_ecg against the synthetic ground truth (exact wave boundaries), and its refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qheart.data.leads import LEADS
from qheart.data.synth import findings as F
from qheart.data.synth.ecg import Simulated, simulate_plan
from qheart.data.synth.findings import axis_label
from qheart.measurements import (
    Measurements,
    asked_measurement_text,
    feature_readings,
    measure_ecg,
    measurement_text,
)
from qheart.measurements.reference import NORMAL_RANGES

TOLERANCE_MS = {"qrs duration": 12, "pr interval": 14, "qt interval": 16, "p duration": 20}
FIELD = {"qrs duration": "qrs_ms", "pr interval": "pr_ms", "qt interval": "qt_ms",
         "p duration": "p_duration_ms"}  # fmt: skip


def make(seed: int, **plan_fields) -> Simulated:
    return simulate_plan(F.Plan(**plan_fields), np.random.default_rng([31_337, seed]))


@pytest.fixture(scope="module")
def sinus_cases() -> list[tuple[Simulated, Measurements]]:
    """Sinus subjects across the PR/QRS/QT classes, with the generator's noise floor only."""
    plans = [
        {}, {"av_block": True, "pr_class": "above the normal range"},
        {"conduction": F.LBBB, "qrs_class": "above the normal range"},
        {"conduction": F.RBBB, "qrs_class": "above the normal range"},
        {"qt_class": "above the normal range"}, {"rhythm": F.SINUS_BRADYCARDIA},
        {"rhythm": F.SINUS_TACHYCARDIA}, {"p_class": "above the normal range"},
    ]  # fmt: skip
    out = []
    for seed, plan in enumerate(plans):
        sim = make(seed, **plan)
        out.append((sim, measure_ecg(sim.signal)))
    return out


@pytest.mark.parametrize("feature", list(TOLERANCE_MS))
def test_intervals_match_the_ground_truth(sinus_cases, feature):
    for sim, m in sinus_cases:
        truth = sim.truth.features[feature]
        value = getattr(m, FIELD[feature])
        f = sim.truth.features
        p_on_t = min(sim.rhythm.rr_ms()) - f["qt interval"] - f["pr interval"] < 20
        if feature in ("pr interval", "p duration") and p_on_t and math.isnan(value):
            # The P wave starts on the previous T: refusing is right, with the reason...
            assert "P onset" in m.reasons[FIELD[feature]]
            continue  # ...and a value, when one is given, must still be right (below)
        assert not math.isnan(value), (feature, m.reasons)
        assert abs(value - truth) <= TOLERANCE_MS[feature], (feature, value, truth)


def test_labels_from_the_reference_table_agree_with_the_synthetic_labels(sinus_cases):
    for sim, m in sinus_cases:
        for feature in ("pr interval", "qrs duration", "qt corrected", "rr interval"):
            label = m.range_label(feature)
            assert label is None or label == sim.truth.feature_ranges[feature], feature


def test_rate_and_qtc(sinus_cases):
    for sim, m in sinus_cases:
        assert abs(m.rr_mean_ms - sim.truth.features["rr interval"]) < 10
        assert m.heart_rate_bpm == pytest.approx(60_000 / m.rr_mean_ms)
        assert m.qtc_bazett_ms == pytest.approx(m.qt_ms / math.sqrt(m.rr_mean_ms / 1000))
        assert m.qtc_fridericia_ms == pytest.approx(m.qt_ms / (m.rr_mean_ms / 1000) ** (1 / 3))


@pytest.mark.parametrize("axis", F.AXES)
def test_axis_has_the_labelled_class(axis):
    for seed in range(2):
        sim = make(seed, axis=axis)
        m = measure_ecg(sim.signal)
        assert axis_label(m.axis_deg) == sim.truth.labels.axis


def test_axis_sign_follows_leads_i_and_avf():
    sim = make(0)
    m = measure_ecg(sim.signal)
    assert -30 <= m.axis_deg <= 90
    # Inverting lead I (arm electrodes swapped: I ↔ −I, aVF unchanged in sign) mirrors the axis
    # about the vertical; inverting every limb lead turns it by 180°.
    flipped = sim.signal.copy()
    flipped[:6] *= -1
    m2 = measure_ecg(flipped)
    assert abs(((m2.axis_deg - m.axis_deg) % 360) - 180) < 5


def test_st_and_t_polarity_follow_the_lead_labels():
    sim = make(0, st_change="elevation")
    m = measure_ecg(sim.signal)
    up = set(sim.truth.labels.lead_findings[F.ST_ELEVATION])
    assert up
    for lead in m.leads:
        if lead.lead in up:
            assert lead.st_mv > 0.05, lead
    sim = make(1, t_inversion=True)
    m = measure_ecg(sim.signal)
    inverted = set(sim.truth.labels.lead_findings[F.T_INVERSION])
    for lead in m.leads:
        if lead.lead in inverted:
            assert lead.t_polarity in ("negative", "biphasic"), lead
            assert lead.t_mv < -0.05
        elif lead.lead != "aVR":
            assert lead.t_polarity != "negative", lead


@pytest.mark.parametrize("seed", range(3))
def test_atrial_fibrillation_gives_rate_but_no_p_wave(seed):
    sim = make(seed, rhythm=F.ATRIAL_FIBRILLATION)
    m = measure_ecg(sim.signal)
    # The truth counts a beat cut by the record's edge; a 4 % tolerance leaves room for it.
    assert abs(m.rr_mean_ms / sim.truth.features["rr interval"] - 1) < 0.04
    assert m.rr_sd_ms > 60  # irregularly irregular
    assert math.isnan(m.pr_ms) and "P" in m.reasons["pr_ms"]
    assert not math.isnan(m.qrs_ms)


def test_flat_and_noise_only_leads_are_nan_with_a_reason():
    sim = make(2)
    signal = sim.signal.copy()
    signal[LEADS.index("V3")] = 0.0
    signal[LEADS.index("V5")] = np.random.default_rng(0).normal(0, 0.3, signal.shape[1])
    m = measure_ecg(signal)
    v3, v5 = m.leads[LEADS.index("V3")], m.leads[LEADS.index("V5")]
    assert v3.quality_label == "flat" and math.isnan(v3.st_mv) and "flat" in v3.reason
    assert v5.quality_label == "noisy" and math.isnan(v5.st_mv) and v5.reason
    assert abs(m.qrs_ms - sim.truth.features["qrs duration"]) <= 12  # the other leads carry on


def test_noise_only_record_is_all_nan_with_reasons():
    noise = np.random.default_rng(1).normal(0, 0.2, (12, 5000)).astype(np.float32)
    m = measure_ecg(noise)
    for name in ("heart_rate_bpm", "qrs_ms", "qt_ms", "pr_ms", "axis_deg"):
        assert math.isnan(getattr(m, name)) and m.reasons[name]
    assert "heart rate not measured" in measurement_text(m)
    flat = measure_ecg(np.zeros((12, 5000), np.float32))
    assert math.isnan(flat.heart_rate_bpm) and flat.reasons["heart_rate_bpm"]
    assert all(lead.quality_label == "flat" for lead in flat.leads)


def test_unreadable_beat_gives_nan_not_a_guess():
    """Beats whose T waves never return to baseline before the next beat (T end unmeasurable)."""
    sim = make(3)
    signal = sim.signal.copy()
    t = np.arange(signal.shape[1]) / 500.0
    signal += 0.6 * np.sin(2 * np.pi * 4.0 * t)[None, :]  # a 4 Hz wave riding on every lead
    m = measure_ecg(signal)
    for name in ("qt_ms", "pr_ms"):
        value = getattr(m, name)
        truth = sim.truth.features["qt interval" if name == "qt_ms" else "pr interval"]
        assert math.isnan(value) or abs(value - truth) <= 20, (name, value, truth, m.reasons)


def test_other_sample_rates_are_resampled():
    from scipy.signal import resample_poly

    sim = make(0)
    m = measure_ecg(sim.signal)
    m250 = measure_ecg(resample_poly(sim.signal, 1, 2, axis=-1), sample_rate=250.0)
    assert abs(m250.qrs_ms - m.qrs_ms) <= 10 and abs(m250.rr_mean_ms - m.rr_mean_ms) < 5
    with pytest.raises(ValueError, match="12"):
        measure_ecg(np.zeros((8, 5000)))


def test_block_groups_features_under_ecg_qa_range_labels():
    """Every feature is spelled as ECG-QA's answers spell it, under the label its value gets, so
    a question about it is answered by a span of the block."""
    m = Measurements(heart_rate_bpm=150.0, rr_mean_ms=400.0, p_duration_ms=math.nan, pr_ms=150.0,
                     qrs_ms=128.0, qt_ms=300.0, qtc_bazett_ms=474.0, axis_deg=-45.0)
    text = measurement_text(m)
    assert text == ("Measured: heart rate 150 bpm; axis -45° (left axis deviation); rr interval "
                    "400 ms and qt interval 300 ms below the normal range; pr interval 150 ms "
                    "within the normal range; qrs duration 128 ms and qt corrected 474 ms above "
                    "the normal range; p duration not measured.")
    for angle in (-120.0, -45.0, 0.0, 120.0):  # the axis in the wording of the synthetic labels
        assert f"({axis_label(angle)})" in measurement_text(Measurements(axis_deg=angle))
    for feature in NORMAL_RANGES:
        label = m.range_label(feature) or "not measured"
        assert any(feature in part and part.endswith(label)
                   for part in text.rstrip(".").split("; ")), feature


def test_to_dict_is_json_safe_and_text_is_short(sinus_cases):
    sim, m = sinus_cases[0]
    d = json.loads(json.dumps(m.to_dict(), allow_nan=False))
    assert d["qrs_ms"] == pytest.approx(m.qrs_ms, abs=0.06) and len(d["leads"]) == 12
    assert d["ranges"]["qrs duration"] == m.range_label("qrs duration")
    af = measure_ecg(make(0, rhythm=F.ATRIAL_FIBRILLATION).signal)
    d_af = json.loads(json.dumps(af.to_dict(), allow_nan=False))
    assert d_af["pr_ms"] is None and d_af["reasons"]["pr_ms"]
    text = measurement_text(m)
    assert text == measurement_text(measure_ecg(sim.signal))  # deterministic
    assert len(text.split()) <= 45 and len(text) <= 260
    label = NORMAL_RANGES["qrs duration"].label(m.qrs_ms)
    group = next(part for part in text.rstrip(".").split("; ") if part.endswith(label))
    assert f"qrs duration {m.qrs_ms:.0f} ms" in group
    assert f"{m.axis_deg:+.0f}°" in text


def test_asked_line_says_only_what_the_question_names():
    """Features named → their values and ranges; a range named → the features in it (or none);
    neither → no line. Readings survive a JSON round trip (they are what benchmarks cache)."""
    m = Measurements(rr_mean_ms=400.0, p_duration_ms=math.nan, pr_ms=150.0, qrs_ms=128.0,
                     qt_ms=300.0, qtc_bazett_ms=474.0)
    readings = json.loads(json.dumps(feature_readings(m)))
    ask = lambda q: asked_measurement_text(readings, q)  # noqa: E731
    assert ask("Is the qt interval of this ECG above the normal range?") == \
        "Measured: qt interval 300 ms below the normal range."
    # "qt corrected" is not read as "qt interval"; text order is kept
    assert ask("Is the qt corrected or the qrs duration of this ECG in range?") == \
        "Measured: qt corrected 474 ms above the normal range; qrs duration 128 ms above the normal range."
    assert ask("What range is the p duration of this ECG in?") == "Measured: p duration not measured."
    assert ask("What numeric features of this ECG are above the normal range?") == \
        "Measured: qrs duration and qt corrected above the normal range; p duration not measured."
    normal = feature_readings(Measurements(rr_mean_ms=800.0, p_duration_ms=100.0, pr_ms=160.0,
                                           qrs_ms=90.0, qt_ms=400.0, qtc_bazett_ms=420.0))
    assert asked_measurement_text(normal, "Which measurements of this ECG are below the normal "
                                          "range?") == \
        "Measured: no numeric feature below the normal range."
    assert ask("Does this ECG show atrial fibrillation?") is None
    assert ask("Is the qrs durations normal?") is None  # whole words only
