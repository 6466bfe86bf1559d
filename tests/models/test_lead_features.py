"""Lead tokens: each kind of labelled recording noise shows in its own lead's feature, and
reaches only that lead's prefix token."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qheart.data.leads import LEADS
from qheart.data.synth import noise
from qheart.models.lead_features import FEATURE_NAMES, LeadTokens, lead_signal_features
from qheart.models.qheart_model import ModelConfig, QHeartModel
from tests.models.test_qheart_model import tiny_llm
from tests.qa_fixtures import TINY_ENCODER

NOISY = {"static noise": 1, "burst noise": 3, "baseline drift": 5, "electrodes problems": 7}


def clean_ecg(rng: np.random.Generator) -> np.ndarray:
    """(12, 5000) spiky beats at 72/min with a 5 µV noise floor, lead amplitudes 1.0-2.1 mV."""
    t = np.arange(5000) / 500
    beats = np.sin(np.pi * 1.2 * t) ** 40
    return np.stack([beats * (1 + 0.1 * i) for i in range(12)]) + rng.normal(0, 0.005, (12, 5000))


def noisy_ecg(seed: int = 0) -> np.ndarray:
    """A clean ECG with each kind of noise in its own lead (NOISY), drawn by the generator."""
    rng = np.random.default_rng(seed)
    x = clean_ecg(rng)
    x[NOISY["static noise"]] += noise.static_noise(rng)
    x[NOISY["burst noise"]] += noise.burst_noise(rng)
    x[NOISY["baseline drift"]] += noise.baseline_drift(rng)
    gain, add = noise.electrode_gain(rng)
    lead = NOISY["electrodes problems"]
    x[lead] = x[lead] * gain + add
    return x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_kind_of_noise_stands_out_in_its_own_lead_and_feature(seed: int) -> None:
    features = lead_signal_features(torch.tensor(noisy_ecg(seed)[None], dtype=torch.float32))[0]
    assert features.shape == (12, len(FEATURE_NAMES))
    column = {name: features[:, i] for i, name in enumerate(FEATURE_NAMES)}
    clean = [i for i in range(12) if i not in NOISY.values()]


    def above_clean(name: str, kind: str) -> float:
        return float(column[name][NOISY[kind]] - column[name][clean].max())

    def below_clean(name: str, kind: str) -> float:
        return float(column[name][clean].min() - column[name][NOISY[kind]])

    # log features: a margin of 1 is e-fold beyond every clean lead
    assert above_clean("hf_floor", "static noise") > 1.0
    assert above_clean("hf_burst", "burst noise") > 1.0
    assert above_clean("wander", "baseline drift") > 1.0
    assert below_clean("dropout", "electrodes problems") > 1.0
    # the clean leads' signal level follows their amplitude, lead by lead
    assert bool((column["ecg_level"][clean].diff() > 0).all())


def test_features_refuse_less_than_two_seconds() -> None:
    with pytest.raises(ValueError, match="2 s"):
        lead_signal_features(torch.zeros(1, 12, 400))


def test_a_noisy_lead_changes_only_its_own_token() -> None:
    torch.manual_seed(0)
    tokens = LeadTokens(d_llm=16)
    rng = np.random.default_rng(0)
    clean = clean_ecg(rng)
    noisy = clean.copy()
    noisy[4] += noise.static_noise(rng)
    with torch.no_grad():
        out = tokens.features(torch.tensor(np.stack([clean, noisy]), dtype=torch.float32))
    changed = (out[1] - out[0]).abs().amax(-1)
    assert float(changed[4].detach()) > 1e-3
    assert float(torch.cat([changed[:4], changed[5:]]).max()) < 1e-5


def test_lead_names_are_the_llms_embeddings_of_the_names() -> None:
    class Letters:  # a stand-in tokenizer: one id per character
        def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
            return {"input_ids": [ord(c) % 64 for c in text]}

    table = torch.randn(64, 16)
    tokens = LeadTokens(d_llm=16)
    tokens.set_names(Letters(), table)
    for i, name in enumerate(LEADS):
        ids = [ord(c) % 64 for c in f" {name}"]
        torch.testing.assert_close(tokens.names[i], table[ids].mean(0))


def test_model_adds_lead_tokens_only_when_switched_on_and_needs_twelve_tokens() -> None:
    with pytest.raises(ValueError, match="n_prefix = 12"):
        ModelConfig(encoder=TINY_ENCODER, lead_tokens=True, n_prefix=8)
    plain = QHeartModel(ModelConfig(encoder=TINY_ENCODER), tiny_llm())
    assert plain.lead_tokens is None and plain.parameter_counts()["lead_tokens"] == 0
    model = QHeartModel(ModelConfig(encoder=TINY_ENCODER, lead_tokens=True, mapper_dropout=0.0),
                        tiny_llm())
    signals = torch.tensor(np.stack([noisy_ecg(0), noisy_ecg(1)]), dtype=torch.float32)
    assert model.fit_standardisers(iter((signals,))) == 2
    torch.testing.assert_close(model.lead_tokens.standardise.mean,
                               lead_signal_features(signals).mean(0))
    model.eval()
    with torch.no_grad():
        model.lead_tokens.names.fill_(0.5)
        prefix = model.prefix(signals)
        model.lead_tokens.names.zero_()
        torch.testing.assert_close(prefix - model.prefix(signals), torch.full_like(prefix, 0.5))
    blind = QHeartModel(ModelConfig(encoder=TINY_ENCODER, lead_tokens=True, use_ecg=False),
                        tiny_llm())
    assert not any(p.requires_grad for p in blind.lead_tokens.parameters())
