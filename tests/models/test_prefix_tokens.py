"""Lead and measurement tokens: each kind of labelled recording noise shows in its own lead's
feature and reaches only that lead's token; measurements enter as numbers, NaN flagged."""

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
        out = tokens(torch.tensor(np.stack([clean, noisy]), dtype=torch.float32))
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
    # the features start at the scale of the LLM's embeddings, as the normed prefix does
    torch.testing.assert_close(model.lead_tokens.mlp[-1].weight, model.prefix_norm.weight)
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


def test_measurement_arrays_keep_untrusted_values_nan_and_classes_one_hot() -> None:
    from qheart.measurements import measure_ecg
    from qheart.measurements.measure import FEATURE_FIELDS, INTERVALS
    from qheart.measurements.reference import RANGE_LABELS
    from qheart.models.measurement_tokens import (
        LEAD_VALUES,
        QUALITY_LABELS,
        T_POLARITIES,
        measurement_arrays,
    )

    m = measure_ecg(noisy_ecg(0))
    values, classes = measurement_arrays(m)
    assert values.shape == (12, len(INTERVALS) + len(LEAD_VALUES))
    g = len(INTERVALS)
    np.testing.assert_array_equal(values[:, :g], np.broadcast_to(values[0, :g], (12, g)))
    for j, name in enumerate(INTERVALS):  # NaN exactly where measure_ecg did not trust a value
        assert np.isnan(values[0, j]) == np.isnan(getattr(m, name))
    for i, lead in enumerate(m.leads):
        assert values[i, g + LEAD_VALUES.index("st_mv")] == pytest.approx(lead.st_mv, nan_ok=True)
        start = len(FEATURE_FIELDS) * len(RANGE_LABELS)
        polarity = classes[i, start:start + len(T_POLARITIES)]
        assert polarity.sum() == (lead.t_polarity in T_POLARITIES)
        assert classes[i, start + len(T_POLARITIES):].sum() == (lead.quality_label in QUALITY_LABELS)
    for k, feature in enumerate(FEATURE_FIELDS):
        hot = classes[0, 3 * k:3 * k + 3]
        label = m.range_label(feature)
        assert hot.sum() == (label is not None)
        if label is not None:
            assert RANGE_LABELS[int(hot.argmax())] == label


def test_measurement_tokens_standardise_without_nans_and_flag_them() -> None:
    from qheart.models.measurement_tokens import N_CLASSES, N_VALUES, MeasurementTokens

    tokens = MeasurementTokens(d_llm=8)
    values = torch.randn(20, 12, N_VALUES) * 5 + 3
    values[::2, :, 0] = float("nan")
    tokens.fit(values)
    torch.testing.assert_close(tokens.standardise.mean[:, 0], values[1::2, :, 0].mean(0))
    inputs = tokens.inputs(values, torch.zeros(20, 12, N_CLASSES))
    assert not torch.isnan(inputs).any()
    assert bool((inputs[::2, :, 0] == 0).all()) and bool((inputs[::2, :, N_VALUES] == 1).all())
    assert bool((inputs[1::2, :, N_VALUES] == 0).all())


def test_model_with_measurement_tokens_builds_a_prefix_from_signals_alone() -> None:
    with pytest.raises(ValueError, match="measurement_tokens puts one token per lead"):
        ModelConfig(encoder=TINY_ENCODER, measurement_tokens=True, n_prefix=6)
    model = QHeartModel(ModelConfig(encoder=TINY_ENCODER, measurement_tokens=True,
                                    mapper_dropout=0.0), tiny_llm())
    signals = torch.tensor(np.stack([noisy_ecg(0), noisy_ecg(1), noisy_ecg(2)]),
                           dtype=torch.float32)
    model.fit_standardisers(iter((signals,)))
    assert float(model.measurement_tokens.standardise.std.sub(1).abs().max()) > 0
    model.eval()
    with torch.no_grad():
        with_tokens = model.prefix(signals)
        assert with_tokens.shape == (3, 12, 32) and not torch.isnan(with_tokens).any()
        torch.manual_seed(0)  # (a shift equal in every dimension would be normed away)
        model.measurement_tokens.mlp[-1].bias.add_(torch.randn(32))
        assert not torch.allclose(with_tokens, model.prefix(signals))
