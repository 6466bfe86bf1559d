"""Signal helpers: anti-aliased resampling, crop/pad policy, filters, validation errors."""

from __future__ import annotations

import numpy as np
import pytest

from qheart.data.errors import FlatLeadError, NonFiniteSignalError, TooShortError
from qheart.data.leads import LEADS
from qheart.data.signal import (
    FilterConfig,
    apply_filters,
    bandpass,
    crop_or_pad,
    remove_baseline,
    resample,
    resample_ratio,
    validate,
)

from .ecg_fixtures import synthetic_ecg


def _tone(freq: float, fs: float, seconds: float, amp: float = 1.0) -> np.ndarray:
    t = np.arange(round(fs * seconds)) / fs
    return amp * np.sin(2 * np.pi * freq * t)[None, :]  # (1, n)


def _peak_hz(x: np.ndarray, fs: float) -> float:
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(x.size, 1 / fs)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [(400, 500, (5, 4)), (1000, 500, (1, 2)), (250, 500, (2, 1)), (360, 500, (25, 18)),
     (500, 500, (1, 1)), (100, 500, (5, 1))],
)  # fmt: skip
def test_resample_ratio_is_the_exact_fraction(source, target, expected) -> None:
    assert resample_ratio(source, target) == expected


@pytest.mark.parametrize("source_hz", [250, 400, 1000, 360])
def test_resample_preserves_sinusoid_amplitude_and_frequency(source_hz: float) -> None:
    x = _tone(7.0, source_hz, 10.0, amp=1.5)
    y = resample(x, source_hz, 500)
    assert y.shape == (1, 5000)
    truth = _tone(7.0, 500, 10.0, amp=1.5)
    assert np.abs(y - truth)[:, 25:-25].max() < 5e-3  # amplitude and phase
    assert _peak_hz(y[0], 500) == pytest.approx(7.0, abs=0.1)


def test_downsampling_removes_content_above_new_nyquist() -> None:
    """A 300 Hz tone at 1000 Hz lies above 500 Hz's Nyquist (250 Hz): it must be filtered out,
    not folded to 200 Hz as plain decimation does."""
    x = _tone(300.0, 1000, 4.0)
    y = resample(x, 1000, 500)
    naive = x[:, ::2]
    assert np.sqrt(np.mean(naive[:, 50:-50] ** 2)) > 0.5  # aliasing is real without a filter
    assert np.sqrt(np.mean(y[:, 50:-50] ** 2)) < 0.01


def test_resample_keeps_baseline_offset_without_edge_ringing() -> None:
    ecg = synthetic_ecg(12, fs=400, seconds=10, seed=1, noise_mv=0.0) + 0.7  # offset baseline
    truth = synthetic_ecg(12, fs=500, seconds=10, seed=1, noise_mv=0.0) + 0.7
    y = resample(ecg, 400, 500)
    assert y.shape == truth.shape
    assert np.abs(y - truth).max() < 5e-3  # edges included
    np.testing.assert_array_equal(resample(np.full((2, 800), 2.0), 400, 500), 2.0)


def test_crop_keeps_the_first_ten_seconds() -> None:
    x = np.arange(7000, dtype=np.float64)[None, :].repeat(12, axis=0)
    y = crop_or_pad(x)
    assert y.shape == (12, 5000)
    np.testing.assert_array_equal(y, x[:, :5000])


def test_pad_continues_the_last_value_at_the_end() -> None:
    x = synthetic_ecg(12, seconds=3.0, seed=2)
    y = crop_or_pad(x)
    assert y.shape == (12, 5000)
    np.testing.assert_array_equal(y[:, :1500], x)
    np.testing.assert_array_equal(y[:, 1500:], np.repeat(x[:, -1:], 3500, axis=1))


def test_validate_accepts_a_normal_ecg() -> None:
    validate(synthetic_ecg(), "ok.dat")
    validate(synthetic_ecg(seconds=2.0), "two-seconds.dat")  # exactly the minimum


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_validate_rejects_non_finite_and_names_the_lead(bad: float) -> None:
    x = synthetic_ecg()
    x[LEADS.index("aVL"), 123] = bad
    with pytest.raises(NonFiniteSignalError, match=r"^rec\.dat: .*aVL"):
        validate(x, "rec.dat")


def test_validate_rejects_a_flat_lead_and_names_it() -> None:
    x = synthetic_ecg()
    x[LEADS.index("V3")] = 0.25
    with pytest.raises(FlatLeadError, match=r"^rec\.dat: flat lead\(s\) V3 "):
        validate(x, "rec.dat")


def test_validate_rejects_less_than_two_seconds() -> None:
    with pytest.raises(TooShortError, match=r"1\.99 s"):
        validate(synthetic_ecg(seconds=1.99), "short.dat")
    with pytest.raises(TooShortError, match=r"0\.50 s"):
        validate(synthetic_ecg(fs=1000, seconds=0.5), "short.dat", sample_rate=1000)


def test_remove_baseline_removes_wander_and_keeps_the_beats() -> None:
    fs = 500
    t = np.arange(5000) / fs
    beats = _tone(8.0, fs, 10.0, amp=1.0)
    wander = 1.0 * np.sin(2 * np.pi * 0.1 * t)[None, :] + 0.5
    residual = np.abs(remove_baseline(beats + wander, fs) - beats)  # 1.5 mV of drift + offset
    assert residual[:, 1000:-1000].max() < 0.03  # gone in the middle
    assert residual.max() < 0.2  # and the edge transient stays bounded


def test_bandpass_rejects_mains_and_keeps_the_ecg_band() -> None:
    fs = 500
    keep = _tone(10.0, fs, 10.0)
    mains = _tone(60.0, fs, 10.0)
    y = bandpass(keep + mains, fs, 0.5, 40.0, order=4)
    middle = slice(1000, 4000)
    spectrum = np.abs(np.fft.rfft(y[0, middle])) / (middle.stop - middle.start) * 2
    freqs = np.fft.rfftfreq(middle.stop - middle.start, 1 / fs)
    assert spectrum[freqs == 10.0][0] == pytest.approx(1.0, abs=0.02)
    assert spectrum[freqs == 60.0][0] < 0.05  # 1 mV of mains → < 0.05 mV
    assert np.abs(y - keep)[:, middle].max() < 0.1  # mains residual ≈ 0.03 + edge transient


def test_filter_presets_and_validation() -> None:
    assert FilterConfig.from_name("none").is_identity
    assert FilterConfig.from_name("baseline").highpass_hz == 0.5
    config = FilterConfig.from_name("bandpass")
    assert (config.highpass_hz, config.lowpass_hz) == (0.5, 40.0)
    x = synthetic_ecg(seed=3)
    np.testing.assert_array_equal(apply_filters(x, 500, FilterConfig()), x)
    assert np.abs(apply_filters(x + 3.0, 500, config).mean(axis=1)).max() < 0.05
    with pytest.raises(ValueError, match="unknown filter preset"):
        FilterConfig.from_name("notch")
    with pytest.raises(ValueError, match="below"):
        FilterConfig(highpass_hz=50.0, lowpass_hz=40.0)
    with pytest.raises(ValueError, match="positive"):
        FilterConfig(highpass_hz=-1.0)
