"""Recording augmentations: each transform does what it says, and a step's draws are replayable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qheart.data.augment import AugmentConfig, augment_batch, augment_rng
from qheart.training.pretrain_config import PretrainConfig

FS = 500


def _ecgs(batch: int = 4, n: int = 2500) -> np.ndarray:
    """Spiky 'beats' every 0.8 s on a 1 mV scale plus a slow T-like bump, per lead scaled."""
    t = np.arange(n) / FS
    beat = np.exp(-0.5 * ((t % 0.8 - 0.2) / 0.01) ** 2) + 0.3 * np.exp(-0.5 * ((t % 0.8 - 0.5) / 0.05) ** 2)
    leads = np.linspace(0.5, 1.5, 12)[:, None] * beat
    return np.repeat(leads[None], batch, axis=0).astype(np.float32)  # (B, 12, n)


def _only(**fields) -> AugmentConfig:
    return AugmentConfig(**fields)


def test_off_is_the_identity_and_costs_no_copy():
    x = _ecgs()
    assert augment_batch(x, AugmentConfig(), augment_rng(0, 0)) is x
    assert not AugmentConfig.from_name("off").enabled


def test_same_seed_and_step_replay_the_same_augmentation_and_other_steps_differ():
    x = _ecgs()
    config = AugmentConfig.from_name("recording")
    a = augment_batch(x, config, augment_rng(3, 17))
    b = augment_batch(x, config, augment_rng(3, 17))
    c = augment_batch(x, config, augment_rng(3, 18))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.dtype == np.float32 and a.shape == x.shape
    np.testing.assert_array_equal(x, _ecgs())  # the input is left untouched


def test_amplitude_scales_each_lead_by_one_gain_over_time():
    x = _ecgs()
    y = augment_batch(x, _only(amplitude_prob=1.0, amplitude_sd=0.3), augment_rng(0, 1))
    ratio = y / x
    gains = ratio[..., 100:101]  # a sample on a beat (x ≈ 1 there)
    visible = x > 0.01
    np.testing.assert_allclose(ratio[visible], np.broadcast_to(gains, x.shape)[visible], rtol=1e-4)
    assert gains.std() > 0.01  # one gain per lead, not the same for every lead and ECG
    ratio = gains
    assert np.all((ratio > 0.2) & (ratio < 5.0))


def test_wander_adds_only_slow_content_within_its_amplitude():
    x = _ecgs()
    cfg = _only(wander_prob=1.0, wander_mv=0.2)
    added = augment_batch(x, cfg, augment_rng(0, 2)).astype(np.float64) - x
    spectrum = np.abs(np.fft.rfft(added - added.mean(axis=-1, keepdims=True), axis=-1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / FS)
    assert spectrum[..., freqs > 2.0].sum() < 0.05 * spectrum.sum()
    assert np.abs(added).max() <= 3 * cfg.wander_mv + 1e-6  # offset ≤ 2×, wander ≤ 1×
    assert np.ptp(added, axis=-1).max() > 0.01


def test_noise_adds_broadband_noise_below_its_level():
    x = _ecgs()
    added = augment_batch(x, _only(noise_prob=1.0, noise_mv=0.05), augment_rng(0, 3)) - x
    assert 0.001 < added.std() < 0.05 + 0.025


def test_time_warp_moves_beats_by_at_most_the_warp():
    x = _ecgs(batch=8)
    y = augment_batch(x, _only(warp_prob=1.0, max_warp=0.05), augment_rng(0, 4))
    peaks_x = np.flatnonzero(np.diff(np.sign(np.diff(x[0, 0]))) < 0)
    peaks_x = peaks_x[x[0, 0, peaks_x + 1] > 0.8 * x[0, 0].max()]
    moved = []
    for b in range(len(y)):
        lead = y[b, 0]
        peaks = np.flatnonzero(np.diff(np.sign(np.diff(lead))) < 0)
        peaks = peaks[lead[peaks + 1] > 0.8 * lead.max()]
        spacing = np.diff(peaks).mean() / np.diff(peaks_x).mean()
        assert 0.94 < spacing < 1.06
        moved.append(spacing)
    assert np.ptp(moved) > 0.005  # different ECGs, different warps


def test_low_or_high_pass_filter_changes_the_spectrum():
    x = _ecgs(batch=16)
    t = np.arange(x.shape[-1]) / FS
    # slow wander for a high-pass to take out, 80 Hz content for a low-pass
    x = (x + 0.5 * np.sin(2 * np.pi * 0.3 * t) + 0.05 * np.sin(2 * np.pi * 80 * t)).astype(np.float32)
    y = augment_batch(x, _only(filter_prob=1.0), augment_rng(0, 5))
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / FS)
    power = lambda s, band: (np.abs(np.fft.rfft(s, axis=-1)) ** 2)[..., band].sum(axis=(-1, -2))  # noqa: E731
    high = freqs > 60
    low = freqs < 0.5
    lowpassed = power(y, high) < 0.8 * power(x, high)
    highpassed = power(y, low) < 0.8 * power(x, low)
    assert lowpassed.any() and highpassed.any() and np.all(lowpassed | highpassed)


def test_lead_dropout_zeroes_whole_leads_but_never_all():
    x = _ecgs(batch=64)
    y = augment_batch(x, _only(lead_dropout=0.9), augment_rng(0, 6))
    zero = np.all(y == 0, axis=-1)  # (B, 12)
    assert zero.mean() > 0.7 and not zero.all(axis=1).any()
    np.testing.assert_array_equal(y[~zero], x[~zero])


@pytest.mark.parametrize("bad", [{"noise_prob": 1.5}, {"max_warp": 0.3}, {"wander_mv": -1.0}])
def test_invalid_settings_are_refused(bad):
    with pytest.raises(ValueError):
        AugmentConfig(**bad)


def _noise_left(preset: str, noisy: np.ndarray, clean: np.ndarray, step: int) -> np.ndarray:
    """What an augmentation makes of the noise alone: every transform is linear given its draws,
    and the same (seed, step) draws the same, so the difference of the two outputs is it."""
    config = AugmentConfig.from_name(preset)
    return (augment_batch(noisy, config, augment_rng(0, step)).astype(np.float64)
            - augment_batch(clean, config, augment_rng(0, step)))[0]


def test_keep_noise_leaves_labelled_noise_in_place_where_recording_erases_it():
    from qheart.data.synth.noise import baseline_drift, static_noise

    rng = np.random.default_rng(0)
    clean = _ecgs(batch=1, n=5000)
    noise = np.zeros_like(clean, dtype=np.float64)
    noise[0, 3], noise[0, 5] = static_noise(rng), baseline_drift(rng)
    noisy = (clean + noise).astype(np.float32)
    freqs = np.fft.rfftfreq(5000, 1 / FS)

    def band_power(x: np.ndarray, low: float, high: float) -> float:
        return float((np.abs(np.fft.rfft(x)) ** 2)[(freqs > low) & (freqs < high)].sum())

    def kept(preset: str) -> tuple[float, float]:
        static, drift = [], []
        for step in range(60):
            left = _noise_left(preset, noisy, clean, step)
            static.append(band_power(left[3], 40, 250) / band_power(noise[0, 3], 40, 250))
            drift.append(band_power(left[5], 0, 1) / band_power(noise[0, 5], 0, 1))
        return min(static), min(drift)

    static_kept, drift_kept = kept("keep-noise")
    assert static_kept > 0.25 and drift_kept > 0.25  # only gains and warps touch them
    static_kept, drift_kept = kept("recording")
    assert static_kept < 0.1 and drift_kept < 0.25  # a low-pass and a high-pass erase them


def test_cpu_small_pretraining_turns_the_recording_augmentations_on_and_round_trips():
    config = PretrainConfig.from_name("cpu-small")
    assert config.augment.enabled and config.augment == AugmentConfig.from_name("recording")
    again = PretrainConfig.from_dict(config.to_dict())
    assert again.augment == config.augment
    off = PretrainConfig.from_name("cpu-small", augment="off")
    assert not off.augment.enabled
    assert not PretrainConfig().augment.enabled  # the plain default stays off


def test_training_signals_are_augmented_and_replayable_per_step():
    from qheart.training.pretrain_data import training_signals

    class Data:
        def signals(self, indices):
            return _ecgs(batch=len(indices), n=5000)

    config = PretrainConfig.from_name("cpu-small")
    first = training_signals(Data(), np.arange(4), config, 7, torch.Generator().manual_seed(1))
    again = training_signals(Data(), np.arange(4), config, 7, torch.Generator().manual_seed(1))
    assert first.shape == (4, 12, config.crop_samples)
    np.testing.assert_array_equal(first, again)
    plain = training_signals(Data(), np.arange(4), PretrainConfig.from_name("cpu-small", augment="off"),
                             7, torch.Generator().manual_seed(1))
    assert not np.allclose(first, plain)
