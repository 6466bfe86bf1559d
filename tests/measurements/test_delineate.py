"""Wave boundaries on median beats whose TP segment is off the PR level, as on real ECGs."""

from __future__ import annotations

import numpy as np
import pytest

from qheart.measurements.delineate import DelineationConfig, find_p, find_t

FS_MS = 2.0  # ms per sample at 500 Hz
CONFIG = DelineationConfig()
WEIGHTS, NOISE = np.ones(12), np.zeros(12)
DIRECTION = np.linspace(1.0, 0.2, 12) / np.linalg.norm(np.linspace(1.0, 0.2, 12))


def beat_with_t(offset_share: float) -> tuple[np.ndarray, int]:
    """(12, 600) PR-centred beat: QRS ending at sample 100, a Gaussian T (peak 250, σ 20
    samples, so it ends at 300 by the generator's 2.5σ), and from J on a constant offset of
    `offset_share` × the T peak in another direction (the TP segment off the PR level)."""
    t = np.arange(600.0)
    wave = np.exp(-0.5 * ((t - 250.0) / 20.0) ** 2) * 0.4
    offset = np.where(t > 100, offset_share * 0.4, 0.0)
    other = np.roll(DIRECTION, 6)
    return np.outer(DIRECTION, wave) + np.outer(other / np.linalg.norm(other), offset), 300


def test_t_end_on_an_offset_tp_segment_comes_from_the_tangent():
    beat, true_end = beat_with_t(0.12)
    _, end, why = find_t(beat, WEIGHTS, NOISE, qrs_off=100, stop=560, config=CONFIG)
    assert why is None
    # the tangent meets the level at 2σ past the peak: 0.5σ (20 ms) before the Gaussian's 2.5σ
    assert abs(end - true_end) * FS_MS <= 25.0, end


def test_t_end_that_returns_to_the_pr_level_keeps_the_threshold_reading():
    beat, true_end = beat_with_t(0.0)
    _, end, why = find_t(beat, WEIGHTS, NOISE, qrs_off=100, stop=560, config=CONFIG)
    assert why is None and abs(end - true_end) * FS_MS <= 10.0, end


def beat_with_p(level_share: float) -> tuple[np.ndarray, int, int]:
    """(12, 400) beat: QRS onset at 350, a Gaussian P (peak 260, σ 12 samples: onset at 230 by
    2.5σ) on a TP segment at `level_share` × the P height from sample 0 to the P."""
    t = np.arange(400.0)
    p = 0.15 * np.exp(-0.5 * ((t - 260.0) / 12.0) ** 2)
    level = np.where(t < 260, level_share * 0.15, 0.0)
    other = np.roll(DIRECTION, 6)
    beat = np.outer(DIRECTION, p) + np.outer(other / np.linalg.norm(other), level)
    return beat, 350, 230


def test_p_onset_on_an_offset_tp_segment_comes_from_the_tangent():
    beat, qrs_on, true_on = beat_with_p(0.08)
    on, _, _, why = find_p(beat, WEIGHTS, NOISE, qrs_on, start=20, config=CONFIG)
    assert why is None and abs(on - true_on) * FS_MS <= 25.0, on


@pytest.mark.parametrize("share", [0.3, 0.6])
def test_p_rising_out_of_continuing_atrial_activity_has_no_onset(share):
    beat, qrs_on, _ = beat_with_p(share)
    on, _, _, why = find_p(beat, WEIGHTS, NOISE, qrs_on, start=20, config=CONFIG)
    assert on is None and "P onset" in why


def beat_with_tilted_pr(shift_share: float) -> tuple[np.ndarray, int, int]:
    """(12, 400) beat: a Gaussian P (peak 260, σ 12 samples: end at 290 by 2.5σ), then a PR
    segment held `shift_share` × the P height off the baseline in another direction (atrial
    repolarisation), returning to it over the 20 samples before the baseline window (the
    40-16 ms before the QRS onset at 350, where the median beat is centred)."""
    t = np.arange(400.0)
    p = 0.15 * np.exp(-0.5 * ((t - 260.0) / 12.0) ** 2)
    shift = np.clip((t - 262.0) / 14.0, 0, 1) * np.clip((342.0 - t) / 20.0, 0, 1)
    other = np.roll(DIRECTION, 6)
    beat = np.outer(DIRECTION, p) + np.outer(other / np.linalg.norm(other),
                                             shift_share * 0.15 * shift)
    return beat, 350, 290


def test_p_end_on_a_tilted_pr_segment_comes_from_the_tangent():
    beat, qrs_on, true_end = beat_with_tilted_pr(0.1)
    _, end, _, why = find_p(beat, WEIGHTS, NOISE, qrs_on, start=20, config=CONFIG)
    assert why is None and abs(end - true_end) * FS_MS <= 25.0, end


def test_p_end_on_a_flat_pr_segment_keeps_the_threshold_reading():
    beat, qrs_on, true_end = beat_with_tilted_pr(0.0)
    _, end, _, why = find_p(beat, WEIGHTS, NOISE, qrs_on, start=20, config=CONFIG)
    assert why is None and abs(end - true_end) * FS_MS <= 10.0, end


def test_p_onset_does_not_walk_back_over_a_wave_running_into_the_p():
    """A low wave (a U wave or the T's tail, 5% of the P's height) runs from sample 120 into the
    P's onset at 230: the threshold walk would cross it and start the P 200+ ms early (on 7 of
    the 100 real records, all normal: PR 260-330 ms)."""
    beat, qrs_on, true_on = beat_with_p(0.0)
    t = np.arange(beat.shape[1], dtype=float)
    tail = np.where((t > 120) & (t < 262), 0.05 * 0.15, 0.0)
    other = np.roll(DIRECTION, 3)
    beat = beat + np.outer(other / np.linalg.norm(other), tail)
    on, _, _, why = find_p(beat, WEIGHTS, NOISE, qrs_on, start=20, config=CONFIG)
    assert why is None and abs(on - true_on) * FS_MS <= 25.0, on


def test_atrial_waves_that_recur_before_the_qrs_give_no_p():
    """Flutter with fixed conduction: F waves every 200 ms, the same in every beat, so the
    beat-to-beat consistency check passes them; a sinus P comes once per beat (synthetic
    flutter with a PR: 7 of 60 before this check, 3 after)."""
    t = np.arange(400.0)
    waves = sum(0.15 * np.exp(-0.5 * ((t - c) / 6.0) ** 2) for c in (60.0, 160.0, 260.0))
    beat = np.outer(DIRECTION, waves)
    on, end, _, why = find_p(beat, WEIGHTS, NOISE, 350, start=20, config=CONFIG)
    assert on is None and end is None and "recur" in why
