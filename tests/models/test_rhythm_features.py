"""RR-interval features: beats found at known times, statistics that tell regular from irregular,
nothing invented on a flat line, and the encoder head that adds them to z_e."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qheart.models.encoder import ECGEncoder, EncoderConfig
from qheart.models.rhythm_features import FEATURE_NAMES, rr_features

FS = 500
TINY = EncoderConfig(conv_layers=((8, 4, 4), (16, 2, 2), (16, 2, 2)), conv_groups=4, d_model=16,
                     n_layers=1, n_heads=2, ffn_dim=32, pos_conv_kernel=8, pos_conv_groups=4,
                     dropout=0.0, embed_dim=12)


def beat_train(onsets_s: np.ndarray, seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """(12, n) ECG-like record: a sharp QRS and a broad, tall T wave per beat, lead gains of both
    signs, 0.3 Hz wander and white noise, so the detector must skip T waves and ignore drift."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    qrs = np.zeros_like(t)
    twave = np.zeros_like(t)
    for onset in onsets_s:
        qrs += -np.gradient(np.exp(-0.5 * ((t - onset) / 0.012) ** 2)) * 30
        twave += 0.5 * np.exp(-0.5 * ((t - onset - 0.3) / 0.05) ** 2)
    gains = rng.uniform(0.3, 1.5, 12) * rng.choice([-1, 1], 12)
    x = gains[:, None] * (qrs + twave)[None] + 0.2 * np.sin(2 * np.pi * 0.3 * t)[None]
    return (x + rng.normal(0, 0.01, x.shape)).astype(np.float32)


def features(*records: np.ndarray) -> dict[str, np.ndarray]:
    values = rr_features(torch.as_tensor(np.stack(records))).numpy()
    return {name: values[:, i] for i, name in enumerate(FEATURE_NAMES)}


def test_regular_beats_give_their_rate_and_no_spread() -> None:
    onsets = np.arange(0.3, 10.0, 0.75)  # 80/min
    f = features(beat_train(onsets))
    assert f["measured"][0] == 1.0
    assert 800 * np.exp(f["log_rr_mean"][0]) == pytest.approx(750, abs=5)
    assert f["rr_cv"][0] < 0.08  # 10 × sd / mean: sd under 6 ms (peaks on an 8-ms grid)
    assert f["premature_share"][0] == 0.0


def test_breathing_modulation_and_random_intervals_are_told_apart() -> None:
    rng = np.random.default_rng(1)
    regular = np.cumsum(np.full(12, 0.8)) - 0.5
    breathing = np.cumsum(0.8 * (1 + 0.12 * np.sin(2 * np.pi * np.arange(12) * 0.8 / 4.0))) - 0.5
    random = np.cumsum(rng.gamma(25, 0.8 / 25, 12)) - 0.5  # coefficient of variation 0.2
    f = features(*(beat_train(o[o < 9.9]) for o in (regular, breathing, random)))
    assert f["rr_range"][0] < 0.1 < f["rr_range"][1]  # sinus arrhythmia spreads the RRs
    assert f["rr_cv"][2] > f["rr_cv"][0]
    # A slow swing changes neighbouring RRs little; fibrillation changes every one.
    assert f["successive_over_spread"][1] < f["successive_over_spread"][2]


def test_a_premature_beat_is_counted() -> None:
    onsets = np.arange(0.3, 10.0, 0.9)  # 11 beats, 10 intervals
    onsets[5] = onsets[4] + 0.5  # a ventricular beat: early, then a compensatory pause
    f = features(beat_train(onsets))
    assert f["premature_share"][0] == pytest.approx(1 / 10)


def test_an_artefact_in_two_leads_is_not_a_beat() -> None:
    onsets = np.arange(0.3, 10.0, 1.0)
    clean = beat_train(onsets)
    spiky = clean.copy()
    spiky[:2, 2250:2260] += 5.0  # 20 ms, 5 mV, between beats 2 and 3 in leads I and II
    a, b = features(clean, spiky)["rr_cv"]
    assert b == pytest.approx(a, abs=0.02)


def test_a_flat_line_or_a_short_crop_measures_nothing() -> None:
    for x in (torch.zeros(2, 12, 5000), torch.as_tensor(beat_train(np.arange(0.1, 1, 0.3)))[None, :, :400]):
        f = rr_features(x)
        assert torch.equal(f, torch.zeros_like(f))


def test_misshapen_input_is_refused() -> None:
    with pytest.raises(ValueError, match="leads, n"):
        rr_features(torch.zeros(12, 5000))


def test_encoder_head_starts_neutral_learns_and_survives_save_and_load(tmp_path) -> None:
    torch.manual_seed(0)
    config = EncoderConfig.from_dict({**TINY.to_dict(), "rhythm_features": True})
    encoder = ECGEncoder(config)
    x = torch.as_tensor(np.stack([beat_train(np.arange(0.3, 10, 0.7)),
                                  beat_train(np.arange(0.2, 10, 1.1), seed=1)]))
    head_out = encoder.rhythm(x)
    assert torch.equal(head_out, torch.zeros_like(head_out))  # switching it on changes nothing yet
    encoder(x).embedding.pow(2).sum().backward()
    assert encoder.rhythm.mlp[-1].weight.grad.abs().sum() > 0
    with torch.no_grad():
        encoder.rhythm.mlp[-1].weight.normal_()
    encoder.eval()
    loaded = ECGEncoder.from_pretrained(encoder.save_pretrained(tmp_path / "enc")).eval()
    assert loaded.config.rhythm_features
    assert torch.allclose(loaded(x).embedding, encoder(x).embedding)
    assert not torch.allclose(encoder(x).embedding - encoder.rhythm(x), encoder(x).embedding)


def test_encoders_saved_before_the_switch_load_without_it() -> None:
    data = TINY.to_dict()
    data.pop("rhythm_features")
    assert ECGEncoder(EncoderConfig.from_dict(data)).rhythm is None
